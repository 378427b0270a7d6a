//! berth's HTTP control plane: the axum router with authentication, the REST API
//! under `/api/v1` (documented by a generated OpenAPI file), JupyterHub's API under
//! `/hub/api`, the web portal under `/hub/`, the proxy under `/user/`, health and
//! metrics.
//!
//! Handlers authenticate and authorize, validate input, then write desired state
//! and an audit record in one transaction. They never call a runtime and never
//! retry; the controller acts on what they wrote.

pub mod auth;
mod convert;
pub mod error;
mod extract;
pub mod hub;
mod hub_admin;
mod hub_servers;
mod hub_services;
mod hub_shares;
mod live;
pub mod metrics;
mod oauth;
mod observe;
mod openapi;
mod portal;
mod proxied;
pub(crate) mod routes;
mod shares;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::Router;

pub use openapi::openapi;

/// Largest request body accepted.
pub const MAX_BODY: usize = 64 * 1024;

/// Settings of the HTTP layer.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Mark cookies `Secure` (berth is served over HTTPS).
    pub secure_cookies: bool,
    pub session_ttl: Duration,
    pub login_max_failures: u32,
    pub login_lockout: Duration,
    /// What each user may hold at most.
    pub quota: Quota,
    /// What profiles' costs are in (`USD`, `€`), shown with every amount.
    pub currency: String,
}

/// Per-user limits, checked when a workspace is created, started or moved to
/// another profile. CPU and memory count the workspaces that are not stopped.
/// An admin may give one user limits of their own (`/api/v1/users/{name}/quota`).
pub use model::Quota;

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            secure_cookies: false,
            session_ttl: Duration::from_secs(14 * 24 * 3600),
            login_max_failures: 5,
            login_lockout: Duration::from_secs(30),
            quota: Quota::default(),
            currency: "USD".into(),
        }
    }
}

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The operations; handlers call these rather than the store.
    pub app: app::App,
    pub store: store::Store,
    pub metrics: Arc<metrics::Metrics>,
    pub throttle: Arc<auth::Throttle>,
    pub config: Arc<ServerConfig>,
    /// The proxy to workspaces, over the controller's route table.
    pub proxy: proxy::Proxy,
    /// The runtime, for what only it can tell (a workspace's log and resource
    /// use, shown by the portal); `None` without one.
    pub runtime: Option<Arc<dyn model::Runtime>>,
}

impl AppState {
    pub fn new(store: store::Store, config: ServerConfig) -> Self {
        AppState {
            app: app::App::new(store.clone(), config.quota),
            store,
            metrics: Arc::default(),
            throttle: Arc::new(auth::Throttle::new(
                config.login_max_failures,
                config.login_lockout,
            )),
            config: Arc::new(config),
            // No routes: until `with_routes`, every workspace is unknown.
            proxy: proxy::Proxy::new(
                tokio::sync::watch::channel(Arc::default()).1,
                &[auth::SESSION_COOKIE],
            ),
            runtime: None,
        }
    }

    /// Serves workspaces through `routes` ([`controller::routes::follow`]).
    pub fn with_routes(
        mut self,
        routes: tokio::sync::watch::Receiver<Arc<model::route::RouteTable>>,
    ) -> Self {
        self.proxy = proxy::Proxy::new(routes, &[auth::SESSION_COOKIE]);
        self
    }
}

/// The whole HTTP application.
pub fn router(state: AppState) -> Router {
    let (api, doc) = routes::api().split_for_parts();
    let doc = Arc::new(doc);
    api.merge(routes::system(doc))
        .merge(hub::routes())
        .merge(portal::routes())
        .route("/user/{*rest}", axum::routing::any(proxied::handle))
        .fallback(routes::not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            observe::observe,
        ))
        .with_state(state)
}

