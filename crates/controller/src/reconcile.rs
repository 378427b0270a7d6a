//! One reconcile: from the stored spec and the observed runtime state, one step.

use model::WorkspaceId;
use std::time::Duration;

use model::hub::{access_scopes, client_id, oauth_callback_url, server_name};
use model::secret::{MintedToken, Secret};
use model::AuditEntry;
use model::{
    Condition, ConditionKind, DesiredState, IdleAction, Outcome, ProfileSpec, Transition,
    Workspace, WorkspaceState, WorkspaceStatus,
};
use model::{ScopeSet, TokenKind};
use runtime::{Observed, WorkspaceRef};
use store::{NewToken, StoreError, Tx};

use crate::{Ctx, ReconcileError};

/// What the scheduler should do after a successful reconcile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Look again after this long (a step is in flight).
    Requeue(Duration),
    /// Settled: look again on the next change or resync.
    AwaitChange,
    /// The workspace no longer exists.
    Gone,
}

/// What one reconcile works from, read fresh at its start.
#[derive(Debug)]
struct Seen {
    ws: Workspace,
    profile: model::Profile,
    observed: Observed,
    now: model::Millis,
}

/// How the step ended.
enum Acted {
    /// The workspace is gone: resources released, record removed.
    Removed,
    /// The status to write, and what the scheduler should do next.
    Then(WorkspaceStatus, Action),
}

fn store_err(id: &WorkspaceId) -> impl Fn(StoreError) -> ReconcileError + Copy + '_ {
    move |source| ReconcileError::Store {
        id: id.to_owned(),
        source,
    }
}

fn runtime_err(id: &WorkspaceId) -> impl Fn(runtime::RuntimeError) -> ReconcileError + Copy + '_ {
    move |source| ReconcileError::Runtime {
        id: id.to_owned(),
        source,
    }
}

/// Brings workspace `id` one step toward its spec: observes (the store's spec
/// and the runtime's view, after the culler's policy), acts (at most one step),
/// and writes what it saw and did as the status.
pub async fn reconcile(id: &WorkspaceId, ctx: &Ctx) -> Result<Action, ReconcileError> {
    let Some(seen) = observe(id, ctx).await? else {
        return Ok(Action::Gone);
    };
    match act(id, ctx, &seen).await? {
        Acted::Removed => Ok(Action::Gone),
        Acted::Then(status, action) => {
            write(id, ctx, &seen, status).await?;
            Ok(action)
        }
    }
}

