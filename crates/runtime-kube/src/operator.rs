//! `berth operator`: reconciles each [`Workspace`] into the objects that run
//! it, with kube-rs's controller runtime:
//!
//! - a PersistentVolumeClaim for the home, which outlives stop and start and
//!   goes with the Workspace unless `spec.home.keepOnDelete`;
//! - a Service in front of the app (the address berth's proxy forwards to,
//!   kept while paused, so a resumed app answers where it did);
//! - a NetworkPolicy: in only from berth's Pods, out only to berth's API, DNS
//!   and, with `spec.egress`, the world outside the cluster;
//! - a Pod while `spec.state` is `Running`.
//!
//! Each is written with server-side apply under [`FIELD_MANAGER`] and owned by
//! the Workspace (owner references); the [`FINALIZER`] makes deleting a
//! Workspace wait until the operator has deleted them, so nothing is left
//! even where no garbage collector runs. A Pod's spec cannot change in place:
//! one made from an older spec (its `berth.dev/spec-hash` differs) is deleted
//! and made anew. The Pod never restarts its app by itself
//! (`restartPolicy: Never`): an app that exits leaves the Workspace `Failed`,
//! and berth's controller decides about starting it again (`restartedAt`).
//!
//! The watches of the owned objects feed both the reconciles' triggers and
//! stores ([`Children`]): a reconcile reads the children there, not from the
//! API server, and applies only one missing or made from another spec (each
//! carries the hash of the spec it was made from, [`SPEC_HASH`]), so one
//! that finds everything as it should be makes no call. Workspaces trigger a
//! reconcile only when their spec (generation) or finalizers change, not when
//! the operator writes their status.
//!
//! One reconcile makes its calls in a fixed order (finalizer; claim, Service,
//! policy; Pod; status), which the scripted-API tests assert call by call.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EnvFromSource, EnvVar as KEnvVar, EnvVarSource,
    ObjectFieldSelector, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    PersistentVolumeClaimVolumeSource, Pod, PodSecurityContext, PodSpec, Probe,
    ResourceRequirements, SeccompProfile, SecretEnvSource, SecurityContext, Service, ServicePort,
    ServiceSpec, TCPSocketAction, Toleration as KToleration, Volume, VolumeMount,
    VolumeResourceRequirements,
};
use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
    NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::finalizer::{self as fin, finalizer, Event};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{predicates, watcher, Predicate, WatchStreamExt};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::crd::{Condition, DesiredState, State, Workspace, WorkspaceStatus, FINALIZER};

/// The field manager of everything the operator applies.
pub const FIELD_MANAGER: &str = "berth-operator";
/// The annotation holding the hash of the spec an object was made from.
pub const SPEC_HASH: &str = "berth.dev/spec-hash";
/// The label naming the Workspace an object belongs to.
pub const WORKSPACE_LABEL: &str = "berth.dev/workspace";
/// The `Ready` condition's reason for an app its memory limit killed.
pub const OOM_KILLED: &str = "OOMKilled";
/// How long a stopping app has between SIGTERM and SIGKILL (JupyterHub's
/// KubeSpawner gives 1 s).
pub const GRACE_SECONDS: i64 = 5;

/// What the operator needs to know about the cluster around it.
#[derive(Debug, Clone)]
pub struct OperatorConfig {
    /// The namespace berth's own Pods run in.
    pub berth_namespace: String,
    /// Labels of berth's own Pods (its proxy and API): the only Pods that may
    /// connect to a workspace, and the ones a workspace may reach.
    pub berth_pod_labels: BTreeMap<String, String>,
    /// The port of berth's API, as its Pods listen.
    pub berth_api_port: u16,
    /// The cluster's own address ranges (Pods and Services), which a
    /// workspace allowed out never reaches as "outside".
    pub cluster_cidrs: Vec<String>,
    /// Most reconciles at once. Unbounded, thousands of new Workspaces
    /// start thousands of reconciles, each with a connection of its own, and
    /// the API server times their Service applies out (`benches/kube-scale.sh`
    /// at 5,000 stalled at 151).
    pub concurrency: u16,
}

impl Default for OperatorConfig {
    fn default() -> Self {
        OperatorConfig {
            berth_namespace: "berth".into(),
            berth_pod_labels: BTreeMap::from([("app.kubernetes.io/name".into(), "berth".into())]),
            berth_api_port: 8000,
            cluster_cidrs: vec!["10.0.0.0/8".into()],
            concurrency: 32,
        }
    }
}

