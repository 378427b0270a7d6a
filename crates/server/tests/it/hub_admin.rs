//! `/hub/api` admin endpoints: users, tokens and groups as JupyterHub manages
//! them, authorized and audited as their `/api/v1` equivalents.

use serde_json::{json, Value};

use crate::{names, req, TestApp};

/// The audit records of `action`, oldest first, as `(target, detail)`.
async fn audited(app: &TestApp, action: &str) -> Vec<(String, String)> {
    let uri = format!("/api/v1/audit?action={action}&limit=500");
    let r = app.call(&app.admin, "GET", &uri, Value::Null).await;
    let mut records: Vec<(String, String)> = r.expect(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["action"] == action)
        .map(|a| {
            (
                a["target"].as_str().unwrap().to_owned(),
                a["detail"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    records.reverse();
    records
}

#[tokio::test]
async fn admins_create_change_and_delete_users() {
    let app = TestApp::sqlite().await;
    let admin = app.admin.clone();

    // Several at once; existing ones are skipped, and all existing is a 409.
    let r = app
        .call(
            &admin,
            "POST",
            "/hub/api/users",
            json!({"usernames": ["carol", "dave", "carol"]}),
        )
        .await;
    let created = r.expect(201);
    assert_eq!(names(created), ["carol", "dave"]);
    assert_eq!(created[0]["kind"], "user");
    assert_eq!(created[0]["admin"], false);
    assert_eq!(created[0]["roles"], json!(["user"]));
    let r = app
        .call(
            &admin,
            "POST",
            "/hub/api/users",
            json!({"usernames": ["carol", "erin"], "admin": true}),
        )
        .await;
    let created = r.expect(201);
    assert_eq!(names(created), ["erin"]);
    assert_eq!(created[0]["admin"], true);
    app.call(
        &admin,
        "POST",
        "/hub/api/users",
        json!({"usernames": ["carol", "dave"]}),
    )
    .await
    .expect_error(409, "already_exists");

    // One at a time, with or without a body.
    let r = app
        .call(
            &admin,
            "POST",
            "/hub/api/users/frank",
            json!({"admin": true}),
        )
        .await;
    assert_eq!(r.expect(201)["admin"], true);
    let r = app
        .call(&admin, "POST", "/hub/api/users/gina", Value::Null)
        .await;
    assert_eq!(r.expect(201)["name"], "gina");
    app.call(&admin, "POST", "/hub/api/users/gina", Value::Null)
        .await
        .expect_error(409, "already_exists");
    app.call(&admin, "POST", "/hub/api/users/Gina", Value::Null)
        .await
        .expect_error(400, "invalid_name");

    // The same audit records as `/api/v1` writes.
    app.call(&admin, "POST", "/api/v1/users", json!({"name": "hank"}))
        .await
        .expect(201);
    assert_eq!(
        audited(&app, "user.create").await,
        [
            ("carol", r#"{"admin":false}"#),
            ("dave", r#"{"admin":false}"#),
            ("erin", r#"{"admin":true}"#),
            ("frank", r#"{"admin":true}"#),
            ("gina", r#"{"admin":false}"#),
            ("hank", r#"{"admin":false}"#),
        ]
        .map(|(t, d)| (t.to_owned(), d.to_owned()))
    );

    // Changing the admin flag; the current name may be sent, another may not.
    let r = app
        .call(
            &admin,
            "PATCH",
            "/hub/api/users/carol",
            json!({"name": "carol", "admin": true}),
        )
        .await;
    let carol = r.expect(200);
    assert_eq!(carol["admin"], true);
    assert_eq!(carol["roles"], json!(["user", "admin"]));
    // Renamed, and back; a name taken is a bad request, as in JupyterHub.
    let renamed = app
        .call(
            &admin,
            "PATCH",
            "/hub/api/users/carol",
            json!({"name": "caroline"}),
        )
        .await;
    assert_eq!(renamed.expect(200)["name"], "caroline");
    app.call(&admin, "GET", "/hub/api/users/carol", Value::Null)
        .await
        .expect_error(404, "not_found");
    app.call(
        &admin,
        "PATCH",
        "/hub/api/users/caroline",
        json!({"name": "admin"}),
    )
    .await
    .expect_error(400, "invalid_value");
    app.call(
        &admin,
        "PATCH",
        "/hub/api/users/caroline",
        json!({"name": "carol"}),
    )
    .await
    .expect(200);
    app.call(
        &admin,
        "PATCH",
        "/hub/api/users/nobody",
        json!({"admin": true}),
    )
    .await
    .expect_error(404, "not_found");
    // As in `/api/v1`, admins neither demote nor delete themselves.
    app.call(
        &admin,
        "PATCH",
        "/hub/api/users/admin",
        json!({"admin": false}),
    )
    .await
    .expect_error(409, "conflict");
    app.call(&admin, "DELETE", "/hub/api/users/admin", Value::Null)
        .await
        .expect_error(409, "conflict");
    let updates = audited(&app, "user.update").await;
    let targets: Vec<&str> = updates.iter().map(|u| u.0.as_str()).collect();
    assert_eq!(targets, ["carol", "carol", "caroline"], "{updates:?}");

    // Deleting; a user who owns a workspace (a server) is refused.
    let r = app
        .call(&admin, "DELETE", "/hub/api/users/dave", Value::Null)
        .await;
    assert_eq!(r.status, 204);
    app.call(&admin, "GET", "/hub/api/users/dave", Value::Null)
        .await
        .expect_error(404, "not_found");
    app.call(&admin, "DELETE", "/hub/api/users/dave", Value::Null)
        .await
        .expect_error(404, "not_found");
    let gina = app.token_for("gina", None).await;
    app.workspace(&gina, json!({"name": "nb"})).await;
    app.call(&admin, "DELETE", "/hub/api/users/gina", Value::Null)
        .await
        .expect_error(409, "conflict");
    assert_eq!(
        audited(&app, "user.delete").await,
        [("dave".to_owned(), String::new())]
    );
}

#[tokio::test]
async fn non_admins_cannot_manage_users() {
    let app = TestApp::sqlite().await;
    let alice = app.user("alice", None).await;
    app.user("bob", None).await;
    let before = app.snapshot().await;
    let refused: [(&str, String, Value, u16, &str); 7] = [
        (
            "POST",
            "/hub/api/users".into(),
            json!({"usernames": ["mallory"]}),
            403,
            "forbidden",
        ),
        (
            "POST",
            "/hub/api/users/mallory".into(),
            Value::Null,
            403,
            "forbidden",
        ),
        (
            "PATCH",
            "/hub/api/users/alice".into(),
            json!({"admin": true}),
            403,
            "forbidden",
        ),
        // Another user is not even visible.
        (
            "PATCH",
            "/hub/api/users/bob".into(),
            json!({"admin": true}),
            404,
            "not_found",
        ),
        (
            "PATCH",
            "/hub/api/users/bob".into(),
            json!({"name": "robert"}),
            404,
            "not_found",
        ),
        // Without `delete:users` at all, 403 before any lookup, as JupyterHub.
        (
            "DELETE",
            "/hub/api/users/bob".into(),
            Value::Null,
            403,
            "forbidden",
        ),
        (
            "DELETE",
            "/hub/api/users/alice".into(),
            Value::Null,
            403,
            "forbidden",
        ),
    ];
    for (method, uri, body, status, code) in refused {
        app.call(&alice, method, &uri, body)
            .await
            .expect_error(status, code);
    }
    // Unauthenticated is a 403, as in JupyterHub.
    app.call("", "POST", "/hub/api/users/mallory", Value::Null)
        .await
        .expect_error(403, "unauthenticated");
    assert_eq!(app.snapshot().await, before, "a refused request wrote");
}

#[tokio::test]
async fn users_manage_their_own_tokens() {
    let app = TestApp::sqlite().await;
    let alice = app.user("alice", None).await;
    let bob = app.user("bob", None).await;

    let r = app
        .call(
            &alice,
            "POST",
            "/hub/api/users/alice/tokens",
            json!({"note": "ci", "expires_in": 3600, "scopes": ["read:users"]}),
        )
        .await;
    let created = r.expect(201).clone();
    let secret = created["token"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("berth_"), "{created}");
    assert_eq!(created["kind"], "api_token");
    assert_eq!(created["user"], "alice");
    assert_eq!(created["note"], "ci");
    let scopes = created["scopes"].as_array().unwrap();
    assert!(
        scopes.contains(&json!("read:users!user=alice")),
        "{created}"
    );
    assert!(!scopes.contains(&json!("tokens")), "{created}");
    assert_eq!(created["roles"], json!([]));
    assert_eq!(created["session_id"], Value::Null);
    assert_eq!(created["last_activity"], Value::Null);
    assert!(created["expires_at"].is_string(), "{created}");

    // The new token works on the hub API.
    let me = app.call(&secret, "GET", "/hub/api/user", Value::Null).await;
    assert_eq!(me.expect(200)["name"], "alice");
    let r = app
        .call(&secret, "GET", "/hub/api/users/alice", Value::Null)
        .await;
    assert_eq!(r.expect(200)["name"], "alice");

    // Listed (without the secret) and read by id.
    let r = app
        .call(&alice, "GET", "/hub/api/users/alice/tokens", Value::Null)
        .await;
    let listed = r.expect(200)["api_tokens"].as_array().unwrap().clone();
    let mine: Vec<&Value> = listed.iter().filter(|t| t["id"] == id.as_str()).collect();
    assert_eq!(mine.len(), 1, "{listed:?}");
    assert!(mine[0].get("token").is_none());
    let uri = format!("/hub/api/users/alice/tokens/{id}");
    let r = app.call(&alice, "GET", &uri, Value::Null).await;
    assert_eq!(r.expect(200)["note"], "ci");

    // JupyterHub's default note, with or without a body.
    let r = app
        .call(&alice, "POST", "/hub/api/users/alice/tokens", Value::Null)
        .await;
    assert_eq!(r.expect(201)["note"], "Requested via api");
    let r = app
        .call(&app.admin, "POST", "/hub/api/users/alice/tokens", json!({}))
        .await;
    assert_eq!(r.expect(201)["note"], "Requested via api by user admin");

    // Another user sees nothing of alice's tokens, nor by id under their own name.
    let before = app.snapshot().await;
    // As JupyterHub: making a token for someone who is not there and for
    // someone one may not are the same 403.
    for user in ["alice", "nobody"] {
        let path = format!("/hub/api/users/{user}/tokens");
        app.call(&bob, "POST", &path, Value::Null)
            .await
            .expect_error(403, "forbidden");
    }
    for (method, uri) in [
        ("GET", "/hub/api/users/alice/tokens".to_owned()),
        ("GET", uri.clone()),
        ("DELETE", uri.clone()),
        ("GET", format!("/hub/api/users/bob/tokens/{id}")),
        ("DELETE", format!("/hub/api/users/bob/tokens/{id}")),
    ] {
        app.call(&bob, method, &uri, Value::Null)
            .await
            .expect_error(404, "not_found");
    }
    // A token without the `tokens` scopes manages none, not even its owner's:
    // the hub says 403 before any lookup, as JupyterHub; `/api/v1` does not
    // tell that the token is there.
    app.call(&secret, "DELETE", &uri, Value::Null)
        .await
        .expect_error(403, "forbidden");
    app.call(
        &secret,
        "DELETE",
        &format!("/api/v1/users/alice/tokens/{id}"),
        Value::Null,
    )
    .await
    .expect_error(404, "not_found");
    app.call(&secret, "POST", "/hub/api/users/alice/tokens", Value::Null)
        .await
        .expect_error(403, "forbidden");
    app.call(&secret, "POST", "/api/v1/users/alice/tokens", json!({}))
        .await
        .expect_error(403, "forbidden");
    // Nor may a token hold more than its owner.
    app.call(
        &alice,
        "POST",
        "/hub/api/users/alice/tokens",
        json!({"scopes": ["admin:users"]}),
    )
    .await
    .expect_error(403, "forbidden");
    assert_eq!(app.snapshot().await, before, "a refused request wrote");

    // Revoked: it no longer authenticates, and is gone.
    let r = app.call(&alice, "DELETE", &uri, Value::Null).await;
    assert_eq!(r.status, 204);
    app.call(&secret, "GET", "/hub/api/users/alice", Value::Null)
        .await
        .expect_error(403, "unauthenticated");
    app.call(&alice, "GET", &uri, Value::Null)
        .await
        .expect_error(404, "not_found");
    app.call(&alice, "DELETE", &uri, Value::Null)
        .await
        .expect_error(404, "not_found");
    assert_eq!(
        audited(&app, "token.delete").await,
        [(id, "owner=alice".to_owned())]
    );
    // Three tokens created here, as `/api/v1` records them; two by setup.
    let creates = audited(&app, "token.create").await;
    assert_eq!(creates.len(), 6, "{creates:?}");
    assert!(
        creates[3].1.starts_with("owner=alice scopes="),
        "{creates:?}"
    );
    assert!(creates[3].1.contains("read:users"), "{creates:?}");
    // As in JupyterHub: 0 (like null) means no expiry; 60.0 is 60 seconds.
    for (lifetime, expires) in [(json!(0), false), (json!(60.0), true)] {
        let body = json!({"expires_in": lifetime});
        let r = app
            .call(&alice, "POST", "/hub/api/users/alice/tokens", body)
            .await;
        assert_eq!(r.expect(201)["expires_at"].is_string(), expires, "{r:?}");
    }
}

#[tokio::test]
async fn admins_manage_groups_and_members() {
    let app = TestApp::sqlite().await;
    let admin = app.admin.clone();
    let alice = app.user("alice", None).await;
    app.user("bob", None).await;

    // Several at once with the same members; one existing refuses them all.
    let r = app
        .call(
            &admin,
            "POST",
            "/hub/api/groups",
            json!({"groups": ["a", "b"], "users": ["alice"]}),
        )
        .await;
    let created = r.expect(201);
    assert_eq!(names(created), ["a", "b"]);
    assert_eq!(
        created[0],
        json!({"kind": "group", "name": "a", "users": ["alice"], "roles": [], "properties": {}})
    );
    app.call(
        &admin,
        "POST",
        "/hub/api/groups",
        json!({"groups": ["c", "b"]}),
    )
    .await
    .expect_error(409, "already_exists");
    app.call(&admin, "GET", "/hub/api/groups/c", Value::Null)
        .await
        .expect_error(404, "not_found");

    // One at a time.
    let r = app
        .call(
            &admin,
            "POST",
            "/hub/api/groups/c",
            json!({"users": ["bob"]}),
        )
        .await;
    assert_eq!(r.expect(201)["users"], json!(["bob"]));
    let r = app
        .call(&admin, "POST", "/hub/api/groups/d", Value::Null)
        .await;
    assert_eq!(r.expect(201)["users"], json!([]));
    app.call(&admin, "POST", "/hub/api/groups/d", Value::Null)
        .await
        .expect_error(409, "already_exists");

    // Listed, and paginated on request.
    let r = app
        .call(&admin, "GET", "/hub/api/groups", Value::Null)
        .await;
    assert_eq!(names(r.expect(200)), ["a", "b", "c", "d"]);
    let page = app
        .send(
            req("GET", "/hub/api/groups?offset=1&limit=2")
                .token(&admin)
                .header("accept", "application/jupyterhub-pagination+json"),
        )
        .await;
    let page = page.expect(200);
    assert_eq!(names(&page["items"]), ["b", "c"]);
    assert_eq!(page["_pagination"]["total"], 4);
    assert_eq!(page["_pagination"]["next"]["offset"], 3);

    // Members in and out.
    let r = app
        .call(
            &admin,
            "POST",
            "/hub/api/groups/a/users",
            json!({"users": ["bob"]}),
        )
        .await;
    assert_eq!(r.expect(200)["users"], json!(["alice", "bob"]));
    let r = app
        .call(
            &admin,
            "DELETE",
            "/hub/api/groups/a/users",
            json!({"users": ["alice", "alice"]}),
        )
        .await;
    assert_eq!(r.expect(200)["users"], json!(["bob"]));
    let r = app
        .call(&admin, "GET", "/hub/api/users/bob", Value::Null)
        .await;
    assert_eq!(r.expect(200)["groups"], json!(["a", "c"]));

    // A member reads no groups (their own are in their user model), as in
    // JupyterHub, and changes none.
    let r = app
        .call(&alice, "GET", "/hub/api/groups", Value::Null)
        .await;
    r.expect_error(403, "forbidden");
    let r = app
        .call(&alice, "GET", "/hub/api/groups/b", Value::Null)
        .await;
    r.expect_error(403, "forbidden");
    let before = app.snapshot().await;
    let refused: [(&str, &str, Value, u16, &str); 7] = [
        ("GET", "/hub/api/groups/c", Value::Null, 403, "forbidden"),
        (
            "POST",
            "/hub/api/groups",
            json!({"groups": ["e"]}),
            403,
            "forbidden",
        ),
        ("POST", "/hub/api/groups/e", Value::Null, 403, "forbidden"),
        ("DELETE", "/hub/api/groups/b", Value::Null, 403, "forbidden"),
        (
            "POST",
            "/hub/api/groups/b/users",
            json!({"users": ["alice"]}),
            403,
            "forbidden",
        ),
        (
            "DELETE",
            "/hub/api/groups/b/users",
            json!({"users": ["alice"]}),
            403,
            "forbidden",
        ),
        (
            "DELETE",
            "/hub/api/groups/b/users",
            json!({"users": ["nobody"]}),
            403,
            "forbidden",
        ),
    ];
    for (method, uri, body, status, code) in refused {
        app.call(&alice, method, uri, body)
            .await
            .expect_error(status, code);
    }
    assert_eq!(app.snapshot().await, before, "a refused request wrote");

    // Deleted.
    let r = app
        .call(&admin, "DELETE", "/hub/api/groups/d", Value::Null)
        .await;
    assert_eq!(r.status, 204);
    app.call(&admin, "GET", "/hub/api/groups/d", Value::Null)
        .await
        .expect_error(404, "not_found");
    app.call(&admin, "DELETE", "/hub/api/groups/d", Value::Null)
        .await
        .expect_error(404, "not_found");

    // The same audit records as `/api/v1` writes.
    let owned = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(t, d)| (t.to_string(), d.to_string()))
            .collect()
    };
    assert_eq!(
        audited(&app, "group.create").await,
        owned(&[
            ("a", "members=alice"),
            ("b", "members=alice"),
            ("c", "members=bob"),
            ("d", "members="),
        ])
    );
    assert_eq!(
        audited(&app, "group.add_members").await,
        owned(&[("a", "users=bob")])
    );
    assert_eq!(
        audited(&app, "group.remove_member").await,
        owned(&[("a", "user=alice")])
    );
    assert_eq!(audited(&app, "group.delete").await, owned(&[("d", "")]));
}

#[tokio::test]
async fn bad_bodies_have_stable_codes() {
    let app = TestApp::sqlite().await;
    let admin = app.admin.clone();
    app.user("alice", None).await;
    app.call(&admin, "POST", "/hub/api/groups/g", Value::Null)
        .await
        .expect(201);
    let before = app.snapshot().await;

    // Not JSON at all.
    for (method, uri) in [
        ("POST", "/hub/api/users"),
        ("PATCH", "/hub/api/users/alice"),
        ("POST", "/hub/api/groups"),
        ("POST", "/hub/api/groups/g/users"),
        ("DELETE", "/hub/api/groups/g/users"),
    ] {
        let r = app
            .send(
                req(method, uri)
                    .token(&admin)
                    .raw(Some("application/json"), "{nope"),
            )
            .await;
        r.expect_error(400, "invalid_json");
        // As JupyterHub: the body is JSON whatever its content type says.
        let r = app
            .send(
                req(method, uri)
                    .token(&admin)
                    .raw(Some("text/plain"), "{nope"),
            )
            .await;
        r.expect_error(400, "invalid_json");
    }

    // Optional bodies, as the hub's server endpoints read them.
    for uri in [
        "/hub/api/users/zed",
        "/hub/api/users/alice/tokens",
        "/hub/api/groups/h",
    ] {
        let r = app
            .send(
                req("POST", uri)
                    .token(&admin)
                    .raw(Some("application/json"), "{nope"),
            )
            .await;
        r.expect_error(400, "invalid_body");
    }

    let cases: [(&str, &str, Value, u16, &str); 18] = [
        ("POST", "/hub/api/users", json!({}), 400, "invalid_body"),
        (
            "POST",
            "/hub/api/users",
            json!({"usernames": "zed"}),
            400,
            "invalid_body",
        ),
        (
            "POST",
            "/hub/api/users",
            json!({"usernames": ["zed"], "color": "red"}),
            400,
            "invalid_body",
        ),
        (
            "POST",
            "/hub/api/users",
            json!({"usernames": []}),
            400,
            "invalid_value",
        ),
        (
            "POST",
            "/hub/api/users",
            json!({"usernames": ["zed", "Bad Name"]}),
            400,
            "invalid_name",
        ),
        (
            "POST",
            "/hub/api/users/zed",
            json!({"admin": "yes"}),
            400,
            "invalid_body",
        ),
        (
            "PATCH",
            "/hub/api/users/alice",
            json!({"groups": []}),
            400,
            "invalid_body",
        ),
        (
            "POST",
            "/hub/api/users/alice/tokens",
            json!({"expires_in": -1}),
            400,
            "invalid_value",
        ),
        (
            "POST",
            "/hub/api/users/alice/tokens",
            json!({"expires_in": 1.5}),
            400,
            "invalid_value",
        ),
        (
            "POST",
            "/hub/api/users/alice/tokens",
            json!({"scopes": ["fly"]}),
            400,
            "unknown_scope",
        ),
        (
            "POST",
            "/hub/api/users/alice/tokens",
            json!({"roles": ["admin"]}),
            400,
            "invalid_value",
        ),
        ("POST", "/hub/api/groups", json!({}), 400, "invalid_body"),
        (
            "POST",
            "/hub/api/groups",
            json!({"groups": []}),
            400,
            "invalid_value",
        ),
        (
            "POST",
            "/hub/api/groups",
            json!({"groups": ["h"], "users": ["nobody"]}),
            400,
            "invalid_value",
        ),
        (
            "POST",
            "/hub/api/groups/h",
            json!({"properties": {}}),
            400,
            "invalid_body",
        ),
        (
            "POST",
            "/hub/api/groups/g/users",
            json!({}),
            400,
            "invalid_body",
        ),
        (
            "POST",
            "/hub/api/groups/g/users",
            json!({"users": ["nobody"]}),
            400,
            "invalid_value",
        ),
        (
            "DELETE",
            "/hub/api/groups/g/users",
            json!({"users": ["alice", "nobody"]}),
            400,
            "invalid_value",
        ),
    ];
    for (method, uri, body, status, code) in cases {
        let r = app.call(&admin, method, uri, body.clone()).await;
        assert_eq!(
            (r.status.as_u16(), r.code()),
            (status, code),
            "{method} {uri} {body}: {r:?}"
        );
    }
    assert_eq!(app.snapshot().await, before, "a refused request wrote");
}

/// Services: made by admins with the token their tool is configured with;
/// an admin service acts as an admin, another holds nothing but its name;
/// neither is a user (not listed, no login, no workspace of its own), and
/// deleting one ends its token at once.
#[tokio::test]
async fn services_have_their_own_tokens_and_are_not_users() {
    let app = TestApp::sqlite().await;
    let admin = app.admin.clone();
    let culler = "culler-token-0123456789abcdef";
    let body = json!({"api_token": culler, "admin": true});
    let r = app
        .call(&admin, "POST", "/hub/api/services/culler", body)
        .await;
    assert_eq!(r.expect(201)["roles"], json!(["admin"]));
    let me = app.call(culler, "GET", "/hub/api/user", Value::Null).await;
    let me = me.expect(200);
    assert_eq!(
        (&me["kind"], &me["name"]),
        (&json!("service"), &json!("culler"))
    );
    // It reads users, as the idle culler does, and is not one of them.
    let users = app.call(culler, "GET", "/hub/api/users", Value::Null).await;
    let names: Vec<&str> = users
        .expect(200)
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin"]);
    app.call(&admin, "GET", "/hub/api/users/culler", Value::Null)
        .await
        .expect_error(404, "not_found");
    // It owns no workspace: it must say whose.
    app.call(culler, "POST", "/api/v1/workspaces", json!({"name": "x"}))
        .await
        .expect_error(422, "invalid_value");
    // Names are shared with users; short or reused tokens are refused.
    for (name, body, status, code) in [
        ("admin", json!({"admin": false}), 409, "already_exists"),
        (
            "short",
            json!({"api_token": "too-short"}),
            400,
            "invalid_value",
        ),
        ("again", json!({"api_token": culler}), 400, "invalid_value"),
        (
            "runs",
            json!({"command": ["sleep", "1"]}),
            400,
            "invalid_value",
        ),
        (
            "odd",
            json!({"oauth_no_confirm": true}),
            400,
            "invalid_body",
        ),
    ] {
        app.call(&admin, "POST", &format!("/hub/api/services/{name}"), body)
            .await
            .expect_error(status, code);
    }
    let watcher = "watcher-token-0123456789abcdef";
    let body = json!({"api_token": watcher});
    app.call(&admin, "POST", "/hub/api/services/watcher", body)
        .await
        .expect(201);
    let me = app.call(watcher, "GET", "/hub/api/user", Value::Null).await;
    assert_eq!(me.expect(200)["scopes"], json!([]));
    app.call(watcher, "GET", "/hub/api/users", Value::Null)
        .await
        .expect_error(403, "forbidden");
    let listed = app
        .call(&admin, "GET", "/hub/api/services", Value::Null)
        .await;
    let listed = listed.expect(200);
    let mut names: Vec<&String> = listed.as_object().unwrap().keys().collect();
    names.sort();
    assert_eq!(names, ["culler", "watcher"]);

    app.call(&admin, "DELETE", "/hub/api/services/culler", Value::Null)
        .await
        .expect(200);
    // As JupyterHub: an unknown token is a 403 at whoami.
    app.call(culler, "GET", "/hub/api/user", Value::Null)
        .await
        .expect_error(403, "forbidden");
    let made = audited(&app, "service.create").await;
    assert_eq!(made.len(), 2, "{made:?}");
    assert_eq!(audited(&app, "service.delete").await.len(), 1);
}

/// As JupyterHub, the hub reads a body as JSON whatever its content type, so
/// `curl -d '{…}'` (a form's type) works as it does against JupyterHub.
#[tokio::test]
async fn bodies_are_json_whatever_their_content_type() {
    let app = TestApp::sqlite().await;
    let body = r#"{"usernames": ["curly"]}"#;
    let form = Some("application/x-www-form-urlencoded");
    let r = app
        .send(
            req("POST", "/hub/api/users")
                .token(&app.admin)
                .raw(form, body),
        )
        .await;
    assert_eq!(r.expect(201)[0]["name"], "curly");
}
