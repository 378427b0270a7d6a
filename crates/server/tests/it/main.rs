//! Integration tests of the server crate: the whole router, driven in process with
//! `tower::ServiceExt::oneshot` against a fresh, bootstrapped database per test.
//!
//! Every reply goes through [`TestApp::send`], which checks what holds for all of
//! them: an `x-request-id` header, and for every 4xx/5xx a JSON body
//! `{code, message, request_id}` whose id is that header's.

mod audit;
mod auth;
mod authz;
mod docs;
mod engines;
mod hostile;
mod hub;
mod hub_admin;
mod hub_shares;
mod logs;
mod oauth;
mod portal;
mod props;
mod proxy;
mod quota;
mod shares;
mod system;
mod workspaces;

use axum::body::Body;
use axum::http::{header, HeaderMap, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use server::{AppState, ServerConfig};
use test_support::{Engine, TestDb};
use tower::ServiceExt;

pub const ADMIN_PASSWORD: &str = "correct horse battery staple";

/// A router over a fresh database holding the bootstrap admin, and an API token of
/// that admin.
#[derive(Debug)]
pub struct TestApp {
    pub router: Router,
    pub store: store::Store,
    /// An API token of `admin` with every scope.
    pub admin: String,
    _db: TestDb,
}

/// What every reply of berth's own API holds: an `x-request-id`, and for every
/// 4xx/5xx a JSON body `{code, message, request_id}` with a documented code.
fn check(reply: &Reply) {
    let id = reply
        .header("x-request-id")
        .unwrap_or_else(|| panic!("no x-request-id: {reply:?}"));
    assert!(
        id.len() >= 16 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{reply:?}"
    );
    if reply.status.is_client_error() || reply.status.is_server_error() {
        assert_eq!(
            reply.header("content-type"),
            Some("application/json"),
            "{reply:?}"
        );
        let obj = reply
            .body
            .as_object()
            .unwrap_or_else(|| panic!("{reply:?}"));
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            ["code", "message", "request_id", "status"],
            "{reply:?}"
        );
        assert_eq!(obj["request_id"], id, "{reply:?}");
        assert_eq!(obj["status"], reply.status.as_u16(), "{reply:?}");
        assert!(!reply.code().is_empty(), "{reply:?}");
        let code = server::error::Code::ALL
            .iter()
            .find(|c| c.as_str() == reply.code())
            .unwrap_or_else(|| panic!("undocumented code: {reply:?}"));
        // Under /hub/api (which answers with JupyterHub's version header), bad
        // input is a 400 whatever its code, and no credentials a 403, as in
        // JupyterHub.
        let hub = reply.header("x-jupyterhub-version").is_some();
        let as_hub = (reply.status == StatusCode::BAD_REQUEST
            && [415, 422].contains(&code.status().as_u16()))
            || (reply.status == StatusCode::FORBIDDEN && code.status().as_u16() == 401);
        assert!(
            code.status() == reply.status || (hub && as_hub),
            "{reply:?}"
        );
    }
}

/// A request under construction.
#[derive(Debug)]
pub struct Req {
    pub builder: axum::http::request::Builder,
    body: Body,
}

/// Starts a request.
pub fn req(method: &str, uri: &str) -> Req {
    Req {
        builder: Request::builder().method(method).uri(uri),
        body: Body::empty(),
    }
}

impl Req {
    pub fn header(mut self, name: &str, value: &str) -> Req {
        self.builder = self.builder.header(name, value);
        self
    }

    /// `Authorization: Bearer <token>`; an empty token sends no header.
    pub fn token(self, token: &str) -> Req {
        if token.is_empty() {
            self
        } else {
            self.header("authorization", &format!("Bearer {token}"))
        }
    }

    /// The session cookie and, if given, the CSRF header.
    pub fn session(self, s: &Session, csrf: Option<&str>) -> Req {
        let r = self.header("cookie", &s.cookie);
        match csrf {
            Some(c) => r.header("x-csrf-token", c),
            None => r,
        }
    }

