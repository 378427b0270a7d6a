//! The `Workspace` custom resource (`berth.dev/v1alpha1`): what berth's
//! control plane writes for each workspace and `berth operator` reconciles.
//! The spec is everything the operator needs, so that it reads nothing else
//! (no store, no profile table); the status is what it observed.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The API group of berth's resources.
pub const GROUP: &str = "berth.dev";
/// The finalizer the operator puts on each Workspace, so that deleting one
/// waits until everything it made is gone.
pub const FINALIZER: &str = "berth.dev/cleanup";

/// What a workspace is: who owns it, what it runs, with what resources.
// Clippy reads kube's repeated `printcolumn(type_ = "string", …)` as
// duplicated attributes; each is a column of its own.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "berth.dev",
    version = "v1alpha1",
    kind = "Workspace",
    namespaced,
    status = "WorkspaceStatus",
    shortname = "bws",
    category = "berth",
    doc = "A berth workspace: an app (JupyterLab, VS Code, any HTTP server) in a Pod, with a persistent home",
    printcolumn(name = "Owner", type_ = "string", json_path = ".spec.owner"),
    printcolumn(name = "Workspace", type_ = "string", json_path = ".spec.name"),
    printcolumn(name = "Profile", type_ = "string", json_path = ".spec.profile"),
    printcolumn(name = "State", type_ = "string", json_path = ".status.state"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    selectable = ".spec.owner"
)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceSpec {
    /// berth's id of the workspace.
    #[schemars(length(min = 1, max = 60), pattern(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$"))]
    pub id: String,
    /// The owner's user name.
    #[schemars(length(min = 1, max = 63), pattern(r"^[a-z][a-z0-9-]*$"))]
    pub owner: String,
    /// The workspace's name (JupyterHub's server name; `default` for the
    /// unnamed one).
    #[schemars(length(min = 1, max = 63), pattern(r"^[a-z][a-z0-9-]*$"))]
    pub name: String,
    /// The profile it was started with (for people; the resources below are
    /// what counts).
    #[schemars(length(min = 1, max = 63))]
    pub profile: String,
    /// Whether the app should run.
    #[serde(default)]
    pub state: DesiredState,
    /// The container image.
    #[schemars(length(min = 1))]
    pub image: String,
    /// The app's command line (the container's `command`).
    #[schemars(length(min = 1))]
    pub command: Vec<String>,
    /// The port the app listens on.
    #[serde(default = "default_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: u16,
    /// The URL prefix the app serves under, `/user/{owner}/{name}/`.
    #[schemars(pattern(r"^/.*/$"))]
    pub base_url: String,
    /// The uid (and gid) the app runs as.
    #[schemars(range(min = 1))]
    pub uid: i64,
    /// The app's environment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    /// A Secret in the same namespace whose keys are added to the app's
    /// environment (its hub token), so that no secret is in this spec or the
    /// Pod's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
    pub resources: Resources,
    pub home: Home,
    /// Nodes the Pod may run on (a GPU profile's node pool).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Taints the Pod tolerates (a GPU node pool's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// Set anew to start an app that ended (`Failed`) once more: a Pod made
    /// for an older value is replaced (`kubectl rollout restart`'s idea).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restarted_at: Option<String>,
    /// Whether the app may reach the world outside the cluster; it always
    /// reaches berth's API and never another workspace.
    #[serde(default)]
    pub egress: bool,
}

fn default_port() -> u16 {
    8888
}

/// Whether a workspace's app should run.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum DesiredState {
    /// A Pod runs the app.
    #[default]
    Running,
    /// Hibernated: no Pod; the home and the Service (so the address) stay.
    Paused,
    /// No Pod; the home stays. (The Service stays too: for berth, a stopped
    /// workspace's server token is revoked, a paused one's is not.)
    Stopped,
}

/// One variable of the app's environment.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct EnvVar {
    #[schemars(length(min = 1), pattern(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"))]
    pub name: String,
    pub value: String,
}

/// What the app may use (the Pod's requests and limits).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Resources {
    /// CPU, in thousandths of a core (the limit; the request is the same).
    #[schemars(range(min = 1))]
    pub cpu_millis: u64,
    /// Memory, in bytes (the limit and the request).
    #[schemars(range(min = 1048576))]
    pub memory_bytes: u64,
    /// Most processes (and threads) the app may have; 0 for the node's
    /// default (Kubernetes limits pids per node, not per Pod).
    #[serde(default)]
    pub max_processes: u64,
    /// `nvidia.com/gpu` devices.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub gpus: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The persistent home (a PersistentVolumeClaim).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Home {
    /// The claim's size, in bytes.
    #[schemars(range(min = 1048576))]
    pub size_bytes: u64,
    /// The storage class; the cluster's default when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
    /// Keep the claim when the Workspace is deleted (it loses its owner
    /// reference and stays, named as before).
    #[serde(default)]
    pub keep_on_delete: bool,
}

/// A taint the Pod tolerates, as a Pod's `tolerations` entry.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Toleration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// `Exists` or `Equal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effect: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub toleration_seconds: Option<i64>,
}

/// What the operator observed.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceStatus {
    /// Where the workspace is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<State>,
    /// The spec's `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Where the app answers: the Service's cluster IP and port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Why it is where it is (a `Failed` app's exit), for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// `Ready` (the app answers), `PodScheduled`, `HomeBound`, as
    /// Kubernetes conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// Where a workspace is.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum State {
    /// Its Pod exists but the app is not ready.
    Starting,
    Running,
    /// Hibernated (spec `Paused`): no Pod.
    Paused,
    Stopped,
    /// The app exited or cannot start (see `message`).
    Failed,
    /// Being deleted.
    Deleting,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Starting => "Starting",
            State::Running => "Running",
            State::Paused => "Paused",
            State::Stopped => "Stopped",
            State::Failed => "Failed",
            State::Deleting => "Deleting",
        }
    }
}

/// A Kubernetes condition (`metav1.Condition`'s fields).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    pub reason: String,
    #[serde(default)]
    pub message: String,
    /// RFC 3339.
    pub last_transition_time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

impl Workspace {
    /// The name of the Workspace of berth's workspace `id`, and of everything
    /// made for it (Pod, Service, claim, policy, Secret): `ws-{id}`.
    pub fn object_name(id: &str) -> String {
        format!("ws-{id}")
    }
}

/// The CustomResourceDefinition, as YAML (`berth operator crd`, the Helm chart).
pub fn crd_yaml() -> String {
    use kube::CustomResourceExt;
    serde_norway::to_string(&Workspace::crd()).expect("a CRD serializes")
}
