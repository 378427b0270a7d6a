//! The operator's reconcile against a scripted API server (`tower-test`):
//! each test lists the exact calls one reconcile makes (method, path and
//! query, and what matters of the body) and what the API answers; a call
//! out of order, or one more than scripted, fails. The children the
//! operator's watches have seen are given to each reconcile ([`Seen`]): it
//! reads them there, and asks the API server nothing it knows.

use std::sync::Arc;

use http::{Request, Response};
use http_body_util::BodyExt;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::client::Body;
use kube::runtime::watcher;
use kube::Client;
use runtime_kube::crd::{DesiredState, State, Workspace, WorkspaceStatus};
use runtime_kube::operator::{self, OperatorConfig};
use serde_json::{json, Value};
use tower_test::mock::{self, Handle};

const NS: &str = "team";
const NAME: &str = "ws-0193a1b2";
const WS: &str = "/apis/berth.dev/v1alpha1/namespaces/team/workspaces/ws-0193a1b2";
const CORE: &str = "/api/v1/namespaces/team";
const POLICIES: &str = "/apis/networking.k8s.io/v1/namespaces/team/networkpolicies";
/// The query of a server-side apply by the operator.
const APPLY: &str = "?&force=true&fieldManager=berth-operator";

type Script = Handle<Request<Body>, Response<Body>>;

/// A Workspace as the API server would hand it out: generation 3.
fn workspace(state: DesiredState) -> Workspace {
    let ws = crate::support::workspace("alice", "quay.io/jupyter/base-notebook:latest");
    let spec = runtime_kube::runtime::workspace_spec(&Default::default(), &ws).unwrap();
    let mut object = Workspace::new(NAME, spec);
    object.spec.state = state;
    object.metadata.namespace = Some(NS.into());
    object.metadata.uid = Some("uid-1".into());
    object.metadata.generation = Some(3);
    object.metadata.resource_version = Some("100".into());
    object.metadata.finalizers = Some(vec!["berth.dev/cleanup".into()]);
    object.spec.secret_name = Some(NAME.into());
    object
}

/// Expects the next call to apply the Workspace's status; returns what it sent.
async fn status_write(h: &mut Script) -> Value {
    let uri = format!("{WS}/status{APPLY}");
    expect(
        h,
        "PATCH",
        &uri,
        with_status(&workspace(DesiredState::Running)),
    )
    .await
}

/// Answers a status patch with the Workspace carrying the status sent.
fn with_status(ws: &Workspace) -> impl FnOnce(&Value) -> (u16, Value) {
    let mut object = serde_json::to_value(ws).unwrap();
    move |body| {
        merge(&mut object, body.clone());
        (200, object)
    }
}

/// Expects the next call to be `method uri`; answers it with `answer`
/// (given the request's body); returns the request's body.
async fn expect(
    h: &mut Script,
    method: &str,
    uri: &str,
    answer: impl FnOnce(&Value) -> (u16, Value),
) -> Value {
    let (request, send) = h.next_request().await.expect("a call");
    assert_eq!(
        format!("{} {}", request.method(), request.uri()),
        format!("{method} {uri}"),
        "the next call"
    );
    let bytes = request.into_body().collect().await.unwrap().to_bytes();
    let body = match bytes.is_empty() {
        true => Value::Null,
        false => serde_json::from_slice(&bytes).unwrap(),
    };
    let (status, answer) = answer(&body);
    send.send_response(
        Response::builder()
            .status(status)
            .body(Body::from(serde_json::to_vec(&answer).unwrap()))
            .unwrap(),
    );
    body
}

/// The applied object back, with what the server adds to it.
fn echo(extra: Value) -> impl FnOnce(&Value) -> (u16, Value) {
    move |body| {
        let mut body = body.clone();
        merge(&mut body, extra);
        (200, body)
    }
}

fn merge(a: &mut Value, b: Value) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(Value::Null), v);
            }
        }
        (a, b) => *a = b,
    }
}

fn not_found(_: &Value) -> (u16, Value) {
    let status = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
        "reason": "NotFound", "message": "not found", "code": 404});
    (404, status)
}

fn deleted(_: &Value) -> (u16, Value) {
    (
        200,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}),
    )
}

fn answer(object: Value) -> impl FnOnce(&Value) -> (u16, Value) {
    move |_| (200, object)
}

/// A Pod as the node reports it: running and ready, made from the current spec.
fn ready_pod(ws: &Workspace) -> Value {
    let owner = kube::Resource::controller_owner_ref(ws, &()).unwrap();
    let mut pod = serde_json::to_value(operator::pod(ws, &owner)).unwrap();
    merge(
        &mut pod,
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"uid": "pod-1"},
            "status": {"phase": "Running", "podIP": "10.1.0.5",
                "conditions": [{"type": "Ready", "status": "True"}]}}),
    );
    pod
}