/// Why a reconcile did not finish.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("workspace object without {0}")]
    Malformed(&'static str),
    #[error("waiting for {0} to go")]
    Waiting(String),
}

/// What every reconcile shares.
#[derive(Clone)]
pub struct Context {
    pub client: Client,
    pub config: OperatorConfig,
    pub children: Children,
    pub memory: Memory,
}

/// How often every child is applied again, whatever its hash says: a child
/// edited by hand (its spec changed, its hash annotation not) is put back
/// within this time.
pub const REASSERT: Duration = Duration::from_secs(3600);

/// What the operator did last for each Workspace (by uid), which its
/// stores may not show yet.
#[derive(Clone, Debug, Default)]
pub struct Memory(Arc<std::sync::Mutex<std::collections::HashMap<String, Remembered>>>);

#[derive(Debug, Clone)]
struct Remembered {
    /// The status last written.
    status: Option<WorkspaceStatus>,
    /// When every child was last applied, hash or not (or first seen).
    asserted: std::time::Instant,
}

impl Memory {
    /// Whether every child of `uid` is due to be applied again; the first
    /// time a Workspace is seen, it is not (its hashes are trusted).
    fn reassert_due(&self, uid: &str) -> bool {
        let mut memory = self.0.lock().unwrap();
        let now = std::time::Instant::now();
        let entry = memory.entry(uid.to_owned()).or_insert(Remembered {
            status: None,
            asserted: now,
        });
        if now.duration_since(entry.asserted) < REASSERT {
            return false;
        }
        entry.asserted = now;
        true
    }

    /// The status last written for `uid`, if any.
    fn status(&self, uid: &str) -> Option<WorkspaceStatus> {
        self.0.lock().unwrap().get(uid)?.status.clone()
    }

    fn wrote(&self, uid: &str, status: WorkspaceStatus) {
        if let Some(entry) = self.0.lock().unwrap().get_mut(uid) {
            entry.status = Some(status);
        }
    }

    fn forget(&self, uid: &str) {
        self.0.lock().unwrap().remove(uid);
    }
}

/// The objects the operator owns, as its watches last saw them.
#[derive(Clone, Debug)]
pub struct Children {
    pub pods: Store<Pod>,
    pub services: Store<Service>,
    pub claims: Store<PersistentVolumeClaim>,
    pub policies: Store<NetworkPolicy>,
    listed: Arc<tokio::sync::OnceCell<()>>,
}

/// What fills [`Children`].
pub struct ChildWriters {
    pub pods: reflector::store::Writer<Pod>,
    pub services: reflector::store::Writer<Service>,
    pub claims: reflector::store::Writer<PersistentVolumeClaim>,
    pub policies: reflector::store::Writer<NetworkPolicy>,
}

impl std::fmt::Debug for ChildWriters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChildWriters").finish_non_exhaustive()
    }
}

impl Children {
    /// Once each watch has listed what is there (until then, a store knows
    /// nothing). kube's `Store::wait_until_ready` wakes only the last of
    /// several tasks waiting at once, so one reconcile waits on it, and the
    /// others on this cell.
    pub async fn listed(&self) -> Result<(), Error> {
        self.listed
            .get_or_try_init(|| async {
                let gone = |_| Error::Malformed("a store's watch (gone)");
                self.pods.wait_until_ready().await.map_err(gone)?;
                self.services.wait_until_ready().await.map_err(gone)?;
                self.claims.wait_until_ready().await.map_err(gone)?;
                self.policies.wait_until_ready().await.map_err(gone)
            })
            .await
            .map(|_| ())
    }

