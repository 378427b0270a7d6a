//! Workspaces: the desired state a request writes, its generations, deletion, and
//! listing with filters and pages.

use serde_json::{json, Value};

use crate::{names, TestApp};

#[tokio::test]
async fn lifecycle_bumps_generation_only_on_change() {
    let app = TestApp::sqlite().await;
    let t = &app.admin;
    let ws = app.workspace(t, json!({"name": "notebook"})).await;
    assert_eq!(ws["name"], "notebook");
    assert_eq!(ws["owner"], "admin");
    assert_eq!(ws["profile"], "standard");
    assert_eq!(ws["generation"], 1);
    assert_eq!(ws["observed_generation"], 0);
    assert_eq!(ws["state"], "pending");
    assert_eq!(ws["desired_state"], "stopped");
    assert_eq!(ws["url"], "/user/admin/notebook/");
    assert_eq!(ws["deletion_requested_at"], Value::Null);
    let id = ws["id"].as_str().unwrap();
    let path = format!("/api/v1/workspaces/{id}");

    let r = app.call(t, "GET", &path, Value::Null).await;
    assert_eq!(r.expect(200), &ws);

    let step = |method: &'static str, uri: String, body: Value| {
        let app = &app;
        async move { app.call(&app.admin, method, &uri, body).await }
    };
    let r = step("POST", format!("{path}/start"), Value::Null).await;
    let b = r.expect(202);
    assert_eq!(
        (b["generation"].as_i64(), b["desired_state"].as_str()),
        (Some(2), Some("running"))
    );
    // Asking again for what is already asked for changes nothing.
    let r = step("POST", format!("{path}/start"), Value::Null).await;
    assert_eq!(r.expect(202)["generation"], 2);
    let r = step("POST", format!("{path}/stop"), Value::Null).await;
    let b = r.expect(202);
    assert_eq!(
        (b["generation"].as_i64(), b["desired_state"].as_str()),
        (Some(3), Some("stopped"))
    );
    let r = step("PATCH", path.clone(), json!({"profile": "high-memory"})).await;
    let b = r.expect(200);
    assert_eq!(
        (b["generation"].as_i64(), b["profile"].as_str()),
        (Some(4), Some("high-memory"))
    );
    let r = step("PATCH", path.clone(), json!({})).await;
    assert_eq!(r.expect(200)["generation"], 4);
    let r = step("PATCH", path.clone(), json!({"profile": "gpu"})).await;
    r.expect_error(422, "invalid_value");

    let r = step("DELETE", path.clone(), Value::Null).await;
    let b = r.expect(202);
    assert!(b["deletion_requested_at"].is_string(), "{b}");
    assert_eq!(b["generation"], 5);
    let deleted = b.clone();
    let before = app.snapshot().await;
    for (method, uri, body) in [
        ("POST", format!("{path}/start"), Value::Null),
        ("POST", format!("{path}/stop"), Value::Null),
        ("PATCH", path.clone(), json!({"profile": "standard"})),
    ] {
        step(method, uri, body).await.expect_error(409, "conflict");
    }
    assert_eq!(app.snapshot().await, before);
    // Deleting again is accepted and changes nothing but the audit log.
    let r = step("DELETE", path.clone(), Value::Null).await;
    assert_eq!(r.expect(202)["generation"], 5);
    let r = step("GET", path.clone(), Value::Null).await;
    assert_eq!(
        r.expect(200)["deletion_requested_at"],
        deleted["deletion_requested_at"]
    );
}

#[tokio::test]
async fn names_are_unique_per_owner() {
    let app = TestApp::sqlite().await;
    let bob = app.user("bob", None).await;
    app.workspace(&app.admin, json!({"name": "shared"})).await;
    let before = app.snapshot().await;
    let r = app
        .call(
            &app.admin,
            "POST",
            "/api/v1/workspaces",
            json!({"name": "shared", "profile": "high-memory"}),
        )
        .await;
    r.expect_error(409, "already_exists");
    assert_eq!(app.snapshot().await, before);
    let ws = app.workspace(&bob, json!({"name": "shared"})).await;
    assert_eq!(ws["owner"], "bob");
    // An admin may create one for bob, but not a second "shared".
    let r = app
        .call(
            &app.admin,
            "POST",
            "/api/v1/workspaces",
            json!({"name": "shared", "owner": "bob"}),
        )
        .await;
    r.expect_error(409, "already_exists");
    let ws = app
        .workspace(
            &app.admin,
            json!({"name": "other", "owner": "bob", "start": true, "profile": "high-memory"}),
        )
        .await;
    assert_eq!(
        (
            ws["owner"].as_str(),
            ws["desired_state"].as_str(),
            ws["profile"].as_str()
        ),
        (Some("bob"), Some("running"), Some("high-memory"))
    );
    for (body, code) in [
        (json!({"name": "x", "owner": "nobody"}), "invalid_value"),
        (json!({"name": "x", "profile": "nope"}), "invalid_value"),
    ] {
        app.call(&app.admin, "POST", "/api/v1/workspaces", body)
            .await
            .expect_error(422, code);
    }
}

