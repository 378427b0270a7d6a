//! [`KubeRuntime`]: berth's controller on Kubernetes. It writes one
//! [`Workspace`] per workspace (and a Secret with its hub token) and reads the
//! status the operator writes; it never touches a Pod. Its apps are reached
//! through their Services.
//!
//! "Pause" here is hibernation: the Pod goes, the home and the Service stay,
//! so a resumed app answers at the same address, with its files but not its
//! memory (Kubernetes cannot freeze a Pod).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use async_trait::async_trait;
use futures::TryStreamExt;
use k8s_openapi::api::core::v1::{Pod, Secret};
use k8s_openapi::ByteString;
use kube::api::{Api, DeleteParams, ListParams, LogParams, Patch, PatchParams};
use kube::runtime::wait::await_condition;
use kube::runtime::{watcher, WatchStreamExt};

use kube::{Client, Resource, ResourceExt};
use model::{App, CommandVars, Upstream, WorkspaceId};
use runtime::{Capabilities, LogRead, Observed, Runtime, RuntimeError, WorkspaceRef};
use serde_json::json;

use crate::crd::{
    DesiredState, EnvVar, Home, Resources, State, Toleration, Workspace, WorkspaceSpec,
    WorkspaceStatus,
};

/// The field manager of what the runtime applies.
pub const FIELD_MANAGER: &str = "berth";
/// The label on every Workspace berth's control plane made.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "berth");
/// The port apps listen on in their Pods (JupyterHub's KubeSpawner's).
pub const APP_PORT: u16 = 8888;

/// Where and how the Kubernetes runtime runs workspaces.
#[derive(Debug, Clone)]
pub struct KubeRuntimeConfig {
    /// The namespace of the Workspaces (and so of their Pods).
    pub namespace: String,
    /// The image of profiles whose app is JupyterLab, and of workspaces that
    /// name none.
    pub image: String,
    /// berth's URL as Pods reach it (`http://berth.berth.svc:8000`), for
    /// `JUPYTERHUB_API_URL` and its kin; without it apps get no hub URL.
    pub hub_url: Option<String>,
    /// The homes' storage class; the cluster's default when unset.
    pub storage_class: Option<String>,
    /// How long stop, pause and delete wait for the operator.
    pub wait: Duration,
    /// Where workspaces of a profile run, by the profile's name (GPU node
    /// pools); profiles not named run anywhere, with no GPU.
    pub placement: BTreeMap<String, Placement>,
}

/// Where the workspaces of one profile run, and with what devices.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Placement {
    /// `nvidia.com/gpu` devices for each workspace.
    #[serde(default)]
    pub gpus: u32,
    /// The image, instead of the runtime's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Labels of the nodes they may run on.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Taints they tolerate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
}

impl Default for KubeRuntimeConfig {
    fn default() -> Self {
        KubeRuntimeConfig {
            namespace: "default".into(),
            image: "quay.io/jupyter/base-notebook:latest".into(),
            hub_url: None,
            storage_class: None,
            wait: Duration::from_secs(60),
            placement: BTreeMap::new(),
        }
    }
}

/// The Kubernetes runtime (see the module's documentation).
pub struct KubeRuntime {
    client: Client,
    config: KubeRuntimeConfig,
    changes: tokio::sync::broadcast::Sender<WorkspaceId>,
    watch: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for KubeRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeRuntime")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Drop for KubeRuntime {
    fn drop(&mut self) {
        self.watch.abort();
    }
}

impl KubeRuntime {
    /// A runtime writing Workspaces through `client`; it watches them to
    /// report changes (must be called within a Tokio runtime).
    pub fn new(client: Client, config: KubeRuntimeConfig) -> Self {
        let changes = tokio::sync::broadcast::channel(1024).0;
        let api = Api::<Workspace>::namespaced(client.clone(), &config.namespace);
        let watch = tokio::spawn(watch_changes(api, changes.clone()));
        KubeRuntime {
            client,
            config,
            changes,
            watch,
        }
    }