    /// Empty stores, and their writers.
    pub fn new() -> (Children, ChildWriters) {
        let (pods, pods_w) = reflector::store();
        let (services, services_w) = reflector::store();
        let (claims, claims_w) = reflector::store();
        let (policies, policies_w) = reflector::store();
        (
            Children {
                pods,
                services,
                claims,
                policies,
                listed: Arc::default(),
            },
            ChildWriters {
                pods: pods_w,
                services: services_w,
                claims: claims_w,
                policies: policies_w,
            },
        )
    }
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Runs the operator over the Workspaces of `namespace` (every namespace with
/// `None`) until `shutdown` resolves.
pub async fn run(
    client: Client,
    config: OperatorConfig,
    namespace: Option<&str>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        match namespace {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        }
    }
    /// A watch of what the operator owns, kept in `writer` as it passes
    /// (without the managed fields, which no reconcile reads and which are
    /// most of a small object).
    fn owned<K>(
        api: Api<K>,
        writer: reflector::store::Writer<K>,
    ) -> impl Stream<Item = Result<K, watcher::Error>> + Send + 'static
    where
        K: Resource<DynamicType = ()>
            + Clone
            + std::fmt::Debug
            + serde::de::DeserializeOwned
            + Send
            + Sync
            + 'static,
    {
        let config = watcher::Config::default().labels(WORKSPACE_LABEL);
        let watch = watcher(api, config).modify(|o| o.managed_fields_mut().clear());
        reflector::reflector(writer, watch)
            .default_backoff()
            .touched_objects()
    }
    let (workspaces, workspaces_w) = reflector::store();
    let watch = watcher(
        api::<Workspace>(&client, namespace),
        watcher::Config::default(),
    )
    .modify(|ws| ws.managed_fields_mut().clear());
    let triggers = reflector::reflector(workspaces_w, watch)
        .default_backoff()
        .applied_objects()
        // Not the operator's own status writes.
        .predicate_filter(
            predicates::generation.combine(predicates::finalizers),
            Default::default(),
        );
    let (children, writers) = Children::new();
    let limits = kube::runtime::controller::Config::default().concurrency(config.concurrency);
    let ctx = Context {
        client: client.clone(),
        config,
        children,
        memory: Memory::default(),
    };
    Controller::for_stream(triggers, workspaces)
        .with_config(limits)
        .owns_stream(owned(api::<Pod>(&client, namespace), writers.pods))
        .owns_stream(owned(api::<Service>(&client, namespace), writers.services))
        .owns_stream(owned(
            api::<PersistentVolumeClaim>(&client, namespace),
            writers.claims,
        ))
        .owns_stream(owned(
            api::<NetworkPolicy>(&client, namespace),
            writers.policies,
        ))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, Arc::new(ctx))
        .for_each(|result| async move {
            match result {
                Ok((obj, _)) => tracing::debug!(workspace = obj.name, "reconciled"),
                // A watch failing (a 403 for want of a permission): the
                // stores, and so the reconciles, are blind.
                Err(e @ kube::runtime::controller::Error::QueueError(_)) => {
                    tracing::warn!(error = %e, "watching")
                }
                Err(e) => tracing::debug!(error = %e, "reconcile"),
            }
        })
        .await;
}

fn error_policy(ws: Arc<Workspace>, error: &ReconcileError, _: Arc<Context>) -> Action {
    match error {
        fin::Error::CleanupFailed(Error::Waiting(_))
        | fin::Error::ApplyFailed(Error::Waiting(_)) => Action::requeue(Duration::from_secs(1)),
        e => {
            tracing::warn!(workspace = ws.name_any(), error = %e, "reconcile failed");
            Action::requeue(Duration::from_secs(5))
        }
    }
}

/// The error a reconcile returns: its own, inside the finalizer's.
pub type ReconcileError = fin::Error<Error>;

/// One step toward a Workspace's spec.
pub async fn reconcile(ws: Arc<Workspace>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    let ns = ws.namespace().unwrap_or_else(|| "default".into());
    let api = Api::<Workspace>::namespaced(ctx.client.clone(), &ns);
    finalizer(&api, FINALIZER, ws, |event| async {
        match event {
            Event::Apply(ws) => apply(&ws, &ctx, &ns).await,
            Event::Cleanup(ws) => cleanup(&ws, &ctx, &ns).await,
        }
    })
    .await
}

fn apply_params() -> PatchParams {
    PatchParams::apply(FIELD_MANAGER).force()
}

/// The child in `store`, if it was made from `want`'s spec; else `want`
/// applied, and what the API server made of it.
async fn ensure<K>(
    store: &Store<K>,
    api: &Api<K>,
    ns: &str,
    want: K,
    reassert: bool,
) -> Result<Arc<K>, Error>
where
    K: Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::Serialize
        + serde::de::DeserializeOwned,
{
    let name = want.meta().name.clone().ok_or(Error::Malformed("name"))?;
    if let Some(have) = store.get(&ObjectRef::new(&name).within(ns)) {
        if !reassert && annotation(have.as_ref(), SPEC_HASH) == annotation(&want, SPEC_HASH) {
            return Ok(have);
        }
    }
    Ok(Arc::new(
        api.patch(&name, &apply_params(), &Patch::Apply(want))
            .await?,
    ))
}

