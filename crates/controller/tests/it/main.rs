//! Controller tests: reconcile and the scheduler against the fake runtime and a
//! real store, with a manual clock for the culler and timeouts.

use std::sync::Arc;
use std::time::Duration;

use controller::{reconcile, Action, Config, Controller, Ctx, ManualClock};
use model::{DesiredState, Name, ProfileSpec, WorkspaceId, WorkspaceState};
use runtime::{FakeRuntime, Observed, Runtime, RuntimeError};
use store::{AuditFilter, NewProfile, NewUser, Store};
use test_support::{Engine, TestDb};

struct Fixture {
    ctx: Ctx,
    store: Store,
    runtime: Arc<FakeRuntime>,
    clock: Arc<ManualClock>,
    owner: model::User,
    _db: TestDb,
}

async fn fixture(engine: Engine, spec: ProfileSpec) -> Fixture {
    let db = engine.fresh().await;
    let store = Store::connect(&db.url).await.unwrap();
    let mut tx = store.begin().await.unwrap();
    let owner = tx
        .insert_user(&NewUser {
            name: Name::parse("alice").unwrap(),
            password_hash: None,
            is_admin: false,
        })
        .await
        .unwrap();
    tx.insert_profile(&NewProfile {
        name: Name::parse("standard").unwrap(),
        spec,
    })
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let runtime = Arc::new(FakeRuntime::new());
    let clock = Arc::new(ManualClock::new(model::now_millis()));
    let config = Config {
        poll: Duration::from_millis(20),
        resync: Duration::from_millis(200),
        ..Config::default()
    };
    let ctx = Ctx::new(store.clone(), runtime.clone(), clock.clone(), config);
    Fixture {
        ctx,
        store,
        runtime,
        clock,
        owner,
        _db: db,
    }
}

/// A controller running in the background until the returned stop is called.
fn run_controller(ctx: &Ctx) -> impl FnOnce() -> tokio::task::JoinHandle<()> {
    let controller = Controller::new(ctx.clone());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(controller.run(async {
        let _ = stop_rx.await;
    }));
    move || {
        stop_tx.send(()).unwrap();
        task
    }
}

impl Fixture {
    async fn workspace(&self, name: &str, desired: DesiredState) -> WorkspaceId {
        let profile = self
            .store
            .profile(&Name::parse("standard").unwrap())
            .await
            .unwrap();
        let mut tx = self.store.begin().await.unwrap();
        let ws = tx
            .insert_workspace(&self.owner, &Name::parse(name).unwrap(), &profile, desired)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        ws.id
    }

    async fn want(&self, id: &str, desired: DesiredState) {
        let mut tx = self.store.begin().await.unwrap();
        tx.update_workspace_spec(id, None, Some(desired))
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }

    /// Reconciles until settled (at most 10 rounds) and returns the last action.
    async fn converge(&self, id: &WorkspaceId) -> Action {
        for _ in 0..10 {
            match reconcile(id, &self.ctx).await.unwrap() {
                Action::Requeue(_) => continue,
                settled => return settled,
            }
        }
        panic!("workspace {id} did not settle in 10 reconciles");
    }

    /// Asks for a failed workspace to start again, as `berth ws start` does.
    async fn restart(&self, id: &str) {
        let mut tx = self.store.begin().await.unwrap();
        tx.update_workspace_spec(id, None, Some(DesiredState::Running))
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }

    /// The route table every replica's proxy follows, as the store holds it.
    async fn routes(&self) -> model::route::RouteTable {
        controller::routes::load(&self.store).await.unwrap()
    }

    async fn state(&self, id: &str) -> WorkspaceState {
        self.store.workspace(id).await.unwrap().status.state
    }

    async fn actions(&self) -> Vec<String> {
        let f = AuditFilter {
            limit: 100,
            ..Default::default()
        };
        self.store
            .audit(&f)
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.entry.action.as_str().to_owned())
            .collect()
    }
}