    fn api(&self) -> Api<Workspace> {
        Api::namespaced(self.client.clone(), &self.config.namespace)
    }

    /// The Workspace that `ws` asks for.
    pub fn spec(&self, ws: &WorkspaceRef) -> Result<WorkspaceSpec, RuntimeError> {
        workspace_spec(&self.config, ws)
    }

    async fn get(&self, op: &'static str, id: &str) -> Result<Option<Workspace>, RuntimeError> {
        let name = object_name(op, id)?;
        self.api()
            .get_opt(&name)
            .await
            .map_err(|e| api_err(op, id, e))
    }

    /// Sets the desired state; false if there is no such Workspace.
    async fn set_state(
        &self,
        op: &'static str,
        id: &str,
        state: DesiredState,
    ) -> Result<bool, RuntimeError> {
        let patch = json!({"spec": {"state": state}});
        match self
            .api()
            .patch(
                &object_name(op, id)?,
                &PatchParams::default(),
                &Patch::Merge(patch),
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
            Err(e) => Err(api_err(op, id, e)),
        }
    }

    /// Waits until the operator reports `want` for the current spec.
    async fn wait_for(&self, op: &'static str, id: &str, want: State) -> Result<(), RuntimeError> {
        let name = object_name(op, id)?;
        let reached = move |obj: Option<&Workspace>| match obj {
            None => true,
            Some(ws) => ws.status.as_ref().is_some_and(|s| {
                s.state == Some(want) && s.observed_generation >= ws.metadata.generation
            }),
        };
        match tokio::time::timeout(
            self.config.wait,
            await_condition(self.api(), &name, reached),
        )
        .await
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(RuntimeError::transient(op, id, e.to_string())),
            Err(_) => Err(RuntimeError::transient(
                op,
                id,
                format!(
                    "the operator did not report {} within {:?}",
                    want.as_str(),
                    self.config.wait
                ),
            )),
        }
    }
}

/// The Workspace that `ws` asks for, with the runtime's `config`.
pub fn workspace_spec(
    config: &KubeRuntimeConfig,
    ws: &WorkspaceRef,
) -> Result<WorkspaceSpec, RuntimeError> {
    let id = ws.id.as_str();
    let home = format!("/home/{}", ws.owner);
    let command = match &ws.profile.app {
        App::Command { argv, .. } if !argv.is_empty() => {
            let vars = CommandVars {
                port: APP_PORT,
                base_url: &ws.base_url,
                username: ws.owner.as_str(),
                servername: ws.name.as_str(),
                home: &home,
            };
            argv.iter().map(|a| vars.fill(a)).collect()
        }
        App::Command { .. } => return Err(RuntimeError::permanent("start", id, "empty argv")),
        // JupyterHub's single-user server logs browsers in through berth's
        // OAuth; without a hub, plain JupyterLab (only berth reaches it:
        // the NetworkPolicy).
        App::Jupyterlab if ws.has_hub_token() => vec!["jupyterhub-singleuser".into()],
        App::Jupyterlab => vec![
            "jupyter-lab".into(),
            "--no-browser".into(),
            "--ip=0.0.0.0".into(),
            format!("--port={APP_PORT}"),
            format!("--ServerApp.base_url={}", ws.base_url),
            format!("--ServerApp.root_dir={home}"),
            "--IdentityProvider.token=".into(),
            "--ServerApp.allow_remote_access=True".into(),
        ],
    };
    let mut env: Vec<EnvVar> = Vec::new();
    if let Some(url) = &config.hub_url {
        let url = url.trim_end_matches('/');
        env.extend([
            var("JUPYTERHUB_API_URL", format!("{url}/hub/api")),
            var(
                "JUPYTERHUB_ACTIVITY_URL",
                format!("{url}/hub/api/users/{}/activity", ws.owner),
            ),
            var("BERTH_API_URL", url.to_owned()),
        ]);
    }
    env.extend(ws.env.iter().map(|(k, v)| var(k, v.clone())));
    let p = &ws.profile;
    let placement = config
        .placement
        .get(ws.profile_name.as_str())
        .cloned()
        .unwrap_or_default();
    let image = ws
        .image
        .clone()
        .or(placement.image)
        .unwrap_or_else(|| config.image.clone());
    Ok(WorkspaceSpec {
        id: id.to_owned(),
        owner: ws.owner.to_string(),
        name: ws.name.to_string(),
        profile: p.display_name.clone(),
        state: DesiredState::Running,
        image,
        command,
        port: APP_PORT,
        base_url: ws.base_url.clone(),
        uid: ws.uid.into(),
        env,
        secret_name: (!ws.secrets.is_empty()).then(|| Workspace::object_name(id)),
        resources: Resources {
            cpu_millis: p.cpu_millis,
            memory_bytes: p.memory_bytes,
            max_processes: p.max_processes,
            gpus: placement.gpus,
        },
        home: Home {
            size_bytes: p.disk_quota_bytes,
            storage_class_name: config.storage_class.clone(),
            keep_on_delete: false,
        },
        node_selector: placement.node_selector,
        tolerations: placement.tolerations,
        restarted_at: None,
        egress: p.egress,
    })
}

