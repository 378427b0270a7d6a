//! `/hub/api`: JupyterHub's REST API over berth's users and workspaces.

use serde_json::{json, Value};

use crate::{req, TestApp};

/// `GET /hub/api/users/{name}` with `token`, expecting 200.
async fn user_model(app: &TestApp, token: &str, name: &str) -> Value {
    app.call(token, "GET", &format!("/hub/api/users/{name}"), Value::Null)
        .await
        .expect(200)
        .clone()
}

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
    // As JupyterHub: the status says it, the body is empty.
    assert_eq!(r.status, 202);
    assert_eq!(r.body, Value::Null);
    let user = user_model(&app, &alice, "alice").await;
    let server = &user["servers"][""];
    assert_eq!(server["name"], "");
    assert_eq!(server["url"], "/user/alice/");
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
    assert_eq!(r.status, 202);
    let model = user_model(&app, &alice, "alice").await;
    assert_eq!(
        model["servers"]["big"]["user_options"]["profile"],
        "high-memory"
    );
    app.call(
        &alice,
        "POST",
        "/hub/api/users/alice/servers/x",
        json!({"profile": 7}),
    )
    .await
    .expect_error(400, "invalid_body");
    app.call(
        &alice,
        "POST",
        "/hub/api/users/alice/servers/Bad",
        Value::Null,
    )
    .await
    .expect_error(400, "invalid_name");
    app.call(
        &alice,
        "POST",
        "/hub/api/users/alice/servers/y",
        json!({"profile": "nope"}),
    )
    .await
    .expect_error(400, "invalid_value");

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

    // Stop: as JupyterHub, the answer waits for the stop (up to 10 s): 204.
    let r = app
        .call(&alice, "DELETE", "/hub/api/users/alice/server", Value::Null)
        .await;
    assert_eq!(r.status, 204);
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
    // Non-admins list nobody (they lack list:users), as in JupyterHub.
    let mine = app.call(&alice, "GET", "/hub/api/users", Value::Null).await;
    mine.expect_error(403, "forbidden");
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
    // Unknown parameters are ignored, as by JupyterHub; `sort` is known.
    app.call(&app.admin, "GET", "/hub/api/users?color=red", Value::Null)
        .await
        .expect(200);
    let sorted = |q: &'static str| {
        let app = &app;
        async move {
            let r = app
                .call(
                    &app.admin,
                    "GET",
                    &format!("/hub/api/users?{q}"),
                    Value::Null,
                )
                .await;
            r.expect(200)
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["name"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(sorted("sort=name").await, ["admin", "alice", "bob"]);
    assert_eq!(sorted("sort=-name").await, ["bob", "alice", "admin"]);
    assert_eq!(sorted("sort=id").await, ["admin", "alice", "bob"]);
    app.call(&app.admin, "GET", "/hub/api/users?sort=age", Value::Null)
        .await
        .expect_error(400, "invalid_query");

    // Activity as jupyterhub-singleuser reports it.
    app.call(&alice, "POST", "/hub/api/users/alice/server", Value::Null)
        .await
        .expect(202);
    // A server asked to start is active (pending), not ready; filtered
    // before the page is cut.
    assert_eq!(sorted("state=active").await, ["alice"]);
    assert_eq!(sorted("state=inactive").await, ["admin", "bob"]);
    assert_eq!(sorted("state=inactive&offset=1").await, ["bob"]);
    assert!(sorted("state=ready").await.is_empty());
    assert_eq!(sorted("name_filter=B").await, ["bob"]);
    let body = json!({
        "last_activity": "2026-01-23T06:00:00.000000Z",
        "servers": {"": {"last_activity": "2026-01-23T06:01:02.500000+00:00"}},
    });
    let r = app
        .call(&alice, "POST", "/hub/api/users/alice/activity", body)
        .await;
    assert_eq!(r.status, 200);
    let user = app
        .call(&alice, "GET", "/hub/api/users/alice", Value::Null)
        .await;
    let user = user.expect(200);
    // The user's own activity moved when their token was first used (now),
    // which is later than what the server reported.
    assert!(user["last_activity"].as_str() > Some("2026-01-23T06:01:02.5Z"));
    assert_eq!(
        user["servers"][""]["last_activity"],
        "2026-01-23T06:01:02.5Z"
    );
    let bad = json!({"servers": {"": {"last_activity": "yesterday"}}});
    app.call(&alice, "POST", "/hub/api/users/alice/activity", bad)
        .await
        .expect_error(400, "invalid_value");
    let unknown = json!({"servers": {"nope": {"last_activity": "2026-01-23T06:00:00Z"}}});
    // As JupyterHub: an unknown server is a bad body.
    app.call(&alice, "POST", "/hub/api/users/alice/activity", unknown)
        .await
        .expect_error(400, "invalid_value");
    // Nothing to record, or a time too far ahead (it would hide the server from
    // the culler): refused, as by JupyterHub.
    for body in [
        json!({}),
        json!({"last_activity": "3000-01-01T00:00:00Z"}),
        json!({"servers": {"": {"last_activity": "3000-01-01T00:00:00Z"}}}),
    ] {
        app.call(&alice, "POST", "/hub/api/users/alice/activity", body)
            .await
            .expect_error(400, "invalid_value");
    }
    // The single-user server's own token: activity of its user, nothing more.
    let server = app
        .token_for("alice", Some(&["users:activity!user=alice"]))
        .await;
    let body = json!({"servers": {"": {"last_activity": "2026-01-23T07:00:00Z"}}});
    app.call(
        &server,
        "POST",
        "/hub/api/users/alice/activity",
        body.clone(),
    )
    .await
    .expect(200);
    app.call(&server, "POST", "/hub/api/users/bob/activity", body)
        .await
        .expect_error(404, "not_found");
    app.call(&server, "GET", "/hub/api/users/alice", Value::Null)
        .await
        .expect_error(404, "not_found");
}

#[tokio::test]
async fn stopping_follows_jupyterhub() {
    let app = TestApp::sqlite().await;
    let alice = app.user("alice", None).await;
    // The default server exists for JupyterHub even before it ever ran.
    let r = app
        .call(&alice, "DELETE", "/hub/api/users/alice/server", Value::Null)
        .await;
    assert_eq!(r.status, 204);
    app.call(
        &alice,
        "DELETE",
        "/hub/api/users/alice/servers/nb",
        Value::Null,
    )
    .await
    .expect_error(404, "not_found");
    app.call(
        &alice,
        "POST",
        "/hub/api/users/alice/servers/nb",
        Value::Null,
    )
    .await
    .expect(202);
    let r = app
        .call(
            &alice,
            "DELETE",
            "/hub/api/users/alice/servers/nb",
            json!({"remove": false, "x": 1}),
        )
        .await;
    assert_eq!(r.status, 204);
    // JupyterHub 6's body, and the old one (the whole body as user options):
    // options berth has no use for are ignored, as a spawner ignores them.
    for (server, body) in [
        (
            "y",
            json!({"display_name": "Y", "user_options": {"profile": "high-memory"}}),
        ),
        ("z", json!({"profile": "high-memory", "nope": 1})),
    ] {
        let uri = format!("/hub/api/users/alice/servers/{server}");
        let r = app.call(&alice, "POST", &uri, body).await;
        assert_eq!(r.status, 202);
        let model = user_model(&app, &alice, "alice").await;
        assert_eq!(
            model["servers"][server]["user_options"]["profile"],
            "high-memory"
        );
        // Stopped again at once, to stay within alice's memory quota.
        let r = app.call(&alice, "DELETE", &uri, Value::Null).await;
        assert_eq!(r.status, 204);
    }
    for body in [
        json!({"user_options": 3}),
        json!({"display_name": 3}),
        json!([1]),
        json!({"user_options": {"profile": 7}}),
    ] {
        app.call(&alice, "POST", "/hub/api/users/alice/servers/w", body)
            .await
            .expect_error(400, "invalid_body");
    }
    // Stopped servers are listed only on request, and "0"/"false" mean no.
    let servers = |q: &'static str| {
        let app = &app;
        let alice = &alice;
        async move {
            let r = app
                .call(
                    alice,
                    "GET",
                    &format!("/hub/api/users/alice{q}"),
                    Value::Null,
                )
                .await;
            r.expect(200)["servers"].as_object().unwrap().len()
        }
    };
    assert_eq!(servers("").await, 0);
    assert_eq!(servers("?include_stopped_servers=false").await, 0);
    assert_eq!(servers("?include_stopped_servers=0").await, 0);
    // nb, y and z, all stopped, and (as in JupyterHub) the default server
    // that never ran.
    assert_eq!(servers("?include_stopped_servers").await, 4);
    assert_eq!(servers("?include_stopped_servers=1").await, 4);
    // The identity of a token includes its id.
    let me = app.call(&alice, "GET", "/hub/api/user", Value::Null).await;
    assert!(me.expect(200)["token_id"].is_string());
}
