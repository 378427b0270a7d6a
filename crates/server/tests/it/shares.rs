//! `/api/v1/workspaces/{id}/shares` and `/api/v1/users/{name}/shared`, and the
//! rules every way of sharing keeps: exactly one of a user and a group, no
//! sharing with the owner, only the owner (or an admin) grants and revokes,
//! and a refused request writes nothing.

use serde_json::{json, Value};

use crate::TestApp;

#[tokio::test]
async fn an_owner_shares_with_users_and_groups_and_revokes() {
    let app = TestApp::sqlite().await;
    let alice = app.user("alice", None).await;
    let bob = app.user("bob", None).await;
    let carol = app.user("carol", None).await;
    app.call(
        &app.admin,
        "POST",
        "/api/v1/groups",
        json!({"name": "physics", "members": ["carol"]}),
    )
    .await
    .expect(201);
    let nb = app.workspace(&alice, json!({"name": "nb"})).await;
    let shares = format!("/api/v1/workspaces/{}/shares", nb["id"].as_str().unwrap());

    let s = app
        .call(&alice, "POST", &shares, json!({"user": "bob"}))
        .await;
    let s = s.expect(201);
    assert_eq!(
        (
            &s["owner"],
            &s["workspace"],
            &s["user"],
            &s["group"],
            &s["url"]
        ),
        (
            &json!("alice"),
            &json!("nb"),
            &json!("bob"),
            &Value::Null,
            &json!("/user/alice/nb/")
        ),
        "{s}"
    );
    // Sharing again changes nothing.
    app.call(&alice, "POST", &shares, json!({"user": "bob"}))
        .await
        .expect(201);
    app.call(&alice, "POST", &shares, json!({"group": "physics"}))
        .await
        .expect(201);
    let list = app.call(&alice, "GET", &shares, Value::Null).await;
    let with: Vec<(&Value, &Value)> = list
        .expect(200)
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (&s["user"], &s["group"]))
        .collect();
    assert_eq!(
        with,
        [
            (&json!("bob"), &Value::Null),
            (&Value::Null, &json!("physics"))
        ]
    );

    // The recipients see it; carol through her group.
    for (who, token) in [("bob", &bob), ("carol", &carol)] {
        let r = app
            .call(
                token,
                "GET",
                &format!("/api/v1/users/{who}/shared"),
                Value::Null,
            )
            .await;
        let items = r.expect(200).as_array().unwrap().clone();
        assert_eq!(items.len(), 1, "{who}: {items:?}");
        assert_eq!(items[0]["workspace"], "nb");
    }
    // Others' lists are not theirs to read.
    app.call(&bob, "GET", "/api/v1/users/carol/shared", Value::Null)
        .await
        .expect_error(404, "not_found");

    // A recipient may use it, not manage its shares.
    for (method, uri, body) in [
        ("GET", shares.clone(), Value::Null),
        ("POST", shares.clone(), json!({"user": "carol"})),
        ("DELETE", format!("{shares}/users/bob"), Value::Null),
    ] {
        app.call(&bob, method, &uri, body)
            .await
            .expect_error(404, "not_found");
    }

    app.call(
        &alice,
        "DELETE",
        &format!("{shares}/users/bob"),
        Value::Null,
    )
    .await
    .expect(204);
    // Revoking what is not there is no error.
    app.call(
        &alice,
        "DELETE",
        &format!("{shares}/users/bob"),
        Value::Null,
    )
    .await
    .expect(204);
    let r = app
        .call(&bob, "GET", "/api/v1/users/bob/shared", Value::Null)
        .await;
    assert_eq!(r.expect(200), &json!([]));
    app.call(&alice, "DELETE", &shares, Value::Null)
        .await
        .expect(204);
    let r = app.call(&alice, "GET", &shares, Value::Null).await;
    assert_eq!(r.expect(200), &json!([]));

    let actions: Vec<String> = app
        .audit_actions()
        .await
        .into_iter()
        .filter(|a| a.contains("share"))
        .collect();
    assert_eq!(
        actions,
        [
            "workspace.share",
            "workspace.share",
            "workspace.unshare",
            "workspace.unshare"
        ]
    );
}

#[tokio::test]
async fn bad_shares_are_refused_with_their_field_and_write_nothing() {
    let app = TestApp::sqlite().await;
    let alice = app.user("alice", None).await;
    app.user("bob", None).await;
    let nb = app.workspace(&alice, json!({"name": "nb"})).await;
    let shares = format!("/api/v1/workspaces/{}/shares", nb["id"].as_str().unwrap());
    let before = app.snapshot().await;
    for (body, status, code, message) in [
        (
            json!({"user": "alice"}),
            422,
            "invalid_value",
            "user: alice owns nb",
        ),
        (
            json!({"user": "nobody"}),
            422,
            "invalid_value",
            "user: no such user",
        ),
        (
            json!({"group": "nobody"}),
            422,
            "invalid_value",
            "group: no such group",
        ),
        (json!({"user": "Bob!"}), 422, "invalid_name", "user: "),
        (json!({}), 422, "invalid_value", "name exactly one"),
        (
            json!({"user": "bob", "group": "physics"}),
            422,
            "invalid_value",
            "name exactly one",
        ),
        (
            json!({"user": "bob", "scopes": []}),
            422,
            "invalid_body",
            "",
        ),
        (json!("bob"), 422, "invalid_body", ""),
    ] {
        let r = app.call(&alice, "POST", &shares, body.clone()).await;
        r.expect_error(status, code);
        let got = r.body["message"].as_str().unwrap_or_default();
        assert!(got.starts_with(message), "{body}: {got}");
    }
    // JupyterHub's API refuses sharing with the owner the same way.
    let r = app
        .call(
            &alice,
            "POST",
            "/hub/api/shares/alice/nb",
            json!({"user": "alice"}),
        )
        .await;
    r.expect_error(400, "invalid_value");
    assert_eq!(
        app.snapshot().await,
        before,
        "a refused share wrote nothing"
    );
}
