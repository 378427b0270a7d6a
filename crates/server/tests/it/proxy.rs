//! The proxy through the whole router, served on a real loopback socket, in
//! front of a real upstream (an axum app standing in for a workspace app): who
//! gets through, what the app sees, streaming, WebSockets, pages for workspaces
//! that are not running, and path tricks.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::extract::Request;
use axum::routing::{any, get};
use futures::{SinkExt, StreamExt};
use model::route::{Route, RouteTable};
use model::WorkspaceState;
use serde_json::{json, Value};
use server::{AppState, ServerConfig};
use test_support::Engine;
use tokio::sync::watch;

use crate::ADMIN_PASSWORD;

/// A stand-in app on a TCP port: [`app`].
async fn start_app() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app()).await.unwrap() });
    addr
}

/// A stand-in app on a Unix socket in `dir`: [`app`].
fn start_unix_app(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("app.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    tokio::spawn(async move { axum::serve(listener, app()).await.unwrap() });
    path
}

/// A stand-in app: echoes what it received; `/ws` echoes WebSocket messages;
/// `/upload` counts the bytes of a streamed body; `/stream` streams chunks.
fn app() -> axum::Router {
    async fn echo(req: Request) -> axum::Json<Value> {
        let headers: serde_json::Map<String, Value> = req
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap_or("?"))))
            .collect();
        axum::Json(
            json!({"uri": req.uri().to_string(), "method": req.method().as_str(), "headers": headers}),
        )
    }
    async fn ws(upgrade: WebSocketUpgrade) -> axum::response::Response {
        upgrade.on_upgrade(|mut socket| async move {
            while let Some(Ok(msg)) = socket.recv().await {
                if let Message::Text(t) = msg {
                    if socket
                        .send(Message::Text(format!("echo {t}").into()))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
            }
        })
    }
    async fn upload(body: axum::body::Body) -> String {
        let mut stream = body.into_data_stream();
        let mut n = 0usize;
        while let Some(chunk) = stream.next().await {
            n += chunk.unwrap().len();
        }
        n.to_string()
    }
    async fn stream() -> axum::body::Body {
        let chunks = futures::stream::iter(
            (0..100).map(|i| Ok::<_, std::io::Error>(format!("chunk {i}\n"))),
        );
        axum::body::Body::from_stream(chunks)
    }
    axum::Router::new()
        .route("/user/alice/lab/ws", get(ws))
        .route("/user/alice/ws", get(ws))
        .route("/user/alice/lab/upload", any(upload))
        .route("/user/alice/lab/stream", get(stream))
        .route(
            "/dir",
            get(|| async { axum::response::Redirect::permanent("/dir/") }),
        )
        .route(
            "/away",
            get(|| async { axum::response::Redirect::temporary("https://example.org/x") }),
        )
        .fallback(echo)
}

struct Berth {
    url: String,
    routes: watch::Sender<Arc<RouteTable>>,
    http: reqwest::Client,
    admin: String,
    store: store::Store,
    _db: test_support::TestDb,
}

impl Berth {
    async fn start() -> Berth {
        Berth::start_with(ServerConfig::default()).await
    }

    async fn start_with(config: ServerConfig) -> Berth {
        let db = Engine::Sqlite.fresh().await;
        let store = store::Store::connect(&db.url).await.unwrap();
        server::bootstrap(&store, Some(ADMIN_PASSWORD))
            .await
            .unwrap();
        let (routes, rx) = watch::channel(Arc::new(RouteTable::new()));
        let state = AppState::new(store.clone(), config).with_routes(rx);
        tokio::spawn(controller::activity::flush(
            store.clone(),
            state.proxy.activity().clone(),
            Duration::from_millis(50),
            std::future::pending(),
        ));
        let app = server::router(state).into_make_service_with_connect_info::<SocketAddr>();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let mut b = Berth {
            url,
            routes,
            http,
            admin: String::new(),
            store,
            _db: db,
        };
        let login = b.login("admin", ADMIN_PASSWORD).await;
        let r = b
            .http
            .post(format!("{}/api/v1/users/admin/tokens", b.url))
            .header("cookie", &login.0)
            .header("x-csrf-token", &login.1);
        b.admin = Berth::token_from(r, json!({"note": "t"})).await;
        b
    }