async fn apply(ws: &Workspace, ctx: &Context, ns: &str) -> Result<Action, Error> {
    let client = &ctx.client;
    let children = &ctx.children;
    // Until each watch has listed what is there, a store knows nothing.
    children.listed().await?;
    let name = ws.name_any();
    let uid = ws.uid().ok_or(Error::Malformed("uid"))?;
    let owner = ws
        .controller_owner_ref(&())
        .ok_or(Error::Malformed("uid"))?;
    let reassert = ctx.memory.reassert_due(&uid);
    let claims = Api::<PersistentVolumeClaim>::namespaced(client.clone(), ns);
    let claim = claim(ws, &owner);
    let claim = ensure(&children.claims, &claims, ns, claim, reassert).await?;
    let services = Api::<Service>::namespaced(client.clone(), ns);
    let service = service(ws, &owner);
    let service = ensure(&children.services, &services, ns, service, reassert).await?;
    let policies = Api::<NetworkPolicy>::namespaced(client.clone(), ns);
    let policy = network_policy(ws, &owner, &ctx.config);
    ensure(&children.policies, &policies, ns, policy, reassert).await?;

    let pods = Api::<Pod>::namespaced(client.clone(), ns);
    let want = (ws.spec.state == DesiredState::Running).then(|| pod(ws, &owner));
    let mut current = children.pods.get(&ObjectRef::new(&name).within(ns));
    // What the operator said last (its memory is newer than the object).
    let written = ctx.memory.status(&uid);
    let said = written
        .as_ref()
        .or(ws.status.as_ref())
        .and_then(|s| s.state);
    if want.is_none()
        && current.is_none()
        && matches!(said, Some(State::Starting | State::Running | State::Failed))
    {
        // It had a Pod, which may have been made a moment ago and not be in
        // the store yet: before saying it is gone, ask.
        current = pods.get_opt(&name).await?.map(Arc::new);
    }
    // Whether the Pod there is (or, gone, would be) the spec's.
    let mut settled = true;
    match (want, &current) {
        (Some(want), None) => {
            current = Some(Arc::new(
                pods.patch(&name, &apply_params(), &Patch::Apply(want))
                    .await?,
            ));
        }
        (Some(want), Some(pod))
            if annotation(pod.as_ref(), SPEC_HASH) != annotation(&want, SPEC_HASH) =>
        {
            delete_pod(&pods, pod).await?;
            settled = false;
        }
        (None, Some(pod)) => {
            delete_pod(&pods, pod).await?;
            settled = false;
        }
        _ => {}
    }
    let status = status_of(ws, current.as_deref(), &service, &claim, settled);
    // Unchanged both in the object (which may be older than the last write)
    // and in what was written last: nothing to write.
    let unchanged =
        ws.status.as_ref() == Some(&status) && written.as_ref().is_none_or(|w| *w == status);
    if !unchanged {
        let api = Api::<Workspace>::namespaced(client.clone(), ns);
        let patch = json!({
            "apiVersion": "berth.dev/v1alpha1",
            "kind": "Workspace",
            "status": status,
        });
        api.patch_status(&name, &apply_params(), &Patch::Apply(patch))
            .await?;
        ctx.memory.wrote(&uid, status);
    }
    Ok(if settled {
        Action::requeue(Duration::from_secs(300))
    } else {
        Action::requeue(Duration::from_secs(1))
    })
}

/// Deletes a Pod (with its grace period) unless it is already going.
async fn delete_pod(pods: &Api<Pod>, pod: &Pod) -> Result<(), Error> {
    if pod.metadata.deletion_timestamp.is_none() {
        let params = DeleteParams {
            grace_period_seconds: Some(GRACE_SECONDS as u32),
            ..DeleteParams::default()
        };
        ignore_not_found(pods.delete(&pod.name_any(), &params).await)?;
    }
    Ok(())
}

