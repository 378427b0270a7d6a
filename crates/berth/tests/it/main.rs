//! End-to-end tests: the real `berth serve` binary on 127.0.0.1:0, with SQLite and
//! with PostgreSQL, driven by the `berth` CLI and by the typed client.

mod cli;
mod hub_diff;
mod jupyterhub;
mod kubernetes;
mod portal;
mod process;
mod readme;
mod schemathesis;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use api_types::{ProfileUpdate, TokenCreate, UserCreate, WorkspaceCreate, WorkspaceUpdate};
use client::{AuditQuery, Client, WorkspaceQuery};
use serde_json::Value;
use test_support::{Engine, TestDb};

const BIN: &str = env!("CARGO_BIN_EXE_berth");
const ADMIN_PASSWORD: &str = "e2e-admin-password";

/// Starts `berth serve` on a free loopback port with the data dir `<dir>/data`
/// (and `database_url`, else the embedded SQLite there); returns it with its URL
/// once it listens, or kills it and panics after 60 s.
fn spawn_serve(dir: &Path, runtime: &str, database_url: Option<&str>) -> (Child, String) {
    spawn_serve_with(dir, runtime, database_url, &[])
}

/// [`spawn_serve`] with more environment variables.
fn spawn_serve_with(
    dir: &Path,
    runtime: &str,
    database_url: Option<&str>,
    env: &[(&str, &str)],
) -> (Child, String) {
    spawn_serve_on("127.0.0.1:0", dir, runtime, database_url, env)
}

/// [`spawn_serve_with`], listening on `bind`.
fn spawn_serve_on(
    bind: &str,
    dir: &Path,
    runtime: &str,
    database_url: Option<&str>,
    env: &[(&str, &str)],
) -> (Child, String) {
    let mut cmd = Command::new(BIN);
    cmd.envs(env.iter().copied());
    cmd.args(["serve", "--bind", bind, "--data-dir"])
        .arg(dir.join("data"))
        .env_remove("BERTH_DATABASE_URL")
        .env("BERTH_RUNTIME", runtime)
        .env("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("RUST_LOG", "warn")
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some(url) = database_url {
        cmd.args(["--database-url", url]);
    }
    let mut child = cmd.spawn().expect("start berth serve");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("listening on ") {
                let _ = tx.send(url.to_owned());
            }
        }
    });
    let Ok(url) = rx.recv_timeout(Duration::from_secs(60)) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("berth serve ({runtime}, {database_url:?}) did not start listening");
    };
    (child, url)
}

/// A child process killed when the test ends, passed or not.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running `berth serve` with its own data dir and CLI config home.
struct Berth {
    child: Child,
    url: String,
    dir: tempfile::TempDir,
}

impl Berth {
    /// `berth serve` with `runtime` ("none": desired state only, or "process").
    fn start(db: &TestDb, runtime: &str) -> Berth {
        let dir = tempfile::tempdir().unwrap();
        // Workspace users traverse the data dir's parents to reach their homes.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        let (child, url) = spawn_serve(dir.path(), runtime, Some(&db.url));
        Berth { child, url, dir }
    }

