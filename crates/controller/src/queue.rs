//! The controller's work queue: which workspace to reconcile when.
//!
//! Each id is in the queue at most once, due at one time; one is in flight at
//! most once. An id that comes due while it is in flight is marked, and runs
//! again as soon as it finishes (unless it failed: then its back-off holds).

use model::WorkspaceId;
use std::collections::{HashMap, HashSet};
use std::future::poll_fn;
use std::task::Poll;

use tokio::time::Instant;
use tokio_util::time::{delay_queue, DelayQueue};

/// What a finished reconcile asks of the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Then {
    /// Settled: nothing until the next change.
    Wait,
    /// Look again at this time (a step is in flight).
    At(Instant),
    /// It failed: retry at this time, and not before, whatever came meanwhile.
    Retry(Instant),
}

#[derive(Debug, Default)]
pub(crate) struct WorkQueue {
    delays: DelayQueue<WorkspaceId>,
    /// Each queued id's key in `delays`, and when it is due.
    queued: HashMap<WorkspaceId, (delay_queue::Key, Instant)>,
    in_flight: HashSet<WorkspaceId>,
    /// In flight, and asked for again meanwhile.
    again: HashSet<WorkspaceId>,
}

impl WorkQueue {
    /// Makes `id` due at `at` (earlier or later than it was); one in flight
    /// runs again when it finishes.
    pub(crate) fn schedule(&mut self, id: WorkspaceId, at: Instant) {
        if self.in_flight.contains(&id) {
            self.again.insert(id);
            return;
        }
        match self.queued.get_mut(&id) {
            Some((key, due)) => {
                self.delays.reset_at(key, at);
                *due = at;
            }
            None => {
                let key = self.delays.insert_at(id.clone(), at);
                self.queued.insert(id, (key, at));
            }
        }
    }

    /// Makes `id` due at `at` unless it is due already (at any time: a
    /// resync keeps a back-off).
    pub(crate) fn schedule_unless_queued(&mut self, id: WorkspaceId, at: Instant) {
        // One in flight reads everything fresh anyway.
        if !self.queued.contains_key(&id) && !self.in_flight.contains(&id) {
            self.schedule(id, at);
        }
    }

    /// Takes `id` out of the queue and counts it in flight, to run now
    /// whatever else is due (the runtime said it changed: its own lane, so
    /// that an app that came up is not kept waiting behind starts). `false`
    /// if it is in flight: then it runs again when it finishes.
    pub(crate) fn take_now(&mut self, id: WorkspaceId) -> bool {
        if self.in_flight.contains(&id) {
            self.again.insert(id);
            return false;
        }
        if let Some((key, _)) = self.queued.remove(&id) {
            self.delays.remove(&key);
        }
        self.in_flight.insert(id);
        true
    }

    /// The reconciles running.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Waits for the next id that is due and not in flight, and counts it in
    /// flight. Cancel-safe: nothing is taken until it returns.
    pub(crate) async fn next(&mut self) -> WorkspaceId {
        loop {
            let id = poll_fn(|cx| match self.delays.poll_expired(cx) {
                Poll::Ready(Some(expired)) => Poll::Ready(expired.into_inner()),
                // Empty: nothing until something is scheduled (which happens
                // only in another branch of the caller's select).
                Poll::Ready(None) | Poll::Pending => Poll::Pending,
            })
            .await;
            self.queued.remove(&id);
            if self.in_flight.contains(&id) {
                self.again.insert(id);
                continue;
            }
            self.in_flight.insert(id.clone());
            return id;
        }
    }

