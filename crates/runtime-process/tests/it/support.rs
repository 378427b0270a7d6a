//! The test harness: checks prerequisites, hands out unique workspaces, and
//! deletes everything on drop (even when the test panics).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use model::{App, Name, ProfileSpec};
use runtime::{Observed, Runtime, WorkspaceRef};
use runtime_process::{Config, ProcessRuntime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The test app: optional actions chosen by environment variables, then an HTTP
/// server answering 200 on every path (single-threaded, so it works at the pids
/// limit).
pub const APP: &str = r#"
import http.server, json, os, socket, time, urllib.parse
env = os.environ
def conn(host, port, timeout=2):
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
        return "connected"
    except socket.timeout:
        return "timeout"
    except OSError as e:
        return e.strerror or str(e)
home = env["HOME"]
def save(name, value):
    with open(os.path.join(home, name + ".tmp"), "w") as f:
        json.dump(value, f)
    os.rename(os.path.join(home, name + ".tmp"), os.path.join(home, name))
if env.get("HOG_MB"):
    hog = b"x" * (int(env["HOG_MB"]) << 20)
if env.get("BUSY") and os.fork() == 0:
    while True:
        pass
if env.get("WRITE"):
    with open(os.path.join(home, "marker.txt"), "a") as f:
        f.write(env["WRITE"] + "\n")
if env.get("FORKS"):
    n, err = 0, ""
    for i in range(int(env["FORKS"])):
        try:
            pid = os.fork()
        except OSError as e:
            err = e.strerror
            break
        if pid == 0:
            time.sleep(3600)
            os._exit(0)
        n += 1
    save("forks.json", {"forked": n, "error": err})
if env.get("FILL"):
    # Fills the home until the disk says no; the result goes into blocks
    # taken before, so that it can be written with the disk full.
    tmp = os.path.join(home, "fill.json.tmp")
    with open(tmp, "wb") as f:
        f.write(b" " * 4096)
    written, err = 0, ""
    try:
        with open(os.path.join(home, "fill.bin"), "ab") as f:
            while True:
                f.write(b"x" * (1 << 20))
                f.flush()
                written += 1
    except OSError as e:
        err = e.strerror
    with open(tmp, "r+b") as f:
        f.write(json.dumps({"written_mb": written, "error": err}).encode())
    os.rename(tmp, os.path.join(home, "fill.json"))
if env.get("DF"):
    import subprocess
    df = subprocess.run(["df", "-B1", "--output=size,avail", home], capture_output=True, text=True).stdout.split()
    save("df.json", {"size": int(df[2]), "avail": int(df[3])})
if env.get("CHECKS"):
    r = {"uid": os.getuid(), "hostname": socket.gethostname(),
         "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
         "home_entries": os.listdir("/home")}
    import subprocess
    u = subprocess.run(["unshare", "--user", "--map-root-user", "true"], capture_output=True, text=True)
    r["unshare_user"] = "works" if u.returncode == 0 else u.stderr.strip()
    # keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 1): allowed to
    # any user by the kernel, refused by berth's seccomp filter (x86_64 numbers).
    import ctypes, platform
    if platform.machine() == "x86_64":
        libc = ctypes.CDLL(None, use_errno=True)
        rc = libc.syscall(250, 0, -3, 1)
        r["keyctl"] = "works" if rc >= 0 else os.strerror(ctypes.get_errno())
        r["getppid"] = libc.syscall(110) >= 0
    r["writable"] = []
    for d in ["/", "/usr", "/etc", "/dev", "/dev/shm", "/tmp", home, "/home", "/proc"]:
        try:
            open(os.path.join(d, "berth-test"), "w").close()
            r["writable"].append(d)
        except OSError:
            pass
    try:
        r["other_home"] = os.listdir(env["OTHER_HOME"])
    except OSError as e:
        r["other_home"] = e.strerror
    api = urllib.parse.urlsplit(env["BERTH_API_URL"])
    r["other_app"] = conn(*env["OTHER_APP"].split(":"))
    r["host_loopback"] = conn("127.0.0.1", env["HOST_LOOPBACK_PORT"])
    r["host_api"] = conn(api.hostname, api.port)
    r["host_other_port"] = conn(api.hostname, env["HOST_OTHER_PORT"])
    r["host_lan_api"] = conn(env["HOST_LAN_IP"], api.port)
    if env.get("OUTSIDE"):
        r["outside"] = conn(*env["OUTSIDE"].split(":"))
    save("checks.json", r)
if env.get("SAVE_ENV"):
    save("env.json", dict(env))
if env.get("CONNECT"):
    save("connect.json", {t: conn(*t.rsplit(":", 1), timeout=3) for t in env["CONNECT"].split(",")})
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("hello %s %s" % (env["JUPYTERHUB_USER"], self.path)).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_PUT(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with open(os.path.join(home, os.path.basename(self.path)), "wb") as f:
            f.write(body)
        self.send_response(204)
        self.end_headers()
    def log_message(self, *args):
        pass
print("serving", flush=True)
http.server.HTTPServer(("0.0.0.0", int(env["PORT"])), H).serve_forever()
"#;

/// Fails (never skips) when the machine lacks what these tests need.
fn require() {
    let mut missing = Vec::new();
    for tool in [
        "bwrap",
        "ip",
        "nft",
        "setpriv",
        "setsid",
        "kill",
        "sh",
        "mount",
        "umount",
        "mkfs.ext4",
        "e2fsck",
        "resize2fs",
        "dumpe2fs",
        "debugfs",
    ] {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
            .unwrap_or(false);
        if !found {
            missing.push(tool.to_owned());
        }
    }
    if !Path::new("/usr/bin/python3").is_file() {
        missing.push("/usr/bin/python3".to_owned());
    }
    assert!(
        missing.is_empty(),
        "runtime-process tests need {missing:?}: run scripts/install-deps \
         (packages bubblewrap iproute2 nftables util-linux mount e2fsprogs procps python3)"
    );
    let uid = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("Uid:")
                .map(|v| v.split_whitespace().next().unwrap_or("").to_owned())
        })
        .unwrap_or_default();
    assert_eq!(
        uid, "0",
        "runtime-process tests must run as root (cgroups, network namespaces, nftables)"
    );
}

