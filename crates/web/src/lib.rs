//! What berth's HTTP front doors share: the state every handler gets
//! ([`AppState`]), who is asking ([`auth`]), errors with stable codes
//! ([`error`]), the extractors that turn bad input into them ([`extract`]),
//! wire conversions ([`convert`]), the operations as the doors call them
//! ([`ops`]), live state for server-sent events ([`live`]) and the metrics
//! ([`metrics`]). The REST API (`server`), JupyterHub's API (`api-hub`) and the
//! portal (`portal`) are built on it; none of them touches the store or a
//! runtime crate.

pub mod auth;
pub mod convert;
pub mod error;
pub mod extract;
pub mod live;
pub mod metrics;
pub mod ops;
pub mod shares;

use std::sync::Arc;
use std::time::Duration;

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

    /// Serves workspaces through `routes` (the controller's `routes::follow`).
    pub fn with_routes(
        mut self,
        routes: tokio::sync::watch::Receiver<Arc<model::route::RouteTable>>,
    ) -> Self {
        self.proxy =
            proxy::Proxy::with_settings(routes, &[auth::SESSION_COOKIE], self.config.proxy);
        self
    }
}
