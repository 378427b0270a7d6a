//! The happy path of authentication and workspaces on every database engine.

use serde_json::{json, Value};
use server::ServerConfig;
use test_support::Engine;

use crate::{names, req, TestApp, ADMIN_PASSWORD};

#[tokio::test]
async fn auth_and_workspace_happy_path_on_every_engine() {
    for engine in Engine::ALL {
        let app = TestApp::start(engine, ServerConfig::default()).await;
        let db = format!("{engine:?}");
        // A browser session: log in, then mint a token with the CSRF header.
        let s = app.login("admin", ADMIN_PASSWORD).await;
        let r = app
            .send(
                req("POST", "/api/v1/users")
                    .session(&s, Some(&s.csrf))
                    .json(&json!({"name": "alice"})),
            )
            .await;
        assert_eq!(r.expect(201)["name"], "alice", "{db}");
        let r = app
            .send(
                req("POST", "/api/v1/users/alice/tokens")
                    .session(&s, Some(&s.csrf))
                    .json(&json!({"note": "laptop"})),
            )
            .await;
        let alice = r.expect(201)["token"].as_str().unwrap().to_owned();
        let r = app
            .send(req("GET", "/api/v1/me").header("authorization", &format!("token {alice}")))
            .await;
        assert_eq!(r.expect(200)["user"]["name"], "alice", "{db}");

        // Create, start, stop, change, list, delete.
        let ws = app.workspace(&alice, json!({"name": "notebook"})).await;
        assert_eq!(
            (ws["generation"].as_i64(), ws["state"].as_str()),
            (Some(1), Some("pending")),
            "{db}"
        );
        let path = format!("/api/v1/workspaces/{}", ws["id"].as_str().unwrap());
        let r = app
            .call(&alice, "POST", &format!("{path}/start"), Value::Null)
            .await;
        assert_eq!(r.expect(202)["desired_state"], "running", "{db}");
        let r = app
            .call(&alice, "POST", &format!("{path}/stop"), Value::Null)
            .await;
        assert_eq!(r.expect(202)["generation"], 3, "{db}");
        let r = app
            .call(&alice, "PATCH", &path, json!({"profile": "high-memory"}))
            .await;
        assert_eq!(r.expect(200)["profile"], "high-memory", "{db}");
        app.call(
            &alice,
            "POST",
            "/api/v1/workspaces",
            json!({"name": "notebook"}),
        )
        .await
        .expect_error(409, "already_exists");
        app.workspace(&app.admin, json!({"name": "notebook"})).await;
        let r = app
            .call(
                &alice,
                "GET",
                "/api/v1/workspaces?profile=high-memory",
                Value::Null,
            )
            .await;
        assert_eq!(names(&r.expect(200)["items"]), ["notebook"], "{db}");
        let r = app
            .call(&app.admin, "GET", "/api/v1/workspaces?limit=1", Value::Null)
            .await;
        let next = r.expect(200)["next"]
            .as_str()
            .expect("a second page")
            .to_owned();
        let r = app
            .call(
                &app.admin,
                "GET",
                &format!("/api/v1/workspaces?limit=1&after={next}"),
                Value::Null,
            )
            .await;
        assert_eq!(r.expect(200)["items"][0]["owner"], "admin", "{db}");
        let r = app.call(&alice, "DELETE", &path, Value::Null).await;
        assert!(r.expect(202)["deletion_requested_at"].is_string(), "{db}");
        app.call(&alice, "POST", &format!("{path}/start"), Value::Null)
            .await
            .expect_error(409, "conflict");

        // Log out; the cookie is dead, the token lives.
        app.send(req("POST", "/api/v1/auth/logout").session(&s, Some(&s.csrf)))
            .await
            .expect(204);
        app.send(req("GET", "/api/v1/me").session(&s, None))
            .await
            .expect_error(401, "unauthenticated");
        let r = app
            .call(
                &app.admin,
                "GET",
                "/api/v1/audit?action=workspace&user=alice",
                Value::Null,
            )
            .await;
        let actions: Vec<&str> = r.expect(200)["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["action"].as_str().unwrap())
            .collect();
        assert_eq!(
            actions,
            [
                "workspace.delete",
                "workspace.update",
                "workspace.stop",
                "workspace.start",
                "workspace.create"
            ],
            "{db}"
        );
    }
}

/// Concurrent writers, some of them failing (duplicate names): every request
/// gets its answer, none a 500 ("database is locked" on SQLite, where a
/// transaction that had read could not wait for the write lock).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_with_conflicts_never_fail_the_server() {
    for engine in Engine::ALL {
        let app = std::sync::Arc::new(TestApp::start(engine, ServerConfig::default()).await);
        let alice = app.user("alice", None).await;
        let calls: Vec<_> = (0..120)
            .map(|i| {
                let (app, alice) = (app.clone(), alice.clone());
                tokio::spawn(async move {
                    let r = if i % 3 == 0 {
                        let body = json!({"note": format!("t{i}")});
                        app.call(&alice, "POST", "/api/v1/users/alice/tokens", body)
                            .await
                    } else {
                        let body = json!({"name": format!("ws{}", i % 4)});
                        app.call(&alice, "POST", "/api/v1/workspaces", body).await
                    };
                    r.status.as_u16()
                })
            })
            .collect();
        let mut statuses = Vec::new();
        for c in calls {
            statuses.push(c.await.unwrap());
        }
        assert!(
            statuses.iter().all(|s| [201, 409].contains(s)),
            "{engine:?}: {statuses:?}"
        );
        assert_eq!(
            statuses.iter().filter(|s| **s == 409).count(),
            76,
            "{engine:?}"
        );
    }
}
