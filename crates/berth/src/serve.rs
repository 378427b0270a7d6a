//! `berth serve`: opens the store, bootstraps a fresh database, starts the runtime
//! and the controller, serves HTTP until SIGTERM or Ctrl-C, then drains in-flight
//! requests and reconciles.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::sync::watch;

use crate::config::{Config, LogFormat, RuntimeKind};

pub fn init_tracing(cfg: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("{},sqlx=warn", cfg.log.level))
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cfg.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

pub async fn run(cfg: Config, stop_orphans: bool) -> anyhow::Result<()> {
    // The data dir is traversable (workspace users reach their homes through it)
    // but not listable; the database directory is the owner's alone.
    make_dir(&cfg.data_dir, 0o711)?;
    if cfg.database_url.is_none() {
        make_dir(&cfg.data_dir.join("db"), 0o700)?;
    }
    let nofile = crate::listen::raise_nofile_limit();
    let limits = crate::listen::Limits::for_nofile(nofile);
    tracing::debug!(
        nofile,
        connections = limits.connections(),
        "open-file limit"
    );
    let listener = tokio::net::TcpListener::bind(cfg.bind)
        .await
        .with_context(|| format!("bind {} (from {})", cfg.bind, cfg.bind_from))?;
    let addr = listener.local_addr().context("read the bound address")?;
    // The cluster's client, which the Kubernetes runtime and the operator share.
    let kube = match cfg.runtime {
        RuntimeKind::Kubernetes => Some(crate::kubernetes::client(&cfg).await?),
        _ => None,
    };
    // With the process runtime, workspaces reach berth's API on the gateway
    // address, at the same port.
    let (runtime, gateway) = match cfg.runtime {
        RuntimeKind::Process => {
            let (rt, gateway) = process_runtime(&cfg, addr.port()).await?;
            (Some(rt), Some(gateway))
        }
        RuntimeKind::Kubernetes => (kube.clone().map(|c| kube_runtime(&cfg, c)), None),
        RuntimeKind::None => (None, None),
    };
    let store = store::Store::connect(&cfg.database_url())
        .await
        .context("open the database")?;
    if let (Some(rt), false) = (&runtime, stop_orphans) {
        refuse_unknown_workspaces(&cfg, rt.as_ref(), &store).await?;
    }
    let admin_password = cfg.admin_password.as_ref().map(|s| s.expose());
    if admin_password.is_some() && store.count_users().await.unwrap_or(0) > 0 {
        tracing::warn!(
            "admin_password (BERTH_ADMIN_PASSWORD) is used only on the first start; \
             to set a password now, run `berth admin reset-password NAME`"
        );
    }
    let generated = server::bootstrap(&store, admin_password)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))
        .context("create the first admin account")?;
    let configured = server::configure_profiles(&store, &cfg.profiles)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))
        .context("apply the profiles of the configuration")?;
    if !configured.is_empty() {
        tracing::info!(?configured, "profiles created or changed as configured");
    }
    if let Some(pw) = generated {
        // Shown once, on the first start only; it is stored only as a hash.
        println!("created the admin account: user name `admin`, one-time password `{pw}`");
    }
    let mut state = server::AppState::new(
        store.clone(),
        server::ServerConfig {
            secure_cookies: cfg
                .public_url
                .as_deref()
                .is_some_and(|u| u.starts_with("https://")),
            session_ttl: Duration::from_secs(cfg.auth.session_ttl_secs),
            login_max_failures: cfg.auth.login_max_failures,
            login_lockout: Duration::from_secs(cfg.auth.login_lockout_secs),
            quota: cfg.quota(),
            currency: cfg.currency.trim().to_owned(),
            proxy: cfg.proxy(),
        },
    );
    let (stop_tx, stop_rx) = watch::channel(false);
    // Every replica's proxy routes from the store; one replica's controller acts.
    let routes = controller::routes::follow(store.clone())
        .await
        .context("load the route table")?;
    state = state.with_routes(routes);
    let controller = runtime.map(|runtime| {
        let mut ctx = controller::Ctx::new(
            store.clone(),
            runtime,
            Arc::new(controller::SystemClock),
            controller::Config {
                resync: Duration::from_secs(cfg.controller.resync_secs),
                ..controller::Config::default()
            },
        );
        ctx.observer = Some(Arc::new(server::ControllerMetrics(state.metrics.clone())));
        state.runtime = Some(ctx.runtime.clone());
        let election =
            controller::leader::Election::new(Duration::from_secs(cfg.controller.lease_secs));
        tokio::spawn(controller::leader::lead(
            ctx,
            election,
            stopped(stop_rx.clone()),
        ))
    });
    tracing::info!(%addr, engine = ?store.engine(), runtime = ?cfg.runtime,
        data_dir = %cfg.data_dir.display(), "berth serving");
    println!("listening on http://{addr}");
    tokio::spawn(async move {
        shutdown().await;
        let _ = stop_tx.send(true);
    });
    let operator = match (kube, cfg.kubernetes.operator) {
        (Some(client), true) => {
            let (mut cfg, stop) = (cfg.clone(), stopped(stop_rx.clone()));
            // Workspaces may reach the API at the port bound (`bind` may say 0).
            cfg.bind = addr;
            Some(tokio::spawn(async move {
                crate::kubernetes::operator(&cfg, client, stop).await
            }))
        }
        _ => None,
    };
    let flusher = tokio::spawn(controller::activity::flush(
        store.clone(),
        state.proxy.activity().clone(),
        Duration::from_secs(5),
        stopped(stop_rx.clone()),
    ));
    let app = server::Front::new(state);
    let gateway = gateway.map(|listener| {
        let stop = stopped(stop_rx.clone());
        let (app, limits) = (app.clone(), limits.clone());
        tokio::spawn(async move { crate::listen::serve(listener, app, limits, stop).await })
    });
    let served = crate::listen::serve(listener, app, limits, stopped(stop_rx))
        .await
        .context("serve HTTP");
    if let Some(g) = gateway {
        g.await
            .context("the gateway listener task")?
            .context("serve HTTP on the gateway")?;
    }
    flusher.await.context("the activity flusher")?;
    if let Some(o) = operator {
        o.await.context("the operator task")?;
    }
    if let Some(c) = controller {
        c.await.context("the controller task")?;
    }
    store.close().await;
    tracing::info!("berth stopped");
    served
}

