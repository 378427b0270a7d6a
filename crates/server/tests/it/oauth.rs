//! berth's OAuth provider (`/hub/api/oauth2/…`): the authorization-code flow a
//! workspace's app goes through, and every way a request of it can be wrong.

use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use model::secret::MintedToken;
use model::{ScopeSet, TokenKind};
use store::NewToken;

use crate::{req, Reply, Session, TestApp};

/// A workspace of `token`'s user and the server token its app would get at
/// start (as the controller makes it): (workspace id, client secret).
async fn client(app: &TestApp, token: &str, name: &str) -> (String, String) {
    let ws = app.workspace(token, json!({"name": name})).await;
    let id = ws["id"].as_str().unwrap().to_owned();
    let owner = app
        .store
        .user_by_name(&model::Name::parse(ws["owner"].as_str().unwrap()).unwrap())
        .await
        .unwrap();
    let minted = MintedToken::new();
    let mut tx = app.store.begin().await.unwrap();
    tx.insert_token_of(
        &NewToken {
            user_id: owner.id,
            hash: minted.hash,
            prefix: minted.prefix,
            note: "server".into(),
            scopes: ScopeSet::parse("users:activity").unwrap(),
            expires_at: None,
        },
        TokenKind::Server,
        Some(&id),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    (id, minted.secret.expose().to_owned())
}

fn authorize_uri(id: &str, redirect: &str, extra: &str) -> String {
    format!(
        "/hub/api/oauth2/authorize?client_id=berth-ws-{id}&redirect_uri={redirect}\
         &response_type=code&state=st-1{extra}"
    )
}

async fn authorize(app: &TestApp, s: Option<&Session>, uri: &str) -> Reply {
    let r = req("GET", uri);
    let r = match s {
        Some(s) => r.session(s, None),
        None => r,
    };
    app.send_unchecked(r).await
}

/// The query of a redirect's `Location`, as pairs.
fn location_query(r: &Reply) -> (String, Vec<(String, String)>) {
    assert_eq!(r.status, 302, "{r:?}");
    let location = r.header("location").unwrap();
    let (path, query) = location.split_once('?').unwrap();
    let pairs = serde_urlencoded::from_str(query).unwrap();
    (path.to_owned(), pairs)
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

async fn exchange(app: &TestApp, form: &[(&str, &str)], basic: Option<(&str, &str)>) -> Reply {
    let body = serde_urlencoded::to_string(form).unwrap();
    let mut r =
        req("POST", "/hub/api/oauth2/token").raw(Some("application/x-www-form-urlencoded"), body);
    if let Some((id, secret)) = basic {
        let creds = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
        r = r.header("authorization", &format!("Basic {creds}"));
    }
    app.send_unchecked(r).await
}

fn s256(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

#[tokio::test]
async fn the_authorization_code_flow_gives_a_token_for_one_workspace() {
    let app = TestApp::sqlite().await;
    let admin = app.login("admin", crate::ADMIN_PASSWORD).await;
    app.call(
        &app.admin,
        "POST",
        "/api/v1/users",
        json!({"name": "alice", "password": "alice-password"}),
    )
    .await
    .expect(201);
    let alice = app.login("alice", "alice-password").await;
    let alice_token = app.token_for("alice", None).await;
    let (id, secret) = client(&app, &alice_token, "nb").await;
    let (other_id, other_secret) = client(&app, &alice_token, "other").await;
    let redirect = "/user/alice/nb/oauth_callback";
    let verifier = "a-verifier-of-at-least-forty-three-characters-0123456789";
    let challenge = format!(
        "&code_challenge={}&code_challenge_method=S256",
        s256(verifier)
    );

    // The owner is sent back to the client with a code and the state.
    let r = authorize(
        &app,
        Some(&alice),
        &authorize_uri(&id, redirect, &challenge),
    )
    .await;
    let (path, pairs) = location_query(&r);
    assert_eq!(path, redirect);
    assert_eq!(param(&pairs, "state"), Some("st-1"));
    let code = param(&pairs, "code").unwrap().to_owned();

    // A wrong verifier spends the code.
    let form = |code: &str, verifier: &str| {
        vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.to_owned()),
            ("redirect_uri", redirect.to_owned()),
            ("code_verifier", verifier.to_owned()),
        ]
    };
    let send = |f: Vec<(&'static str, String)>, basic: Option<(String, String)>| {
        let app = &app;
        async move {
            let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
            exchange(
                app,
                &pairs,
                basic.as_ref().map(|(a, b)| (a.as_str(), b.as_str())),
            )
            .await
        }
    };
    let creds = Some((format!("berth-ws-{id}"), secret.clone()));
    let r = send(form(&code, "wrong-verifier"), creds.clone()).await;
    expect_oauth_error(&r, 400, "invalid_grant");
    let r = send(form(&code, verifier), creds.clone()).await;
    expect_oauth_error(&r, 400, "invalid_grant");

    // A fresh code, exchanged with the client's credentials in the form.
    let r = authorize(
        &app,
        Some(&alice),
        &authorize_uri(&id, redirect, &challenge),
    )
    .await;
    let code = param(&location_query(&r).1, "code").unwrap().to_owned();
    let mut f = form(&code, verifier);
    f.push(("client_id", format!("berth-ws-{id}")));
    f.push(("client_secret", secret.clone()));
    let r = send(f.clone(), None).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.body["token_type"], "Bearer");
    let access = r.body["access_token"].as_str().unwrap().to_owned();
    // Used once only.
    let r = send(f, None).await;
    expect_oauth_error(&r, 400, "invalid_grant");

    // The token identifies alice, reaches this one workspace, and nothing else.
    let me = app.call(&access, "GET", "/hub/api/user", Value::Null).await;
    let me = me.expect(200);
    assert_eq!(me["name"], "alice");
    let scopes = me["scopes"].as_array().unwrap();
    assert!(
        scopes.contains(&json!("access:servers!server=alice/nb")),
        "{scopes:?}"
    );
    assert!(
        !scopes.iter().any(|s| s == "access:servers!user=alice"),
        "{scopes:?}"
    );
    app.call(&access, "GET", "/api/v1/workspaces", Value::Null)
        .await
        .expect_error(403, "forbidden");
    let tokens = app.store.tokens(&me_id(&app, "alice").await).await.unwrap();
    let issued = tokens.iter().find(|t| t.kind == TokenKind::OAuth).unwrap();
    assert_eq!(issued.workspace_id.as_deref(), Some(id.as_str()));
    assert!(issued.expires_at.is_some());

    // Codes of one client are no good to another, nor is another's secret.
    let r = authorize(&app, Some(&alice), &authorize_uri(&id, redirect, "")).await;
    let code = param(&location_query(&r).1, "code").unwrap().to_owned();
    let f = vec![
        ("grant_type", "authorization_code".to_owned()),
        ("code", code.clone()),
    ];
    let r = send(
        f.clone(),
        Some((format!("berth-ws-{id}"), other_secret.clone())),
    )
    .await;
    expect_oauth_error(&r, 401, "invalid_client");
    let r = send(
        f.clone(),
        Some((format!("berth-ws-{other_id}"), other_secret)),
    )
    .await;
    expect_oauth_error(&r, 400, "invalid_grant");
    // Alice's own API token is not a client secret.
    let r = send(f, Some((format!("berth-ws-{id}"), alice_token))).await;
    expect_oauth_error(&r, 401, "invalid_client");

    // An admin may open alice's workspace, and gets a token for it alone.
    let r = authorize(&app, Some(&admin), &authorize_uri(&id, redirect, "")).await;
    assert_eq!(r.status, 302, "{r:?}");
    assert!(app
        .audit_actions()
        .await
        .contains(&"token.create".to_owned()));
}