#[tokio::test]
async fn lifecycle_converges_on_both_engines() {
    for engine in Engine::ALL {
        let f = fixture(engine, ProfileSpec::standard()).await;
        let id = f.workspace("lab", DesiredState::Stopped).await;
        assert_eq!(f.converge(&id).await, Action::AwaitChange);
        assert_eq!(
            f.state(&id).await,
            WorkspaceState::Stopped,
            "created without a start: stopped, not pending"
        );
        assert!(f.runtime.calls().is_empty());

        f.want(&id, DesiredState::Running).await;
        assert!(matches!(
            reconcile(&id, &f.ctx).await.unwrap(),
            Action::Requeue(_)
        ));
        assert_eq!(f.state(&id).await, WorkspaceState::Starting);
        f.converge(&id).await;
        let ws = f.store.workspace(&id).await.unwrap();
        assert_eq!(
            (ws.status.state, ws.observed_generation),
            (WorkspaceState::Running, ws.generation)
        );
        assert!(ws.status.started_at.is_some());
        assert!(ws
            .status
            .conditions
            .iter()
            .any(|c| c.kind == "Ready" && c.status));
        let route = f.routes().await["alice/lab"].clone();
        assert_eq!(route.upstream, Some(FakeRuntime::upstream_of(&id)));
        assert_eq!(f.runtime.calls(), [format!("start {id}")]);

        // Settled: reconciling again changes nothing and calls nothing.
        let before = f.store.workspace(&id).await.unwrap();
        f.converge(&id).await;
        assert_eq!(f.store.workspace(&id).await.unwrap(), before);
        assert_eq!(f.runtime.calls().len(), 1);

        f.want(&id, DesiredState::Paused).await;
        f.converge(&id).await;
        assert_eq!(f.state(&id).await, WorkspaceState::Paused);
        assert_eq!(
            f.routes().await["alice/lab"].upstream,
            None,
            "a paused workspace gets no traffic"
        );
        f.want(&id, DesiredState::Running).await;
        f.converge(&id).await;
        assert_eq!(f.state(&id).await, WorkspaceState::Running);
        f.want(&id, DesiredState::Stopped).await;
        f.converge(&id).await;
        assert_eq!(f.state(&id).await, WorkspaceState::Stopped);
        assert_eq!(f.runtime.observe(&id).await.unwrap(), Observed::Stopped);

        let mut tx = f.store.begin().await.unwrap();
        tx.request_workspace_deletion(&id, true).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(reconcile(&id, &f.ctx).await.unwrap(), Action::Gone);
        assert!(f.store.workspace(&id).await.is_err(), "the record is gone");
        assert!(
            f.runtime.calls().contains(&format!("delete-keep {id}")),
            "the files were asked to be kept: {:?}",
            f.runtime.calls()
        );
        assert!(
            f.runtime.list().await.unwrap().is_empty(),
            "and so are its resources"
        );
        assert!(!f.routes().await.contains_key("alice/lab"));
        assert!(f.actions().await.contains(&"workspace.remove".to_owned()));
        assert_eq!(
            reconcile(&id, &f.ctx).await.unwrap(),
            Action::Gone,
            "idempotent"
        );
        f.store.close().await;
    }
}

#[tokio::test]
async fn a_running_workspace_is_readopted_not_restarted() {
    let f = fixture(Engine::Sqlite, ProfileSpec::standard()).await;
    let id = f.workspace("lab", DesiredState::Running).await;
    f.converge(&id).await;
    // A new controller (a restarted control plane) over the same store and runtime.
    let ctx2 = Ctx::new(
        f.store.clone(),
        f.runtime.clone(),
        f.clock.clone(),
        Config::default(),
    );
    reconcile(&id, &ctx2).await.unwrap();
    assert_eq!(
        f.runtime.calls(),
        [format!("start {id}")],
        "no second start"
    );
    assert!(f.routes().await["alice/lab"].upstream.is_some());
}

fn exited(reason: &str, message: &str) -> Observed {
    Observed::Failed {
        reason: reason.into(),
        message: message.into(),
    }
}