/// Fails if the runtime holds workspaces the database does not know: an
/// emptied, replaced or older database, with which the controller would stop
/// them all. Says how to recover.
async fn refuse_unknown_workspaces(
    cfg: &Config,
    rt: &dyn runtime::Runtime,
    store: &store::Store,
) -> anyhow::Result<()> {
    let held = rt
        .list()
        .await
        .context("list the workspaces of the data dir")?;
    let known: std::collections::HashSet<model::WorkspaceId> = store
        .workspace_ids()
        .await
        .context("list the database's workspaces")?
        .into_iter()
        .collect();
    let unknown: Vec<&model::WorkspaceId> = held.iter().filter(|id| !known.contains(*id)).collect();
    if unknown.is_empty() {
        return Ok(());
    }
    let db = match &cfg.database_url {
        None => format!(
            "the database {}",
            cfg.data_dir.join("db").join("berth.db").display()
        ),
        Some(_) => "the PostgreSQL database".to_owned(),
    };
    let mut ids: Vec<&str> = unknown.iter().take(5).map(|s| s.as_str()).collect();
    if unknown.len() > 5 {
        ids.push("…");
    }
    let workspaces = cfg.data_dir.join("workspaces");
    bail!(
        "{workspaces} holds {n} workspace(s) that {db} does not know ({ids}). \
         Is it the right database? With an emptied, replaced or older one, berth would stop them all. \
         Restore the database they belong to; or, to start with this one anyway, run \
         `berth serve --stop-orphans` once: it stops them and keeps their files in {kept}.",
        workspaces = workspaces.display(),
        n = unknown.len(),
        ids = ids.join(", "),
        kept = workspaces.join("kept").display(),
    )
}

/// The Kubernetes runtime: Workspace objects in `kubernetes.namespace`.
fn kube_runtime(cfg: &Config, client: kube::Client) -> Arc<dyn runtime::Runtime> {
    if cfg.kubernetes.hub_url.is_none() {
        tracing::warn!("kubernetes.hub_url is not set: JupyterLab workspaces cannot reach berth's API (set it to berth's URL as Pods reach it)");
    }
    Arc::new(runtime_kube::KubeRuntime::new(client, cfg.kube_runtime()))
}

