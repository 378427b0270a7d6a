//! Authentication: password login and its throttle, session cookies and CSRF, API
//! tokens in both schemes, expiry, logout and disabled accounts.

use std::time::Duration;

use serde_json::{json, Value};
use server::ServerConfig;
use test_support::Engine;

use crate::{req, Session, TestApp, ADMIN_PASSWORD};

#[tokio::test]
async fn login_sets_an_http_only_lax_cookie_and_returns_the_csrf_token() {
    let app = TestApp::sqlite().await;
    let r = app
        .send(
            req("POST", "/api/v1/auth/login")
                .json(&json!({"username": "admin", "password": ADMIN_PASSWORD})),
        )
        .await;
    let body = r.expect(200);
    assert_eq!(body["user"]["name"], "admin");
    assert_eq!(body["user"]["admin"], true);
    assert_eq!(body["via"], "session");
    let csrf = body["csrf_token"].as_str().unwrap();
    assert!(csrf.len() >= 32, "{csrf}");
    let cookie = r.header("set-cookie").unwrap();
    let attrs: Vec<&str> = cookie.split(';').map(str::trim).collect();
    assert!(
        attrs[0].starts_with("berth_session=") && attrs[0].len() > 40,
        "{cookie}"
    );
    assert!(attrs.contains(&"HttpOnly"), "{cookie}");
    assert!(attrs.contains(&"SameSite=Lax"), "{cookie}");
    assert!(attrs.contains(&"Path=/"), "{cookie}");
    assert!(
        !attrs.contains(&"Secure"),
        "secure_cookies is off: {cookie}"
    );

    // The cookie authenticates reads without the CSRF header.
    let s = app.login("admin", ADMIN_PASSWORD).await;
    let me = app.send(req("GET", "/api/v1/me").session(&s, None)).await;
    assert_eq!(me.expect(200)["via"], "session");
    assert_eq!(me.body["csrf_token"].as_str(), Some(s.csrf.as_str()));
}

#[tokio::test]
async fn wrong_password_and_unknown_user_are_the_same_401() {
    let app = TestApp::sqlite().await;
    for (user, password) in [("admin", "wrong password"), ("nobody", ADMIN_PASSWORD)] {
        let r = app
            .send(
                req("POST", "/api/v1/auth/login")
                    .json(&json!({"username": user, "password": password})),
            )
            .await;
        r.expect_error(401, "invalid_credentials");
        assert_eq!(r.header("set-cookie"), None);
    }
    let r = app
        .call(
            "",
            "POST",
            "/api/v1/auth/login",
            json!({"username": "admin"}),
        )
        .await;
    r.expect_error(422, "invalid_body");
}

#[tokio::test]
async fn repeated_failures_are_throttled_with_retry_after() {
    let config = ServerConfig {
        login_max_failures: 3,
        ..Default::default()
    };
    let app = TestApp::start(Engine::Sqlite, config).await;
    let login = |password: &str| {
        req("POST", "/api/v1/auth/login").json(&json!({"username": "admin", "password": password}))
    };
    for _ in 0..3 {
        app.send(login("wrong password"))
            .await
            .expect_error(401, "invalid_credentials");
    }
    // Locked out now, even with the right password.
    let r = app.send(login(ADMIN_PASSWORD)).await;
    r.expect_error(429, "too_many_requests");
    let wait: u64 = r
        .header("retry-after")
        .expect("retry-after")
        .parse()
        .unwrap();
    assert!((1..=30).contains(&wait), "{wait}");
    assert_eq!(r.header("set-cookie"), None);
    // Another name is judged on its own.
    let r = app
        .send(
            req("POST", "/api/v1/auth/login")
                .json(&json!({"username": "someone", "password": "whatever1"})),
        )
        .await;
    r.expect_error(401, "invalid_credentials");
    // The refusal is audited as denied.
    let r = app
        .call(
            &app.admin,
            "GET",
            "/api/v1/audit?action=auth.login",
            Value::Null,
        )
        .await;
    let outcomes: Vec<&str> = r.expect(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        ["failure", "denied", "failure", "failure", "failure", "success"],
        "newest first"
    );
}

