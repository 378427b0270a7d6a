//! berth on Kubernetes: the runtime `berth serve` runs workspaces with when
//! `runtime = "kubernetes"`, and the operator, in `berth serve` (under a
//! Lease, one replica at a time) or alone (`berth operator run`).

use std::future::Future;

use anyhow::Context;
use runtime_kube::lease::{self, Election};
use runtime_kube::operator;

use crate::config::Config;

/// A client of the configured cluster: `kubernetes.kubeconfig`, else where
/// berth runs (a Pod's service account), else `$KUBECONFIG` or
/// `~/.kube/config`.
pub async fn client(cfg: &Config) -> anyhow::Result<kube::Client> {
    let config = match &cfg.kubernetes.kubeconfig {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("read kubernetes.kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
                .await
                .with_context(|| format!("use kubernetes.kubeconfig {}", path.display()))?
        }
        None => kube::Config::infer().await.context(
            "find a Kubernetes cluster (no service account here, no KUBECONFIG, no ~/.kube/config); set kubernetes.kubeconfig",
        )?,
    };
    kube::Client::try_from(config).context("make a Kubernetes client")
}

/// This replica's name among holders of the Lease: its Pod's (`HOSTNAME`
/// in a Pod) and its pid.
fn identity() -> String {
    let host = std::env::var("POD_NAME")
        .or_else(|_| std::fs::read_to_string("/proc/sys/kernel/hostname"))
        .unwrap_or_default();
    format!("{}-{}", host.trim(), std::process::id())
}

/// Runs the operator whenever this replica holds the Lease, until
/// `shutdown`.
pub async fn operator(cfg: &Config, client: kube::Client, shutdown: impl Future<Output = ()>) {
    let k = &cfg.kubernetes;
    let election = Election {
        namespace: k.lease_namespace().to_owned(),
        name: k.lease_name.clone(),
        identity: identity(),
        duration: std::time::Duration::from_secs(k.lease_secs),
    };
    let (ours, config) = (client.clone(), cfg.operator());
    let namespace = k.namespace.clone();
    tracing::info!(
        identity = election.identity,
        lease = election.name,
        "the operator runs while this replica holds the Lease"
    );
    lease::lead(
        client,
        election,
        move || {
            let (client, config, namespace) = (ours.clone(), config.clone(), namespace.clone());
            async move { operator::run(client, config, Some(&namespace), std::future::pending()).await }
        },
        |leading| tracing::info!(leading, "operator"),
        shutdown,
    )
    .await;
}

/// `berth operator run`: the operator alone, until SIGTERM or Ctrl-C.
pub async fn run_operator(cfg: Config) -> anyhow::Result<()> {
    let client = client(&cfg).await?;
    println!(
        "operator for namespace {} (Lease {}/{})",
        cfg.kubernetes.namespace,
        cfg.kubernetes.lease_namespace(),
        cfg.kubernetes.lease_name
    );
    operator(&cfg, client, crate::serve::shutdown()).await;
    Ok(())
}
