//! The conformance story against the cluster `KUBECONFIG` names, when it
//! names one: the cluster's kubelets run the app from an image with python3
//! (`BERTH_TEST_IMAGE`, default `python:3.13-slim`), in a namespace of its
//! own that the test makes and deletes; the test reaches the app through the
//! API server's Service proxy, and reads files through the app. The Workspace
//! CRD is applied first (the test's user may do that).

use crate::support::{namespace_name, Env, Subject};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_story_on_the_kubeconfig_cluster() {
    let Some(path) = std::env::var_os("KUBECONFIG") else {
        eprintln!(
            "skipped: KUBECONFIG names no cluster; set it (and BERTH_TEST_IMAGE, an image with python3) to run the conformance story on a real cluster"
        );
        return;
    };
    let client = runtime_kube::envtest::client_from(std::path::Path::new(&path))
        .await
        .expect("a client of the KUBECONFIG cluster");
    runtime_kube::envtest::install_crd(&client)
        .await
        .expect("apply the Workspace CRD");
    let namespace = namespace_name();
    runtime_kube::envtest::namespace(&client, &namespace)
        .await
        .expect("make a namespace");
    let image = std::env::var("BERTH_TEST_IMAGE").unwrap_or_else(|_| "python:3.13-slim".into());
    let subject = Subject {
        env: Env::with(client.clone(), namespace.clone(), None, None, image),
    };
    runtime_conformance::story(&subject).await;
    let namespaces = kube::Api::<k8s_openapi::api::core::v1::Namespace>::all(client);
    let _ = namespaces.delete(&namespace, &Default::default()).await;
}
