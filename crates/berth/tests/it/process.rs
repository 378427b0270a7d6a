//! The real `berth serve` with the process runtime, under failure: the control
//! plane killed with SIGKILL and restarted on the same data dir (re-adoption), and
//! an app killed by the OOM killer at its profile's memory limit.
//!
//! Every `berth serve` with the process runtime shares the machine's cgroup parent
//! `berth`, and a serve's resync deletes every workspace there that its own store
//! does not know: such tests hold [`MachineLock`] for their whole run, so that they
//! never overlap (in this binary, nor in another run of it on the same machine).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use api_types::{App, Condition, ProfileCreate, TokenCreate, Workspace, WorkspaceCreate};
use client::{Client, WorkspaceQuery};

use crate::ADMIN_PASSWORD;

const CGROUP_ROOT: &str = "/sys/fs/cgroup";
/// The v1 controllers the runtime places a workspace in.
const CONTROLLERS: [&str; 5] = ["memory", "cpu", "cpuacct", "pids", "freezer"];

/// A small app: answers every GET with its hostname (`{owner}-{workspace}`).
pub(crate) const APP: &str = r#"
import http.server, os, socket
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = socket.gethostname().encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.HTTPServer(("0.0.0.0", int(os.environ["PORT"])), H).serve_forever()
"#;

/// The same app, except that its first run allocates past any memory limit in
/// its main (only) process before it serves, so the whole app dies by the OOM
/// killer while the controller still polls it as starting; a marker in the home
/// makes the next run serve. (A running app that dies is noticed only at the
/// controller's periodic resync, 30 s: too slow for a test.)
const HOG: &str = r#"
import http.server, os, socket
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = socket.gethostname().encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
marker = os.path.join(os.environ["HOME"], "oom-once")
if not os.path.exists(marker):
    open(marker, "w").close()
    print("allocating past the memory limit", flush=True)
    hog = []
    while True:
        hog.append(b"\xff" * (16 << 20))
print("serving", flush=True)
http.server.HTTPServer(("0.0.0.0", int(os.environ["PORT"])), H).serve_forever()
"#;

/// Machine-wide exclusion of the tests that run `berth serve` with the process
/// runtime: `flock` on a file in the temp dir, held by a child process that lives
/// until its stdin closes (so a crashed test releases it too).
pub(crate) struct MachineLock(Child);

