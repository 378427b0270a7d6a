//! Store tests: every query runs against SQLite and a real PostgreSQL.

use model::{
    AuditEntry, DesiredState, Name, Outcome, ProfileSpec, QuotaOverride, ScopeSet, WorkspaceState,
    WorkspaceStatus,
};
use store::{
    Among, AuditFilter, NewProfile, NewToken, NewUser, Store, StoreError, UserFilter, UserOrder,
    UserPatch, WorkspaceFilter,
};
use test_support::Engine;

fn name(s: &str) -> Name {
    Name::parse(s).unwrap()
}

fn audit(action: model::AuditAction, actor: &str, target: &str) -> AuditEntry {
    AuditEntry {
        actor_id: None,
        actor: Some(actor.into()),
        action,
        target_type: "test".into(),
        target: target.into(),
        outcome: Outcome::Success,
        source: Some("127.0.0.1".into()),
        request_id: None,
        detail: None,
    }
}

/// Runs `f` once per engine on a fresh, migrated store.
macro_rules! on_each_engine {
    ($f:ident) => {
        for engine in Engine::ALL {
            let db = engine.fresh().await;
            let store = Store::connect(&db.url)
                .await
                .unwrap_or_else(|e| panic!("{}: connect: {e:?}", db.engine));
            $f(&store).await;
            store.close().await;
        }
    };
}

async fn seed(store: &Store) -> (model::User, model::Profile) {
    let mut tx = store.begin().await.unwrap();
    let user = tx
        .insert_user(&NewUser {
            name: name("alice"),
            password_hash: Some("$argon2id$x".into()),
            is_admin: false,
        })
        .await
        .unwrap();
    let profile = tx
        .insert_profile(&NewProfile {
            name: name("standard"),
            spec: ProfileSpec::standard(),
        })
        .await
        .unwrap();
    tx.audit(&audit(model::AuditAction::UserCreate, "admin", "alice"))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    (user, profile)
}