fn var(name: &str, value: String) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value,
    }
}

/// The Workspace's name for `id`, if `id` can be part of one.
fn object_name(op: &'static str, id: &str) -> Result<String, RuntimeError> {
    let ok = !id.is_empty()
        && id.len() <= 60
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !id.starts_with('-')
        && !id.ends_with('-');
    if ok {
        Ok(Workspace::object_name(id))
    } else {
        Err(RuntimeError::permanent(
            op,
            id,
            "a workspace id on Kubernetes is at most 60 lowercase letters, digits and '-'",
        ))
    }
}

/// A failed API call: a conflict or a server error may pass, a rejection not.
fn api_err(op: &'static str, id: &str, e: kube::Error) -> RuntimeError {
    let permanent = matches!(&e, kube::Error::Api(s) if matches!(s.code, 400 | 403 | 422));
    let base = if permanent {
        RuntimeError::permanent(op, id, "")
    } else {
        RuntimeError::transient(op, id, "")
    };
    base.because(e)
}

/// Says the id of each Workspace whose reported state changes, or which goes.
async fn watch_changes(api: Api<Workspace>, tx: tokio::sync::broadcast::Sender<WorkspaceId>) {
    let mut last: BTreeMap<String, Option<State>> = BTreeMap::new();
    let stream = watcher(api, watcher::Config::default()).default_backoff();
    let mut stream = std::pin::pin!(stream);
    loop {
        match stream.try_next().await {
            Ok(Some(watcher::Event::Apply(ws) | watcher::Event::InitApply(ws))) => {
                let state = ws.status.as_ref().and_then(|s| s.state);
                if last.insert(ws.spec.id.clone(), state) != Some(state) {
                    let _ = tx.send(ws.spec.id.as_str().into());
                }
            }
            Ok(Some(watcher::Event::Delete(ws))) => {
                last.remove(&ws.spec.id);
                let _ = tx.send(ws.spec.id.as_str().into());
            }
            Ok(Some(watcher::Event::Init | watcher::Event::InitDone)) => {}
            Ok(None) => return,
            Err(e) => tracing::debug!(error = %e, "watching workspaces"),
        }
    }
}

