//! The differential test: one script of REST steps (`hub_diff.steps`) run
//! against a real JupyterHub 6.1.1 (the pinned environment: DummyAuthenticator,
//! SimpleLocalProcessSpawner running `jupyterhub-singleuser`, named servers on,
//! configurable-http-proxy) and against the real `berth serve` (process runtime),
//! in the same test, step by step. Both answers are normalized (timestamps,
//! tokens, ids) and compared; the test fails listing every difference that is
//! not one of the [`ALLOWED`] rules, which the README's table lists too.
//!
//! The script's format, one step per line (`#` starts a comment):
//!
//! ```text
//! [?] [@ACTOR] [!pages] [!sse] METHOD PATH [JSON BODY] [=> CAPTURE]
//! wait USER SERVER ready|stopped|gone
//! ```
//!
//! A step marked `?` in front is a difference known and not yet mended (none
//! is, now): it is run and its difference printed, but
//! it fails the test only once it answers alike, so the mark goes with the fix.
//!
//! `@ACTOR` is whose token authorizes the request: `admin` (the default), a name
//! captured before, `none` (no credentials), `bogus` (a token nobody has) or
//! `token:SECRET` (that token, e.g. a service's `api_token` given before).
//! `!pages` sends JupyterHub's pagination media type in `Accept`; `!sse` reads
//! the answer as server-sent events. `{var}` in the path or the body is a value
//! captured before. `=> NAME` keeps the answer's `token` as actor NAME's token;
//! `=> NAME=FIELD` keeps the answer's FIELD as `{NAME}`. `wait` polls the user
//! model (as admin) until the server (`-` is the default server) is ready or
//! gone, and is not compared.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::jupyterhub::{have_jupyter, JUPYTER_ENV};
use crate::portal::free_port;
use crate::process::{admin_token, Rig};

const SCRIPT: &str = include_str!("hub_diff.steps");
const CHP: &str = "/opt/berth/node/node_modules/.bin/configurable-http-proxy";
const PAGINATION: &str = "application/jupyterhub-pagination+json";

/// Where berth chooses to answer otherwise than JupyterHub, each a rule with a
/// name, applied to both sides' normalized answers before they are compared.
/// The README's "Where berth differs from JupyterHub" table lists the same.
const ALLOWED: &[(&str, &str)] = &[
    (
        "error-extras",
        "berth's error bodies also carry its stable `code` and the `request_id`",
    ),
    (
        "message-text",
        "the prose of error and progress messages (and OAuth's optional \
         `error_description`) is each side's own",
    ),
    (
        "info-implementation",
        "`/hub/api/info` names berth, not a Python, spawner and authenticator",
    ),
    (
        "berth-scopes",
        "berth's own scopes (`read:profiles`, `admin:profiles`, `read:audit`) and a \
         user's `shares` of their own servers appear in its scope lists",
    ),
    (
        "user-options",
        "a server's `user_options` is the profile it runs, not the start request echoed",
    ),
    (
        "server-state",
        "a server's `state` (the spawner's own) is empty: berth's runtime keeps it",
    ),
    (
        "progress-steps",
        "progress events before the last are berth's own start steps",
    ),
];

/// One side of the comparison.
struct Side {
    name: &'static str,
    base: String,
    http: reqwest::Client,
    /// Actor name → token.
    tokens: BTreeMap<String, String>,
    /// Captured values, `{name}` in steps.
    vars: BTreeMap<String, String>,
}

/// A normalized answer.
#[derive(Debug, PartialEq)]
struct Answer {
    status: u16,
    body: Value,
}