/// What the operator's watches have seen of a Workspace's children.
#[derive(Default)]
struct Seen {
    pods: Vec<Pod>,
    services: Vec<Service>,
    claims: Vec<PersistentVolumeClaim>,
    policies: Vec<NetworkPolicy>,
}

impl Seen {
    /// The claim, Service (with its cluster IP) and policy of `ws`, as the
    /// operator applied them.
    fn children(ws: &Workspace) -> Seen {
        let owner = kube::Resource::controller_owner_ref(ws, &()).unwrap();
        let mut service = operator::service(ws, &owner);
        service.spec.as_mut().unwrap().cluster_ip = Some("10.96.0.7".into());
        Seen {
            services: vec![within(service)],
            claims: vec![within(operator::claim(ws, &owner))],
            policies: vec![within(operator::network_policy(
                ws,
                &owner,
                &OperatorConfig::default(),
            ))],
            pods: Vec::new(),
        }
    }

    /// And its Pod.
    fn with_pod(mut self, pod: Value) -> Seen {
        self.pods.push(within(serde_json::from_value(pod).unwrap()));
        self
    }
}

/// `object` in the namespace.
fn within<K: kube::Resource>(mut object: K) -> K {
    object.meta_mut().namespace = Some(NS.into());
    object
}

/// The store of `writer` holding `objects`, as after its watch's first list.
fn fill<K>(writer: &mut kube::runtime::reflector::store::Writer<K>, objects: Vec<K>)
where
    K: kube::Resource<DynamicType = ()> + Clone,
{
    writer.apply_watcher_event(&watcher::Event::Init);
    for object in objects {
        writer.apply_watcher_event(&watcher::Event::InitApply(object));
    }
    writer.apply_watcher_event(&watcher::Event::InitDone);
}

/// Runs one reconcile of `ws`, with nothing seen, while `script` answers the
/// calls; then checks that no call was left unanswered.
async fn reconcile<F, Fut>(ws: Workspace, script: F) -> Result<(), String>
where
    F: FnOnce(Script) -> Fut,
    Fut: std::future::Future<Output = Script> + Send + 'static,
{
    reconcile_seeing(ws, Seen::default(), script).await
}

/// [`reconcile`], with the children `seen`.
async fn reconcile_seeing<F, Fut>(ws: Workspace, seen: Seen, script: F) -> Result<(), String>
where
    F: FnOnce(Script) -> Fut,
    Fut: std::future::Future<Output = Script> + Send + 'static,
{
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    let scripted = tokio::spawn(script(handle));
    let (children, mut writers) = operator::Children::new();
    fill(&mut writers.pods, seen.pods);
    fill(&mut writers.services, seen.services);
    fill(&mut writers.claims, seen.claims);
    fill(&mut writers.policies, seen.policies);
    let ctx = Arc::new(operator::Context {
        client: Client::new(service, NS),
        config: OperatorConfig::default(),
        children,
        memory: Default::default(),
    });
    let result = operator::reconcile(Arc::new(ws), ctx).await;
    let mut handle = scripted.await.expect("the script ran to its end");
    let more = futures::FutureExt::now_or_never(handle.next_request());
    assert!(
        more.is_none() || more.unwrap().is_none(),
        "a call the script does not expect"
    );
    result.map(drop).map_err(|e| e.to_string())
}