fn ignore_not_found<T>(r: Result<T, kube::Error>) -> Result<(), kube::Error> {
    match r {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Deletes what the Workspace made; done when none of it is left (a kept
/// home stays, without its owner reference).
async fn cleanup(ws: &Workspace, ctx: &Context, ns: &str) -> Result<Action, Error> {
    let client = &ctx.client;
    let name = ws.name_any();
    let pods = Api::<Pod>::namespaced(client.clone(), ns);
    let mut left = Vec::new();
    if let Some(pod) = pods.get_opt(&name).await? {
        delete_pod(&pods, &pod).await?;
        left.push("its Pod");
    }
    let dp = DeleteParams::default();
    ignore_not_found(
        Api::<NetworkPolicy>::namespaced(client.clone(), ns)
            .delete(&name, &dp)
            .await,
    )?;
    ignore_not_found(
        Api::<Service>::namespaced(client.clone(), ns)
            .delete(&name, &dp)
            .await,
    )?;
    if let Some(secret) = &ws.spec.secret_name {
        ignore_not_found(
            Api::<k8s_openapi::api::core::v1::Secret>::namespaced(client.clone(), ns)
                .delete(secret, &dp)
                .await,
        )?;
    }
    let claims = Api::<PersistentVolumeClaim>::namespaced(client.clone(), ns);
    if ws.spec.home.keep_on_delete {
        // It stays, as nobody's: no garbage collector takes it with the Workspace.
        let patch = json!({"metadata": {"ownerReferences": null}});
        ignore_not_found(
            claims
                .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
                .await,
        )?;
    } else if let Some(claim) = claims.get_opt(&name).await? {
        if claim.metadata.deletion_timestamp.is_none() {
            ignore_not_found(claims.delete(&name, &dp).await)?;
        }
        left.push("its home");
    }
    if left.is_empty() {
        if let Some(uid) = ws.uid() {
            ctx.memory.forget(&uid);
        }
        Ok(Action::await_change())
    } else {
        Err(Error::Waiting(left.join(" and ")))
    }
}

fn annotation<'a>(obj: &'a impl Resource, key: &str) -> Option<&'a str> {
    obj.meta()
        .annotations
        .as_ref()?
        .get(key)
        .map(String::as_str)
}

/// Labels of everything made for `ws`.
fn labels(ws: &Workspace) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".into(), "berth-workspace".into()),
        ("app.kubernetes.io/managed-by".into(), FIELD_MANAGER.into()),
        (WORKSPACE_LABEL.into(), ws.name_any()),
        ("berth.dev/owner".into(), ws.spec.owner.clone()),
    ])
}

fn meta(ws: &Workspace, owner: &OwnerReference) -> ObjectMeta {
    ObjectMeta {
        name: Some(ws.name_any()),
        labels: Some(labels(ws)),
        owner_references: Some(vec![owner.clone()]),
        ..ObjectMeta::default()
    }
}

/// The [`SPEC_HASH`] of what `parts` serialize.
fn spec_hash(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for part in parts {
        h.update(part);
    }
    hex::encode(&h.finalize()[..8])
}

/// `object` with the hash of all of it in [`SPEC_HASH`].
fn stamped<K: Resource + serde::Serialize>(mut object: K) -> K {
    let hash = spec_hash(&[&serde_json::to_vec(&object).expect("an object serializes")]);
    object
        .meta_mut()
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(SPEC_HASH.into(), hash);
    object
}

fn selector(ws: &Workspace) -> BTreeMap<String, String> {
    BTreeMap::from([(WORKSPACE_LABEL.into(), ws.name_any())])
}

/// The home's claim.
pub fn claim(ws: &Workspace, owner: &OwnerReference) -> PersistentVolumeClaim {
    let mut meta = meta(ws, owner);
    if ws.spec.home.keep_on_delete {
        meta.owner_references = None;
    }
    stamped(PersistentVolumeClaim {
        metadata: meta,
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            storage_class_name: ws.spec.home.storage_class_name.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".into(),
                    Quantity(ws.spec.home.size_bytes.to_string()),
                )])),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        status: None,
    })
}