impl Side {
    fn new(name: &'static str, base: String, admin: String) -> Side {
        Side {
            name,
            base,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(300))
                .build()
                .unwrap(),
            tokens: BTreeMap::from([("admin".into(), admin)]),
            vars: BTreeMap::new(),
        }
    }

    fn fill(&self, s: &str) -> String {
        let mut s = s.to_owned();
        for (k, v) in &self.vars {
            s = s.replace(&format!("{{{k}}}"), v);
        }
        s
    }

    async fn send(&mut self, step: &Step) -> (Answer, Value) {
        let method: reqwest::Method = step.method.parse().unwrap();
        let mut req = self
            .http
            .request(method, format!("{}{}", self.base, self.fill(&step.path)));
        match step.actor.as_str() {
            "none" => {}
            "bogus" => req = req.header("authorization", "token 0123456789abcdef0123456789abcdef"),
            literal if literal.starts_with("token:") => {
                req = req.header("authorization", format!("token {}", &literal[6..]));
            }
            actor => {
                let token = self.tokens.get(actor).unwrap_or_else(|| {
                    panic!("line {}: no token for @{actor} on {}", step.line, self.name)
                });
                req = req.header("authorization", format!("token {token}"));
            }
        }
        if step.pages {
            req = req.header("accept", PAGINATION);
        }
        if step.sse {
            req = req.header("accept", "text/event-stream");
        }
        if let Some(body) = &step.body {
            req = req
                .header("content-type", "application/json")
                .body(self.fill(body));
        }
        let r = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("line {}: {} did not answer: {e}", step.line, self.name));
        let status = r.status();
        let text = r.text().await.unwrap_or_default();
        let raw = if step.sse && status == StatusCode::OK {
            events(&text)
        } else if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| json!("<text>"))
        };
        if let Some(capture) = &step.capture {
            match capture.split_once('=') {
                Some((var, field)) => {
                    if let Some(v) = raw.get(field) {
                        let v = v.as_str().map(str::to_owned).unwrap_or(v.to_string());
                        self.vars.insert(var.to_owned(), v);
                    }
                }
                None => {
                    if let Some(t) = raw.get("token").and_then(Value::as_str) {
                        self.tokens.insert(capture.clone(), t.to_owned());
                    }
                }
            }
        }
        let mut body = self.normalize(raw.clone(), status.as_u16());
        if step.path == "/hub/api/info" && status == StatusCode::OK {
            // info-implementation
            for key in ["python", "sys_executable", "spawner", "authenticator"] {
                body[key] = json!("<implementation>");
            }
        }
        (
            Answer {
                status: status.as_u16(),
                body,
            },
            raw,
        )
    }

    /// Timestamps, ids and tokens become placeholders; values captured before
    /// become their names; error bodies keep JupyterHub's keys.
    fn normalize(&self, v: Value, status: u16) -> Value {
        let mut v = self.placeholders(v, None);
        if status >= 400 {
            if let Value::Object(o) = &mut v {
                // error-extras
                o.remove("code");
                o.remove("request_id");
                // message-text
                o.remove("error_description");
                if o.get("message").is_some_and(Value::is_string) {
                    o.insert("message".into(), json!("<message>"));
                }
            }
        }
        v
    }

    fn placeholders(&self, v: Value, key: Option<&str>) -> Value {
        match v {
            Value::Object(o) => Value::Object(
                o.into_iter()
                    .map(|(k, v)| {
                        let v = match k.as_str() {
                            // user-options, server-state
                            "user_options" | "state" if !v.is_string() => json!(format!("<{k}>")),
                            // message-text: JupyterHub's is sometimes null
                            "message" if v.is_null() => json!("<message>"),
                            "scopes" => scopes(v),
                            _ => self.placeholders(v, Some(&k)),
                        };
                        (k, v)
                    })
                    .collect(),
            ),
            Value::Array(a) => {
                Value::Array(a.into_iter().map(|v| self.placeholders(v, key)).collect())
            }
            // Ids first: JupyterHub's database reuses a deleted token's id, so
            // a new one can equal a value captured before.
            Value::String(_) if matches!(key, Some("id" | "token_id" | "session_id")) => {
                json!("<id>")
            }
            Value::String(s) => {
                if let Some((name, _)) = self.tokens.iter().find(|(_, t)| **t == s) {
                    return json!(format!("<token:{name}>"));
                }
                if let Some((name, _)) = self.vars.iter().find(|(_, t)| **t == s) {
                    return json!(format!("<{name}>"));
                }
                match key {
                    Some("message") => json!("<message>"),
                    Some("created" | "last_activity" | "started" | "expires_at") => {
                        json!("<time>")
                    }
                    Some("token") => json!("<token>"),
                    // Each side's own ports.
                    Some("target") => json!("<target>"),
                    _ => Value::String(s.replace(&self.base, "<base>")),
                }
            }
            other => other,
        }
    }
}