impl MachineLock {
    pub(crate) fn acquire() -> MachineLock {
        let path = std::env::temp_dir().join("berth-e2e-process-runtime.lock");
        let mut child = Command::new("flock")
            .args(["--exclusive", "--timeout", "900"])
            .arg(&path)
            .args(["sh", "-c", "echo locked; exec cat >/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("run flock");
        let mut line = String::new();
        let _ = BufReader::new(child.stdout.take().unwrap()).read_line(&mut line);
        assert_eq!(
            line.trim(),
            "locked",
            "could not lock {} in 15 minutes",
            path.display()
        );
        MachineLock(child)
    }
}

impl Drop for MachineLock {
    fn drop(&mut self) {
        // EOF ends `cat`, then `flock`, which releases the lock.
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
}

/// One `berth serve` process.
struct Serve {
    child: Child,
    url: String,
}

impl Serve {
    /// `host:port` of its API.
    fn addr(&self) -> &str {
        self.url.strip_prefix("http://").unwrap()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A data dir that successive `berth serve` processes share, and the workspaces
/// made in it. On drop (also when the test fails) the serve is killed and every
/// runtime resource of the workspaces is removed directly.
pub(crate) struct Rig {
    dir: tempfile::TempDir,
    serve: Option<Serve>,
    ids: Vec<String>,
    _lock: MachineLock,
}

impl Rig {
    pub(crate) fn new() -> Rig {
        let lock = MachineLock::acquire();
        let dir = tempfile::tempdir().unwrap();
        // Workspace users traverse the data dir's parents to reach their homes.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        Rig {
            dir,
            serve: None,
            ids: Vec::new(),
            _lock: lock,
        }
    }

    /// The process runtime's directory: homes, logs and state files.
    fn workspaces_dir(&self) -> PathBuf {
        self.dir.path().join("data").join("workspaces")
    }

    /// Starts `berth serve` (process runtime, the embedded SQLite in the data
    /// dir) and returns its URL once it listens.
    pub(crate) fn start_serve(&mut self) -> String {
        assert!(self.serve.is_none(), "a serve is running already");
        let (child, url) = crate::spawn_serve(self.dir.path(), "process", None);
        self.serve = Some(Serve {
            child,
            url: url.clone(),
        });
        url
    }

    /// The data dir a serve of this rig is given.
    pub(crate) fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Takes a `berth serve` started by other means (the README's own command)
    /// as this rig's, to be stopped and cleaned up after.
    pub(crate) fn adopt_serve(&mut self, child: Child, url: String) {
        assert!(self.serve.is_none(), "a serve is running already");
        self.serve = Some(Serve { child, url });
    }

    fn serve(&mut self) -> &mut Serve {
        self.serve.as_mut().expect("berth serve is not running")
    }

    /// SIGKILL: the control plane dies without any chance to clean up.
    fn kill9(&mut self) {
        let mut serve = self.serve.take().expect("berth serve is not running");
        serve.child.kill().unwrap();
        let status = serve.child.wait().unwrap();
        assert_eq!(status.signal(), Some(9), "berth serve exited with {status}");
    }

    /// SIGTERM, expecting a clean exit.
    pub(crate) fn stop(&mut self) {
        let mut serve = self.serve.take().expect("berth serve is not running");
        let pid = serve.child.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        let status = serve.child.wait().unwrap();
        assert!(
            status.success(),
            "berth serve exited with {status} after SIGTERM"
        );
    }

    pub(crate) async fn create_workspace(
        &mut self,
        api: &Client,
        name: &str,
        profile: &str,
    ) -> String {
        let ws = api
            .create_workspace(&WorkspaceCreate {
                name: name.into(),
                profile: Some(profile.into()),
                start: true,
                ..Default::default()
            })
            .await
            .unwrap();
        self.ids.push(ws.id.clone());
        ws.id
    }

    pub(crate) fn log(&self, id: &str) -> String {
        std::fs::read_to_string(self.workspaces_dir().join("logs").join(format!("{id}.log")))
            .unwrap_or_default()
    }

    /// How many times the runtime started the app (it logs each start).
    fn starts(&self, id: &str) -> usize {
        self.log(id).matches("berth: starting").count()
    }

    /// Polls the API until `ok` holds for workspace `id`; panics after 60 s with
    /// the workspace and its log.
    pub(crate) async fn wait_until(
        &self,
        api: &Client,
        id: &str,
        what: &str,
        ok: impl Fn(&Workspace) -> bool,
    ) -> Workspace {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ws = api.workspace(id).await.unwrap();
            if ok(&ws) {
                return ws;
            }
            assert!(
                Instant::now() < deadline,
                "workspace {} never became {what} in 60s: {ws:#?}\nlog:\n{}",
                ws.name,
                self.log(id)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The runtime's state file of `id`: its address slot and upstream.
    fn state(&self, id: &str) -> (u64, String) {
        self.state_if_any(id)
            .unwrap_or_else(|| panic!("workspace {id} has no state file"))
    }

    /// [`Rig::state`], if the workspace still has a state file.
    fn state_if_any(&self, id: &str) -> Option<(u64, String)> {
        let path = self.workspaces_dir().join("run").join(format!("{id}.json"));
        let text = std::fs::read(&path).ok()?;
        let state: serde_json::Value = serde_json::from_slice(&text).unwrap();
        Some((
            state["slot"].as_u64().unwrap(),
            state["upstream"].as_str().unwrap().to_owned(),
        ))
    }

    /// Checks that workspace `id` (named `name`) has exactly one of each runtime
    /// resource, all its processes in each of its cgroups, and that its app
    /// answers at its upstream from the host; returns what it saw.
    fn inspect(&self, id: &str, name: &str) -> Seen {
        let pids = pids(id);
        assert!(!pids.is_empty(), "{name}: no processes in its cgroup");
        for dir in cgroup_dirs(id) {
            assert_eq!(
                procs(&dir),
                pids,
                "{name}: the processes of {}",
                dir.display()
            );
        }
        let ns = format!("berth-{id}");
        let namespaces = output("ip", &["netns", "list"]);
        let named = namespaces
            .lines()
            .filter(|l| l.split_whitespace().next() == Some(ns.as_str()))
            .count();
        assert_eq!(named, 1, "{name}: one network namespace: {namespaces}");
        let (slot, upstream) = self.state(id);
        let gateway = firewall_elements(slot)
            .into_iter()
            .filter(|(set, _)| set == "gateway")
            .count();
        assert_eq!(
            gateway, 1,
            "{name}: one element in the firewall's gateway set (berth's port)"
        );
        assert!(!has_own_table(id), "{name}: no nftables table of its own");
        assert_eq!(
            host_veths(id),
            [format!("bw{slot}")],
            "{name}: one host-side veth, the state file's"
        );
        let inside = output("ip", &["-n", &ns, "-o", "link", "show", "type", "veth"]);
        assert_eq!(
            inside.lines().count(),
            1,
            "{name}: one veth in its namespace: {inside}"
        );
        assert_eq!(
            upstream,
            format!("{}:8888", workspace_ip(slot)),
            "{name}: the upstream is its slot's address"
        );
        assert_eq!(
            http_get(&upstream, "/"),
            // Every workspace here is the admin's.
            Ok((200, format!("admin-{name}"))),
            "{name}: its app answers at {upstream}"
        );
        Seen {
            pids,
            slot,
            upstream,
        }
    }

    /// Checks that nothing of workspace `id` (which had `slot`) is left.
    fn assert_gone(&self, id: &str, slot: u64) {
        for dir in cgroup_dirs(id) {
            assert!(!dir.exists(), "{} is left", dir.display());
        }
        let ns = format!("berth-{id}");
        assert!(
            !output("ip", &["netns", "list"])
                .lines()
                .any(|l| l.split_whitespace().next() == Some(ns.as_str())),
            "{id}: its network namespace is left"
        );
        assert_eq!(
            firewall_elements(slot),
            Vec::<(String, String)>::new(),
            "{id}: its firewall elements are left"
        );
        assert!(!has_own_table(id), "{id}: an nftables table is left");
        assert!(host_veths(id).is_empty(), "{id}: a veth is left");
        let link = format!("bw{slot}");
        assert!(
            !Command::new("ip")
                .args(["link", "show", "dev", &link])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .unwrap()
                .success(),
            "{id}: its host-side veth {link} is left"
        );
        let dir = self.workspaces_dir();
        for path in [
            dir.join("homes").join(id),
            dir.join("logs").join(format!("{id}.log")),
            dir.join("run").join(format!("{id}.json")),
        ] {
            assert!(!path.exists(), "{} is left", path.display());
        }
    }

    /// Deletes every workspace through the API (as an admin), waits until the
    /// controller has removed them, and checks that nothing of them is left.
    /// One whose deletion was asked for already (a README example's last
    /// step) may be gone by the time it is looked at.
    pub(crate) async fn delete_all(&mut self, api: &Client) {
        let all = api.workspaces(&WorkspaceQuery::default()).await.unwrap();
        let slots: Vec<(String, u64)> = all
            .items
            .iter()
            .filter_map(|w| Some((w.id.clone(), self.state_if_any(&w.id)?.0)))
            .collect();
        for w in all
            .items
            .iter()
            .filter(|w| w.deletion_requested_at.is_none())
        {
            let ws = api.delete_workspace(&w.id, false).await.unwrap();
            assert!(ws.deletion_requested_at.is_some());
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = api.workspaces(&WorkspaceQuery::default()).await.unwrap();
            if left.items.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "not deleted after 60s: {:#?}",
                left.items
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for (id, slot) in &slots {
            self.assert_gone(id, *slot);
        }
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        drop(self.serve.take());
        let dir = self.workspaces_dir();
        // Those made through the API here, and any other the runtime has a state
        // file of (made through the portal, say).
        let mut ids = self.ids.clone();
        if let Ok(files) = std::fs::read_dir(dir.join("run")) {
            ids.extend(files.filter_map(|f| {
                let name = f.ok()?.file_name().into_string().ok()?;
                name.strip_suffix(".json").map(str::to_owned)
            }));
        }
        ids.sort();
        ids.dedup();
        for id in &ids {
            force_remove(&dir, id);
        }
        // Homes are loop-mounted images: unmounted, the temporary dir goes
        // with them (and no loop device stays attached).
        if let Ok(homes) = std::fs::read_dir(dir.join("homes")) {
            for home in homes.flatten() {
                quietly("umount", &["-l", &home.path().to_string_lossy()]);
            }
        }
    }
}

/// What one inspection of a workspace saw.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    pids: Vec<u32>,
    slot: u64,
    upstream: String,
}

/// Whether the machine has the unified (v2) cgroup hierarchy rather than v1.
fn unified() -> bool {
    Path::new(CGROUP_ROOT).join("cgroup.controllers").is_file()
}

/// `id`'s cgroup directories as the runtime lays them out: one per v1
/// controller, or the one v2 directory.
fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    if unified() {
        vec![Path::new(CGROUP_ROOT).join("berth").join(id)]
    } else {
        CONTROLLERS.iter().map(|c| cgroup_dir(c, id)).collect()
    }
}

/// `id`'s cgroup directory of `controller` (v1), or its one directory (v2).
fn cgroup_dir(controller: &str, id: &str) -> PathBuf {
    let root = Path::new(CGROUP_ROOT);
    if unified() {
        root.join("berth").join(id)
    } else {
        root.join(controller).join("berth").join(id)
    }
}

/// The sorted pids in a cgroup directory; empty when it does not exist.
fn procs(dir: &Path) -> Vec<u32> {
    let text = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
    let mut pids: Vec<u32> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
    pids.sort_unstable();
    pids
}

/// The pids of workspace `id` (the runtime lists them from the pids controller).
fn pids(id: &str) -> Vec<u32> {
    procs(&cgroup_dir("pids", id))
}

/// Whether `pid` is a live process (not gone, not a zombie).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// How many OOM kills `id`'s memory cgroup counted.
fn oom_kills(id: &str) -> u64 {
    let file = if unified() {
        "memory.events"
    } else {
        "memory.oom_control"
    };
    std::fs::read_to_string(cgroup_dir("memory", id).join(file))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap()
}

/// The memory limit of `id`'s cgroup, in bytes.
fn memory_limit(id: &str) -> u64 {
    let file = if unified() {
        "memory.max"
    } else {
        "memory.limit_in_bytes"
    };
    let text = std::fs::read_to_string(cgroup_dir("memory", id).join(file)).unwrap();
    text.trim().parse().unwrap()
}

/// Whether workspace `id` has an nftables table of its own (as berth made
/// them before its shared table).
fn has_own_table(id: &str) -> bool {
    let table = format!("berth_{}", id.replace('-', "_"));
    output("nft", &["list", "tables"])
        .lines()
        .any(|l| l.split_whitespace().last() == Some(table.as_str()))
}

/// The elements of the interface of `slot` in the sets of berth's shared
/// nftables table: `(set, element)`.
fn firewall_elements(slot: u64) -> Vec<(String, String)> {
    let ifname = format!("\"bw{slot}\" ");
    let mut found = Vec::new();
    for set in ["gateway", "egress"] {
        // No table yet: no elements.
        let listed = Command::new("nft")
            .args(["list", "set", "inet", "berth", set])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&listed.stdout);
        let Some((_, elements)) = text.split_once("elements = {") else {
            continue;
        };
        let elements = elements.split('}').next().unwrap_or_default();
        found.extend(
            elements
                .split(',')
                .map(str::trim)
                .filter(|e| e.starts_with(&ifname))
                .map(|e| (set.to_owned(), e.to_owned())),
        );
    }
    found
}

/// The workspace-side address of a slot in `10.213.0.0/16`.
fn workspace_ip(slot: u64) -> std::net::Ipv4Addr {
    let base = u32::from(std::net::Ipv4Addr::new(10, 213, 0, 0));
    std::net::Ipv4Addr::from(base + u32::try_from(slot).unwrap() * 4 + 2)
}

/// The host's veth interfaces whose peer is in `id`'s network namespace.
fn host_veths(id: &str) -> Vec<String> {
    let ns = format!("berth-{id}");
    output("ip", &["-o", "link", "show", "type", "veth"])
        .lines()
        .filter(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            words.windows(2).any(|w| w[0] == "link-netns" && w[1] == ns)
        })
        .filter_map(|l| l.split_whitespace().nth(1))
        .map(|name| {
            name.trim_end_matches(':')
                .split('@')
                .next()
                .unwrap()
                .to_owned()
        })
        .collect()
}

/// Runs a program, expecting success, and returns its stdout.
fn output(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a program, ignoring its output and status.
fn quietly(program: &str, args: &[&str]) {
    let _ = Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

fn kill(pids: &[u32]) {
    let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
    let mut args = vec!["-KILL", "--"];
    args.extend(pids.iter().map(String::as_str));
    quietly("kill", &args);
}

/// Removes whatever a failed test left of workspace `id`, without berth.
fn force_remove(workspaces: &Path, id: &str) {
    let _ = if unified() {
        std::fs::write(cgroup_dir("freezer", id).join("cgroup.freeze"), "0")
    } else {
        std::fs::write(cgroup_dir("freezer", id).join("freezer.state"), "THAWED")
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pids(id).is_empty() && Instant::now() < deadline {
        kill(&pids(id));
        std::thread::sleep(Duration::from_millis(50));
    }
    for dir in cgroup_dirs(id) {
        let deadline = Instant::now() + Duration::from_secs(2);
        while dir.exists() && std::fs::remove_dir(&dir).is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    quietly("ip", &["netns", "delete", &format!("berth-{id}")]);
    let state = std::fs::read(workspaces.join("run").join(format!("{id}.json")))
        .ok()
        .and_then(|t| serde_json::from_slice::<serde_json::Value>(&t).ok());
    if let Some(slot) = state.as_ref().and_then(|s| s["slot"].as_u64()) {
        quietly("ip", &["link", "delete", &format!("bw{slot}")]);
        for (set, element) in firewall_elements(slot) {
            let element = format!("{{ {element} }}");
            quietly(
                "nft",
                &["delete", "element", "inet", "berth", &set, &element],
            );
        }
    }
}

/// `GET path` at `addr` (HTTP/1.0): the status and the body.
fn http_get(addr: &str, path: &str) -> Result<(u16, String), String> {
    http_get_with(addr, path, &[])
}

/// A GET with these request headers; the status and the body.
pub(crate) fn http_get_with(
    addr: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<(u16, String), String> {
    let addr: SocketAddr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
    let timeout = Duration::from_secs(5);
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(timeout)).unwrap();
    stream.set_write_timeout(Some(timeout)).unwrap();
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n{extra}\r\n")
        .map_err(|e| e.to_string())?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| e.to_string())?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no header end in {response:?}"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status in {head:?}"))?;
    Ok((status, body.to_owned()))
}

/// Logs in as the admin and returns a new API token (it outlives a restart).
pub(crate) async fn admin_token(url: &str) -> String {
    let mut session = Client::new(url, None).unwrap();
    session.login("admin", ADMIN_PASSWORD).await.unwrap();
    session
        .create_token(
            "admin",
            &TokenCreate {
                note: "e2e-process".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .token
}

pub(crate) async fn create_profile(api: &Client, name: &str, memory_bytes: u64, app: &str) {
    api.create_profile(&ProfileCreate {
        name: name.into(),
        display_name: name.into(),
        cpu: Some(0.25),
        memory_bytes: Some(memory_bytes),
        max_processes: Some(32),
        app: Some(App::Command {
            argv: vec!["python3".into(), "-c".into(), app.into()],
            strip_prefix: false,
        }),
        ..Default::default()
    })
    .await
    .unwrap();
}

fn condition<'a>(ws: &'a Workspace, kind: &str) -> Option<&'a Condition> {
    ws.conditions.iter().find(|c| c.kind == kind)
}

/// Running, and the controller saw the app answer.
pub(crate) fn ready(ws: &Workspace) -> bool {
    ws.state == "running" && condition(ws, "Ready").is_some_and(|c| c.status)
}

/// `berth serve` dies by SIGKILL with five workspaces running; they live on, and
/// a new serve on the same data dir and database re-adopts them: same processes,
/// one cgroup, namespace, veth and firewall element each. One whose app was killed
/// while no serve ran is seen to have exited and is restarted. Deleting them all
/// through the API leaves nothing behind.
#[tokio::test]
async fn a_sigkilled_serve_readopts_its_workspaces_on_restart() {
    let mut rig = Rig::new();
    let url = rig.start_serve();
    let token = admin_token(&url).await;
    let api = Client::new(&url, Some(token.clone())).unwrap();
    create_profile(&api, "web", 96 << 20, APP).await;
    let mut workspaces = Vec::new();
    for i in 1..=5 {
        let name = format!("ws{i}");
        let id = rig.create_workspace(&api, &name, "web").await;
        workspaces.push((id, name));
    }
    for (id, _) in &workspaces {
        rig.wait_until(&api, id, "running and ready", ready).await;
    }
    let before: Vec<Seen> = workspaces
        .iter()
        .map(|(id, name)| rig.inspect(id, name))
        .collect();

    rig.kill9();
    // The workspaces do not depend on the control plane.
    for ((id, name), seen) in workspaces.iter().zip(&before) {
        assert_eq!(pids(id), seen.pids, "{name}: its processes after SIGKILL");
        assert!(seen.pids.iter().all(|p| alive(*p)), "{name}: all alive");
        assert_eq!(
            http_get(&seen.upstream, "/"),
            Ok((200, format!("admin-{name}"))),
            "{name}: answers with no serve running"
        );
    }
    // While no serve runs, one app dies.
    let victim = 2;
    let (victim_id, victim_name) = &workspaces[victim];
    kill(&before[victim].pids);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pids(victim_id).is_empty() {
        assert!(Instant::now() < deadline, "{victim_name}: survives SIGKILL");
        std::thread::sleep(Duration::from_millis(20));
    }

    let url = rig.start_serve();
    // The token lives in the database, which the new serve shares.
    let api = Client::new(&url, Some(token)).unwrap();
    let restarted = rig
        .wait_until(&api, victim_id, "restarted after its app exited", |w| {
            ready(w) && condition(w, "AppExited").is_some_and(|c| c.status)
        })
        .await;
    let exited = condition(&restarted, "AppExited").unwrap();
    assert_eq!(exited.reason, "Exited", "{victim_name}: {exited:?}");
    assert!(
        exited.message.starts_with("the app exited"),
        "{victim_name}: {exited:?}"
    );
    assert_eq!(restarted.observed_generation, restarted.generation);
    let now = rig.inspect(victim_id, victim_name);
    assert!(
        now.pids.iter().all(|p| !before[victim].pids.contains(p)),
        "{victim_name}: new processes {:?}, old {:?}",
        now.pids,
        before[victim].pids
    );
    assert_eq!(
        (now.slot, &now.upstream),
        (before[victim].slot, &before[victim].upstream),
        "{victim_name}: its network is reused"
    );
    assert_eq!(rig.starts(victim_id), 2, "{victim_name}: started once more");

    // The first resync reconciled every workspace at once; a survivor's reconcile
    // probes its app for at most a second. Let any still in flight finish before
    // checking that none was restarted.
    tokio::time::sleep(Duration::from_secs(1)).await;
    for (i, (id, name)) in workspaces.iter().enumerate() {
        if i == victim {
            continue;
        }
        let ws = rig.wait_until(&api, id, "running and ready", ready).await;
        assert!(condition(&ws, "AppExited").is_none(), "{name}: {ws:#?}");
        assert_eq!(
            rig.inspect(id, name),
            before[i],
            "{name}: re-adopted as it was"
        );
        assert_eq!(rig.starts(id), 1, "{name}: never restarted");
    }

    rig.delete_all(&api).await;
    rig.stop();
}

/// An app that allocates past its profile's memory limit dies by the OOM killer;
/// the API says so (the `AppExited` condition), the controller restarts it, and
/// berth and another workspace running beside it are unaffected.
#[tokio::test]
async fn an_oom_killed_app_is_reported_and_restarted_and_spares_the_rest() {
    let mut rig = Rig::new();
    let url = rig.start_serve();
    let api = Client::new(&url, Some(admin_token(&url).await)).unwrap();
    create_profile(&api, "web", 96 << 20, APP).await;
    create_profile(&api, "hog", 64 << 20, HOG).await;
    let calm = rig.create_workspace(&api, "calm", "web").await;
    rig.wait_until(&api, &calm, "running and ready", ready)
        .await;
    let calm_before = rig.inspect(&calm, "calm");

    let hog = rig.create_workspace(&api, "hog", "hog").await;
    let ws = rig
        .wait_until(&api, &hog, "restarted after it exited", |w| {
            ready(w) && condition(w, "AppExited").is_some_and(|c| c.status)
        })
        .await;
    let exited = condition(&ws, "AppExited").unwrap();
    assert_eq!(exited.reason, "OOMKilled", "{exited:?}");
    assert_eq!(
        exited.message,
        "the app was killed at its memory limit (out of memory): allocating past the memory limit",
        "one line: what happened and the last line of the killed run's log"
    );
    assert_eq!(rig.starts(&hog), 2, "started once more after the OOM kill");
    assert!(rig
        .workspaces_dir()
        .join("homes")
        .join(&hog)
        .join("oom-once")
        .exists());
    rig.inspect(&hog, "hog");
    assert_eq!(
        memory_limit(&hog),
        64 << 20,
        "the restarted app has the profile's memory limit"
    );

    // berth and the other workspace are untouched.
    let serve = rig.serve();
    assert!(
        serve.child.try_wait().unwrap().is_none(),
        "berth serve runs"
    );
    assert_eq!(
        http_get(serve.addr(), "/healthz"),
        Ok((200, "ok".to_owned()))
    );
    let ws = rig
        .wait_until(&api, &calm, "running and ready", ready)
        .await;
    assert!(condition(&ws, "AppExited").is_none(), "{ws:#?}");
    assert_eq!(rig.inspect(&calm, "calm"), calm_before, "calm: untouched");
    assert_eq!(oom_kills(&calm), 0);
    assert_eq!(rig.starts(&calm), 1);

    rig.delete_all(&api).await;
    rig.stop();
}

/// A profile whose command is not installed: the app exits as it starts. It is
/// tried again 1 s, 2 s, 4 s and 8 s later, then stays `failed` with a
/// one-line reason; the start page and the workspace page say so, and a start
/// asked for tries again.
#[tokio::test]
async fn a_crash_looping_app_backs_off_and_ends_failed() {
    let mut rig = Rig::new();
    let url = rig.start_serve();
    let token = admin_token(&url).await;
    let api = Client::new(&url, Some(token.clone())).unwrap();
    api.create_profile(&ProfileCreate {
        name: "broken".into(),
        display_name: "Broken".into(),
        cpu: Some(0.25),
        memory_bytes: Some(64 << 20),
        app: Some(App::Command {
            argv: vec!["jupyter-not-installed".into(), "--port".into(), "1".into()],
            strip_prefix: false,
        }),
        ..Default::default()
    })
    .await
    .unwrap();
    let started = Instant::now();
    let id = rig.create_workspace(&api, "lab", "broken").await;
    let mut saw_retrying = false;
    let ws = loop {
        let ws = api.workspace(&id).await.unwrap();
        if condition(&ws, "StartFailed").is_some_and(|c| c.status) {
            break ws;
        }
        if condition(&ws, "BackOff").is_some_and(|c| c.status) {
            saw_retrying = true;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "not failed yet: {ws:#?}\n{}",
            rig.log(&id)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(saw_retrying, "backed off between tries");
    assert!(
        started.elapsed() >= Duration::from_secs(10),
        "the tries were spread out: {:?}",
        started.elapsed()
    );
    assert_eq!(ws.state, "failed");
    assert_eq!(rig.starts(&id), 5, "{}", rig.log(&id));
    let message = ws.message.clone().unwrap();
    assert!(!message.contains('\n'), "one line: {message}");
    assert!(
        message.starts_with("the app exited with code 1: ")
            && message.contains("jupyter-not-installed")
            && message.contains("gave up after 5 failed starts in a row"),
        "{message}"
    );
    let exited = condition(&ws, "AppExited").unwrap();
    assert_eq!(exited.reason, "Exited");
    assert!(exited.message.len() < 300, "{exited:?}");
    // It stays failed: nothing is tried while nobody asks.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(rig.starts(&id), 5);
    assert_eq!(api.workspace(&id).await.unwrap().state, "failed");

    // The workspace's URL shows why, and offers to try again.
    let serve = rig.serve();
    let (status, page) = http_get_with(
        serve.addr(),
        "/user/admin/lab/",
        &[
            ("Authorization", &format!("token {token}")),
            ("Accept", "text/html"),
        ],
    )
    .unwrap();
    assert_eq!(status, 503, "{page}");
    assert!(page.contains("This workspace failed to start."), "{page}");
    assert!(page.contains("gave up after 5 failed starts"), "{page}");

    // Asked again, it is tried again at once.
    api.start_workspace(&id).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while rig.starts(&id) < 6 {
        assert!(
            Instant::now() < deadline,
            "not tried again: {}",
            rig.log(&id)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    api.stop_workspace(&id).await.unwrap();
    rig.delete_all(&api).await;
    rig.stop();
}

/// An emptied database next to running workspaces is not taken for a fresh
/// install: `berth serve` refuses to start, saying why and how to recover, and
/// leaves the workspaces running; `--stop-orphans` then stops them and keeps
/// their files. A file that is no database is refused at once.
#[tokio::test]
async fn an_emptied_database_beside_running_workspaces_is_refused() {
    let mut rig = Rig::new();
    let url = rig.start_serve();
    let api = Client::new(&url, Some(admin_token(&url).await)).unwrap();
    create_profile(&api, "web", 96 << 20, APP).await;
    let id = rig.create_workspace(&api, "kept", "web").await;
    rig.wait_until(&api, &id, "running and ready", ready).await;
    let before = pids(&id);
    rig.stop();

    let db = rig.data_dir().join("db");
    for file in ["berth.db-wal", "berth.db-shm"] {
        let _ = std::fs::remove_file(db.join(file));
    }
    std::fs::write(db.join("berth.db"), "").unwrap();
    let serve = |extra: &[&str]| {
        Command::new(crate::BIN)
            .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
            .arg(rig.data_dir())
            .args(extra)
            .env("BERTH_ADMIN_PASSWORD", crate::ADMIN_PASSWORD)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    };
    let out = serve(&[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("holds 1 workspace(s) that the database")
            && err.contains(&id)
            && err.contains("berth serve --stop-orphans"),
        "{err}"
    );
    assert_eq!(pids(&id), before, "the workspace runs on, untouched");

    // Something that is no database at all: refused at once, by name.
    std::fs::write(db.join("berth.db"), "not a database\n".repeat(20)).unwrap();
    let started = Instant::now();
    let out = serve(&[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("is not a SQLite database"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5), "at once: {err}");
    std::fs::write(db.join("berth.db"), "").unwrap();

    // Recovery as the message says: the orphan is stopped, its files kept.
    let mut child = Command::new(crate::BIN)
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--stop-orphans",
            "--data-dir",
        ])
        .arg(rig.data_dir())
        .env("BERTH_ADMIN_PASSWORD", crate::ADMIN_PASSWORD)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let kept = rig
        .data_dir()
        .join("workspaces/kept")
        .join(format!("{id}.ext4"));
    while !(pids(&id).is_empty() && kept.exists()) {
        assert!(
            Instant::now() < deadline,
            "the orphan is stopped, its files kept"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Whether the serve at `addr` says it runs the controller.
fn leads(addr: &str) -> bool {
    let (status, metrics) = http_get(addr, "/metrics").unwrap();
    assert_eq!(status, 200);
    metrics
        .lines()
        .any(|l| l.trim() == "berth_controller_leader 1")
}

/// Two `berth serve` on one PostgreSQL and one data dir share the work: both
/// serve the API and the proxy, the first to start leads. A workspace created
/// through the follower is started by the leader at once: the resync is an
/// hour away, so only the store's change feed can have woken it. After a
/// `kill -9` of the leader, the follower takes over: it adopts what runs (not
/// restarted), starts what is asked of it, and proxies to both; the
/// workspace gateway, which both share, still answers the apps' API calls.
#[tokio::test]
async fn two_serves_on_one_postgres_share_the_work_and_survive_the_leaders_death() {
    let mut rig = Rig::new();
    let db = test_support::Engine::Postgres.fresh().await;
    // A port free on every address, for the gateway both replicas share.
    let gateway_port = std::net::TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let gateway = format!("{}:{gateway_port}", runtime_process::net::GATEWAY_IP);
    let env = [
        ("BERTH_CONTROLLER__RESYNC_SECS", "3600"),
        ("BERTH_GATEWAY_PORT", gateway_port.as_str()),
    ];
    let start = |rig: &Rig| {
        let (child, url) = crate::spawn_serve_with(rig.dir.path(), "process", Some(&db.url), &env);
        Serve { child, url }
    };
    let mut a = start(&rig);
    let token = admin_token(&a.url).await;
    let api_a = Client::new(&a.url, Some(token.clone())).unwrap();
    create_profile(&api_a, "web", 96 << 20, APP).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !leads(a.addr()) {
        assert!(Instant::now() < deadline, "the first serve does not lead");
        std::thread::sleep(Duration::from_millis(100));
    }
    let b = start(&rig);
    let api_b = Client::new(&b.url, Some(token.clone())).unwrap();
    assert!(!leads(b.addr()), "one leader");

    let auth = format!("token {token}");
    let through = |serve: &Serve, name: &str| {
        http_get_with(
            serve.addr(),
            &format!("/user/admin/{name}/"),
            &[("Authorization", &auth)],
        )
    };
    let one = rig.create_workspace(&api_b, "one", "web").await;
    rig.wait_until(&api_b, &one, "running and ready", ready)
        .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while through(&b, "one") != Ok((200, "admin-one".into())) {
        assert!(
            Instant::now() < deadline,
            "the follower does not proxy to it: {:?}",
            through(&b, "one")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(through(&a, "one"), Ok((200, "admin-one".into())));
    let seen = rig.inspect(&one, "one");

    // The leader dies. The other takes over and converges.
    a.child.kill().unwrap();
    let status = a.child.wait().unwrap();
    assert_eq!(status.signal(), Some(9), "berth serve exited with {status}");
    // The apps' API address outlives the replica that started them.
    let (status, _) = http_get(&gateway, "/hub/api/").unwrap();
    assert_eq!(status, 200, "the gateway answers through the other replica");
    let two = rig.create_workspace(&api_b, "two", "web").await;
    rig.wait_until(&api_b, &two, "running and ready", ready)
        .await;
    assert!(leads(b.addr()), "the follower leads");
    assert_eq!(rig.inspect(&one, "one"), seen, "one was adopted as it was");
    assert_eq!(rig.starts(&one), 1, "one was never restarted");
    assert_eq!(through(&b, "one"), Ok((200, "admin-one".into())));
    let deadline = Instant::now() + Duration::from_secs(10);
    while through(&b, "two") != Ok((200, "admin-two".into())) {
        assert!(Instant::now() < deadline, "{:?}", through(&b, "two"));
        std::thread::sleep(Duration::from_millis(50));
    }

    rig.delete_all(&api_b).await;
    rig.serve = Some(b);
    rig.stop();
}
