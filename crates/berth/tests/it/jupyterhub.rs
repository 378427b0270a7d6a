//! JupyterHub's own programs against the real `berth serve` (process runtime):
//! the unmodified `jupyterhub-singleuser` logging a browser in through berth's
//! OAuth provider, behind berth's proxy, and the unmodified
//! `jupyterhub-idle-culler` stopping an idle server through `/hub/api`.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use api_types::{TokenCreate, UserCreate};
use client::Client;
use futures::{SinkExt, StreamExt};
use reqwest::cookie::CookieStore;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::process::{admin_token, create_profile, ready, Rig, APP};

pub(crate) const JUPYTER_ENV: &str = "/opt/berth/jupyter";

/// Whether the managed Jupyter environment is here; in CI it must be.
pub(crate) fn have_jupyter() -> bool {
    let here = std::path::Path::new(JUPYTER_ENV)
        .join("bin/jupyterhub-singleuser")
        .is_file();
    assert!(
        here || std::env::var_os("CI").is_none(),
        "{JUPYTER_ENV} is missing: run scripts/install-deps"
    );
    here
}

/// A browser: a cookie jar, redirects followed.
pub(crate) struct Browser {
    http: reqwest::Client,
    jar: Arc<reqwest::cookie::Jar>,
    base: String,
}

impl Browser {
    pub(crate) async fn login(base: &str, user: &str, password: &str) -> Browser {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let http = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::limited(10))
            .build()
            .unwrap();
        let r = http
            .post(format!("{base}/api/v1/auth/login"))
            .json(&json!({"username": user, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "login as {user}");
        Browser {
            http,
            jar,
            base: base.to_owned(),
        }
    }

    pub(crate) async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }

    /// The `Cookie` header the jar sends to `path`.
    fn cookies(&self, path: &str) -> String {
        let url = format!("{}{path}", self.base).parse().unwrap();
        self.jar
            .cookies(&url)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    }

    fn cookie(&self, path: &str, name: &str) -> Option<String> {
        self.cookies(path).split("; ").find_map(|c| {
            let (k, v) = c.split_once('=')?;
            (k == name).then(|| v.to_owned())
        })
    }
}

