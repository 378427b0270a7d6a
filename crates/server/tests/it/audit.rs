//! The audit log: every mutation leaves exactly one record, and the log filters by
//! user, action and time.

use serde_json::{json, Value};

use crate::{req, TestApp, ADMIN_PASSWORD};

#[tokio::test]
async fn every_mutation_leaves_one_audit_record() {
    let app = TestApp::sqlite().await;
    let carol_token = app.user("carol", None).await;
    let carol: &str = &carol_token;
    let ws = app.workspace(carol, json!({"name": "nb"})).await;
    let path = format!("/api/v1/workspaces/{}", ws["id"].as_str().unwrap());
    let admin: &str = &app.admin;
    let session = app.login("admin", ADMIN_PASSWORD).await;

    // (who, method, uri, body, expected action, expected target)
    let steps: Vec<(&str, &str, String, Value, &str, &str)> = vec![
        (
            admin,
            "POST",
            "/api/v1/users".into(),
            json!({"name": "dave"}),
            "user.create",
            "dave",
        ),
        (
            admin,
            "PATCH",
            "/api/v1/users/dave".into(),
            json!({"disabled": true}),
            "user.update",
            "dave",
        ),
        (
            admin,
            "POST",
            "/api/v1/groups".into(),
            json!({"name": "team", "members": ["carol"]}),
            "group.create",
            "team",
        ),
        (
            admin,
            "POST",
            "/api/v1/groups/team/members".into(),
            json!({"users": ["dave"]}),
            "group.add_members",
            "team",
        ),
        (
            admin,
            "DELETE",
            "/api/v1/groups/team/members/dave".into(),
            Value::Null,
            "group.remove_member",
            "team",
        ),
        (
            admin,
            "DELETE",
            "/api/v1/groups/team".into(),
            Value::Null,
            "group.delete",
            "team",
        ),
        (
            admin,
            "DELETE",
            "/api/v1/users/dave".into(),
            Value::Null,
            "user.delete",
            "dave",
        ),
        (
            admin,
            "POST",
            "/api/v1/profiles".into(),
            json!({"name": "gpu", "display_name": "GPU", "cpu": 8}),
            "profile.create",
            "gpu",
        ),
        (
            admin,
            "PATCH",
            "/api/v1/profiles/gpu".into(),
            json!({"cpu": 4.5}),
            "profile.update",
            "gpu",
        ),
        (
            carol,
            "PATCH",
            path.clone(),
            json!({"profile": "gpu"}),
            "workspace.update",
            "carol/nb",
        ),
        (
            carol,
            "POST",
            format!("{path}/start"),
            Value::Null,
            "workspace.start",
            "carol/nb",
        ),
        (
            carol,
            "POST",
            format!("{path}/stop"),
            Value::Null,
            "workspace.stop",
            "carol/nb",
        ),
        (
            carol,
            "PATCH",
            path.clone(),
            json!({"profile": "standard"}),
            "workspace.update",
            "carol/nb",
        ),
        (
            admin,
            "DELETE",
            "/api/v1/profiles/gpu".into(),
            Value::Null,
            "profile.delete",
            "gpu",
        ),
        (
            carol,
            "DELETE",
            path.clone(),
            Value::Null,
            "workspace.delete",
            "carol/nb",
        ),
        (
            carol,
            "POST",
            "/api/v1/users/carol/tokens".into(),
            json!({"note": "n"}),
            "token.create",
            "",
        ),
        (
            carol,
            "POST",
            "/api/v1/workspaces".into(),
            json!({"name": "nb2"}),
            "workspace.create",
            "carol/nb2",
        ),
    ];
    for (token, method, uri, body, action, target) in steps {
        let before = app.audit_actions().await.len();
        let r = app.call(token, method, &uri, body).await;
        assert!(r.status.is_success(), "{method} {uri}: {r:?}");
        let after = app
            .call(admin, "GET", "/api/v1/audit?limit=2", Value::Null)
            .await;
        let newest = &after.expect(200)["items"][0];
        assert_eq!(
            app.audit_actions().await.len(),
            before + 1,
            "{method} {uri}"
        );
        assert_eq!(newest["action"], action, "{method} {uri}");
        assert_eq!(newest["outcome"], "success", "{method} {uri}");
        assert_eq!(
            newest["request_id"],
            r.header("x-request-id").unwrap(),
            "{method} {uri}"
        );
        let actor = if token == admin { "admin" } else { "carol" };
        assert_eq!(newest["actor"], actor, "{method} {uri}");
        if !target.is_empty() {
            assert_eq!(newest["target"], target, "{method} {uri}");
        }
    }
    // The token's record names the token id, never the secret.
    let tokens = app
        .call(carol, "GET", "/api/v1/users/carol/tokens", Value::Null)
        .await;
    let newest_token = tokens.expect(200).as_array().unwrap().last().unwrap()["id"].clone();
    let r = app
        .call(
            admin,
            "GET",
            "/api/v1/audit?action=token.create&user=carol",
            Value::Null,
        )
        .await;
    assert_eq!(r.expect(200)["items"][0]["target"], newest_token);
    assert!(!r.body.to_string().contains(carol));

    // A logout, by cookie.
    let r = app
        .send(req("POST", "/api/v1/auth/logout").session(&session, Some(&session.csrf)))
        .await;
    r.expect(204);
    assert_eq!(app.audit_actions().await.last().unwrap(), "auth.logout");
}