#[tokio::test]
async fn lists_filter_and_page() {
    let app = TestApp::sqlite().await;
    let bob = app.user("bob", None).await;
    let t = app.admin.clone();
    for (name, profile) in [
        ("ws-a", "standard"),
        ("ws-b", "high-memory"),
        ("ws-c", "standard"),
        ("ws-d", "high-memory"),
        ("ws-e", "standard"),
    ] {
        app.workspace(&t, json!({"name": name, "profile": profile}))
            .await;
    }
    app.workspace(&bob, json!({"name": "ws-a"})).await;
    let list = |query: &str| {
        let uri = format!("/api/v1/workspaces{query}");
        let app = &app;
        async move { app.call(&app.admin, "GET", &uri, Value::Null).await }
    };
    let cases: &[(&str, &[&str])] = &[
        ("", &["ws-a", "ws-b", "ws-c", "ws-d", "ws-e", "ws-a"]),
        ("?name=ws-b", &["ws-b"]),
        ("?name=ws-a", &["ws-a", "ws-a"]),
        ("?profile=high-memory", &["ws-b", "ws-d"]),
        ("?owner=bob", &["ws-a"]),
        ("?owner=admin&name=ws-a", &["ws-a"]),
        (
            "?state=pending",
            &["ws-a", "ws-b", "ws-c", "ws-d", "ws-e", "ws-a"],
        ),
        ("?state=running", &[]),
        ("?profile=standard&owner=admin", &["ws-a", "ws-c", "ws-e"]),
        ("?name=nothing", &[]),
    ];
    for (query, expected) in cases {
        let r = list(query).await;
        let body = r.expect(200);
        assert_eq!(names(&body["items"]), *expected, "{query}");
        assert_eq!(body["next"], Value::Null, "{query}");
    }
    let r = list("?owner=bob").await;
    assert_eq!(r.body["items"][0]["owner"], "bob");

    // Pages of two, following `next`, give the whole list once, in order.
    let all = list("").await.body["items"].clone();
    let mut seen = Vec::new();
    let mut query = "?limit=2".to_owned();
    for page in 0.. {
        assert!(page < 10, "paging does not end");
        let r = list(&query).await;
        let body = r.expect(200);
        let items = body["items"].as_array().unwrap();
        assert!(items.len() <= 2, "{body}");
        seen.extend(items.iter().cloned());
        match body["next"].as_str() {
            Some(next) => {
                assert_eq!(next, items.last().unwrap()["id"], "{body}");
                query = format!("?limit=2&after={next}");
            }
            None => break,
        }
    }
    assert_eq!(Value::Array(seen), all);
    let r = list("?limit=4&profile=standard").await;
    let b = r.expect(200);
    assert_eq!(names(&b["items"]), ["ws-a", "ws-c", "ws-e", "ws-a"]);
    assert_eq!(b["next"], Value::Null, "exactly one full page has no next");
    let r = list("?limit=500").await;
    assert_eq!(r.expect(200)["items"].as_array().unwrap().len(), 6);

    for query in [
        "?limit=0",
        "?limit=501",
        "?limit=-1",
        "?limit=ten",
        "?state=bogus",
        "?name=WS",
        "?profile=a/b",
        "?owner=..",
        "?bogus=1",
    ] {
        list(query).await.expect_error(400, "invalid_query");
    }
}

#[tokio::test]
async fn delete_may_keep_the_files() {
    let app = TestApp::sqlite().await;
    let alice = app.user("alice", None).await;
    let ws = app.workspace(&alice, json!({"name": "lab"})).await;
    let id = ws["id"].as_str().unwrap();
    let bad = app
        .call(
            &alice,
            "DELETE",
            &format!("/api/v1/workspaces/{id}?keep_files=maybe"),
            Value::Null,
        )
        .await;
    bad.expect_error(400, "invalid_query");
    let r = app
        .call(
            &alice,
            "DELETE",
            &format!("/api/v1/workspaces/{id}?keep_files=true"),
            Value::Null,
        )
        .await;
    assert_eq!(r.expect(202)["keep_files"], true);
    assert!(app
        .audit_actions()
        .await
        .contains(&"workspace.delete".to_owned()));
}