/// The Service in front of the app.
pub fn service(ws: &Workspace, owner: &OwnerReference) -> Service {
    stamped(Service {
        metadata: meta(ws, owner),
        spec: Some(ServiceSpec {
            selector: Some(selector(ws)),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: ws.spec.port.into(),
                target_port: Some(IntOrString::Int(ws.spec.port.into())),
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        status: None,
    })
}

/// In only from berth's Pods; out only to berth's API and DNS, and, with
/// `egress`, outside the cluster.
pub fn network_policy(
    ws: &Workspace,
    owner: &OwnerReference,
    config: &OperatorConfig,
) -> NetworkPolicy {
    let berth = NetworkPolicyPeer {
        pod_selector: Some(LabelSelector {
            match_labels: Some(config.berth_pod_labels.clone()),
            ..LabelSelector::default()
        }),
        namespace_selector: Some(LabelSelector {
            match_labels: Some(BTreeMap::from([(
                "kubernetes.io/metadata.name".into(),
                config.berth_namespace.clone(),
            )])),
            ..LabelSelector::default()
        }),
        ..NetworkPolicyPeer::default()
    };
    let tcp = |port: u16| NetworkPolicyPort {
        protocol: Some("TCP".into()),
        port: Some(IntOrString::Int(port.into())),
        ..NetworkPolicyPort::default()
    };
    let dns = NetworkPolicyEgressRule {
        to: Some(vec![NetworkPolicyPeer {
            namespace_selector: Some(LabelSelector::default()),
            pod_selector: Some(LabelSelector {
                match_labels: Some(BTreeMap::from([("k8s-app".into(), "kube-dns".into())])),
                ..LabelSelector::default()
            }),
            ..NetworkPolicyPeer::default()
        }]),
        ports: Some(
            ["UDP", "TCP"]
                .map(|protocol| NetworkPolicyPort {
                    protocol: Some(protocol.into()),
                    port: Some(IntOrString::Int(53)),
                    ..NetworkPolicyPort::default()
                })
                .into(),
        ),
    };
    let mut egress = vec![
        NetworkPolicyEgressRule {
            to: Some(vec![berth.clone()]),
            ports: Some(vec![tcp(config.berth_api_port)]),
        },
        dns,
    ];
    if ws.spec.egress {
        egress.push(NetworkPolicyEgressRule {
            to: Some(vec![NetworkPolicyPeer {
                ip_block: Some(IPBlock {
                    cidr: "0.0.0.0/0".into(),
                    except: Some(config.cluster_cidrs.clone()),
                }),
                ..NetworkPolicyPeer::default()
            }]),
            ports: None,
        });
    }
    stamped(NetworkPolicy {
        metadata: meta(ws, owner),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_labels: Some(selector(ws)),
                ..LabelSelector::default()
            }),
            policy_types: Some(vec!["Ingress".into(), "Egress".into()]),
            ingress: Some(vec![NetworkPolicyIngressRule {
                from: Some(vec![berth]),
                ports: Some(vec![tcp(ws.spec.port)]),
            }]),
            egress: Some(egress),
        }),
    })
}

/// Where the home is mounted in the Pod (as the process runtime has it).
pub fn home_path(ws: &Workspace) -> String {
    format!("/home/{}", ws.spec.owner)
}

