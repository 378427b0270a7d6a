//! Authorization: users reach only their own resources, admins everyone's, and a
//! token never does more than its scopes.

use serde_json::{json, Value};

use crate::{names, TestApp};

#[tokio::test]
async fn another_users_workspace_is_invisible() {
    let app = TestApp::sqlite().await;
    let alice = app.user("alice", None).await;
    let bob = app.user("bob", None).await;
    let ws = app.workspace(&bob, json!({"name": "notebook"})).await;
    let id = ws["id"].as_str().unwrap();
    let path = format!("/api/v1/workspaces/{id}");
    let before = app.snapshot().await;
    let attempts = [
        ("GET", path.clone(), Value::Null),
        ("PATCH", path.clone(), json!({"profile": "high-memory"})),
        ("DELETE", path.clone(), Value::Null),
        ("POST", format!("{path}/start"), Value::Null),
        ("POST", format!("{path}/stop"), Value::Null),
    ];
    for (method, uri, body) in &attempts {
        let r = app.call(&alice, method, uri, body.clone()).await;
        r.expect_error(404, "not_found");
        assert_eq!(r.body["message"], "workspace not found", "{method} {uri}");
    }
    assert_eq!(
        app.snapshot().await,
        before,
        "alice changed bob's workspace"
    );
    // Nor can she create one for him, or see him.
    let r = app
        .call(
            &alice,
            "POST",
            "/api/v1/workspaces",
            json!({"name": "x", "owner": "bob"}),
        )
        .await;
    r.expect_error(403, "forbidden");
    for uri in ["/api/v1/users/bob", "/api/v1/users/bob/tokens"] {
        app.call(&alice, "GET", uri, Value::Null)
            .await
            .expect_error(404, "not_found");
    }
    let r = app
        .call(&alice, "POST", "/api/v1/users/bob/tokens", json!({}))
        .await;
    r.expect_error(404, "not_found");
    let r = app.call(&alice, "GET", "/api/v1/users", Value::Null).await;
    assert_eq!(names(&r.expect(200)["items"]), ["alice"]);
    assert_eq!(app.snapshot().await, before);

    // The admin reaches it all.
    let r = app.call(&app.admin, "GET", &path, Value::Null).await;
    assert_eq!(r.expect(200)["owner"], "bob");
    for i in [1, 3, 4, 2] {
        let (method, uri, body) = &attempts[i];
        let r = app.call(&app.admin, method, uri, body.clone()).await;
        assert!(r.status.is_success(), "admin {method} {uri}: {r:?}");
    }
    let r = app.call(&app.admin, "GET", &path, Value::Null).await;
    assert!(r.expect(200)["deletion_requested_at"].is_string());
}

#[tokio::test]
async fn admin_endpoints_are_forbidden_to_users() {
    let app = TestApp::sqlite().await;
    let alice = app.user("alice", None).await;
    let before = app.snapshot().await;
    let attempts = [
        ("POST", "/api/v1/users", json!({"name": "mallory"})),
        (
            "POST",
            "/api/v1/profiles",
            json!({"name": "huge", "display_name": "Huge"}),
        ),
        ("PATCH", "/api/v1/profiles/standard", json!({"cpu": 64})),
        ("DELETE", "/api/v1/profiles/high-memory", Value::Null),
        ("POST", "/api/v1/groups", json!({"name": "admins"})),
        ("GET", "/api/v1/audit", Value::Null),
        ("PATCH", "/api/v1/users/alice", json!({"admin": true})),
    ];
    for (method, uri, body) in attempts {
        let r = app.call(&alice, method, uri, body).await;
        r.expect_error(403, "forbidden");
    }
    assert_eq!(app.snapshot().await, before);
    // What users may do: read profiles, themselves.
    let r = app
        .call(&alice, "GET", "/api/v1/profiles", Value::Null)
        .await;
    assert_eq!(names(r.expect(200)), ["high-memory", "standard"]);
    let r = app
        .call(&alice, "GET", "/api/v1/users/alice", Value::Null)
        .await;
    assert_eq!(r.expect(200)["admin"], false);
}

