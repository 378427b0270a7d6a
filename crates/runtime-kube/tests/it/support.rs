//! What the tests share: the conformance story's view of the Kubernetes
//! runtime, with its operator running beside it.

use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Secret, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, ListParams};
use kube::Client;
use model::{App, IdleAction, Name, ProfileSpec, Secret as SecretValue, Upstream};
use runtime::{Runtime, WorkspaceRef};
use runtime_kube::crd::Workspace;
use runtime_kube::envtest::{ControlPlane, Node};
use runtime_kube::operator::{self, OperatorConfig};
use runtime_kube::{KubeRuntime, KubeRuntimeConfig};

/// The app the story runs: an HTTP server on the address in
/// `JUPYTERHUB_SERVICE_URL` under its prefix that answers `api/status`,
/// stores a PUT body as a file of its home and serves it back, and shows its
/// environment at `env`.
pub const APP: &str = r#"
import http.server, json, os, urllib.parse
env = os.environ
url = urllib.parse.urlsplit(env["JUPYTERHUB_SERVICE_URL"])
base = env["JUPYTERHUB_SERVICE_PREFIX"]
home = env["HOME"]
class H(http.server.BaseHTTPRequestHandler):
    def reply(self, code, body):
        self.send_response(code)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        rest = self.path[len(base):] if self.path.startswith(base) else None
        if rest == "api/status":
            return self.reply(200, b'{"ok": true}')
        if rest == "env":
            return self.reply(200, json.dumps(dict(env)).encode())
        if rest:
            try:
                with open(os.path.join(home, os.path.basename(rest)), "rb") as f:
                    return self.reply(200, f.read())
            except OSError:
                pass
        self.reply(404, b"")
    def do_PUT(self):
        rest = self.path[len(base):] if self.path.startswith(base) else ""
        body = self.rfile.read(int(self.headers["content-length"]))
        with open(os.path.join(home, os.path.basename(rest)), "wb") as f:
            f.write(body)
        self.reply(201, b"")
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer((url.hostname, url.port), H).serve_forever()
"#;

/// Whether the control plane's binaries are here; in CI they must be.
pub fn have_envtest() -> bool {
    runtime_kube::envtest::available()
}

/// A fresh namespace's name.
pub fn namespace_name() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("t-{}", &id[..12])
}

/// A workspace of `owner` running [`APP`] with a hub token in its secrets.
pub fn workspace(owner: &str, image: &str) -> WorkspaceRef {
    let id = uuid::Uuid::now_v7().to_string();
    let name = format!("w{}", &id[id.len() - 8..]);
    WorkspaceRef {
        base_url: format!("/user/{owner}/{name}/"),
        owner: Name::parse(owner).unwrap(),
        profile_name: Name::parse("standard").unwrap(),
        name: Name::parse(&name).unwrap(),
        id: id.as_str().into(),
        uid: 1000,
        profile: ProfileSpec {
            display_name: "Standard".into(),
            cpu_millis: 500,
            memory_bytes: 256 << 20,
            max_processes: 256,
            disk_quota_bytes: 64 << 20,
            idle_timeout_secs: None,
            idle_action: IdleAction::Stop,
            max_lifetime_secs: None,
            cost_per_hour_micros: 0,
            start_timeout_secs: 60,
            app: App::Command {
                argv: vec!["python3".into(), "-c".into(), APP.into()],
                strip_prefix: false,
            },
            egress: false,
        },
        env: vec![("GREETING".into(), "hello".into())],
        secrets: vec![(
            "JUPYTERHUB_API_TOKEN".into(),
            SecretValue::new("the-hub-token"),
        )],
        image: Some(image.into()),
    }
}

/// A namespace with berth's operator and runtime on it, and, on the envtest
/// control plane, the node.
pub struct Env {
    pub client: Client,
    pub namespace: String,
    pub rt: KubeRuntime,
    pub node: Option<Node>,
    pub image: String,
    /// Reach apps through the API server's Service proxy (a real cluster's
    /// Services are not reachable from the test), not at their address.
    pub through_api: bool,
    _root: Option<tempfile::TempDir>,
    operator: tokio::task::JoinHandle<()>,
}

impl Drop for Env {
    fn drop(&mut self) {
        self.operator.abort();
    }
}

impl Env {
    /// A client of the shared envtest control plane, and a fresh namespace.
    async fn fresh() -> (Client, String) {
        let client = ControlPlane::shared().client().await.expect("client");
        let namespace = namespace_name();
        runtime_kube::envtest::namespace(&client, &namespace)
            .await
            .expect("namespace");
        (client, namespace)
    }

    /// A fresh namespace on the shared envtest control plane.
    pub async fn envtest() -> Env {
        let (client, namespace) = Env::fresh().await;
        let root = tempfile::Builder::new()
            .prefix("berth-envtest-node-")
            .tempdir()
            .unwrap();
        let node = Node::start(client.clone(), &namespace, root.path());
        Env::with(
            client,
            namespace,
            Some(node),
            Some(root),
            "python:3 (the node runs the host's python3)".into(),
        )
    }

    /// A fresh namespace on the shared envtest control plane, with a real
    /// node (`Node::kubelet`).
    pub async fn kubelet() -> Env {
        let (client, namespace) = Env::fresh().await;
        let node = Node::kubelet(ControlPlane::shared(), client.clone(), &namespace)
            .await
            .expect("a real node");
        let image = runtime_kube::envtest::kubelet::JUPYTER_IMAGE.to_owned();
        Env::with(client, namespace, Some(node), None, image)
    }

