//! Against a real kube-apiserver and etcd; the test plays the node, or
//! containerd and a real kubelet run it.

use std::time::Duration;

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Patch, PatchParams};
use kube::ResourceExt;
use model::{App, Upstream};
use runtime::{Observed, Runtime};
use runtime_conformance::wait_running;
use runtime_kube::crd::{State, Workspace};

use crate::support::{have_envtest, workspace, Env, Subject};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_story() {
    if !have_envtest() {
        return;
    }
    let subject = Subject {
        env: Env::envtest().await,
    };
    runtime_conformance::story(&subject).await;
}

/// The same story on a real node: containerd and a kubelet on this machine
/// run each Pod from the image `scripts/build-kube-images` makes; pause
/// deletes the Pod and resume makes another, on the same claim.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_story_on_a_real_kubelet() {
    if !have_envtest()
        || !runtime_kube::envtest::present(&runtime_kube::envtest::kubelet::missing())
    {
        return;
    }
    let subject = Subject {
        env: Env::kubelet().await,
    };
    runtime_conformance::story(&subject).await;
}

/// The objects a running workspace has, as the issue and KubeSpawner's users
/// expect them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_workspace_has_its_objects() {
    if !have_envtest() {
        return;
    }
    let subject = Subject {
        env: Env::envtest().await,
    };
    let env = &subject.env;
    let ws = workspace("bob", &env.image);
    env.rt.start(&ws).await.unwrap();
    let upstream = wait_running(&subject, &ws.id).await;
    let name = Workspace::object_name(&ws.id);

    // The Workspace: finalizer, status, conditions.
    let object = env.api::<Workspace>().get(&name).await.unwrap();
    assert_eq!(object.finalizers(), ["berth.dev/cleanup"]);
    let status = object.status.clone().unwrap();
    assert_eq!(status.state, Some(State::Running));
    assert_eq!(status.observed_generation, object.metadata.generation);
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("True", "AppAnswers")
    );
    let bound = status
        .conditions
        .iter()
        .find(|c| c.type_ == "HomeBound")
        .unwrap();
    assert_eq!(bound.status, "True");

    // The Service is the upstream.
    let service = env.api::<Service>().get(&name).await.unwrap();
    let cluster_ip = service.spec.as_ref().unwrap().cluster_ip.clone().unwrap();
    assert_eq!(
        upstream,
        Upstream::Tcp(format!("{cluster_ip}:8888").parse().unwrap())
    );

    // Each child is owned by the Workspace, and written by the operator.
    let uid = object.uid().unwrap();
    let pod = env.api::<Pod>().get(&name).await.unwrap();
    let claim = env.api::<PersistentVolumeClaim>().get(&name).await.unwrap();
    let policy = env.api::<NetworkPolicy>().get(&name).await.unwrap();
    for meta in [
        &pod.metadata,
        &service.metadata,
        &claim.metadata,
        &policy.metadata,
    ] {
        let owners = meta.owner_references.as_ref().unwrap();
        assert_eq!(owners.len(), 1);
        assert_eq!(owners[0].uid, uid);
        assert_eq!(owners[0].controller, Some(true));
        let managers: Vec<_> = meta
            .managed_fields
            .iter()
            .flatten()
            .filter(|f| f.operation.as_deref() == Some("Apply"))
            .filter_map(|f| f.manager.as_deref())
            .collect();
        assert_eq!(managers, ["berth-operator"], "{:?}", meta.name);
    }

    // The Pod: the profile's resources, the token from the Secret only,
    // never as root, no service account token, no restarts by itself.
    let spec = pod.spec.clone().unwrap();
    let app = &spec.containers[0];
    let limits = app.resources.as_ref().unwrap().limits.clone().unwrap();
    assert_eq!(limits["cpu"].0, "500m");
    assert_eq!(limits["memory"].0, (256u64 << 20).to_string());
    let pod_json = serde_json::to_string(&pod).unwrap();
    assert!(
        !pod_json.contains("the-hub-token"),
        "the token is not in the Pod"
    );
    assert_eq!(
        app.env_from.as_ref().unwrap()[0]
            .secret_ref
            .as_ref()
            .unwrap()
            .name,
        name
    );
    assert_eq!(spec.restart_policy.as_deref(), Some("Never"));
    assert_eq!(spec.automount_service_account_token, Some(false));
    let security = spec.security_context.clone().unwrap();
    assert_eq!(security.run_as_user, Some(1000));
    assert_eq!(security.run_as_non_root, Some(true));

    // The app sees the token (from the Secret), the spawner's variables, and
    // the workspace's own.
    let (code, body) = env
        .get(&ws, &upstream, &format!("{}env", ws.base_url))
        .await
        .unwrap();
    assert_eq!(code, 200);
    let app_env: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(app_env["JUPYTERHUB_API_TOKEN"], "the-hub-token");
    assert_eq!(app_env["JUPYTERHUB_USER"], "bob");
    assert_eq!(app_env["JUPYTERHUB_SERVICE_PREFIX"], ws.base_url.as_str());
    assert_eq!(app_env["GREETING"], "hello");

    // The policy: in only from berth's Pods on the app's port, out to
    // berth's API and DNS, and (without egress) nowhere else.
    let policy = policy.spec.unwrap();
    assert_eq!(policy.policy_types.unwrap(), ["Ingress", "Egress"]);
    let ingress = policy.ingress.unwrap();
    assert_eq!(ingress.len(), 1);
    let from = &ingress[0].from.as_ref().unwrap()[0];
    assert_eq!(
        from.pod_selector
            .as_ref()
            .unwrap()
            .match_labels
            .as_ref()
            .unwrap()["app.kubernetes.io/name"],
        "berth"
    );
    let egress = policy.egress.unwrap();
    assert_eq!(egress.len(), 2, "berth's API and DNS only: {egress:?}");
    assert!(egress
        .iter()
        .all(|r| r.to.iter().flatten().all(|p| p.ip_block.is_none())));

    env.rt.delete(&ws.id, false).await.unwrap();
    assert_eq!(env.leftovers(&ws).await, Vec::<String>::new());
}