/// A list of scopes, sorted (JupyterHub's token model has them in no order),
/// without berth's own (berth-scopes).
fn scopes(v: Value) -> Value {
    let Value::Array(a) = v else { return v };
    let mut out: Vec<String> = a
        .iter()
        .filter_map(Value::as_str)
        .filter(|s| {
            let scope = s.split('!').next().unwrap_or_default();
            let own_share = s.contains("!user=")
                && ["shares", "groups:shares", "read:groups:shares"].contains(&scope);
            !own_share && !["read:profiles", "admin:profiles", "read:audit"].contains(&scope)
        })
        .map(str::to_owned)
        .collect();
    out.sort();
    json!(out)
}

/// A stream of server-sent events as JupyterHub's progress sends them: the
/// last event whole (progress-steps), and that every event had a progress.
fn events(text: &str) -> Value {
    let all: Vec<Value> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str(d.trim()).ok())
        .collect();
    let mut last = all.last().cloned().unwrap_or(Value::Null);
    // message-text
    for key in ["message", "html_message"] {
        if last.get(key).is_some() {
            last[key] = json!("<message>");
        }
    }
    let progressed = all
        .windows(2)
        .all(|w| w[0]["progress"].as_f64() <= w[1]["progress"].as_f64());
    json!({
        "every_event_has_progress": all.iter().all(|e| e["progress"].is_number() && e["message"].is_string()),
        "progress_never_decreases": progressed,
        "last": last,
    })
}

/// One step of the script.
#[derive(Debug)]
struct Step {
    line: usize,
    /// A known difference, not mended yet.
    pending: bool,
    text: String,
    actor: String,
    pages: bool,
    sse: bool,
    method: String,
    path: String,
    body: Option<String>,
    capture: Option<String>,
}

enum Line {
    Request(Step),
    Wait {
        line: usize,
        user: String,
        server: String,
        /// `ready`, `stopped` or `gone` (not even listed as stopped).
        until: String,
    },
}