/// The process runtime, and the listener on its gateway address through which
/// workspaces reach berth's API at `port`.
async fn process_runtime(
    cfg: &Config,
    port: u16,
) -> anyhow::Result<(Arc<dyn runtime::Runtime>, tokio::net::TcpListener)> {
    use std::os::unix::fs::MetadataExt;
    if std::fs::metadata("/proc/self").map(|m| m.uid()).ok() != Some(0) {
        bail!("the process runtime needs root (cgroups, network namespaces): run berth serve as root, or set runtime = \"none\"");
    }
    traversable(&cfg.data_dir)?;
    runtime_process::net::ensure_gateway()
        .await
        .context("make the workspace gateway interface")?;
    let port = cfg.gateway_port.unwrap_or(port);
    let gateway = SocketAddr::from((runtime_process::net::GATEWAY_IP, port));
    // Shared with the other replicas on this machine (`SO_REUSEPORT`): the
    // kernel hands each connection to one that lives.
    let listener = (|| {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.set_reuseaddr(true)?;
        socket.set_reuseport(true)?;
        socket.bind(gateway)?;
        socket.listen(1024)
    })()
    .with_context(|| format!("bind the workspace gateway {gateway}"))?;
    let mut rc = runtime_process::Config::new(cfg.data_dir.join("workspaces"));
    rc.gateway_ports = vec![port];
    rc.jupyter_env = cfg.jupyter_env.clone();
    if !cfg.jupyter_env.join("bin/jupyterhub-singleuser").is_file() {
        // Not fatal: profiles with another app still run.
        tracing::warn!(
            jupyter_env = %cfg.jupyter_env.display(),
            "no jupyterhub-singleuser in jupyter_env: JupyterLab profiles will not start \
             (scripts/install-deps makes it, or set jupyter_env)"
        );
    }
    let rt = runtime_process::ProcessRuntime::new(rc).context("set up the process runtime")?;
    Ok((Arc::new(rt), listener))
}

/// Workspace users open their homes below the data dir: every ancestor must let
/// others traverse it.
fn traversable(dir: &Path) -> anyhow::Result<()> {
    let dir = dir
        .canonicalize()
        .with_context(|| format!("resolve {}", dir.display()))?;
    for d in dir.ancestors() {
        let mode = std::fs::metadata(d)?.permissions().mode();
        if mode & 0o001 == 0 {
            bail!(
                "workspace users cannot traverse {} (mode {:o}); choose another data_dir or chmod o+x it",
                d.display(),
                mode & 0o777
            );
        }
    }
    Ok(())
}

/// `berth admin reset-password`: sets a password in the server's database, on
/// its machine, whether the server runs or not.
pub async fn reset_password(cfg: &Config, name: &str, from_stdin: bool) -> anyhow::Result<()> {
    if cfg.database_url.is_none() {
        let db = cfg.data_dir.join("db").join("berth.db");
        if !db.exists() {
            bail!(
                "no database at {}: pass the --data-dir (or --config) that `berth serve` uses",
                db.display()
            );
        }
    }
    let password = if from_stdin {
        Some(crate::cli::read_password(true, "")?)
    } else {
        None
    };
    let store = store::Store::connect(&cfg.database_url())
        .await
        .context("open the database")?;
    let generated = server::reset_password(&store, name, password.as_deref())
        .await
        .map_err(|e| match e.code {
            server::error::Code::NotFound => anyhow::anyhow!("there is no user named {name}"),
            _ => anyhow::anyhow!("{}", e.message),
        })?;
    match generated {
        Some(pw) => {
            println!("set the password of {name} to `{pw}`; their sessions were logged out")
        }
        None => println!("set the password of {name}; their sessions were logged out"),
    }
    Ok(())
}

fn make_dir(dir: &Path, mode: u32) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("set the permissions of {}", dir.display()))
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

pub(crate) async fn shutdown() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("install the SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("shutting down: draining in-flight requests");
}