fn condition(ws: &model::Workspace, kind: &str) -> model::Condition {
    ws.status
        .conditions
        .iter()
        .find(|c| c.kind == kind)
        .unwrap_or_else(|| panic!("no {kind} condition: {:#?}", ws.status))
        .clone()
}

#[tokio::test]
async fn a_died_app_is_detected_and_restarted_after_a_back_off() {
    let f = fixture(Engine::Sqlite, ProfileSpec::standard()).await;
    let id = f.workspace("lab", DesiredState::Running).await;
    f.converge(&id).await;
    f.runtime.set(
        &id,
        exited("OOMKilled", "the app was killed at its memory limit"),
    );
    let action = reconcile(&id, &f.ctx).await.unwrap();
    let ws = f.store.workspace(&id).await.unwrap();
    let cond = condition(&ws, "AppExited");
    assert!(cond.status);
    assert_eq!(cond.reason, "OOMKilled");
    assert_eq!(cond.message, "the app was killed at its memory limit");
    assert_eq!(
        ws.status.state,
        WorkspaceState::Failed,
        "not restarted at once"
    );
    let message = ws.status.message.clone().unwrap();
    assert!(
        message.starts_with("the app was killed at its memory limit (failed start 1 of 5"),
        "{message}"
    );
    assert!(condition(&ws, "BackOff").status);
    let Action::Requeue(after) = action else {
        panic!("no retry asked for: {action:?}")
    };
    assert!(
        (Duration::from_millis(800)..=Duration::from_millis(1200)).contains(&after),
        "{after:?}"
    );
    // The runtime was told to let go of what the start made.
    assert!(f.runtime.calls().contains(&format!("stop {id}")));
    reconcile(&id, &f.ctx).await.unwrap();
    assert_eq!(
        f.state(&id).await,
        WorkspaceState::Failed,
        "still backing off"
    );
    f.clock.advance(Duration::from_millis(1300));
    f.converge(&id).await;
    let ws = f.store.workspace(&id).await.unwrap();
    assert_eq!(ws.status.state, WorkspaceState::Running);
    assert!(!condition(&ws, "BackOff").status);
}

/// An app that exits at once, as a command that is not installed does: over ten
/// minutes (of the manual clock) it is started at most a few times, 1 s, 2 s, 4 s
/// … apart, and then stays failed with a one-line reason, until asked again.
#[tokio::test]
async fn a_crash_loop_backs_off_and_ends_failed() {
    let f = fixture(Engine::Sqlite, ProfileSpec::standard()).await;
    let id = f.workspace("lab", DesiredState::Running).await;
    f.runtime.start_as(Some(exited(
        "Exited",
        "the app exited with code 127: sh: 1: jupyter-nope: not found",
    )));
    let starts = |f: &Fixture| {
        f.runtime
            .calls()
            .iter()
            .filter(|c| c.starts_with("start"))
            .count()
    };
    let mut starts_at = Vec::new();
    let t0 = model::now_millis();
    for second in 0..600 {
        let before = starts(&f);
        for _ in 0..3 {
            reconcile(&id, &f.ctx).await.unwrap();
        }
        if starts(&f) > before {
            starts_at.push(second);
        }
        f.clock.advance(Duration::from_secs(1));
    }
    assert!(
        model::now_millis() - t0 < 60_000,
        "the loop ran in manual time"
    );
    assert!(starts(&f) <= 10, "{} starts: {starts_at:?}", starts(&f));
    assert_eq!(starts(&f), 5, "{starts_at:?}");
    let gaps: Vec<i32> = starts_at.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        gaps.windows(2).all(|g| g[1] >= g[0]),
        "the waits grow: {gaps:?}"
    );
    assert!(gaps[3] >= 6, "about 8 s before the fifth try: {gaps:?}");
    let ws = f.store.workspace(&id).await.unwrap();
    assert_eq!(ws.status.state, WorkspaceState::Failed);
    let message = ws.status.message.clone().unwrap();
    assert!(!message.contains('\n'), "one line: {message}");
    assert!(
        message.starts_with("the app exited with code 127: sh: 1: jupyter-nope: not found"),
        "{message}"
    );
    assert!(
        message.contains("gave up after 5 failed starts"),
        "{message}"
    );
    let failed = condition(&ws, "StartFailed");
    assert!(failed.status);
    assert_eq!(failed.reason, "CrashLoop");
    assert!(ws.status.gave_up());
    assert_eq!(
        reconcile(&id, &f.ctx).await.unwrap(),
        Action::AwaitChange,
        "nothing more is tried"
    );

    // Starting it again (a desired-state change) tries anew, at once.
    f.runtime.start_as(None);
    f.restart(&id).await;
    f.converge(&id).await;
    let ws = f.store.workspace(&id).await.unwrap();
    assert_eq!(ws.status.state, WorkspaceState::Running);
    assert_eq!(ws.status.failed_starts, 0);
    assert!(!condition(&ws, "StartFailed").status);
}

