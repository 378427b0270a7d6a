//! A Kubernetes control plane for tests, as controller-runtime's envtest
//! makes one: a real `etcd` and `kube-apiserver` (built by
//! `scripts/install-kube`) on loopback, and no kubelet, no scheduler, no
//! controller manager. [`Node`] plays what those would do for berth's
//! objects: running each Pod's app as a local process ([`Node::start`]), or,
//! as kwok's nodes do, running nothing and reporting every Pod running
//! ([`Node::simulate`], for scale).
//!
//! Services get cluster IPs from a loopback range picked per control plane
//! (`127.X.0.0/16`), so that a test can listen on them; Pods get addresses
//! from another (`127.Y.0.0/16`).

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStatus,
    PersistentVolumeClaim, Pod, PodCondition, PodIP, PodStatus, Secret, Service,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::watcher;
use kube::{Client, CustomResourceExt, ResourceExt};
use serde_json::json;

use crate::crd::Workspace;

pub mod kubelet;

/// The Kubernetes version `scripts/install-kube` builds.
pub const KUBE_VERSION: &str = "1.37.2";

/// Where `scripts/install-kube` puts `kube-apiserver`, `etcd` and `helm`
/// (`BERTH_KUBE_BIN` overrides it).
pub fn bin_dir() -> PathBuf {
    std::env::var_os("BERTH_KUBE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| format!("/var/cache/berth-kube/v{KUBE_VERSION}/bin").into())
}

/// What is missing for a control plane, each named; empty when nothing is.
pub fn missing() -> Vec<String> {
    let mut missing: Vec<String> = ["kube-apiserver", "etcd"]
        .iter()
        .map(|b| bin_dir().join(b))
        .filter(|p| !p.is_file())
        .map(|p| format!("{} (scripts/install-kube builds it)", p.display()))
        .collect();
    for tool in ["openssl", "setpriv"] {
        if !["/usr/bin", "/bin"]
            .iter()
            .any(|d| Path::new(d).join(tool).is_file())
        {
            missing.push(format!("{tool} (scripts/install-deps installs it)"));
        }
    }
    missing
}

/// Whether a control plane can be started here, for a test: see [`present`].
pub fn available() -> bool {
    present(&missing())
}

/// Whether nothing a test needs is `missing`: where something is, it panics
/// under `CI` (where everything must be installed) and otherwise says the
/// test is skipped and returns false.
pub fn present(missing: &[String]) -> bool {
    assert!(
        missing.is_empty() || std::env::var_os("CI").is_none(),
        "missing: {}",
        missing.join(", ")
    );
    if !missing.is_empty() {
        eprintln!("skipped: missing {}", missing.join(", "));
    }
    missing.is_empty()
}

/// A running etcd and kube-apiserver. Dropping it stops both and removes
/// their files; [`ControlPlane::shared`] is never dropped, and its
/// processes die with the test process (`setpriv --pdeathsig`).
#[derive(Debug)]
pub struct ControlPlane {
    /// Dropped first (fields drop in order): the processes stop before
    /// their directory goes.
    _daemons: Daemons,
    dir: tempfile::TempDir,
    /// A kubeconfig for the cluster admin (token auth; the server's own
    /// self-signed certificate trusted).
    pub kubeconfig: PathBuf,
    /// The API server's URL.
    pub url: String,
    /// The range Services get their (loopback) cluster IPs from.
    pub service_cidr: String,
}

/// A random byte (of the clock and the pid) for picking loopback ranges.
fn random_byte(salt: u32) -> u8 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    (nanos ^ std::process::id().rotate_left(7) ^ salt.wrapping_mul(2654435761)).to_le_bytes()[1]
}