/// An app that exits leaves the workspace Failed with its exit code, and is
/// not started again by itself; a start makes a new Pod.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_that_exits_fails_until_started_again() {
    if !have_envtest() {
        return;
    }
    let subject = Subject {
        env: Env::envtest().await,
    };
    let env = &subject.env;
    let mut ws = workspace("carol", &env.image);
    ws.profile.app = App::Command {
        argv: vec!["sh".into(), "-c".into(), "echo bye; exit 3".into()],
        strip_prefix: false,
    };
    env.rt.start(&ws).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let failed = loop {
        match env.rt.observe(&ws.id).await.unwrap() {
            Observed::Failed { reason, message } => break (reason, message),
            other => {
                assert!(tokio::time::Instant::now() < deadline, "still {other:?}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    assert_eq!(failed.0, "Exited");
    assert!(failed.1.contains("code 3"), "{}", failed.1);
    let name = Workspace::object_name(&ws.id);
    let first = env.api::<Pod>().get(&name).await.unwrap().uid();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        env.api::<Pod>().get(&name).await.unwrap().uid(),
        first,
        "no restart by itself"
    );
    assert!(matches!(
        env.rt.observe(&ws.id).await.unwrap(),
        Observed::Failed { .. }
    ));

    // Started again (now with an app that stays), it gets a new Pod.
    ws.profile.app = App::Command {
        argv: vec!["python3".into(), "-c".into(), crate::support::APP.into()],
        strip_prefix: false,
    };
    env.rt.start(&ws).await.unwrap();
    wait_running(&subject, &ws.id).await;
    assert_ne!(env.api::<Pod>().get(&name).await.unwrap().uid(), first);
    env.rt.delete(&ws.id, false).await.unwrap();
}

/// Deleted with its files kept, a workspace leaves its claim (and what it
/// holds), owned by nobody.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_keeping_files_leaves_the_claim() {
    if !have_envtest() {
        return;
    }
    let subject = Subject {
        env: Env::envtest().await,
    };
    let env = &subject.env;
    let ws = workspace("dave", &env.image);
    env.rt.start(&ws).await.unwrap();
    let upstream = wait_running(&subject, &ws.id).await;
    runtime_conformance::Subject::write_file(&subject, &ws, &upstream, "keep.txt", "kept").await;
    env.rt.delete(&ws.id, true).await.unwrap();
    assert_eq!(env.rt.observe(&ws.id).await.unwrap(), Observed::Absent);
    let name = Workspace::object_name(&ws.id);
    let claim = env.api::<PersistentVolumeClaim>().get(&name).await.unwrap();
    assert!(claim
        .metadata
        .owner_references
        .unwrap_or_default()
        .is_empty());
    let node = env.node.as_ref().unwrap();
    assert_eq!(
        std::fs::read_to_string(node.claim_dir(&name).join("keep.txt")).unwrap(),
        "kept"
    );
    assert!(env.api::<Pod>().get_opt(&name).await.unwrap().is_none());
}

/// The CRD's schema rejects a bad spec; `kubectl get workspaces` shows the
/// printer columns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_server_validates_workspaces_and_prints_columns() {
    if !have_envtest() {
        return;
    }
    let env = Env::envtest().await;
    let ws = workspace("erin", &env.image);
    let spec = env.rt.spec(&ws).unwrap();
    let mut bad = serde_json::to_value(&spec).unwrap();
    bad["owner"] = "Not A Name".into();
    bad["port"] = 0.into();
    bad["resources"]["cpuMillis"] = 0.into();
    let object = serde_json::json!({
        "apiVersion": "berth.dev/v1alpha1", "kind": "Workspace",
        "metadata": {"name": "ws-bad"}, "spec": bad,
    });
    let err = env
        .api::<Workspace>()
        .patch(
            "ws-bad",
            &PatchParams::apply("test"),
            &Patch::Apply(&object),
        )
        .await
        .unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("{err:?}")
    };
    assert_eq!(status.code, 422, "{status:?}");
    for field in ["spec.owner", "spec.port", "spec.resources.cpuMillis"] {
        assert!(
            status.message.contains(field),
            "{field}: {}",
            status.message
        );
    }

    // The table kubectl asks for.
    env.rt.start(&ws).await.unwrap();
    let request = http::Request::get(format!(
        "/apis/berth.dev/v1alpha1/namespaces/{}/workspaces",
        env.namespace
    ))
    .header("accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
    .body(Vec::new())
    .unwrap();
    let table: serde_json::Value = env.client.request(request).await.unwrap();
    let columns: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        columns,
        ["Name", "Owner", "Workspace", "Profile", "State", "Age"]
    );
    let row = &table["rows"][0]["cells"];
    assert_eq!(row[1], "erin");
    assert_eq!(row[2], ws.name.as_str());
    assert_eq!(row[3], "Standard");
    env.rt.delete(&ws.id, false).await.unwrap();
}