/// The Pod that runs the app.
pub fn pod(ws: &Workspace, owner: &OwnerReference) -> Pod {
    let spec = &ws.spec;
    let home = home_path(ws);
    let mut env = vec![
        KEnvVar {
            name: "POD_IP".into(),
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    field_path: "status.podIP".into(),
                    ..ObjectFieldSelector::default()
                }),
                ..EnvVarSource::default()
            }),
            ..KEnvVar::default()
        },
        plain("HOME", &home),
        plain("USER", &spec.owner),
        plain("PORT", &spec.port.to_string()),
        plain("JUPYTERHUB_USER", &spec.owner),
        plain("JUPYTERHUB_SERVICE_PREFIX", &spec.base_url),
        plain(
            "JUPYTERHUB_SERVICE_URL",
            &format!("http://0.0.0.0:{}{}", spec.port, spec.base_url),
        ),
        plain("JUPYTERHUB_ROOT_DIR", &home),
    ];
    env.extend(spec.env.iter().map(|v| plain(&v.name, &v.value)));
    let quantity = |cpu: u64, memory: u64| {
        BTreeMap::from([
            ("cpu".to_owned(), Quantity(format!("{cpu}m"))),
            ("memory".to_owned(), Quantity(memory.to_string())),
        ])
    };
    let requests = quantity(spec.resources.cpu_millis, spec.resources.memory_bytes);
    let mut limits = requests.clone();
    if spec.resources.gpus > 0 {
        limits.insert(
            "nvidia.com/gpu".into(),
            Quantity(spec.resources.gpus.to_string()),
        );
    }
    let container = Container {
        name: "app".into(),
        image: Some(spec.image.clone()),
        command: Some(spec.command.clone()),
        env: Some(env),
        env_from: spec.secret_name.as_ref().map(|name| {
            vec![EnvFromSource {
                secret_ref: Some(SecretEnvSource {
                    name: name.clone(),
                    optional: Some(false),
                }),
                ..EnvFromSource::default()
            }]
        }),
        ports: Some(vec![ContainerPort {
            name: Some("http".into()),
            container_port: spec.port.into(),
            protocol: Some("TCP".into()),
            ..ContainerPort::default()
        }]),
        readiness_probe: Some(Probe {
            tcp_socket: Some(TCPSocketAction {
                port: IntOrString::Int(spec.port.into()),
                ..TCPSocketAction::default()
            }),
            period_seconds: Some(1),
            failure_threshold: Some(1),
            ..Probe::default()
        }),
        resources: Some(ResourceRequirements {
            requests: Some(requests),
            limits: Some(limits),
            ..ResourceRequirements::default()
        }),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                ..Capabilities::default()
            }),
            ..SecurityContext::default()
        }),
        volume_mounts: Some(vec![VolumeMount {
            name: "home".into(),
            mount_path: home.clone(),
            ..VolumeMount::default()
        }]),
        working_dir: Some(home),
        ..Container::default()
    };
    let pod_spec = PodSpec {
        containers: vec![container],
        restart_policy: Some("Never".into()),
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        termination_grace_period_seconds: Some(GRACE_SECONDS),
        hostname: Some(spec.name.clone()),
        security_context: Some(PodSecurityContext {
            run_as_user: Some(spec.uid),
            run_as_group: Some(spec.uid),
            fs_group: Some(spec.uid),
            run_as_non_root: Some(true),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                ..SeccompProfile::default()
            }),
            ..PodSecurityContext::default()
        }),
        node_selector: (!spec.node_selector.is_empty()).then(|| spec.node_selector.clone()),
        tolerations: (!spec.tolerations.is_empty()).then(|| {
            spec.tolerations
                .iter()
                .map(|t| KToleration {
                    key: t.key.clone(),
                    operator: t.operator.clone(),
                    value: t.value.clone(),
                    effect: t.effect.clone(),
                    toleration_seconds: t.toleration_seconds,
                })
                .collect()
        }),
        volumes: Some(vec![Volume {
            name: "home".into(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: ws.name_any(),
                read_only: None,
            }),
            ..Volume::default()
        }]),
        ..PodSpec::default()
    };
    let hash = spec_hash(&[
        &serde_json::to_vec(&pod_spec).expect("a Pod spec serializes"),
        spec.restarted_at.as_deref().unwrap_or("").as_bytes(),
    ]);
    let mut metadata = meta(ws, owner);
    metadata.annotations = Some(BTreeMap::from([(SPEC_HASH.into(), hash)]));
    Pod {
        metadata,
        spec: Some(pod_spec),
        status: None,
    }
}

fn plain(name: &str, value: &str) -> KEnvVar {
    KEnvVar {
        name: name.into(),
        value: Some(value.into()),
        ..KEnvVar::default()
    }
}