/// What a Workspace's status says, for berth's controller.
pub fn observed(ws: &Workspace) -> Observed {
    let status = ws.status.clone().unwrap_or_default();
    let current = status.observed_generation >= ws.metadata.generation;
    // Why it waits, if the operator said so for this start (a message of
    // another state, such as the last exit, is not about it).
    let starting = Observed::Starting {
        waiting: status
            .message
            .clone()
            .filter(|_| status.state == Some(State::Starting)),
    };
    if !current && ws.spec.state == DesiredState::Running {
        return starting;
    }
    match status.state {
        Some(State::Running) => match address(&status) {
            Some(addr) => Observed::Running {
                upstream: Upstream::Tcp(addr),
            },
            None => starting,
        },
        Some(State::Starting) | None => starting,
        Some(State::Paused) => Observed::Paused,
        Some(State::Stopped) | Some(State::Deleting) => Observed::Stopped,
        Some(State::Failed) => Observed::Failed {
            reason: match status.conditions.iter().find(|c| c.type_ == "Ready") {
                Some(c) if c.reason == crate::operator::OOM_KILLED => c.reason.clone(),
                _ => "Exited".into(),
            },
            message: status
                .message
                .unwrap_or_else(|| "the app's Pod ended".into()),
        },
    }
}

fn address(status: &WorkspaceStatus) -> Option<SocketAddr> {
    status.address.as_deref()?.parse().ok()
}