    pub fn with(
        client: Client,
        namespace: String,
        node: Option<Node>,
        root: Option<tempfile::TempDir>,
        image: String,
    ) -> Env {
        let (c, ns) = (client.clone(), namespace.clone());
        let operator = tokio::spawn(async move {
            operator::run(
                c,
                OperatorConfig::default(),
                Some(&ns),
                std::future::pending(),
            )
            .await;
        });
        let rt = KubeRuntime::new(
            client.clone(),
            KubeRuntimeConfig {
                namespace: namespace.clone(),
                wait: Duration::from_secs(60),
                ..KubeRuntimeConfig::default()
            },
        );
        Env {
            client,
            namespace,
            rt,
            through_api: node.is_none(),
            node,
            image,
            _root: root,
            operator,
        }
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// `method path` of the app of `ws` behind `upstream`: the status and body.
    pub async fn call(
        &self,
        ws: &WorkspaceRef,
        upstream: &Upstream,
        method: http::Method,
        path: &str,
        body: &str,
    ) -> Option<(u16, String)> {
        if self.through_api {
            let uri = format!(
                "/api/v1/namespaces/{}/services/{}:8888/proxy{path}",
                self.namespace,
                Workspace::object_name(&ws.id)
            );
            let request = http::Request::builder()
                .method(method)
                .uri(uri)
                .body(body.as_bytes().to_vec())
                .unwrap();
            let call = self.client.send(request.map(Into::into));
            let response = tokio::time::timeout(Duration::from_secs(5), call)
                .await
                .ok()?
                .ok()?;
            let status = response.status().as_u16();
            let bytes = http_body_util::BodyExt::collect(response.into_body())
                .await
                .ok()?
                .to_bytes();
            return Some((status, String::from_utf8_lossy(&bytes).into_owned()));
        }
        let url = format!("http://{upstream}{path}");
        let response = reqwest::Client::new()
            .request(method, url)
            .body(body.to_owned())
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .ok()?;
        let status = response.status().as_u16();
        Some((status, response.text().await.ok()?))
    }

    /// GET `path` of the app of `ws` behind `upstream`.
    pub async fn get(
        &self,
        ws: &WorkspaceRef,
        upstream: &Upstream,
        path: &str,
    ) -> Option<(u16, String)> {
        self.call(ws, upstream, http::Method::GET, path, "").await
    }

    /// What is left in the namespace of the workspace's objects, and of its home.
    pub async fn leftovers(&self, ws: &WorkspaceRef) -> Vec<String> {
        let name = Workspace::object_name(&ws.id);
        let mut left = Vec::new();
        macro_rules! check {
            ($kind:ty, $what:literal) => {
                if self.api::<$kind>().get_opt(&name).await.unwrap().is_some() {
                    left.push(format!("{} {name}", $what));
                }
            };
        }
        check!(Workspace, "Workspace");
        check!(Pod, "Pod");
        check!(Service, "Service");
        check!(PersistentVolumeClaim, "PersistentVolumeClaim");
        check!(NetworkPolicy, "NetworkPolicy");
        check!(Secret, "Secret");
        let labelled = self
            .api::<Pod>()
            .list(&ListParams::default().labels(&format!("berth.dev/workspace={name}")))
            .await
            .unwrap();
        left.extend(
            labelled
                .items
                .iter()
                .map(|p| format!("labelled Pod {:?}", p.metadata.name)),
        );
        if let Some(node) = &self.node {
            let dir: PathBuf = node.claim_dir(&name);
            if dir.exists() {
                left.push(format!("home directory {}", dir.display()));
            }
        }
        left
    }
}

pub struct Subject {
    pub env: Env,
}

#[async_trait::async_trait]
impl runtime_conformance::Subject for Subject {
    fn runtime(&self) -> &dyn Runtime {
        &self.env.rt
    }

    fn workspace(&self) -> WorkspaceRef {
        workspace("alice", &self.env.image)
    }

    async fn app_answers(&self, ws: &WorkspaceRef, upstream: &Upstream) -> bool {
        let path = format!("{}api/status", ws.base_url);
        matches!(self.env.get(ws, upstream, &path).await, Some((200, _)))
    }

    async fn write_file(&self, ws: &WorkspaceRef, upstream: &Upstream, name: &str, content: &str) {
        let path = format!("{}{name}", ws.base_url);
        let put = self
            .env
            .call(ws, upstream, http::Method::PUT, &path, content)
            .await;
        assert!(matches!(put, Some((201, _))), "PUT {path}: {put:?}");
    }

    async fn read_file(&self, ws: &WorkspaceRef, name: &str) -> Option<String> {
        let Some(node) = self.env.node.as_ref() else {
            // On a real cluster, through the app (while it runs): its home is
            // on the cluster's storage.
            let observed = self.env.rt.observe(&ws.id).await.ok()?;
            let runtime::Observed::Running { upstream } = observed else {
                return None;
            };
            let path = format!("{}{name}", ws.base_url);
            return match self.env.get(ws, &upstream, &path).await {
                Some((200, body)) => Some(body),
                _ => None,
            };
        };
        let path = node.claim_dir(&Workspace::object_name(&ws.id)).join(name);
        let content = std::fs::read_to_string(&path).ok()?;
        // Written by the app, as the workspace's uid.
        assert_eq!(
            std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&path).unwrap()),
            ws.uid
        );
        Some(content)
    }

    async fn leftovers(&self, ws: &WorkspaceRef, upstream: &Upstream) -> Vec<String> {
        let mut left = self.env.leftovers(ws).await;
        let on_node = self.env.node.is_some();
        if on_node
            && tokio::net::TcpStream::connect(upstream.to_string())
                .await
                .is_ok()
        {
            left.push(format!("something listens at {upstream}"));
        }
        left
    }

    fn start_timeout(&self) -> Duration {
        Duration::from_secs(60)
    }
}