#[tokio::test]
async fn lists_show_users_only_their_own_workspaces() {
    let app = TestApp::sqlite().await;
    let alice = app.user("alice", None).await;
    let bob = app.user("bob", None).await;
    app.workspace(&alice, json!({"name": "a1"})).await;
    app.workspace(&bob, json!({"name": "b1"})).await;
    app.workspace(&alice, json!({"name": "a2"})).await;

    let list = |token: &str, query: &str| {
        let uri = format!("/api/v1/workspaces{query}");
        let token = token.to_owned();
        let app = &app;
        async move { app.call(&token, "GET", &uri, Value::Null).await }
    };
    let r = list(&alice, "").await;
    assert_eq!(names(&r.expect(200)["items"]), ["a1", "a2"]);
    let r = list(&bob, "").await;
    assert_eq!(names(&r.expect(200)["items"]), ["b1"]);
    let r = list(&alice, "?owner=alice").await;
    assert_eq!(names(&r.expect(200)["items"]), ["a1", "a2"]);
    list(&alice, "?owner=bob")
        .await
        .expect_error(403, "forbidden");
    let r = list(&bob, "?name=a1").await;
    assert_eq!(names(&r.expect(200)["items"]), Vec::<&str>::new());

    let r = list(&app.admin, "").await;
    assert_eq!(names(&r.expect(200)["items"]), ["a1", "b1", "a2"]);
    let r = list(&app.admin, "?owner=bob").await;
    assert_eq!(names(&r.expect(200)["items"]), ["b1"]);
    let r = list(&app.admin, "?owner=nobody").await;
    assert_eq!(r.expect(200)["items"], json!([]));
}

