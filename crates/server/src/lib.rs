//! berth's HTTP control plane assembled: the REST API under `/api/v1`
//! (documented by a generated OpenAPI file), JupyterHub's API under `/hub/api`
//! ([`api_hub`]), the web portal under `/hub/` ([`portal`]), the proxy's door
//! under `/user/`, health and metrics, behind one middleware stack; what they
//! share is [`web`]'s.
//!
//! Handlers parse a request into an `app` command and render what comes back.
//! They never call a runtime and never retry; the controller acts on what they
//! wrote.

mod observe;
mod openapi;
mod proxied;
pub(crate) mod routes;

use std::sync::Arc;

pub use api_hub as hub;
pub use web::{auth, error, metrics, AppState, Quota, ServerConfig, MAX_BODY};

use axum::extract::DefaultBodyLimit;
use axum::Router;

pub use openapi::openapi;

/// The controller's observations, recorded in [`metrics::Metrics`].
#[derive(Debug, Clone)]
pub struct ControllerMetrics(pub Arc<metrics::Metrics>);

impl controller::Observer for ControllerMetrics {
    fn reconciled(&self, outcome: controller::Outcome, took: std::time::Duration) {
        self.0.reconciled(outcome.as_str(), took);
    }

    fn leading(&self, leading: bool) {
        self.0.leading(leading);
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

/// Every request's way in, for a listener: `/user/…` straight to the proxy
/// (`proxied::serve`), ahead of the router, whose matching, middleware and
/// state clones a forwarded request does not need; everything else through
/// [`router`] (which serves `/user/…` too, the same way, for callers of the
/// router alone).
#[derive(Debug, Clone)]
pub struct Front(Arc<(Router, AppState)>);

impl Front {
    pub fn new(state: AppState) -> Front {
        Front(Arc::new((router(state.clone()), state)))
    }

    /// The answer to `req` from `peer`.
    pub async fn call(
        &self,
        req: axum::http::Request<hyper::body::Incoming>,
        peer: std::net::SocketAddr,
    ) -> axum::response::Response {
        use tower::ServiceExt;
        let (router, state) = &*self.0;
        if proxied::is_proxied(req.uri().path()) {
            return proxied::serve(state, req, peer)
                .await
                .map(axum::body::Body::new);
        }
        let mut req = req.map(axum::body::Body::new);
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
        match router.clone().oneshot(req).await {
            Ok(res) => res,
            Err(never) => match never {},
        }
    }
}

/// First start: [`app::bootstrap`], with its error as the API reports one.
pub async fn bootstrap(
    store: &app::Store,
    admin_password: Option<&str>,
) -> Result<Option<String>, error::ApiError> {
    Ok(app::bootstrap(store, admin_password).await?)
}

/// The profiles `berth serve`'s configuration names (`[profiles.NAME]`),
/// each over the Standard profile's values, as the API's `ProfileCreate`
/// takes them: [`app::configure_profiles`]. A bad one is an error naming it
/// and its field, and nothing is changed.
pub async fn configure_profiles(
    store: &app::Store,
    profiles: &std::collections::BTreeMap<String, api_types::ProfileUpdate>,
) -> Result<Vec<model::Name>, error::ApiError> {
    let mut specs = Vec::new();
    for (name, fields) in profiles {
        let name = web::extract::name("profile", name)?;
        let mut fields = fields.clone();
        if fields.display_name.is_none() {
            fields.display_name = Some(name.to_string());
        }
        let spec = web::convert::apply_profile(model::ProfileSpec::standard(), fields).map_err(
            |mut e| {
                e.message = format!("profile {name}: {}", e.message);
                e
            },
        )?;
        specs.push((name, spec));
    }
    Ok(app::configure_profiles(store, &specs).await?)
}

/// `berth admin reset-password`: [`app::reset_password`] of the user `name`.
pub async fn reset_password(
    store: &app::Store,
    name: &str,
    password: Option<&str>,
) -> Result<Option<String>, error::ApiError> {
    let name = web::extract::name("name", name)?;
    Ok(app::reset_password(store, &name, password).await?)
}