#[tokio::test]
async fn cookie_mutations_need_the_session_csrf_token() {
    let app = TestApp::sqlite().await;
    let s = app.login("admin", ADMIN_PASSWORD).await;
    let other = app.login("admin", ADMIN_PASSWORD).await;
    let create = || req("POST", "/api/v1/workspaces").json(&json!({"name": "ws"}));
    let before = app.snapshot().await;
    let r = app.send(create().session(&s, None)).await;
    r.expect_error(403, "csrf_failed");
    let r = app.send(create().session(&s, Some("not-the-token"))).await;
    r.expect_error(403, "csrf_failed");
    let r = app.send(create().session(&s, Some(&other.csrf))).await;
    r.expect_error(403, "csrf_failed");
    assert_eq!(
        app.snapshot().await,
        before,
        "a refused mutation wrote something"
    );

    let r = app.send(create().session(&s, Some(&s.csrf))).await;
    assert_eq!(r.expect(201)["name"], "ws");
    // Tokens need no CSRF header.
    let r = app
        .call(
            &app.admin,
            "POST",
            "/api/v1/workspaces",
            json!({"name": "ws2"}),
        )
        .await;
    r.expect(201);
}

#[tokio::test]
async fn bearer_and_token_schemes_both_work() {
    let app = TestApp::sqlite().await;
    for scheme in ["Bearer", "token", "bearer", "Token"] {
        let r = app
            .send(
                req("GET", "/api/v1/me")
                    .header("authorization", &format!("{scheme} {}", app.admin)),
            )
            .await;
        let body = r.expect(200);
        assert_eq!(body["user"]["name"], "admin", "{scheme}");
        assert_eq!(body["via"], "token", "{scheme}");
        assert_eq!(body["csrf_token"], Value::Null, "{scheme}");
    }
}