    pub fn json(self, body: &Value) -> Req {
        self.raw(Some("application/json"), body.to_string())
    }

    /// A body as is, with this content type (or none).
    pub fn raw(mut self, content_type: Option<&str>, body: impl Into<Body>) -> Req {
        if let Some(ct) = content_type {
            self.builder = self.builder.header(header::CONTENT_TYPE, ct);
        }
        self.body = body.into();
        self
    }
}

/// What came back: status, headers, and the body as JSON (a JSON string when the
/// body is not JSON, `null` when empty).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    /// The error code of an error body.
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }

    /// Asserts the status and the error code.
    #[track_caller]
    pub fn expect_error(&self, status: u16, code: &str) {
        assert_eq!(
            (self.status.as_u16(), self.code()),
            (status, code),
            "unexpected reply: {self:?}"
        );
    }

    /// Asserts the status and returns the body.
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "unexpected reply: {self:?}");
        &self.body
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A logged-in browser: the `name=value` of the session cookie and its CSRF token.
#[derive(Debug, Clone)]
pub struct Session {
    pub cookie: String,
    pub csrf: String,
}

impl TestApp {
    /// A bootstrapped app on SQLite with the default configuration.
    pub async fn sqlite() -> TestApp {
        TestApp::start(Engine::Sqlite, ServerConfig::default()).await
    }

    pub async fn start(engine: Engine, config: ServerConfig) -> TestApp {
        TestApp::start_with(engine, config, None).await
    }

    /// With a runtime behind the API (what it reads from workspaces: logs,
    /// use); the controller does not run, so states change only by hand.
    pub async fn with_runtime(rt: std::sync::Arc<dyn runtime::Runtime>) -> TestApp {
        TestApp::start_with(Engine::Sqlite, ServerConfig::default(), Some(rt)).await
    }

    async fn start_with(
        engine: Engine,
        config: ServerConfig,
        runtime: Option<std::sync::Arc<dyn runtime::Runtime>>,
    ) -> TestApp {
        let db = engine.fresh().await;
        let store = store::Store::connect(&db.url)
            .await
            .unwrap_or_else(|e| panic!("{}: connect: {e:?}", db.engine));
        server::bootstrap(&store, Some(ADMIN_PASSWORD))
            .await
            .unwrap_or_else(|e| panic!("{}: bootstrap: {e:?}", db.engine));
        let mut state = AppState::new(store.clone(), config);
        state.runtime = runtime;
        let router = server::router(state);
        let mut app = TestApp {
            router,
            store,
            admin: String::new(),
            _db: db,
        };
        let s = app.login("admin", ADMIN_PASSWORD).await;
        let r = app
            .send(
                req("POST", "/api/v1/users/admin/tokens")
                    .session(&s, Some(&s.csrf))
                    .json(&json!({"note": "tests"})),
            )
            .await;
        app.admin = r.expect(201)["token"].as_str().unwrap().to_owned();
        app
    }

    /// Sends one request through a clone of the router, and checks what every
    /// reply of berth's own API must be.
    pub async fn send(&self, r: Req) -> Reply {
        let reply = self.send_unchecked(r).await;
        check(&reply);
        reply
    }