/// The default server's `last_activity` as `/hub/api` reports it.
async fn last_activity(base: &str, token: &str, user: &str) -> Option<String> {
    let model: Value = reqwest::Client::new()
        .get(format!("{base}/hub/api/users/{user}"))
        .header("authorization", format!("token {token}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    model["servers"][""]["last_activity"]
        .as_str()
        .map(str::to_owned)
}

/// Makes user `name`, not an admin, with the password [`logged_in`] uses.
pub(crate) async fn create_user(admin: &Client, name: &str) {
    admin
        .create_user(&UserCreate {
            name: name.into(),
            password: Some(format!("{name}-password")),
            admin: false,
        })
        .await
        .unwrap();
}

/// `name` logged in (password `{name}-password`), with a token of theirs.
pub(crate) async fn logged_in(url: &str, name: &str) -> (Client, String) {
    let mut c = Client::new(url, None).unwrap();
    c.login(name, &format!("{name}-password")).await.unwrap();
    let token = c
        .create_token(
            name,
            &TokenCreate {
                note: "e2e".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .token;
    (c, token)
}

/// Runs `1+1` in a new kernel over a WebSocket through berth's proxy, as
/// JupyterLab does, and returns the `text/plain` result.
pub(crate) async fn run_one_plus_one(browser: &Browser, prefix: &str) -> String {
    let xsrf = browser
        .cookie(prefix, "_xsrf")
        .expect("the lab page set an _xsrf cookie");
    let r = browser
        .http
        .post(format!("{}{prefix}api/kernels", browser.base))
        .header("x-xsrftoken", &xsrf)
        .json(&json!({"name": "python3"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED, "create a kernel");
    let kernel: Value = r.json().await.unwrap();
    let kernel_id = kernel["id"].as_str().unwrap();

    let ws_url = format!(
        "{}{prefix}api/kernels/{kernel_id}/channels?session_id=e2e",
        browser.base.replacen("http://", "ws://", 1)
    );
    let mut request = ws_url.into_client_request().unwrap();
    request.headers_mut().insert(
        "cookie",
        browser.cookies(prefix).parse().expect("cookie header"),
    );
    let (mut socket, _) = tokio::time::timeout(
        Duration::from_secs(30),
        tokio_tungstenite::connect_async(request),
    )
    .await
    .expect("websocket handshake in 30 s")
    .expect("websocket through the proxy");
    let execute = json!({
        "header": {"msg_id": "e2e-1", "msg_type": "execute_request", "session": "e2e",
                   "username": "", "version": "5.3", "date": ""},
        "parent_header": {}, "metadata": {}, "buffers": [], "channel": "shell",
        "content": {"code": "1+1", "silent": false, "store_history": false,
                    "user_expressions": {}, "allow_stdin": false, "stop_on_error": true},
    });
    socket
        .send(Message::text(execute.to_string()))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = tokio::time::timeout(left, socket.next())
            .await
            .expect("an execute_result within 60 s")
            .expect("the socket stays open")
            .unwrap();
        let Message::Text(text) = msg else { continue };
        let msg: Value = serde_json::from_str(&text).unwrap();
        if msg["msg_type"] == "execute_result" && msg["parent_header"]["msg_id"] == "e2e-1" {
            let _ = socket.close(None).await;
            return msg["content"]["data"]["text/plain"]
                .as_str()
                .unwrap()
                .to_owned();
        }
    }
}

/// A logged-in browser opens a workspace that runs the real
/// `jupyterhub-singleuser`: the app sends it through berth's OAuth provider and
/// back, and JupyterLab's page loads through berth's proxy; a kernel runs `1+1`
/// over a WebSocket; `last_activity` moves. Another user is refused by berth's
/// proxy and by its OAuth provider, and cannot use the app's cookie either,
/// until the owner shares the workspace with them.
#[tokio::test]
async fn jupyterhub_singleuser_logs_in_through_berth() {
    if !have_jupyter() {
        return;
    }
    let mut rig = Rig::new();
    let url = rig.start_serve();
    let admin = Client::new(&url, Some(admin_token(&url).await)).unwrap();
    for name in ["alice", "bob"] {
        create_user(&admin, name).await;
    }
    let (alice, alice_token) = logged_in(&url, "alice").await;
    // The built-in profile: JupyterLab as JupyterHub's single-user server.
    let id = rig.create_workspace(&alice, "default", "standard").await;
    rig.wait_until(&alice, &id, "ready", ready).await;
    let prefix = "/user/alice/";
    // Before anyone opens it, the server reports its start as activity, with
    // its own token (nothing has gone through the proxy yet).
    let deadline = Instant::now() + Duration::from_secs(30);
    while last_activity(&url, &alice_token, "alice").await.is_none() {
        assert!(
            Instant::now() < deadline,
            "the server reported no activity:\n{}",
            rig.log(&id)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    let browser = Browser::login(&url, "alice", "alice-password").await;
    let page = browser.get(&format!("{prefix}lab")).await;
    let landed = page.url().path().to_owned();
    let status = page.status();
    let body = page.text().await.unwrap();
    assert_eq!(
        status,
        StatusCode::OK,
        "JupyterLab through OAuth, at {landed}: {body:.2000}\nlog:\n{}",
        rig.log(&id)
    );
    assert_eq!(landed, format!("{prefix}lab"));
    assert!(body.contains("JupyterLab"), "{body:.2000}");
    assert!(
        browser.cookie(prefix, &format!("berth-ws-{id}")).is_some(),
        "the app keeps its OAuth token in its own cookie: {}",
        browser.cookies(prefix)
    );
    // berth's session cookie never reaches the app.
    assert!(!rig.log(&id).contains("berth_session"));

    let before = last_activity(&url, &alice_token, "alice").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(run_one_plus_one(&browser, prefix).await, "2");
    // The proxy flushes activity every 5 s.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = last_activity(&url, &alice_token, "alice").await;
        if now.is_some() && now > before {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "last_activity stayed at {before:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Bob: berth's proxy refuses him, and so does the OAuth provider.
    let bob = Browser::login(&url, "bob", "bob-password").await;
    let r = bob.get(&format!("{prefix}lab")).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let authorize = format!(
        "/hub/api/oauth2/authorize?client_id=berth-ws-{id}&redirect_uri={prefix}oauth_callback\
         &response_type=code&state=x"
    );
    let r = bob.get(&authorize).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Alice's app cookie in bob's jar gets him nothing: berth's proxy stops him first.
    let stolen = browser.cookies(prefix);
    let r = bob
        .http
        .get(format!("{url}{prefix}api/contents"))
        .header("cookie", format!("{stolen}; {}", bob.cookies("/")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Shared with bob: he gets in, through his own OAuth login to the app; and
    // out again when alice takes it back.
    let hub = |method: reqwest::Method, path: &str, body: Value| {
        reqwest::Client::new()
            .request(method, format!("{url}/hub/api{path}"))
            .header("authorization", format!("token {alice_token}"))
            .json(&body)
            .send()
    };
    let r = hub(
        reqwest::Method::POST,
        "/shares/alice/",
        json!({"user": "bob"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let page = bob.get(&format!("{prefix}lab")).await;
    assert_eq!(page.status(), StatusCode::OK, "bob, shared: {}", page.url());
    assert!(page.text().await.unwrap().contains("JupyterLab"));
    // And with his own API token, as a script would: the server asks berth
    // who he is and finds the share among his scopes.
    let (_, bob_token) = logged_in(&url, "bob").await;
    let contents = || {
        reqwest::Client::new()
            .get(format!("{url}{prefix}api/contents"))
            .header("authorization", format!("token {bob_token}"))
            .send()
    };
    let r = contents().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "bob's token, shared");
    let r = hub(reqwest::Method::DELETE, "/shares/alice/", Value::Null)
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = bob.get(&format!("{prefix}lab")).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "bob, unshared");
    let r = contents().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "bob's token, unshared");

    // Nobody logged in: a page asking to log in.
    let r = reqwest::get(format!("{url}{prefix}lab")).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

/// The unmodified `jupyterhub-idle-culler`, run as JupyterHub runs it: as a
/// service with its own token (made with `berth services create --admin`),
/// stops a server that sat idle.
#[tokio::test]
async fn jupyterhub_idle_culler_stops_an_idle_server() {
    if !have_jupyter() {
        return;
    }
    let mut rig = Rig::new();
    let url = rig.start_serve();
    let admin_token = admin_token(&url).await;
    let admin = Client::new(&url, Some(admin_token.clone())).unwrap();
    create_profile(&admin, "small", 128 << 20, APP).await;
    let idle = rig.create_workspace(&admin, "idle", "small").await;
    rig.wait_until(&admin, &idle, "ready", ready).await;
    let made = Command::new(crate::BIN)
        .args(["services", "create", "idle-culler", "--admin", "--json"])
        .args(["--url", &url])
        .env("BERTH_TOKEN", &admin_token)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let made: Value = serde_json::from_slice(&made.stdout).unwrap();
    assert_eq!(
        (&made["kind"], &made["admin"]),
        (&json!("service"), &json!(true))
    );
    let culler_token = made["api_token"].as_str().unwrap().to_owned();
    let mut culler = Command::new(format!("{JUPYTER_ENV}/bin/jupyterhub-idle-culler"))
        .args([
            &format!("--url={url}/hub/api"),
            "--timeout=3",
            "--cull-every=2",
        ])
        .env("JUPYTERHUB_API_TOKEN", &culler_token)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run jupyterhub-idle-culler");
    let stopped = tokio::time::timeout(
        Duration::from_secs(60),
        rig.wait_until(&admin, &idle, "stopped by the culler", |ws| {
            ws.state == "stopped"
        }),
    )
    .await;
    let _ = culler.kill();
    let out = culler.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    let ws = stopped.unwrap_or_else(|_| panic!("not culled in 60 s; culler log:\n{log}"));
    assert_eq!(ws.desired_state, "stopped", "culler log:\n{log}");
    assert!(log.contains("Culling server"), "culler log:\n{log}");
}

/// A JupyterHub API client as users write them (`requests` with a hub token
/// and redirects not followed, `websocket-client`) works unchanged against
/// the default server at `/user/{name}/` and a named one at
/// `/user/{name}/{server}/`: a contents `PUT` writes a file there, and a
/// kernel runs code over the channels WebSocket. Both servers are started
/// through the hub API, as such a client starts them.
#[tokio::test]
async fn jupyterhub_api_clients_use_default_and_named_servers() {
    if !have_jupyter() {
        return;
    }
    let mut rig = Rig::new();
    let url = rig.start_serve();
    let admin = Client::new(&url, Some(admin_token(&url).await)).unwrap();
    create_user(&admin, "alice").await;
    let (_, token) = logged_in(&url, "alice").await;
    let http = reqwest::Client::new();
    for (server, prefix) in [("", "/user/alice/"), ("lab", "/user/alice/lab/")] {
        let start = match server {
            "" => format!("{url}/hub/api/users/alice/server"),
            s => format!("{url}/hub/api/users/alice/servers/{s}"),
        };
        let r = http
            .post(&start)
            .header("authorization", format!("token {token}"))
            .send()
            .await
            .unwrap();
        assert!(
            [StatusCode::CREATED, StatusCode::ACCEPTED].contains(&r.status()),
            "start {server:?}: {}",
            r.status()
        );
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let model: Value = http
                .get(format!("{url}/hub/api/users/alice"))
                .header("authorization", format!("token {token}"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if model["servers"][server]["ready"] == true {
                assert_eq!(model["servers"][server]["url"], prefix);
                break;
            }
            assert!(Instant::now() < deadline, "{server:?} not ready: {model}");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let out = Command::new(format!("{JUPYTER_ENV}/bin/python"))
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/it/clients/kernel_client.py"
            ))
            .args([&url, &token, prefix])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "the client through {prefix}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let said: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            said,
            json!({"contents": "written by a client", "result": "42"}),
            "through {prefix}"
        );
    }
}
