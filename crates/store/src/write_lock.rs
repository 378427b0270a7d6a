//! SQLite's one writer at a time, with the requests of people and API clients
//! ahead of background work (the controller's status writes): under a burst of
//! starts, a start request would otherwise wait behind hundreds of status
//! writes of workspaces already starting. A background writer gives way only
//! so long ([`PATIENCE`]), so a steady stream of requests never starves the
//! controller.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, Notify, OwnedMutexGuard};
use tokio::time::Instant;

/// How long a background writer lets foreground writers go first.
pub(crate) const PATIENCE: Duration = Duration::from_millis(200);

#[derive(Debug, Default)]
pub(crate) struct WriteLock {
    lock: Arc<Mutex<()>>,
    /// Foreground writers waiting for the lock.
    waiting: AtomicUsize,
    /// Told when no foreground writer waits any more.
    clear: Notify,
}

/// A foreground writer counted as waiting until it holds the lock (or gives
/// up: a request that goes away).
struct Waiting<'a>(&'a WriteLock);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if self.0.waiting.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.clear.notify_waiters();
        }
    }
}

impl WriteLock {
    /// The lock, for a request: after the writers ahead of it, but before
    /// background ones.
    pub(crate) async fn foreground(&self) -> OwnedMutexGuard<()> {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let waiting = Waiting(self);
        let guard = self.lock.clone().lock_owned().await;
        drop(waiting);
        guard
    }

    /// The lock, for background work: once no foreground writer waits, or
    /// after [`PATIENCE`].
    pub(crate) async fn background(&self) -> OwnedMutexGuard<()> {
        let patience = Instant::now() + PATIENCE;
        loop {
            let clear = self.clear.notified();
            if self.waiting.load(Ordering::SeqCst) > 0 {
                let _ = tokio::time::timeout_at(patience, clear).await;
            }
            let guard = self.lock.clone().lock_owned().await;
            if self.waiting.load(Ordering::SeqCst) == 0 || Instant::now() >= patience {
                return guard;
            }
            // A request came while this one queued: it goes first.
            drop(guard);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_request_goes_before_background_writers_that_queued_first() {
        let lock = Arc::new(WriteLock::default());
        let held = lock.foreground().await;
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for name in ["background 1", "background 2"] {
            let (lock, order) = (lock.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let _g = lock.background().await;
                order.lock().unwrap().push(name);
            }));
            tokio::task::yield_now().await;
        }
        let (l, o) = (lock.clone(), order.clone());
        tasks.push(tokio::spawn(async move {
            let _g = l.foreground().await;
            o.lock().unwrap().push("request");
        }));
        tokio::task::yield_now().await;
        drop(held);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(order.lock().unwrap()[0], "request");
        assert_eq!(order.lock().unwrap().len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_background_writer_waits_no_longer_than_its_patience() {
        let lock = Arc::new(WriteLock::default());
        // A request that waits for ever (the lock is held elsewhere) would
        // keep background writers out, but only for PATIENCE.
        lock.waiting.fetch_add(1, Ordering::SeqCst);
        let started = Instant::now();
        let _g = lock.background().await;
        assert!(Instant::now() - started >= PATIENCE);
        assert!(Instant::now() - started < PATIENCE * 2);
    }
}
