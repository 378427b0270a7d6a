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
    /// How the proxy talks to workspaces' apps.
    pub proxy: proxy::Settings,
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
            proxy: proxy::Settings::default(),
        }
    }
}

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The operations; handlers call these rather than the store.
    pub app: app::App,
    pub metrics: Arc<metrics::Metrics>,
    pub config: Arc<ServerConfig>,
    /// The proxy to workspaces, over the controller's route table.
    pub proxy: proxy::Proxy,
    /// The runtime, for what only it can tell (a workspace's log and resource
    /// use, shown by the portal); `None` without one.
    pub runtime: Option<Arc<dyn runtime::Runtime>>,
}

impl AppState {
    pub fn new(store: app::Store, config: ServerConfig) -> Self {
        AppState {
            app: app::App::new(
                store,
                app::Config {
                    quota: config.quota,
                    session_ttl: config.session_ttl,
                    login_max_failures: config.login_max_failures,
                    login_lockout: config.login_lockout,
                },
            ),
            metrics: Arc::default(),
            // No routes: until `with_routes`, every workspace is unknown.
            proxy: proxy::Proxy::with_settings(
                tokio::sync::watch::channel(Arc::default()).1,
                &[auth::SESSION_COOKIE],
                config.proxy,
            ),
            config: Arc::new(config),
            runtime: None,
        }
    }

    /// Serves workspaces through `routes` ([`controller::routes::follow`]).
    pub fn with_routes(
        mut self,
        routes: tokio::sync::watch::Receiver<Arc<model::route::RouteTable>>,
    ) -> Self {
        self.proxy =
            proxy::Proxy::with_settings(routes, &[auth::SESSION_COOKIE], self.config.proxy);
        self
    }
}

/// The whole HTTP application.
pub fn router(state: AppState) -> Router {
    let (api, doc) = openapi::api();
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
        if let Err(e) = state.app.record_activity(&batch).await {
            tracing::warn!("record workspace activity: {}", model::error_chain(&e));
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

/// First start: [`app::bootstrap`], with its error as the API reports one.
pub async fn bootstrap(
    store: &app::Store,
    admin_password: Option<&str>,
) -> Result<Option<String>, error::ApiError> {
    Ok(app::bootstrap(store, admin_password).await?)
}

/// `berth admin reset-password`: [`app::reset_password`] of the user `name`.
pub async fn reset_password(
    store: &app::Store,
    name: &str,
    password: Option<&str>,
) -> Result<Option<String>, error::ApiError> {
    let name = extract::name("name", name)?;
    Ok(app::reset_password(store, &name, password).await?)
}
