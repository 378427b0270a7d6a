//! When reconciles run: on change, on request, on resync; one in flight per
//! workspace; failures retried with exponential back-off and jitter.

use model::WorkspaceId;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::time::Duration;

use model::ConditionKind;
use rand::Rng;
use store::Change;
use tokio::sync::broadcast;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::Instrument;

use crate::queue::{Then, WorkQueue};
use crate::{reconcile, Action, Ctx, ReconcileError};

/// The reconcile scheduler. It wakes on the store's change feed: a spec
/// committed through any replica.
#[derive(Debug)]
pub struct Controller {
    ctx: Ctx,
}

/// The delay before retry number `failures` (1-based): 1 s doubling up to `max`,
/// scaled by `jitter` in [0, 1) to between 80 % and 120 %.
pub fn backoff(failures: u32, max: Duration, jitter: f64) -> Duration {
    let base = Duration::from_secs(1).saturating_mul(1u32 << failures.saturating_sub(1).min(20));
    base.min(max).mul_f64(0.8 + 0.4 * jitter.clamp(0.0, 1.0))
}

impl Controller {
    pub fn new(ctx: Ctx) -> Controller {
        Controller { ctx }
    }

    /// Runs until `shutdown` completes, then lets in-flight reconciles finish
    /// (for at most ten seconds) and returns. The first resync happens at once, so
    /// a restarted control plane re-adopts what runs and cleans up what is gone.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let ctx = self.ctx;
        // Before the first resync, so that nothing committed after it is missed.
        let mut feed = Some(ctx.store.changes());
        let mut queue = WorkQueue::default();
        let mut failures: HashMap<WorkspaceId, u32> = HashMap::new();
        let mut tasks: JoinSet<(WorkspaceId, Result<Action, ReconcileError>)> = JoinSet::new();
        let mut task_ids: HashMap<tokio::task::Id, WorkspaceId> = HashMap::new();
        // Apps that exit by themselves, where the runtime can tell at once;
        // otherwise the resync finds them.
        let mut changes = ctx.runtime.changes();
        let mut resync = tokio::time::interval(ctx.config.resync);
        resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                id = queue.next(), if queue.in_flight() < ctx.config.concurrency => {
                    let handle = tasks.spawn(reconcile_observed(ctx.clone(), id.clone()));
                    task_ids.insert(handle.id(), id);
                }
                change = recv(&mut feed) => match change {
                    Ok(Change::Spec(id)) => queue.schedule(id, Instant::now()),
                    Ok(Change::Status(_) | Change::Credentials) => {}
                    // Missed some, or told to: look at everything.
                    Ok(Change::All) | Err(broadcast::error::RecvError::Lagged(_)) => {
                        resync_all(&ctx, &mut queue).await;
                    }
                    Err(broadcast::error::RecvError::Closed) => feed = None,
                },
                changed = recv(&mut changes) => match changed {
                    // Beside the concurrency limit: these are few and quick,
                    // and an app that came up should not wait behind starts.
                    Ok(id) => if queue.take_now(id.clone()) {
                        let handle = tasks.spawn(reconcile_observed(ctx.clone(), id.clone()));
                        task_ids.insert(handle.id(), id);
                    },
                    Err(broadcast::error::RecvError::Lagged(_)) => resync_all(&ctx, &mut queue).await,
                    Err(broadcast::error::RecvError::Closed) => changes = None,
                },
                _ = resync.tick() => resync_all(&ctx, &mut queue).await,
                Some(joined) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                    let (id, result) = match joined {
                        Ok((task, (id, result))) => {
                            task_ids.remove(&task);
                            (id, Some(result))
                        }
                        Err(e) => match task_ids.remove(&e.id()) {
                            Some(id) => {
                                tracing::error!(workspace.id = %id, error = %e, "reconcile panicked");
                                if let Some(o) = &ctx.observer {
                                    o.reconciled(crate::Outcome::Panicked, std::time::Duration::ZERO);
                                }
                                (id, None)
                            }
                            None => continue,
                        },
                    };
                    let now = Instant::now();
                    let then = match result {
                        Some(Ok(Action::Requeue(after))) => {
                            failures.remove(&id);
                            Then::At(now + after)
                        }
                        Some(Ok(Action::AwaitChange | Action::Gone)) => {
                            failures.remove(&id);
                            Then::Wait
                        }
                        // An error or a panic (already logged): retry with back-off.
                        failed => {
                            let n = failures.entry(id.clone()).or_insert(0);
                            *n += 1;
                            let delay = backoff(*n, ctx.config.max_backoff, rand::thread_rng().gen());
                            if let Some(Err(e)) = failed {
                                tracing::warn!(workspace.id = %id, error = %model::error_chain(&e), attempt = *n,
                                    retry_in_ms = delay.as_millis() as u64, "reconcile failed");
                                record_error(&ctx, &id, &e).await;
                            }
                            Then::Retry(now + delay)
                        }
                    };
                    queue.done(&id, then);
                }
            }
        }
        let drained = tokio::time::timeout(Duration::from_secs(10), async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                in_flight = tasks.len(),
                "stopping with reconciles still in flight"
            );
            tasks.abort_all();
        }
    }
}