#[async_trait]
impl Runtime for KubeRuntime {
    fn name(&self) -> &'static str {
        "kubernetes"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            pause: true,
            ready_events: true,
            ..Capabilities::default()
        }
    }

    async fn start(&self, ws: &WorkspaceRef) -> Result<(), RuntimeError> {
        let id = ws.id.as_str();
        let name = object_name("start", id)?;
        let mut spec = self.spec(ws)?;
        if let Some(existing) = self.get("start", id).await? {
            match existing.spec.state {
                // Starting a paused workspace leaves it paused (resume wakes it).
                DesiredState::Paused => return Ok(()),
                _ => spec.restarted_at = existing.spec.restarted_at.clone(),
            }
            if existing.status.as_ref().and_then(|s| s.state) == Some(State::Failed) {
                spec.restarted_at = Some(
                    k8s_openapi::jiff::Timestamp::now()
                        .round(k8s_openapi::jiff::Unit::Millisecond)
                        .expect("rounds")
                        .to_string(),
                );
            }
        }
        let object = json!({
            "apiVersion": "berth.dev/v1alpha1",
            "kind": "Workspace",
            "metadata": {
                "name": name,
                "labels": {
                    MANAGED_BY.0: MANAGED_BY.1,
                    "berth.dev/owner": ws.owner.as_str(),
                },
            },
            "spec": spec,
        });
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let applied = self
            .api()
            .patch(&name, &params, &Patch::Apply(&object))
            .await
            .map_err(|e| api_err("start", id, e))?;
        if !ws.secrets.is_empty() {
            let owner = applied
                .controller_owner_ref(&())
                .ok_or_else(|| RuntimeError::transient("start", id, "workspace without uid"))?;
            let secret = Secret {
                metadata: kube::api::ObjectMeta {
                    name: Some(name.clone()),
                    labels: Some(BTreeMap::from([(MANAGED_BY.0.into(), MANAGED_BY.1.into())])),
                    owner_references: Some(vec![owner]),
                    ..Default::default()
                },
                data: Some(
                    ws.secrets
                        .iter()
                        .map(|(k, v)| (k.clone(), ByteString(v.expose().as_bytes().to_vec())))
                        .collect(),
                ),
                ..Secret::default()
            };
            Api::<Secret>::namespaced(self.client.clone(), &self.config.namespace)
                .patch(&name, &params, &Patch::Apply(&secret))
                .await
                .map_err(|e| api_err("start", id, e))?;
        }
        Ok(())
    }

    async fn stop(&self, id: &WorkspaceId) -> Result<(), RuntimeError> {
        if self.set_state("stop", id, DesiredState::Stopped).await? {
            self.wait_for("stop", id, State::Stopped).await?;
        }
        Ok(())
    }

    async fn pause(&self, id: &WorkspaceId) -> Result<(), RuntimeError> {
        let Some(ws) = self.get("pause", id).await? else {
            return Err(RuntimeError::permanent("pause", id, "no such workspace"));
        };
        if ws.spec.state == DesiredState::Stopped {
            return Err(RuntimeError::permanent("pause", id, "it is stopped"));
        }
        self.set_state("pause", id, DesiredState::Paused).await?;
        self.wait_for("pause", id, State::Paused).await
    }

    async fn resume(&self, id: &WorkspaceId) -> Result<(), RuntimeError> {
        match self.get("resume", id).await? {
            Some(ws) if ws.spec.state == DesiredState::Paused => {
                self.set_state("resume", id, DesiredState::Running).await?;
                Ok(())
            }
            Some(ws) if ws.spec.state == DesiredState::Running => Ok(()),
            _ => Err(RuntimeError::permanent("resume", id, "it is not paused")),
        }
    }

    async fn delete(&self, id: &WorkspaceId, keep_files: bool) -> Result<(), RuntimeError> {
        let Some(ws) = self.get("delete", id).await? else {
            return Ok(());
        };
        let api = self.api();
        let name = ws.name_any();
        if ws.spec.home.keep_on_delete != keep_files {
            let patch = json!({"spec": {"home": {"keepOnDelete": keep_files}}});
            api.patch(&name, &PatchParams::default(), &Patch::Merge(patch))
                .await
                .map_err(|e| api_err("delete", id, e))?;
        }
        if ws.metadata.deletion_timestamp.is_none() {
            match api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
                Err(e) => return Err(api_err("delete", id, e)),
            }
        }
        let uid = ws.uid().unwrap_or_default();
        let gone = kube::runtime::conditions::is_deleted(&uid);
        match tokio::time::timeout(self.config.wait, await_condition(api, &name, gone)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(RuntimeError::transient("delete", id, e.to_string())),
            Err(_) => Err(RuntimeError::transient(
                "delete",
                id,
                format!("the operator did not finish within {:?}", self.config.wait),
            )),
        }
    }

    async fn observe(&self, id: &WorkspaceId) -> Result<Observed, RuntimeError> {
        Ok(match self.get("observe", id).await? {
            None => Observed::Absent,
            Some(ws) => observed(&ws),
        })
    }

    async fn list(&self) -> Result<Vec<WorkspaceId>, RuntimeError> {
        let params = ListParams::default().labels(&format!("{}={}", MANAGED_BY.0, MANAGED_BY.1));
        let list = self
            .api()
            .list(&params)
            .await
            .map_err(|e| api_err("list", "*", e))?;
        Ok(list
            .items
            .into_iter()
            .map(|ws| ws.spec.id.as_str().into())
            .collect())
    }

    fn changes(&self) -> Option<tokio::sync::broadcast::Receiver<WorkspaceId>> {
        Some(self.changes.subscribe())
    }

    /// The app's output, from its Pod (the node keeps it); nothing where the
    /// Pod is gone or its node cannot be asked.
    async fn log_read(
        &self,
        id: &WorkspaceId,
        from: Option<u64>,
        max_bytes: usize,
    ) -> Result<LogRead, RuntimeError> {
        let pods = Api::<Pod>::namespaced(self.client.clone(), &self.config.namespace);
        let name = object_name("log", id)?;
        match pods.logs(&name, &LogParams::default()).await {
            Ok(log) => Ok(LogRead::of(log.as_bytes(), from, max_bytes)),
            Err(e) => {
                tracing::debug!(workspace.id = %id, error = %e, "no log");
                Ok(LogRead::default())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{
        ContainerState, ContainerStateTerminated, ContainerStatus, PersistentVolumeClaim, Pod,
        PodStatus, Service,
    };

    use super::*;
    use crate::crd::{Home, Resources};
    use crate::operator::status_of;

    fn workspace() -> Workspace {
        let mut ws = Workspace::new(
            "ws-1",
            WorkspaceSpec {
                id: "1".into(),
                owner: "ada".into(),
                name: "lab".into(),
                profile: "Standard".into(),
                state: DesiredState::Running,
                image: "img".into(),
                command: vec!["app".into()],
                port: APP_PORT,
                base_url: "/user/ada/lab/".into(),
                uid: 1000,
                env: Vec::new(),
                secret_name: None,
                resources: Resources {
                    cpu_millis: 1000,
                    memory_bytes: 1 << 30,
                    max_processes: 0,
                    gpus: 0,
                },
                home: Home {
                    size_bytes: 1 << 30,
                    storage_class_name: None,
                    keep_on_delete: false,
                },
                node_selector: BTreeMap::new(),
                tolerations: Vec::new(),
                restarted_at: None,
                egress: false,
            },
        );
        ws.metadata.generation = Some(1);
        ws
    }

    fn ended(reason: &str, code: i32) -> Pod {
        Pod {
            status: Some(PodStatus {
                phase: Some("Failed".into()),
                container_statuses: Some(vec![ContainerStatus {
                    name: "app".into(),
                    state: Some(ContainerState {
                        terminated: Some(ContainerStateTerminated {
                            exit_code: code,
                            reason: Some(reason.into()),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// An app its memory limit killed is `OOMKilled` to berth, as on the
    /// process runtime; any other exit is `Exited`, with its code.
    #[test]
    fn an_app_killed_for_memory_is_oom_killed() {
        let mut ws = workspace();
        let (svc, claim) = (Service::default(), PersistentVolumeClaim::default());
        for (reason, code, want) in [("OOMKilled", 137, "OOMKilled"), ("Error", 3, "Exited")] {
            ws.status = Some(status_of(
                &ws,
                Some(&ended(reason, code)),
                &svc,
                &claim,
                true,
            ));
            match observed(&ws) {
                Observed::Failed { reason, message } => {
                    assert_eq!(reason, want);
                    assert!(message.contains(&format!("code {code}")), "{message}");
                }
                other => panic!("{other:?}"),
            }
        }
    }

    /// A Pod that waits says why in the Workspace's status, in the
    /// scheduler's or the kubelet's words; one merely on its way says nothing.
    #[test]
    fn a_waiting_pod_says_why() {
        let ws = workspace();
        let (svc, claim) = (Service::default(), PersistentVolumeClaim::default());
        let unscheduled = Pod {
            status: Some(PodStatus {
                phase: Some("Pending".into()),
                conditions: Some(vec![k8s_openapi::api::core::v1::PodCondition {
                    type_: "PodScheduled".into(),
                    status: "False".into(),
                    reason: Some("Unschedulable".into()),
                    message: Some("0/3 nodes are available: 3 Insufficient nvidia.com/gpu.".into()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let waiting = |reason: &str, message: Option<&str>| Pod {
            status: Some(PodStatus {
                phase: Some("Pending".into()),
                container_statuses: Some(vec![ContainerStatus {
                    name: "app".into(),
                    state: Some(ContainerState {
                        waiting: Some(k8s_openapi::api::core::v1::ContainerStateWaiting {
                            reason: Some(reason.into()),
                            message: message.map(Into::into),
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let message = |pod: &Pod| status_of(&ws, Some(pod), &svc, &claim, true).message;
        assert_eq!(
            message(&unscheduled).as_deref(),
            Some("no node for it yet (Unschedulable: 0/3 nodes are available: 3 Insufficient nvidia.com/gpu.)")
        );
        let pull = waiting("ImagePullBackOff", Some("Back-off pulling image \"nope\""));
        assert_eq!(
            message(&pull).as_deref(),
            Some("ImagePullBackOff: Back-off pulling image \"nope\"")
        );
        assert_eq!(message(&waiting("ContainerCreating", None)), None);
        // And berth's controller hears it.
        let mut waiting = ws.clone();
        waiting.status = Some(status_of(&ws, Some(&pull), &svc, &claim, true));
        assert_eq!(
            observed(&waiting),
            Observed::Starting {
                waiting: Some("ImagePullBackOff: Back-off pulling image \"nope\"".into())
            }
        );
    }
}