/// An app that ran for a good while before it died starts a new count: a
/// long-lived workspace is not given up on after a few crashes over days.
#[tokio::test]
async fn an_app_that_ran_long_before_it_died_is_restarted_with_a_fresh_count() {
    let f = fixture(Engine::Sqlite, ProfileSpec::standard()).await;
    let id = f.workspace("lab", DesiredState::Running).await;
    for _ in 0..8 {
        f.converge(&id).await;
        assert_eq!(f.state(&id).await, WorkspaceState::Running);
        f.clock.advance(Duration::from_secs(11 * 60));
        f.runtime
            .set(&id, exited("Exited", "the app exited with code 1"));
        reconcile(&id, &f.ctx).await.unwrap();
        let ws = f.store.workspace(&id).await.unwrap();
        assert_eq!(ws.status.failed_starts, 1, "{:#?}", ws.status);
        f.clock.advance(Duration::from_secs(2));
    }
}

/// A start can be asked for again while it backs off, and stopping a
/// workspace ends the back-off.
#[tokio::test]
async fn stopping_a_crash_looping_workspace_stops_it() {
    let f = fixture(Engine::Sqlite, ProfileSpec::standard()).await;
    let id = f.workspace("lab", DesiredState::Running).await;
    f.runtime
        .start_as(Some(exited("Exited", "the app exited with code 2")));
    reconcile(&id, &f.ctx).await.unwrap();
    reconcile(&id, &f.ctx).await.unwrap();
    assert_eq!(f.state(&id).await, WorkspaceState::Failed);
    f.want(&id, DesiredState::Stopped).await;
    assert_eq!(f.converge(&id).await, Action::AwaitChange);
    let ws = f.store.workspace(&id).await.unwrap();
    assert_eq!(ws.status.state, WorkspaceState::Stopped);
    assert_eq!(ws.status.failed_starts, 0);
    assert_eq!(ws.status.retry_at, None);
}

#[tokio::test]
async fn a_start_that_never_gets_ready_times_out() {
    let spec = ProfileSpec {
        start_timeout_secs: 30,
        ..ProfileSpec::standard()
    };
    let f = fixture(Engine::Sqlite, spec).await;
    let id = f.workspace("lab", DesiredState::Running).await;
    reconcile(&id, &f.ctx).await.unwrap();
    // The runtime says why it waits (on Kubernetes: the scheduler's words).
    let why = "no node for it yet (Unschedulable: 0/3 nodes are available: 3 Insufficient nvidia.com/gpu.)";
    f.runtime.set(
        &id,
        Observed::Starting {
            waiting: Some(why.into()),
        },
    );
    assert!(matches!(
        reconcile(&id, &f.ctx).await.unwrap(),
        Action::Requeue(_)
    ));
    let ws = f.store.workspace(&id).await.unwrap();
    assert_eq!(ws.status.state, WorkspaceState::Starting);
    let ready = condition(&ws, "Ready");
    assert_eq!((ready.status, ready.message.as_str()), (false, why));
    f.clock.advance(Duration::from_secs(31));
    let action = reconcile(&id, &f.ctx).await.unwrap();
    let ws = f.store.workspace(&id).await.unwrap();
    assert_eq!(ws.status.state, WorkspaceState::Failed);
    let timeout = condition(&ws, "StartTimeout");
    assert!(timeout.status, "the start did time out: {timeout:?}");
    assert_eq!(timeout.reason, "Timeout");
    let message = ws.status.message.unwrap();
    assert!(message.contains("start timeout (30 s)"), "{message}");
    assert!(message.contains(&format!("waiting: {why}")), "{message}");
    assert!(message.contains("failed start 1 of 5"), "{message}");
    assert!(
        matches!(action, Action::Requeue(_)),
        "tried again: {action:?}"
    );
}