/// One reconcile in its span, told to the observer.
async fn reconcile_observed(
    ctx: Ctx,
    id: WorkspaceId,
) -> (WorkspaceId, Result<Action, ReconcileError>) {
    let span = tracing::info_span!("reconcile", workspace.id = %id);
    async move {
        let started = std::time::Instant::now();
        let r = reconcile(&id, &ctx).await;
        if let Some(o) = &ctx.observer {
            let outcome = match &r {
                Ok(_) => crate::Outcome::Ok,
                Err(ReconcileError::Store { .. }) => crate::Outcome::StoreError,
                Err(_) => crate::Outcome::RuntimeError,
            };
            o.reconciled(outcome, started.elapsed());
        }
        (id, r)
    }
    .instrument(span)
    .await
}

/// Queues every workspace for now, keeping the later time of one backing off.
async fn resync_all(ctx: &Ctx, queue: &mut WorkQueue) {
    for id in resync_ids(ctx).await {
        queue.schedule_unless_queued(id, Instant::now());
    }
}

/// Every id to look at on a resync: the store's workspaces, and whatever the
/// runtime holds that the store no longer knows (so that it is cleaned up).
/// The runtime is listed first: anything it runs was in the store before it was
/// started, so an id missing from the later store read is really gone.
async fn resync_ids(ctx: &Ctx) -> Vec<WorkspaceId> {
    let running = match ctx.runtime.list().await {
        Ok(ids) => ids,
        Err(e) => {
            tracing::warn!(error = %model::error_chain(&e), "resync: list runtime workspaces");
            Vec::new()
        }
    };
    let stored = match ctx.store.workspace_ids().await {
        Ok(ids) => ids,
        Err(e) => {
            tracing::warn!(error = %model::error_chain(&e), "resync: list workspaces");
            return Vec::new();
        }
    };
    let known: HashSet<&WorkspaceId> = stored.iter().collect();
    for orphan in running.iter().filter(|id| !known.contains(id)) {
        // Its files are kept: the store may have lost the record (a restored
        // backup), and a user's files are never deleted on a guess.
        tracing::warn!(workspace.id = %orphan, "runtime holds a workspace the store does not know: deleting it, keeping its files");
        if let Err(e) = ctx.runtime.delete(orphan, true).await {
            tracing::warn!(workspace.id = %orphan, error = %model::error_chain(&e), "delete orphaned workspace");
        }
    }
    stored
}

/// Errors become a condition on the status; best effort, the retry follows anyway.
async fn record_error(ctx: &Ctx, id: &WorkspaceId, e: &ReconcileError) {
    let Ok(ws) = ctx.store.workspace(id).await else {
        return;
    };
    let mut status = ws.status.clone();
    let reason = match e {
        ReconcileError::Store { .. } => "StoreError",
        ReconcileError::Runtime { .. } => "RuntimeError",
    };
    crate::reconcile::set_condition(
        &mut status,
        ConditionKind::Reconciled,
        false,
        reason,
        &model::error_chain(e),
        ctx.clock.now(),
    );
    if status == ws.status {
        return;
    }
    if let Ok(mut tx) = ctx.store.begin_background().await {
        if tx
            .set_workspace_status(id, &status, ws.observed_generation, ws.upstream.as_ref())
            .await
            .is_ok()
        {
            let _ = tx.commit().await;
        }
    }
}

/// The next message on `changes`; never, if there are none to come.
async fn recv<T: Clone>(
    changes: &mut Option<broadcast::Receiver<T>>,
) -> Result<T, broadcast::error::RecvError> {
    match changes {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_jitters() {
        let max = Duration::from_secs(300);
        assert_eq!(backoff(1, max, 0.5), Duration::from_secs(1));
        assert_eq!(backoff(2, max, 0.5), Duration::from_secs(2));
        assert_eq!(backoff(5, max, 0.5), Duration::from_secs(16));
        assert_eq!(backoff(40, max, 0.5), max);
        assert_eq!(backoff(1, max, 0.0), Duration::from_millis(800));
        assert_eq!(backoff(1, max, 1.0), Duration::from_millis(1200));
    }
}