/// The claim, Service and policy, applied in that order when none was seen;
/// the Service's answer gives it a cluster IP.
async fn children(h: &mut Script) {
    let claim = expect(
        h,
        "PATCH",
        &format!("{CORE}/persistentvolumeclaims/{NAME}{APPLY}"),
        echo(json!({})),
    )
    .await;
    assert_eq!(
        claim["spec"]["resources"]["requests"]["storage"],
        (64u64 << 20).to_string()
    );
    assert_eq!(claim["metadata"]["ownerReferences"][0]["uid"], "uid-1");
    assert_eq!(claim["metadata"]["ownerReferences"][0]["controller"], true);
    assert!(claim["metadata"]["annotations"]["berth.dev/spec-hash"].is_string());
    let service = expect(
        h,
        "PATCH",
        &format!("{CORE}/services/{NAME}{APPLY}"),
        echo(json!({"spec": {"clusterIP": "10.96.0.7"}})),
    )
    .await;
    assert_eq!(
        service["spec"]["selector"],
        json!({"berth.dev/workspace": NAME})
    );
    assert_eq!(service["spec"]["ports"][0]["port"], 8888);
    let policy = expect(
        h,
        "PATCH",
        &format!("{POLICIES}/{NAME}{APPLY}"),
        echo(json!({})),
    )
    .await;
    assert_eq!(policy["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
    assert_eq!(
        policy["spec"]["podSelector"]["matchLabels"],
        json!({"berth.dev/workspace": NAME})
    );
}

#[tokio::test]
async fn a_new_workspace_first_gets_the_finalizer() {
    let mut ws = workspace(DesiredState::Running);
    ws.metadata.finalizers = None;
    let with = serde_json::to_value(workspace(DesiredState::Running)).unwrap();
    reconcile(ws, |mut h| async move {
        let patch = expect(&mut h, "PATCH", &format!("{WS}?"), answer(with)).await;
        assert_eq!(
            patch,
            json!([
                {"op": "test", "path": "/metadata/finalizers", "value": null},
                {"op": "add", "path": "/metadata/finalizers", "value": ["berth.dev/cleanup"]},
            ])
        );
        h
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn create_applies_claim_service_policy_and_pod_then_the_status() {
    reconcile(workspace(DesiredState::Running), |mut h| async move {
        children(&mut h).await;
        let pod = expect(
            &mut h,
            "PATCH",
            &format!("{CORE}/pods/{NAME}{APPLY}"),
            echo(json!({})),
        )
        .await;
        assert_eq!(pod["spec"]["restartPolicy"], "Never");
        assert_eq!(
            pod["spec"]["containers"][0]["envFrom"][0]["secretRef"]["name"],
            NAME
        );
        assert_eq!(
            pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"],
            NAME
        );
        assert!(pod["metadata"]["annotations"]["berth.dev/spec-hash"].is_string());
        assert!(!pod.to_string().contains("the-hub-token"));
        let status = status_write(&mut h).await;
        assert_eq!(status["status"]["state"], "Starting");
        assert_eq!(status["status"]["observedGeneration"], 3);
        assert_eq!(status["status"]["address"], "10.96.0.7:8888");
        h
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_ready_pod_makes_it_running_and_an_unchanged_status_is_not_written() {
    let ws = workspace(DesiredState::Running);
    let pod = ready_pod(&ws);
    let seen = || Seen::children(&ws).with_pod(pod.clone());
    reconcile_seeing(ws.clone(), seen(), |mut h| async move {
        // Nothing to apply: only the status is new.
        let status = status_write(&mut h).await;
        assert_eq!(status["status"]["state"], "Running");
        let ready = &status["status"]["conditions"][0];
        assert_eq!(
            (&ready["type"], &ready["status"]),
            (&json!("Ready"), &json!("True"))
        );
        h
    })
    .await
    .unwrap();

    // Again, with the status it wrote: no call at all.
    let mut again = ws.clone();
    let Seen {
        pods,
        services,
        claims,
        ..
    } = seen();
    again.status = Some(operator::status_of(
        &ws,
        pods.first(),
        &services[0],
        &claims[0],
        true,
    ));
    reconcile_seeing(again, seen(), |h| async move { h })
        .await
        .unwrap();
}

#[tokio::test]
async fn stop_deletes_the_pod_and_reports_stopped_once_it_is_gone() {
    let mut ws = workspace(DesiredState::Stopped);
    let pod = ready_pod(&workspace(DesiredState::Running));
    ws.status = Some(WorkspaceStatus {
        state: Some(State::Running),
        observed_generation: Some(2),
        address: Some("10.96.0.7:8888".into()),
        ..WorkspaceStatus::default()
    });
    let seen = Seen::children(&ws).with_pod(pod);
    reconcile_seeing(ws.clone(), seen, |mut h| async move {
        let delete = expect(&mut h, "DELETE", &format!("{CORE}/pods/{NAME}?"), deleted).await;
        assert_eq!(delete["gracePeriodSeconds"], 5);
        // Not stopped while its Pod goes: the state and generation stay.
        let status = status_write(&mut h).await;
        assert_eq!(status["status"]["state"], "Running");
        assert_eq!(status["status"]["observedGeneration"], 2);
        h
    })
    .await
    .unwrap();

    // Gone from the store: it was Running, so the API is asked once.
    reconcile_seeing(ws.clone(), Seen::children(&ws), |mut h| async move {
        expect(&mut h, "GET", &format!("{CORE}/pods/{NAME}"), not_found).await;
        let status = status_write(&mut h).await;
        assert_eq!(status["status"]["state"], "Stopped");
        assert_eq!(status["status"]["observedGeneration"], 3);
        assert!(status["status"].get("address").is_none());
        h
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn an_update_replaces_a_pod_made_from_an_older_spec() {
    let old = workspace(DesiredState::Running);
    let pod = ready_pod(&old);
    let mut ws = old.clone();
    ws.spec.resources.memory_bytes *= 2;
    // Its claim, Service and policy are as the new spec wants them.
    let seen = Seen::children(&ws).with_pod(pod);
    reconcile_seeing(ws, seen, |mut h| async move {
        expect(&mut h, "DELETE", &format!("{CORE}/pods/{NAME}?"), deleted).await;
        let status = status_write(&mut h).await;
        assert_eq!(status["status"]["state"], "Starting");
        h
    })
    .await
    .unwrap();
}

/// A child made from another spec is applied again, and only it.
#[tokio::test]
async fn only_a_child_made_from_another_spec_is_applied_again() {
    let old = workspace(DesiredState::Running);
    let pod = ready_pod(&old);
    let mut ws = old.clone();
    ws.spec.egress = true;
    let seen = Seen::children(&old).with_pod(pod);
    reconcile_seeing(ws, seen, |mut h| async move {
        let policy = expect(
            &mut h,
            "PATCH",
            &format!("{POLICIES}/{NAME}{APPLY}"),
            echo(json!({})),
        )
        .await;
        assert_eq!(
            policy["spec"]["egress"][2]["to"][0]["ipBlock"]["cidr"],
            "0.0.0.0/0"
        );
        status_write(&mut h).await;
        h
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn delete_removes_every_child_then_the_finalizer() {
    let mut ws = workspace(DesiredState::Running);
    ws.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::now()));
    let claim = {
        let owner = kube::Resource::controller_owner_ref(&ws, &()).unwrap();
        let mut c = serde_json::to_value(operator::claim(&ws, &owner)).unwrap();
        merge(
            &mut c,
            json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim"}),
        );
        c
    };
    // The claim is still there: its deletion is asked for, and the
    // finalizer stays until it is gone.
    let result = reconcile(ws.clone(), |mut h| async move {
        expect(&mut h, "GET", &format!("{CORE}/pods/{NAME}"), not_found).await;
        expect(&mut h, "DELETE", &format!("{POLICIES}/{NAME}?"), deleted).await;
        expect(
            &mut h,
            "DELETE",
            &format!("{CORE}/services/{NAME}?"),
            deleted,
        )
        .await;
        expect(
            &mut h,
            "DELETE",
            &format!("{CORE}/secrets/{NAME}?"),
            deleted,
        )
        .await;
        expect(
            &mut h,
            "GET",
            &format!("{CORE}/persistentvolumeclaims/{NAME}"),
            answer(claim),
        )
        .await;
        expect(
            &mut h,
            "DELETE",
            &format!("{CORE}/persistentvolumeclaims/{NAME}?"),
            deleted,
        )
        .await;
        h
    })
    .await;
    assert!(result.unwrap_err().contains("waiting for its home to go"));

    let gone = serde_json::to_value(&ws).unwrap();
    reconcile(ws, |mut h| async move {
        expect(&mut h, "GET", &format!("{CORE}/pods/{NAME}"), not_found).await;
        expect(&mut h, "DELETE", &format!("{POLICIES}/{NAME}?"), not_found).await;
        expect(
            &mut h,
            "DELETE",
            &format!("{CORE}/services/{NAME}?"),
            not_found,
        )
        .await;
        expect(
            &mut h,
            "DELETE",
            &format!("{CORE}/secrets/{NAME}?"),
            not_found,
        )
        .await;
        expect(
            &mut h,
            "GET",
            &format!("{CORE}/persistentvolumeclaims/{NAME}"),
            not_found,
        )
        .await;
        let patch = expect(&mut h, "PATCH", &format!("{WS}?"), answer(gone)).await;
        assert_eq!(
            patch,
            json!([
                {"op": "test", "path": "/metadata/finalizers/0", "value": "berth.dev/cleanup"},
                {"op": "remove", "path": "/metadata/finalizers/0"},
            ])
        );
        h
    })
    .await
    .unwrap();
}

/// Reconciles that start before the watches have listed wait, all of them,
/// and all go on once they have (kube's own readiness wakes only the last
/// of several waiters: two reconciles at the start of the operator hung).
#[tokio::test]
async fn every_reconcile_waiting_for_the_first_lists_goes_on() {
    let (children, mut writers) = operator::Children::new();
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let children = children.clone();
            tokio::spawn(async move { children.listed().await.is_ok() })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(waiters.iter().all(|w| !w.is_finished()), "none listed yet");
    fill(&mut writers.pods, Vec::new());
    fill(&mut writers.services, Vec::new());
    fill(&mut writers.claims, Vec::new());
    fill(&mut writers.policies, Vec::new());
    for waiter in waiters {
        let listed = tokio::time::timeout(std::time::Duration::from_secs(5), waiter).await;
        assert!(
            matches!(listed, Ok(Ok(true))),
            "a waiter stayed: {listed:?}"
        );
    }
}