#[tokio::test]
async fn the_log_filters_by_user_action_and_time() {
    let app = TestApp::sqlite().await;
    let r = app
        .send(
            req("POST", "/api/v1/auth/login")
                .json(&json!({"username": "admin", "password": "not the password"})),
        )
        .await;
    r.expect_error(401, "invalid_credentials");
    let failed_login_request = r.header("x-request-id").unwrap().to_owned();
    let carol = app.user("carol", None).await;
    let ws = app.workspace(&carol, json!({"name": "nb"})).await;
    let path = format!("/api/v1/workspaces/{}", ws["id"].as_str().unwrap());
    app.call(&carol, "POST", &format!("{path}/start"), Value::Null)
        .await
        .expect(202);
    app.call(&carol, "DELETE", &path, Value::Null)
        .await
        .expect(202);
    app.call(
        &app.admin,
        "POST",
        "/api/v1/profiles",
        json!({"name": "big", "display_name": "Big"}),
    )
    .await
    .expect(201);

    assert_eq!(
        app.audit_actions().await,
        [
            "system.bootstrap",
            "auth.login",
            "token.create",
            "auth.login",
            "user.create",
            "token.create",
            "workspace.create",
            "workspace.start",
            "workspace.delete",
            "profile.create",
        ]
    );
    let audit = |query: &str| {
        let uri = format!("/api/v1/audit{query}");
        let app = &app;
        async move { app.call(&app.admin, "GET", &uri, Value::Null).await }
    };
    let r = audit("?action=auth.login").await;
    let logins = r.expect(200)["items"].as_array().unwrap();
    assert_eq!(logins.len(), 2);
    let failed = &logins[0];
    assert_eq!(failed["outcome"], "failure");
    assert_eq!(failed["actor"], Value::Null);
    assert_eq!(failed["target"], "admin");
    assert_eq!(failed["request_id"], failed_login_request.as_str());
    assert!(!failed.to_string().contains("not the password"), "{failed}");
    assert_eq!(logins[1]["outcome"], "success");
    assert_eq!(logins[1]["actor"], "admin");

    let actions = |r: &crate::Reply| -> Vec<String> {
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["action"].as_str().unwrap().to_owned())
            .collect()
    };
    let r = audit("?user=carol").await;
    r.expect(200);
    assert_eq!(
        actions(&r),
        ["workspace.delete", "workspace.start", "workspace.create"]
    );
    let r = audit("?action=workspace").await;
    assert_eq!(
        actions(&r),
        ["workspace.delete", "workspace.start", "workspace.create"]
    );
    let r = audit("?action=workspace.start&user=carol").await;
    assert_eq!(actions(&r), ["workspace.start"]);
    assert_eq!(r.body["items"][0]["target"], "carol/nb");
    // What is neither an action nor a family is refused, naming the families,
    // rather than matching nothing (a part of a family is no family).
    for bogus in ["work", "bogus", "workspace.", "workspace.%25", "WORKSPACE"] {
        let r = audit(&format!("?action={bogus}")).await;
        r.expect_error(400, "invalid_query");
        let message = r.body["message"].as_str().unwrap();
        assert!(
            message.starts_with("action: ") && message.contains("auth, group, profile"),
            "{message}"
        );
    }
    let r = audit("?user=nobody").await;
    assert_eq!(actions(&r), Vec::<String>::new());

    // Time windows, in RFC 3339 with any offset.
    let r = audit("?since=2000-01-01T00:00:00Z").await;
    assert_eq!(actions(&r).len(), 10);
    let r = audit("?until=2000-01-01T00:00:00Z").await;
    assert_eq!(actions(&r).len(), 0);
    let r = audit("?since=2999-01-01T00:00:00%2B02:00").await;
    assert_eq!(actions(&r).len(), 0);
    let r = audit("?until=2999-01-01T00:00:00Z&since=2000-01-01T01:00:00-05:00").await;
    assert_eq!(actions(&r).len(), 10);
    // The window around one record holds just it: since is inclusive, until exclusive.
    let r = audit("?action=workspace.start").await;
    let at = r.body["items"][0]["at"]
        .as_str()
        .unwrap()
        .replace('+', "%2B");
    let r = audit(&format!("?since={at}&action=workspace")).await;
    assert!(
        actions(&r).contains(&"workspace.start".to_owned()),
        "{:?}",
        actions(&r)
    );
    let r = audit(&format!("?until={at}&action=workspace.start")).await;
    assert_eq!(actions(&r).len(), 0);

    // Pages, newest first, through `before`.
    let r = audit("?limit=4").await;
    assert_eq!(
        actions(&r),
        [
            "profile.create",
            "workspace.delete",
            "workspace.start",
            "workspace.create"
        ]
    );
    let next = r.body["next"].as_str().unwrap().to_owned();
    let r = audit(&format!("?limit=4&before={next}")).await;
    assert_eq!(
        actions(&r),
        ["token.create", "user.create", "auth.login", "token.create"]
    );
    let next = r.body["next"].as_str().unwrap().to_owned();
    let r = audit(&format!("?limit=4&before={next}")).await;
    assert_eq!(actions(&r), ["auth.login", "system.bootstrap"]);
    assert_eq!(r.body["next"], Value::Null);

    for query in [
        "?since=yesterday",
        "?since=2024-01-01",
        "?until=2024-01-01T00:00:00",
        "?since=",
        "?limit=0",
        "?limit=501",
        "?who=carol",
    ] {
        audit(query).await.expect_error(400, "invalid_query");
    }
}