/// One test's runtime, data dir and workspaces.
pub struct Harness {
    pub rt: Arc<ProcessRuntime>,
    pub config: Config,
    _dir: tempfile::TempDir,
    ids: Mutex<Vec<String>>,
}

impl Harness {
    pub fn new(gateway_ports: Vec<u16>) -> Self {
        require();
        let dir = tempfile::tempdir().unwrap();
        // Workspace uids traverse the data dir to reach their home.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        let mut config = Config::new(dir.path().join("data"));
        config.cgroup_parent = format!("berth-test-{}", short_id());
        config.gateway_ports = gateway_ports;
        config.stop_grace = Duration::from_secs(2);
        let rt = ProcessRuntime::new(config.clone()).expect("create the runtime");
        Harness {
            rt: Arc::new(rt),
            config,
            _dir: dir,
            ids: Mutex::new(Vec::new()),
        }
    }

    /// A workspace with a unique id running [`APP`] with `env`.
    pub fn workspace(&self, owner: &str, uid: u32, env: &[(&str, String)]) -> WorkspaceRef {
        let id = format!("t{}", short_id());
        self.ids.lock().unwrap().push(id.clone());
        let mut profile = ProfileSpec::standard();
        profile.memory_bytes = 256 << 20;
        profile.cpu_millis = 500;
        profile.max_processes = 64;
        profile.app = App::Command {
            argv: vec!["python3".into(), "-c".into(), APP.into()],
            strip_prefix: false,
        };
        WorkspaceRef {
            id: id.into(),
            owner: Name::parse(owner).unwrap(),
            name: Name::parse("lab").unwrap(),
            uid,
            base_url: format!("/user/{owner}/lab/"),
            profile_name: Name::parse("standard").unwrap(),
            profile,
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
            secrets: vec![],
            image: None,
        }
    }

