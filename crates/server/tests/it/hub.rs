//! `/hub/api`: JupyterHub's REST API over berth's users and workspaces.

use serde_json::{json, Value};

use crate::{req, TestApp};

#[tokio::test]
async fn version_user_and_info() {
    let app = TestApp::sqlite().await;
    let alice = app.user("alice", None).await;
    for path in ["/hub/api", "/hub/api/"] {
        let r = app.call("", "GET", path, Value::Null).await;
        assert_eq!(r.expect(200)["version"], server::hub::HUB_VERSION);
        assert_eq!(
            r.header("x-jupyterhub-version"),
            Some(server::hub::HUB_VERSION)
        );
    }
    let me = app.call(&alice, "GET", "/hub/api/user", Value::Null).await;
    let me = me.expect(200);
    assert_eq!(me["kind"], "user");
    assert_eq!(me["name"], "alice");
    assert_eq!(me["admin"], false);
    assert_eq!(me["servers"], json!({}));
    assert!(me["scopes"]
        .as_array()
        .unwrap()
        .contains(&json!("access:servers!user=alice")));
    // JupyterHub's `token` scheme works as well.
    let r = app
        .send(req("GET", "/hub/api/user").header("authorization", &format!("token {alice}")))
        .await;
    assert_eq!(r.expect(200)["name"], "alice");
    // JupyterHub answers 403 to "who is this?" without a credential.
    app.call("", "GET", "/hub/api/user", Value::Null)
        .await
        .expect_error(403, "forbidden");
    app.call(&alice, "GET", "/hub/api/info", Value::Null)
        .await
        .expect_error(403, "forbidden");
    let info = app
        .call(&app.admin, "GET", "/hub/api/info", Value::Null)
        .await;
    assert_eq!(info.expect(200)["spawner"]["class"], "berth");
}

#[tokio::test]
async fn servers_start_and_stop_as_workspaces() {
    let app = TestApp::sqlite().await;
    let alice = app.user("alice", None).await;
    let bob = app.user("bob", None).await;

    // The default server is the workspace `default`, created on first start.
    let r = app
        .call(&alice, "POST", "/hub/api/users/alice/server", Value::Null)
        .await;
    let server = r.expect(202);
    assert_eq!(server["name"], "");
    assert_eq!(server["url"], "/user/alice/default/");
    assert_eq!(server["pending"], "spawn");
    assert_eq!(server["ready"], false);
    let listed = app
        .call(
            &alice,
            "GET",
            "/api/v1/workspaces?name=default",
            Value::Null,
        )
        .await;
    assert_eq!(listed.expect(200)["items"][0]["desired_state"], "running");
    let user = app
        .call(&alice, "GET", "/hub/api/users/alice", Value::Null)
        .await;
    let user = user.expect(200);
    assert_eq!(user["pending"], "spawn");
    assert_eq!(user["servers"][""]["full_name"], "alice/");

    // A named server with user options; bad options and names are refused.
    let r = app
        .call(
            &alice,
            "POST",
            "/hub/api/users/alice/servers/big",
            json!({"profile": "high-memory"}),
        )
        .await;
    assert_eq!(r.expect(202)["user_options"]["profile"], "high-memory");
    app.call(
        &alice,
        "POST",
        "/hub/api/users/alice/servers/x",
        json!({"nope": 1}),
    )
    .await
    .expect_error(422, "invalid_body");
    app.call(
        &alice,
        "POST",
        "/hub/api/users/alice/servers/Bad",
        Value::Null,
    )
    .await
    .expect_error(422, "invalid_name");
    app.call(
        &alice,
        "POST",
        "/hub/api/users/alice/servers/y",
        json!({"profile": "nope"}),
    )
    .await
    .expect_error(422, "invalid_value");

    // Another user sees nothing of alice and cannot act on her servers.
    app.call(&bob, "GET", "/hub/api/users/alice", Value::Null)
        .await
        .expect_error(404, "not_found");
    app.call(&bob, "POST", "/hub/api/users/alice/server", Value::Null)
        .await
        .expect_error(404, "not_found");
    app.call(&bob, "DELETE", "/hub/api/users/alice/server", Value::Null)
        .await
        .expect_error(404, "not_found");

    // Stop: 202 while it was active, 204 once stopped.
    let r = app
        .call(&alice, "DELETE", "/hub/api/users/alice/server", Value::Null)
        .await;
    assert_eq!(r.status, 202);
    let r = app
        .call(&alice, "DELETE", "/hub/api/users/alice/server", Value::Null)
        .await;
    assert_eq!(r.status, 204);
    app.call(
        &alice,
        "DELETE",
        "/hub/api/users/alice/servers/none",
        Value::Null,
    )
    .await
    .expect_error(404, "not_found");
    // Removing a named server deletes its workspace.
    let r = app
        .call(
            &alice,
            "DELETE",
            "/hub/api/users/alice/servers/big",
            json!({"remove": true}),
        )
        .await;
    assert_eq!(r.status, 202);
    let big = app
        .call(&alice, "GET", "/api/v1/workspaces?name=big", Value::Null)
        .await;
    assert!(big.expect(200)["items"][0]["deletion_requested_at"].is_string());
    assert!(app
        .audit_actions()
        .await
        .contains(&"workspace.stop".to_owned()));
}