    /// Sends one request through a clone of the router, as it is: for the
    /// parts that answer in other protocols' shapes (OAuth, HTML pages).
    pub async fn send_unchecked(&self, r: Req) -> Reply {
        let request = r.builder.body(r.body).expect("a valid request");
        let res = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("the router is infallible");
        let (parts, body) = res.into_parts();
        let bytes = body.collect().await.expect("read body").to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    /// A request with an API token (`""` for none) and, unless `Value::Null`, a JSON body.
    pub async fn call(&self, token: &str, method: &str, uri: &str, body: Value) -> Reply {
        let r = req(method, uri).token(token);
        let r = if body.is_null() { r } else { r.json(&body) };
        self.send(r).await
    }

    /// Logs in with a password; panics unless it succeeds.
    pub async fn login(&self, username: &str, password: &str) -> Session {
        let r = self
            .send(
                req("POST", "/api/v1/auth/login")
                    .json(&json!({"username": username, "password": password})),
            )
            .await;
        let csrf = r.expect(200)["csrf_token"].as_str().unwrap().to_owned();
        let set_cookie = r.header("set-cookie").expect("a session cookie");
        let cookie = set_cookie.split(';').next().unwrap().to_owned();
        assert!(cookie.starts_with("berth_session="), "{set_cookie}");
        Session { cookie, csrf }
    }

    /// Creates a user without a password (no argon2 cost) and returns an API token
    /// of theirs, minted by the admin, with `scopes` (`None`: all they may hold).
    pub async fn user(&self, name: &str, scopes: Option<&[&str]>) -> String {
        self.call(&self.admin, "POST", "/api/v1/users", json!({"name": name}))
            .await
            .expect(201);
        self.token_for(name, scopes).await
    }

    /// A new API token for `name`, minted by the admin.
    pub async fn token_for(&self, name: &str, scopes: Option<&[&str]>) -> String {
        let mut body = json!({"note": "test"});
        if let Some(s) = scopes {
            body["scopes"] = json!(s);
        }
        let uri = format!("/api/v1/users/{name}/tokens");
        let r = self.call(&self.admin, "POST", &uri, body).await;
        r.expect(201)["token"].as_str().unwrap().to_owned()
    }

    /// Creates a workspace as `token`'s user and returns its JSON.
    pub async fn workspace(&self, token: &str, body: Value) -> Value {
        let r = self.call(token, "POST", "/api/v1/workspaces", body).await;
        r.expect(201).clone()
    }

    /// The actions of the audit log, oldest first (as the admin).
    pub async fn audit_actions(&self) -> Vec<String> {
        let r = self
            .call(&self.admin, "GET", "/api/v1/audit?limit=500", Value::Null)
            .await;
        let mut actions: Vec<String> = r.expect(200)["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["action"].as_str().unwrap().to_owned())
            .collect();
        actions.reverse();
        actions
    }

    /// Everything the store holds, read directly (but tokens' `last_used`), to prove
    /// that a rejected request wrote nothing.
    pub async fn snapshot(&self) -> String {
        let s = &self.store;
        let mut users = s.users(None, 10_000).await.unwrap();
        let (mut tokens, mut shares) = (Vec::new(), Vec::new());
        for u in &users {
            shares.push(s.shares(&u.id, None).await.unwrap());
            let mut of_user = s.tokens(&u.id).await.unwrap();
            // When a token was last used is bookkeeping that any request may write.
            for t in &mut of_user {
                t.last_used_at = None;
            }
            tokens.push(of_user);
        }
        // So is a user's activity, which a use of their token moves.
        for u in &mut users {
            u.last_activity = None;
        }
        let all = store::WorkspaceFilter {
            owner_id: None,
            state: None,
            profile: None,
            name: None,
            after: None,
            limit: 10_000,
        };
        let audit = store::AuditFilter {
            actor: None,
            action: None,
            since: None,
            until: None,
            before: None,
            limit: 100_000,
        };
        let quotas: std::collections::BTreeMap<_, _> =
            s.quota_overrides().await.unwrap().into_iter().collect();
        format!(
            "{users:?}\n{tokens:?}\n{shares:?}\n{quotas:?}\n{:?}\n{:?}\n{:?}\n{:?}",
            s.groups().await.unwrap(),
            s.profiles().await.unwrap(),
            s.workspaces(&all).await.unwrap(),
            s.audit(&audit).await.unwrap(),
        )
    }
}

/// The `name` fields of a list of items.
pub fn names(items: &Value) -> Vec<&str> {
    items
        .as_array()
        .expect("an array")
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect()
}