#[tokio::test]
async fn idle_workspaces_are_stopped_and_expired_ones_deleted() {
    let spec = ProfileSpec {
        idle_timeout_secs: Some(600),
        max_lifetime_secs: Some(3600),
        ..ProfileSpec::standard()
    };
    let f = fixture(Engine::Sqlite, spec).await;
    let id = f.workspace("lab", DesiredState::Running).await;
    f.converge(&id).await;
    f.clock.advance(Duration::from_secs(599));
    f.converge(&id).await;
    assert_eq!(
        f.state(&id).await,
        WorkspaceState::Running,
        "not idle long enough"
    );
    f.clock.advance(Duration::from_secs(2));
    f.converge(&id).await;
    let ws = f.store.workspace(&id).await.unwrap();
    assert_eq!(
        (ws.spec.desired, ws.status.state),
        (DesiredState::Stopped, WorkspaceState::Stopped)
    );
    assert!(f.actions().await.contains(&"workspace.cull".to_owned()));

    f.clock.advance(Duration::from_secs(3600));
    assert_eq!(f.converge(&id).await, Action::Gone);
    let actions = f.actions().await;
    assert!(
        actions.contains(&"workspace.expire".to_owned())
            && actions.contains(&"workspace.remove".to_owned())
    );
}

#[tokio::test]
async fn runtime_errors_become_conditions_and_are_retried() {
    let mut f = fixture(Engine::Sqlite, ProfileSpec::standard()).await;
    let seen = Arc::new(Seen::default());
    f.ctx.observer = Some(seen.clone());
    let id = f.workspace("lab", DesiredState::Running).await;
    f.runtime
        .fail_next(RuntimeError::transient("start", &id, "no veth left"));
    let stop = run_controller(&f.ctx);
    // The first start fails; the condition is recorded; the retry (after ~1 s) succeeds.
    let mut saw_error = false;
    for _ in 0..100 {
        let ws = f.store.workspace(&id).await.unwrap();
        saw_error |= ws
            .status
            .conditions
            .iter()
            .any(|c| c.kind == "Reconciled" && !c.status && c.message.contains("no veth left"));
        if ws.status.state == WorkspaceState::Running {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        saw_error,
        "the failure was recorded as a condition: {:?}",
        f.store.workspace(&id).await.unwrap().status
    );
    let ws = f.store.workspace(&id).await.unwrap();
    assert_eq!(ws.status.state, WorkspaceState::Running);
    assert!(
        ws.status
            .conditions
            .iter()
            .any(|c| c.kind == "Reconciled" && c.status),
        "cleared on success"
    );
    tokio::time::timeout(Duration::from_secs(15), stop())
        .await
        .unwrap()
        .unwrap();
    // Each reconcile was told to the observer (the server's metrics), with how
    // it ended.
    let outcomes = seen.0.lock().unwrap().clone();
    assert_eq!(
        outcomes.first(),
        Some(&controller::Outcome::RuntimeError),
        "{outcomes:?}"
    );
    assert!(outcomes.contains(&controller::Outcome::Ok), "{outcomes:?}");
}

/// Records the outcome of every reconcile.
#[derive(Debug, Default)]
struct Seen(std::sync::Mutex<Vec<controller::Outcome>>);

impl controller::Observer for Seen {
    fn reconciled(&self, outcome: controller::Outcome, _took: Duration) {
        self.0.lock().unwrap().push(outcome);
    }
}

#[tokio::test]
async fn the_scheduler_resyncs_and_cleans_up_orphans() {
    let f = fixture(Engine::Sqlite, ProfileSpec::standard()).await;
    let a = f.workspace("a", DesiredState::Running).await;
    let b = f.workspace("b", DesiredState::Running).await;
    f.runtime.set(
        "ghost",
        Observed::Running {
            upstream: FakeRuntime::upstream_of("ghost"),
        },
    );
    let stop = run_controller(&f.ctx);
    // No change notification at all: the first resync finds both.
    for _ in 0..100 {
        if f.state(&a).await == WorkspaceState::Running
            && f.state(&b).await == WorkspaceState::Running
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        (f.state(&a).await, f.state(&b).await),
        (WorkspaceState::Running, WorkspaceState::Running)
    );
    let mut ids = f.runtime.list().await.unwrap();
    ids.sort();
    let mut want = vec![a.clone(), b.clone()];
    want.sort();
    assert_eq!(ids, want, "the orphan the store does not know was deleted");
    let starts = f
        .runtime
        .calls()
        .iter()
        .filter(|c| c.starts_with("start"))
        .count();
    assert_eq!(starts, 2, "one start each, however many resyncs");
    tokio::time::timeout(Duration::from_secs(15), stop())
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn an_idle_policy_can_pause_instead_of_stop() {
    let spec = ProfileSpec {
        idle_timeout_secs: Some(600),
        idle_action: model::IdleAction::Pause,
        ..ProfileSpec::standard()
    };
    let f = fixture(Engine::Sqlite, spec).await;
    let id = f.workspace("lab", DesiredState::Running).await;
    f.converge(&id).await;
    f.clock.advance(Duration::from_secs(601));
    f.converge(&id).await;
    let ws = f.store.workspace(&id).await.unwrap();
    assert_eq!(
        (ws.spec.desired, ws.status.state),
        (DesiredState::Paused, WorkspaceState::Paused)
    );
    assert_eq!(f.runtime.observe(&id).await.unwrap(), Observed::Paused);
    // Paused, it is not culled again.
    f.clock.advance(Duration::from_secs(3600));
    f.converge(&id).await;
    assert_eq!(
        f.actions()
            .await
            .iter()
            .filter(|a| *a == "workspace.cull")
            .count(),
        1
    );
}

#[tokio::test]
async fn a_permanent_start_failure_is_not_retried_until_the_spec_changes() {
    let f = fixture(Engine::Sqlite, ProfileSpec::standard()).await;
    let id = f.workspace("lab", DesiredState::Running).await;
    let permanent = || RuntimeError::permanent("start", &id, "no such app");
    f.runtime.fail_next(permanent());
    assert_eq!(f.converge(&id).await, Action::AwaitChange);
    let ws = f.store.workspace(&id).await.unwrap();
    assert_eq!(ws.status.state, WorkspaceState::Failed);
    assert!(ws.status.message.unwrap().contains("no such app"));
    f.converge(&id).await;
    assert_eq!(
        f.runtime.calls().len(),
        1,
        "no retry at the same generation"
    );
    // Stop and start again: a new generation, a new attempt.
    f.want(&id, DesiredState::Stopped).await;
    f.converge(&id).await;
    f.want(&id, DesiredState::Running).await;
    f.converge(&id).await;
    assert_eq!(f.state(&id).await, WorkspaceState::Running);
}

/// An app that dies by itself is restarted as soon as the runtime says so, not
/// at the next resync (an hour away here).
#[tokio::test]
async fn the_scheduler_acts_on_changes_the_runtime_reports() {
    let mut f = fixture(Engine::Sqlite, ProfileSpec::standard()).await;
    f.ctx = Ctx::new(
        f.store.clone(),
        f.runtime.clone(),
        f.clock.clone(),
        Config {
            poll: Duration::from_millis(20),
            resync: Duration::from_secs(3600),
            ..Config::default()
        },
    );
    let id = f.workspace("lab", DesiredState::Running).await;
    let stop = run_controller(&f.ctx);
    let until = |want: usize| {
        let f = &f;
        let id = id.clone();
        async move {
            for _ in 0..200 {
                let starts = f
                    .runtime
                    .calls()
                    .iter()
                    .filter(|c| c.starts_with("start"))
                    .count();
                if starts == want && f.state(&id).await == WorkspaceState::Running {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            panic!("not running after {want} start(s): {:?}", f.runtime.calls());
        }
    };
    until(1).await;
    f.runtime
        .set(&id, exited("Exited", "the app exited with code 1"));
    // The restart waits out the back-off, in the controller's clock.
    tokio::time::sleep(Duration::from_millis(100)).await;
    f.clock.advance(Duration::from_secs(2));
    until(2).await;
    tokio::time::timeout(Duration::from_secs(15), stop())
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn a_full_home_is_a_condition_until_it_has_room_again() {
    let f = fixture(Engine::Sqlite, ProfileSpec::standard()).await;
    let id = f.workspace("lab", DesiredState::Running).await;
    let gib = 1u64 << 30;
    let mut disk = runtime::Disk {
        used_bytes: 20 * gib - 4096,
        size_bytes: 20 * gib,
        available_bytes: 4096,
    };
    f.runtime.set_disk(&id, disk);
    f.converge(&id).await;
    reconcile(&id, &f.ctx).await.unwrap();
    let full = condition(&f.store.workspace(&id).await.unwrap(), "DiskFull");
    assert!(full.status, "{full:?}");
    assert_eq!(full.reason, "HomeFull");
    assert!(
        full.message.contains("20 GiB limit") && full.message.contains("No space left on device"),
        "{}",
        full.message
    );
    // It stays running: a full disk is the app's to handle.
    assert_eq!(f.state(&id).await, WorkspaceState::Running);

    disk.available_bytes = 5 * gib;
    f.runtime.set_disk(&id, disk);
    reconcile(&id, &f.ctx).await.unwrap();
    let roomy = condition(&f.store.workspace(&id).await.unwrap(), "DiskFull");
    assert_eq!((roomy.status, roomy.reason.as_str()), (false, "HasRoom"));
}

/// What runs the controller: a `Ctx` with its own fake runtime, on `store`,
/// with an hour between resyncs (so that only the change feed can wake it).
fn replica(f: &Fixture, store: &Store) -> (Ctx, Arc<FakeRuntime>) {
    let runtime = Arc::new(FakeRuntime::new());
    let ctx = Ctx::new(
        store.clone(),
        runtime.clone(),
        f.clock.clone(),
        Config {
            poll: Duration::from_millis(20),
            resync: Duration::from_secs(3600),
            ..Config::default()
        },
    );
    (ctx, runtime)
}

async fn until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    for _ in 0..400 {
        if done().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("not within 10 s: {what}");
}

fn starts(rt: &FakeRuntime) -> usize {
    rt.calls().iter().filter(|c| c.starts_with("start")).count()
}

/// A spec committed while the controller runs wakes it through the store's
/// change feed: no resync (an hour away) is waited for, and no one tells it
/// by hand. The route table follows the store as the workspace starts and goes.
#[tokio::test]
async fn the_controller_wakes_on_the_change_feed_and_the_routes_follow() {
    for engine in Engine::ALL {
        let f = fixture(engine, ProfileSpec::standard()).await;
        let (ctx, runtime) = replica(&f, &f.store);
        let routes = controller::routes::follow(f.store.clone()).await.unwrap();
        let stop = run_controller(&ctx);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let id = f.workspace("lab", DesiredState::Running).await;
        until("started", async || starts(&runtime) == 1).await;
        until("routed", async || {
            let table = routes.borrow().clone();
            table.get("alice/lab").and_then(|r| r.upstream.clone())
                == Some(FakeRuntime::upstream_of(&id))
        })
        .await;
        assert_eq!(routes.borrow()["alice/lab"], f.routes().await["alice/lab"]);
        f.want(&id, DesiredState::Stopped).await;
        until("stopped, no upstream", async || {
            let table = routes.borrow().clone();
            table["alice/lab"].state == WorkspaceState::Stopped
                && table["alice/lab"].upstream.is_none()
        })
        .await;
        let mut tx = f.store.begin().await.unwrap();
        tx.request_workspace_deletion(&id, false).await.unwrap();
        tx.commit().await.unwrap();
        until("gone from the table", async || routes.borrow().is_empty()).await;
        tokio::time::timeout(Duration::from_secs(15), stop())
            .await
            .unwrap()
            .unwrap();
    }
}

/// Two replicas on one PostgreSQL: one leads, and a workspace created through
/// the other's store is started by the leader at once. When the leader dies
/// (its task is dropped: no lease given up), the other takes over after a
/// lease's length and converges what changed meanwhile; a leader that stops
/// gives the lease up, and the other takes over at once.
#[tokio::test]
async fn one_replica_leads_and_another_takes_over() {
    use controller::leader::{lead, Election};
    let f = fixture(Engine::Postgres, ProfileSpec::standard()).await;
    let other = Store::connect(&f._db.url).await.unwrap();
    let (ctx_a, rt_a) = replica(&f, &f.store);
    let (ctx_b, rt_b) = replica(&f, &other);
    let lease = Duration::from_millis(800);
    // Holders of another machine: no shortcut through this machine's pids.
    let election = |who: &str| Election {
        holder: format!("elsewhere-{who}:1:1"),
        lease,
    };
    let (stop_a, stopped_a) = tokio::sync::oneshot::channel::<()>();
    let a = tokio::spawn(lead(ctx_a, election("a"), async {
        let _ = stopped_a.await;
    }));
    until("a leads", async || {
        f.store.lease("controller").await.unwrap().is_some()
    })
    .await;
    let (stop_b, stopped_b) = tokio::sync::oneshot::channel::<()>();
    let b = tokio::spawn(lead(ctx_b.clone(), election("b"), async {
        let _ = stopped_b.await;
    }));

    // Created through b's store: a's controller starts it, with no resync.
    let profile = other
        .profile(&Name::parse("standard").unwrap())
        .await
        .unwrap();
    let mut tx = other.begin().await.unwrap();
    let one = tx
        .insert_workspace(
            &f.owner,
            &Name::parse("one").unwrap(),
            &profile,
            DesiredState::Running,
        )
        .await
        .unwrap()
        .id;
    tx.commit().await.unwrap();
    until("started by a", async || starts(&rt_a) == 1).await;
    tokio::time::sleep(lease * 2).await;
    assert_eq!(starts(&rt_b), 0, "b only follows");
    assert_eq!(
        f.store.lease("controller").await.unwrap().unwrap().holder,
        "elsewhere-a:1:1"
    );

    // a dies. b takes over (its runtime now holds what runs) and converges
    // what was asked meanwhile.
    a.abort();
    let _ = a.await;
    drop(stop_a);
    rt_b.set(
        &one,
        Observed::Running {
            upstream: FakeRuntime::upstream_of(&one),
        },
    );
    let mut tx = f.store.begin().await.unwrap();
    let two = tx
        .insert_workspace(
            &f.owner,
            &Name::parse("two").unwrap(),
            &profile,
            DesiredState::Running,
        )
        .await
        .unwrap()
        .id;
    tx.commit().await.unwrap();
    until("b took over", async || {
        f.store.lease("controller").await.unwrap().unwrap().holder == "elsewhere-b:1:1"
    })
    .await;
    until("two started by b", async || {
        f.state(&two).await == WorkspaceState::Running
    })
    .await;
    assert_eq!(
        rt_b.calls(),
        [format!("start {two}")],
        "one was adopted, not restarted"
    );
    assert_eq!(f.state(&one).await, WorkspaceState::Running);

    // b stops: it gives the lease up at once.
    stop_b.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(15), b)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(f.store.lease("controller").await.unwrap(), None);
    other.close().await;
}