#[tokio::test]
async fn tokens_cannot_exceed_their_owners_scopes() {
    let app = TestApp::sqlite().await;
    let alice = app.user("alice", None).await;
    let before = app.snapshot().await;
    let uri = "/api/v1/users/alice/tokens";
    for scopes in [
        json!(["admin:users"]),
        json!(["servers", "read:audit"]),
        json!(["admin:servers"]),
        // Filters naming others' resources: beyond a non-admin's reach.
        json!(["access:servers!user=admin"]),
        json!(["read:servers!server=admin/nb"]),
        json!(["read:users!group=everyone"]),
    ] {
        let r = app
            .call(&alice, "POST", uri, json!({"scopes": scopes}))
            .await;
        r.expect_error(403, "forbidden");
    }
    let r = app
        .call(&alice, "POST", uri, json!({"scopes": ["root"]}))
        .await;
    r.expect_error(422, "unknown_scope");
    // Not even the admin can give alice's token admin scopes.
    let r = app
        .call(&app.admin, "POST", uri, json!({"scopes": ["admin:users"]}))
        .await;
    r.expect_error(403, "forbidden");
    assert_eq!(app.snapshot().await, before);

    // A default token holds exactly the user role.
    let r = app.call(&alice, "POST", uri, json!({"note": "mine"})).await;
    let scopes: Vec<&str> = r.expect(201)["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(
        scopes.contains(&"servers") && scopes.contains(&"tokens"),
        "{scopes:?}"
    );
    assert!(
        !scopes
            .iter()
            .any(|s| s.starts_with("admin:") || *s == "read:audit"),
        "{scopes:?}"
    );
    let r = app.call(&alice, "GET", uri, Value::Null).await;
    assert_eq!(r.expect(200).as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_token_filtered_to_one_workspace_reaches_that_one_only() {
    let app = TestApp::sqlite().await;
    let alice = app.user("alice", None).await;
    let nb = app.workspace(&alice, json!({"name": "nb"})).await;
    let other = app.workspace(&alice, json!({"name": "other"})).await;
    let path = |ws: &Value| format!("/api/v1/workspaces/{}", ws["id"].as_str().unwrap());
    let scopes = ["read:servers!user=alice", "servers!server=alice/nb"];
    let one = app.token_for("alice", Some(&scopes)).await;
    // Without read:tokens, alice's tokens are not there for it.
    let r = app
        .call(&one, "GET", "/api/v1/users/alice/tokens", Value::Null)
        .await;
    r.expect_error(404, "not_found");
    let listed = app
        .call(&alice, "GET", "/api/v1/users/alice/tokens", Value::Null)
        .await;
    let filtered = listed.expect(200).as_array().unwrap().iter().any(|t| {
        t["scopes"]
            .as_array()
            .unwrap()
            .contains(&json!("servers!server=alice/nb"))
    });
    assert!(filtered, "the filters are shown: {listed:?}");
    for ws in [&nb, &other] {
        let r = app.call(&one, "GET", &path(ws), Value::Null).await;
        r.expect(200);
    }
    let start = |ws: &Value| format!("{}/start", path(ws));
    app.call(&one, "POST", &start(&nb), Value::Null)
        .await
        .expect(202);
    let before = app.snapshot().await;
    let r = app.call(&one, "POST", &start(&other), Value::Null).await;
    r.expect_error(403, "forbidden");
    let r = app.call(&one, "DELETE", &path(&other), Value::Null).await;
    r.expect_error(403, "forbidden");
    assert_eq!(app.snapshot().await, before);
}

#[tokio::test]
async fn a_read_only_token_reads_but_cannot_act() {
    let app = TestApp::sqlite().await;
    let alice = app.user("alice", None).await;
    let ws = app.workspace(&alice, json!({"name": "nb"})).await;
    let path = format!("/api/v1/workspaces/{}", ws["id"].as_str().unwrap());
    let reader = app.token_for("alice", Some(&["read:servers"])).await;
    let r = app.call(&reader, "GET", &path, Value::Null).await;
    assert_eq!(r.expect(200)["name"], "nb");
    let r = app
        .call(&reader, "GET", "/api/v1/workspaces", Value::Null)
        .await;
    assert_eq!(names(&r.expect(200)["items"]), ["nb"]);
    let before = app.snapshot().await;
    for (method, uri, body) in [
        ("POST", format!("{path}/start"), Value::Null),
        ("POST", format!("{path}/stop"), Value::Null),
        ("PATCH", path.clone(), json!({"profile": "high-memory"})),
        ("DELETE", path.clone(), Value::Null),
        (
            "POST",
            "/api/v1/workspaces".to_owned(),
            json!({"name": "other"}),
        ),
    ] {
        let r = app.call(&reader, method, &uri, body).await;
        r.expect_error(403, "forbidden");
    }
    // Nor can it mint itself a broader token, or read what it holds no scope for.
    let r = app
        .call(
            &reader,
            "POST",
            "/api/v1/users/alice/tokens",
            json!({"scopes": ["servers"]}),
        )
        .await;
    assert_eq!(r.status.as_u16() / 100, 4, "{r:?}");
    let r = app
        .call(&reader, "GET", "/api/v1/profiles", Value::Null)
        .await;
    r.expect_error(403, "forbidden");
    assert_eq!(app.snapshot().await, before);
    // The full token can.
    let r = app
        .call(&alice, "POST", &format!("{path}/start"), Value::Null)
        .await;
    assert_eq!(r.expect(202)["desired_state"], "running");
}

#[tokio::test]
async fn a_read_only_admin_token_reads_everyone_but_changes_nothing() {
    let app = TestApp::sqlite().await;
    let bob = app.user("bob", None).await;
    let ws = app.workspace(&bob, json!({"name": "nb"})).await;
    let path = format!("/api/v1/workspaces/{}", ws["id"].as_str().unwrap());
    let reader = app
        .token_for("admin", Some(&["read:servers", "read:audit"]))
        .await;
    app.call(&reader, "GET", &path, Value::Null)
        .await
        .expect(200);
    app.call(&reader, "GET", "/api/v1/audit", Value::Null)
        .await
        .expect(200);
    let r = app
        .call(&reader, "POST", &format!("{path}/start"), Value::Null)
        .await;
    r.expect_error(403, "forbidden");
    let r = app
        .call(&reader, "POST", "/api/v1/users", json!({"name": "eve"}))
        .await;
    r.expect_error(403, "forbidden");
}
