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
async fn an_admin_gives_one_user_limits_of_their_own() {
    let app = TestApp::sqlite().await;
    let alice = app.user("alice", None).await;
    let bob = app.user("bob", None).await;
    let url = "/api/v1/users/alice/quota";
    let q = app.call(&alice, "GET", url, Value::Null).await;
    let q = q.expect(200);
    assert_eq!(q["limits"], q["default"]);
    assert_eq!(q["limits"]["max_workspaces"], 10);
    assert_eq!(
        q["custom"],
        json!({"max_workspaces": null, "max_cpu": null, "max_memory_bytes": null})
    );
    assert_eq!(
        q["used"],
        json!({"workspaces": 0, "cpu": 0.0, "memory_bytes": 0})
    );
    // Users read their own quota only, and set none.
    app.call(&bob, "GET", url, Value::Null)
        .await
        .expect_error(404, "not_found");
    let one = json!({"max_workspaces": 1, "max_cpu": 2.5});
    app.call(&alice, "PUT", url, one.clone())
        .await
        .expect_error(403, "forbidden");
    app.call(&alice, "DELETE", url, Value::Null)
        .await
        .expect_error(403, "forbidden");

    // Bad bodies are refused with the field named, and nothing is written.
    let before = app.snapshot().await;
    for (body, status, code, field) in [
        (json!({"max_cpu": -1}), 422, "invalid_value", "max_cpu"),
        (json!({"max_cpu": 1e12}), 422, "invalid_value", "max_cpu"),
        (
            json!({"max_workspaces": 100_001}),
            422,
            "invalid_value",
            "max_workspaces",
        ),
        (
            json!({"max_memory_bytes": u64::MAX}),
            422,
            "invalid_value",
            "max_memory_bytes",
        ),
        (json!({"max_workspaces": -1}), 422, "invalid_body", ""),
        (json!({"max_cpus": 2}), 422, "invalid_body", "max_cpus"),
    ] {
        let r = app.call(&app.admin, "PUT", url, body.clone()).await;
        r.expect_error(status, code);
        let m = r.body["message"].as_str().unwrap();
        assert!(m.contains(field), "{body}: {m}");
    }
    app.call(&app.admin, "PUT", "/api/v1/users/nobody/quota", one.clone())
        .await
        .expect_error(404, "not_found");
    assert_eq!(app.snapshot().await, before, "nothing written");

    let q = app.call(&app.admin, "PUT", url, one).await;
    let q = q.expect(200);
    assert_eq!(q["limits"]["max_workspaces"], 1);
    assert_eq!(q["limits"]["max_cpu"], 2.5);
    assert_eq!(
        q["limits"]["max_memory_bytes"],
        q["default"]["max_memory_bytes"]
    );
    assert_eq!(q["custom"]["max_memory_bytes"], Value::Null);
    assert_eq!(
        app.call(&alice, "GET", url, Value::Null).await.expect(200),
        q
    );

    // Her own limits hold at create and start; bob keeps the default.
    app.workspace(&alice, json!({"name": "a", "start": true}))
        .await;
    let r = app
        .call(&alice, "POST", "/api/v1/workspaces", json!({"name": "b"}))
        .await;
    r.expect_error(403, "quota_exceeded");
    assert!(r.body["message"]
        .as_str()
        .unwrap()
        .contains("allows at most 1 workspace"));
    app.workspace(&bob, json!({"name": "a"})).await;
    app.workspace(&bob, json!({"name": "b"})).await;
    let q = app.call(&alice, "GET", url, Value::Null).await;
    assert_eq!(
        q.expect(200)["used"],
        json!({"workspaces": 1, "cpu": 2.0, "memory_bytes": 8u64 << 30})
    );

    // A limit below the use stops nothing; it refuses the next start.
    let half = json!({"max_workspaces": 1, "max_cpu": 0.5});
    app.call(&app.admin, "PUT", url, half).await.expect(200);
    let a = app
        .call(&alice, "GET", "/api/v1/workspaces?name=a", Value::Null)
        .await;
    let a = a.expect(200)["items"][0].clone();
    assert_eq!(a["desired_state"], "running");
    let id = a["id"].as_str().unwrap();
    app.call(
        &alice,
        "POST",
        &format!("/api/v1/workspaces/{id}/stop"),
        Value::Null,
    )
    .await
    .expect(202);
    let r = app
        .call(
            &alice,
            "POST",
            &format!("/api/v1/workspaces/{id}/start"),
            Value::Null,
        )
        .await;
    r.expect_error(403, "quota_exceeded");
    assert!(r.body["message"]
        .as_str()
        .unwrap()
        .contains("the quota is 0.5"));

    // Reset: the default again, with every change in the audit log.
    app.call(&app.admin, "DELETE", url, Value::Null)
        .await
        .expect(204);
    let q = app.call(&alice, "GET", url, Value::Null).await;
    let q = q.expect(200);
    assert_eq!(q["limits"], q["default"]);
    app.call(
        &alice,
        "POST",
        &format!("/api/v1/workspaces/{id}/start"),
        Value::Null,
    )
    .await
    .expect(202);
    let actions = app.audit_actions().await;
    let quota: Vec<_> = actions.iter().filter(|a| a.starts_with("quota.")).collect();
    assert_eq!(quota, ["quota.set", "quota.set", "quota.reset"]);
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

    // Every field in error is named at once, with its limits; nothing changes.
    let bad = json!({"idle_action": "sleep", "cpu": 0, "memory_bytes": 1, "start_timeout_secs": 1});
    let r = app
        .call(&app.admin, "PATCH", "/api/v1/profiles/pausing", bad)
        .await;
    r.expect_error(422, "invalid_value");
    assert_eq!(
        r.body["message"],
        "idle_action: must be stop or pause; cpu: must be between 0.01 and 512 CPUs; \
         memory_bytes: must be between 64 MiB and 16 TiB; \
         start_timeout_secs: must be between 5 and 3600 seconds"
    );
    let p = app
        .call(&app.admin, "GET", "/api/v1/profiles/pausing", Value::Null)
        .await;
    assert_eq!(p.expect(200)["idle_action"], "pause");
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
