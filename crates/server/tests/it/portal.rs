//! The web portal through the router: sessions and the login redirect, CSRF on
//! every form (the login form's double-submit token included), 403 pages for
//! non-admins, errors beside their fields, and every page rendering.

use serde_json::{json, Value};

use crate::{req, Reply, Session, TestApp};

const FORM: &str = "application/x-www-form-urlencoded";

fn html(r: &Reply) -> &str {
    assert_eq!(
        r.header("content-type"),
        Some("text/html; charset=utf-8"),
        "{r:?}"
    );
    r.body.as_str().unwrap_or_default()
}

/// Posts a form as a browser with this session does.
async fn post(app: &TestApp, s: &Session, uri: &str, fields: &[(&str, &str)]) -> Reply {
    let body = serde_urlencoded::to_string(fields).unwrap();
    app.send_unchecked(req("POST", uri).session(s, None).raw(Some(FORM), body))
        .await
}

async fn get(app: &TestApp, s: &Session, uri: &str) -> Reply {
    app.send_unchecked(req("GET", uri).session(s, None)).await
}

async fn user(app: &TestApp, name: &str) -> Session {
    let r = app
        .call(
            &app.admin,
            "POST",
            "/api/v1/users",
            json!({"name": name, "password": format!("{name}-password")}),
        )
        .await;
    r.expect(201);
    app.login(name, &format!("{name}-password")).await
}

#[tokio::test]
async fn pages_send_strangers_to_the_login_page_and_back() {
    let app = TestApp::sqlite().await;
    for (path, next) in [
        ("/hub/home", "%2Fhub%2Fhome"),
        (
            "/hub/admin/audit?user=ada",
            "%2Fhub%2Fadmin%2Faudit%3Fuser%3Dada",
        ),
    ] {
        let r = app.send_unchecked(req("GET", path)).await;
        assert_eq!(r.status, 303, "{path}");
        assert_eq!(
            r.header("location"),
            Some(format!("/hub/login?next={next}").as_str())
        );
    }
    // A form post without a session is not carried out.
    let r = app
        .send_unchecked(req("POST", "/hub/workspaces").raw(Some(FORM), "name=x"))
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(
        app.audit_actions()
            .await
            .iter()
            .filter(|a| *a == "workspace.create")
            .count(),
        0
    );
    let r = app.send_unchecked(req("GET", "/")).await;
    assert_eq!(r.header("location"), Some("/hub/home"));
    // An app's OAuth login comes back after berth's login (a script is sent
    // there too, as by JupyterHub).
    let ws = app.workspace(&app.admin, json!({"name": "nb"})).await;
    let authorize = format!(
        "/hub/api/oauth2/authorize?client_id=berth-ws-{}&redirect_uri=/user/admin/nb/oauth_callback&response_type=code",
        ws["id"].as_str().unwrap()
    );
    let r = app
        .send_unchecked(req("GET", &authorize).header("accept", "text/html,application/xhtml+xml"))
        .await;
    assert_eq!(r.status, 302);
    let next = r
        .header("location")
        .unwrap()
        .strip_prefix("/hub/login?next=")
        .unwrap();
    assert_eq!(
        serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("n={next}")).unwrap()[0].1,
        authorize
    );
    let script = app.send_unchecked(req("GET", &authorize)).await;
    assert_eq!(script.status, 302);
    assert_eq!(script.header("location"), r.header("location"));
}

