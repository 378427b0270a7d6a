//! Leader election: with several replicas on one database, only one runs the
//! controller. It holds a lease in the store and renews it; the others watch
//! the lease's version, and one takes it over when the version has stood still
//! for a lease's length (or at once, when the holder is a process of this
//! machine that is gone, or gave the lease up on its way out).
//!
//! Safety rests on time measured by each replica's own monotonic clock, never
//! on clocks agreeing: a follower waits a full lease after it *saw* the last
//! renewal, while the leader stops acting half a lease after the last renewal
//! it *sent* succeeded, and aborts its reconciles rather than finishing them.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::{Controller, Ctx};

/// The lease the controller runs under.
pub const LEASE: &str = "controller";

/// How leadership is held.
#[derive(Debug, Clone)]
pub struct Election {
    /// Who this replica is: `host:pid:start` (see [`Election::replica_id`]).
    pub holder: String,
    /// How long the version of a lease must stand still before another
    /// replica takes it over; the leader renews four times as often.
    pub lease: Duration,
}

impl Election {
    /// An election for this process, with leases of `lease`.
    pub fn new(lease: Duration) -> Election {
        Election {
            holder: Election::replica_id(),
            lease,
        }
    }

    /// This process's name among replicas: the host's name, its pid, and
    /// when the process started (so that a pid used again is another holder).
    pub fn replica_id() -> String {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_default();
        let pid = std::process::id();
        format!("{host}:{pid}:{}", process_start(pid).unwrap_or_default())
    }

    fn renew_every(&self) -> Duration {
        self.lease / 4
    }
}

/// Runs the controller of `ctx` whenever this replica holds the lease, until
/// `shutdown` completes; then lets in-flight reconciles finish and gives the
/// lease up, so that another replica takes over at once.
pub async fn lead(ctx: Ctx, election: Election, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    let store = ctx.store.clone();
    let me = election.holder.as_str();
    'elected: loop {
        tokio::select! {
            () = &mut shutdown => return,
            () = follow(&store, &election) => {}
        }
        tracing::info!(holder = me, "leading: this replica runs the controller");
        let leading = |on: bool| {
            if let Some(o) = &ctx.observer {
                o.leading(on);
            }
        };
        leading(true);
        // A claim counts from before it was sent.
        let mut renewed = Instant::now() - election.renew_every();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let mut controller = tokio::spawn(Controller::new(ctx.clone()).run(async {
            let _ = stop_rx.await;
        }));
        let mut tick = tokio::time::interval(election.renew_every());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let graceful = loop {
            tokio::select! {
                () = &mut shutdown => break true,
                ended = &mut controller => {
                    tracing::error!(?ended, "the controller stopped while leading: giving the lease up");
                    leading(false);
                    let _ = store.release_lease(LEASE, me).await;
                    continue 'elected;
                }
                _ = tick.tick() => {}
            }
            let asked = Instant::now();
            match store.renew_lease(LEASE, me).await {
                Ok(true) => renewed = asked,
                Ok(false) => {
                    tracing::warn!(holder = me, "another replica took the controller's lease");
                    break false;
                }
                Err(e) => {
                    tracing::warn!(error = %model::error_chain(&e), "renew the controller's lease")
                }
            }
            if renewed.elapsed() >= election.lease / 2 {
                tracing::warn!(
                    holder = me,
                    "could not renew the controller's lease: stepping down"
                );
                break false;
            }
        };
        leading(false);
        if graceful {
            let _ = stop_tx.send(());
            let _ = controller.await;
            if let Err(e) = store.release_lease(LEASE, me).await {
                tracing::warn!(error = %model::error_chain(&e), "give the controller's lease up");
            }
            return;
        }
        // Another replica may act soon: stop at once (a reconcile cut short
        // is safe, as after a crash).
        controller.abort();
        let _ = controller.await;
    }
}

/// Returns once this replica holds the lease.
async fn follow(store: &store::Store, election: &Election) {
    let me = election.holder.as_str();
    // The version last seen, and when it was first seen.
    let mut seen: Option<(i64, Instant)> = None;
    let mut waiting_on = String::new();
    loop {
        let claimed = match store.lease(LEASE).await {
            Ok(None) => store.claim_lease(LEASE, me, None).await,
            Ok(Some(lease)) => {
                if lease.holder != waiting_on {
                    tracing::info!(leader = %lease.holder, "following: another replica runs the controller");
                    waiting_on = lease.holder.clone();
                }
                let stood = match seen {
                    Some((version, at)) if version == lease.version => at.elapsed(),
                    _ => {
                        seen = Some((lease.version, Instant::now()));
                        Duration::ZERO
                    }
                };
                if lease.holder == me || stood >= election.lease || gone_from_here(&lease.holder) {
                    store.claim_lease(LEASE, me, Some(lease.version)).await
                } else {
                    Ok(false)
                }
            }
            Err(e) => Err(e),
        };
        match claimed {
            Ok(true) => return,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %model::error_chain(&e), "read the controller's lease")
            }
        }
        tokio::time::sleep(election.renew_every()).await;
    }
}

/// Whether `holder` names a process of this machine that no longer runs.
fn gone_from_here(holder: &str) -> bool {
    let mine = Election::replica_id();
    let host = |id: &str| id.split(':').next().map(str::to_owned);
    let mut parts = holder.splitn(3, ':');
    let (Some(_), Some(pid), Some(start)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    if host(holder) != host(&mine) || host(&mine).is_none_or(|h| h.is_empty()) {
        return false;
    }
    match pid.parse::<u32>() {
        Ok(pid) => process_start(pid).as_deref() != Some(start),
        Err(_) => false,
    }
}

/// When process `pid` started (clock ticks since boot), if it runs.
fn process_start(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command (field 2) is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_holder_of_this_machine_that_is_gone_is_known() {
        let me = Election::replica_id();
        assert!(!gone_from_here(&me), "{me} runs");
        let host = me.split(':').next().unwrap();
        assert!(
            gone_from_here(&format!("{host}:{}:1", std::process::id())),
            "pid used again"
        );
        assert!(gone_from_here(&format!("{host}:4194304:1")), "no such pid");
        assert!(!gone_from_here("elsewhere:1:1"), "another machine's");
        assert!(!gone_from_here("junk"));
    }
}