    /// Runs the CLI as `home`'s user (each home keeps its own stored token).
    fn cli(&self, home: &str, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = Command::new(BIN)
            .args(["--url", &self.url])
            .args(args)
            .env("XDG_CONFIG_HOME", self.dir.path().join(home))
            .env_remove("BERTH_TOKEN")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.unwrap_or("").as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    /// `berth login` as `user`, storing the token in `home`.
    fn login(&self, home: &str, user: &str, password: &str) {
        let args = ["login", "-u", user, "--password-stdin"];
        let out = self.cli(home, &args, Some(password));
        assert!(
            out.status.success(),
            "login: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs the CLI with `--json`, expecting success, and parses its output.
    fn json(&self, home: &str, args: &[&str]) -> Value {
        // Before the rest: `--command` takes every argument after it.
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.cli(home, &all, None);
        assert!(
            out.status.success(),
            "berth {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "berth {args:?} printed no JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// Runs the CLI expecting failure, and returns its stderr.
    fn fails(&self, home: &str, args: &[&str]) -> String {
        let out = self.cli(home, args, None);
        assert!(!out.status.success(), "berth {args:?} should have failed");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Sends SIGTERM and expects a clean exit.
    fn stop(mut self) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        let status = self.child.wait().unwrap();
        assert!(
            status.success(),
            "berth serve exited with {status} after SIGTERM"
        );
    }
}

impl Drop for Berth {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn code(e: client::ClientError) -> String {
    e.code().unwrap_or("<none>").to_owned()
}

async fn story(engine: Engine) {
    let db = engine.fresh().await;
    let berth = Berth::start(&db, "none");

    // The CLI: log in, make a token, manage a profile, a user and a workspace.
    berth.login("admin", "admin", ADMIN_PASSWORD);
    let token = berth.json("admin", &["tokens", "create", "--note", "e2e"]);
    let token = token["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("berth_"));

    let small = berth.json(
        "admin",
        &[
            "profiles",
            "create",
            "small",
            "--display-name",
            "Small",
            "--cpu",
            "0.5",
            "--memory",
            "512MiB",
        ],
    );
    assert_eq!(
        (small["cpu"].as_f64(), small["memory_bytes"].as_u64()),
        (Some(0.5), Some(512 << 20))
    );
    let listed = berth.json("admin", &["profiles", "list"]);
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["high-memory", "small", "standard"]);
    let updated = berth.json(
        "admin",
        &[
            "profiles",
            "update",
            "small",
            "--cpu",
            "1",
            "--idle-timeout",
            "0",
        ],
    );
    assert_eq!(
        (updated["cpu"].as_f64(), &updated["idle_timeout_secs"]),
        (Some(1.0), &Value::Null)
    );
    assert!(berth
        .fails("admin", &["profiles", "update", "small", "--cpu", "9999"])
        .contains("invalid_value"));

    let out = berth.cli(
        "admin",
        &["users", "create", "bob", "--password-stdin"],
        Some("bob-password-1"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Bob's own limits: the ones given replace the default's, the rest stay.
    let q = berth.json("admin", &["users", "quota", "bob", "--workspaces", "2"]);
    assert_eq!(q["limits"]["max_workspaces"], 2);
    let q = berth.json("admin", &["users", "quota", "bob", "--memory", "4GiB"]);
    assert_eq!(
        (
            &q["custom"]["max_workspaces"],
            &q["limits"]["max_memory_bytes"]
        ),
        (&Value::from(2), &Value::from(4u64 << 30))
    );
    assert_eq!(q["limits"]["max_cpu"], q["default"]["max_cpu"]);
    assert!(berth
        .fails("admin", &["users", "quota", "bob", "--cpu", "-1"])
        .contains("expected a number of CPUs, 0 or more"));
    let q = berth.json("admin", &["users", "quota", "bob", "--reset"]);
    assert_eq!(q["limits"], q["default"]);
    let table = berth.cli("admin", &["users", "quota", "bob"], None);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("memory running") && table.contains("default"),
        "{table}"
    );

    let ws = berth.json("admin", &["ws", "create", "lab", "--profile", "small"]);
    assert_eq!(
        (
            ws["state"].as_str(),
            ws["desired_state"].as_str(),
            ws["generation"].as_i64()
        ),
        (Some("pending"), Some("stopped"), Some(1))
    );
    assert_eq!(ws["url"], "/user/admin/lab/");
    let started = berth.json("admin", &["ws", "start", "lab"]);
    assert_eq!(
        (
            started["desired_state"].as_str(),
            started["generation"].as_i64()
        ),
        (Some("running"), Some(2))
    );
    let moved = berth.json("admin", &["ws", "update", "lab", "--profile", "standard"]);
    assert_eq!(moved["profile"], "standard");
    assert_eq!(berth.json("admin", &["ws", "show", "lab"])["id"], ws["id"]);
    assert_eq!(
        berth
            .json("admin", &["ws", "list"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert!(berth
        .fails("admin", &["ws", "show", "nope"])
        .contains("no workspace named nope"));
    assert!(berth
        .fails("admin", &["ws", "create", "Bad_Name"])
        .contains("invalid_name"));
    assert!(berth
        .fails("admin", &["ws", "create", "lab"])
        .contains("already_exists"));
    berth.json("admin", &["ws", "stop", "lab"]);

    // The API through the typed client, with the token the CLI made.
    let admin = Client::new(&berth.url, Some(token)).unwrap();
    let api_ws = admin
        .create_workspace(&WorkspaceCreate {
            name: "api".into(),
            start: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        admin.workspace(&api_ws.id).await.unwrap().desired_state,
        "running"
    );
    let running = admin
        .workspaces(&WorkspaceQuery {
            profile: Some("standard".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(running.items.len(), 2);
    let page1 = admin
        .workspaces(&WorkspaceQuery {
            limit: Some(1),
            ..Default::default()
        })
        .await
        .unwrap();
    let page2 = admin
        .workspaces(&WorkspaceQuery {
            limit: Some(1),
            after: page1.next.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        (page1.items.len(), page2.items.len(), page2.next.as_ref()),
        (1, 1, None)
    );
    assert_ne!(page1.items[0].id, page2.items[0].id);
    let changed = admin
        .update_workspace(
            &api_ws.id,
            &WorkspaceUpdate {
                profile: Some("small".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!((changed.profile.as_str(), changed.generation), ("small", 2));
    admin
        .update_profile(
            "small",
            &ProfileUpdate {
                cost_per_hour: Some(0.25),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let err = admin
        .create_user(&UserCreate {
            name: "bob".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(code(err), "already_exists");

    // Another user sees none of it.
    let mut bob = Client::new(&berth.url, None).unwrap();
    bob.login("bob", "bob-password-1").await.unwrap();
    for id in [&api_ws.id, ws["id"].as_str().unwrap()] {
        assert_eq!(code(bob.workspace(id).await.unwrap_err()), "not_found");
        assert_eq!(
            code(bob.start_workspace(id).await.unwrap_err()),
            "not_found"
        );
        assert_eq!(
            code(bob.delete_workspace(id, false).await.unwrap_err()),
            "not_found"
        );
    }
    assert!(bob
        .workspaces(&WorkspaceQuery::default())
        .await
        .unwrap()
        .items
        .is_empty());
    assert_eq!(
        code(bob.audit(&AuditQuery::default()).await.unwrap_err()),
        "forbidden"
    );
    assert_eq!(
        code(bob.delete_profile("small").await.unwrap_err()),
        "forbidden"
    );
    assert_eq!(code(bob.tokens("admin").await.unwrap_err()), "not_found");
    let denied = bob
        .create_token(
            "bob",
            &TokenCreate {
                scopes: Some(vec!["admin:users".into()]),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(code(denied), "forbidden");
    let mine = bob
        .create_workspace(&WorkspaceCreate {
            name: "lab".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(mine.owner, "bob");
    berth.login("bob", "bob", "bob-password-1");
    let bobs = berth.json("bob", &["ws", "list"]);
    assert_eq!(bobs.as_array().unwrap().len(), 1);
    assert!(berth
        .fails("bob", &["ws", "show", "lab", "--owner", "admin"])
        .contains("forbidden"));
    assert!(berth.fails("bob", &["audit"]).contains("forbidden"));

    // Delete: the workspace is marked, the profile it uses cannot go.
    let deleting = berth.json("admin", &["ws", "delete", "lab"]);
    assert!(deleting["deletion_requested_at"].is_string());
    assert!(berth
        .fails("admin", &["ws", "start", "lab"])
        .contains("conflict"));
    admin.delete_workspace(&api_ws.id, false).await.unwrap();
    assert_eq!(
        code(admin.delete_profile("small").await.unwrap_err()),
        "conflict"
    );

    // The audit log holds every mutation, filterable.
    let audit = admin
        .audit(&AuditQuery {
            action: Some("workspace".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut actions: Vec<&str> = audit.items.iter().map(|a| a.action.as_str()).collect();
    actions.sort();
    actions.dedup();
    assert_eq!(
        actions,
        [
            "workspace.create",
            "workspace.delete",
            "workspace.start",
            "workspace.stop",
            "workspace.update"
        ]
    );
    let bobs = admin
        .audit(&AuditQuery {
            user: Some("bob".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(bobs.items.iter().all(|a| a.actor.as_deref() == Some("bob")));
    assert!(bobs
        .items
        .iter()
        .any(|a| a.action == "workspace.create" && a.target == "bob/lab"));
    let cli_audit = berth.json("admin", &["audit", "--action", "profile"]);
    assert!(cli_audit
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["action"] == "profile.update" && a["actor"] == "admin"));

    // The OpenAPI document, and a clean logout.
    let doc = admin.openapi().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert!(doc["paths"]["/api/v1/workspaces/{id}"]["get"].is_object());
    let out = berth.cli("admin", &["logout"], None);
    assert!(out.status.success());
    assert!(berth
        .fails("admin", &["ws", "list"])
        .contains("not logged in"));
    berth.stop();
}

/// `berth ws start` runs a real sandboxed workspace: the controller starts it with
/// the process runtime, reports it running and ready, stops and deletes it, and
/// nothing of it is left.
#[tokio::test]
async fn a_workspace_really_runs() {
    const APP: &str = "import http.server, os\n\
        class H(http.server.BaseHTTPRequestHandler):\n    \
        def do_GET(self):\n        self.send_response(200); self.end_headers(); self.wfile.write(b'hi')\n\
        http.server.HTTPServer(('0.0.0.0', int(os.environ['PORT'])), H).serve_forever()\n";
    // Serves with the process runtime share the machine's cgroup parent.
    let _lock = process::MachineLock::acquire();
    let db = Engine::Sqlite.fresh().await;
    let berth = Berth::start(&db, "process");
    berth.login("admin", "admin", ADMIN_PASSWORD);
    berth.json(
        "admin",
        &[
            "profiles",
            "create",
            "web",
            "--display-name",
            "Web",
            "--memory",
            "256MiB",
            "--command",
            "python3",
            "-c",
            APP,
        ],
    );
    let ws = berth.json(
        "admin",
        &["ws", "create", "web", "--profile", "web", "--start"],
    );
    let id = ws["id"].as_str().unwrap().to_owned();
    let wait_for = |want: &str| {
        for _ in 0..300 {
            let w = berth.json("admin", &["ws", "show", "web"]);
            if w["state"] == want {
                return w;
            }
            assert_ne!(w["state"], "failed", "{w}");
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "workspace never became {want}: {}",
            berth.json("admin", &["ws", "show", "web"])
        );
    };
    let running = wait_for("running");
    assert_eq!(running["observed_generation"], running["generation"]);
    let ready = running["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["kind"] == "Ready" && c["status"] == true);
    assert!(ready, "{running}");
    // The controller's reconciles are in the metrics, by outcome.
    let addr = berth.url.trim_start_matches("http://");
    let (status, metrics) = process::http_get_with(addr, "/metrics", &[]).unwrap();
    assert_eq!(status, 200);
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("berth_reconcile_duration_seconds_count{outcome=\"ok\"}")),
        "{metrics}"
    );
    let netns = || {
        String::from_utf8(
            Command::new("ip")
                .args(["netns", "list"])
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap()
    };
    assert!(
        netns().contains(&format!("berth-{id}")),
        "its own network namespace"
    );
    berth.json("admin", &["ws", "stop", "web"]);
    wait_for("stopped");
    berth.json("admin", &["ws", "delete", "web"]);
    for _ in 0..300 {
        if berth
            .json("admin", &["ws", "list"])
            .as_array()
            .unwrap()
            .is_empty()
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        berth
            .json("admin", &["ws", "list"])
            .as_array()
            .unwrap()
            .is_empty(),
        "deleted"
    );
    assert!(
        !netns().contains(&format!("berth-{id}")),
        "no namespace left"
    );
    assert!(
        !std::path::Path::new(&format!("/sys/fs/cgroup/memory/berth/{id}")).exists(),
        "no cgroup left"
    );
    berth.stop();
}

#[tokio::test]
async fn end_to_end_on_sqlite() {
    story(Engine::Sqlite).await;
}

#[tokio::test]
async fn end_to_end_on_postgres() {
    story(Engine::Postgres).await;
}

/// Without `BERTH_ADMIN_PASSWORD`, the first start prints a random password once;
/// it logs in, and a restart on the same data prints nothing and keeps it.
/// A lost password is reset on the server's machine (`berth admin
/// reset-password`), running or not, and `berth passwd` changes one's own.
#[tokio::test]
async fn first_start_prints_a_one_time_admin_password() {
    let dir = tempfile::tempdir().unwrap();
    let start = || {
        let mut child = Command::new(BIN)
            .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path().join("data"))
            .env_remove("BERTH_ADMIN_PASSWORD")
            .env("BERTH_RUNTIME", "none")
            .env("RUST_LOG", "warn")
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut printed = Vec::new();
        for line in lines.by_ref().map_while(Result::ok) {
            let done = line.starts_with("listening on ");
            printed.push(line);
            if done {
                break;
            }
        }
        (child, printed)
    };
    let (mut first, printed) = start();
    let url = printed
        .last()
        .unwrap()
        .strip_prefix("listening on ")
        .unwrap()
        .to_owned();
    let password = printed
        .iter()
        .find_map(|l| l.split("one-time password `").nth(1))
        .and_then(|rest| rest.strip_suffix('`'))
        .unwrap_or_else(|| panic!("no one-time password in {printed:?}"))
        .to_owned();
    assert!(password.len() >= 16, "{password}");
    let mut c = Client::new(&url, None).unwrap();
    assert!(c.login("admin", &password).await.unwrap().user.admin);
    first.kill().unwrap();
    first.wait().unwrap();

    let (mut second, printed) = start();
    assert_eq!(
        printed.len(),
        1,
        "a restart prints no password: {printed:?}"
    );
    let url = printed[0].strip_prefix("listening on ").unwrap().to_owned();
    let mut c = Client::new(&url, None).unwrap();
    c.login("admin", &password).await.unwrap();

    // The password is lost: reset it on the machine, with the server running.
    let berth = |args: &[&str], stdin: &str| {
        let mut child = Command::new(BIN)
            .args(args)
            .env("XDG_CONFIG_HOME", dir.path().join("cli"))
            .env_remove("BERTH_TOKEN")
            .current_dir(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (out.status.success(), text(&out.stdout), text(&out.stderr))
    };
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let (ok, out, err) = berth(
        &["admin", "reset-password", "admin", "--data-dir", data],
        "",
    );
    assert!(ok, "{err}");
    let reset = out
        .split('`')
        .nth(1)
        .unwrap_or_else(|| panic!("no password in {out:?}"))
        .to_owned();
    assert!(c.me().await.is_err(), "the session ended");
    let mut c = Client::new(&url, None).unwrap();
    c.login("admin", &reset).await.unwrap();
    // A user changes their own password with `berth passwd`.
    let (ok, _, err) = berth(
        &["--url", &url, "login", "-u", "admin", "--password-stdin"],
        &format!("{reset}\n"),
    );
    assert!(ok, "{err}");
    let (ok, _, err) = berth(
        &["passwd", "--password-stdin"],
        "not-it-at-all\nchosen-one-1\n",
    );
    assert!(!ok && err.contains("not your current password"), "{err}");
    let (ok, out, err) = berth(
        &["passwd", "--password-stdin"],
        &format!("{reset}\nchosen-one-1\n"),
    );
    assert!(ok && out.contains("changed your password"), "{err}");
    Client::new(&url, None)
        .unwrap()
        .login("admin", "chosen-one-1")
        .await
        .unwrap();
    second.kill().unwrap();
    second.wait().unwrap();

    // With the server stopped, from stdin; errors are plain.
    let args = [
        "admin",
        "reset-password",
        "admin",
        "--password-stdin",
        "--data-dir",
        data,
    ];
    let (ok, out, err) = berth(&args, "chosen-two-2\n");
    assert!(ok && out.contains("set the password of admin"), "{err}");
    let (ok, _, err) = berth(
        &["admin", "reset-password", "nobody", "--data-dir", data],
        "",
    );
    assert!(
        !ok && err.contains("there is no user named nobody"),
        "{err}"
    );
    let (ok, _, err) = berth(
        &[
            "admin",
            "reset-password",
            "admin",
            "--data-dir",
            "/nonexistent",
        ],
        "",
    );
    assert!(
        !ok && err.contains("no database at /nonexistent/db/berth.db"),
        "{err}"
    );

    // BERTH_ADMIN_PASSWORD after the first start is not silently ignored.
    let log = dir.path().join("serve.log");
    let mut third = Command::new(BIN)
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir", data])
        .env("BERTH_ADMIN_PASSWORD", "ignored-password")
        .env("BERTH_RUNTIME", "none")
        .env("RUST_LOG", "warn")
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let line = BufReader::new(third.stdout.take().unwrap())
        .lines()
        .next()
        .unwrap()
        .unwrap();
    let url = line.strip_prefix("listening on ").unwrap();
    Client::new(url, None)
        .unwrap()
        .login("admin", "chosen-two-2")
        .await
        .unwrap();
    third.kill().unwrap();
    third.wait().unwrap();
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(log.contains("berth admin reset-password"), "{log}");
}

/// A `jupyter_env` without `jupyterhub-singleuser` is said at start, and
/// berth still serves (profiles with another app run).
#[test]
fn a_missing_jupyter_env_is_warned_of_at_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .env("BERTH_RUNTIME", "process")
        .env("BERTH_JUPYTER_ENV", dir.path().join("no-such-env"))
        .env("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("RUST_LOG", "warn")
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let warned = std::iter::from_fn(|| rx.recv_timeout(Duration::from_secs(30)).ok())
        .any(|l| l.contains("no jupyterhub-singleuser in jupyter_env"));
    let still_serving = child.try_wait().unwrap().is_none();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        warned && still_serving,
        "warned: {warned}, serving: {still_serving}"
    );
}

#[test]
fn bad_config_fails_before_binding() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("berth.toml");
    std::fs::write(&cfg, "bind = \"127.0.0.1:0\"\nbindd = 1\n").unwrap();
    let out = Command::new(BIN)
        .arg("serve")
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown field") && err.contains("bindd"),
        "{err}"
    );
    let clean = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--bind", "not-an-address"])
        .current_dir(clean.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    // The flag is named, and no berth.toml that is not there.
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("'--bind <BIND>'") && !err.contains("berth.toml"),
        "{err}"
    );
    let out = Command::new(BIN)
        .args(["serve"])
        .env("BERTH_BIND", "nowhere")
        .current_dir(clean.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("BERTH_") && err.contains("BIND") && !err.contains("berth.toml"),
        "{err}"
    );
    let out = Command::new(BIN)
        .args(["serve", "--database-url", "mysql://x"])
        .current_dir(clean.path())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("database_url must start with"));
    let out = Command::new(BIN)
        .args(["config", "default"])
        .output()
        .unwrap();
    assert!(
        out.status.success()
            && String::from_utf8_lossy(&out.stdout).contains("bind = \"127.0.0.1:8000\"")
    );
    let out = Command::new(BIN)
        .args(["ws", "list", "--url", "ftp://x", "--token", "t"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid server URL"));
}

/// A thousand idle connections that never send a request, against a serve
/// started under the common 1024 open-file soft limit: berth raises the limit,
/// keeps answering (the API and its database), and closes the idle ones once
/// they have sent no request head for 30 s.
#[test]
fn idle_connections_neither_starve_berth_nor_stay_open() {
    use std::io::Read;
    // This test's own process needs the descriptors for its connections.
    let me = std::process::id().to_string();
    let raised = Command::new("prlimit")
        .args(["--pid", &me, "--nofile=8192:8192"])
        .status()
        .unwrap();
    assert!(raised.success());
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new("prlimit")
        .args([
            "--nofile=1024:4096",
            "--",
            BIN,
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.path().join("data"))
        .env("BERTH_RUNTIME", "none")
        .env("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let child = Killed(child);
    let url = stdout
        .lines()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("listening on ").map(str::to_owned))
        .expect("berth serve listens");
    let addr = url.trim_start_matches("http://").to_owned();
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", child.0.id())).unwrap();
    let soft = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .unwrap()
        .to_owned();
    assert_eq!(
        soft, "4096",
        "the soft limit is raised to the hard one:\n{limits}"
    );

    // The 30 s of the first connection run from when berth accepts it, which
    // is after this moment (opening a thousand takes a while on a busy machine).
    let opened = std::time::Instant::now();
    let idle: Vec<std::net::TcpStream> = (0..1000)
        .map(|i| {
            std::net::TcpStream::connect(&addr).unwrap_or_else(|e| panic!("connection {i}: {e}"))
        })
        .collect();
    let started = std::time::Instant::now();
    let ask = |path: &str| {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut reply = String::new();
        let _ = s.read_to_string(&mut reply);
        reply
    };
    for path in ["/healthz", "/readyz", "/hub/api/"] {
        let reply = ask(path);
        assert!(
            reply.starts_with("HTTP/1.1 200"),
            "{path} with 1000 idle connections: {reply:?}"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered at once"
    );

    // 30 s without a request head: each idle connection is closed.
    let mut first = idle.into_iter().next().unwrap();
    first
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut buf = [0u8; 64];
    let n = first.read(&mut buf).unwrap_or(0);
    let waited = opened.elapsed();
    assert_eq!(n, 0, "closed by berth, without a reply");
    assert!(
        (Duration::from_secs(29)..Duration::from_secs(60)).contains(&waited),
        "after {waited:?}"
    );
}