/// The login form's own token: a post from another site (no cookie, or another
/// value) logs no one in; the right one does, and goes only to this origin.
#[tokio::test]
async fn the_login_form_refuses_cross_site_posts_and_foreign_next() {
    let app = TestApp::sqlite().await;
    let page = app
        .send_unchecked(req("GET", "/hub/login?next=//evil.example/x"))
        .await;
    let body = html(&page);
    // (minijinja writes `/` as `&#x2f;` in attributes.)
    assert!(
        body.contains(r#"name="next" value="&#x2f;hub&#x2f;home""#),
        "{body}"
    );
    assert!(!body.contains("evil"));
    let cookie = page
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let token = cookie.split_once('=').unwrap().1.to_owned();
    let form = |csrf: &str, next: &str, password: &str| {
        serde_urlencoded::to_string([
            ("_csrf", csrf),
            ("username", "admin"),
            ("password", password),
            ("next", next),
        ])
        .unwrap()
    };
    let password = crate::ADMIN_PASSWORD;
    for (cookie, csrf) in [("", token.as_str()), (cookie.as_str(), "forged")] {
        let mut r = req("POST", "/hub/login").raw(Some(FORM), form(csrf, "/hub/home", password));
        if !cookie.is_empty() {
            r = r.header("cookie", cookie);
        }
        let r = app.send_unchecked(r).await;
        assert_eq!(r.status, 403, "{r:?}");
        assert!(!r
            .header("set-cookie")
            .unwrap_or_default()
            .contains("berth_session="));
    }
    let wrong = app
        .send_unchecked(
            req("POST", "/hub/login")
                .header("cookie", &cookie)
                .raw(Some(FORM), form(&token, "/hub/home", "wrong-password")),
        )
        .await;
    assert_eq!(wrong.status, 401);
    assert!(html(&wrong).contains("Wrong user name or password."));
    for (next, to) in [
        ("/user/admin/lab/?a=1", "/user/admin/lab/?a=1"),
        ("//evil.example/", "/hub/home"),
        ("https://evil.example/", "/hub/home"),
        ("/\\evil.example", "/hub/home"),
    ] {
        let r = app
            .send_unchecked(
                req("POST", "/hub/login")
                    .header("cookie", &cookie)
                    .raw(Some(FORM), form(&token, next, password)),
            )
            .await;
        assert_eq!(r.status, 303, "{next}: {r:?}");
        assert_eq!(r.header("location"), Some(to), "{next}");
        let set: Vec<_> = r
            .headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert!(
            set.iter()
                .any(|c| c.starts_with("berth_session=") && c.contains("HttpOnly")),
            "{set:?}"
        );
    }
}

#[tokio::test]
async fn every_form_needs_the_session_token() {
    let app = TestApp::sqlite().await;
    let s = app.login("admin", crate::ADMIN_PASSWORD).await;
    for csrf in ["", "not-the-token"] {
        let r = post(
            &app,
            &s,
            "/hub/workspaces",
            &[("_csrf", csrf), ("name", "lab"), ("profile", "standard")],
        )
        .await;
        assert_eq!(r.status, 403);
        assert!(html(&r).contains("Form expired"));
        let r = post(
            &app,
            &s,
            "/hub/admin/users",
            &[
                ("_csrf", csrf),
                ("name", "eve"),
                ("password", "eve-password"),
            ],
        )
        .await;
        assert_eq!(r.status, 403);
        let r = post(&app, &s, "/hub/logout", &[("_csrf", csrf)]).await;
        assert_eq!(r.status, 403);
    }
    let actions = app.audit_actions().await;
    assert!(
        !actions
            .iter()
            .any(|a| a == "workspace.create" || a == "user.create" || a == "auth.logout"),
        "{actions:?}"
    );

    let r = post(
        &app,
        &s,
        "/hub/workspaces",
        &[
            ("_csrf", &s.csrf),
            ("name", "lab"),
            ("profile", "standard"),
            ("start", "on"),
        ],
    )
    .await;
    assert_eq!(r.status, 303, "{r:?}");
    assert_eq!(r.header("location"), Some("/hub/home"));
    let ws = app
        .call(&app.admin, "GET", "/api/v1/workspaces", Value::Null)
        .await;
    assert_eq!(ws.expect(200)["items"][0]["desired_state"], "running");
    let r = post(&app, &s, "/hub/logout", &[("_csrf", &s.csrf)]).await;
    assert_eq!(r.header("location"), Some("/hub/login?logged_out=1"));
    assert_eq!(
        get(&app, &s, "/hub/home").await.status,
        303,
        "the session ended"
    );
}

#[tokio::test]
async fn non_admins_get_403_pages_and_their_posts_do_nothing() {
    let app = TestApp::sqlite().await;
    let ada = user(&app, "ada").await;
    for path in [
        "/hub/admin/users",
        "/hub/admin/profiles",
        "/hub/admin/profiles/standard",
        "/hub/admin/quotas",
        "/hub/admin/quotas/ada",
        "/hub/admin/workspaces",
        "/hub/admin/audit",
        "/hub/admin/services",
    ] {
        let r = get(&app, &ada, path).await;
        assert_eq!(r.status, 403, "{path}");
        assert!(html(&r).contains("Only administrators may see this page."));
    }
    for (path, fields) in [
        (
            "/hub/admin/users",
            vec![
                ("name", "eve"),
                ("password", "eve-password"),
                ("admin", "on"),
            ],
        ),
        ("/hub/admin/users/ada", vec![("action", "make-admin")]),
        (
            "/hub/admin/profiles",
            vec![("name", "huge"), ("display_name", "Huge"), ("cpu", "64")],
        ),
        ("/hub/admin/groups", vec![("name", "team")]),
        ("/hub/admin/quotas/ada", vec![("workspaces", "100")]),
        ("/hub/admin/quotas/ada/reset", vec![]),
        (
            "/hub/admin/services",
            vec![("name", "mine"), ("admin", "on")],
        ),
    ] {
        let mut fields = fields;
        fields.push(("_csrf", &ada.csrf));
        assert_eq!(post(&app, &ada, path, &fields).await.status, 403, "{path}");
    }
    let me = app.send(req("GET", "/api/v1/me").session(&ada, None)).await;
    assert_eq!(me.expect(200)["user"]["admin"], false);
    let actions = app.audit_actions().await;
    assert_eq!(
        actions.iter().filter(|a| *a == "user.create").count(),
        1,
        "ada only: {actions:?}"
    );
    assert!(
        !actions.iter().any(|a| a == "user.update"
            || a == "profile.create"
            || a == "group.create"
            || a.starts_with("service.")
            || a.starts_with("quota.")),
        "{actions:?}"
    );
}

#[tokio::test]
async fn bad_input_is_shown_beside_its_field_and_kept() {
    let app = TestApp::sqlite().await;
    let s = app.login("admin", crate::ADMIN_PASSWORD).await;
    let r = post(
        &app,
        &s,
        "/hub/workspaces",
        &[
            ("_csrf", &s.csrf),
            ("name", "Bad_Name"),
            ("profile", "standard"),
        ],
    )
    .await;
    assert_eq!(r.status, 422);
    let body = html(&r);
    assert!(
        body.contains(r#"data-error-for="name">name may contain only lowercase letters"#),
        "{body}"
    );
    assert!(body.contains(r#"value="Bad_Name""#));
    let r = post(
        &app,
        &s,
        "/hub/workspaces",
        &[("_csrf", &s.csrf), ("name", "lab"), ("profile", "nope")],
    )
    .await;
    assert_eq!(r.status, 422);
    assert!(html(&r).contains("no profile nope"));
    let long = "a".repeat(33);
    let r = post(
        &app,
        &s,
        "/hub/workspaces",
        &[("_csrf", &s.csrf), ("name", &long), ("profile", "standard")],
    )
    .await;
    assert_eq!(r.status, 422);
    assert!(
        html(&r).contains(r#"data-error-for="name">name is longer than 32 characters"#),
        "{}",
        html(&r)
    );

    let profile = [
        ("_csrf", s.csrf.as_str()),
        ("name", "gpu"),
        ("display_name", "GPU"),
        ("cpu", "lots"),
        ("memory_gib", "8"),
        ("disk_gib", "20"),
        ("max_processes", "1024"),
        ("idle_minutes", "0"),
        ("idle_action", "stop"),
        ("lifetime_days", "0"),
        ("cost_per_hour", "1.5"),
        ("start_timeout_secs", "120"),
        ("command", "jupyterlab"),
    ];
    let r = post(&app, &s, "/hub/admin/profiles", &profile).await;
    assert_eq!(r.status, 422);
    assert!(html(&r).contains(r#"data-error-for="cpu">enter a number, 0 or more"#));
    // Every field's error at once, each with its limits.
    let mut all_wrong = profile;
    all_wrong[4].1 = "0.01";
    all_wrong[5].1 = "1e30";
    all_wrong[6].1 = "3";
    all_wrong[11].1 = "7200";
    let r = post(&app, &s, "/hub/admin/profiles", &all_wrong).await;
    assert_eq!(r.status, 422);
    for error in [
        r#"data-error-for="cpu">enter a number, 0 or more"#,
        r#"data-error-for="memory_gib">must be between 64 MiB and 16 TiB"#,
        r#"data-error-for="disk_gib">must be between 16 MiB and 1 PiB"#,
        r#"data-error-for="max_processes">must be between 8 and 4194304"#,
        r#"data-error-for="start_timeout_secs">must be between 5 and 3600 seconds"#,
    ] {
        assert!(html(&r).contains(error), "{error} missing");
    }
    let mut profile = profile;
    profile[3].1 = "2";
    profile[4].1 = "0.01";
    let r = post(&app, &s, "/hub/admin/profiles", &profile).await;
    assert_eq!(r.status, 422);
    assert!(
        html(&r).contains(r#"data-error-for="memory_gib">must be between 64 MiB and 16 TiB"#),
        "{}",
        html(&r)
    );
    profile[4].1 = "8";
    assert_eq!(
        post(&app, &s, "/hub/admin/profiles", &profile).await.status,
        303
    );
    let p = app
        .call(&app.admin, "GET", "/api/v1/profiles/gpu", Value::Null)
        .await;
    assert_eq!(p.expect(200)["memory_bytes"], 8u64 << 30);

    let r = post(
        &app,
        &s,
        "/hub/token",
        &[
            ("_csrf", &s.csrf),
            ("note", "x"),
            ("scopes", "read:nothing"),
            ("expires_in", "3600"),
        ],
    )
    .await;
    assert_eq!(r.status, 422);
    assert!(html(&r).contains(r#"data-error-for="scopes">"#));
    let r = get(&app, &s, "/hub/admin/audit?since=yesterday").await;
    assert_eq!(r.status, 400);
    assert!(html(&r).contains(r#"data-error-for="since">"#));
    let r = get(&app, &s, "/hub/admin/audit?action=bogus").await;
    assert_eq!(r.status, 400, "an unknown action is refused, as by the API");
    assert!(html(&r).contains(r#"data-error-for="action">"#));
    assert!(html(&r).contains("the families are auth, group"));
    // Hostile ids and names are error pages, not faults.
    for path in [
        "/hub/workspaces/..%2F..%2Fetc",
        "/hub/admin/profiles/%00",
        "/hub/workspaces/01a00000-0000-7000-8000-000000000000",
    ] {
        let r = get(&app, &s, path).await;
        assert!(r.status.is_client_error(), "{path}: {r:?}");
        html(&r);
    }
}

#[tokio::test]
async fn costs_show_the_configured_currency() {
    for (currency, shown) in [("USD", "1.50 USD/h"), ("€", "€1.50/h")] {
        let config = server::ServerConfig {
            currency: currency.into(),
            ..server::ServerConfig::default()
        };
        let app = TestApp::start(test_support::Engine::Sqlite, config).await;
        let body = json!({"name": "paid", "display_name": "Paid", "cost_per_hour": 1.5});
        app.call(&app.admin, "POST", "/api/v1/profiles", body)
            .await
            .expect(201);
        let s = app.login("admin", crate::ADMIN_PASSWORD).await;
        let home = get(&app, &s, "/hub/home").await;
        assert!(html(&home).contains(shown), "{currency}: {}", html(&home));
        let form = get(&app, &s, "/hub/admin/profiles/paid").await;
        assert!(html(&form).contains(&format!("Cost per hour ({currency})")));
    }
}

#[tokio::test]
async fn every_page_renders() {
    let app = TestApp::sqlite().await;
    let s = app.login("admin", crate::ADMIN_PASSWORD).await;
    let ws = app.workspace(&app.admin, json!({"name": "lab"})).await;
    let id = ws["id"].as_str().unwrap();
    let created = post(
        &app,
        &s,
        "/hub/token",
        &[("_csrf", &s.csrf), ("note", "ci"), ("expires_in", "0")],
    )
    .await;
    assert_eq!(created.status, 201);
    assert!(
        html(&created).contains(r#"id="new-token" readonly value="bth_"#)
            || html(&created).contains("new-token")
    );
    for path in [
        "/hub/home".to_owned(),
        format!("/hub/workspaces/{id}"),
        format!("/hub/workspaces/{id}/delete"),
        "/hub/token".to_owned(),
        "/hub/logout".to_owned(),
        "/hub/admin/users".to_owned(),
        "/hub/admin/profiles".to_owned(),
        "/hub/admin/profiles/standard".to_owned(),
        "/hub/admin/quotas".to_owned(),
        "/hub/admin/quotas/admin".to_owned(),
        "/hub/admin/workspaces?all=1".to_owned(),
        "/hub/admin/audit?user=admin&action=workspace".to_owned(),
        "/hub/admin/services".to_owned(),
    ] {
        let r = get(&app, &s, &path).await;
        assert_eq!(r.status, 200, "{path}: {r:?}");
        let body = html(&r);
        assert!(
            body.contains("<title>") && body.contains("/hub/static/berth.css"),
            "{path}"
        );
        assert!(
            body.contains(&format!(r#"name="_csrf" value="{}""#, s.csrf)),
            "{path}: every page's forms carry the token"
        );
        assert!(
            !body.contains("maxlength"),
            "{path}: a value too long is refused with a message, not cut short as typed"
        );
    }
    for asset in ["/hub/static/berth.css", "/hub/static/berth.js"] {
        let r = app.send_unchecked(req("GET", asset)).await;
        assert_eq!(r.status, 200, "{asset}");
    }
}

#[tokio::test]
async fn an_admin_gives_a_user_limits_of_their_own_on_the_quota_page() {
    let app = TestApp::sqlite().await;
    let s = app.login("admin", crate::ADMIN_PASSWORD).await;
    let ada = user(&app, "ada").await;
    let page = get(&app, &s, "/hub/admin/quotas/ada").await;
    assert_eq!(page.status, 200);
    assert!(html(&page).contains("under the default quota"));
    assert!(!html(&page).contains("Use the default quota"));

    let before = app.snapshot().await;
    for (fields, error) in [
        (
            [("workspaces", "lots"), ("cpu", ""), ("memory_gib", "")],
            r#"data-error-for="workspaces">enter a number"#,
        ),
        (
            [("workspaces", "1.5"), ("cpu", ""), ("memory_gib", "")],
            r#"data-error-for="workspaces">enter a whole number"#,
        ),
        (
            [("workspaces", ""), ("cpu", "-2"), ("memory_gib", "")],
            r#"data-error-for="cpu">enter a number"#,
        ),
        (
            [("workspaces", ""), ("cpu", ""), ("memory_gib", "1e30")],
            r#"data-error-for="memory_gib">at most 1 EiB"#,
        ),
    ] {
        let mut form = vec![("_csrf", s.csrf.as_str())];
        form.extend(fields);
        let r = post(&app, &s, "/hub/admin/quotas/ada", &form).await;
        assert_eq!(r.status, 422, "{fields:?}");
        let body = html(&r);
        assert!(body.contains(error), "{fields:?}: {body}");
        let typed = fields.iter().find(|(_, v)| !v.is_empty()).unwrap().1;
        assert!(body.contains(&format!(r#"value="{typed}""#)), "kept");
    }
    let r = post(
        &app,
        &s,
        "/hub/admin/quotas/nobody",
        &[("_csrf", &s.csrf), ("workspaces", "1")],
    )
    .await;
    assert_eq!(r.status, 404);
    assert_eq!(app.snapshot().await, before, "nothing written");

    let r = post(
        &app,
        &s,
        "/hub/admin/quotas/ada",
        &[
            ("_csrf", &s.csrf),
            ("workspaces", "1"),
            ("cpu", "0.5"),
            ("memory_gib", ""),
        ],
    )
    .await;
    assert_eq!(r.status, 303, "{r:?}");
    assert_eq!(r.header("location"), Some("/hub/admin/quotas"));
    let q = app
        .call(&app.admin, "GET", "/api/v1/users/ada/quota", Value::Null)
        .await;
    let q = q.expect(200);
    assert_eq!(
        q["custom"],
        json!({"max_workspaces": 1, "max_cpu": 0.5, "max_memory_bytes": null})
    );
    let list = get(&app, &s, "/hub/admin/quotas").await;
    let row = html(&list).split(r#"data-user="ada""#).nth(1).unwrap();
    let row = row.split("</tr>").next().unwrap();
    assert!(
        row.contains("own limits") && row.contains("0 of 1"),
        "{row}"
    );
    let page = get(&app, &s, "/hub/admin/quotas/ada").await;
    assert!(html(&page).contains(r#"id="f-workspaces" name="workspaces" type="text" value="1""#));
    assert!(html(&page).contains(r#"value="0.5""#));

    // Her home shows her own limits, and holds her to them.
    let home = get(&app, &ada, "/hub/home").await;
    assert!(html(&home).contains("<strong>0</strong> of 1 workspaces"));
    assert!(html(&home).contains("of 0.5 CPUs"));
    // Preselected is a profile her quota lets start now (not Standard's 2
    // CPUs); the others say they do not fit.
    let tiny =
        json!({"name": "tiny", "display_name": "Tiny", "cpu": 0.5, "memory_bytes": 1u64 << 30});
    app.call(&app.admin, "POST", "/api/v1/profiles", tiny)
        .await
        .expect(201);
    let home = html(&get(&app, &ada, "/hub/home").await).to_owned();
    assert!(home.contains(r#"value="tiny" checked"#), "{home}");
    assert!(!home.contains(r#"value="standard" checked"#));
    assert_eq!(
        home.matches("data-over-quota").count(),
        2,
        "standard and high-memory"
    );
    app.call(&app.admin, "DELETE", "/api/v1/profiles/tiny", Value::Null)
        .await
        .expect(204);
    let r = post(
        &app,
        &ada,
        "/hub/workspaces",
        &[
            ("_csrf", &ada.csrf),
            ("name", "lab"),
            ("profile", "standard"),
            ("start", "on"),
        ],
    )
    .await;
    assert_eq!(r.status, 403, "2 CPUs do not fit in 0.5");
    assert!(html(&r).contains("the quota is 0.5"));

    let r = post(
        &app,
        &s,
        "/hub/admin/quotas/ada/reset",
        &[("_csrf", &s.csrf)],
    )
    .await;
    assert_eq!(r.status, 303);
    let home = get(&app, &ada, "/hub/home").await;
    assert!(html(&home).contains("<strong>0</strong> of 10 workspaces"));
    let actions = app.audit_actions().await;
    let quota: Vec<_> = actions.iter().filter(|a| a.starts_with("quota.")).collect();
    assert_eq!(quota, ["quota.set", "quota.reset"]);
}

#[tokio::test]
async fn the_users_and_quotas_pages_come_in_pages_of_a_hundred() {
    let app = TestApp::sqlite().await;
    let s = app.login("admin", crate::ADMIN_PASSWORD).await;
    for i in 0..100 {
        app.call(
            &app.admin,
            "POST",
            "/api/v1/users",
            json!({"name": format!("u{i:03}")}),
        )
        .await
        .expect(201);
    }
    // 101 users: admin, then u000 to u099 by name.
    for path in ["/hub/admin/users", "/hub/admin/quotas"] {
        let first = get(&app, &s, path).await;
        let body = html(&first);
        assert!(body.contains(r#"data-user="admin""#) && body.contains(r#"data-user="u098""#));
        assert!(!body.contains(r#"data-user="u099""#), "{path}");
        let next = format!("{path}?after=u098");
        assert!(
            body.contains(&format!(r#"href="{}""#, next.replace('/', "&#x2f;"))),
            "{path}"
        );
        let second = get(&app, &s, &next).await;
        let body = html(&second);
        assert!(body.contains(r#"data-user="u099""#), "{path}");
        assert!(
            !body.contains(r#"data-user="u098""#) && !body.contains("?after="),
            "{path}"
        );
    }
}

/// An admin makes a service in the portal: its token is shown once and
/// works at once as the service's (JupyterHub's `/hub/api/user` says so);
/// deleting it ends the token.
#[tokio::test]
async fn admins_make_and_delete_services_in_the_portal() {
    let app = TestApp::sqlite().await;
    let s = app.login("admin", crate::ADMIN_PASSWORD).await;
    let fields = [("name", "idle-culler"), ("admin", "on"), ("_csrf", &s.csrf)];
    let r = post(&app, &s, "/hub/admin/services", &fields).await;
    assert_eq!(r.status, 200, "{r:?}");
    let page = html(&r);
    let token = page
        .split("id=\"new-token\" readonly value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no token shown: {page}"))
        .to_owned();
    assert!(page.contains("data-service=\"idle-culler\""), "{page}");
    let me = app.call(&token, "GET", "/hub/api/user", Value::Null).await;
    let me = me.expect(200);
    assert_eq!(
        (&me["kind"], &me["admin"]),
        (&json!("service"), &json!(true))
    );
    // Shown once: the page again lists it, without the token.
    let again = get(&app, &s, "/hub/admin/services").await;
    let again = html(&again);
    assert!(again.contains("idle-culler") && !again.contains(&token));
    // A taken name is said so, and nothing is made.
    let fields = [("name", "admin"), ("_csrf", &s.csrf)];
    let r = post(&app, &s, "/hub/admin/services", &fields).await;
    assert_eq!(r.status, 409, "{r:?}");
    let fields = [("_csrf", s.csrf.as_str())];
    let r = post(&app, &s, "/hub/admin/services/idle-culler/delete", &fields).await;
    assert_eq!(r.status, 303, "{r:?}");
    app.call(&token, "GET", "/hub/api/user", Value::Null)
        .await
        .expect_error(403, "forbidden");
}

/// An account without a password hears so at the login form, with what to do.
#[tokio::test]
async fn the_login_form_says_when_an_account_has_no_password() {
    let app = TestApp::sqlite().await;
    app.user("bob", None).await;
    let page = app.send_unchecked(req("GET", "/hub/login")).await;
    let cookie = page
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let token = cookie.split_once('=').unwrap().1.to_owned();
    let form = serde_urlencoded::to_string([
        ("_csrf", token.as_str()),
        ("username", "bob"),
        ("password", "anything-at-all"),
    ])
    .unwrap();
    let r = app
        .send_unchecked(
            req("POST", "/hub/login")
                .header("cookie", &cookie)
                .raw(Some(FORM), form),
        )
        .await;
    assert_eq!(r.status, 401);
    let body = html(&r);
    assert!(
        body.contains("This account has no password.")
            && body.contains("berth admin reset-password NAME"),
        "{body}"
    );
}

#[tokio::test]
async fn an_owner_shares_from_the_workspace_page_and_the_recipient_sees_it_at_home() {
    let app = TestApp::sqlite().await;
    let alice = user(&app, "alice").await;
    let bob = user(&app, "bob").await;
    let token = app.token_for("alice", None).await;
    let nb = app.workspace(&token, json!({"name": "nb"})).await;
    let id = nb["id"].as_str().unwrap();
    let page = format!("/hub/workspaces/{id}");
    let (share, unshare) = (format!("{page}/share"), format!("{page}/unshare"));
    let body = html(&get(&app, &alice, &page).await).to_owned();
    assert!(body.contains("Not shared with anyone."), "{body}");
    assert!(!html(&get(&app, &bob, "/hub/home").await).contains("Shared with you"));

    // Errors come back beside the name, with what was typed.
    for (name, status, error) in [
        ("alice", 422, "alice owns nb; share it with someone else"),
        ("nobody", 422, "no such user"),
        ("Bob!", 422, "name may contain only lowercase letters"),
    ] {
        let fields = [
            ("_csrf", alice.csrf.as_str()),
            ("kind", "user"),
            ("name", name),
        ];
        let r = post(&app, &alice, &share, &fields).await;
        assert_eq!(r.status, status, "{name}");
        let body = html(&r);
        assert!(
            body.contains(&format!(r#"data-error-for="name">{error}"#)),
            "{name}: {body}"
        );
        assert!(body.contains(&format!(r#"value="{name}""#)), "{body}");
    }
    let fields = [
        ("_csrf", alice.csrf.as_str()),
        ("kind", "team"),
        ("name", "bob"),
    ];
    let r = post(&app, &alice, &share, &fields).await;
    assert_eq!(r.status, 422);
    assert!(html(&r).contains("share with a user or a group"));

    let fields = [
        ("_csrf", alice.csrf.as_str()),
        ("kind", "user"),
        ("name", " bob "),
    ];
    let r = post(&app, &alice, &share, &fields).await;
    assert_eq!(r.status, 303, "{r:?}");
    let body = html(&get(&app, &alice, &page).await).to_owned();
    assert!(body.contains("User <strong>bob</strong>"), "{body}");
    let home = html(&get(&app, &bob, "/hub/home").await).to_owned();
    assert!(home.contains("Shared with you"), "{home}");
    assert!(home.contains(r#"<th scope="row" data-label="Workspace">nb</th>"#));
    assert!(home.contains("Ask alice to start it."), "{home}");

    // Bob may use it, not share it on.
    let fields = [
        ("_csrf", bob.csrf.as_str()),
        ("kind", "user"),
        ("name", "carol"),
    ];
    let r = post(&app, &bob, &share, &fields).await;
    assert_eq!(r.status, 404);
    assert!(!html(&get(&app, &bob, &page).await).contains("Sharing"));

    let fields = [
        ("_csrf", alice.csrf.as_str()),
        ("kind", "user"),
        ("name", "bob"),
    ];
    assert_eq!(post(&app, &alice, &unshare, &fields).await.status, 303);
    assert!(html(&get(&app, &alice, &page).await).contains("Not shared with anyone."));
    assert!(!html(&get(&app, &bob, "/hub/home").await).contains("Shared with you"));
}

#[tokio::test]
async fn app_logins_are_one_row_per_workspace_and_log_out_together() {
    let app = TestApp::sqlite().await;
    let ada = user(&app, "ada").await;
    let token = app.token_for("ada", None).await;
    let ws = app.workspace(&token, json!({"name": "lab"})).await;
    let ws_id = ws["id"].as_str().unwrap();
    let ada_id = app
        .store
        .user_by_name(&model::Name::parse("ada").unwrap())
        .await
        .unwrap()
        .id;
    // Three logins to her app, as three OAuth flows leave them.
    for i in 0..3 {
        let mut tx = app.store.begin().await.unwrap();
        tx.insert_token_of(
            &store::NewToken {
                user_id: ada_id.clone(),
                hash: format!("hash-of-login-{i}"),
                prefix: format!("berth_{i}"),
                note: "oauth ada/lab".into(),
                scopes: model::ScopeSet::new([model::Scope::AccessServers]),
                expires_at: Some(model::now_millis() + 3_600_000),
            },
            model::TokenKind::OAuth,
            Some(ws_id),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
    let page = get(&app, &ada, "/hub/token").await;
    let body = html(&page);
    assert_eq!(body.matches("data-app=").count(), 1, "{body}");
    assert!(
        body.contains("ada&#x2f;lab") && body.contains("3, since"),
        "{body}"
    );
    assert!(!body.contains("berth_1…"), "no row per login");

    let r = post(
        &app,
        &ada,
        &format!("/hub/token/apps/{ws_id}/revoke"),
        &[("_csrf", &ada.csrf)],
    )
    .await;
    assert_eq!(r.status, 303);
    let body = html(&get(&app, &ada, "/hub/token").await).to_owned();
    assert!(!body.contains("data-app="), "{body}");
    let tokens = app
        .call(&token, "GET", "/api/v1/users/ada/tokens", Value::Null)
        .await;
    assert_eq!(
        tokens.expect(200).as_array().unwrap().len(),
        1,
        "only her API token is left"
    );
}
