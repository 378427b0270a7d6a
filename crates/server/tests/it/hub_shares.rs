//! JupyterHub's shares under `/hub/api`: an owner lets another user, or a
//! group's members, use one workspace, and takes it back.

use serde_json::{json, Value};

use crate::{req, Session, TestApp};

/// Whether `s` may open workspace `id` (the OAuth provider asks what the proxy
/// asks: `access:servers` on it).
async fn may_open(app: &TestApp, s: &Session, id: &str, path: &str) -> bool {
    let uri = format!(
        "/hub/api/oauth2/authorize?client_id=berth-ws-{id}&redirect_uri={path}oauth_callback\
         &response_type=code"
    );
    let r = app.send_unchecked(req("GET", &uri).session(s, None)).await;
    match r.status.as_u16() {
        302 => true,
        403 => false,
        other => panic!("authorize answered {other}: {r:?}"),
    }
}

#[tokio::test]
async fn shares_grant_access_to_one_workspace_and_are_revoked() {
    let app = TestApp::sqlite().await;
    let mut sessions = Vec::new();
    for name in ["alice", "bob", "carol"] {
        app.call(
            &app.admin,
            "POST",
            "/api/v1/users",
            json!({"name": name, "password": format!("{name}-password")}),
        )
        .await
        .expect(201);
        sessions.push(app.login(name, &format!("{name}-password")).await);
    }
    let (_, bob_s, carol_s) = (&sessions[0], &sessions[1], &sessions[2]);
    let alice = app.token_for("alice", None).await;
    let bob = app.token_for("bob", None).await;
    let nb = app.workspace(&alice, json!({"name": "nb"})).await;
    let other = app.workspace(&alice, json!({"name": "other"})).await;
    let (nb_id, other_id) = (nb["id"].as_str().unwrap(), other["id"].as_str().unwrap());
    let path = "/user/alice/nb/";
    app.call(
        &app.admin,
        "POST",
        "/hub/api/groups/physics",
        json!({"users": ["carol"]}),
    )
    .await
    .expect(201);

    assert!(!may_open(&app, bob_s, nb_id, path).await);
    // Only the owner (or an admin) sees and grants shares.
    app.call(&bob, "GET", "/hub/api/shares/alice/nb", Value::Null)
        .await
        .expect_error(404, "not_found");
    app.call(
        &bob,
        "POST",
        "/hub/api/shares/alice/nb",
        json!({"user": "bob"}),
    )
    .await
    .expect_error(404, "not_found");
    let before = app.snapshot().await;
    for body in [
        json!({"user": "bob", "scopes": ["servers"]}),
        json!({"user": "bob", "group": "physics"}),
        json!({}),
        json!({"user": "nobody"}),
        json!({"group": "Bad Name"}),
    ] {
        let r = app
            .call(&alice, "POST", "/hub/api/shares/alice/nb", body.clone())
            .await;
        assert_eq!(r.status, 400, "{body}: {r:?}");
    }
    assert_eq!(app.snapshot().await, before, "a refused grant wrote");

    let r = app
        .call(
            &alice,
            "POST",
            "/hub/api/shares/alice/nb",
            json!({"user": "bob"}),
        )
        .await;
    let share = r.expect(200);
    assert_eq!(share["kind"], "user");
    assert_eq!(share["user"]["name"], "bob");
    assert_eq!(share["scopes"], json!(["access:servers!server=alice/nb"]));
    assert_eq!(share["server"]["url"], path);
    // Again: no second share.
    app.call(
        &alice,
        "POST",
        "/hub/api/shares/alice/nb",
        json!({"user": "bob", "scopes": ["access:servers"]}),
    )
    .await
    .expect(200);
    let listed = app
        .call(&alice, "GET", "/hub/api/shares/alice/nb", Value::Null)
        .await;
    assert_eq!(listed.expect(200)["items"].as_array().unwrap().len(), 1);

    // Bob may open nb now, and nothing else of alice's; nor may he manage it.
    assert!(may_open(&app, bob_s, nb_id, path).await);
    assert!(!may_open(&app, bob_s, other_id, "/user/alice/other/").await);
    app.call(
        &bob,
        "DELETE",
        "/hub/api/users/alice/servers/nb",
        Value::Null,
    )
    .await
    .expect_error(404, "not_found");
    let mine = app
        .call(&bob, "GET", "/hub/api/users/bob/shared", Value::Null)
        .await;
    let mine = mine.expect(200)["items"].as_array().unwrap().clone();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["server"]["user"]["name"], "alice");

    // A group's members share what the group is given, while they are members.
    assert!(!may_open(&app, carol_s, nb_id, path).await);
    app.call(
        &alice,
        "POST",
        "/hub/api/shares/alice/nb",
        json!({"group": "physics"}),
    )
    .await
    .expect(200);
    assert!(may_open(&app, carol_s, nb_id, path).await);
    app.call(
        &app.admin,
        "DELETE",
        "/hub/api/groups/physics/users",
        json!({"users": ["carol"]}),
    )
    .await
    .expect(200);
    assert!(!may_open(&app, carol_s, nb_id, path).await);

    // Revoking: one share, then all of them.
    let r = app
        .call(
            &alice,
            "PATCH",
            "/hub/api/shares/alice/nb",
            json!({"user": "bob", "scopes": ["read:servers"]}),
        )
        .await;
    assert_eq!(
        r.expect(200)["user"]["name"],
        "bob",
        "revoking what it lacks keeps it"
    );
    let r = app
        .call(
            &alice,
            "PATCH",
            "/hub/api/shares/alice/nb",
            json!({"user": "bob"}),
        )
        .await;
    assert_eq!(r.expect(200), &json!({}));
    assert!(!may_open(&app, bob_s, nb_id, path).await);
    let r = app
        .call(&alice, "DELETE", "/hub/api/shares/alice/nb", Value::Null)
        .await;
    assert_eq!(r.status, 204);
    let listed = app
        .call(&alice, "GET", "/hub/api/shares/alice", Value::Null)
        .await;
    assert_eq!(listed.expect(200)["items"], json!([]));
    let actions = app.audit_actions().await;
    assert_eq!(
        actions
            .iter()
            .filter(|a| a.starts_with("workspace.share"))
            .count(),
        2,
        "{actions:?}"
    );
    assert!(
        actions.contains(&"workspace.unshare".to_owned()),
        "{actions:?}"
    );
}
