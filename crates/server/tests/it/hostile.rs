//! Hostile input: every route that takes a JSON body, every route with a path
//! parameter, and the edges of routing, each answered with the documented 4xx and
//! nothing written.

use serde_json::{json, Value};
use test_support::Engine;

use crate::{req, TestApp, ADMIN_PASSWORD};

/// An app with a user `bob`, a group `team` and a workspace of the admin's; returns
/// the workspace id.
async fn seeded(engine: Engine) -> (TestApp, String) {
    let app = TestApp::start(engine, server::ServerConfig::default()).await;
    app.user("bob", None).await;
    app.call(
        &app.admin,
        "POST",
        "/api/v1/groups",
        json!({"name": "team"}),
    )
    .await
    .expect(201);
    let ws = app.workspace(&app.admin, json!({"name": "nb"})).await;
    (app, ws["id"].as_str().unwrap().to_owned())
}

/// Every route that takes a JSON body, with a body it accepts.
fn body_routes(ws: &str) -> Vec<(&'static str, String, Value)> {
    vec![
        (
            "POST",
            "/api/v1/auth/login".into(),
            json!({"username": "admin", "password": ADMIN_PASSWORD}),
        ),
        (
            "POST",
            "/api/v1/users".into(),
            json!({"name": "newbie", "admin": false}),
        ),
        (
            "PATCH",
            "/api/v1/users/bob".into(),
            json!({"disabled": false}),
        ),
        (
            "POST",
            "/api/v1/groups".into(),
            json!({"name": "crew", "members": ["bob"]}),
        ),
        (
            "POST",
            "/api/v1/groups/team/members".into(),
            json!({"users": ["bob"]}),
        ),
        (
            "POST",
            "/api/v1/users/bob/tokens".into(),
            json!({"note": "x", "scopes": ["read:servers"]}),
        ),
        (
            "POST",
            "/api/v1/profiles".into(),
            json!({"name": "big", "display_name": "Big", "cpu": 8}),
        ),
        (
            "PATCH",
            "/api/v1/profiles/standard".into(),
            json!({"cpu": 1.5}),
        ),
        (
            "POST",
            "/api/v1/workspaces".into(),
            json!({"name": "fresh", "profile": "high-memory"}),
        ),
        (
            "PATCH",
            format!("/api/v1/workspaces/{ws}"),
            json!({"profile": "high-memory"}),
        ),
    ]
}

/// Sends `r` as the admin and asserts the error and that nothing was written.
async fn rejected(app: &TestApp, r: crate::Req, status: u16, code: &str, what: &str) {
    let before = app.snapshot().await;
    let reply = app.send(r.token(&app.admin)).await;
    assert_eq!(
        (reply.status.as_u16(), reply.code()),
        (status, code),
        "{what}: {reply:?}"
    );
    assert_eq!(
        app.snapshot().await,
        before,
        "{what}: a rejected request wrote something"
    );
}

#[tokio::test]
async fn malformed_bodies_are_rejected_on_every_body_route() {
    let (app, ws) = seeded(Engine::Sqlite).await;
    let routes = body_routes(&ws);
    for (method, uri, valid) in &routes {
        let what = |case: &str| format!("{method} {uri}: {case}");
        for bad in [
            "{",
            "not json",
            "{'name': 'x'}",
            "",
            "\u{feff}{}",
            "{,}",
            "[",
            "nul",
            "{\"",
            "\"unterminated",
        ] {
            let r = req(method, uri).raw(Some("application/json"), bad);
            rejected(
                &app,
                r,
                400,
                "invalid_json",
                &what(&format!("body {bad:?}")),
            )
            .await;
        }
        let body = valid.to_string();
        for ct in [
            None,
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            Some("multipart/form-data; boundary=x"),
            Some("json"),
        ] {
            let r = req(method, uri).raw(ct, body.clone());
            rejected(
                &app,
                r,
                415,
                "unsupported_media_type",
                &what(&format!("content-type {ct:?}")),
            )
            .await;
        }
        let mut unknown = valid.clone();
        unknown["bogus"] = json!(1);
        for shape in [
            unknown,
            json!(null),
            json!([]),
            json!("text"),
            json!(42),
            json!({"name": ["a"], "bogus": true}),
        ] {
            let r = req(method, uri).json(&shape);
            rejected(
                &app,
                r,
                422,
                "invalid_body",
                &what(&format!("shape {shape}")),
            )
            .await;
        }
        let mut big = valid.clone();
        big["padding"] = json!("a".repeat(server::MAX_BODY));
        let r = req(method, uri).json(&big);
        rejected(&app, r, 413, "payload_too_large", &what("oversize")).await;
        let r = req(method, uri).raw(
            Some("application/json"),
            " ".repeat(server::MAX_BODY + 1) + "{}",
        );
        rejected(
            &app,
            r,
            413,
            "payload_too_large",
            &what("oversize whitespace"),
        )
        .await;
    }
    // The same routes take their valid bodies, so it was the damage that was refused.
    for (method, uri, valid) in routes {
        let r = app.call(&app.admin, method, &uri, valid).await;
        assert!(r.status.is_success(), "{method} {uri}: {r:?}");
    }
}