    pub fn home(&self, id: &str) -> PathBuf {
        self.rt.home_dir(id)
    }

    /// Polls `observe` until `want` accepts it; panics with the log after 30s.
    pub async fn wait_for(&self, id: &str, want: impl Fn(&Observed) -> bool) -> Observed {
        wait_for(&self.rt, id, want).await
    }

    pub async fn wait_running(&self, id: &str) -> String {
        match self
            .wait_for(id, |o| matches!(o, Observed::Running { .. }))
            .await
        {
            Observed::Running { upstream } => upstream.to_string(),
            _ => unreachable!(),
        }
    }
}

pub async fn wait_for(rt: &ProcessRuntime, id: &str, want: impl Fn(&Observed) -> bool) -> Observed {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let observed = rt.observe(&id.into()).await.unwrap();
        if want(&observed) {
            return observed;
        }
        assert!(
            Instant::now() < deadline,
            "workspace {id} still {observed:?} after 30s; log:\n{}",
            rt.log_tail(id, 4096)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let rt = self.rt.clone();
        let ids = std::mem::take(&mut *self.ids.lock().unwrap());
        // Async clean-up on a runtime of its own: Drop may run inside a panicking test.
        let result = std::thread::spawn(move || {
            let tokio = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            tokio.block_on(async {
                for id in ids {
                    if let Err(e) = rt.delete(&id.as_str().into(), false).await {
                        eprintln!("clean-up of workspace {id} failed: {e}");
                    }
                }
            });
            rt.cgroups().remove_parent()
        })
        .join();
        if let Ok(Err(e)) = result {
            eprintln!("clean-up of the cgroup parent failed: {e}");
        }
    }
}

fn short_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_owned()
}

/// `GET path` at `upstream`: the status and body, or an error (timeouts included).
pub async fn http_get(
    upstream: &str,
    path: &str,
    timeout: Duration,
) -> Result<(u16, String), String> {
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect(upstream)
            .await
            .map_err(|e| e.to_string())?;
        let request = format!("GET {path} HTTP/1.0\r\nHost: {upstream}\r\n\r\n");
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .await
            .map_err(|e| e.to_string())?;
        let status = response
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad response {response:?}"))?;
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        Ok((status, body))
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| "timed out".to_owned())?
}

