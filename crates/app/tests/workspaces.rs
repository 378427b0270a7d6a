//! The workspace operations against a real store (SQLite and PostgreSQL):
//! each error names its field, and each change lands with its audit record
//! and is told on the change feed.

use app::{
    App, AppError, Caller, ChangeWorkspace, CreateWorkspace, DeleteWorkspace, WorkspaceChange,
};
use model::{Name, Principal, ProfileSpec, Quota, Scope, ScopeSet, Targets};
use store::{AuditFilter, Change, NewProfile, NewUser, Store};
use test_support::Engine;

fn name(s: &str) -> Name {
    Name::parse(s).unwrap()
}

struct Fixture {
    app: App,
    store: Store,
    alice: Principal,
    bob: Principal,
    _db: test_support::TestDb,
}

/// alice and bob (people with the user role), the standard profile, and a
/// quota of two workspaces.
async fn fixture(engine: Engine) -> Fixture {
    let db = engine.fresh().await;
    let store = Store::connect(&db.url).await.unwrap();
    let mut tx = store.begin().await.unwrap();
    let mut people = Vec::new();
    for who in ["alice", "bob"] {
        let u = tx
            .insert_user(&NewUser {
                name: name(who),
                password_hash: None,
                is_admin: false,
            })
            .await
            .unwrap();
        people.push(Principal::new(
            u.id,
            u.name,
            false,
            &ScopeSet::for_role(false),
            None,
            |_| Targets::default(),
        ));
    }
    tx.insert_profile(&NewProfile {
        name: name("standard"),
        spec: ProfileSpec::standard(),
    })
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let quota = Quota {
        max_workspaces: 2,
        ..Quota::default()
    };
    let bob = people.pop().unwrap();
    let alice = people.pop().unwrap();
    Fixture {
        app: App::new(
            store.clone(),
            app::Config {
                quota,
                ..app::Config::default()
            },
        ),
        store,
        alice,
        bob,
        _db: db,
    }
}

fn caller(p: &Principal) -> Caller<'_> {
    Caller {
        principal: p,
        request_id: "req-1",
        source: Some("127.0.0.1"),
    }
}

fn create(ws: &str, profile: &str) -> CreateWorkspace {
    CreateWorkspace {
        owner: None,
        name: name(ws),
        profile: name(profile),
        start: true,
    }
}

#[tokio::test]
async fn errors_name_their_field_and_nothing_is_half_written() {
    for engine in Engine::ALL {
        let f = fixture(engine).await;
        let alice = caller(&f.alice);
        let e = f
            .app
            .create_workspace(alice, create("lab", "huge"))
            .await
            .unwrap_err();
        assert!(
            matches!(&e, AppError::Invalid { field: "profile", message } if message == "no profile huge"),
            "{e:?}"
        );
        let cmd = CreateWorkspace {
            owner: Some(name("carol")),
            ..create("lab", "standard")
        };
        let e = f.app.create_workspace(alice, cmd).await.unwrap_err();
        assert_eq!(e.field(), Some("owner"), "{e:?}");
        // Another user's workspace: not hers to make.
        let cmd = CreateWorkspace {
            owner: Some(name("bob")),
            ..create("lab", "standard")
        };
        let e = f.app.create_workspace(alice, cmd).await.unwrap_err();
        assert!(
            matches!(
                e,
                AppError::Forbidden {
                    scope: Scope::Servers
                }
            ),
            "{e:?}"
        );

        let ws = f
            .app
            .create_workspace(alice, create("lab", "standard"))
            .await
            .unwrap();
        let e = f
            .app
            .create_workspace(alice, create("lab", "standard"))
            .await
            .unwrap_err();
        assert!(
            matches!(&e, AppError::AlreadyExists { field: "name", message } if message == "alice already has a workspace lab"),
            "{e:?}"
        );
        f.app
            .create_workspace(alice, create("two", "standard"))
            .await
            .unwrap();
        let e = f
            .app
            .create_workspace(alice, create("three", "standard"))
            .await
            .unwrap_err();
        assert!(
            matches!(&e, AppError::QuotaExceeded { message } if message == "the quota allows at most 2 workspaces"),
            "{e:?}"
        );
        assert_eq!(
            f.store.workspaces_of(&f.alice.user_id).await.unwrap().len(),
            2
        );

        // Bob cannot see it, so to him it does not exist.
        let bob = caller(&f.bob);
        let stop = ChangeWorkspace {
            id: ws.id.clone(),
            change: WorkspaceChange::Stop,
        };
        let e = f.app.change_workspace(bob, stop.clone()).await.unwrap_err();
        assert!(
            matches!(e, AppError::NotFound { what: "workspace" }),
            "{e:?}"
        );

        let delete = DeleteWorkspace {
            id: ws.id.clone(),
            keep_files: true,
        };
        f.app.delete_workspace(alice, delete).await.unwrap();
        let e = f.app.change_workspace(alice, stop).await.unwrap_err();
        assert!(
            matches!(&e, AppError::Conflict { message } if message == "the workspace is being deleted"),
            "{e:?}"
        );
        let e = f
            .app
            .change_workspace(
                alice,
                ChangeWorkspace {
                    id: ws.id.clone(),
                    change: WorkspaceChange::Profile(name("nope")),
                },
            )
            .await
            .unwrap_err();
        assert_eq!(e.field(), Some("profile"), "{e:?}");
        f.store.close().await;
    }
}

/// A change lands with its audit record (who, from where, which request) and
/// is on the change feed once committed: what wakes the controller.
#[tokio::test]
async fn a_change_is_audited_and_told_on_the_feed() {
    let f = fixture(Engine::Sqlite).await;
    let mut feed = f.store.changes();
    let alice = caller(&f.alice);
    let ws = f
        .app
        .create_workspace(alice, create("lab", "standard"))
        .await
        .unwrap();
    assert_eq!(feed.try_recv().unwrap(), Change::Spec(ws.id.clone()));
    let cmd = ChangeWorkspace {
        id: ws.id.clone(),
        change: WorkspaceChange::Stop,
    };
    let stopped = f.app.change_workspace(alice, cmd).await.unwrap();
    assert_eq!(stopped.spec.desired, model::DesiredState::Stopped);
    assert_eq!(stopped.generation, ws.generation + 1);
    assert_eq!(feed.try_recv().unwrap(), Change::Spec(ws.id.clone()));
    let audit = f
        .store
        .audit(&AuditFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let seen: Vec<(&str, &str, Option<&str>, Option<&str>)> = audit
        .iter()
        .map(|r| {
            let a = &r.entry;
            (
                a.action.as_str(),
                a.target.as_str(),
                a.source.as_deref(),
                a.request_id.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (
                "workspace.stop",
                "alice/lab",
                Some("127.0.0.1"),
                Some("req-1")
            ),
            (
                "workspace.create",
                "alice/lab",
                Some("127.0.0.1"),
                Some("req-1")
            ),
        ]
    );
}
