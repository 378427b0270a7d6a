//! berth on Kubernetes, end to end, on a real kube-apiserver and etcd (the
//! test plays the node: `runtime_kube::envtest`): `berth serve` with
//! `runtime = "kubernetes"` on PostgreSQL, with the operator inside, runs a
//! workspace that its proxy reaches through the Service; two `berth operator
//! run` share one Lease, and killing the one that holds it moves the operator
//! to the other within the Lease's time, with no workspace lost. And on a
//! real node (`envtest::kubelet`: containerd and a kubelet on this machine),
//! JupyterLab in a Pod behind berth's proxy.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use client::Client;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::ResourceExt;
use runtime::Runtime;
use runtime_kube::crd::{State, Workspace};
use runtime_kube::envtest::{tail, ControlPlane, Node};
use test_support::Engine;

use crate::jupyterhub::{create_user, have_jupyter, logged_in, run_one_plus_one, Browser};
use crate::process::{admin_token, create_profile, http_get_with, ready, MachineLock};
use crate::{spawn_serve_on, spawn_serve_with, Killed, BIN};

use runtime_kube::envtest::available as have_envtest;

/// A client of the shared control plane, and a fresh namespace on it.
async fn fresh_namespace() -> (kube::Client, String) {
    let client = ControlPlane::shared().client().await.unwrap();
    let id = uuid::Uuid::new_v4().simple().to_string();
    let ns = format!("e2e-{}", &id[..10]);
    runtime_kube::envtest::namespace(&client, &ns)
        .await
        .unwrap();
    (client, ns)
}

/// A fresh namespace on the shared control plane, with the node playing
/// for it; the node's claims live under `root`.
async fn namespace(root: &Path) -> (kube::Client, String, Node) {
    let (client, ns) = fresh_namespace().await;
    let node = Node::start(client.clone(), &ns, root);
    (client, ns, node)
}

/// An app that answers `GET {prefix}` with `owner-name`, on the address of
/// `JUPYTERHUB_SERVICE_URL`.
const APP: &str = "import http.server, os, urllib.parse\n\
    u = urllib.parse.urlsplit(os.environ['JUPYTERHUB_SERVICE_URL'])\n\
    body = (os.environ['JUPYTERHUB_USER'] + '-' + os.environ['JUPYTERHUB_SERVER_NAME']).encode()\n\
    class H(http.server.BaseHTTPRequestHandler):\n    \
    def do_GET(self):\n        self.send_response(200); self.end_headers(); self.wfile.write(body)\n\
    http.server.HTTPServer((u.hostname, u.port), H).serve_forever()\n";