fn parse(script: &str) -> Vec<Line> {
    let mut lines = Vec::new();
    for (i, raw) in script.lines().enumerate() {
        let line = i + 1;
        let text = raw.split(" #").next().unwrap().trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        if let Some(rest) = text.strip_prefix("wait ") {
            let w: Vec<&str> = rest.split_whitespace().collect();
            assert!(
                w.len() == 3 && ["ready", "stopped", "gone"].contains(&w[2]),
                "line {line}: wait USER SERVER ready|stopped|gone"
            );
            lines.push(Line::Wait {
                line,
                user: w[0].into(),
                server: if w[1] == "-" {
                    String::new()
                } else {
                    w[1].into()
                },
                until: w[2].into(),
            });
            continue;
        }
        let (text_no_capture, capture) = match text.split_once(" => ") {
            Some((t, c)) => (t.trim(), Some(c.trim().to_owned())),
            None => (text, None),
        };
        let (pending, mut rest) = match text_no_capture.strip_prefix("? ") {
            Some(rest) => (true, rest.trim_start()),
            None => (false, text_no_capture),
        };
        let mut actor = "admin".to_owned();
        let (mut pages, mut sse) = (false, false);
        loop {
            let (word, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            if let Some(a) = word.strip_prefix('@') {
                actor = a.to_owned();
            } else if word == "!pages" {
                pages = true;
            } else if word == "!sse" {
                sse = true;
            } else {
                break;
            }
            rest = tail.trim_start();
        }
        let (method, rest) = rest
            .split_once(' ')
            .unwrap_or_else(|| panic!("line {line}: METHOD PATH expected"));
        let (path, body) = match rest.trim().split_once(' ') {
            Some((p, b)) => (p, Some(b.trim().to_owned())),
            None => (rest.trim(), None),
        };
        assert!(
            ["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method),
            "line {line}: unknown method {method}"
        );
        assert!(path.starts_with('/'), "line {line}: the path starts with /");
        if let Some(b) = &body {
            // A body may hold {var}s, so it is checked once they are filled.
            assert!(
                b.starts_with('{') || b.starts_with('[') || b.starts_with('"'),
                "line {line}: the body is JSON"
            );
        }
        lines.push(Line::Request(Step {
            line,
            pending,
            text: text.to_owned(),
            actor,
            pages,
            sse,
            method: method.into(),
            path: path.into(),
            body,
            capture,
        }));
    }
    lines
}

/// Polls the user model until `server` is ready, stopped (not listed) or gone
/// (not listed even with the stopped servers).
async fn wait(side: &Side, line: usize, user: &str, server: &str, until: &str) {
    let query = if until == "gone" {
        "?include_stopped_servers=1"
    } else {
        ""
    };
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let model: Value = side
            .http
            .get(format!("{}/hub/api/users/{user}{query}", side.base))
            .header("authorization", format!("token {}", side.tokens["admin"]))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap_or(Value::Null);
        let s = &model["servers"][server];
        let done = match until {
            "ready" => s["ready"] == true,
            _ => s.is_null(),
        };
        if done {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "line {line}: {}'s server {server:?} of {user} is not {until} after 240 s: {model}",
            side.name,
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Where two values differ, as JSON pointers.
fn differences(a: &Value, b: &Value, at: String, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let (p, q) = (x.get(k), y.get(k));
                match (p, q) {
                    (Some(p), Some(q)) => differences(p, q, format!("{at}/{k}"), out),
                    _ => out.push(format!(
                        "  {at}/{k}: jupyterhub {} | berth {}",
                        p.map_or("(absent)".into(), Value::to_string),
                        q.map_or("(absent)".into(), Value::to_string)
                    )),
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                differences(p, q, format!("{at}/{i}"), out);
            }
        }
        _ if a != b => out.push(format!("  {at}: jupyterhub {a} | berth {b}")),
        _ => {}
    }
}

/// A real JupyterHub on loopback, stopped (with its servers and proxy) on drop.
struct JupyterHub {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl JupyterHub {
    fn start(admin_token: &str) -> JupyterHub {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let (port, hub_port, api_port) = (free_port(), free_port(), free_port());
        let config = format!(
            r#"
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {port}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.JupyterHub.db_url = "sqlite:///{d}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "{d}/cookie_secret"
c.JupyterHub.pid_file = "{d}/jupyterhub.pid"
c.ConfigurableHTTPProxy.command = ["{CHP}"]
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{api_port}"
c.ConfigurableHTTPProxy.pid_file = "{d}/proxy.pid"
c.ConfigurableHTTPProxy.auth_token = "proxy-{admin_token}"
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.admin_users = {{"admin"}}
c.Authenticator.allow_all = True
c.JupyterHub.allow_named_servers = True
c.JupyterHub.api_tokens = {{"{admin_token}": "admin"}}
c.JupyterHub.spawner_class = "jupyterhub.spawner.SimpleLocalProcessSpawner"
c.SimpleLocalProcessSpawner.home_dir_template = "{d}/home/{{username}}"
c.Spawner.cmd = ["{JUPYTER_ENV}/bin/jupyterhub-singleuser"]
c.Spawner.args = ["--allow-root"]
c.Spawner.ip = "127.0.0.1"
c.Spawner.start_timeout = 240
c.Spawner.http_timeout = 240
c.JupyterHub.tornado_settings = {{"slow_spawn_timeout": 0}}
"#
        );
        std::fs::write(dir.path().join("jupyterhub_config.py"), config).unwrap();
        let log = std::fs::File::create(dir.path().join("jupyterhub.log")).unwrap();
        let child = Command::new(Path::new(JUPYTER_ENV).join("bin/jupyterhub"))
            .args(["-f", "jupyterhub_config.py"])
            .current_dir(dir.path())
            .env("PATH", format!("{JUPYTER_ENV}/bin:/usr/bin:/bin"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start jupyterhub");
        let hub = JupyterHub {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let up = std::process::Command::new("curl")
                .args(["-sf", "-o", "/dev/null", &format!("{}/hub/api/", hub.url)])
                .status()
                .is_ok_and(|s| s.success());
            if up {
                return hub;
            }
            assert!(
                Instant::now() < deadline,
                "JupyterHub did not answer in 120 s:\n{}",
                hub.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("jupyterhub.log")).unwrap_or_default()
    }
}

impl Drop for JupyterHub {
    fn drop(&mut self) {
        // On SIGTERM JupyterHub stops its servers and its proxy.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn the_hub_api_answers_as_jupyterhub_does() {
    if !have_jupyter() {
        return;
    }
    assert!(
        Path::new(CHP).is_file() || std::env::var_os("CI").is_none(),
        "{CHP} is missing: run scripts/install-deps"
    );
    if !Path::new(CHP).is_file() {
        return;
    }
    let steps = parse(SCRIPT);
    let requests = steps
        .iter()
        .filter(|s| matches!(s, Line::Request(_)))
        .count();
    assert!(requests >= 150, "the script has {requests} steps, not 150");

    let mut rig = Rig::new();
    let url = rig.start_serve();
    let mut berth = Side::new("berth", url.clone(), admin_token(&url).await);
    let token = format!("{:032x}", rand_u128());
    let hub = JupyterHub::start(&token);
    let mut jh = Side::new("jupyterhub", hub.url.clone(), token);

    let (mut report, mut pending) = (Vec::new(), Vec::new());
    for line in &steps {
        match line {
            Line::Wait {
                line,
                user,
                server,
                until,
            } => {
                wait(&jh, *line, user, server, until).await;
                wait(&berth, *line, user, server, until).await;
            }
            Line::Request(step) => {
                let (a, raw_a) = jh.send(step).await;
                let (b, raw_b) = berth.send(step).await;
                let mut diffs = Vec::new();
                if a.status != b.status {
                    diffs.push(format!(
                        "  status: jupyterhub {} | berth {}",
                        a.status, b.status
                    ));
                }
                differences(&a.body, &b.body, String::new(), &mut diffs);
                if step.pending && diffs.is_empty() {
                    report.push(format!(
                        "line {}: {}\n  answers alike now: take its `?` away",
                        step.line, step.text
                    ));
                } else if !diffs.is_empty() {
                    let out = if step.pending {
                        &mut pending
                    } else {
                        &mut report
                    };
                    out.push(format!(
                        "line {}: {}\n{}\n  (jupyterhub said {raw_a}\n   berth said {raw_b})",
                        step.line,
                        step.text,
                        diffs.join("\n")
                    ));
                }
            }
        }
    }
    drop(rig);
    if !pending.is_empty() {
        eprintln!(
            "{} steps differ as known, not yet mended:\n\n{}",
            pending.len(),
            pending.join("\n\n")
        );
    }
    if !report.is_empty() {
        let rules: Vec<String> = ALLOWED.iter().map(|(n, w)| format!("{n}: {w}")).collect();
        panic!(
            "{} of {requests} steps answered otherwise than JupyterHub 6.1.1 (allowed: {}):\n\n{}\n\nJupyterHub's log:\n{}",
            report.len(),
            rules.join("; "),
            report.join("\n\n"),
            hub.log().lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
}

fn rand_u128() -> u128 {
    let mut b = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
        .unwrap();
    u128::from_le_bytes(b)
}
