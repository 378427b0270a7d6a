//! Accounts and sessions through the operations, against a real store.

use std::time::Duration;

use app::{
    App, AppError, Caller, CreateUser, LogIn, Presented, SetPassword, UpdateUser, UserDeletion,
};
use model::{Name, Principal, ScopeSet, Targets};
use store::Store;
use test_support::Engine;

fn name(s: &str) -> Name {
    Name::parse(s).unwrap()
}

fn principal(u: &model::User) -> Principal {
    Principal::new(
        u.id.clone(),
        u.name.clone(),
        u.is_admin,
        &ScopeSet::for_role(u.is_admin),
        None,
        |_| Targets::default(),
    )
}

fn caller(p: &Principal) -> Caller<'_> {
    Caller {
        principal: p,
        request_id: "req",
        source: Some("192.0.2.1"),
    }
}

/// The first admin (bootstrapped) and an app that locks a name out after
/// two failed logins.
async fn fixture(engine: Engine) -> (App, Store, Principal, test_support::TestDb) {
    let db = engine.fresh().await;
    let store = Store::connect(&db.url).await.unwrap();
    assert_eq!(
        app::bootstrap(&store, Some("admin-password"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        app::bootstrap(&store, None).await.unwrap(),
        None,
        "only once"
    );
    let admin = principal(&store.user_by_name(&name("admin")).await.unwrap());
    let config = app::Config {
        login_max_failures: 2,
        login_lockout: Duration::from_secs(60),
        ..app::Config::default()
    };
    (App::new(store.clone(), config), store, admin, db)
}

fn log_in<'a>(username: &'a str, password: &'a str) -> LogIn<'a> {
    LogIn {
        username,
        password,
        source: Some("192.0.2.1"),
        request_id: "req",
    }
}

#[tokio::test]
async fn accounts_are_made_changed_and_deleted_by_admins_only() {
    for engine in Engine::ALL {
        let (app, store, admin, _db) = fixture(engine).await;
        let admin = caller(&admin);
        let create = |n: &str, password: Option<&str>| CreateUser {
            name: name(n),
            password: password.map(str::to_owned),
            admin: false,
        };
        let e = app
            .create_user(admin, create("alice", Some("short")))
            .await
            .unwrap_err();
        assert!(
            matches!(&e, AppError::Invalid { field: "password", message } if message == "must be 8 to 1024 characters"),
            "{e:?}"
        );
        let alice = app
            .create_user(admin, create("alice", Some("alices-password")))
            .await
            .unwrap();
        let e = app
            .create_user(admin, create("alice", None))
            .await
            .unwrap_err();
        assert_eq!(e.field(), Some("name"), "{e:?}");
        let alice_p = principal(&alice);
        let e = app
            .create_user(caller(&alice_p), create("carol", None))
            .await
            .unwrap_err();
        assert!(matches!(e, AppError::Forbidden { .. }), "{e:?}");

        let e = app
            .update_user(
                admin,
                &name("admin"),
                UpdateUser {
                    admin: Some(false),
                    ..UpdateUser::default()
                },
            )
            .await
            .unwrap_err();
        assert!(matches!(e, AppError::Conflict { .. }), "{e:?}");
        let renamed = app
            .update_user(
                admin,
                &name("alice"),
                UpdateUser {
                    rename: Some(name("alicia")),
                    ..UpdateUser::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(renamed.name.as_str(), "alicia");
        let e = app
            .update_user(caller(&alice_p), &name("admin"), UpdateUser::default())
            .await
            .unwrap_err();
        assert!(matches!(e, AppError::NotFound { what: "user" }), "{e:?}");

        // Deleting one who owns a workspace waits for it to go first.
        let profile = store.profile(&name("standard")).await.unwrap();
        let mut tx = store.begin().await.unwrap();
        let ws = tx
            .insert_workspace(
                &renamed,
                &name("lab"),
                &profile,
                model::DesiredState::Stopped,
            )
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let waiting = app.delete_user(admin, &name("alicia")).await.unwrap();
        assert_eq!(waiting, UserDeletion::Waiting(vec![ws.id.clone()]));
        let ws = store.workspace(&ws.id).await.unwrap();
        assert!(ws.deletion_requested_at.is_some() && ws.keep_files);
        // The controller removes it.
        let mut tx = store.begin().await.unwrap();
        tx.remove_workspace(&ws.id).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(
            app.delete_user(admin, &name("alicia")).await.unwrap(),
            UserDeletion::Deleted
        );
        let e = app.delete_user(admin, &name("admin")).await.unwrap_err();
        assert!(matches!(e, AppError::Conflict { .. }), "{e:?}");
        store.close().await;
    }
}

/// A login opens a session that authenticates, until logging out; wrong
/// passwords are refused and, after two, throttled; an account without a
/// password is told so; one's own password needs the current one.
#[tokio::test]
async fn sessions_open_close_and_failures_are_throttled() {
    let (app, _store, admin, _db) = fixture(Engine::Sqlite).await;
    let admin = caller(&admin);
    app.create_user(
        admin,
        CreateUser {
            name: name("bob"),
            password: None,
            admin: false,
        },
    )
    .await
    .unwrap();
    let e = app
        .log_in(log_in("bob", "anything-at-all"))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, AppError::NoPassword { user } if user.as_str() == "bob"),
        "{e:?}"
    );

    let (user, session) = app.log_in(log_in("admin", "admin-password")).await.unwrap();
    assert_eq!(user.name.as_str(), "admin");
    let who = app
        .authenticate(Presented::Session(&session.secret))
        .await
        .unwrap();
    assert_eq!(who.principal.name.as_str(), "admin");
    assert_eq!(who.csrf.as_deref(), Some(session.csrf.as_str()));
    let me = who.principal.clone();
    app.log_out(caller(&me), Some(&session.secret))
        .await
        .unwrap();
    let e = app
        .authenticate(Presented::Session(&session.secret))
        .await
        .unwrap_err();
    assert!(matches!(e, AppError::Unauthenticated), "logged out: {e:?}");

    let (_, session) = app.log_in(log_in("admin", "admin-password")).await.unwrap();
    let wrong = SetPassword {
        old_password: Some("not-it-at-all".into()),
        password: "a-new-password".into(),
        renew_session: true,
    };
    let e = app
        .set_password(admin, &name("admin"), wrong)
        .await
        .unwrap_err();
    assert!(matches!(e, AppError::WrongPassword), "{e:?}");
    assert_eq!(e.field(), Some("old_password"));
    let right = SetPassword {
        old_password: Some("admin-password".into()),
        password: "a-new-password".into(),
        renew_session: true,
    };
    let renewed = app
        .set_password(admin, &name("admin"), right)
        .await
        .unwrap()
        .expect("a new session for the caller");
    let e = app
        .authenticate(Presented::Session(&session.secret))
        .await
        .unwrap_err();
    assert!(
        matches!(e, AppError::Unauthenticated),
        "other sessions end: {e:?}"
    );
    app.authenticate(Presented::Session(&renewed.secret))
        .await
        .unwrap();

    // The wrong current password above was one failed login; this is two.
    let e = app
        .log_in(log_in("admin", "wrong-password"))
        .await
        .unwrap_err();
    assert!(matches!(e, AppError::InvalidCredentials), "{e:?}");
    let e = app
        .log_in(log_in("admin", "a-new-password"))
        .await
        .unwrap_err();
    assert!(
        matches!(e, AppError::TooManyRequests { retry_after } if retry_after > 0),
        "throttled even with the right password: {e:?}"
    );
}

/// Many first requests with one token at once make one lookup; a hit makes
/// none; changing its user's role, disabling the user, revoking the token and
/// deleting the user each take effect on the very next request.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn authentication_is_cached_single_flight_and_revocable() {
    for engine in Engine::ALL {
        let (app, store, admin, _db) = fixture(engine).await;
        let admin = caller(&admin);
        let create = |n: &str| CreateUser {
            name: name(n),
            password: None,
            admin: false,
        };
        app.create_user(admin, create("bob")).await.unwrap();
        let new_token = || app::CreateToken {
            note: "t".into(),
            scopes: None,
            expires_in: None,
        };
        let (bobs, secret) = app
            .create_token(admin, &name("bob"), new_token())
            .await
            .unwrap();

        let before = app.credential_lookups();
        let mut all = tokio::task::JoinSet::new();
        for _ in 0..200 {
            let (app, secret) = (app.clone(), secret.clone());
            all.spawn(async move { app.authenticate(Presented::Token(&secret)).await });
        }
        while let Some(who) = all.join_next().await {
            let who = who.unwrap().unwrap();
            assert_eq!(who.principal.name.as_str(), "bob");
            assert!(!who.principal.is_admin);
        }
        assert_eq!(
            app.credential_lookups() - before,
            1,
            "{engine:?}: one lookup"
        );
        let who = app.authenticate(Presented::Token(&secret)).await.unwrap();
        assert_eq!(app.credential_lookups() - before, 1, "{engine:?}: a hit");
        assert_eq!(who.principal.token_id.as_ref(), Some(&bobs.id));

        let update = |admin: Option<bool>, disabled: Option<bool>| UpdateUser {
            admin,
            disabled,
            ..UpdateUser::default()
        };
        app.update_user(admin, &name("bob"), update(Some(true), None))
            .await
            .unwrap();
        let who = app.authenticate(Presented::Token(&secret)).await.unwrap();
        assert!(who.principal.is_admin, "{engine:?}: made an admin");
        app.update_user(admin, &name("bob"), update(None, Some(true)))
            .await
            .unwrap();
        let e = app
            .authenticate(Presented::Token(&secret))
            .await
            .unwrap_err();
        assert!(matches!(e, AppError::Unauthenticated), "disabled: {e:?}");
        app.update_user(admin, &name("bob"), update(None, Some(false)))
            .await
            .unwrap();
        app.authenticate(Presented::Token(&secret)).await.unwrap();

        app.delete_token(admin, &name("bob"), &bobs.id)
            .await
            .unwrap();
        let e = app
            .authenticate(Presented::Token(&secret))
            .await
            .unwrap_err();
        assert!(matches!(e, AppError::Unauthenticated), "revoked: {e:?}");

        let (_, secret) = app
            .create_token(admin, &name("bob"), new_token())
            .await
            .unwrap();
        app.authenticate(Presented::Token(&secret)).await.unwrap();
        assert_eq!(
            app.delete_user(admin, &name("bob")).await.unwrap(),
            UserDeletion::Deleted
        );
        let e = app
            .authenticate(Presented::Token(&secret))
            .await
            .unwrap_err();
        assert!(matches!(e, AppError::Unauthenticated), "deleted: {e:?}");
        store.close().await;
    }
}

/// Many users at once: those that exist are left alone, the others are made
/// in one transaction, each with its audit record; when all exist, nothing is.
#[tokio::test]
async fn users_are_created_in_bulk_each_audited() {
    for engine in Engine::ALL {
        let (app, store, admin, _db) = fixture(engine).await;
        let admin = caller(&admin);
        let names: Vec<Name> = (0..1200).map(|i| name(&format!("u{i}"))).collect();
        let made = app.create_users(admin, &names[..2], false).await.unwrap();
        assert_eq!(made.len(), 2);
        let made = app.create_users(admin, &names, true).await.unwrap();
        assert_eq!(made.len(), 1198, "{engine:?}: u0 and u1 existed");
        assert_eq!(made[0].name, names[2], "in the order asked");
        assert!(made.iter().all(|u| u.is_admin));
        let u1199 = store.user_by_name(&names[1199]).await.unwrap();
        assert!(u1199.is_admin);
        let audit = store
            .audit(&store::AuditFilter {
                action: Some("user.create".into()),
                limit: 2000,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(audit.len(), 1200, "{engine:?}: one record each");
        assert!(audit
            .iter()
            .all(|r| r.entry.actor.as_deref() == Some("admin")));
        let e = app
            .create_users(admin, &names[..3], false)
            .await
            .unwrap_err();
        assert!(matches!(e, AppError::AlreadyExists { .. }), "{e:?}");
        store.close().await;
    }
}

/// Single creations at once are written together, and each still gets its
/// own answer: a name asked for twice is made once and refused once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creations_each_get_their_answer() {
    for engine in Engine::ALL {
        let (app, store, admin, _db) = fixture(engine).await;
        let mut all = tokio::task::JoinSet::new();
        for i in 0..100 {
            let (app, admin) = (app.clone(), admin.clone());
            all.spawn(async move {
                let cmd = CreateUser {
                    // u0 … u49, each twice.
                    name: name(&format!("u{}", i % 50)),
                    password: None,
                    admin: false,
                };
                app.create_user(caller(&admin), cmd).await
            });
        }
        let (mut made, mut taken) = (0, 0);
        while let Some(r) = all.join_next().await {
            match r.unwrap() {
                Ok(_) => made += 1,
                Err(AppError::AlreadyExists { field: "name", .. }) => taken += 1,
                Err(e) => panic!("{engine:?}: {e:?}"),
            }
        }
        assert_eq!((made, taken), (50, 50), "{engine:?}");
        let audit = store
            .audit(&store::AuditFilter {
                action: Some("user.create".into()),
                limit: 200,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(audit.len(), 50, "{engine:?}: one record for each made");
        store.close().await;
    }
}

/// Profiles from the configuration: made when missing, changed when they
/// differ, left alone when equal, each change audited without an actor.
#[tokio::test]
async fn configured_profiles_are_created_changed_or_left_alone() {
    let db = Engine::Sqlite.fresh().await;
    let store = Store::connect(&db.url).await.unwrap();
    app::bootstrap(&store, Some("admin-password-123"))
        .await
        .unwrap();
    let mut small = model::ProfileSpec::standard();
    small.cpu_millis = 500;
    let mut standard = store.profile(&name("standard")).await.unwrap().spec;
    let unchanged = standard.clone();
    let configured = vec![
        (name("small"), small.clone()),
        (name("standard"), unchanged),
    ];
    let changed = app::configure_profiles(&store, &configured).await.unwrap();
    assert_eq!(changed, [name("small")], "standard is as configured");
    assert_eq!(store.profile(&name("small")).await.unwrap().spec, small);

    standard.memory_bytes *= 2;
    let configured = vec![(name("small"), small), (name("standard"), standard.clone())];
    let changed = app::configure_profiles(&store, &configured).await.unwrap();
    assert_eq!(changed, [name("standard")]);
    assert_eq!(
        store.profile(&name("standard")).await.unwrap().spec,
        standard
    );
    let filter = store::AuditFilter {
        action: Some("profile".into()),
        limit: 100,
        ..Default::default()
    };
    let audit = store.audit(&filter).await.unwrap();
    let mut changes: Vec<_> = audit
        .iter()
        .map(|a| (a.entry.target.as_str(), a.entry.actor.is_none()))
        .collect();
    changes.sort();
    assert_eq!(changes, [("small", true), ("standard", true)]);
}
