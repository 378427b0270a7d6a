//! The route table every replica's proxy reads, kept from the store: the
//! controller writes each workspace's status and upstream, the change feed says
//! which workspace changed, and the table follows within a query.

use std::collections::HashMap;
use std::sync::Arc;

use model::{Name, ProfileSpec};
use store::{Change, Store, StoreError};
use tokio::sync::{broadcast, watch};

use crate::{Route, RouteTable};

/// Every workspace's route, as the store holds them now.
pub async fn load(store: &Store) -> Result<RouteTable, StoreError> {
    let profiles: HashMap<Name, ProfileSpec> = store
        .profiles()
        .await?
        .into_iter()
        .map(|p| (p.name, p.spec))
        .collect();
    let mut table = RouteTable::new();
    for ws in store.all_workspaces(None).await? {
        if let Some(spec) = profiles.get(&ws.spec.profile) {
            table.insert(Route::key_of(&ws), Arc::new(Route::of(&ws, spec)));
        }
    }
    Ok(table)
}

/// The route table, loaded now and then kept up to date from the change feed
/// until the store closes (a background task), and read in full every
/// [`RELOAD`] all the same (against a notification lost where no one could
/// tell). A failed read is retried with the next change, or, at the latest, a
/// second later in full.
pub async fn follow(store: Store) -> Result<watch::Receiver<Arc<RouteTable>>, StoreError> {
    follow_every(store, RELOAD).await
}

/// How often every replica reads its route table in full.
pub const RELOAD: std::time::Duration = std::time::Duration::from_secs(60);

async fn follow_every(
    store: Store,
    reload: std::time::Duration,
) -> Result<watch::Receiver<Arc<RouteTable>>, StoreError> {
    // Subscribed before the load, so that nothing committed after it is missed.
    let mut feed = store.changes();
    let (tx, rx) = watch::channel(Arc::new(load(&store).await?));
    tokio::spawn(async move {
        let mut stale = false;
        let mut next_reload = tokio::time::Instant::now() + reload;
        loop {
            let wait = if stale {
                std::time::Duration::from_secs(1)
            } else {
                next_reload.saturating_duration_since(tokio::time::Instant::now())
            };
            let change = match tokio::time::timeout(wait, feed.recv()).await {
                Ok(change) => change,
                Err(_) => Ok(Change::All),
            };
            if matches!(
                change,
                Ok(Change::All) | Err(broadcast::error::RecvError::Lagged(_))
            ) {
                next_reload = tokio::time::Instant::now() + reload;
            }
            let done = match change {
                Ok(Change::Spec(id) | Change::Status(id)) if !stale => {
                    update(&store, &tx, &id).await
                }
                Ok(Change::Credentials) if !stale => Ok(()),
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => match load(&store).await {
                    Ok(table) => {
                        tx.send_if_modified(|t| {
                            let changed = **t != table;
                            *t = Arc::new(table);
                            changed
                        });
                        Ok(())
                    }
                    Err(e) => Err(e),
                },
                Err(broadcast::error::RecvError::Closed) => return,
            };
            stale = match done {
                Ok(()) => false,
                Err(e) => {
                    tracing::warn!(error = %model::error_chain(&e), "update the route table");
                    true
                }
            };
            if tx.is_closed() {
                return;
            }
        }
    });
    Ok(rx)
}

/// Rereads workspace `id` into the table: changed, added, or gone.
async fn update(
    store: &Store,
    tx: &watch::Sender<Arc<RouteTable>>,
    id: &str,
) -> Result<(), StoreError> {
    let route = match store.workspace(id).await {
        Ok(ws) => {
            let profile = store.profile(&ws.spec.profile).await?;
            Some((Route::key_of(&ws), Arc::new(Route::of(&ws, &profile.spec))))
        }
        Err(StoreError::NotFound { .. }) => None,
        Err(e) => return Err(e),
    };
    tx.send_if_modified(|table| {
        let old = table
            .iter()
            .find(|(_, r)| r.workspace_id == id)
            .map(|(k, r)| (k.clone(), r.clone()));
        if old == route {
            return false;
        }
        let mut next = RouteTable::clone(table);
        if let Some((key, _)) = old {
            next.remove(&key);
        }
        if let Some((key, r)) = route {
            next.insert(key, r);
        }
        *table = Arc::new(next);
        true
    });
    Ok(())
}