/// A second user, bob: no password, no admin.
async fn insert_bob(tx: &mut store::Tx) -> model::User {
    tx.insert_user(&NewUser {
        name: name("bob"),
        password_hash: None,
        is_admin: false,
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn users_roundtrip_and_conflicts() {
    async fn t(store: &Store) {
        assert_eq!(store.count_users().await.unwrap(), 0);
        let (alice, _) = seed(store).await;
        assert_eq!(store.user(&alice.id).await.unwrap(), alice);
        let (u, hash) = store.user_credentials("alice").await.unwrap();
        assert_eq!(
            (u.name.as_str(), hash.as_deref()),
            ("alice", Some("$argon2id$x"))
        );
        let mut tx = store.begin().await.unwrap();
        let dup = tx
            .insert_user(&NewUser {
                name: name("alice"),
                password_hash: None,
                is_admin: true,
            })
            .await;
        assert!(matches!(dup, Err(StoreError::Conflict { .. })), "{dup:?}");
        drop(tx);
        let mut tx = store.begin().await.unwrap();
        let bob = tx
            .insert_user(&NewUser {
                name: name("bob"),
                password_hash: None,
                is_admin: true,
            })
            .await
            .unwrap();
        let bob2 = tx
            .update_user(
                &bob.id,
                &UserPatch {
                    disabled: Some(true),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert!(bob2.disabled && bob2.is_admin);
        tx.commit().await.unwrap();
        let page1 = store.users(None, 1).await.unwrap();
        let page2 = store.users(Some("alice"), 10).await.unwrap();
        assert_eq!(page1[0].name.as_str(), "alice");
        assert_eq!(
            page2.iter().map(|u| u.name.as_str()).collect::<Vec<_>>(),
            ["bob"]
        );
        assert!(matches!(
            store.user_by_name(&name("carol")).await,
            Err(StoreError::NotFound { what: "user" })
        ));
    }
    on_each_engine!(t);
}

#[tokio::test]
async fn a_rolled_back_transaction_leaves_nothing() {
    async fn t(store: &Store) {
        let mut tx = store.begin().await.unwrap();
        tx.insert_user(&NewUser {
            name: name("ghost"),
            password_hash: None,
            is_admin: false,
        })
        .await
        .unwrap();
        tx.audit(&audit(model::AuditAction::UserCreate, "admin", "ghost"))
            .await
            .unwrap();
        drop(tx);
        assert_eq!(store.count_users().await.unwrap(), 0);
        let all = store
            .audit(&AuditFilter {
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(
            all.is_empty(),
            "audit record must roll back with its change"
        );
    }
    on_each_engine!(t);
}

#[tokio::test]
async fn uids_are_allocated_once_and_never_shared() {
    async fn t(store: &Store) {
        let (alice, _) = seed(store).await;
        let mut tx = store.begin().await.unwrap();
        let bob = insert_bob(&mut tx).await;
        let a = tx.ensure_uid(&alice.id, 200_000).await.unwrap();
        let b = tx.ensure_uid(&bob.id, 200_000).await.unwrap();
        assert_eq!((a, b), (200_000, 200_001));
        assert_eq!(
            tx.ensure_uid(&alice.id, 200_000).await.unwrap(),
            a,
            "stable"
        );
        assert!(matches!(
            tx.ensure_uid("nobody", 200_000).await,
            Err(StoreError::NotFound { .. })
        ));
        tx.commit().await.unwrap();
    }
    on_each_engine!(t);
}

#[tokio::test]
async fn groups_and_members() {
    async fn t(store: &Store) {
        let (alice, _) = seed(store).await;
        let mut tx = store.begin().await.unwrap();
        let g = tx.insert_group(&name("ml")).await.unwrap();
        tx.add_member(&g.id, &alice.id).await.unwrap();
        tx.add_member(&g.id, &alice.id).await.unwrap();
        tx.commit().await.unwrap();
        let got = store.group(&name("ml")).await.unwrap();
        assert_eq!(got.members, vec![name("alice")]);
        assert_eq!(store.groups_of(&alice.id).await.unwrap(), vec![name("ml")]);
        let mut tx = store.begin().await.unwrap();
        tx.remove_member(&g.id, &alice.id).await.unwrap();
        tx.delete_group(&g.id).await.unwrap();
        assert!(matches!(
            tx.delete_group(&g.id).await,
            Err(StoreError::NotFound { .. })
        ));
        tx.commit().await.unwrap();
        assert!(store.groups().await.unwrap().is_empty());
    }
    on_each_engine!(t);
}

#[tokio::test]
async fn tokens_and_sessions() {
    async fn t(store: &Store) {
        let (alice, _) = seed(store).await;
        let mut tx = store.begin().await.unwrap();
        let tok = tx
            .insert_token(&NewToken {
                user_id: alice.id.clone(),
                hash: "h1".into(),
                prefix: "berth_ab".into(),
                note: "cli".into(),
                scopes: ScopeSet::parse("servers").unwrap(),
                expires_at: Some(42),
            })
            .await
            .unwrap();
        tx.insert_session("s1", &alice.id, "csrf1", i64::MAX)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let (t2, owner) = store.token_by_hash("h1").await.unwrap();
        assert_eq!((t2, owner.id), (tok.clone(), alice.id.clone()));
        store
            .touch_token(&tok.id, &alice.id, 1_000_000)
            .await
            .unwrap();
        store
            .touch_token(&tok.id, &alice.id, 1_000_001)
            .await
            .unwrap();
        assert_eq!(
            store.tokens(&alice.id).await.unwrap()[0].last_used_at,
            Some(1_000_000)
        );
        // The user's activity moves with each use.
        assert_eq!(
            store.user(&alice.id).await.unwrap().last_activity,
            Some(1_000_001)
        );
        let (s, u) = store.session_by_hash("s1").await.unwrap();
        assert_eq!((s.csrf.as_str(), u.name.as_str()), ("csrf1", "alice"));
        // A new password ends sessions.
        let mut tx = store.begin().await.unwrap();
        tx.update_user(
            &alice.id,
            &UserPatch {
                password_hash: Some("new".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        tx.delete_token("someone-else", &tok.id).await.unwrap_err();
        drop(tx);
        assert!(store.session_by_hash("s1").await.is_ok(), "rolled back");
        let mut tx = store.begin().await.unwrap();
        tx.delete_token(&alice.id, &tok.id).await.unwrap();
        tx.delete_session("s1").await.unwrap();
        tx.commit().await.unwrap();
        assert!(matches!(
            store.token_by_hash("h1").await,
            Err(StoreError::NotFound { .. })
        ));
        assert!(matches!(
            store.session_by_hash("s1").await,
            Err(StoreError::NotFound { .. })
        ));
    }
    on_each_engine!(t);
}

#[tokio::test]
async fn profiles_roundtrip_and_in_use() {
    async fn t(store: &Store) {
        store.ping().await.unwrap();
        let (alice, profile) = seed(store).await;
        assert_eq!(store.profile(&name("standard")).await.unwrap(), profile);
        assert_eq!(store.profiles().await.unwrap(), vec![profile.clone()]);
        let mut spec = ProfileSpec::standard();
        spec.app = model::App::Command {
            argv: vec!["python3".into(), "-m".into(), "http.server".into()],
            strip_prefix: false,
        };
        spec.idle_timeout_secs = None;
        spec.cost_per_hour_micros = 120_000;
        let mut tx = store.begin().await.unwrap();
        let updated = tx
            .update_profile(&NewProfile {
                name: name("standard"),
                spec: spec.clone(),
            })
            .await
            .unwrap();
        tx.insert_workspace(&alice, &name("lab"), &updated, DesiredState::Stopped)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let got = store.profile(&name("standard")).await.unwrap();
        assert_eq!(
            (got.spec, got.id, got.created_at),
            (spec, profile.id.clone(), profile.created_at)
        );
        let mut tx = store.begin().await.unwrap();
        let err = tx.delete_profile(&profile.id).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    }
    on_each_engine!(t);
}

#[tokio::test]
async fn workspaces_lifecycle_and_filters() {
    async fn t(store: &Store) {
        let (alice, profile) = seed(store).await;
        let mut tx = store.begin().await.unwrap();
        let bob = insert_bob(&mut tx).await;
        let w1 = tx
            .insert_workspace(&alice, &name("lab"), &profile, DesiredState::Stopped)
            .await
            .unwrap();
        let w2 = tx
            .insert_workspace(&bob, &name("lab"), &profile, DesiredState::Running)
            .await
            .unwrap();
        let dup = tx
            .insert_workspace(&alice, &name("lab"), &profile, DesiredState::Stopped)
            .await;
        assert!(matches!(dup, Err(StoreError::Conflict { .. })));
        drop(tx);
        // The conflict rolled everything back: redo without it.
        let mut tx = store.begin().await.unwrap();
        let bob = insert_bob(&mut tx).await;
        let w1 = tx
            .insert_workspace(&alice, &w1.name, &profile, DesiredState::Stopped)
            .await
            .unwrap();
        let w2 = tx
            .insert_workspace(&bob, &w2.name, &profile, DesiredState::Running)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(store.workspace(&w1.id).await.unwrap(), w1);
        assert_eq!(
            store.workspace_ids().await.unwrap(),
            [w1.id.as_str(), w2.id.as_str()]
        );

        let mut tx = store.begin().await.unwrap();
        tx.update_workspace_spec(&w1.id, None, Some(DesiredState::Running))
            .await
            .unwrap();
        tx.update_workspace_spec(&w1.id, None, Some(DesiredState::Running))
            .await
            .unwrap();
        let mut status = WorkspaceStatus::pending();
        status.state = WorkspaceState::Running;
        status.message = Some("ready".into());
        tx.set_workspace_status(&w2.id, &status, 1, None)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let w1b = store.workspace(&w1.id).await.unwrap();
        assert_eq!(
            (w1b.generation, w1b.spec.desired),
            (2, DesiredState::Running),
            "no-op keeps generation"
        );
        let w2b = store.workspace(&w2.id).await.unwrap();
        assert_eq!((w2b.status, w2b.observed_generation), (status, 1));

        let all = |f: WorkspaceFilter| async move {
            store
                .workspaces(&WorkspaceFilter { limit: 100, ..f })
                .await
                .unwrap()
                .into_iter()
                .map(|w| w.id)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            all(WorkspaceFilter::default()).await,
            [w1.id.as_str(), w2.id.as_str()]
        );
        assert_eq!(
            all(WorkspaceFilter {
                owner_id: Some(bob.id.to_string()),
                ..Default::default()
            })
            .await,
            [w2.id.as_str()]
        );
        assert_eq!(
            all(WorkspaceFilter {
                state: Some(WorkspaceState::Running),
                ..Default::default()
            })
            .await,
            [w2.id.as_str()]
        );
        assert_eq!(
            all(WorkspaceFilter {
                after: Some(w1.id.to_string()),
                ..Default::default()
            })
            .await,
            [w2.id.as_str()]
        );
        assert_eq!(
            all(WorkspaceFilter {
                profile: Some(name("nope")),
                ..Default::default()
            })
            .await,
            Vec::<String>::new()
        );
        let usage = store.begin().await.unwrap().usage(&alice.id).await.unwrap();
        let want = store::Usage {
            workspaces: 1,
            cpu_millis: 2000,
            memory_bytes: 8 << 30,
        };
        assert_eq!(usage, want);

        let mut tx = store.begin().await.unwrap();
        tx.request_workspace_deletion(&w1.id, true).await.unwrap();
        // A second request changes nothing, not even what happens to the files.
        tx.request_workspace_deletion(&w1.id, false).await.unwrap();
        let err = tx
            .update_workspace_spec(&w1.id, None, Some(DesiredState::Stopped))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict { .. }));
        tx.commit().await.unwrap();
        let gone = store.workspace(&w1.id).await.unwrap();
        assert!(gone.deletion_requested_at.is_some());
        assert!(gone.keep_files);
        assert_eq!(gone.generation, 3);
        let mut tx = store.begin().await.unwrap();
        let err = tx.delete_user(&alice.id).await.unwrap_err();
        assert!(
            matches!(err, StoreError::Conflict { .. }),
            "owner of workspaces"
        );
        tx.remove_workspace(&w1.id).await.unwrap();
        tx.delete_user(&alice.id).await.unwrap();
        tx.commit().await.unwrap();
    }
    on_each_engine!(t);
}

#[tokio::test]
async fn audit_filters_and_pages_newest_first() {
    async fn t(store: &Store) {
        for (action, actor) in [
            (model::AuditAction::UserCreate, "admin"),
            (model::AuditAction::WorkspaceCreate, "alice"),
            (model::AuditAction::WorkspaceStart, "alice"),
            (model::AuditAction::TokenCreate, "bob"),
        ] {
            store.audit_alone(&audit(action, actor, "x")).await.unwrap();
        }
        let list = |f: AuditFilter| async move {
            store
                .audit(&AuditFilter {
                    limit: f.limit.max(1),
                    ..f
                })
                .await
                .unwrap()
                .into_iter()
                .map(|a| a.entry.action.as_str().to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            list(AuditFilter {
                limit: 10,
                ..Default::default()
            })
            .await,
            [
                "token.create",
                "workspace.start",
                "workspace.create",
                "user.create"
            ]
        );
        assert_eq!(
            list(AuditFilter {
                limit: 10,
                actor: Some("alice".into()),
                ..Default::default()
            })
            .await,
            ["workspace.start", "workspace.create"]
        );
        assert_eq!(
            list(AuditFilter {
                limit: 10,
                action: Some("workspace".into()),
                ..Default::default()
            })
            .await,
            ["workspace.start", "workspace.create"]
        );
        assert_eq!(
            list(AuditFilter {
                limit: 10,
                action: Some("workspace.start".into()),
                ..Default::default()
            })
            .await,
            ["workspace.start"]
        );
        let first = store
            .audit(&AuditFilter {
                limit: 1,
                ..Default::default()
            })
            .await
            .unwrap();
        let rest = list(AuditFilter {
            limit: 10,
            before: Some(first[0].id.clone()),
            ..Default::default()
        })
        .await;
        assert_eq!(rest.len(), 3);
        let future = model::now_millis() + 60_000;
        assert!(list(AuditFilter {
            limit: 10,
            since: Some(future),
            ..Default::default()
        })
        .await
        .is_empty());
        assert_eq!(
            list(AuditFilter {
                limit: 10,
                until: Some(future),
                ..Default::default()
            })
            .await
            .len(),
            4
        );
    }
    on_each_engine!(t);
}

#[tokio::test]
async fn activity_only_moves_forward() {
    async fn t(store: &Store) {
        let (alice, profile) = seed(store).await;
        let mut tx = store.begin().await.unwrap();
        let ws = tx
            .insert_workspace(&alice, &name("lab"), &profile, DesiredState::Running)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let record = |batch: Vec<(String, i64)>| async move {
            let mut tx = store.begin().await.unwrap();
            tx.record_activity(&batch).await.unwrap();
            tx.commit().await.unwrap();
        };
        record(vec![
            (ws.id.to_string(), 2_000),
            ("no-such-id".into(), 9_000),
        ])
        .await;
        record(vec![(ws.id.to_string(), 1_000)]).await;
        let seen = store.workspace(&ws.id).await.unwrap();
        assert_eq!(seen.last_activity, Some(2_000));
        let owner = store.user(&alice.id).await.unwrap();
        assert_eq!(owner.last_activity, Some(2_000));
    }
    on_each_engine!(t);
}

#[tokio::test]
async fn state_changes_are_recorded_newest_first_and_go_with_the_workspace() {
    async fn t(store: &Store) {
        let (alice, profile) = seed(store).await;
        let mut tx = store.begin().await.unwrap();
        let ws = tx
            .insert_workspace(&alice, &name("lab"), &profile, DesiredState::Running)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let write = |state: WorkspaceState, message: Option<&'static str>| {
            let id = ws.id.clone();
            async move {
                let mut status = WorkspaceStatus::pending();
                status.state = state;
                status.message = message.map(str::to_owned);
                let mut tx = store.begin().await.unwrap();
                tx.set_workspace_status(&id, &status, 1, None)
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
            }
        };
        write(WorkspaceState::Starting, Some("starting the app")).await;
        write(WorkspaceState::Running, Some("ready")).await;
        // The same state again is no change (though the status is written).
        write(WorkspaceState::Running, Some("still ready")).await;
        assert_eq!(
            store
                .workspace(&ws.id)
                .await
                .unwrap()
                .status
                .message
                .as_deref(),
            Some("still ready")
        );
        write(WorkspaceState::Stopped, None).await;

        let events = store.workspace_events(&ws.id, 100).await.unwrap();
        let seen: Vec<(WorkspaceState, &str)> = events
            .iter()
            .map(|e| (e.state, e.message.as_str()))
            .collect();
        assert_eq!(
            seen,
            [
                (WorkspaceState::Stopped, ""),
                (WorkspaceState::Running, "ready"),
                (WorkspaceState::Starting, "starting the app"),
                (WorkspaceState::Pending, "created"),
            ]
        );
        assert!(events.windows(2).all(|w| w[0].at >= w[1].at));
        assert!(events[3].at >= ws.created_at);
        let latest = store.workspace_events(&ws.id, 2).await.unwrap();
        assert_eq!(latest, events[..2]);

        // A status for no workspace is not found, and records nothing.
        let mut tx = store.begin().await.unwrap();
        let err = tx
            .set_workspace_status("no-such-id", &WorkspaceStatus::pending(), 1, None)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
        drop(tx);
        assert!(store
            .workspace_events("no-such-id", 10)
            .await
            .unwrap()
            .is_empty());

        // Only the latest EVENTS_KEPT stay.
        let mut tx = store.begin().await.unwrap();
        for i in 0..store::EVENTS_KEPT {
            let mut status = WorkspaceStatus::pending();
            status.state = if i % 2 == 0 {
                WorkspaceState::Starting
            } else {
                WorkspaceState::Stopped
            };
            status.message = Some(format!("change {i}"));
            tx.set_workspace_status(&ws.id, &status, 1, None)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
        let kept = store.workspace_events(&ws.id, 1_000).await.unwrap();
        assert_eq!(kept.len() as i64, store::EVENTS_KEPT);
        assert_eq!(
            kept.first().unwrap().message,
            format!("change {}", store::EVENTS_KEPT - 1)
        );
        assert_eq!(kept.last().unwrap().message, "change 0");

        let mut tx = store.begin().await.unwrap();
        tx.remove_workspace(&ws.id).await.unwrap();
        tx.commit().await.unwrap();
        assert!(store
            .workspace_events(&ws.id, 100)
            .await
            .unwrap()
            .is_empty());
    }
    on_each_engine!(t);
}

#[tokio::test]
async fn user_quotas_are_set_replaced_reset_and_go_with_the_user() {
    async fn t(store: &Store) {
        let (alice, _) = seed(store).await;
        assert_eq!(store.quota_override(&alice.id).await.unwrap(), None);
        let first = QuotaOverride {
            max_workspaces: Some(0),
            max_cpu_millis: Some(500),
            max_memory_bytes: None,
        };
        let mut tx = store.begin().await.unwrap();
        tx.set_quota_override(&alice.id, &first).await.unwrap();
        assert_eq!(tx.quota_override(&alice.id).await.unwrap(), Some(first));
        tx.commit().await.unwrap();
        // A second set replaces every limit, the ones it leaves out included.
        let second = QuotaOverride {
            max_memory_bytes: Some(1 << 60),
            ..Default::default()
        };
        let mut tx = store.begin().await.unwrap();
        tx.set_quota_override(&alice.id, &second).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(store.quota_override(&alice.id).await.unwrap(), Some(second));
        let all = store.quota_overrides().await.unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all.get(alice.id.as_str()), Some(&second));
        // An empty override is the default quota: no row is left.
        let mut tx = store.begin().await.unwrap();
        tx.set_quota_override(&alice.id, &QuotaOverride::default())
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(store.quota_override(&alice.id).await.unwrap(), None);
        // A user's quota goes with the user.
        let mut tx = store.begin().await.unwrap();
        tx.set_quota_override(&alice.id, &first).await.unwrap();
        tx.delete_user(&alice.id).await.unwrap();
        tx.commit().await.unwrap();
        assert!(store.quota_overrides().await.unwrap().is_empty());
    }
    on_each_engine!(t);
}

#[tokio::test]
async fn running_time_sums_the_running_spans_of_the_history() {
    async fn t(store: &Store) {
        let (alice, profile) = seed(store).await;
        let mut tx = store.begin().await.unwrap();
        let bob = insert_bob(&mut tx).await;
        let lab = tx
            .insert_workspace(&alice, &name("lab"), &profile, DesiredState::Running)
            .await
            .unwrap();
        let idle = tx
            .insert_workspace(&alice, &name("idle"), &profile, DesiredState::Stopped)
            .await
            .unwrap();
        let other = tx
            .insert_workspace(&bob, &name("lab"), &profile, DesiredState::Running)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let write = |id: model::WorkspaceId, state: WorkspaceState| async move {
            let mut status = WorkspaceStatus::pending();
            status.state = state;
            let mut tx = store.begin().await.unwrap();
            tx.set_workspace_status(&id, &status, 1, None)
                .await
                .unwrap();
            tx.commit().await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        };
        use WorkspaceState as S;
        for state in [S::Starting, S::Running, S::Stopped, S::Starting, S::Running] {
            write(lab.id.clone(), state).await;
        }
        write(other.id.clone(), S::Running).await;
        // The reference: the spans from each `running` to the next change, the
        // last one up to now.
        let now = model::now_millis() + 1000;
        let events = store.workspace_events(&lab.id, 100).await.unwrap();
        let mut want = 0;
        let mut end = now;
        for e in &events {
            if e.state == S::Running {
                want += (end - e.at) as u64;
            }
            end = e.at;
        }
        assert!(want >= 1000);
        let mine = store
            .running_millis(Some(&alice.id), None, now)
            .await
            .unwrap();
        assert_eq!(mine.get(lab.id.as_str()), Some(&want));
        assert!(!mine.contains_key(idle.id.as_str()), "never ran");
        assert!(!mine.contains_key(other.id.as_str()), "bob's");
        let one = store
            .running_millis(None, Some(lab.id.as_str()), now)
            .await
            .unwrap();
        assert_eq!(one.len(), 1);
        let all = store.running_millis(None, None, now).await.unwrap();
        assert_eq!(all.len(), 2);
        assert!(all[other.id.as_str()] >= 1000);
    }
    on_each_engine!(t);
}

/// A rename keeps the user's id (workspaces, files and tokens follow) and
/// moves tokens' filters naming them; a name taken, or a workspace that is
/// not stopped, refuses it with nothing changed.
#[tokio::test]
async fn renaming_a_user_carries_their_workspaces_and_token_filters() {
    async fn t(store: &Store) {
        let (alice, profile) = seed(store).await;
        let mut tx = store.begin().await.unwrap();
        let bob = insert_bob(&mut tx).await;
        let lab = tx
            .insert_workspace(&alice, &name("lab"), &profile, DesiredState::Stopped)
            .await
            .unwrap();
        let scopes = "read:users!user=alice access:servers!server=alice/lab read:users!user=alicia";
        tx.insert_token(&NewToken {
            user_id: bob.id.clone(),
            hash: "hb".into(),
            prefix: "berth_bb".into(),
            note: "bob's view of alice".into(),
            scopes: ScopeSet::parse(scopes).unwrap(),
            expires_at: None,
        })
        .await
        .unwrap();
        tx.commit().await.unwrap();

        let mut tx = store.begin().await.unwrap();
        let taken = tx.rename_user(&alice.id, &alice.name, &name("bob")).await;
        assert!(
            matches!(taken, Err(StoreError::Conflict { .. })),
            "{taken:?}"
        );
        drop(tx);

        let mut tx = store.begin().await.unwrap();
        let renamed = tx
            .rename_user(&alice.id, &alice.name, &name("ann"))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(
            (renamed.id.as_str(), renamed.name.as_str()),
            (alice.id.as_str(), "ann")
        );
        assert_eq!(
            store.workspace(&lab.id).await.unwrap().owner.as_str(),
            "ann"
        );
        let (tok, _) = store.token_by_hash("hb").await.unwrap();
        assert_eq!(
            tok.scopes,
            ScopeSet::parse(
                "read:users!user=ann access:servers!server=ann/lab read:users!user=alicia"
            )
            .unwrap()
        );

        let mut tx = store.begin().await.unwrap();
        tx.insert_workspace(&renamed, &name("nb"), &profile, DesiredState::Running)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let mut tx = store.begin().await.unwrap();
        let live = tx
            .rename_user(&alice.id, &renamed.name, &name("cleo"))
            .await;
        assert!(matches!(live, Err(StoreError::Conflict { .. })), "{live:?}");
        drop(tx);
        assert_eq!(store.user(&alice.id).await.unwrap().name.as_str(), "ann");
    }
    on_each_engine!(t);
}

/// A file that is no database, or one cut short, is refused at once with what
/// is wrong; an empty file is a new database.
#[tokio::test]
async fn a_file_that_is_no_database_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let url = |name: &str| format!("sqlite://{}", dir.path().join(name).display());

    std::fs::write(
        dir.path().join("text.db"),
        "this is not a database\n".repeat(50),
    )
    .unwrap();
    let started = std::time::Instant::now();
    let err = Store::connect(&url("text.db")).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("is not a SQLite database: it does not start with SQLite's header"),
        "{err}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "at once"
    );

    // A real database, then cut to half its size.
    let whole = dir.path().join("whole.db");
    let store = Store::connect(&url("whole.db")).await.unwrap();
    let (_user, _profile) = seed(&store).await;
    store.close().await;
    let bytes = std::fs::read(&whole).unwrap();
    std::fs::write(dir.path().join("cut.db"), &bytes[..bytes.len() / 2]).unwrap();
    let err = Store::connect(&url("cut.db")).await.unwrap_err();
    assert!(err.to_string().contains("it is cut short"), "{err}");
    std::fs::write(dir.path().join("tiny.db"), &bytes[..40]).unwrap();
    let err = Store::connect(&url("tiny.db")).await.unwrap_err();
    assert!(
        err.to_string().contains("fewer than a database header"),
        "{err}"
    );

    std::fs::write(dir.path().join("empty.db"), "").unwrap();
    let store = Store::connect(&url("empty.db")).await.unwrap();
    assert!(store.is_fresh().await.unwrap());
    store.close().await;
}

/// Two stores on one database are two replicas: each hears what the other
/// commits (through `NOTIFY` on PostgreSQL), and only once; what a rolled-back
/// transaction did is heard by neither. On SQLite only the committing store hears.
#[tokio::test]
async fn the_change_feed_reaches_every_replica() {
    use std::time::Duration;
    use store::Change;
    async fn next(rx: &mut tokio::sync::broadcast::Receiver<Change>) -> Change {
        tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("a change within 10 s")
            .unwrap()
    }
    for engine in Engine::ALL {
        let db = engine.fresh().await;
        let a = Store::connect(&db.url).await.unwrap();
        let b = Store::connect(&db.url).await.unwrap();
        let (user, profile) = seed(&a).await;
        let (mut at_a, mut at_b) = (a.changes(), b.changes());

        // Rolled back: nothing to hear.
        let mut tx = a.begin().await.unwrap();
        tx.insert_workspace(&user, &name("gone"), &profile, DesiredState::Running)
            .await
            .unwrap();
        drop(tx);

        let mut tx = a.begin().await.unwrap();
        let ws = tx
            .insert_workspace(&user, &name("lab"), &profile, DesiredState::Running)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(next(&mut at_a).await, Change::Spec(ws.id.clone()));
        if engine == Engine::Postgres {
            assert_eq!(next(&mut at_b).await, Change::Spec(ws.id.clone()), "from a");
        }
        let epoch = (a.credentials_epoch(), b.credentials_epoch());
        let mut tx = b.begin().await.unwrap();
        tx.set_workspace_status(
            &ws.id,
            &WorkspaceStatus::pending(),
            1,
            Some(&"10.0.0.2:8888".parse().unwrap()),
        )
        .await
        .unwrap();
        tx.delete_workspace_tokens(&ws.id, model::TokenKind::Server)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(next(&mut at_b).await, Change::Status(ws.id.clone()));
        assert_eq!(next(&mut at_b).await, Change::Credentials);
        assert_eq!(b.credentials_epoch(), epoch.1 + 1);
        assert_eq!(
            a.workspace(&ws.id).await.unwrap().upstream,
            Some("10.0.0.2:8888".parse().unwrap())
        );
        if engine == Engine::Postgres {
            assert_eq!(
                next(&mut at_a).await,
                Change::Status(ws.id.clone()),
                "from b"
            );
            assert_eq!(next(&mut at_a).await, Change::Credentials);
            assert_eq!(a.credentials_epoch(), epoch.0 + 1, "b's commit reached a");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            at_a.try_recv().is_err(),
            "each change once: {:?}",
            at_a.try_recv()
        );
        assert!(at_b.try_recv().is_err(), "each change once");
        a.close().await;
        b.close().await;
    }
}

/// A lease has one holder. Another takes it over only by naming the version
/// it saw (so of two that try, one wins), and a holder renews only its own.
#[tokio::test]
async fn a_lease_has_one_holder() {
    async fn check(store: &Store) {
        assert_eq!(store.lease("controller").await.unwrap(), None);
        assert!(store.claim_lease("controller", "a", None).await.unwrap());
        assert!(
            !store.claim_lease("controller", "b", None).await.unwrap(),
            "held"
        );
        let seen = store.lease("controller").await.unwrap().unwrap();
        assert_eq!((seen.holder.as_str(), seen.version), ("a", 1));
        assert!(store.renew_lease("controller", "a").await.unwrap());
        assert!(!store.renew_lease("controller", "b").await.unwrap());
        assert!(
            !store
                .claim_lease("controller", "b", Some(seen.version))
                .await
                .unwrap(),
            "renewed since b looked"
        );
        let seen = store.lease("controller").await.unwrap().unwrap();
        assert_eq!(seen.version, 2);
        assert!(store.claim_lease("controller", "b", Some(2)).await.unwrap());
        assert!(
            !store.claim_lease("controller", "c", Some(2)).await.unwrap(),
            "one wins"
        );
        assert!(
            !store.renew_lease("controller", "a").await.unwrap(),
            "a lost it"
        );
        store.release_lease("controller", "a").await.unwrap();
        assert_eq!(
            store.lease("controller").await.unwrap().unwrap().holder,
            "b"
        );
        store.release_lease("controller", "b").await.unwrap();
        assert_eq!(store.lease("controller").await.unwrap(), None);
        assert!(store.claim_lease("controller", "c", None).await.unwrap());
    }
    on_each_engine!(check);
}

#[tokio::test]
async fn users_are_listed_filtered_sorted_and_paged_in_sql() {
    async fn t(store: &Store) {
        let (alice, profile) = seed(store).await;
        let mut tx = store.begin().await.unwrap();
        let bob = insert_bob(&mut tx).await;
        let mut carol = None;
        for n in ["carol", "dave", "erin-c"] {
            let u = tx
                .insert_user(&NewUser {
                    name: name(n),
                    password_hash: None,
                    is_admin: false,
                })
                .await
                .unwrap();
            carol.get_or_insert(u);
        }
        let carol = carol.unwrap();
        tx.insert_service(&name("culler"), true).await.unwrap();
        let g = tx.insert_group(&name("ml")).await.unwrap();
        let h = tx.insert_group(&name("ai")).await.unwrap();
        tx.add_member(&g.id, &bob.id).await.unwrap();
        tx.add_member(&h.id, &bob.id).await.unwrap();
        tx.add_member(&g.id, &carol.id).await.unwrap();
        tx.insert_workspace(&bob, &name("default"), &profile, DesiredState::Running)
            .await
            .unwrap();
        let idle = tx
            .insert_workspace(&carol, &name("idle"), &profile, DesiredState::Stopped)
            .await
            .unwrap();
        let mut stopped = WorkspaceStatus::pending();
        stopped.state = WorkspaceState::Stopped;
        tx.set_workspace_status(&idle.id, &stopped, 1, None)
            .await
            .unwrap();
        tx.record_user_activity(&carol.id, 2_000).await.unwrap();
        tx.record_user_activity(&alice.id, 1_000).await.unwrap();
        tx.commit().await.unwrap();

        let list = |f: UserFilter| async move {
            let (users, total) = store.list_users(&f).await.unwrap();
            let names: Vec<String> = users.iter().map(|u| u.name.to_string()).collect();
            (names, total)
        };
        let all = UserFilter {
            limit: 100,
            ..UserFilter::default()
        };
        let five = ["alice", "bob", "carol", "dave", "erin-c"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            list(all.clone()).await,
            (five.clone(), 5),
            "by id: creation order, no services"
        );
        let page = UserFilter {
            offset: 1,
            limit: 2,
            ..all.clone()
        };
        assert_eq!(list(page).await, (five[1..3].to_vec(), 5));
        let past = UserFilter {
            offset: 10,
            ..all.clone()
        };
        assert_eq!(list(past).await, (vec![], 5));
        let by_name_desc = UserFilter {
            order: UserOrder::Name,
            descending: true,
            ..all.clone()
        };
        let mut reversed = five.clone();
        reversed.reverse();
        assert_eq!(list(by_name_desc).await.0, reversed);
        let by_activity = UserFilter {
            order: UserOrder::LastActivity,
            ..all.clone()
        };
        assert_eq!(
            list(by_activity.clone()).await.0,
            ["bob", "dave", "erin-c", "alice", "carol"],
            "never active first, then by activity; ties by name"
        );
        let by_activity_desc = UserFilter {
            descending: true,
            ..by_activity
        };
        assert_eq!(
            list(by_activity_desc).await.0,
            ["carol", "alice", "erin-c", "dave", "bob"]
        );
        let like = |p: &str| UserFilter {
            name_like: Some(p.into()),
            ..all.clone()
        };
        assert_eq!(
            list(like("r")).await,
            (vec!["carol".into(), "erin-c".into()], 2)
        );
        assert_eq!(list(like("R")).await.1, 2, "case is ignored");
        assert_eq!(
            list(like("c_r")).await.0,
            ["carol"],
            "`_` is any one character"
        );
        assert_eq!(list(like("zz")).await, (vec![], 0));
        let only = UserFilter {
            only: Some(bob.id.to_string()),
            ..all.clone()
        };
        assert_eq!(list(only).await, (vec!["bob".into()], 1));
        let among = |a: Among, ids: Vec<String>| UserFilter {
            ids: Some((a, ids)),
            ..all.clone()
        };
        let ids = vec![bob.id.to_string(), carol.id.to_string()];
        assert_eq!(list(among(Among::In, ids.clone())).await.1, 2);
        assert_eq!(
            list(among(Among::NotIn, ids)).await.0,
            ["alice", "dave", "erin-c"]
        );
        assert_eq!(list(among(Among::In, vec![])).await, (vec![], 0));
        assert_eq!(list(among(Among::NotIn, vec![])).await.1, 5);

        let groups = store
            .groups_of_users(&[bob.id.as_str(), carol.id.as_str(), alice.id.as_str()])
            .await
            .unwrap();
        let groups: Vec<(String, String)> = groups
            .into_iter()
            .map(|(u, g)| (u.to_string(), g.to_string()))
            .collect();
        let (b, c) = (bob.id.to_string(), carol.id.to_string());
        assert_eq!(
            groups,
            [(b.clone(), "ai".into()), (b, "ml".into()), (c, "ml".into())]
        );
        let spaces = store
            .workspaces_of_users(&[bob.id.as_str(), carol.id.as_str(), alice.id.as_str()])
            .await
            .unwrap();
        assert_eq!(spaces.len(), 2);
        let maybe = store.workspaces_maybe_active(None).await.unwrap();
        let maybe: Vec<&str> = maybe.iter().map(|w| w.name.as_str()).collect();
        assert_eq!(
            maybe,
            ["default"],
            "stopped with nothing asked of it: not in use"
        );
        let carols = store
            .workspaces_maybe_active(Some(&carol.id))
            .await
            .unwrap();
        assert!(carols.is_empty());
    }
    on_each_engine!(t);
}