/// Waits for a JSON file the app writes into its home.
pub async fn read_json(path: &Path) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            return serde_json::from_str(&text).unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What is left of the network of `id` once it had time to go: the kernel
/// takes a veth pair away with its namespace, soon after the namespace goes.
pub async fn network_gone(id: &str, upstream: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = network_leftovers(id, upstream).await;
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether anything of the network of `id` (slot from its upstream) is left.
pub async fn network_leftovers(id: &str, upstream: &str) -> Vec<String> {
    let mut left = Vec::new();
    if Path::new(&format!("/run/netns/berth-{id}")).exists() {
        left.push(format!("netns berth-{id}"));
    }
    let ip: std::net::Ipv4Addr = upstream.split(':').next().unwrap().parse().unwrap();
    let slot = (u32::from(ip) - u32::from(std::net::Ipv4Addr::new(10, 213, 0, 0))) / 4;
    let ifname = format!("bw{slot}");
    if std::path::Path::new(&format!("/sys/class/net/{ifname}")).exists() {
        left.push(format!("interface {ifname}"));
    }
    // Its elements in the shared firewall table, and a table of its own (as
    // a berth before the shared table made).
    for set in ["gateway", "egress"] {
        let out = tokio::process::Command::new("nft")
            .args(["list", "set", "inet", "berth", set])
            .output()
            .await
            .unwrap();
        if String::from_utf8_lossy(&out.stdout).contains(&format!("\"{ifname}\"")) {
            left.push(format!("nft elements of {ifname} in {set}"));
        }
    }
    let table = format!("berth_{}", id.replace('-', "_"));
    let out = tokio::process::Command::new("nft")
        .args(["list", "table", "inet", &table])
        .output()
        .await
        .unwrap();
    if out.status.success() {
        left.push(format!("nft table {table}"));
    }
    left
}

/// The conformance story's view of the process runtime: its app is [`APP`], or
/// JupyterLab from the managed environment.
pub struct ProcessSubject {
    pub h: Harness,
    pub owner: &'static str,
    pub uid: u32,
    pub jupyterlab: bool,
}

#[async_trait::async_trait]
impl runtime_conformance::Subject for ProcessSubject {
    fn runtime(&self) -> &dyn Runtime {
        &*self.h.rt
    }

    fn workspace(&self) -> WorkspaceRef {
        let mut ws = self.h.workspace(self.owner, self.uid, &[]);
        if self.jupyterlab {
            ws.profile.app = App::Jupyterlab;
            ws.profile.memory_bytes = 1 << 30;
        }
        ws
    }

    async fn app_answers(&self, ws: &WorkspaceRef, upstream: &model::Upstream) -> bool {
        let upstream = &upstream.to_string();
        let path = format!("{}api/status", ws.base_url);
        matches!(
            http_get(upstream, &path, Duration::from_secs(2)).await,
            Ok((200, _))
        )
    }

    async fn write_file(
        &self,
        ws: &WorkspaceRef,
        upstream: &model::Upstream,
        name: &str,
        content: &str,
    ) {
        let upstream = &upstream.to_string();
        let http = reqwest::Client::new();
        let base = format!("http://{upstream}{}", ws.base_url);
        let response = if self.jupyterlab {
            // Jupyter's contents API, with the XSRF cookie its pages hand out.
            let page = http.get(format!("{base}lab")).send().await.unwrap();
            let xsrf = page
                .headers()
                .get_all("set-cookie")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find_map(|c| c.strip_prefix("_xsrf="))
                .and_then(|c| c.split(';').next())
                .expect("JupyterLab sets an _xsrf cookie")
                .to_owned();
            http.put(format!("{base}api/contents/{name}"))
                .header("cookie", format!("_xsrf={xsrf}"))
                .header("x-xsrftoken", xsrf)
                .json(&serde_json::json!({"type": "file", "format": "text", "content": content}))
                .send()
                .await
                .unwrap()
        } else {
            http.put(format!("{base}{name}"))
                .body(content.to_owned())
                .send()
                .await
                .unwrap()
        };
        assert!(
            response.status().is_success(),
            "{:?}",
            response.text().await
        );
    }

    async fn read_file(&self, ws: &WorkspaceRef, name: &str) -> Option<String> {
        let path = self.h.home(&ws.id).join(name);
        let content = std::fs::read_to_string(&path).ok()?;
        // Written by the app, as the workspace uid.
        assert_eq!(
            std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&path).unwrap()),
            ws.uid
        );
        Some(content)
    }

    async fn leftovers(&self, ws: &WorkspaceRef, upstream: &model::Upstream) -> Vec<String> {
        let upstream = &upstream.to_string();
        let mut left = network_leftovers(&ws.id, upstream).await;
        if self.h.rt.cgroups().exists(&ws.id) {
            left.push(format!("cgroup of {}", ws.id));
        }
        for path in [self.h.home(&ws.id), self.h.rt.log_path(&ws.id)] {
            if path.exists() {
                left.push(path.display().to_string());
            }
        }
        left
    }

    fn start_timeout(&self) -> Duration {
        Duration::from_secs(60)
    }
}
