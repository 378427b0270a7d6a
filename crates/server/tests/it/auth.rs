//! Authentication: password login and its throttle, session cookies and CSRF, API
//! tokens in both schemes, expiry, logout and disabled accounts.

use std::time::Duration;

use serde_json::{json, Value};
use server::ServerConfig;
use test_support::Engine;

use crate::{req, TestApp, ADMIN_PASSWORD};

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