#[tokio::test]
async fn users_list_paginates_and_activity_is_recorded() {
    let app = TestApp::sqlite().await;
    let alice = app.user("alice", None).await;
    app.user("bob", None).await;
    let all = app
        .call(&app.admin, "GET", "/hub/api/users", Value::Null)
        .await;
    let names: Vec<&str> = all
        .expect(200)
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "alice", "bob"]);
    // Non-admins list only themselves.
    let mine = app.call(&alice, "GET", "/hub/api/users", Value::Null).await;
    assert_eq!(mine.expect(200).as_array().unwrap().len(), 1);
    let page = app
        .send(
            req("GET", "/hub/api/users?offset=1&limit=1")
                .token(&app.admin)
                .header("accept", "application/jupyterhub-pagination+json"),
        )
        .await;
    let page = page.expect(200);
    assert_eq!(page["items"][0]["name"], "alice");
    assert_eq!(page["_pagination"]["total"], 3);
    assert_eq!(page["_pagination"]["next"]["offset"], 2);
    app.call(
        &app.admin,
        "GET",
        "/hub/api/users?state=sleepy",
        Value::Null,
    )
    .await
    .expect_error(400, "invalid_query");
    app.call(&app.admin, "GET", "/hub/api/users?color=red", Value::Null)
        .await
        .expect_error(400, "invalid_query");

    // Activity as jupyterhub-singleuser reports it.
    app.call(&alice, "POST", "/hub/api/users/alice/server", Value::Null)
        .await
        .expect(202);
    let body = json!({
        "last_activity": "2026-11-23T06:00:00.000000Z",
        "servers": {"": {"last_activity": "2026-11-23T06:01:02.500000+00:00"}},
    });
    let r = app
        .call(&alice, "POST", "/hub/api/users/alice/activity", body)
        .await;
    assert_eq!(r.status, 200);
    let user = app
        .call(&alice, "GET", "/hub/api/users/alice", Value::Null)
        .await;
    let user = user.expect(200);
    assert_eq!(user["last_activity"], "2026-11-23T06:01:02.5Z");
    assert_eq!(
        user["servers"][""]["last_activity"],
        "2026-11-23T06:01:02.5Z"
    );
    let bad = json!({"servers": {"": {"last_activity": "yesterday"}}});
    app.call(&alice, "POST", "/hub/api/users/alice/activity", bad)
        .await
        .expect_error(422, "invalid_value");
    let unknown = json!({"servers": {"nope": {"last_activity": "2026-11-23T06:00:00Z"}}});
    app.call(&alice, "POST", "/hub/api/users/alice/activity", unknown)
        .await
        .expect_error(404, "not_found");
}