/// Removes the directories of control planes whose test process is gone
/// (a shared one outlives its process's end, unremoved).
fn remove_stale_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let ours = path.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
            n.starts_with("berth-envtest-") && !n.starts_with("berth-envtest-node-")
        });
        let pid = std::fs::read_to_string(path.join("pid")).unwrap_or_default();
        let dead = pid
            .trim()
            .parse::<u32>()
            .is_ok_and(|pid| !Path::new(&format!("/proc/{pid}")).exists());
        if ours && dead {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl ControlPlane {
    /// One control plane for the whole test process, started on first use.
    pub fn shared() -> &'static ControlPlane {
        static SHARED: OnceLock<ControlPlane> = OnceLock::new();
        SHARED.get_or_init(|| ControlPlane::start().expect("start kube-apiserver and etcd"))
    }

    /// Starts etcd and kube-apiserver and waits until the API server is
    /// ready and the Workspace CRD is established.
    pub fn start() -> Result<ControlPlane, String> {
        let missing = missing();
        if !missing.is_empty() {
            return Err(format!("missing: {}", missing.join(", ")));
        }
        remove_stale_dirs();
        let dir = tempfile::Builder::new()
            .prefix("berth-envtest-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let d = dir.path().to_owned();
        std::fs::write(d.join("pid"), std::process::id().to_string()).map_err(|e| e.to_string())?;
        let token = format!("berth-envtest-{}", std::process::id());
        std::fs::write(
            d.join("tokens.csv"),
            format!("{token},admin,admin-uid,system:masters\n"),
        )
        .map_err(|e| e.to_string())?;
        let key = d.join("sa.key");
        let status = Command::new("openssl")
            .args(["genrsa", "-out"])
            .arg(&key)
            .arg("2048")
            .stderr(Stdio::null())
            .status()
            .map_err(|e| format!("openssl: {e}"))?;
        if !status.success() {
            return Err("openssl genrsa failed".into());
        }
        let (client_port, peer_port, api_port) = (free_port(), free_port(), free_port());
        // 127.100-219: clear of 127.0.0.x and of the pod range's.
        let service_cidr = format!("127.{}.0.0/16", 100 + random_byte(1) % 120);
        let etcd_url = format!("http://127.0.0.1:{client_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let bin = bin_dir();
        let etcd: Vec<String> = vec![
            bin.join("etcd").display().to_string(),
            format!("--data-dir={}", d.join("etcd").display()),
            format!("--listen-client-urls={etcd_url}"),
            format!("--advertise-client-urls={etcd_url}"),
            format!("--listen-peer-urls={peer_url}"),
            format!("--initial-advertise-peer-urls={peer_url}"),
            format!("--initial-cluster=default={peer_url}"),
            "--log-level=error".into(),
            "--unsafe-no-fsync".into(),
        ];
        let apiserver: Vec<String> = vec![
            bin.join("kube-apiserver").display().to_string(),
            format!("--etcd-servers={etcd_url}"),
            "--bind-address=127.0.0.1".into(),
            format!("--secure-port={api_port}"),
            format!("--cert-dir={}", d.join("certs").display()),
            format!("--token-auth-file={}", d.join("tokens.csv").display()),
            "--authorization-mode=RBAC".into(),
            "--service-account-issuer=https://kubernetes.default.svc".into(),
            format!("--service-account-key-file={}", key.display()),
            format!("--service-account-signing-key-file={}", key.display()),
            format!("--service-cluster-ip-range={service_cidr}"),
            "--disable-admission-plugins=ServiceAccount".into(),
            "--v=0".into(),
        ];
        let daemons = Daemons::start(
            &d,
            vec![(etcd, "etcd.log"), (apiserver, "kube-apiserver.log")],
        )?;
        let url = format!("https://127.0.0.1:{api_port}");
        // The API server makes its own certificate (for 127.0.0.1) and CA
        // at start, in one file: clients trust that.
        let ca = d.join("certs").join("apiserver.crt");
        let deadline = Instant::now() + Duration::from_secs(60);
        while !std::fs::read_to_string(&ca).is_ok_and(|c| c.matches("END CERTIFICATE").count() == 2)
        {
            if Instant::now() > deadline {
                return Err(format!(
                    "kube-apiserver made no {} within 60 s",
                    ca.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let kubeconfig = d.join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: envtest\n  cluster:\n    server: {url}\n    certificate-authority: {}\nusers:\n- name: admin\n  user:\n    token: {token}\ncontexts:\n- name: envtest\n  context:\n    cluster: envtest\n    user: admin\n    namespace: default\ncurrent-context: envtest\n",
                ca.display()
            ),
        )
        .map_err(|e| e.to_string())?;
        let cp = ControlPlane {
            dir,
            kubeconfig,
            url,
            service_cidr,
            _daemons: daemons,
        };
        cp.wait_ready()?;
        Ok(cp)
    }

    /// The log of `etcd` or `kube-apiserver`.
    pub fn log(&self, which: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{which}.log"))).unwrap_or_default()
    }

    /// Polls `/readyz` and installs the CRD, on a thread and runtime of its
    /// own (the caller may be on a runtime).
    fn wait_ready(&self) -> Result<(), String> {
        std::thread::scope(|s| {
            s.spawn(|| self.wait_ready_on_this_thread())
                .join()
                .map_err(|_| "waiting for kube-apiserver panicked".to_string())?
        })
    }

    fn wait_ready_on_this_thread(&self) -> Result<(), String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(async {
            let client = self.client().await?;
            let deadline = Instant::now() + Duration::from_secs(90);
            loop {
                let req = http::Request::get("/readyz")
                    .body(Vec::new())
                    .expect("a request");
                match client.request_text(req).await {
                    Ok(body) if body.trim() == "ok" => break,
                    _ if Instant::now() > deadline => {
                        return Err(format!(
                            "kube-apiserver not ready after 90 s; its log ends:\n{}",
                            tail(&self.log("kube-apiserver"), 3000)
                        ))
                    }
                    _ => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
            install_crd(&client).await
        })
    }

    /// A client of the cluster admin; made on the caller's runtime.
    pub async fn client(&self) -> Result<Client, String> {
        client_from(&self.kubeconfig).await
    }
}

/// Processes that live as long as this value: each started through
/// `setpriv --pdeathsig` from a thread that waits until the value is dropped,
/// so that they die with it, or with the test process; each logs into a
/// file of its own.
#[derive(Debug)]
struct Daemons {
    stop: Option<std::sync::mpsc::Sender<()>>,
    keeper: Option<std::thread::JoinHandle<()>>,
}

impl Daemons {
    /// Starts each `(argv, log file name)` in order, logs under `logs`.
    fn start(logs: &Path, daemons: Vec<(Vec<String>, &'static str)>) -> Result<Daemons, String> {
        let logs = logs.to_owned();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let (started_tx, started_rx) = std::sync::mpsc::channel::<Result<(), String>>();
        let keeper = std::thread::spawn(move || {
            let mut children = Vec::new();
            let mut started = Ok(());
            for (argv, log) in &daemons {
                let spawned = std::fs::File::create(logs.join(log))
                    .and_then(|log| Ok((log.try_clone()?, log)))
                    .map_err(|e| e.to_string())
                    .and_then(|(out, err)| {
                        Command::new("setpriv")
                            .args(["--pdeathsig", "KILL", "--"])
                            .args(argv)
                            .stdin(Stdio::null())
                            .stdout(out)
                            .stderr(err)
                            .spawn()
                            .map_err(|e| format!("{}: {e}", argv[0]))
                    });
                match spawned {
                    Ok(child) => children.push(child),
                    Err(e) => {
                        started = Err(e);
                        break;
                    }
                }
            }
            let failed = started.is_err();
            let _ = started_tx.send(started);
            if !failed {
                let _ = stop_rx.recv();
            }
            for mut child in children.into_iter().rev() {
                let _ = child.kill();
                let _ = child.wait();
            }
        });
        started_rx
            .recv()
            .map_err(|_| "the keeper thread died".to_string())??;
        Ok(Daemons {
            stop: Some(stop_tx),
            keeper: Some(keeper),
        })
    }
}

impl Drop for Daemons {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(keeper) = self.keeper.take() {
            let _ = keeper.join();
        }
    }
}

/// The last `n` bytes of `s` (fewer, to start on a character): a log's end.
pub fn tail(s: &str, n: usize) -> &str {
    let mut start = s.len().saturating_sub(n);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// A client from a kubeconfig file.
pub async fn client_from(path: &Path) -> Result<Client, String> {
    let kubeconfig = Kubeconfig::read_from(path).map_err(|e| e.to_string())?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    Client::try_from(config).map_err(|e| e.to_string())
}

/// Applies the Workspace CRD and waits until it is served.
pub async fn install_crd(client: &Client) -> Result<(), String> {
    let crds = Api::<CustomResourceDefinition>::all(client.clone());
    let crd = Workspace::crd();
    let name = crd.name_any();
    crds.patch(
        &name,
        &PatchParams::apply("berth-envtest").force(),
        &Patch::Apply(&crd),
    )
    .await
    .map_err(|e| format!("apply the Workspace CRD: {e}"))?;
    let established = kube::runtime::conditions::is_crd_established();
    tokio::time::timeout(
        Duration::from_secs(30),
        kube::runtime::wait::await_condition(crds, &name, established),
    )
    .await
    .map_err(|_| "the Workspace CRD was not established within 30 s".to_string())?
    .map_err(|e| e.to_string())?;
    Ok(())
}

/// Makes namespace `name` (if missing).
pub async fn namespace(client: &Client, name: &str) -> Result<(), kube::Error> {
    let api = Api::<k8s_openapi::api::core::v1::Namespace>::all(client.clone());
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
    api.patch(
        name,
        &PatchParams::apply("berth-envtest"),
        &Patch::Apply(&ns),
    )
    .await?;
    Ok(())
}

/// The next Pod address: 127.Y.a.b, Y fixed per test process.
fn next_pod_ip() -> Ipv4Addr {
    static BASE: OnceLock<u8> = OnceLock::new();
    static NEXT: AtomicU32 = AtomicU32::new(1);
    // 127.220-249: clear of the service ranges (127.100-219).
    let base = *BASE.get_or_init(|| 220 + random_byte(2) % 30);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    Ipv4Addr::new(127, base, (n >> 8) as u8, n as u8)
}

/// A Pod the node runs.
#[derive(Debug, Clone)]
struct RunningPod {
    uid: String,
    labels: BTreeMap<String, String>,
    ip: Ipv4Addr,
    ready: bool,
    /// The app's process, while it runs.
    pid: Option<u32>,
    /// The claims it mounts.
    claims: Vec<String>,
}

#[derive(Debug, Default)]
struct NodeState {
    /// By Pod name.
    pods: HashMap<String, RunningPod>,
}

/// The node of one namespace: the kubelet (runs each Pod's container as a
/// local process, as its `securityContext`'s uid, and reports its status;
/// ends Pods being deleted), the volume provisioner (a directory per claim)
/// and kube-proxy (forwards each Service's cluster IP and port to a ready
/// Pod it selects).
///
/// Pods share the host's network here, so the node gives each its own
/// loopback address and runs its app with every `0.0.0.0` in its arguments
/// and environment replaced by it (where a real Pod would listen on all its
/// addresses), and with each volume's mount path replaced by the host
/// directory standing for it.
///
/// A simulated node ([`Node::simulate`]) plays the same parts without
/// processes or directories, as kwok's nodes do: each Pod is bound and
/// reported running and ready at once, each claim bound, and each Pod being
/// deleted deleted at once; it proxies no Service (nothing would answer).
#[derive(Debug)]
pub struct Node {
    kubelet: Kubelet,
    state: Arc<Mutex<NodeState>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// A real kubelet's and containerd's, on [`Node::kubelet`]; dropped
    /// after the tasks.
    host: Option<kubelet::Host>,
}

impl Drop for Node {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        for pod in self.state.lock().unwrap().pods.values() {
            if let Some(pid) = pod.pid {
                signal(pid, rustix::process::Signal::KILL);
            }
        }
    }
}

/// The name the node binds Pods to.
pub const NODE_NAME: &str = "berth-envtest-node";

fn signal(pid: u32, sig: rustix::process::Signal) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process(pid, sig);
    }
}

impl Node {
    /// Starts playing the node for `namespace`; claims' directories go
    /// under `root`.
    pub fn start(client: Client, namespace: &str, root: &Path) -> Node {
        let kubelet = Kubelet::Processes {
            root: root.to_owned(),
        };
        Node::play(client, namespace, kubelet, None)
    }

    /// Starts the tasks that play the node's parts for `namespace`: the
    /// kubelet (or the scheduler, for a real one), the provisioner and,
    /// unless simulated, kube-proxy.
    fn play(
        client: Client,
        namespace: &str,
        kubelet: Kubelet,
        host: Option<kubelet::Host>,
    ) -> Node {
        let state = Arc::new(Mutex::new(NodeState::default()));
        let ctx = NodeCtx {
            client,
            namespace: namespace.to_owned(),
            kubelet: kubelet.clone(),
            state: state.clone(),
        };
        let mut tasks = vec![
            tokio::spawn(ctx.clone().pods()),
            tokio::spawn(ctx.clone().claims()),
        ];
        if !matches!(kubelet, Kubelet::Simulated) {
            tasks.push(tokio::spawn(ctx.services()));
        }
        Node {
            kubelet,
            state,
            tasks,
            host,
        }
    }

    /// Starts a real node for `namespace` (see [`kubelet`]): containerd and
    /// the kubelet, which registers itself with `cp`, run Pods; this plays
    /// the rest, as for [`Node::start`]: the scheduler (each Pod bound to
    /// it), the provisioner (for each claim a `local` PersistentVolume, a
    /// directory under the node's own, bound) and kube-proxy. Returns once
    /// the Node is Ready.
    pub async fn kubelet(
        cp: &ControlPlane,
        client: Client,
        namespace: &str,
    ) -> Result<Node, String> {
        let kubeconfig = cp.kubeconfig.clone();
        let host = tokio::task::spawn_blocking(move || kubelet::Host::start(&kubeconfig))
            .await
            .map_err(|e| e.to_string())??;
        let nodes = Api::<k8s_openapi::api::core::v1::Node>::all(client.clone());
        let ready = |n: &k8s_openapi::api::core::v1::Node| {
            n.status
                .iter()
                .flat_map(|s| s.conditions.iter().flatten())
                .any(|c| c.type_ == "Ready" && c.status == "True")
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !nodes
            .get_opt(&host.name)
            .await
            .ok()
            .flatten()
            .is_some_and(|n| ready(&n))
        {
            if Instant::now() > deadline {
                return Err(format!(
                    "node {} not Ready within 60 s; the kubelet's log ends:\n{}",
                    host.name,
                    tail(&host.log("kubelet"), 4000)
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let kubelet = Kubelet::Real {
            node: host.name.clone(),
            volumes: host.volumes(),
        };
        Ok(Node::play(client, namespace, kubelet, Some(host)))
    }

    /// The node's name, as Pods are bound to it.
    pub fn name(&self) -> String {
        self.host
            .as_ref()
            .map_or(NODE_NAME.to_owned(), |h| h.name.clone())
    }

    /// On a real node, the address Pods reach this host at (the bridge's).
    pub fn gateway(&self) -> Option<Ipv4Addr> {
        self.host.as_ref().map(|h| h.gateway)
    }

    /// On a real node, what the containers of Pods named `pod` wrote.
    pub fn pod_log(&self, pod: &str) -> String {
        self.host
            .as_ref()
            .map(|h| h.pod_log(pod))
            .unwrap_or_default()
    }

    /// On a real node, the log of `kubelet` or `containerd`.
    pub fn log(&self, which: &str) -> String {
        self.host.as_ref().map(|h| h.log(which)).unwrap_or_default()
    }

    /// Starts playing a simulated node for `namespace` (see [`Node`]): no
    /// process, no directory, no Service proxied.
    pub fn simulate(client: Client, namespace: &str) -> Node {
        Node::play(client, namespace, Kubelet::Simulated, None)
    }

    /// The host directory of a claim.
    ///
    /// # Panics
    /// On a simulated node, which has none.
    pub fn claim_dir(&self, claim: &str) -> PathBuf {
        self.kubelet
            .root()
            .expect("a simulated node has no claim directories")
            .join(claim)
    }

    /// How many Pods the node has (bound, not yet gone).
    pub fn pods(&self) -> usize {
        self.state.lock().unwrap().pods.len()
    }

    /// Names of the Pods whose app runs.
    pub fn running(&self) -> Vec<String> {
        let state = self.state.lock().unwrap();
        state
            .pods
            .iter()
            .filter(|(_, p)| p.pid.is_some())
            .map(|(n, _)| n.clone())
            .collect()
    }
}

/// What the node's kubelet does with a Pod.
#[derive(Debug, Clone)]
enum Kubelet {
    /// Runs its app as a local process; claims are directories under `root`.
    Processes { root: PathBuf },
    /// Runs nothing and reports it running and ready (kwok's way).
    Simulated,
    /// A real kubelet, registered as `node`, runs it; claims are `local`
    /// volumes, directories under `volumes`.
    Real { node: String, volumes: PathBuf },
}

impl Kubelet {
    /// Where claims' directories go; none on a simulated node.
    fn root(&self) -> Option<&Path> {
        match self {
            Kubelet::Processes { root } | Kubelet::Real { volumes: root, .. } => Some(root),
            Kubelet::Simulated => None,
        }
    }
}

#[derive(Clone)]
struct NodeCtx {
    client: Client,
    namespace: String,
    kubelet: Kubelet,
    state: Arc<Mutex<NodeState>>,
}

impl NodeCtx {
    fn pods_api(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    async fn pods(self) {
        let stream = watcher(self.pods_api(), watcher::Config::default());
        let mut stream = std::pin::pin!(stream);
        loop {
            match stream.try_next().await {
                Ok(Some(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod))) => {
                    self.pod_event(pod).await
                }
                Ok(Some(watcher::Event::Delete(pod))) => {
                    // Gone without the node's word (deleted at once): end its app.
                    let gone = self.state.lock().unwrap().pods.remove(&pod.name_any());
                    if let Some(pid) = gone.and_then(|p| p.pid) {
                        signal(pid, rustix::process::Signal::KILL);
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) => return,
                Err(e) => {
                    tracing::debug!(error = %e, "envtest node: watching pods");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }

    async fn pod_event(&self, pod: Pod) {
        if let Kubelet::Real { node, .. } = &self.kubelet {
            return self.real_pod_event(pod, node).await;
        }
        let name = pod.name_any();
        let uid = pod.uid().unwrap_or_default();
        if pod.metadata.deletion_timestamp.is_some() {
            let grace = pod
                .metadata
                .deletion_grace_period_seconds
                .unwrap_or(30)
                .max(0) as u64;
            let me = self.clone();
            tokio::spawn(async move { me.end_pod(&name, &uid, grace).await });
            return;
        }
        let terminal = matches!(
            pod.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Succeeded" | "Failed")
        );
        let known = self.state.lock().unwrap().pods.contains_key(&name);
        if known || terminal {
            return;
        }
        let claims = pod
            .spec
            .iter()
            .flat_map(|s| s.volumes.iter().flatten())
            .filter_map(|v| v.persistent_volume_claim.as_ref())
            .map(|c| c.claim_name.clone())
            .collect();
        self.state.lock().unwrap().pods.insert(
            name.clone(),
            RunningPod {
                uid: uid.clone(),
                labels: pod.labels().clone(),
                ip: next_pod_ip(),
                ready: false,
                pid: None,
                claims,
            },
        );
        let me = self.clone();
        tokio::spawn(async move {
            if let Err(e) = me.run_pod(pod).await {
                tracing::warn!(pod = name, error = %e, "envtest node: pod failed to start");
            }
        });
    }

    /// For a real kubelet: binds a new Pod to its node, as the scheduler
    /// would, and follows its address and readiness for the Service proxy.
    async fn real_pod_event(&self, pod: Pod, node: &str) {
        let name = pod.name_any();
        let spec = pod.spec.clone().unwrap_or_default();
        if spec.node_name.is_none() && pod.metadata.deletion_timestamp.is_none() {
            let binding = json!({
                "apiVersion": "v1", "kind": "Binding",
                "metadata": {"name": name},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node},
            });
            if let Err(e) = self
                .pods_api()
                .create_subresource::<_, serde_json::Value>(
                    "binding",
                    &name,
                    &PostParams::default(),
                    &binding,
                )
                .await
            {
                tracing::warn!(pod = name, error = %e, "envtest node: bind");
            }
        }
        let status = pod.status.clone().unwrap_or_default();
        let ready = status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        let ip = status
            .pod_ip
            .as_deref()
            .and_then(|ip| ip.parse().ok())
            .unwrap_or(Ipv4Addr::UNSPECIFIED);
        let claims = spec
            .volumes
            .iter()
            .flatten()
            .filter_map(|v| v.persistent_volume_claim.as_ref())
            .map(|c| c.claim_name.clone())
            .collect();
        self.state.lock().unwrap().pods.insert(
            name,
            RunningPod {
                uid: pod.uid().unwrap_or_default(),
                labels: pod.labels().clone(),
                ip,
                ready,
                pid: None,
                claims,
            },
        );
    }

    /// SIGTERM, the grace period, SIGKILL; then the Pod object goes.
    async fn end_pod(&self, name: &str, uid: &str, grace: u64) {
        let pid = self
            .state
            .lock()
            .unwrap()
            .pods
            .get(name)
            .filter(|p| p.uid == uid)
            .and_then(|p| p.pid);
        if let Some(pid) = pid {
            signal(pid, rustix::process::Signal::TERM);
            let deadline = Instant::now() + Duration::from_secs(grace);
            while alive(pid) && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            signal(pid, rustix::process::Signal::KILL);
            while alive(pid) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        self.state.lock().unwrap().pods.remove(name);
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(kube::api::Preconditions {
                uid: Some(uid.to_owned()),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        let _ = self.pods_api().delete(name, &params).await;
    }

    async fn run_pod(&self, pod: Pod) -> Result<(), String> {
        let api = self.pods_api();
        let name = pod.name_any();
        let spec = pod.spec.clone().ok_or("a pod without spec")?;
        let container = spec.containers.first().ok_or("a pod without containers")?;
        let Some(ip) = self.state.lock().unwrap().pods.get(&name).map(|p| p.ip) else {
            return Ok(()); // Deleted meanwhile.
        };
        // Bound to this node, as the scheduler would.
        let binding = json!({
            "apiVersion": "v1", "kind": "Binding",
            "metadata": {"name": name},
            "target": {"apiVersion": "v1", "kind": "Node", "name": NODE_NAME},
        });
        api.create_subresource::<_, serde_json::Value>(
            "binding",
            &name,
            &PostParams::default(),
            &binding,
        )
        .await
        .map_err(|e| format!("bind: {e}"))?;
        let root = match &self.kubelet {
            Kubelet::Processes { root } => root,
            Kubelet::Real { .. } => unreachable!("a real kubelet runs its own Pods"),
            Kubelet::Simulated => {
                let running = ContainerState {
                    running: Some(ContainerStateRunning {
                        started_at: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                            k8s_openapi::jiff::Timestamp::now(),
                        )),
                    }),
                    ..ContainerState::default()
                };
                if let Some(p) = self.state.lock().unwrap().pods.get_mut(&name) {
                    p.ready = true;
                }
                self.set_status(&name, "Running", ip, true, running).await;
                return Ok(());
            }
        };

        // Volumes: mount path -> host directory.
        let mut mounts: Vec<(String, PathBuf)> = Vec::new();
        for m in container.volume_mounts.iter().flatten() {
            let volume = spec
                .volumes
                .iter()
                .flatten()
                .find(|v| v.name == m.name)
                .ok_or_else(|| format!("no volume {}", m.name))?;
            let claim = volume
                .persistent_volume_claim
                .as_ref()
                .ok_or("only claims are supported")?;
            let dir = root.join(&claim.claim_name);
            wait_for(|| dir.is_dir(), Duration::from_secs(30))
                .await
                .map_err(|_| format!("claim {} has no volume", claim.claim_name))?;
            mounts.push((m.mount_path.clone(), dir));
        }
        let security = spec.security_context.clone().unwrap_or_default();
        let c_security = container.security_context.clone().unwrap_or_default();
        let uid = c_security.run_as_user.or(security.run_as_user);
        let gid = c_security.run_as_group.or(security.run_as_group);
        if let Some(fs_group) = security.fs_group {
            for (_, dir) in &mounts {
                let _ = std::os::unix::fs::chown(dir, uid.map(|u| u as u32), Some(fs_group as u32));
            }
        }
        let local = |s: &str| -> String {
            let mut s = s.replace("0.0.0.0", &ip.to_string());
            for (path, dir) in &mounts {
                s = s.replace(path.as_str(), &dir.display().to_string());
            }
            s
        };

        // The environment, as the kubelet resolves it.
        let mut env: Vec<(String, String)> = Vec::new();
        let secrets = Api::<Secret>::namespaced(self.client.clone(), &self.namespace);
        for from in container.env_from.iter().flatten() {
            if let Some(r) = &from.secret_ref {
                let secret = wait_get(&secrets, &r.name).await?;
                for (k, v) in secret.data.unwrap_or_default() {
                    env.push((k, String::from_utf8_lossy(&v.0).into_owned()));
                }
            }
        }
        for var in container.env.iter().flatten() {
            let value = if let Some(v) = &var.value {
                expand(v, &env)
            } else if let Some(source) = &var.value_from {
                if let Some(field) = &source.field_ref {
                    match field.field_path.as_str() {
                        "status.podIP" => ip.to_string(),
                        "metadata.name" => name.clone(),
                        "metadata.namespace" => self.namespace.clone(),
                        other => return Err(format!("fieldRef {other} unsupported")),
                    }
                } else if let Some(key) = &source.secret_key_ref {
                    let secret = wait_get(&secrets, &key.name).await?;
                    let data = secret.data.unwrap_or_default();
                    let v = data.get(&key.key).ok_or("no such secret key")?;
                    String::from_utf8_lossy(&v.0).into_owned()
                } else {
                    return Err("unsupported env source".into());
                }
            } else {
                String::new()
            };
            env.push((var.name.clone(), value));
        }
        let env: Vec<(String, String)> = env.into_iter().map(|(k, v)| (k, local(&v))).collect();
        let argv: Vec<String> = container
            .command
            .iter()
            .flatten()
            .chain(container.args.iter().flatten())
            .map(|a| local(&expand(a, &env)))
            .collect();
        let program = argv.first().ok_or("a container without command")?;
        let log_dir = root.join(".logs");
        std::fs::create_dir_all(&log_dir).map_err(|e| e.to_string())?;
        let log = std::fs::File::create(log_dir.join(format!("{name}.log")))
            .map_err(|e| e.to_string())?;
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(&argv[1..])
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .envs(env)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .kill_on_drop(true);
        if let Some(dir) = &container.working_dir {
            cmd.current_dir(local(dir));
        }
        if let Some(uid) = uid {
            cmd.uid(uid as u32);
        }
        if let Some(gid) = gid {
            cmd.gid(gid as u32);
        }
        let mut child = cmd.spawn().map_err(|e| format!("{program}: {e}"))?;
        let pid = child.id().ok_or("no pid")?;
        {
            let mut state = self.state.lock().unwrap();
            match state.pods.get_mut(&name) {
                Some(p) => p.pid = Some(pid),
                None => {
                    // Deleted meanwhile.
                    signal(pid, rustix::process::Signal::KILL);
                    return Ok(());
                }
            }
        }
        let started = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::now(),
        );
        let running = ContainerState {
            running: Some(ContainerStateRunning {
                started_at: Some(started.clone()),
            }),
            ..ContainerState::default()
        };
        self.set_status(&name, "Running", ip, false, running.clone())
            .await;

        // Readiness: the probe's TCP port answers.
        let port = container
            .readiness_probe
            .as_ref()
            .and_then(|p| p.tcp_socket.as_ref())
            .and_then(|t| match &t.port {
                k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(p) => Some(*p),
                _ => None,
            });
        let exit = loop {
            tokio::select! {
                status = child.wait() => break status,
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
            if let Some(port) = port {
                let ready = self
                    .state
                    .lock()
                    .unwrap()
                    .pods
                    .get(&name)
                    .is_some_and(|p| p.ready);
                if !ready
                    && tokio::net::TcpStream::connect((ip, port as u16))
                        .await
                        .is_ok()
                {
                    if let Some(p) = self.state.lock().unwrap().pods.get_mut(&name) {
                        p.ready = true;
                    }
                    self.set_status(&name, "Running", ip, true, running.clone())
                        .await;
                }
            }
        };
        let deleting = {
            let mut state = self.state.lock().unwrap();
            match state.pods.get_mut(&name) {
                Some(p) => {
                    p.pid = None;
                    p.ready = false;
                    false
                }
                None => true,
            }
        };
        if deleting {
            return Ok(());
        }
        let code = match exit {
            Ok(s) => s.code().unwrap_or_else(|| {
                128 + std::os::unix::process::ExitStatusExt::signal(&s).unwrap_or(0)
            }),
            Err(_) => 255,
        };
        let terminated = ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code: code,
                reason: Some(if code == 0 { "Completed" } else { "Error" }.into()),
                started_at: Some(started),
                finished_at: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                    k8s_openapi::jiff::Timestamp::now(),
                )),
                ..ContainerStateTerminated::default()
            }),
            ..ContainerState::default()
        };
        let phase = if code == 0 { "Succeeded" } else { "Failed" };
        self.set_status(&name, phase, ip, false, terminated).await;
        Ok(())
    }

    async fn set_status(
        &self,
        name: &str,
        phase: &str,
        ip: Ipv4Addr,
        ready: bool,
        state: ContainerState,
    ) {
        let condition = |kind: &str, ok: bool| PodCondition {
            type_: kind.into(),
            status: if ok { "True" } else { "False" }.into(),
            ..PodCondition::default()
        };
        let status = PodStatus {
            phase: Some(phase.into()),
            pod_ip: Some(ip.to_string()),
            pod_ips: Some(vec![PodIP { ip: ip.to_string() }]),
            host_ip: Some("127.0.0.1".into()),
            conditions: Some(vec![
                condition("PodScheduled", true),
                condition("Initialized", true),
                condition("ContainersReady", ready),
                condition("Ready", ready),
            ]),
            container_statuses: Some(vec![ContainerStatus {
                name: "app".into(),
                ready,
                started: Some(phase == "Running"),
                state: Some(state),
                ..ContainerStatus::default()
            }]),
            ..PodStatus::default()
        };
        let patch = json!({"status": status});
        if let Err(e) = self
            .pods_api()
            .patch_status(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
        {
            tracing::debug!(pod = name, error = %e, "envtest node: pod status");
        }
    }

    /// Claims: a directory each (none on a simulated node), bound at once;
    /// removed when the claim goes (its protection finalizer lifted once no
    /// Pod of this node mounts it).
    async fn claims(self) {
        let api = Api::<PersistentVolumeClaim>::namespaced(self.client.clone(), &self.namespace);
        let stream = watcher(api.clone(), watcher::Config::default());
        let mut stream = std::pin::pin!(stream);
        loop {
            let claim = match stream.try_next().await {
                Ok(Some(watcher::Event::Apply(c) | watcher::Event::InitApply(c))) => c,
                Ok(Some(watcher::Event::Delete(c))) => {
                    if let Some(root) = self.kubelet.root() {
                        let _ = std::fs::remove_dir_all(root.join(c.name_any()));
                    }
                    if let Kubelet::Real { .. } = self.kubelet {
                        self.remove_volume(&c.name_any()).await;
                    }
                    continue;
                }
                Ok(Some(_)) => continue,
                Ok(None) => return,
                Err(e) => {
                    tracing::debug!(error = %e, "envtest node: watching claims");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            let name = claim.name_any();
            if claim.metadata.deletion_timestamp.is_some() {
                let me = self.clone();
                let api = api.clone();
                tokio::spawn(async move {
                    let in_use = || {
                        me.state
                            .lock()
                            .unwrap()
                            .pods
                            .values()
                            .any(|p| p.claims.contains(&name))
                    };
                    while in_use() {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    let patch = json!({"metadata": {"finalizers": null}});
                    let _ = api
                        .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
                        .await;
                });
                continue;
            }
            if let Some(root) = self.kubelet.root() {
                let _ = std::fs::create_dir_all(root.join(&name));
            }
            if let Kubelet::Real { node, volumes } = &self.kubelet {
                if claim
                    .spec
                    .as_ref()
                    .and_then(|s| s.volume_name.as_ref())
                    .is_none()
                {
                    if let Err(e) = self.bind_volume(&claim, node, &volumes.join(&name)).await {
                        tracing::warn!(claim = name, error = %e, "envtest node: volume");
                        continue;
                    }
                }
            }
            let bound = claim.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound");
            if !bound {
                let patch = json!({"status": {"phase": "Bound"}});
                let _ = api
                    .patch_status(&name, &PatchParams::default(), &Patch::Merge(patch))
                    .await;
            }
        }
    }

    /// The PersistentVolume of a claim, on a real node.
    fn volume_name(&self, claim: &str) -> String {
        format!("{}-{claim}", self.namespace)
    }

    /// A `local` PersistentVolume at `dir` on `node`, bound to `claim` both
    /// ways, as the volume controller binds one.
    async fn bind_volume(
        &self,
        claim: &PersistentVolumeClaim,
        node: &str,
        dir: &Path,
    ) -> Result<(), kube::Error> {
        let volumes = Api::<k8s_openapi::api::core::v1::PersistentVolume>::all(self.client.clone());
        let claims = Api::<PersistentVolumeClaim>::namespaced(self.client.clone(), &self.namespace);
        let name = claim.name_any();
        let volume = self.volume_name(&name);
        let spec = claim.spec.clone().unwrap_or_default();
        let size = spec
            .resources
            .as_ref()
            .and_then(|r| r.requests.as_ref())
            .and_then(|r| r.get("storage").cloned());
        let pv = json!({
            "apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": volume},
            "spec": {
                "capacity": {"storage": size},
                "accessModes": spec.access_modes,
                "storageClassName": spec.storage_class_name,
                "persistentVolumeReclaimPolicy": "Retain",
                "volumeMode": "Filesystem",
                "local": {"path": dir},
                "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                    {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]},
                ]}]}},
                "claimRef": {
                    "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                    "namespace": self.namespace, "name": name, "uid": claim.uid(),
                },
            },
        });
        let apply = PatchParams::apply("berth-envtest").force();
        volumes.patch(&volume, &apply, &Patch::Apply(&pv)).await?;
        let bound = json!({"status": {"phase": "Bound"}});
        volumes
            .patch_status(&volume, &PatchParams::default(), &Patch::Merge(&bound))
            .await?;
        claims
            .patch(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"volumeName": volume}})),
            )
            .await?;
        let status = json!({"status": {
            "phase": "Bound", "accessModes": spec.access_modes, "capacity": {"storage": size},
        }});
        claims
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
            .await?;
        Ok(())
    }

    /// Deletes a claim's PersistentVolume (lifting its protection).
    async fn remove_volume(&self, claim: &str) {
        let volumes = Api::<k8s_openapi::api::core::v1::PersistentVolume>::all(self.client.clone());
        let volume = self.volume_name(claim);
        let _ = volumes.delete(&volume, &DeleteParams::default()).await;
        let patch = json!({"metadata": {"finalizers": null}});
        let _ = volumes
            .patch(&volume, &PatchParams::default(), &Patch::Merge(patch))
            .await;
    }

    /// kube-proxy: a listener on each Service's cluster IP and port that
    /// forwards to a ready Pod it selects.
    async fn services(self) {
        let api = Api::<Service>::namespaced(self.client.clone(), &self.namespace);
        let stream = watcher(api, watcher::Config::default());
        let mut stream = std::pin::pin!(stream);
        let mut proxies: HashMap<String, (SocketAddr, tokio::task::JoinHandle<()>)> =
            HashMap::new();
        loop {
            match stream.try_next().await {
                Ok(Some(watcher::Event::Apply(s) | watcher::Event::InitApply(s))) => {
                    let name = s.name_any();
                    let spec = s.spec.clone().unwrap_or_default();
                    let Some(ip) = spec.cluster_ip.as_deref().and_then(|ip| ip.parse().ok()) else {
                        continue;
                    };
                    let Some(port) = spec.ports.iter().flatten().next() else {
                        continue;
                    };
                    let addr = SocketAddr::new(ip, port.port as u16);
                    let target = match &port.target_port {
                        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(p)) => {
                            *p as u16
                        }
                        _ => port.port as u16,
                    };
                    if proxies.get(&name).is_some_and(|(a, _)| *a == addr) {
                        continue;
                    }
                    let selector = spec.selector.clone().unwrap_or_default();
                    let state = self.state.clone();
                    let task = tokio::spawn(forward(addr, selector, target, state));
                    if let Some((_, old)) = proxies.insert(name, (addr, task)) {
                        old.abort();
                    }
                }
                Ok(Some(watcher::Event::Delete(s))) => {
                    if let Some((_, task)) = proxies.remove(&s.name_any()) {
                        task.abort();
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) => return,
                Err(e) => {
                    tracing::debug!(error = %e, "envtest node: watching services");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }
}

/// Forwards connections to `addr` to a ready Pod matching `selector`.
async fn forward(
    addr: SocketAddr,
    selector: BTreeMap<String, String>,
    port: u16,
    state: Arc<Mutex<NodeState>>,
) {
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(%addr, error = %e, "envtest node: cannot listen for a service");
            return;
        }
    };
    while let Ok((mut inbound, _)) = listener.accept().await {
        let target = state
            .lock()
            .unwrap()
            .pods
            .values()
            .find(|p| p.ready && selector.iter().all(|(k, v)| p.labels.get(k) == Some(v)))
            .map(|p| p.ip);
        // No ready endpoint: the connection is refused (closed), as kube-proxy's.
        let Some(ip) = target else { continue };
        tokio::spawn(async move {
            if let Ok(mut outbound) = tokio::net::TcpStream::connect((ip, port)).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}

fn alive(pid: u32) -> bool {
    // A zombie counts as gone: its parent (the node) reaps it in `run_pod`.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

async fn wait_for(mut done: impl FnMut() -> bool, within: Duration) -> Result<(), ()> {
    let deadline = Instant::now() + within;
    while !done() {
        if Instant::now() > deadline {
            return Err(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// A Secret, waiting a while for it to exist (a Pod may come first).
async fn wait_get(api: &Api<Secret>, name: &str) -> Result<Secret, String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match api.get_opt(name).await {
            Ok(Some(s)) => return Ok(s),
            _ if Instant::now() > deadline => return Err(format!("no secret {name}")),
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// `$(VAR)` references to variables defined before, as the kubelet expands
/// them; `$$` is a literal `$`.
fn expand(s: &str, env: &[(String, String)]) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(t) = tail.strip_prefix("$$") {
            out.push('$');
            rest = t;
        } else if let Some((name, after)) = tail
            .strip_prefix("$(")
            .and_then(|t| t.split_once(')'))
            .filter(|(n, _)| env.iter().any(|(k, _)| k == n))
        {
            let value = &env.iter().rev().find(|(k, _)| k == name).expect("found").1;
            out.push_str(value);
            rest = after;
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::expand;

    #[test]
    fn expands_as_the_kubelet() {
        let env = vec![("A".to_owned(), "1".to_owned())];
        assert_eq!(expand("x$(A)y", &env), "x1y");
        assert_eq!(expand("$$(A)", &env), "$(A)");
        assert_eq!(expand("$(B)", &env), "$(B)");
        assert_eq!(expand("$", &env), "$");
    }
}
