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

    /// This process's name among replicas: where it runs (the host's name,
    /// the kernel's boot id and the pid namespace: containers and cloned
    /// machines may share a host name, and their pids), its pid, and when the
    /// process started (so that a pid used again is another holder).
    pub fn replica_id() -> String {
        let pid = std::process::id();
        format!(
            "{}:{pid}:{}",
            this_machine(),
            process_start(pid).unwrap_or_default()
        )
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
            if !renew(&store, me, &mut renewed, election.lease).await {
                break false;
            }
        };
        leading(false);
        if graceful {
            // In-flight reconciles finish (for a while), and the lease holds
            // meanwhile; losing it stops them at once.
            let _ = stop_tx.send(());
            loop {
                tokio::select! {
                    _ = &mut controller => break,
                    _ = tick.tick() => {
                        if !renew(&store, me, &mut renewed, election.lease).await {
                            controller.abort();
                        }
                    }
                }
            }
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

/// Renews the lease, waiting for the store only until half a lease has gone
/// by since the last renewal; whether this replica still leads.
async fn renew(store: &store::Store, me: &str, renewed: &mut Instant, lease: Duration) -> bool {
    let deadline = *renewed + lease / 2;
    let asked = Instant::now();
    match tokio::time::timeout_at(deadline, store.renew_lease(LEASE, me)).await {
        Ok(Ok(true)) => {
            *renewed = asked;
            return true;
        }
        Ok(Ok(false)) => {
            tracing::warn!(holder = me, "another replica took the controller's lease");
            return false;
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %model::error_chain(&e), "renew the controller's lease")
        }
        Err(_) => tracing::warn!("renewing the controller's lease takes too long"),
    }
    if Instant::now() >= deadline {
        tracing::warn!(
            holder = me,
            "could not renew the controller's lease: stepping down"
        );
        return false;
    }
    true
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

/// Where this process runs, as `host/boot-id/pid-namespace`; empty parts
/// where it cannot tell.
fn this_machine() -> String {
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .map(|s| s.trim().replace([':', '/'], "-"))
            .unwrap_or_default()
    };
    let pid_ns = std::fs::read_link("/proc/self/ns/pid")
        .map(|l| l.to_string_lossy().replace([':', '/'], "-"))
        .unwrap_or_default();
    format!(
        "{}/{}/{pid_ns}",
        read("/proc/sys/kernel/hostname"),
        read("/proc/sys/kernel/random/boot_id")
    )
}

/// Whether `holder` names a process of this machine (same host, same boot,
/// same pid namespace) that no longer runs.
fn gone_from_here(holder: &str) -> bool {
    let mut parts = holder.rsplitn(3, ':');
    let (Some(start), Some(pid), Some(machine)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let here = this_machine();
    if machine != here || here.split('/').any(str::is_empty) {
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
        let here = this_machine();
        let pid = std::process::id();
        assert!(gone_from_here(&format!("{here}:{pid}:1")), "pid used again");
        assert!(gone_from_here(&format!("{here}:4194304:1")), "no such pid");
        assert!(!gone_from_here("elsewhere:1:1"), "another machine's");
        let (host, rest) = here.split_once('/').unwrap();
        let (_, ns) = rest.split_once('/').unwrap();
        let clone = format!("{host}/another-boot/{ns}:4194304:1");
        assert!(!gone_from_here(&clone), "another boot's (a cloned machine)");
        let container = format!("{}/pid-[1]:4194304:1", here.rsplit_once('/').unwrap().0);
        assert!(!gone_from_here(&container), "another pid namespace's");
        assert!(!gone_from_here("junk"));
    }
}