async fn me_id(app: &TestApp, name: &str) -> String {
    app.store
        .user_by_name(&model::Name::parse(name).unwrap())
        .await
        .unwrap()
        .id
        .into_string()
}

fn expect_oauth_error(r: &Reply, status: u16, error: &str) {
    assert_eq!(r.status, status, "{r:?}");
    assert_eq!(r.body["error"], error, "{r:?}");
    assert!(r.body["error_description"].is_string(), "{r:?}");
}

#[tokio::test]
async fn bad_authorization_requests_are_refused_without_redirecting_blindly() {
    let app = TestApp::sqlite().await;
    for name in ["alice", "bob"] {
        app.call(
            &app.admin,
            "POST",
            "/api/v1/users",
            json!({"name": name, "password": format!("{name}-password")}),
        )
        .await
        .expect(201);
    }
    let alice = app.login("alice", "alice-password").await;
    let bob = app.login("bob", "bob-password").await;
    let alice_token = app.token_for("alice", None).await;
    let (id, _) = client(&app, &alice_token, "nb").await;
    let redirect = "/user/alice/nb/oauth_callback";
    let page = |r: &Reply, status: u16| {
        assert_eq!(r.status, status, "{r:?}");
        assert!(r.header("location").is_none(), "{r:?}");
        assert_eq!(
            r.header("content-type"),
            Some("text/html; charset=utf-8"),
            "{r:?}"
        );
    };

    // Not logged in: to the login page, which comes back here (as JupyterHub).
    let uri = authorize_uri(&id, redirect, "");
    let r = authorize(&app, None, &uri).await;
    assert_eq!(r.status, 302, "{r:?}");
    let next: String = serde_urlencoded::to_string([("next", uri.as_str())]).unwrap();
    assert_eq!(
        r.header("location"),
        Some(format!("/hub/login?{next}").as_str())
    );
    // Someone else's workspace.
    page(
        &authorize(&app, Some(&bob), &authorize_uri(&id, redirect, "")).await,
        403,
    );
    // Unknown clients and foreign redirect URIs get a page, never a redirect.
    for uri in [
        authorize_uri("no-such-workspace", redirect, ""),
        "/hub/api/oauth2/authorize?client_id=jupyterhub&response_type=code".to_owned(),
        authorize_uri(&id, "https://evil.example/cb", ""),
        authorize_uri(&id, "/user/alice/other/oauth_callback", ""),
        "/hub/api/oauth2/authorize".to_owned(),
    ] {
        page(&authorize(&app, Some(&alice), &uri).await, 400);
    }
    // Once the client is known, errors go back to it (RFC 6749 §4.1.2.1).
    let uri =
        format!("/hub/api/oauth2/authorize?client_id=berth-ws-{id}&response_type=token&state=s");
    let (path, pairs) = location_query(&authorize(&app, Some(&alice), &uri).await);
    assert_eq!(path, redirect);
    assert_eq!(param(&pairs, "error"), Some("unsupported_response_type"));
    assert_eq!(param(&pairs, "state"), Some("s"));
    let r = authorize(
        &app,
        Some(&alice),
        &authorize_uri(
            &id,
            redirect,
            "&code_challenge=short&code_challenge_method=plain",
        ),
    )
    .await;
    assert_eq!(
        param(&location_query(&r).1, "error"),
        Some("invalid_request")
    );
    // A challenge without a method is `plain` (RFC 7636), which is refused.
    let plain = format!("&code_challenge={}", "a".repeat(43));
    let r = authorize(&app, Some(&alice), &authorize_uri(&id, redirect, &plain)).await;
    assert_eq!(
        param(&location_query(&r).1, "error"),
        Some("invalid_request")
    );

    // The token endpoint: the wrong grant, no credentials, not a form.
    let r = exchange(&app, &[("grant_type", "password")], None).await;
    expect_oauth_error(&r, 400, "unsupported_grant_type");
    let r = exchange(
        &app,
        &[("grant_type", "authorization_code"), ("code", "x")],
        None,
    )
    .await;
    expect_oauth_error(&r, 401, "invalid_client");
    let r = app
        .send_unchecked(req("POST", "/hub/api/oauth2/token").json(&json!({"grant_type": 1})))
        .await;
    // As JupyterHub (oauthlib): a body that is not a form has no grant type.
    expect_oauth_error(&r, 400, "unsupported_grant_type");
    let r = exchange(
        &app,
        &[("grant_type", "authorization_code"), ("code", "x")],
        Some(("berth-ws-nope", "secret")),
    )
    .await;
    expect_oauth_error(&r, 401, "invalid_client");
}