fn bad_names() -> Vec<String> {
    let mut names: Vec<String> = [
        "../x",
        "..",
        "A",
        "Alice",
        "a/b",
        "",
        "a%2f",
        "a%2F",
        "ünïcode",
        "é",
        "a\0",
        "\0",
        "-a",
        "a-",
        "1a",
        "a b",
        "a.b",
        " a",
        "a\n",
        "a\u{202e}",
        "ａ",
        "a\\b",
        "a;b",
        "a_b",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    names.push("a".repeat(33));
    names.push("a".repeat(10_000));
    names
}

/// Builds a request body around a name.
type WithName = fn(&str) -> Value;

#[tokio::test]
async fn bad_names_are_invalid_name_wherever_names_are_taken() {
    let (app, ws) = seeded(Engine::Sqlite).await;
    let ws_path = format!("/api/v1/workspaces/{ws}");
    let routes: Vec<(&str, &str, WithName)> = vec![
        (
            "POST",
            "/api/v1/users",
            |n| json!({"name": n, "password": "long enough"}),
        ),
        ("POST", "/api/v1/groups", |n| json!({"name": n})),
        (
            "POST",
            "/api/v1/groups",
            |n| json!({"name": "crew", "members": ["bob", n]}),
        ),
        (
            "POST",
            "/api/v1/groups/team/members",
            |n| json!({"users": [n]}),
        ),
        (
            "POST",
            "/api/v1/profiles",
            |n| json!({"name": n, "display_name": "X"}),
        ),
        ("POST", "/api/v1/workspaces", |n| json!({"name": n})),
        (
            "POST",
            "/api/v1/workspaces",
            |n| json!({"name": "ok", "profile": n}),
        ),
        (
            "POST",
            "/api/v1/workspaces",
            |n| json!({"name": "ok", "owner": n}),
        ),
        ("PATCH", &ws_path, |n| json!({"profile": n})),
    ];
    for name in bad_names() {
        for (method, uri, body) in &routes {
            let body = body(&name);
            let what = format!("{method} {uri} {body}");
            rejected(
                &app,
                req(method, uri).json(&body),
                422,
                "invalid_name",
                &what,
            )
            .await;
        }
    }
}

#[tokio::test]
async fn out_of_range_values_are_invalid_value() {
    let (app, _) = seeded(Engine::Sqlite).await;
    // (fields, the field the message names)
    let cases: Vec<(Value, &str)> = vec![
        (json!({"cpu": -1}), "cpu"),
        (json!({"cpu": 0}), "cpu"),
        (json!({"cpu": 0.001}), "cpu"),
        (json!({"cpu": 513}), "cpu"),
        (json!({"cpu": 1e300}), "cpu"),
        (json!({"memory_bytes": 1}), "memory_bytes"),
        (json!({"memory_bytes": u64::MAX}), "memory_bytes"),
        (json!({"max_processes": 0}), "max_processes"),
        (json!({"max_processes": u64::MAX}), "max_processes"),
        (json!({"disk_quota_bytes": 1}), "disk_quota_bytes"),
        (json!({"disk_quota_bytes": u64::MAX}), "disk_quota_bytes"),
        (json!({"idle_timeout_secs": 1}), "idle_timeout_secs"),
        (json!({"idle_timeout_secs": u64::MAX}), "idle_timeout_secs"),
        (json!({"max_lifetime_secs": 10}), "max_lifetime_secs"),
        (json!({"cost_per_hour": -0.5}), "cost_per_hour"),
        (json!({"cost_per_hour": 1e7}), "cost_per_hour"),
        (json!({"start_timeout_secs": 0}), "start_timeout_secs"),
        (json!({"start_timeout_secs": 100_000}), "start_timeout_secs"),
        (json!({"display_name": ""}), "display_name"),
        (json!({"display_name": "   "}), "display_name"),
        (json!({"display_name": "a\u{7}b"}), "display_name"),
        (json!({"display_name": "a\0"}), "display_name"),
        (json!({"display_name": "x".repeat(101)}), "display_name"),
        (json!({"app": {"kind": "command", "argv": []}}), "app.argv"),
        (
            json!({"app": {"kind": "command", "argv": [""]}}),
            "app.argv",
        ),
        (
            json!({"app": {"kind": "command", "argv": ["a\0b"]}}),
            "app.argv",
        ),
        (
            json!({"app": {"kind": "command", "argv": vec!["x"; 257]}}),
            "app.argv",
        ),
    ];
    for (fields, field) in &cases {
        let mut create = json!({"name": "custom", "display_name": "Custom"});
        for (k, v) in fields.as_object().unwrap() {
            create[k] = v.clone();
        }
        for (method, uri, body) in [
            ("POST", "/api/v1/profiles", create),
            ("PATCH", "/api/v1/profiles/standard", fields.clone()),
        ] {
            let before = app.snapshot().await;
            let r = app.call(&app.admin, method, uri, body.clone()).await;
            r.expect_error(422, "invalid_value");
            let message = r.body["message"].as_str().unwrap();
            assert!(
                message.starts_with(&format!("{field}:")),
                "{method} {body}: {message}"
            );
            assert_eq!(app.snapshot().await, before, "{method} {body}");
        }
    }
    // Wrong types are a shape error, not a value error.
    for fields in [
        json!({"memory_bytes": -1}),
        json!({"cpu": "two"}),
        json!({"memory_bytes": 1.5}),
        json!({"app": {"kind": "docker"}}),
        json!({"app": {"kind": "command"}}),
    ] {
        rejected(
            &app,
            req("PATCH", "/api/v1/profiles/standard").json(&fields),
            422,
            "invalid_body",
            &fields.to_string(),
        )
        .await;
    }
    // Other bounded values.
    let others = [
        (
            "POST",
            "/api/v1/users",
            json!({"name": "eve", "password": "short"}),
        ),
        (
            "POST",
            "/api/v1/users",
            json!({"name": "eve", "password": "x".repeat(1025)}),
        ),
        ("PATCH", "/api/v1/users/bob", json!({"password": "1234567"})),
        (
            "POST",
            "/api/v1/users/bob/tokens",
            json!({"note": "a\u{1}b"}),
        ),
        (
            "POST",
            "/api/v1/users/bob/tokens",
            json!({"note": "n".repeat(1001)}),
        ),
        ("POST", "/api/v1/users/bob/tokens", json!({"expires_in": 0})),
        (
            "POST",
            "/api/v1/groups",
            json!({"name": "crew", "members": ["nobody"]}),
        ),
        (
            "POST",
            "/api/v1/groups/team/members",
            json!({"users": ["bob", "nobody"]}),
        ),
        (
            "POST",
            "/api/v1/workspaces",
            json!({"name": "x", "profile": "nope"}),
        ),
        (
            "POST",
            "/api/v1/workspaces",
            json!({"name": "x", "owner": "nobody"}),
        ),
    ];
    for (method, uri, body) in others {
        let what = format!("{method} {uri} {body}");
        rejected(
            &app,
            req(method, uri).json(&body),
            422,
            "invalid_value",
            &what,
        )
        .await;
    }
}

/// Path segments an attacker might try.
fn hostile_segments() -> Vec<String> {
    let mut s: Vec<String> = [
        "..%2f..",
        "..%2F..%2Fetc%2Fpasswd",
        "%2e%2e",
        "..",
        ".",
        "%00",
        "a%00b",
        "%ff",
        "%c3%28",
        "ADMIN",
        "Admin",
        "admin%20",
        "%20admin",
        "admin%0a",
        "%2F",
        "a%2Fb",
        "*",
        "%25",
        "'%20OR%201=1--",
        "%E2%80%AE",
        "%F0%9F%A6%80",
        "0",
        "-1",
        "9999999999999999999999",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    s.push("a".repeat(65));
    s.push("a".repeat(10_000));
    s
}

#[tokio::test]
async fn hostile_paths_are_4xx_on_every_engine() {
    for engine in Engine::ALL {
        let (app, ws) = seeded(engine).await;
        // Use the admin token once, so that its `last_used` is written before the snapshots.
        app.call(&app.admin, "GET", "/api/v1/me", Value::Null)
            .await
            .expect(200);
        let routes: &[(&str, &str, Value)] = &[
            ("GET", "/api/v1/users/{x}", Value::Null),
            ("PATCH", "/api/v1/users/{x}", json!({"disabled": true})),
            ("DELETE", "/api/v1/users/{x}", Value::Null),
            ("GET", "/api/v1/users/{x}/tokens", Value::Null),
            ("POST", "/api/v1/users/{x}/tokens", json!({})),
            ("DELETE", "/api/v1/users/{x}/tokens/{x}", Value::Null),
            ("DELETE", "/api/v1/users/admin/tokens/{x}", Value::Null),
            ("GET", "/api/v1/groups/{x}", Value::Null),
            ("DELETE", "/api/v1/groups/{x}", Value::Null),
            (
                "POST",
                "/api/v1/groups/{x}/members",
                json!({"users": ["bob"]}),
            ),
            ("DELETE", "/api/v1/groups/{x}/members/{x}", Value::Null),
            ("DELETE", "/api/v1/groups/team/members/{x}", Value::Null),
            ("GET", "/api/v1/profiles/{x}", Value::Null),
            ("PATCH", "/api/v1/profiles/{x}", json!({"cpu": 1})),
            ("DELETE", "/api/v1/profiles/{x}", Value::Null),
            ("GET", "/api/v1/workspaces/{x}", Value::Null),
            (
                "PATCH",
                "/api/v1/workspaces/{x}",
                json!({"profile": "standard"}),
            ),
            ("DELETE", "/api/v1/workspaces/{x}", Value::Null),
            ("POST", "/api/v1/workspaces/{x}/start", Value::Null),
            ("POST", "/api/v1/workspaces/{x}/stop", Value::Null),
        ];
        let before = app.snapshot().await;
        for seg in hostile_segments() {
            for (method, template, body) in routes {
                let uri = template.replace("{x}", &seg);
                let r = app.call(&app.admin, method, &uri, body.clone()).await;
                assert!(
                    r.status.is_client_error(),
                    "{}: {method} {uri}: {r:?}",
                    engine_name(engine)
                );
            }
        }
        // Hostile cursors and filters are malformed queries.
        for query in [
            "/api/v1/workspaces?after=%00",
            "/api/v1/workspaces?after=%ff",
            "/api/v1/workspaces?name=%00",
            "/api/v1/workspaces?owner=%00",
            "/api/v1/users?after=%00",
            "/api/v1/users?after=a%00b",
            "/api/v1/audit?user=%00",
            "/api/v1/audit?action=%00",
            "/api/v1/audit?before=%00",
            "/api/v1/audit?action=%25",
            "/api/v1/audit?user=%27%20OR%201%3D1--",
            "/api/v1/audit?user=ADMIN",
            "/api/v1/audit?action=workspace.%25",
            "/api/v1/audit?action=",
            "/api/v1/audit?before=..%2f",
        ] {
            let r = app.call(&app.admin, "GET", query, Value::Null).await;
            assert_eq!(
                (r.status.as_u16(), r.code()),
                (400, "invalid_query"),
                "{}: {query}: {r:?}",
                engine_name(engine)
            );
        }
        assert_eq!(app.snapshot().await, before, "{}", engine_name(engine));
        // The workspace is still there, untouched.
        let r = app
            .call(
                &app.admin,
                "GET",
                &format!("/api/v1/workspaces/{ws}"),
                Value::Null,
            )
            .await;
        assert_eq!(r.expect(200)["generation"], 1);
    }
}

fn engine_name(e: Engine) -> &'static str {
    match e {
        Engine::Sqlite => "sqlite",
        Engine::Postgres => "postgres",
    }
}

#[tokio::test]
async fn hostile_login_names_are_just_wrong_credentials() {
    for engine in Engine::ALL {
        let app = TestApp::start(engine, server::ServerConfig::default()).await;
        for name in [
            "admin\0",
            "\0",
            "ADMIN",
            "../admin",
            &"a".repeat(10_000),
            "admin' --",
            "ädmin",
        ] {
            let r = app
                .send(
                    req("POST", "/api/v1/auth/login")
                        .json(&json!({"username": name, "password": ADMIN_PASSWORD})),
                )
                .await;
            assert_eq!(
                (r.status.as_u16(), r.code()),
                (401, "invalid_credentials"),
                "{}: {name:?}: {r:?}",
                engine_name(engine)
            );
        }
    }
}

#[tokio::test]
async fn unknown_routes_and_methods_get_json_errors() {
    let app = TestApp::sqlite().await;
    for token in ["", app.admin.as_str()] {
        for uri in [
            "/nope",
            "/api",
            "/api/v1",
            "/api/v1/",
            "/api/v1/nope",
            "/api/v2/workspaces",
            "/api/v1/workspaces/",
            "/api/v1/workspaces/x/y/z",
            "/api/v1/workspaces/x/restart",
            "/healthz/",
            "/hub/api/nope",
        ] {
            let r = app.call(token, "GET", uri, Value::Null).await;
            r.expect_error(404, "not_found");
        }
        for (method, uri, allowed) in [
            ("PUT", "/api/v1/workspaces", "POST"),
            ("DELETE", "/api/v1/workspaces", "GET"),
            ("GET", "/api/v1/auth/login", "POST"),
            ("POST", "/healthz", "GET"),
            ("PATCH", "/api/v1/audit", "GET"),
            ("GET", "/api/v1/workspaces/x/start", "POST"),
            ("PUT", "/api/v1/users/admin", "PATCH"),
            ("POST", "/metrics", "GET"),
            ("DELETE", "/api/v1/openapi.json", "GET"),
        ] {
            let r = app.call(token, method, uri, Value::Null).await;
            r.expect_error(405, "method_not_allowed");
            let allow = r
                .header("allow")
                .unwrap_or_else(|| panic!("{method} {uri}: no allow header"));
            assert!(allow.contains(allowed), "{method} {uri}: allow {allow}");
        }
    }
}

#[tokio::test]
async fn bad_query_parameters_are_invalid_query() {
    let app = TestApp::sqlite().await;
    for list in ["/api/v1/users", "/api/v1/workspaces", "/api/v1/audit"] {
        for query in [
            "bogus=1",
            "limit=0",
            "limit=501",
            "limit=-5",
            "limit=1e3",
            "limit=",
            "limit=99999999999999999999",
            "LIMIT=5",
        ] {
            let uri = format!("{list}?{query}");
            let r = app.call(&app.admin, "GET", &uri, Value::Null).await;
            r.expect_error(400, "invalid_query");
        }
        for query in ["limit=1", "limit=500", ""] {
            let uri = format!("{list}?{query}");
            app.call(&app.admin, "GET", &uri, Value::Null)
                .await
                .expect(200);
        }
    }
}

#[tokio::test]
async fn every_api_route_needs_credentials() {
    let (app, ws) = seeded(Engine::Sqlite).await;
    let before = app.snapshot().await;
    let w = format!("/api/v1/workspaces/{ws}");
    let routes = [
        ("GET", "/api/v1/me".to_owned()),
        ("POST", "/api/v1/auth/logout".to_owned()),
        ("GET", "/api/v1/users".to_owned()),
        ("POST", "/api/v1/users".to_owned()),
        ("GET", "/api/v1/users/bob".to_owned()),
        ("PATCH", "/api/v1/users/bob".to_owned()),
        ("DELETE", "/api/v1/users/bob".to_owned()),
        ("GET", "/api/v1/users/bob/tokens".to_owned()),
        ("POST", "/api/v1/users/bob/tokens".to_owned()),
        ("DELETE", "/api/v1/users/bob/tokens/x".to_owned()),
        ("GET", "/api/v1/groups".to_owned()),
        ("POST", "/api/v1/groups".to_owned()),
        ("GET", "/api/v1/groups/team".to_owned()),
        ("DELETE", "/api/v1/groups/team".to_owned()),
        ("POST", "/api/v1/groups/team/members".to_owned()),
        ("DELETE", "/api/v1/groups/team/members/bob".to_owned()),
        ("GET", "/api/v1/profiles".to_owned()),
        ("POST", "/api/v1/profiles".to_owned()),
        ("GET", "/api/v1/profiles/standard".to_owned()),
        ("PATCH", "/api/v1/profiles/standard".to_owned()),
        ("DELETE", "/api/v1/profiles/high-memory".to_owned()),
        ("GET", "/api/v1/workspaces".to_owned()),
        ("POST", "/api/v1/workspaces".to_owned()),
        ("GET", w.clone()),
        ("PATCH", w.clone()),
        ("DELETE", w.clone()),
        ("POST", format!("{w}/start")),
        ("POST", format!("{w}/stop")),
        ("GET", "/api/v1/audit".to_owned()),
    ];
    for (method, uri) in &routes {
        let r = app.call("", method, uri, json!({"name": "x"})).await;
        r.expect_error(401, "unauthenticated");
    }
    assert_eq!(app.snapshot().await, before);
}