#[tokio::test]
async fn missing_or_malformed_credentials_are_401() {
    let app = TestApp::sqlite().await;
    let s = app.login("admin", ADMIN_PASSWORD).await;
    let bad = [
        "Basic YWRtaW46cGFzc3dvcmQ=".to_owned(),
        "Bearer".to_owned(),
        "Bearer ".to_owned(),
        app.admin.clone(),
        format!("Bearer {}x", app.admin),
        format!("Digest {}", app.admin),
        "Bearer berth_not-a-token".to_owned(),
    ];
    for value in &bad {
        // A broken authorization header is not rescued by a valid cookie.
        let r = app
            .send(
                req("GET", "/api/v1/me")
                    .header("authorization", value)
                    .session(&s, None),
            )
            .await;
        r.expect_error(401, "unauthenticated");
    }
    let r = app.send(req("GET", "/api/v1/me")).await;
    r.expect_error(401, "unauthenticated");
    let r = app
        .send(req("GET", "/api/v1/me").header("cookie", "berth_session=forged"))
        .await;
    r.expect_error(401, "unauthenticated");
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let app = TestApp::sqlite().await;
    let r = app
        .call(
            &app.admin,
            "POST",
            "/api/v1/users/admin/tokens",
            json!({"note": "short", "expires_in": 1}),
        )
        .await;
    let body = r.expect(201);
    assert!(body["expires_at"].is_string(), "{body}");
    let token = body["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("berth_"), "{token}");
    app.call(&token, "GET", "/api/v1/me", Value::Null)
        .await
        .expect(200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = app.call(&token, "GET", "/api/v1/me", Value::Null).await;
    r.expect_error(401, "unauthenticated");
    // Lifetimes out of range are refused.
    for expires_in in [json!(0), json!(400_000_000)] {
        let r = app
            .call(
                &app.admin,
                "POST",
                "/api/v1/users/admin/tokens",
                json!({"expires_in": expires_in}),
            )
            .await;
        r.expect_error(422, "invalid_value");
    }
}

#[tokio::test]
async fn logout_ends_the_session() {
    let app = TestApp::sqlite().await;
    let s = app.login("admin", ADMIN_PASSWORD).await;
    let r = app
        .send(req("POST", "/api/v1/auth/logout").session(&s, None))
        .await;
    r.expect_error(403, "csrf_failed");
    app.send(req("GET", "/api/v1/me").session(&s, None))
        .await
        .expect(200);

    let r = app
        .send(req("POST", "/api/v1/auth/logout").session(&s, Some(&s.csrf)))
        .await;
    r.expect(204);
    let cleared = r.header("set-cookie").expect("the cookie is cleared");
    assert!(cleared.starts_with("berth_session=;"), "{cleared}");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    let r = app.send(req("GET", "/api/v1/me").session(&s, None)).await;
    r.expect_error(401, "unauthenticated");
    // Another session and the tokens live on.
    app.call(&app.admin, "GET", "/api/v1/me", Value::Null)
        .await
        .expect(200);
}

#[tokio::test]
async fn a_disabled_users_token_stops_working() {
    let app = TestApp::sqlite().await;
    let bob = app.user("bob", None).await;
    app.call(&bob, "GET", "/api/v1/me", Value::Null)
        .await
        .expect(200);
    let r = app
        .call(
            &app.admin,
            "PATCH",
            "/api/v1/users/bob",
            json!({"disabled": true}),
        )
        .await;
    assert_eq!(r.expect(200)["disabled"], true);
    let r = app.call(&bob, "GET", "/api/v1/me", Value::Null).await;
    r.expect_error(401, "unauthenticated");
    let r = app
        .call(&bob, "POST", "/api/v1/workspaces", json!({"name": "ws"}))
        .await;
    r.expect_error(401, "unauthenticated");
    // Re-enabled, the same token works again.
    app.call(
        &app.admin,
        "PATCH",
        "/api/v1/users/bob",
        json!({"disabled": false}),
    )
    .await
    .expect(200);
    app.call(&bob, "GET", "/api/v1/me", Value::Null)
        .await
        .expect(200);
    // Admins cannot lock themselves out.
    let r = app
        .call(
            &app.admin,
            "PATCH",
            "/api/v1/users/admin",
            json!({"disabled": true}),
        )
        .await;
    r.expect_error(409, "conflict");
}

#[tokio::test]
async fn a_revoked_token_stops_working() {
    let app = TestApp::sqlite().await;
    let r = app
        .call(
            &app.admin,
            "POST",
            "/api/v1/users/admin/tokens",
            json!({"note": "ci"}),
        )
        .await;
    let (id, token) = {
        let b = r.expect(201);
        (
            b["id"].as_str().unwrap().to_owned(),
            b["token"].as_str().unwrap().to_owned(),
        )
    };
    app.call(&token, "GET", "/api/v1/me", Value::Null)
        .await
        .expect(200);
    let uri = format!("/api/v1/users/admin/tokens/{id}");
    app.call(&app.admin, "DELETE", &uri, Value::Null)
        .await
        .expect(204);
    app.call(&token, "GET", "/api/v1/me", Value::Null)
        .await
        .expect_error(401, "unauthenticated");
    app.call(&app.admin, "DELETE", &uri, Value::Null)
        .await
        .expect_error(404, "not_found");
}

/// `PUT /api/v1/users/{name}/password` on one's own account: the current
/// password is required and checked; the caller's session is renewed, every
/// other session ends, tokens keep working.
#[tokio::test]
async fn changing_ones_own_password_needs_the_current_one() {
    let app = TestApp::sqlite().await;
    app.call(
        &app.admin,
        "POST",
        "/api/v1/users",
        json!({"name": "ada", "password": "ada-password-1"}),
    )
    .await
    .expect(201);
    let s1 = app.login("ada", "ada-password-1").await;
    let s2 = app.login("ada", "ada-password-1").await;
    let token = app.token_for("ada", None).await;
    let narrow = app.token_for("ada", Some(&["read:servers"])).await;
    let put = |s: &Session, body: Value| {
        req("PUT", "/api/v1/users/ada/password")
            .session(s, Some(&s.csrf))
            .json(&body)
    };

    // Not through PATCH, which asks for no current password.
    let r = app
        .send(
            req("PATCH", "/api/v1/users/ada")
                .session(&s1, Some(&s1.csrf))
                .json(&json!({"password": "ada-password-2"})),
        )
        .await;
    r.expect_error(422, "invalid_value");
    assert!(r.body["message"]
        .as_str()
        .unwrap()
        .contains("PUT /api/v1/users/ada/password"));
    // Without, or with a wrong, current password.
    app.send(put(&s1, json!({"password": "ada-password-2"})))
        .await
        .expect_error(422, "invalid_value");
    let r = app
        .send(put(
            &s1,
            json!({"old_password": "nope-nope", "password": "ada-password-2"}),
        ))
        .await;
    r.expect_error(403, "wrong_password");
    assert!(r.body["message"]
        .as_str()
        .unwrap()
        .starts_with("old_password: "));
    // A token that cannot manage tokens cannot change the password either.
    app.call(
        &narrow,
        "PUT",
        "/api/v1/users/ada/password",
        json!({"old_password": "ada-password-1", "password": "ada-password-2"}),
    )
    .await
    .expect_error(403, "forbidden");
    // A new password is held to the rules.
    app.send(put(
        &s1,
        json!({"old_password": "ada-password-1", "password": "short"}),
    ))
    .await
    .expect_error(422, "invalid_value");
    // Nothing changed so far.
    app.send(req("GET", "/api/v1/me").session(&s2, None))
        .await
        .expect(200);

    let r = app
        .send(put(
            &s1,
            json!({"old_password": "ada-password-1", "password": "ada-password-2"}),
        ))
        .await;
    r.expect(204);
    let renewed = r.header("set-cookie").expect("a renewed session cookie");
    let renewed = renewed.split(';').next().unwrap().to_owned();
    assert!(
        renewed.starts_with("berth_session=") && renewed != s1.cookie,
        "{renewed}"
    );
    for old in [&s1, &s2] {
        app.send(req("GET", "/api/v1/me").session(old, None))
            .await
            .expect_error(401, "unauthenticated");
    }
    let me = app
        .send(req("GET", "/api/v1/me").header("cookie", &renewed))
        .await;
    assert_eq!(me.expect(200)["user"]["name"], "ada");
    app.call(&token, "GET", "/api/v1/me", Value::Null)
        .await
        .expect(200);
    // With a token that holds `tokens`, and the current password, it works too.
    app.call(
        &token,
        "PUT",
        "/api/v1/users/ada/password",
        json!({"old_password": "ada-password-2", "password": "ada-password-3"}),
    )
    .await
    .expect(204);
    app.send(
        req("POST", "/api/v1/auth/login")
            .json(&json!({"username": "ada", "password": "ada-password-2"})),
    )
    .await
    .expect_error(401, "invalid_credentials");
    app.login("ada", "ada-password-3").await;

    // Audited: the failure and both changes, never the passwords.
    let r = app
        .call(
            &app.admin,
            "GET",
            "/api/v1/audit?action=user.password",
            Value::Null,
        )
        .await;
    let items = r.expect(200)["items"].as_array().unwrap().clone();
    let outcomes: Vec<&str> = items
        .iter()
        .map(|a| a["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["success", "success", "failure"], "{items:?}");
    assert!(!Value::Array(items).to_string().contains("ada-password"));
}

/// Admins set other users' passwords without the old one; others cannot.
#[tokio::test]
async fn an_admin_sets_another_users_password() {
    let app = TestApp::sqlite().await;
    let bob = app.user("bob", None).await;
    app.call(
        &app.admin,
        "POST",
        "/api/v1/users",
        json!({"name": "ada", "password": "ada-password-1"}),
    )
    .await
    .expect(201);
    let s = app.login("ada", "ada-password-1").await;
    // Bob cannot see ada: a 404, as for anything of another user's.
    app.call(
        &bob,
        "PUT",
        "/api/v1/users/ada/password",
        json!({"password": "bobs-choice-1"}),
    )
    .await
    .expect_error(404, "not_found");
    app.call(
        &app.admin,
        "PUT",
        "/api/v1/users/ada/password",
        json!({"password": "admins-choice-1"}),
    )
    .await
    .expect(204);
    app.send(req("GET", "/api/v1/me").session(&s, None))
        .await
        .expect_error(401, "unauthenticated");
    app.login("ada", "admins-choice-1").await;
    // An admin's own password needs their current one, like anyone's.
    app.call(
        &app.admin,
        "PUT",
        "/api/v1/users/admin/password",
        json!({"password": "a-new-admin-pw"}),
    )
    .await
    .expect_error(422, "invalid_value");
    // Unknown fields are refused.
    app.call(
        &app.admin,
        "PUT",
        "/api/v1/users/ada/password",
        json!({"password": "admins-choice-2", "new": 1}),
    )
    .await
    .expect_error(422, "invalid_body");
}

/// Wrong current passwords count as failed logins of the account.
#[tokio::test]
async fn wrong_current_passwords_are_throttled() {
    let config = ServerConfig {
        login_max_failures: 3,
        ..Default::default()
    };
    let app = TestApp::start(Engine::Sqlite, config).await;
    let change = |old: &str| {
        req("PUT", "/api/v1/users/admin/password")
            .token(&app.admin)
            .json(&json!({"old_password": old, "password": "a-new-admin-pw"}))
    };
    for _ in 0..3 {
        app.send(change("wrong password"))
            .await
            .expect_error(403, "wrong_password");
    }
    let r = app.send(change(ADMIN_PASSWORD)).await;
    r.expect_error(429, "too_many_requests");
    assert!(r.header("retry-after").is_some());
}

/// An account without a password is told so at login, and `reset_password`
/// (the server machine's `berth admin reset-password`) gives it one.
#[tokio::test]
async fn an_account_without_a_password_is_told_so_and_can_be_given_one() {
    let app = TestApp::sqlite().await;
    app.user("bob", None).await;
    let login = |pw: &str| {
        req("POST", "/api/v1/auth/login").json(&json!({"username": "bob", "password": pw}))
    };
    let r = app.send(login("anything-at-all")).await;
    r.expect_error(401, "no_password");
    assert!(r.body["message"]
        .as_str()
        .unwrap()
        .contains("bob has no password"));
    let pw = server::reset_password(&app.store, "bob", None)
        .await
        .unwrap()
        .expect("a generated password");
    assert!(pw.len() >= 16, "{pw}");
    app.login("bob", &pw).await;
    assert_eq!(
        server::reset_password(&app.store, "bob", Some("bobs-own-password"))
            .await
            .unwrap(),
        None
    );
    app.login("bob", "bobs-own-password").await;
    let e = server::reset_password(&app.store, "nobody", None)
        .await
        .unwrap_err();
    assert_eq!(e.code, server::error::Code::NotFound);
    let e = server::reset_password(&app.store, "bob", Some("short"))
        .await
        .unwrap_err();
    assert_eq!(e.code, server::error::Code::InvalidValue);
    let r = app
        .call(
            &app.admin,
            "GET",
            "/api/v1/audit?action=user.password",
            Value::Null,
        )
        .await;
    let items = r.expect(200)["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 2, "{items:?}");
    assert!(items[0]["actor"].is_null(), "{items:?}");
}