/// Writes the activity the proxy saw to the store every `every`, and once more
/// when `stop` completes. A failed write keeps the batch for the next round.
pub async fn flush_activity(
    state: AppState,
    every: std::time::Duration,
    stop: impl std::future::Future<Output = ()>,
) {
    async fn flush(state: &AppState) {
        let batch = state.proxy.activity().take();
        if batch.is_empty() {
            return;
        }
        let written = async {
            let mut tx = state.store.begin().await?;
            tx.record_activity(&batch).await?;
            tx.commit().await
        }
        .await;
        if let Err(e) = written {
            tracing::warn!("record workspace activity: {e}");
            state.proxy.activity().restore(batch);
        }
    }
    tokio::pin!(stop);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => flush(&state).await,
            () = &mut stop => break,
        }
    }
    flush(&state).await;
}

/// First start: with no user at all, creates the admin account (with the given
/// password or a random one, returned so that it can be shown once) and the
/// built-in profiles. Does nothing on a database that has users.
pub async fn bootstrap(
    store: &store::Store,
    admin_password: Option<&str>,
) -> Result<Option<String>, error::ApiError> {
    if store.count_users().await? > 0 {
        return Ok(None);
    }
    let (password, generated) = match admin_password {
        Some(p) => (p.to_owned(), false),
        None => (auth::random_secret()[..20].to_owned(), true),
    };
    auth::check_password(&password)?;
    let hash = auth::hash_password(password.clone()).await?;
    let mut tx = store.begin().await?;
    let admin = tx
        .insert_user(&store::NewUser {
            name: model::Name::parse("admin").expect("valid name"),
            password_hash: Some(hash),
            is_admin: true,
        })
        .await?;
    for (name, spec) in builtin_profiles() {
        tx.insert_profile(&store::NewProfile {
            name: model::Name::parse(name).expect("valid name"),
            spec,
        })
        .await?;
    }
    tx.audit(&store::NewAudit {
        actor_id: None,
        actor: None,
        action: model::AuditAction::SystemBootstrap,
        target_type: "user",
        target: admin.name.to_string(),
        outcome: model::Outcome::Success,
        source: None,
        request_id: None,
        detail: Some("created the admin account and the built-in profiles".into()),
    })
    .await?;
    tx.commit().await?;
    Ok(generated.then_some(password))
}

/// Sets the password of the user `name` on the server's own machine (`berth
/// admin reset-password`): `password`, else a new random one, which is
/// returned. Every session of the user ends (a running server's cache forgets
/// them within 30 s); the audit record names no actor.
pub async fn reset_password(
    store: &store::Store,
    name: &str,
    password: Option<&str>,
) -> Result<Option<String>, error::ApiError> {
    let name = extract::name("name", name)?;
    let user = store.user_by_name(&name).await?;
    let (password, generated) = match password {
        Some(p) => (p.to_owned(), false),
        None => (auth::random_secret()[..20].to_owned(), true),
    };
    auth::check_password(&password)?;
    let hash = auth::hash_password(password.clone()).await?;
    let mut tx = store.begin().await?;
    tx.update_user(
        &user.id,
        &store::UserPatch {
            password_hash: Some(hash),
            ..Default::default()
        },
    )
    .await?;
    tx.audit(&store::NewAudit {
        actor_id: None,
        actor: None,
        action: model::AuditAction::UserPassword,
        target_type: "user",
        target: user.name.to_string(),
        outcome: model::Outcome::Success,
        source: None,
        request_id: None,
        detail: Some("reset on the server's machine (berth admin reset-password)".into()),
    })
    .await?;
    tx.commit().await?;
    Ok(generated.then_some(password))
}

fn builtin_profiles() -> Vec<(&'static str, model::ProfileSpec)> {
    let standard = model::ProfileSpec::standard();
    let high_memory = model::ProfileSpec {
        display_name: "High-Memory (4 CPU, 32 GiB)".into(),
        cpu_millis: 4000,
        memory_bytes: 32 << 30,
        ..standard.clone()
    };
    vec![("standard", standard), ("high-memory", high_memory)]
}
