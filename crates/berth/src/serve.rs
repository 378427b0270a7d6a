//! `berth serve`: opens the store, bootstraps a fresh database, serves HTTP until
//! SIGTERM or Ctrl-C, then drains in-flight requests.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;

use crate::config::{Config, LogFormat};

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

pub async fn run(cfg: Config) -> anyhow::Result<()> {
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("create data dir {}", cfg.data_dir.display()))?;
    restrict(&cfg.data_dir)?;
    let store = store::Store::connect(&cfg.database_url())
        .await
        .context("open the database")?;
    let admin_password = cfg.admin_password.as_ref().map(|s| s.expose());
    let generated = server::bootstrap(&store, admin_password)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))
        .context("create the first admin account")?;
    if let Some(pw) = generated {
        // Shown once, on the first start only; it is stored only as a hash.
        println!("created the admin account: user name `admin`, one-time password `{pw}`");
    }
    let state = server::AppState::new(
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
        },
    );
    let listener = tokio::net::TcpListener::bind(cfg.bind)
        .await
        .with_context(|| format!("bind {}", cfg.bind))?;
    let addr = listener.local_addr().context("read the bound address")?;
    tracing::info!(%addr, engine = ?store.engine(), data_dir = %cfg.data_dir.display(), "berth serving");
    println!("listening on http://{addr}");
    axum::serve(
        listener,
        server::router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown())
    .await
    .context("serve HTTP")?;
    store.close().await;
    tracing::info!("berth stopped");
    Ok(())
}

/// The data dir holds secrets (the database): only its owner may enter it.
fn restrict(dir: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("restrict permissions of {}", dir.display()))
}

async fn shutdown() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("install the SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("shutting down: draining in-flight requests");
}
