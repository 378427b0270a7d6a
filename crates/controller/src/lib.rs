//! berth's controller: makes each workspace what its spec says.
//!
//! [`reconcile`] is level-triggered and input-free: given only a workspace id it
//! reads the spec from the store and what the runtime observes, takes at most one
//! step toward the spec, and writes `status` and `observed_generation`. It is
//! idempotent, so running it again (after a crash, twice in a row, on a timer) is
//! always safe. The culler is part of it: idle workspaces are stopped and expired
//! ones deleted, as desired-state changes with an audit record.
//!
//! [`Controller::run`] schedules reconciles: on the store's change feed (a spec
//! committed through any replica), on the time a reconcile asked to be called
//! back, and on a periodic resync; one in flight per workspace; failures are
//! retried with exponential back-off and jitter. With several replicas on one
//! database, only the holder of the controller's lease runs it
//! ([`leader::lead`]).
//!
//! Every replica's proxy routes from the [`RouteTable`] that [`routes::follow`]
//! keeps from the store: the reconcile writes each workspace's upstream with its
//! status. The controller knows no HTTP.

pub mod activity;
pub mod leader;
mod queue;
mod reconcile;
pub mod routes;
mod scheduler;

use model::WorkspaceId;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use model::Millis;
use runtime::{Runtime, RuntimeError};

pub use reconcile::{reconcile, Action};
pub use scheduler::{backoff, Controller};

pub use model::route::{Route, RouteTable};

/// A reconcile failed; the scheduler retries it with back-off.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("reconcile workspace {id}: store")]
    Store {
        id: WorkspaceId,
        #[source]
        source: store::StoreError,
    },
    #[error("reconcile workspace {id}: runtime")]
    Runtime {
        id: WorkspaceId,
        #[source]
        source: RuntimeError,
    },
}

/// The source of "now" for the culler and timeouts, so tests can move time.
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    fn now(&self) -> Millis;
}

/// The system clock.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Millis {
        model::now_millis()
    }
}

/// A clock that moves only when told to.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(at: Millis) -> Self {
        ManualClock(AtomicI64::new(at))
    }

    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_millis() as i64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Millis {
        self.0.load(Ordering::SeqCst)
    }
}

/// Settings of the controller.
#[derive(Debug, Clone)]
pub struct Config {
    /// How often every workspace is reconciled even without a change.
    pub resync: Duration,
    /// The longest wait before a starting workspace is looked at again (the wait
    /// starts at 25 ms and grows with the time it has been starting).
    pub poll: Duration,
    /// The longest retry delay after repeated failures.
    pub max_backoff: Duration,
    /// Reconciles running at once.
    pub concurrency: usize,
    /// Failed starts in a row after which a workspace stays `failed` (the
    /// tries between wait 1 s, 2 s, 4 s, … up to `max_backoff`).
    pub max_failed_starts: u32,
    /// The first uid given to a user's workspaces.
    pub uid_base: i64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            resync: Duration::from_secs(30),
            poll: Duration::from_millis(500),
            max_backoff: Duration::from_secs(300),
            concurrency: 32,
            max_failed_starts: 5,
            uid_base: 200_000,
        }
    }
}

/// What a reconcile needs; shared by all of them.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub store: store::Store,
    pub runtime: Arc<dyn Runtime>,
    pub clock: Arc<dyn Clock>,
    pub config: Config,
    /// Told of every reconcile (the server's metrics).
    pub observer: Option<Arc<dyn Observer>>,
}

/// How a reconcile ended, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Done, or to be looked at again later.
    Ok,
    /// A store error: retried with back-off.
    StoreError,
    /// A runtime error: retried with back-off.
    RuntimeError,
    /// The reconcile panicked: retried with back-off.
    Panicked,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::StoreError => "store_error",
            Outcome::RuntimeError => "runtime_error",
            Outcome::Panicked => "panicked",
        }
    }
}

/// What wants to know of each reconcile: how it ended and how long it took.
pub trait Observer: Send + Sync + std::fmt::Debug {
    fn reconciled(&self, outcome: Outcome, took: std::time::Duration);

    /// This replica began (`true`) or stopped leading.
    fn leading(&self, leading: bool) {
        let _ = leading;
    }
}

impl Ctx {
    pub fn new(
        store: store::Store,
        runtime: Arc<dyn Runtime>,
        clock: Arc<dyn Clock>,
        config: Config,
    ) -> Self {
        Ctx {
            store,
            runtime,
            clock,
            config,
            observer: None,
        }
    }
}
