//! Per-user quotas (workspaces, CPU and memory, at create, start and profile
//! change) and the profile policies the controller applies.

use serde_json::{json, Value};
use server::{Quota, ServerConfig};
use test_support::Engine;

use crate::TestApp;

#[tokio::test]
async fn quotas_hold_at_create_start_and_profile_change() {
    let quota = Quota {
        max_workspaces: 3,
        max_cpu_millis: 5000,
        max_memory_bytes: 64 << 30,
    };
    let app = TestApp::start(
        Engine::Sqlite,
        ServerConfig {
            quota,
            ..ServerConfig::default()
        },
    )
    .await;
    let alice = app.user("alice", None).await;
    let a = app
        .workspace(&alice, json!({"name": "a", "start": true}))
        .await;
    let b = app.workspace(&alice, json!({"name": "b"})).await;
    app.workspace(&alice, json!({"name": "c"})).await;
    let before = app.snapshot().await;
    let r = app
        .call(&alice, "POST", "/api/v1/workspaces", json!({"name": "d"}))
        .await;
    r.expect_error(403, "quota_exceeded");
    assert!(r.body["message"]
        .as_str()
        .unwrap()
        .contains("at most 3 workspaces"));
    assert_eq!(app.snapshot().await, before, "nothing written");

    // 2 CPUs run; a second standard (2 CPUs) fits, high-memory (4 CPUs) does not.
    let start = |ws: &Value| format!("/api/v1/workspaces/{}/start", ws["id"].as_str().unwrap());
    let patch = |ws: &Value| format!("/api/v1/workspaces/{}", ws["id"].as_str().unwrap());
    app.call(&alice, "POST", &start(&b), Value::Null)
        .await
        .expect(202);
    let r = app
        .call(
            &alice,
            "PATCH",
            &patch(&b),
            json!({"profile": "high-memory"}),
        )
        .await;
    r.expect_error(403, "quota_exceeded");
    assert!(
        r.body["message"].as_str().unwrap().contains("CPUs"),
        "{r:?}"
    );
    let c = app
        .call(&alice, "GET", "/api/v1/workspaces?name=c", Value::Null)
        .await;
    let c = c.expect(200)["items"][0].clone();
    app.call(&alice, "POST", &start(&c), Value::Null)
        .await
        .expect_error(403, "quota_exceeded");
    // Starting a running workspace again takes nothing more.
    app.call(&alice, "POST", &start(&a), Value::Null)
        .await
        .expect(202);
    // A stopped workspace may change profile; stopping one frees its share.
    app.call(
        &alice,
        "PATCH",
        &patch(&c),
        json!({"profile": "high-memory"}),
    )
    .await
    .expect(200);
    let stop = format!("/api/v1/workspaces/{}/stop", a["id"].as_str().unwrap());
    app.call(&alice, "POST", &stop, Value::Null)
        .await
        .expect(202);
    app.call(&alice, "POST", &start(&c), Value::Null)
        .await
        .expect_error(403, "quota_exceeded");
    app.call(&alice, "PATCH", &patch(&c), json!({"profile": "standard"}))
        .await
        .expect(200);
    app.call(&alice, "POST", &start(&c), Value::Null)
        .await
        .expect(202);
    // Quotas are per user: bob is not limited by alice's use.
    let bob = app.user("bob", None).await;
    app.workspace(&bob, json!({"name": "a", "start": true}))
        .await;
}

#[tokio::test]
async fn profiles_take_an_idle_action() {
    let app = TestApp::sqlite().await;
    let body = json!({"name": "pausing", "display_name": "Pausing", "idle_action": "pause"});
    let p = app.call(&app.admin, "POST", "/api/v1/profiles", body).await;
    assert_eq!(p.expect(201)["idle_action"], "pause");
    let std = app
        .call(&app.admin, "GET", "/api/v1/profiles/standard", Value::Null)
        .await;
    assert_eq!(std.expect(200)["idle_action"], "stop");
    let bad = json!({"idle_action": "sleep"});
    let r = app
        .call(&app.admin, "PATCH", "/api/v1/profiles/pausing", bad)
        .await;
    r.expect_error(422, "invalid_value");
    assert!(r.body["message"]
        .as_str()
        .unwrap()
        .starts_with("idle_action"));
}

#[tokio::test]
async fn profiles_say_whether_workspaces_reach_the_network() {
    let app = TestApp::sqlite().await;
    let std = app
        .call(&app.admin, "GET", "/api/v1/profiles/standard", Value::Null)
        .await;
    assert_eq!(std.expect(200)["egress"], true);
    let body = json!({"name": "offline", "display_name": "Offline", "egress": false});
    let p = app.call(&app.admin, "POST", "/api/v1/profiles", body).await;
    assert_eq!(p.expect(201)["egress"], false);
    let r = app
        .call(
            &app.admin,
            "PATCH",
            "/api/v1/profiles/offline",
            json!({"egress": "yes"}),
        )
        .await;
    r.expect_error(422, "invalid_body");
    let get = app
        .call(&app.admin, "GET", "/api/v1/profiles/offline", Value::Null)
        .await;
    assert_eq!(get.expect(200)["egress"], false, "nothing half-written");
}