/// Reads the workspace, its profile and what the runtime observes; applies
/// the culler's policy first. `None`: the workspace no longer exists.
async fn observe(id: &WorkspaceId, ctx: &Ctx) -> Result<Option<Seen>, ReconcileError> {
    let (store_err, runtime_err) = (store_err(id), runtime_err(id));
    let now = ctx.clock.now();
    let mut ws = match ctx.store.workspace(id).await {
        Ok(ws) => ws,
        Err(StoreError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(store_err(e)),
    };
    let profile = ctx
        .store
        .profile(&ws.spec.profile)
        .await
        .map_err(store_err)?;
    if cull(ctx, &ws, &profile.spec, now)
        .await
        .map_err(store_err)?
    {
        ws = ctx.store.workspace(id).await.map_err(store_err)?;
    }
    let observed = ctx.runtime.observe(id).await.map_err(runtime_err)?;
    Ok(Some(Seen {
        ws,
        profile,
        observed,
        now,
    }))
}

/// Takes at most one step toward the spec; the status it leads to.
async fn act(id: &WorkspaceId, ctx: &Ctx, seen: &Seen) -> Result<Acted, ReconcileError> {
    let (store_err, runtime_err) = (store_err(id), runtime_err(id));
    let Seen {
        ws,
        profile,
        observed,
        now,
    } = seen;
    let now = *now;
    let deleting = ws.deletion_requested_at.is_some();
    let mut status = ws.status.clone();
    let before = status.state;
    set_state(
        &mut status,
        observed_state(observed, before, ws.spec.desired),
        now,
    );
    if let Observed::Failed { reason, message } = observed {
        set_condition(
            &mut status,
            ConditionKind::AppExited,
            true,
            reason,
            message,
            now,
        );
        if before != WorkspaceState::Failed {
            // A new exit: release what the start made (the log stays), and
            // count it unless the app had run for a good while.
            ctx.runtime.stop(id).await.map_err(runtime_err)?;
            let ran_long = before == WorkspaceState::Running
                && status
                    .started_at
                    .is_some_and(|at| now - at >= RAN_LONG_ENOUGH_MS);
            if ran_long {
                status.failed_starts = 0;
            }
            failed_start(ctx, &mut status, message, now);
        }
    }

    disk_condition(ctx, id, &mut status, now).await;

    let step = match Transition::plan(status.state, ws.spec.desired, deleting) {
        Transition::Start if status.state == WorkspaceState::Failed => {
            if ws.observed_generation != ws.generation {
                // Someone asked for it again: a fresh start, a fresh count.
                status.failed_starts = 0;
                status.retry_at = None;
                Transition::Start
            } else if status.gave_up() || status.retry_at.is_some_and(|at| now < at) {
                Transition::Settled
            } else {
                Transition::Start
            }
        }
        step => step,
    };
    let mut action = Action::AwaitChange;
    match step {
        Transition::Delete => {
            ctx.runtime
                .delete(id, ws.keep_files)
                .await
                .map_err(runtime_err)?;
            let mut tx = ctx.store.begin_background().await.map_err(store_err)?;
            tx.remove_workspace(id).await.map_err(store_err)?;
            tx.audit(&system_audit(
                model::AuditAction::WorkspaceRemove,
                ws,
                "resources released",
            ))
            .await
            .map_err(store_err)?;
            tx.commit().await.map_err(store_err)?;
            return Ok(Acted::Removed);
        }
        Transition::Start => {
            let mut tx = ctx.store.begin_background().await.map_err(store_err)?;
            let uid = tx
                .ensure_uid(&ws.owner_id, ctx.config.uid_base)
                .await
                .map_err(store_err)?;
            let token = server_token(&mut tx, ws).await.map_err(store_err)?;
            tx.commit().await.map_err(store_err)?;
            let base_url = model::hub::base_url(&ws.owner, &ws.name);
            let (env, secrets) = hub_env(ws, &token);
            let r = WorkspaceRef {
                id: ws.id.clone(),
                owner: ws.owner.clone(),
                name: ws.name.clone(),
                uid: u32::try_from(uid).unwrap_or(u32::MAX),
                env,
                secrets,
                image: None,
                base_url,
                profile_name: profile.name.clone(),
                profile: profile.spec.clone(),
            };
            match ctx.runtime.start(&r).await {
                Ok(()) => {
                    set_state(&mut status, WorkspaceState::Starting, now);
                    status.message = None;
                    status.retry_at = None;
                    set_condition(
                        &mut status,
                        ConditionKind::StartFailed,
                        false,
                        "Started",
                        "",
                        now,
                    );
                    set_condition(
                        &mut status,
                        ConditionKind::BackOff,
                        false,
                        "Started",
                        "",
                        now,
                    );
                    action = Action::Requeue(poll_after(ctx, &status, now));
                }
                Err(e) if !e.retryable() => {
                    set_state(&mut status, WorkspaceState::Failed, now);
                    status.message = Some(e.to_string());
                    set_condition(
                        &mut status,
                        ConditionKind::StartFailed,
                        true,
                        "Permanent",
                        &e.to_string(),
                        now,
                    );
                }
                Err(e) => return Err(runtime_err(e)),
            }
        }
        Transition::Stop => {
            set_state(&mut status, WorkspaceState::Stopping, now);
            ctx.runtime.stop(id).await.map_err(runtime_err)?;
            let mut tx = ctx.store.begin_background().await.map_err(store_err)?;
            tx.delete_workspace_tokens(id, TokenKind::Server)
                .await
                .map_err(store_err)?;
            tx.commit().await.map_err(store_err)?;
            set_state(&mut status, WorkspaceState::Stopped, now);
            status.failed_starts = 0;
            status.retry_at = None;
        }
        Transition::Pause => {
            ctx.runtime.pause(id).await.map_err(runtime_err)?;
            set_state(&mut status, WorkspaceState::Paused, now);
        }
        Transition::Resume => {
            ctx.runtime.resume(id).await.map_err(runtime_err)?;
            set_state(&mut status, WorkspaceState::Running, now);
        }
        Transition::Wait => {
            let timeout = profile.spec.start_timeout_secs as i64 * 1000;
            if status.state == WorkspaceState::Starting
                && now - status.since.unwrap_or(now) > timeout
            {
                let tail = ctx.runtime.log_tail(id, 4096).await.unwrap_or_default();
                ctx.runtime.stop(id).await.map_err(runtime_err)?;
                set_state(&mut status, WorkspaceState::Failed, now);
                let mut message = format!(
                    "the app did not answer within the profile's start timeout ({} s)",
                    profile.spec.start_timeout_secs
                );
                if let Observed::Starting { waiting: Some(why) } = &observed {
                    message = format!("{message}; waiting: {why}");
                }
                if let Some(line) = model::last_line(&tail) {
                    message = format!("{message}; its log ends: {line}");
                }
                set_condition(
                    &mut status,
                    ConditionKind::StartTimeout,
                    true,
                    "Timeout",
                    &message,
                    now,
                );
                failed_start(ctx, &mut status, &message, now);
            } else {
                action = Action::Requeue(poll_after(ctx, &status, now));
            }
        }
        Transition::Settled => {}
    }
    if status.state == WorkspaceState::Running
        && status
            .started_at
            .is_none_or(|s| s < status.since.unwrap_or(0))
    {
        status.started_at = status.since;
    }
    let ready =
        matches!(observed, Observed::Running { .. }) && status.state == WorkspaceState::Running;
    // Why a starting app does not answer yet, where the runtime says.
    let waiting = match &observed {
        Observed::Starting { waiting: Some(why) } if status.state == WorkspaceState::Starting => {
            why.as_str()
        }
        _ => "",
    };
    set_condition(
        &mut status,
        ConditionKind::Ready,
        ready,
        if ready { "AppAnswers" } else { "NotRunning" },
        waiting,
        now,
    );
    set_condition(&mut status, ConditionKind::Reconciled, true, "Ok", "", now);
    if status.state == WorkspaceState::Failed && ws.spec.desired != DesiredState::Stopped {
        if let Some(at) = status.retry_at {
            action = Action::Requeue(Duration::from_millis(u64::try_from(at - now).unwrap_or(0)));
        }
    }

    Ok(Acted::Then(status, action))
}

/// Writes `status` for the generation acted on, with where the proxies
/// (every replica's) send the workspace's traffic; nothing if nothing changed.
async fn write(
    id: &WorkspaceId,
    ctx: &Ctx,
    seen: &Seen,
    status: WorkspaceStatus,
) -> Result<(), ReconcileError> {
    let store_err = store_err(id);
    let ws = &seen.ws;
    let upstream = match (&seen.observed, status.state) {
        (Observed::Running { upstream }, WorkspaceState::Running) => Some(upstream.clone()),
        _ => None,
    };
    if status != ws.status || ws.observed_generation != ws.generation || upstream != ws.upstream {
        let mut tx = ctx.store.begin_background().await.map_err(store_err)?;
        tx.set_workspace_status(id, &status, ws.generation, upstream.as_ref())
            .await
            .map_err(store_err)?;
        tx.commit().await.map_err(store_err)?;
    }
    Ok(())
}

/// `DiskFull`: whether the home is at its limit, where the app gets "No space
/// left on device". Looked at while the home is mounted (the runtime says
/// `None` otherwise, and the condition stays as it was last seen).
async fn disk_condition(ctx: &Ctx, id: &WorkspaceId, status: &mut WorkspaceStatus, now: i64) {
    let disk = match ctx.runtime.disk(id).await {
        Ok(Some(disk)) => disk,
        Ok(None) => return,
        Err(e) => {
            tracing::debug!(workspace.id = %id, error = %model::error_chain(&e), "no disk use");
            return;
        }
    };
    if disk.is_full() {
        let message = format!(
            "the home is full ({} limit): the app gets \"No space left on device\"; \
             delete files, or move the workspace to a profile with a larger disk",
            model::bytes(disk.size_bytes)
        );
        set_condition(
            status,
            ConditionKind::DiskFull,
            true,
            "HomeFull",
            &message,
            now,
        );
    } else {
        set_condition(status, ConditionKind::DiskFull, false, "HasRoom", "", now);
    }
}

/// An app that ran at least this long before it exited starts a new count of
/// failed starts (as a Kubernetes container's back-off resets after ten minutes).
const RAN_LONG_ENOUGH_MS: i64 = 10 * 60 * 1000;

/// Records one more failed start, ending in `line`: the next try is due after
/// the back-off (1 s, doubling), or, after `max_failed_starts` in a row, there
/// is none and the workspace stays failed until someone starts it again.
fn failed_start(ctx: &Ctx, status: &mut WorkspaceStatus, line: &str, now: i64) {
    status.failed_starts += 1;
    let (n, max) = (status.failed_starts, ctx.config.max_failed_starts);
    if n >= max {
        status.retry_at = None;
        status.message = Some(format!(
            "{line} (gave up after {n} failed starts in a row; start it again to retry)"
        ));
        set_condition(
            status,
            ConditionKind::StartFailed,
            true,
            "CrashLoop",
            line,
            now,
        );
        set_condition(status, ConditionKind::BackOff, false, "GaveUp", "", now);
    } else {
        let delay = crate::backoff(n, ctx.config.max_backoff, rand::random());
        status.retry_at = Some(now + delay.as_millis() as i64);
        let secs = delay.as_secs_f64().round().max(1.0);
        status.message = Some(format!(
            "{line} (failed start {n} of {max}; trying again in {secs} s)"
        ));
        let next = format!("failed start {n} of {max}; next try in {secs} s");
        set_condition(
            status,
            ConditionKind::BackOff,
            true,
            "CrashLoopBackOff",
            &next,
            now,
        );
    }
}

/// How often a starting workspace is looked at where the runtime tells when
/// its app answers.
const READY_EVENTS_POLL: Duration = Duration::from_secs(2);

/// How soon to look at a workspace in transition again: often at first (most
/// apps are ready within a second), then backing off to `config.poll`; seldom
/// where the runtime tells ([`runtime::Capabilities::ready_events`]).
fn poll_after(ctx: &Ctx, status: &WorkspaceStatus, now: i64) -> Duration {
    if ctx.runtime.capabilities().ready_events {
        // The runtime tells when the app answers; this only bounds the wait
        // for the start timeout, or for an event that was lost.
        return READY_EVENTS_POLL;
    }
    let elapsed = u64::try_from(now - status.since.unwrap_or(now)).unwrap_or(0);
    Duration::from_millis((25 + elapsed / 10).min(ctx.config.poll.as_millis() as u64))
}

/// The state a runtime observation means, given the last known state and
/// what is wanted.
fn observed_state(o: &Observed, last: WorkspaceState, desired: DesiredState) -> WorkspaceState {
    use WorkspaceState as S;
    match o {
        // A failure stays one (the runtime was stopped after it) until the
        // next start or stop.
        Observed::Absent | Observed::Stopped if last == S::Failed => last,
        // Never started yet, and about to be.
        Observed::Absent if last == S::Pending && desired != DesiredState::Stopped => last,
        Observed::Absent | Observed::Stopped => S::Stopped,
        Observed::Starting { .. } => S::Starting,
        Observed::Running { .. } => S::Running,
        Observed::Paused => S::Paused,
        Observed::Failed { .. } => S::Failed,
    }
}

fn set_state(status: &mut WorkspaceStatus, state: WorkspaceState, now: i64) {
    if status.state != state {
        status.state = state;
        status.since = Some(now);
    }
}

/// Sets the condition of `kind`; its time moves only when its status changes.
pub(crate) fn set_condition(
    status: &mut WorkspaceStatus,
    kind: ConditionKind,
    value: bool,
    reason: &str,
    message: &str,
    now: i64,
) {
    match status.conditions.iter_mut().find(|c| c.kind == kind) {
        Some(c) if c.status == value && c.reason == reason && c.message == message => {}
        Some(c) => {
            if c.status != value {
                c.at = now;
            }
            c.status = value;
            c.reason = reason.to_owned();
            c.message = message.to_owned();
        }
        None => status.conditions.push(Condition {
            kind,
            status: value,
            reason: reason.to_owned(),
            message: message.to_owned(),
            at: now,
        }),
    }
}

fn system_audit(action: model::AuditAction, ws: &Workspace, detail: &str) -> AuditEntry {
    AuditEntry {
        actor_id: None,
        actor: None,
        action,
        target_type: "workspace".into(),
        target: format!("{}/{}", ws.owner, ws.name),
        outcome: Outcome::Success,
        source: None,
        request_id: None,
        detail: Some(format!("id={} {detail}", ws.id)),
    }
}

/// The culler: past its max lifetime a workspace is deleted; running past its idle
/// timeout (since its last activity, or its start) it is stopped or paused, as its
/// profile says. Returns whether
/// it changed the desired state.
async fn cull(ctx: &Ctx, ws: &Workspace, spec: &ProfileSpec, now: i64) -> Result<bool, StoreError> {
    if ws.deletion_requested_at.is_some() {
        return Ok(false);
    }
    if let Some(ttl) = spec.max_lifetime_secs {
        if now >= ws.created_at + ttl as i64 * 1000 {
            let mut tx = ctx.store.begin_background().await?;
            tx.request_workspace_deletion(&ws.id, false).await?;
            tx.audit(&system_audit(
                model::AuditAction::WorkspaceExpire,
                ws,
                &format!("max lifetime {ttl}s reached"),
            ))
            .await?;
            tx.commit().await?;
            return Ok(true);
        }
    }
    if let Some(idle) = spec.idle_timeout_secs {
        let active_since = ws
            .last_activity
            .or(ws.status.started_at)
            .unwrap_or(ws.created_at);
        if ws.spec.desired != DesiredState::Stopped
            && ws.status.state == WorkspaceState::Running
            && now >= active_since + idle as i64 * 1000
        {
            let to = match spec.idle_action {
                IdleAction::Stop => DesiredState::Stopped,
                IdleAction::Pause => DesiredState::Paused,
            };
            let mut tx = ctx.store.begin_background().await?;
            tx.update_workspace_spec(&ws.id, None, Some(to)).await?;
            tx.audit(&system_audit(
                model::AuditAction::WorkspaceCull,
                ws,
                &format!("idle for {idle}s: {}", spec.idle_action.as_str()),
            ))
            .await?;
            tx.commit().await?;
            return Ok(true);
        }
    }
    Ok(false)
}

/// A new token for the workspace's app, replacing the one of its last start:
/// it reports the app's activity, and is its OAuth client's secret (JupyterHub's
/// `server` role).
async fn server_token(tx: &mut Tx, ws: &Workspace) -> store::Result<Secret> {
    tx.delete_workspace_tokens(&ws.id, TokenKind::Server)
        .await?;
    let minted = MintedToken::new();
    let [server_access, _] = access_scopes(ws);
    let scopes = format!("users:activity!user={} {server_access}", ws.owner);
    let scopes = ScopeSet::parse(&scopes).expect("names make valid filters");
    tx.insert_token_of(
        &NewToken {
            user_id: ws.owner_id.clone(),
            hash: minted.hash,
            prefix: minted.prefix,
            note: format!("server {}/{}", ws.owner, ws.name),
            scopes,
            expires_at: None,
        },
        TokenKind::Server,
        Some(&ws.id),
    )
    .await?;
    Ok(minted.secret)
}

/// The environment a JupyterHub spawner gives a single-user server, except
/// what every runtime gives every app from the [`WorkspaceRef`]
/// (`JUPYTERHUB_USER`, `JUPYTERHUB_SERVICE_PREFIX`) and what depends on where
/// it runs the app (`JUPYTERHUB_API_URL`, `JUPYTERHUB_ACTIVITY_URL`,
/// `JUPYTERHUB_SERVICE_URL`); and, apart, its secrets (the server token, under
/// both of JupyterHub's names).
fn hub_env(ws: &Workspace, token: &Secret) -> (runtime::Env, runtime::SecretEnv) {
    let scopes = serde_json::to_string(&access_scopes(ws)).expect("strings serialize");
    let env = [
        ("JUPYTERHUB_CLIENT_ID", client_id(&ws.id)),
        ("JUPYTERHUB_HOST", String::new()),
        ("JUPYTERHUB_OAUTH_CALLBACK_URL", oauth_callback_url(ws)),
        ("JUPYTERHUB_OAUTH_SCOPES", scopes.clone()),
        ("JUPYTERHUB_OAUTH_ACCESS_SCOPES", scopes),
        ("JUPYTERHUB_OAUTH_CLIENT_ALLOWED_SCOPES", "[]".to_owned()),
        ("JUPYTERHUB_SERVER_NAME", server_name(ws).to_owned()),
        ("JUPYTERHUB_BASE_URL", "/".to_owned()),
        ("JUPYTERHUB_COOKIE_HOST_PREFIX_ENABLED", "0".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let secrets = ["JUPYTERHUB_API_TOKEN", "JPY_API_TOKEN"]
        .into_iter()
        .map(|k| (k.to_owned(), token.clone()))
        .collect();
    (env, secrets)
}