async fn wait_state(api: &Client, id: &str, want: &str) -> api_types::Workspace {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ws = api.workspace(id).await.unwrap();
        if ws.state == want {
            return ws;
        }
        assert_ne!(ws.state, "failed", "{ws:?}");
        assert!(Instant::now() < deadline, "never {want}: {ws:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_runs_workspaces_on_kubernetes_behind_its_proxy() {
    if !have_envtest() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let (client, ns, node) = namespace(root.path()).await;
    let db = Engine::Postgres.fresh().await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = ControlPlane::shared().kubeconfig.display().to_string();
    // The configuration names a profile; berth creates it at start.
    std::fs::write(
        dir.path().join("berth.toml"),
        "[profiles.small]\ndisplay_name = \"Small\"\ncpu = 0.5\nmemory_bytes = 268435456\n",
    )
    .unwrap();
    let (serve, url) = spawn_serve_with(
        dir.path(),
        "kubernetes",
        Some(&db.url),
        &[
            ("BERTH_KUBERNETES__KUBECONFIG", kubeconfig.as_str()),
            ("BERTH_KUBERNETES__NAMESPACE", ns.as_str()),
        ],
    );
    let _serve = Killed(serve);
    let token = admin_token(&url).await;
    let api = Client::new(&url, Some(token.clone())).unwrap();
    let small = api.profile("small").await.unwrap();
    assert_eq!((small.display_name.as_str(), small.cpu), ("Small", 0.5));
    create_profile(&api, "web", 128 << 20, APP).await;
    let ws = api
        .create_workspace(&api_types::WorkspaceCreate {
            name: "lab".into(),
            profile: Some("web".into()),
            owner: None,
            start: true,
        })
        .await
        .unwrap();
    let running = wait_state(&api, &ws.id, "running").await;

    // The Workspace object, as kubectl shows it.
    let workspaces = Api::<Workspace>::namespaced(client.clone(), &ns);
    let object = workspaces
        .get(&Workspace::object_name(&ws.id))
        .await
        .unwrap();
    assert_eq!(object.spec.owner, "admin");
    assert_eq!(object.spec.name, "lab");
    assert_eq!(object.status.unwrap().state, Some(State::Running));
    assert_eq!(running.id, ws.id);

    // Through berth's proxy, to the Service's cluster IP, to the Pod.
    let addr = url.trim_start_matches("http://");
    let auth = format!("token {token}");
    let through = || http_get_with(addr, "/user/admin/lab/", &[("Authorization", &auth)]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while through() != Ok((200, "admin-lab".into())) {
        assert!(
            Instant::now() < deadline,
            "not through the proxy: {:?}",
            through()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Without credentials, the proxy is the door, and it is shut.
    let (status, _) = http_get_with(addr, "/user/admin/lab/", &[]).unwrap();
    assert_ne!(status, 200);

    // Stopped: no Pod, the home stays; started again: a new Pod.
    api.stop_workspace(&ws.id).await.unwrap();
    wait_state(&api, &ws.id, "stopped").await;
    let pods = Api::<Pod>::namespaced(client.clone(), &ns);
    let name = Workspace::object_name(&ws.id);
    assert!(pods.get_opt(&name).await.unwrap().is_none(), "no Pod");
    assert!(node.claim_dir(&name).is_dir(), "the home stays");
    api.start_workspace(&ws.id).await.unwrap();
    wait_state(&api, &ws.id, "running").await;

    api.delete_workspace(&ws.id, false).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while workspaces.get_opt(&name).await.unwrap().is_some() || node.claim_dir(&name).exists() {
        assert!(Instant::now() < deadline, "the Workspace and its home stay");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `berth operator run` with the Lease of `lease_secs`, for namespace `ns`.
fn operator(dir: &Path, ns: &str, lease_secs: u64) -> Child {
    Command::new(BIN)
        .args(["operator", "run"])
        .current_dir(dir)
        .env(
            "BERTH_KUBERNETES__KUBECONFIG",
            &ControlPlane::shared().kubeconfig,
        )
        .env("BERTH_KUBERNETES__NAMESPACE", ns)
        .env("BERTH_KUBERNETES__LEASE_SECS", lease_secs.to_string())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start berth operator run")
}

/// The pid in the Lease's holder (`host-pid`), once someone holds it.
async fn holder(leases: &Api<Lease>) -> Option<u32> {
    let lease = leases.get_opt("berth-operator").await.ok()??;
    let holder = lease.spec?.holder_identity?;
    holder.rsplit_once('-')?.1.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leading_operator_moves_it_within_the_lease() {
    if !have_envtest() {
        return;
    }
    const LEASE_SECS: u64 = 3;
    let root = tempfile::tempdir().unwrap();
    let (client, ns, _node) = namespace(root.path()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut operators: Vec<Killed> = (0..2)
        .map(|_| Killed(operator(dir.path(), &ns, LEASE_SECS)))
        .collect();
    let leases = Api::<Lease>::namespaced(client.clone(), &ns);
    let deadline = Instant::now() + Duration::from_secs(30);
    let leader = loop {
        if let Some(pid) = holder(&leases).await {
            break pid;
        }
        assert!(Instant::now() < deadline, "nobody took the Lease");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let pids: Vec<u32> = operators.iter().map(|o| o.0.id()).collect();
    assert!(pids.contains(&leader), "{leader} is none of {pids:?}");

    // A workspace, run by the leader.
    let rt = runtime_kube::KubeRuntime::new(
        client.clone(),
        runtime_kube::KubeRuntimeConfig {
            namespace: ns.clone(),
            ..Default::default()
        },
    );
    let first = runtime_ref("first");
    rt.start(&first).await.unwrap();
    let until_running = |id: model::WorkspaceId| {
        let rt = &rt;
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                match rt.observe(&id).await.unwrap() {
                    runtime::Observed::Running { .. } => return Instant::now(),
                    other => assert!(Instant::now() < deadline, "{id} still {other:?}"),
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    until_running(first.id.clone()).await;
    let pods = Api::<Pod>::namespaced(client.clone(), &ns);
    let first_pod = pods
        .get(&Workspace::object_name(&first.id))
        .await
        .unwrap()
        .uid();

    // kill -9 the leader; a workspace created right after is run by the
    // other, within the Lease's time (and some for the start itself).
    let i = pids.iter().position(|p| *p == leader).unwrap();
    operators[i].0.kill().unwrap();
    operators[i].0.wait().unwrap();
    let killed = Instant::now();
    let second = runtime_ref("second");
    rt.start(&second).await.unwrap();
    let ran = until_running(second.id.clone()).await;
    let took = ran - killed;
    assert!(
        took < Duration::from_secs(LEASE_SECS * 2 + 5),
        "the operator moved after {took:?}"
    );
    let other = holder(&leases).await.unwrap();
    assert_eq!(other, pids[1 - i], "the other holds the Lease");
    eprintln!(
        "the operator moved from {leader} to {other}; a new workspace ran {took:?} after the kill"
    );

    // Nothing was lost: the first workspace runs in the same Pod.
    assert_eq!(
        pods.get(&Workspace::object_name(&first.id))
            .await
            .unwrap()
            .uid(),
        first_pod
    );
    assert!(matches!(
        rt.observe(&first.id).await.unwrap(),
        runtime::Observed::Running { .. }
    ));
}

/// A workspace of admin's named `name` running [`APP`], for the runtime
/// itself (no berth serve).
fn runtime_ref(name: &str) -> runtime::WorkspaceRef {
    let id = uuid::Uuid::now_v7().to_string();
    let mut profile = model::ProfileSpec::standard();
    profile.memory_bytes = 128 << 20;
    profile.disk_quota_bytes = 64 << 20;
    profile.app = model::App::Command {
        argv: vec!["python3".into(), "-c".into(), APP.into()],
        strip_prefix: false,
    };
    runtime::WorkspaceRef {
        id: id.as_str().into(),
        owner: model::Name::parse("admin").unwrap(),
        name: model::Name::parse(name).unwrap(),
        uid: 1000,
        base_url: format!("/user/admin/{name}/"),
        profile_name: model::Name::parse("standard").unwrap(),
        profile,
        env: vec![("JUPYTERHUB_SERVER_NAME".into(), name.into())],
        secrets: Vec::new(),
        image: None,
    }
}

/// JupyterLab on a real node: containerd and a kubelet on this machine run
/// the Pod the operator makes, from the image `scripts/build-kube-images`
/// builds (Debian and the managed JupyterLab environment); the unmodified
/// `jupyterhub-singleuser` in it logs a browser in through berth's OAuth
/// and answers through berth's proxy, via the Service; a kernel runs `1+1`.
/// A file written survives stop and start (the home is the claim's local
/// volume, bound by the test as a provisioner would), and deleting the
/// workspace leaves no Pod, claim or volume.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jupyterlab_runs_in_a_pod_on_a_real_kubelet_behind_berths_proxy() {
    if !have_envtest()
        || !runtime_kube::envtest::present(&runtime_kube::envtest::kubelet::missing())
        || !have_jupyter()
    {
        return;
    }
    let _lock = MachineLock::acquire();
    let cp = ControlPlane::shared();
    let (client, ns) = fresh_namespace().await;
    let node = Node::kubelet(cp, client.clone(), &ns).await.unwrap();
    // berth listens where Pods reach it: the node's bridge.
    let gateway = node.gateway().unwrap();
    let port = std::net::TcpListener::bind((gateway, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let hub = format!("http://{gateway}:{port}");
    let db = Engine::Postgres.fresh().await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = cp.kubeconfig.display().to_string();
    let (serve, url) = spawn_serve_on(
        &format!("{gateway}:{port}"),
        dir.path(),
        "kubernetes",
        Some(&db.url),
        &[
            ("BERTH_KUBERNETES__KUBECONFIG", kubeconfig.as_str()),
            ("BERTH_KUBERNETES__NAMESPACE", ns.as_str()),
            ("BERTH_KUBERNETES__HUB_URL", hub.as_str()),
            (
                "BERTH_KUBERNETES__IMAGE",
                runtime_kube::envtest::kubelet::JUPYTER_IMAGE,
            ),
        ],
    );
    let _serve = Killed(serve);
    assert_eq!(url, hub);
    let admin = Client::new(&url, Some(admin_token(&url).await)).unwrap();
    create_user(&admin, "alice").await;
    let (alice, alice_token) = logged_in(&url, "alice").await;
    // The built-in profile: JupyterLab as JupyterHub's single-user server.
    let ws = alice
        .create_workspace(&api_types::WorkspaceCreate {
            name: "default".into(),
            profile: Some("standard".into()),
            start: true,
            ..Default::default()
        })
        .await
        .unwrap();
    let pods = Api::<Pod>::namespaced(client.clone(), &ns);
    let name = Workspace::object_name(&ws.id);
    let until_ready =
        || async {
            let deadline = Instant::now() + Duration::from_secs(180);
            loop {
                let w = alice.workspace(&ws.id).await.unwrap();
                if ready(&w) {
                    return;
                }
                assert!(
                Instant::now() < deadline && w.state != "failed",
                "not ready: {w:#?}\npod: {:#?}\nthe app's log:\n{}\nthe kubelet's log ends:\n{}",
                pods.get_opt(&name).await.ok().flatten().and_then(|p| p.status),
                tail(&node.pod_log(&name), 4000),
                tail(&node.log("kubelet"), 3000)
            );
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        };
    until_ready().await;
    // A real Pod: an address from the node's CNI bridge, not the host's.
    let pod = pods.get(&name).await.unwrap();
    let status = pod.status.unwrap();
    let pod_ip: std::net::Ipv4Addr = status.pod_ip.unwrap().parse().unwrap();
    assert_eq!(pod_ip.octets()[..3], gateway.octets()[..3], "{pod_ip}");
    assert_eq!(
        pod.spec.unwrap().node_name.as_deref(),
        Some(node.name().as_str())
    );

    let prefix = "/user/alice/";
    let browser = Browser::login(&url, "alice", "alice-password").await;
    let page = browser.get(&format!("{prefix}lab")).await;
    let landed = page.url().path().to_owned();
    let status = page.status();
    let body = page.text().await.unwrap();
    assert_eq!(
        status,
        reqwest::StatusCode::OK,
        "JupyterLab through OAuth, at {landed}: {body:.2000}"
    );
    assert_eq!(landed, format!("{prefix}lab"));
    assert!(body.contains("JupyterLab"), "{body:.2000}");
    assert_eq!(run_one_plus_one(&browser, prefix).await, "2");
    // Without credentials, berth's proxy is the door, and it is shut.
    let r = reqwest::get(format!("{url}{prefix}lab")).await.unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::UNAUTHORIZED);

    // A file in the home, through JupyterLab's contents API and alice's
    // token; it outlives the Pod.
    let contents = |method: reqwest::Method| {
        reqwest::Client::new()
            .request(method, format!("{url}{prefix}api/contents/kept.txt"))
            .header("authorization", format!("token {alice_token}"))
    };
    let r = contents(reqwest::Method::PUT)
        .json(&serde_json::json!({"type": "file", "format": "text", "content": "on the claim"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "write: {}", r.status());
    alice.stop_workspace(&ws.id).await.unwrap();
    wait_state(&alice, &ws.id, "stopped").await;
    assert!(pods.get_opt(&name).await.unwrap().is_none(), "no Pod");
    alice.start_workspace(&ws.id).await.unwrap();
    until_ready().await;
    let r = contents(reqwest::Method::GET).send().await.unwrap();
    assert!(r.status().is_success(), "read: {}", r.status());
    let file: serde_json::Value = r.json().await.unwrap();
    assert_eq!(file["content"], "on the claim");

    // Deleted: no Pod, no claim, no volume.
    alice.delete_workspace(&ws.id, false).await.unwrap();
    let claims =
        Api::<k8s_openapi::api::core::v1::PersistentVolumeClaim>::namespaced(client.clone(), &ns);
    let volumes = Api::<k8s_openapi::api::core::v1::PersistentVolume>::all(client.clone());
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let left = (
            pods.get_opt(&name).await.unwrap().is_some(),
            claims.get_opt(&name).await.unwrap().is_some(),
            volumes
                .get_opt(&format!("{ns}-{name}"))
                .await
                .unwrap()
                .is_some(),
        );
        if left == (false, false, false) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "left (pod, claim, volume): {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
