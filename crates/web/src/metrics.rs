//! Prometheus metrics: every metric berth exports is defined here.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProxyLabels {
    /// `owner/name`.
    workspace: SharedLabel,
    /// The app's status class (`2xx`, …), or `timeout` or `unreachable`.
    outcome: &'static str,
}

/// A label value shared with the route table: counting a proxied request
/// copies no string.
#[derive(Debug, Clone, Hash, PartialEq, Eq)]
struct SharedLabel(Arc<str>);

impl EncodeLabelValue for SharedLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&&*self.0, encoder)
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

/// The registry and the handles to its metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Family<RouteLabels, Histogram>,
    logins: Family<OutcomeLabels, Counter>,
    reconciles: Family<OutcomeLabels, Histogram>,
    leader: Gauge,
    proxied: Family<ProxyLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("berth");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests served, by method, route template and status",
            requests.clone(),
        );
        let durations = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0001, 2.0, 18))
        });
        registry.register(
            "http_request_duration_seconds",
            "Time to serve an HTTP request, by method and route template",
            durations.clone(),
        );
        let logins = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "logins",
            "Password logins, by outcome (success, failure, throttled)",
            logins.clone(),
        );
        let reconciles = Family::<OutcomeLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        registry.register(
            "reconcile_duration_seconds",
            "Time the controller took to reconcile a workspace, by outcome \
             (ok, store_error, runtime_error, panicked); the count is the reconciles",
            reconciles.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "controller_leader",
            "1 while this replica holds the controller's lease and runs it, else 0",
            leader.clone(),
        );
        let proxied = Family::<ProxyLabels, Counter>::default();
        registry.register(
            "proxy_requests",
            "Requests the proxy forwarded to workspaces' apps, by workspace and by how \
             the app answered (its status class, timeout, unreachable)",
            proxied.clone(),
        );
        Metrics {
            registry,
            requests,
            durations,
            logins,
            reconciles,
            leader,
            proxied,
        }
    }
}

impl Metrics {
    pub fn observe_request(&self, method: &str, route: &str, status: u16, took: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_owned(),
                route: route.to_owned(),
                status,
            })
            .inc();
        self.durations
            .get_or_create(&RouteLabels {
                method: method.to_owned(),
                route: route.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    /// A request the proxy forwarded to `workspace` (`owner/name`).
    pub fn proxied(&self, workspace: &Arc<str>, outcome: &'static str) {
        self.proxied
            .get_or_create(&ProxyLabels {
                workspace: SharedLabel(workspace.clone()),
                outcome,
            })
            .inc();
    }

    pub fn login(&self, outcome: &str) {
        self.logins
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// One reconcile of the controller, by its outcome (`ok`, `requeue`, `error`).
    pub fn reconciled(&self, outcome: &str, took: Duration) {
        self.reconciles
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    /// Whether this replica's controller leads.
    pub fn leading(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}
