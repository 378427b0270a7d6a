//! The change feed: what each commit changed, told to whoever subscribes in
//! this process at once, and, on PostgreSQL, to every other replica through
//! `NOTIFY` (delivered when, and only if, the transaction commits).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::broadcast;

use model::WorkspaceId;

/// The `NOTIFY` channel replicas speak on.
const CHANNEL: &str = "berth_changes";

/// What a commit changed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Change {
    /// A workspace's spec: created, asked to run, stop or pause, or to be
    /// deleted. The controller acts on it.
    Spec(WorkspaceId),
    /// What the controller observed of a workspace (its status, its
    /// upstream), or its record removed. The route table follows it.
    Status(WorkspaceId),
    /// What a credential reaches: a token or session deleted, a user changed,
    /// a group's members, a share. Caches of authentication drop their entries.
    Credentials,
    /// Anything may have changed (a user renamed, a profile changed, or
    /// notifications lost while the connection to PostgreSQL was down):
    /// look at everything again.
    All,
}

impl Change {
    /// The notification's payload after the origin: a kind letter and an id.
    fn encode(&self) -> String {
        match self {
            Change::Spec(id) => format!("s {id}"),
            Change::Status(id) => format!("t {id}"),
            Change::Credentials => "c".to_owned(),
            Change::All => "a".to_owned(),
        }
    }

    fn decode(text: &str) -> Option<Change> {
        let (kind, id) = text.split_once(' ').unwrap_or((text, ""));
        match (kind, id) {
            ("s", id) if !id.is_empty() => Some(Change::Spec(id.into())),
            ("t", id) if !id.is_empty() => Some(Change::Status(id.into())),
            ("c", "") => Some(Change::Credentials),
            ("a", "") => Some(Change::All),
            _ => None,
        }
    }
}

/// One store's end of the feed; shared by its clones and transactions.
#[derive(Debug)]
pub(crate) struct Feed {
    /// Tells this store's notifications from other replicas'.
    origin: String,
    tx: broadcast::Sender<Change>,
    /// Bumped with every change of credentials, here or on another replica.
    credentials: AtomicU64,
    /// The PostgreSQL listener, stopped when the last clone of the store goes.
    listener: std::sync::Mutex<Option<tokio::task::AbortHandle>>,
}

impl Drop for Feed {
    fn drop(&mut self) {
        if let Some(task) = self.listener.lock().unwrap().take() {
            task.abort();
        }
    }
}

impl Feed {
    pub(crate) fn new() -> Arc<Feed> {
        Arc::new(Feed {
            origin: model::new_id(),
            tx: broadcast::channel(4096).0,
            credentials: AtomicU64::new(0),
            listener: std::sync::Mutex::default(),
        })
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.tx.subscribe()
    }

    pub(crate) fn credentials_epoch(&self) -> u64 {
        self.credentials.load(Ordering::Acquire)
    }

    /// The payload that tells other replicas of `change`.
    pub(crate) fn payload(&self, change: &Change) -> String {
        format!("{} {}", self.origin, change.encode())
    }

    /// Tells this process's subscribers (after a commit, or a notification).
    pub(crate) fn publish(&self, change: Change) {
        if matches!(change, Change::Credentials | Change::All) {
            self.credentials.fetch_add(1, Ordering::AcqRel);
        }
        // No subscriber is no one to tell.
        let _ = self.tx.send(change);
    }

    /// A notification from PostgreSQL: another replica's commit (this
    /// store's own were published at commit).
    fn received(&self, payload: &str) {
        let Some((origin, change)) = payload.split_once(' ') else {
            tracing::warn!(payload, "a change notification berth does not read");
            return;
        };
        if origin == self.origin {
            return;
        }
        match Change::decode(change) {
            Some(change) => self.publish(change),
            None => tracing::warn!(payload, "a change notification berth does not read"),
        }
    }

    /// Listens to other replicas' commits on PostgreSQL at `url`: the first
    /// `LISTEN` before this returns (so that nothing committed after
    /// [`crate::Store::connect`] is missed), then in the background,
    /// reconnecting for as long as the store lives. A connection that was
    /// lost may have missed notifications: subscribers hear [`Change::All`].
    pub(crate) async fn listen(self: &Arc<Self>, url: &str) -> Result<(), sqlx::Error> {
        async fn open(url: &str) -> Result<PgListener, sqlx::Error> {
            let mut listener = PgListener::connect(url).await?;
            listener.listen(CHANNEL).await?;
            Ok(listener)
        }
        let mut listener = open(url).await?;
        let (feed, url) = (Arc::downgrade(self), url.to_owned());
        let task = tokio::spawn(async move {
            loop {
                match listener.try_recv().await {
                    Ok(Some(n)) => match feed.upgrade() {
                        Some(f) => f.received(n.payload()),
                        None => return,
                    },
                    // Lost; the next `try_recv` reconnects and listens again.
                    Ok(None) => {
                        tracing::warn!("lost the change notifications' connection: reconnecting");
                        if !tell(&feed, Change::All) {
                            return;
                        }
                    }
                    // Listen anew, then look at everything: what was
                    // committed while no one listened is heard as `All`.
                    Err(e) => {
                        tracing::warn!(error = %e, "receive change notifications: listening anew");
                        loop {
                            tokio::time::sleep(Duration::from_secs(1)).await;
                            match open(&url).await {
                                Ok(l) => {
                                    listener = l;
                                    break;
                                }
                                Err(e) => {
                                    tracing::warn!(error = %e, "listen for change notifications")
                                }
                            }
                        }
                        if !tell(&feed, Change::All) {
                            return;
                        }
                    }
                }
            }
        });
        *self.listener.lock().unwrap() = Some(task.abort_handle());
        Ok(())
    }
}

/// Publishes on the feed if the store still lives.
fn tell(feed: &Weak<Feed>, change: Change) -> bool {
    match feed.upgrade() {
        Some(f) => {
            f.publish(change);
            true
        }
        None => false,
    }
}

/// The `NOTIFY` of `payload`, run inside the transaction that made the change.
pub(crate) const NOTIFY: &str = "SELECT pg_notify('berth_changes', $1)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_round_trip_and_junk_is_refused() {
        for c in [
            Change::Spec("0190a".into()),
            Change::Status("0190b".into()),
            Change::Credentials,
            Change::All,
        ] {
            assert_eq!(Change::decode(&c.encode()), Some(c));
        }
        for junk in ["", "s", "s ", "x 1", "c 1", "a b", "t"] {
            assert_eq!(Change::decode(junk), None, "{junk:?}");
        }
    }

    #[tokio::test]
    async fn a_replica_hears_others_not_itself() {
        let feed = Feed::new();
        let mut rx = feed.subscribe();
        feed.received(&feed.payload(&Change::Credentials));
        feed.received(&format!("other {}", Change::Spec("w1".into()).encode()));
        feed.received("other junk");
        feed.received("nospace");
        assert_eq!(rx.recv().await.unwrap(), Change::Spec("w1".into()));
        assert!(rx.try_recv().is_err(), "its own change is not heard twice");
        assert_eq!(feed.credentials_epoch(), 0);
        feed.received("other c");
        assert_eq!(feed.credentials_epoch(), 1);
    }
}
