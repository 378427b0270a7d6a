//! The flush of what the proxy saw: every replica's proxy records activity in
//! memory ([`Activity`]), and every replica's controller writes its own to the
//! store in batches. Unlike reconciling, this is not the leader's alone: only
//! the replica that served a request knows of it.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use model::activity::Activity;
use store::Store;

/// Writes `activity` to the store every `every`, and once more when `stop`
/// completes. A failed write keeps the batch for the next round.
pub async fn flush(
    store: Store,
    activity: Arc<Activity>,
    every: Duration,
    stop: impl Future<Output = ()>,
) {
    tokio::pin!(stop);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => once(&store, &activity).await,
            () = &mut stop => break,
        }
    }
    once(&store, &activity).await;
}

async fn once(store: &Store, activity: &Activity) {
    let batch = activity.take();
    if batch.is_empty() {
        return;
    }
    let written = async {
        let mut tx = store.begin_background().await?;
        tx.record_activity(&batch).await?;
        tx.commit().await
    };
    if let Err(e) = written.await {
        tracing::warn!("record workspace activity: {}", model::error_chain(&e));
        activity.restore(batch);
    }
}