    /// `id`'s reconcile finished; `then` says what it asks for.
    pub(crate) fn done(&mut self, id: &str, then: Then) {
        self.in_flight.remove(id);
        let again = self.again.remove(id);
        let at = match then {
            Then::Retry(at) => Some(at),
            _ if again => Some(Instant::now()),
            Then::At(at) => Some(at),
            Then::Wait => None,
        };
        if let Some(at) = at {
            // Nothing is queued for an id in flight: `schedule` marks it.
            self.schedule(id.into(), at);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// The next id within `within` of (paused) time, if any.
    async fn next_within(q: &mut WorkQueue, within: Duration) -> Option<WorkspaceId> {
        tokio::time::timeout(within, q.next()).await.ok()
    }

    #[tokio::test(start_paused = true)]
    async fn ids_come_due_in_time_order_once_each() {
        let mut q = WorkQueue::default();
        let now = Instant::now();
        q.schedule("b".into(), now + Duration::from_secs(2));
        q.schedule("a".into(), now + Duration::from_secs(1));
        q.schedule("c".into(), now + Duration::from_secs(3));
        // Scheduled again: one entry, at the new time.
        q.schedule("c".into(), now + Duration::from_millis(1500));
        assert_eq!(next_within(&mut q, Duration::from_millis(900)).await, None);
        assert_eq!(q.next().await, "a");
        assert_eq!(q.next().await, "c");
        assert_eq!(q.next().await, "b");
        assert_eq!(Instant::now() - now, Duration::from_secs(2), "on time");
        assert_eq!(q.in_flight(), 3);
        assert_eq!(
            next_within(&mut q, Duration::from_secs(3600)).await,
            None,
            "once each"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn one_taken_now_jumps_the_queue_and_is_in_flight_once() {
        let mut q = WorkQueue::default();
        let now = Instant::now();
        q.schedule("a".into(), now);
        q.schedule("b".into(), now + Duration::from_secs(5));
        assert!(q.take_now("b".into()), "ahead of a, which is due");
        assert_eq!(q.in_flight(), 1);
        assert_eq!(q.next().await, "a");
        assert!(!q.take_now("b".into()), "in flight already");
        q.done("b", Then::Wait);
        assert_eq!(
            next_within(&mut q, Duration::ZERO).await.as_deref(),
            Some("b"),
            "asked for while in flight: again"
        );
        assert_eq!(
            next_within(&mut q, Duration::from_secs(60)).await,
            None,
            "its queued entry went when it was taken"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_resync_keeps_a_back_off_and_a_change_does_not() {
        let mut q = WorkQueue::default();
        let now = Instant::now();
        q.schedule("a".into(), now);
        assert_eq!(q.next().await, "a");
        q.done("a", Then::Retry(now + Duration::from_secs(8)));
        q.schedule_unless_queued("a".into(), Instant::now());
        assert_eq!(
            next_within(&mut q, Duration::from_secs(7)).await,
            None,
            "back-off holds"
        );
        assert_eq!(q.next().await, "a");
        q.done("a", Then::Retry(Instant::now() + Duration::from_secs(8)));
        // A new spec is worth trying at once.
        q.schedule("a".into(), Instant::now());
        assert_eq!(
            next_within(&mut q, Duration::ZERO).await.as_deref(),
            Some("a")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_id_due_while_in_flight_runs_again_after_unless_it_failed() {
        let mut q = WorkQueue::default();
        q.schedule("a".into(), Instant::now());
        assert_eq!(q.next().await, "a");
        // Asked for again while it runs: not a second one at once.
        q.schedule("a".into(), Instant::now());
        assert_eq!(next_within(&mut q, Duration::from_secs(60)).await, None);
        q.done("a", Then::Wait);
        assert_eq!(
            next_within(&mut q, Duration::ZERO).await.as_deref(),
            Some("a"),
            "again"
        );
        q.schedule("a".into(), Instant::now());
        assert_eq!(next_within(&mut q, Duration::from_secs(1)).await, None);
        let retry = Instant::now() + Duration::from_secs(30);
        q.done("a", Then::Retry(retry));
        assert_eq!(
            next_within(&mut q, Duration::from_secs(29)).await,
            None,
            "back-off wins"
        );
        assert_eq!(q.next().await, "a");
        q.done("a", Then::At(Instant::now() + Duration::from_secs(5)));
        assert_eq!(
            next_within(&mut q, Duration::from_secs(6)).await.as_deref(),
            Some("a")
        );
        q.done("a", Then::Wait);
        assert_eq!(
            next_within(&mut q, Duration::from_secs(3600)).await,
            None,
            "settled"
        );
        assert_eq!(q.in_flight(), 0);
    }
}