/// What the operator reports: the Pod's phase and readiness, the Service's
/// address. `settled`: no Pod is still to go or to be made anew.
pub fn status_of(
    ws: &Workspace,
    pod: Option<&Pod>,
    service: &Service,
    claim: &PersistentVolumeClaim,
    settled: bool,
) -> WorkspaceStatus {
    let old = ws.status.clone().unwrap_or_default();
    // What this status describes: the spec, once nothing is still to change.
    let generation = if settled {
        ws.metadata.generation
    } else {
        old.observed_generation
    };
    let address = service
        .spec
        .as_ref()
        .and_then(|s| s.cluster_ip.as_deref())
        .filter(|ip| !ip.is_empty() && *ip != "None")
        .map(|ip| format!("{ip}:{}", ws.spec.port));
    let pod_status = pod.and_then(|p| p.status.as_ref());
    let phase = pod_status.and_then(|s| s.phase.as_deref());
    let pod_ready = pod_status
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    let (state, message) = match ws.spec.state {
        _ if ws.metadata.deletion_timestamp.is_some() => (State::Deleting, None),
        DesiredState::Running if !settled => (State::Starting, None),
        DesiredState::Running => match phase {
            Some("Failed") | Some("Succeeded") => (State::Failed, Some(exit_message(pod))),
            _ if pod_ready && address.is_some() => (State::Running, None),
            _ => (State::Starting, waiting_message(pod)),
        },
        // Until its Pod is gone, a stopping workspace is where it was.
        _ if !settled => (old.state.unwrap_or(State::Starting), old.message.clone()),
        DesiredState::Paused => (State::Paused, None),
        DesiredState::Stopped => (State::Stopped, None),
    };
    let mut conditions = Vec::new();
    let now = |old: &WorkspaceStatus, kind: &str, status: &str| {
        old.conditions
            .iter()
            .find(|c| c.type_ == kind && c.status == status)
            .map(|c| c.last_transition_time.clone())
            .unwrap_or_else(rfc3339_now)
    };
    let mut condition = |kind: &str, ok: bool, reason: &str, message: String| {
        let status = if ok { "True" } else { "False" };
        conditions.push(Condition {
            type_: kind.into(),
            status: status.into(),
            reason: reason.into(),
            message,
            last_transition_time: now(&old, kind, status),
            observed_generation: generation,
        });
    };
    let ready_reason = match state {
        State::Running => "AppAnswers",
        State::Starting => "Starting",
        State::Failed
            if message
                .as_deref()
                .is_some_and(|m| m.contains("(OOMKilled)")) =>
        {
            OOM_KILLED
        }
        State::Failed => "AppExited",
        State::Paused => "Paused",
        State::Stopped => "Stopped",
        State::Deleting => "Deleting",
    };
    condition(
        "Ready",
        state == State::Running,
        ready_reason,
        message.clone().unwrap_or_default(),
    );
    let bound = claim
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending");
    condition("HomeBound", bound == "Bound", bound, String::new());
    WorkspaceStatus {
        state: Some(state),
        observed_generation: generation,
        address: if state == State::Stopped {
            None
        } else {
            address
        },
        message,
        conditions,
    }
}

/// Why a Pod that should run does not yet, in the words of the scheduler
/// (no node for it: too few GPUs, a selector no node matches) or the kubelet
/// (an image it cannot pull, a Secret missing); `None` while it is merely
/// on its way.
fn waiting_message(pod: Option<&Pod>) -> Option<String> {
    let status = pod?.status.as_ref()?;
    let said = |reason: &str, message: Option<&str>| match message.filter(|m| !m.is_empty()) {
        Some(m) => format!("{reason}: {m}"),
        None => reason.to_owned(),
    };
    let unscheduled = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "PodScheduled" && c.status == "False");
    if let Some(c) = unscheduled {
        let reason = c.reason.as_deref().unwrap_or("Unschedulable");
        return Some(format!(
            "no node for it yet ({})",
            said(reason, c.message.as_deref())
        ));
    }
    let waiting = status
        .container_statuses
        .iter()
        .flatten()
        .find_map(|c| c.state.as_ref()?.waiting.as_ref())?;
    match waiting.reason.as_deref()? {
        "ContainerCreating" | "PodInitializing" => None,
        reason => Some(said(reason, waiting.message.as_deref())),
    }
}

/// Why a Pod's app ended: the kubelet's reason for a Pod it rejected (no
/// GPU left on its node) or evicted; else its exit code or signal reason.
fn exit_message(pod: Option<&Pod>) -> String {
    let status = pod.and_then(|p| p.status.as_ref());
    // Its node's word (a Pod rejected, evicted), which says more than an exit.
    if let Some(reason) = status.and_then(|s| s.reason.as_deref()) {
        return match status.and_then(|s| s.message.as_deref()) {
            Some(message) if !message.is_empty() => {
                format!("the app's Pod failed ({reason}): {message}")
            }
            _ => format!("the app's Pod failed ({reason})"),
        };
    }
    let terminated = status
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| cs.first())
        .and_then(|c| c.state.as_ref())
        .and_then(|s| s.terminated.as_ref());
    match terminated {
        Some(t) => {
            let mut m = format!("the app exited with code {}", t.exit_code);
            if let Some(reason) = t.reason.as_deref().filter(|r| *r != "Error") {
                m.push_str(&format!(" ({reason})"));
            }
            if let Some(message) = t.message.as_deref().and_then(model::last_line) {
                m.push_str(&format!(": {message}"));
            }
            m
        }
        None => "the app's Pod ended".into(),
    }
}

fn rfc3339_now() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .round(k8s_openapi::jiff::Unit::Second)
        .expect("rounds")
        .to_string()
}