    /// A new API token of `user`'s, made by the admin: with `scopes`, or all
    /// the user's.
    async fn token_of(&self, user: &str, scopes: Option<&[&str]>) -> String {
        let r = self
            .http
            .post(format!("{}/api/v1/users/{user}/tokens", self.url))
            .bearer_auth(&self.admin);
        Berth::token_from(r, json!({"note": "t", "scopes": scopes})).await
    }

    /// The secret of the token a token-creating request with `body` makes.
    async fn token_from(request: reqwest::RequestBuilder, body: Value) -> String {
        let r: Value = request
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        r["token"].as_str().unwrap().to_owned()
    }

    /// (cookie, csrf)
    async fn login(&self, user: &str, password: &str) -> (String, String) {
        let r = self
            .http
            .post(format!("{}/api/v1/auth/login", self.url))
            .json(&json!({"username": user, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let cookie = r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let body: Value = r.json().await.unwrap();
        (cookie, body["csrf_token"].as_str().unwrap().to_owned())
    }

    /// A user with a password; returns their id.
    async fn user(&self, name: &str) -> String {
        let r = self
            .http
            .post(format!("{}/api/v1/users", self.url))
            .bearer_auth(&self.admin)
            .json(&json!({"name": name, "password": "a-long-enough-password"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let name = model::Name::parse(name).unwrap();
        self.store
            .user_by_name(&name)
            .await
            .unwrap()
            .id
            .into_string()
    }

    fn route(
        &self,
        key: &str,
        owner_id: &str,
        state: WorkspaceState,
        upstream: Option<SocketAddr>,
    ) {
        self.route_id(
            key,
            &format!("ws-{}", key.replace('/', "-")),
            owner_id,
            state,
            upstream,
        );
    }

    fn route_id(
        &self,
        key: &str,
        id: &str,
        owner_id: &str,
        state: WorkspaceState,
        upstream: Option<SocketAddr>,
    ) {
        let route = Route {
            workspace_id: id.into(),
            state,
            upstream: upstream.map(model::Upstream::Tcp),
            ..self.route_of(key, owner_id)
        };
        self.set_route(key, route);
    }

    /// The route of a running workspace at `key` with no upstream yet.
    fn route_of(&self, key: &str, owner_id: &str) -> Route {
        Route {
            workspace_id: format!("ws-{}", key.replace('/', "-")).into(),
            owner_id: owner_id.into(),
            state: WorkspaceState::Running,
            message: "a <message>".into(),
            upstream: None,
            retrying: false,
            strip_prefix: false,
        }
    }

    fn set_route(&self, key: &str, route: Route) {
        self.routes.send_modify(|t| {
            let mut next = RouteTable::clone(t);
            next.insert(key.into(), Arc::new(route));
            *t = Arc::new(next);
        });
    }

    /// The status of a GET of `path` sent byte for byte as given.
    async fn raw_get(&self, path: &str, cookie: &str) -> u16 {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = self.url.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        response.split(' ').nth(1).unwrap().parse().unwrap()
    }

    /// Creates a workspace as the session's user; returns its JSON.
    async fn create_workspace(&self, cookie: &str, csrf: &str, name: &str) -> Value {
        self.http
            .post(format!("{}/api/v1/workspaces", self.url))
            .header("cookie", cookie)
            .header("x-csrf-token", csrf)
            .json(&json!({"name": name}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// `GET path`, with the session cookie if given.
    async fn fetch(&self, path: &str, cookie: Option<&str>) -> reqwest::Response {
        self.get(path, cookie).send().await.unwrap()
    }

    fn get(&self, path: &str, cookie: Option<&str>) -> reqwest::RequestBuilder {
        let r = self.http.get(format!("{}{path}", self.url));
        match cookie {
            Some(c) => r.header("cookie", c),
            None => r,
        }
    }
}

#[tokio::test]
async fn only_the_owner_and_admins_get_through_and_the_app_sees_no_berth_cookie() {
    let app = start_app().await;
    let b = Berth::start().await;
    let alice = b.user("alice").await;
    b.user("bob").await;
    b.route("alice/lab", &alice, WorkspaceState::Running, Some(app));
    let (alice_cookie, _) = b.login("alice", "a-long-enough-password").await;
    let (bob_cookie, _) = b.login("bob", "a-long-enough-password").await;

    let r = b
        .get(
            "/user/alice/lab/api/x?y=1&z=%2F",
            Some(&format!("{alice_cookie}; _xsrf=abc")),
        )
        .header("x-forwarded-for", "192.0.2.7")
        .header("connection", "keep-alive, x-hop")
        .header("x-hop", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let seen: Value = r.json().await.unwrap();
    assert_eq!(
        seen["uri"], "/user/alice/lab/api/x?y=1&z=%2F",
        "path and query unchanged"
    );
    let h = &seen["headers"];
    assert_eq!(
        h["cookie"], "_xsrf=abc",
        "berth's session cookie is stripped: {h}"
    );
    assert_eq!(h["x-forwarded-for"], "192.0.2.7, 127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(h["x-forwarded-host"], b.url.trim_start_matches("http://"));
    assert_eq!(
        h["host"],
        b.url.trim_start_matches("http://"),
        "Host is kept"
    );
    assert!(
        h.get("x-hop").is_none(),
        "headers named by Connection are dropped"
    );

    // An admin's token works too; bob and strangers do not get in.
    let r = b
        .get("/user/alice/lab/", None)
        .bearer_auth(&b.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = b.fetch("/user/alice/lab/", Some(&bob_cookie)).await;
    assert_eq!(r.status(), 403);
    let text = r.text().await.unwrap();
    assert!(text.contains("may not open"));
    // The proxy's pages are the portal's: its navigation, bob's name, log out.
    for page in [
        &text,
        &b.fetch("/user/alice/none/", Some(&bob_cookie))
            .await
            .text()
            .await
            .unwrap(),
    ] {
        assert!(
            page.contains(r#"<nav aria-label="Main">"#)
                && page.contains("bob")
                && page.contains("Log out"),
            "{page}"
        );
    }
    // Unknown pages under /hub/: HTML with the navigation for browsers, JSON
    // for scripts.
    let html = |cookie: Option<&str>| {
        b.get("/hub/no-such-page", cookie)
            .header("accept", "text/html,application/xhtml+xml")
            .send()
    };
    let r = html(Some(&bob_cookie)).await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let text = r.text().await.unwrap();
    assert!(
        text.contains("There is no such page.") && text.contains(r#"<nav aria-label="Main">"#),
        "{text}"
    );
    let r = html(None).await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("There is no such page."));
    let r = b.get("/hub/no-such-page", None).send().await.unwrap();
    assert_eq!(
        (
            r.status().as_u16(),
            r.headers()["content-type"].to_str().unwrap()
        ),
        (404, "application/json")
    );
    let r = b
        .get("/hub/api/no-such-route", Some(&bob_cookie))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let r = b.fetch("/user/alice/lab/", None).await;
    assert_eq!(r.status(), 401);
    let r = b
        .get("/user/alice/lab/", None)
        .bearer_auth("berth_not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // A token without access:servers is refused, even alice's own.
    let narrow = b.token_of("alice", Some(&["read:servers"])).await;
    let r = b
        .get("/user/alice/lab/", None)
        .bearer_auth(&narrow)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // Logging out ends access at once (the auth cache's entries go stale).
    let (cookie, csrf) = b.login("alice", "a-long-enough-password").await;
    assert_eq!(
        b.fetch("/user/alice/lab/", Some(&cookie)).await.status(),
        200
    );
    let r = b
        .http
        .post(format!("{}/api/v1/auth/logout", b.url))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        b.fetch("/user/alice/lab/", Some(&cookie)).await.status(),
        401
    );
    drop(alice_cookie);
}

#[tokio::test]
async fn an_app_on_a_unix_socket_is_reached_like_one_on_a_port() {
    let dir = tempfile::tempdir().unwrap();
    let socket = start_unix_app(dir.path());
    let b = Berth::start().await;
    let alice = b.user("alice").await;
    let mut route = b.route_of("alice/lab", &alice);
    route.upstream = Some(model::Upstream::Unix(socket));
    b.set_route("alice/lab", route);
    let (cookie, _) = b.login("alice", "a-long-enough-password").await;

    let r = b.fetch("/user/alice/lab/api/x?y=1", Some(&cookie)).await;
    assert_eq!(r.status(), 200);
    let seen: Value = r.json().await.unwrap();
    assert_eq!(seen["uri"], "/user/alice/lab/api/x?y=1");
    assert_eq!(seen["headers"]["host"], b.url.trim_start_matches("http://"));
    let r = b
        .http
        .post(format!("{}/user/alice/lab/upload", b.url))
        .header("cookie", &cookie)
        .body(vec![1u8; 1 << 20])
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), (1 << 20).to_string());

    // A socket nobody listens on is an app that does not answer.
    let mut gone = b.route_of("alice/lab", &alice);
    gone.upstream = Some(model::Upstream::Unix(dir.path().join("nobody.sock")));
    b.set_route("alice/lab", gone);
    let r = b.fetch("/user/alice/lab/", Some(&cookie)).await;
    assert_eq!(r.status(), 502);
}

#[tokio::test]
async fn bodies_stream_both_ways_and_websockets_work() {
    let app = start_app().await;
    let b = Berth::start().await;
    let alice = b.user("alice").await;
    b.route("alice/lab", &alice, WorkspaceState::Running, Some(app));
    let (cookie, _) = b.login("alice", "a-long-enough-password").await;

    // 8 MiB up, in chunks, with no Content-Length.
    let chunks = futures::stream::iter((0..128).map(|_| {
        let chunk = axum::body::Bytes::from(vec![7u8; 64 * 1024]);
        Ok::<_, std::io::Error>(hyper::body::Frame::data(chunk))
    }));
    let r = b
        .http
        .post(format!("{}/user/alice/lab/upload", b.url))
        .header("cookie", &cookie)
        .body(reqwest::Body::wrap(http_body_util::StreamBody::new(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), (8 << 20).to_string());
    let text = b
        .fetch("/user/alice/lab/stream", Some(&cookie))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(text.lines().count(), 100);

    // A WebSocket through the proxy, authenticated by the session cookie.
    let url = format!("{}/user/alice/lab/ws", b.url.replace("http://", "ws://"));
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
            url.as_str(),
        )
        .unwrap();
    request
        .headers_mut()
        .insert("cookie", cookie.parse().unwrap());
    let (mut socket, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(response.status(), 101);
    for i in 0..3 {
        socket
            .send(tokio_tungstenite::tungstenite::Message::text(format!(
                "hi {i}"
            )))
            .await
            .unwrap();
        let reply = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(reply.into_text().unwrap().as_str(), format!("echo hi {i}"));
    }
    socket.close(None).await.unwrap();
    // Without credentials the handshake is refused.
    let err = tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("401"), "{err}");
}

#[tokio::test]
async fn workspaces_not_running_get_pages_and_activity_is_recorded() {
    let app = start_app().await;
    let b = Berth::start().await;
    let alice = b.user("alice").await;
    let (cookie, csrf) = b.login("alice", "a-long-enough-password").await;
    b.route("alice/off", &alice, WorkspaceState::Stopped, None);
    b.route("alice/boot", &alice, WorkspaceState::Starting, None);
    b.route(
        "alice/dead",
        &alice,
        WorkspaceState::Running,
        Some("127.0.0.1:1".parse().unwrap()),
    );

    let r = b.fetch("/user/alice/off/", Some(&cookie)).await;
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
    let page = r.text().await.unwrap();
    // (minijinja writes `/` as `&#x2f;`.)
    assert!(
        page.contains("<title>alice&#x2f;off · berth</title>"),
        "{page}"
    );
    assert!(
        page.contains("Start it") && page.contains(&csrf),
        "a start button: {page}"
    );
    assert!(
        page.contains("a &lt;message&gt;"),
        "messages are escaped: {page}"
    );

    let page = b
        .fetch("/user/alice/boot/lab", Some(&cookie))
        .await
        .text()
        .await
        .unwrap();
    // It follows the state (berth.js, over /hub/events) and reloads when ready.
    assert!(
        page.contains(r#"data-workspace="ws-alice-boot" data-follow="true""#)
            && page.contains(r#"class="progress""#),
        "{page}"
    );

    let r = b.fetch("/user/alice/dead/", Some(&cookie)).await;
    assert_eq!(r.status(), 502);

    // Activity is kept in memory and flushed to the store in batches.
    let ws = b.create_workspace(&cookie, &csrf, "lab").await;
    let id = ws["id"].as_str().unwrap_or_else(|| panic!("{ws}"));
    assert!(ws["last_activity"].is_null(), "{ws}");
    // Before the controller routes a new workspace, it is a starting page, not a 404.
    let r = b.fetch("/user/alice/lab/", Some(&cookie)).await;
    assert_eq!(r.status(), 503);
    let page = r.text().await.unwrap();
    assert!(
        page.contains(&format!(r#"data-workspace="{id}" data-follow="true""#)),
        "{page}"
    );
    assert_eq!(b.fetch("/user/alice/lab/", None).await.status(), 401);
    assert_eq!(
        b.fetch("/user/alice/nope/", Some(&cookie)).await.status(),
        404
    );
    b.route_id("alice/lab", id, &alice, WorkspaceState::Running, Some(app));
    let r = b.fetch("/user/alice/lab/", Some(&cookie)).await;
    assert_eq!(r.status(), 200);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let seen = b.store.workspace(id).await.unwrap();
        if seen.last_activity.is_some() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "activity never recorded"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn path_tricks_reach_nobody_elses_workspace() {
    let app = start_app().await;
    let b = Berth::start().await;
    let alice = b.user("alice").await;
    let bob = b.user("bob").await;
    b.user("al").await;
    b.route("alice/lab", &alice, WorkspaceState::Running, Some(app));
    b.route("alice/default", &alice, WorkspaceState::Running, Some(app));
    b.route("bob/lab", &bob, WorkspaceState::Running, Some(app));
    let (al, _) = b.login("al", "a-long-enough-password").await;
    let (bob_cookie, _) = b.login("bob", "a-long-enough-password").await;

    // `al` is a prefix of `alice`: nothing of alice's is al's.
    for path in [
        "/user/al/lab/",
        "/user/alice/lab/",
        "/user/al%69ce/lab/",
        "/user/alice%2Flab/",
        "/user//alice/lab/",
        "/user/ALICE/lab/",
        "/user/alice/LAB/",
        "/user/al/../alice/lab/",
        "/user/al/%2e%2e/alice/lab/",
        &format!("/user/{}/lab/", "a".repeat(300)),
    ] {
        let r = b.fetch(path, Some(&al)).await;
        let status = r.status().as_u16();
        let body = r.text().await.unwrap();
        assert!(
            matches!(status, 302 | 400 | 403 | 404) && !body.contains("\"uri\""),
            "{path}: {status} {body}"
        );
    }
    // bob reaches his own, and from it nobody else's.
    // (Sent raw: HTTP clients would remove the dot segments themselves.)
    for path in [
        "/user/bob/lab/../../alice/lab/",
        "/user/bob/lab/x/%2e%2e/%2E%2e/%2e%2e/alice/lab/",
        "/user/al/../alice/lab/",
    ] {
        assert_eq!(b.raw_get(path, &bob_cookie).await, 400, "{path}");
    }
    let r = b.fetch("/user/bob/lab/ok", Some(&bob_cookie)).await;
    assert_eq!(r.status(), 200);
    // The default workspace is served at `/user/alice/` itself, as are paths
    // whose first segment names no workspace: bob may open none of them.
    for path in [
        "/user/alice/",
        "/user/alice/tree?x=1",
        "/user/alice/default/tree",
    ] {
        let r = b.fetch(path, Some(&bob_cookie)).await;
        assert_eq!(r.status(), 403, "{path}");
    }
    let r = b.fetch("/user/alice/lab", Some(&bob_cookie)).await;
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["location"], "/user/alice/lab/");
}

#[tokio::test]
async fn the_default_workspace_is_served_at_the_users_prefix() {
    let app = start_app().await;
    let b = Berth::start().await;
    let alice = b.user("alice").await;
    b.route("alice/default", &alice, WorkspaceState::Running, Some(app));
    b.route("alice/lab", &alice, WorkspaceState::Running, Some(app));
    let (cookie, csrf) = b.login("alice", "a-long-enough-password").await;
    // No redirect: a body goes with the request, to the default workspace,
    // the path unchanged (the app serves under `/user/alice/`).
    for (path, to) in [
        ("/user/alice/api/kernels?x=1", "/user/alice/api/kernels?x=1"),
        ("/user/alice/", "/user/alice/"),
        ("/user/alice/default/x", "/user/alice/default/x"),
        ("/user/alice/nope/x", "/user/alice/nope/x"),
        ("/user/alice/lab/api/kernels", "/user/alice/lab/api/kernels"),
    ] {
        let r = b
            .http
            .post(format!("{}{path}", b.url))
            .header("cookie", &cookie)
            .header("x-csrf-token", &csrf)
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let seen: Value = r.json().await.unwrap();
        assert_eq!(seen["uri"], to, "{path}");
        assert_eq!(seen["method"], "POST", "{path}");
    }
    // A WebSocket handshake at the default workspace's prefix, no redirect.
    let url = format!("{}/user/alice/ws", b.url.replace("http", "ws"));
    let mut req =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url)
            .unwrap();
    req.headers_mut().insert("cookie", cookie.parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    socket
        .send(tokio_tungstenite::tungstenite::Message::Text("hi".into()))
        .await
        .unwrap();
    let echo = socket.next().await.unwrap().unwrap();
    assert_eq!(echo.into_text().unwrap().as_str(), "echo hi");
}

#[tokio::test]
async fn without_credentials_every_path_answers_alike() {
    let app = start_app().await;
    let b = Berth::start().await;
    let alice = b.user("alice").await;
    b.route("alice/default", &alice, WorkspaceState::Running, Some(app));
    b.route("alice/lab", &alice, WorkspaceState::Stopped, None);
    // Existing and missing users, workspaces and paths: one answer each for
    // scripts (401) and for browsers (the login page and back).
    let paths = [
        "/user/alice/",
        "/user/alice/lab/",
        "/user/alice/lab",
        "/user/alice/nope/",
        "/user/nobody/",
        "/user/nobody/lab/x",
        "/user/nobody",
        "/user/Not-A-Name/x",
        "/user/alice/../bob/",
    ];
    let mut answers = std::collections::BTreeSet::new();
    for path in paths {
        let r = b.fetch(path, None).await;
        answers.insert((r.status().as_u16(), r.text().await.unwrap()));
    }
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert_eq!(answers.first().unwrap().0, 401);
    for path in paths {
        let r = b
            .get(path, None)
            .header("accept", "text/html")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "{path}");
        let to = r.headers()["location"].to_str().unwrap();
        assert!(to.starts_with("/hub/login?next="), "{path}: {to}");
    }
}

#[tokio::test]
async fn workspace_events_follow_the_route_table() {
    let b = Berth::start().await;
    let alice = b.user("alice").await;
    let (cookie, csrf) = b.login("alice", "a-long-enough-password").await;
    let ws = b.create_workspace(&cookie, &csrf, "lab").await;
    let id = ws["id"].as_str().unwrap().to_owned();
    let mut events = b
        .fetch(&format!("/api/v1/workspaces/{id}/events"), Some(&cookie))
        .await;
    assert_eq!(events.status(), 200);
    assert_eq!(events.headers()["content-type"], "text/event-stream");
    let mut next = async || -> Value {
        let chunk = tokio::time::timeout(Duration::from_secs(5), events.chunk())
            .await
            .expect("an event within 5s")
            .unwrap()
            .expect("the stream goes on");
        let text = String::from_utf8(chunk.to_vec()).unwrap();
        let data = text
            .trim()
            .strip_prefix("data: ")
            .unwrap_or_else(|| panic!("{text:?}"));
        serde_json::from_str(data).unwrap()
    };
    assert_eq!(next().await["state"], ws["state"]);
    b.route_id("alice/lab", &id, &alice, WorkspaceState::Starting, None);
    assert_eq!(
        next().await,
        json!({"state": "starting", "message": "a <message>", "ready": false})
    );
    let upstream = "127.0.0.1:9".parse().ok();
    b.route_id("alice/lab", &id, &alice, WorkspaceState::Running, upstream);
    assert_eq!(next().await["ready"], true);
    b.routes.send_modify(|t| {
        let mut next = RouteTable::clone(t);
        next.remove("alice/lab");
        *t = Arc::new(next);
    });
    assert_eq!(next().await["state"], "deleted");
    let end = tokio::time::timeout(Duration::from_secs(5), events.chunk())
        .await
        .expect("the stream ends after `deleted`");
    assert!(end.unwrap().is_none(), "nothing after `deleted`");
    // Another user may not follow it.
    b.user("bob").await;
    let (bob, _) = b.login("bob", "a-long-enough-password").await;
    let r = b
        .fetch(&format!("/api/v1/workspaces/{id}/events"), Some(&bob))
        .await;
    assert_eq!(r.status(), 404);
}

/// A profile's app that serves at `/`: the proxy removes the workspace's prefix
/// from the path, names it in `X-Forwarded-Prefix`, and puts it back on the
/// app's absolute-path redirects (not on those to other sites).
#[tokio::test]
async fn an_app_served_at_the_root_gets_its_prefix_stripped() {
    let app = start_app().await;
    let b = Berth::start().await;
    let alice = b.user("alice").await;
    for key in ["alice/site", "alice/default"] {
        b.set_route(
            key,
            Route {
                workspace_id: format!("ws-{key}").into(),
                owner_id: alice.clone().into(),
                state: WorkspaceState::Running,
                message: String::new(),
                upstream: Some(model::Upstream::Tcp(app)),
                retrying: false,
                strip_prefix: true,
            },
        );
    }
    let (cookie, _) = b.login("alice", "a-long-enough-password").await;
    for (path, to, prefix) in [
        ("/user/alice/site/", "/", "/user/alice/site"),
        ("/user/alice/site/a/b?c=d", "/a/b?c=d", "/user/alice/site"),
        (
            "/user/alice/site/user/alice/site/x",
            "/user/alice/site/x",
            "/user/alice/site",
        ),
        ("/user/alice/", "/", "/user/alice"),
        ("/user/alice/files/x", "/files/x", "/user/alice"),
    ] {
        let r = b.fetch(path, Some(&cookie)).await;
        assert_eq!(r.status(), 200, "{path}");
        let seen: Value = r.json().await.unwrap();
        assert_eq!(seen["uri"], to, "{path}");
        assert_eq!(seen["headers"]["x-forwarded-prefix"], prefix, "{path}");
    }
    let r = b.fetch("/user/alice/site/dir", Some(&cookie)).await;
    assert_eq!(r.status(), 308);
    assert_eq!(r.headers()["location"], "/user/alice/site/dir/");
    let r = b.fetch("/user/alice/site/away", Some(&cookie)).await;
    assert_eq!(r.headers()["location"], "https://example.org/x");
}

/// What the controller does to a workspace's server token (rotates or deletes
/// it, in a transaction of its own, not through any HTTP handler) takes effect
/// on the token's very next request, through the proxy and through the API;
/// so does an admin disabling the user.
#[tokio::test]
async fn a_deleted_server_token_and_a_disabled_user_are_refused_at_once() {
    let app = start_app().await;
    let b = Berth::start().await;
    let alice = b.user("alice").await;
    let (cookie, csrf) = b.login("alice", "a-long-enough-password").await;
    let ws = b.create_workspace(&cookie, &csrf, "lab").await;
    let ws_id = ws["id"].as_str().unwrap().to_owned();
    b.route_id(
        "alice/lab",
        &ws_id,
        &alice,
        WorkspaceState::Running,
        Some(app),
    );
    // The workspace's server token, as the controller mints it for a start.
    let minted = model::secret::MintedToken::new();
    let secret = minted.secret.expose().to_owned();
    let mut tx = b.store.begin().await.unwrap();
    tx.insert_token_of(
        &store::NewToken {
            user_id: alice.clone().into(),
            hash: minted.hash.clone(),
            prefix: minted.prefix.clone(),
            note: "server alice/lab".into(),
            scopes: model::ScopeSet::new([
                model::Scope::AccessServers,
                model::Scope::ReadUsersName,
            ]),
            expires_at: None,
        },
        model::TokenKind::Server,
        Some(&ws_id),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let proxied = || b.get("/user/alice/lab/x", None).bearer_auth(&secret).send();
    let api = || b.get("/hub/api/user", None).bearer_auth(&secret).send();
    assert_eq!(proxied().await.unwrap().status(), 200);
    assert_eq!(api().await.unwrap().status(), 200, "cached now");

    // The controller deletes it (the workspace stopped).
    let mut tx = b.store.begin().await.unwrap();
    tx.delete_workspace_tokens(&ws_id, model::TokenKind::Server)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        proxied().await.unwrap().status(),
        401,
        "refused at once by the proxy"
    );
    assert_eq!(
        api().await.unwrap().status(),
        403,
        "and by the hub API (JupyterHub's 403)"
    );

    // A disabled user's API token, cached by a request a moment before.
    let hers = b.token_of("alice", None).await;
    let as_her = || b.get("/user/alice/lab/x", None).bearer_auth(&hers).send();
    assert_eq!(as_her().await.unwrap().status(), 200);
    let r = b
        .http
        .patch(format!("{}/api/v1/users/alice", b.url))
        .bearer_auth(&b.admin)
        .json(&json!({"disabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        as_her().await.unwrap().status(),
        401,
        "disabled: refused at once"
    );
}

/// An app that takes longer than the proxy's response timeout to answer gets
/// a 504 page, one that is not there a 502; each request the proxy forwards
/// is counted by workspace and by how the app answered.
#[tokio::test]
async fn a_slow_app_times_out_and_every_answer_is_counted_by_workspace() {
    let app = start_app().await;
    // Accepts connections and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = silent.accept().await {
            held.push(conn);
        }
    });
    let gone = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let config = ServerConfig {
        proxy: proxy::Settings {
            response_timeout: Some(Duration::from_millis(300)),
            ..proxy::Settings::default()
        },
        ..ServerConfig::default()
    };
    let b = Berth::start_with(config).await;
    let alice = b.user("alice").await;
    for (key, upstream) in [
        ("alice/quick", app),
        ("alice/slow", silent_addr),
        ("alice/gone", gone),
    ] {
        b.route(key, &alice, WorkspaceState::Running, Some(upstream));
    }
    let (cookie, _) = b.login("alice", "a-long-enough-password").await;
    for _ in 0..2 {
        assert_eq!(
            b.fetch("/user/alice/quick/x", Some(&cookie)).await.status(),
            200
        );
    }
    let started = std::time::Instant::now();
    let r = b.fetch("/user/alice/slow/x", Some(&cookie)).await;
    assert_eq!(r.status(), 504);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "it did not wait for ever"
    );
    assert!(r.text().await.unwrap().contains("took too long"));
    assert_eq!(
        b.fetch("/user/alice/gone/x", Some(&cookie)).await.status(),
        502
    );
    let metrics = b
        .http
        .get(format!("{}/metrics", b.url))
        .send()
        .await
        .unwrap();
    let metrics = metrics.text().await.unwrap();
    for line in [
        r#"berth_proxy_requests_total{workspace="alice/quick",outcome="2xx"} 2"#,
        r#"berth_proxy_requests_total{workspace="alice/slow",outcome="timeout"} 1"#,
        r#"berth_proxy_requests_total{workspace="alice/gone",outcome="unreachable"} 1"#,
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no {line} in\n{metrics}"
        );
    }
}