/// A GPU profile's workspaces get its devices, node pool and tolerations,
/// and its image; other profiles' get none of them.
/// Where NVIDIA's GPU nodes are: their label, their taint tolerated.
fn gpu_placement(gpus: u32, image: Option<String>) -> runtime_kube::Placement {
    runtime_kube::Placement {
        gpus,
        image,
        node_selector: [("nvidia.com/gpu.present".to_owned(), "true".to_owned())].into(),
        tolerations: vec![runtime_kube::crd::Toleration {
            key: Some("nvidia.com/gpu".into()),
            operator: Some("Exists".into()),
            value: None,
            effect: Some("NoSchedule".into()),
            toleration_seconds: None,
        }],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gpu_profile_places_its_pods() {
    if !have_envtest() {
        return;
    }
    let env = Env::envtest().await;
    let placement = gpu_placement(
        2,
        Some("quay.io/jupyter/pytorch-notebook:cuda12-latest".into()),
    );
    let rt = runtime_kube::KubeRuntime::new(
        env.client.clone(),
        runtime_kube::KubeRuntimeConfig {
            namespace: env.namespace.clone(),
            placement: [("gpu".to_owned(), placement)].into(),
            ..Default::default()
        },
    );
    let mut gpu = workspace("frank", &env.image);
    gpu.image = None;
    gpu.profile_name = model::Name::parse("gpu").unwrap();
    let mut plain = workspace("frank", &env.image);
    plain.image = None;
    for ws in [&gpu, &plain] {
        rt.start(ws).await.unwrap();
    }
    let pod_of = |ws: &runtime::WorkspaceRef| {
        let api = env.api::<Pod>();
        let name = Workspace::object_name(&ws.id);
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            loop {
                if let Some(pod) = api.get_opt(&name).await.unwrap() {
                    return pod.spec.unwrap();
                }
                assert!(tokio::time::Instant::now() < deadline, "no Pod {name}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let spec = pod_of(&gpu).await;
    let app = &spec.containers[0];
    assert_eq!(
        app.resources.as_ref().unwrap().limits.as_ref().unwrap()["nvidia.com/gpu"].0,
        "2"
    );
    assert_eq!(
        app.image.as_deref(),
        Some("quay.io/jupyter/pytorch-notebook:cuda12-latest")
    );
    assert_eq!(
        spec.node_selector.unwrap()["nvidia.com/gpu.present"],
        "true"
    );
    let toleration = &spec.tolerations.unwrap()[0];
    assert_eq!(
        (toleration.key.as_deref(), toleration.effect.as_deref()),
        (Some("nvidia.com/gpu"), Some("NoSchedule"))
    );

    let spec = pod_of(&plain).await;
    let app = &spec.containers[0];
    assert!(!app
        .resources
        .as_ref()
        .unwrap()
        .limits
        .as_ref()
        .unwrap()
        .contains_key("nvidia.com/gpu"));
    assert_eq!(
        app.image.as_deref(),
        Some("quay.io/jupyter/base-notebook:latest")
    );
    assert!(spec.node_selector.is_none());
    // (The API server adds its own not-ready and unreachable tolerations.)
    let keys: Vec<_> = spec
        .tolerations
        .iter()
        .flatten()
        .filter_map(|t| t.key.as_deref())
        .collect();
    assert!(!keys.contains(&"nvidia.com/gpu"), "{keys:?}");
    for ws in [&gpu, &plain] {
        rt.delete(&ws.id, false).await.unwrap();
    }
}

/// GPU profiles on a real node. There is no GPU here: the node's status
/// advertises one `nvidia.com/gpu`, as a device plugin would (Kubernetes'
/// "advertise extended resources for a node"), beside NVIDIA's label and
/// taint, and the kubelet accounts for it as for a real one. The first GPU
/// workspace is admitted and runs; a second asks for a GPU the node no
/// longer has, and the kubelet rejects its Pod: that workspace is Failed,
/// saying why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gpu_workspaces_share_a_real_kubelets_gpus() {
    if !have_envtest()
        || !runtime_kube::envtest::present(&runtime_kube::envtest::kubelet::missing())
    {
        return;
    }
    let env = Env::kubelet().await;
    let node = env.node.as_ref().unwrap().name();
    let nodes = kube::Api::<k8s_openapi::api::core::v1::Node>::all(env.client.clone());
    let taint = serde_json::json!({
        "metadata": {"labels": {"nvidia.com/gpu.present": "true"}},
        "spec": {"taints": [{"key": "nvidia.com/gpu", "effect": "NoSchedule"}]},
    });
    nodes
        .patch(&node, &PatchParams::default(), &Patch::Merge(taint))
        .await
        .unwrap();
    let gpu = serde_json::json!({"status": {"capacity": {"nvidia.com/gpu": "1"}}});
    nodes
        .patch_status(&node, &PatchParams::default(), &Patch::Merge(gpu))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let allocatable = nodes.get(&node).await.unwrap().status.unwrap().allocatable;
        if allocatable.is_some_and(|a| a.contains_key("nvidia.com/gpu")) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no GPU allocatable");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let placement = gpu_placement(1, None);
    let rt = runtime_kube::KubeRuntime::new(
        env.client.clone(),
        runtime_kube::KubeRuntimeConfig {
            namespace: env.namespace.clone(),
            image: env.image.clone(),
            placement: [("gpu".to_owned(), placement)].into(),
            wait: Duration::from_secs(60),
            ..Default::default()
        },
    );
    let gpu_workspace = || {
        let mut ws = workspace("grace", &env.image);
        ws.image = None;
        ws.profile_name = model::Name::parse("gpu").unwrap();
        ws
    };
    let (first, second) = (gpu_workspace(), gpu_workspace());
    rt.start(&first).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let upstream = loop {
        match rt.observe(&first.id).await.unwrap() {
            Observed::Running { upstream } => break upstream,
            other => assert!(
                tokio::time::Instant::now() < deadline,
                "the first GPU workspace is {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let path = format!("{}api/status", first.base_url);
    assert!(matches!(
        env.get(&first, &upstream, &path).await,
        Some((200, _))
    ));

    rt.start(&second).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let message = loop {
        match rt.observe(&second.id).await.unwrap() {
            Observed::Failed { message, .. } => break message,
            other => assert!(
                tokio::time::Instant::now() < deadline,
                "the second GPU workspace is {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(message.contains("nvidia.com/gpu"), "{message}");
    eprintln!("the second GPU workspace failed: {message}");
    // The first runs on.
    assert!(matches!(
        rt.observe(&first.id).await.unwrap(),
        Observed::Running { .. }
    ));
    for ws in [&first, &second] {
        rt.delete(&ws.id, false).await.unwrap();
    }
}
