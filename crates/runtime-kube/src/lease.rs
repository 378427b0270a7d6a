//! Leader election with a `coordination.k8s.io` Lease, as client-go's
//! `leaderelection` does it: one replica holds the Lease and renews it; the
//! others take it over when its record has stood still for the Lease's
//! duration, measured by their own clocks from when they first saw that
//! record (never by comparing clocks). The holder steps down when it has not
//! renewed for two thirds of the duration, before anyone may take over; on a
//! clean shutdown it gives the Lease up, so another takes over at once.
//!
//! kube-rs has no leader election of its own; the crates that add one
//! (`kube-leader-election`, `kube-lease-manager`) follow kube's releases
//! with a delay and do not yet build with kube 5, and this is a page of code.

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::Client;
use tokio::time::Instant;

/// Who holds which Lease for how long.
#[derive(Debug, Clone)]
pub struct Election {
    pub namespace: String,
    pub name: String,
    /// This replica (its Pod's name, in a cluster).
    pub identity: String,
    /// How long a record must stand still before another replica takes over.
    pub duration: Duration,
}

impl Election {
    fn renew_every(&self) -> Duration {
        self.duration / 5
    }

    /// How long a holder goes on without a renewal before it steps down.
    fn renew_deadline(&self) -> Duration {
        self.duration * 2 / 3
    }
}

fn now() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}

/// What a follower last saw of the Lease, and when.
struct Seen {
    record: (Option<String>, Option<String>),
    at: Instant,
}

/// One attempt to take or renew the Lease; whether this replica holds it.
async fn try_hold(
    api: &Api<Lease>,
    election: &Election,
    seen: &mut Option<Seen>,
) -> Result<bool, kube::Error> {
    let me = &election.identity;
    let seconds = election.duration.as_secs().max(1) as i32;
    let Some(mut lease) = api.get_opt(&election.name).await? else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(election.name.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(me.clone()),
                lease_duration_seconds: Some(seconds),
                acquire_time: Some(now()),
                renew_time: Some(now()),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        };
    };
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
    let record = (holder.clone(), lease.metadata.resource_version.clone());
    let mine = holder.as_deref() == Some(me.as_str());
    if !mine && holder.is_some() {
        let stood = match seen {
            Some(s) if s.record == record => s.at.elapsed(),
            _ => {
                *seen = Some(Seen {
                    record,
                    at: Instant::now(),
                });
                Duration::ZERO
            }
        };
        // The holder's own duration, if it says one, counts.
        let duration = spec
            .lease_duration_seconds
            .map(|s| Duration::from_secs(s.max(1) as u64))
            .unwrap_or(election.duration);
        if stood < duration {
            return Ok(false);
        }
    }
    if !mine {
        spec.holder_identity = Some(me.clone());
        spec.acquire_time = Some(now());
        spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
    }
    spec.lease_duration_seconds = Some(seconds);
    spec.renew_time = Some(now());
    // The resourceVersion makes this fail if anyone wrote in between.
    match api
        .replace(&election.name, &PostParams::default(), &lease)
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

/// Gives the Lease up if this replica holds it: the next replica to look
/// takes it at once.
async fn release(api: &Api<Lease>, election: &Election) -> Result<(), kube::Error> {
    let Some(mut lease) = api.get_opt(&election.name).await? else {
        return Ok(());
    };
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    if spec.holder_identity.as_deref() != Some(election.identity.as_str()) {
        return Ok(());
    }
    spec.holder_identity = None;
    spec.renew_time = Some(now());
    api.replace(&election.name, &PostParams::default(), &lease)
        .await
        .map(drop)
}

/// Runs `work` whenever this replica holds the Lease, until `shutdown`
/// completes; `work` is stopped (its task aborted) when the Lease is lost.
/// `leading` hears each change of leadership.
pub async fn lead<W, F>(
    client: Client,
    election: Election,
    work: W,
    leading: impl Fn(bool) + Send,
    shutdown: impl Future<Output = ()>,
) where
    W: Fn() -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let api = Api::<Lease>::namespaced(client, &election.namespace);
    let me = election.identity.as_str();
    tokio::pin!(shutdown);
    let mut seen = None;
    loop {
        // Follow until the Lease is ours.
        loop {
            match try_hold(&api, &election, &mut seen).await {
                Ok(true) => break,
                Ok(false) => {}
                Err(e) => tracing::warn!(lease = election.name, error = %e, "read the Lease"),
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(election.renew_every()) => {}
            }
        }
        tracing::info!(lease = election.name, holder = me, "leading");
        leading(true);
        // A renewal counts from before it was asked for.
        let mut renewed = Instant::now();
        let mut task = tokio::spawn(work());
        let ended = loop {
            tokio::select! {
                () = &mut shutdown => break Ended::Shutdown,
                ended = &mut task => {
                    tracing::error!(?ended, "the work ended while leading: giving the Lease up");
                    break Ended::Work;
                }
                () = tokio::time::sleep(election.renew_every()) => {}
            }
            let asked = Instant::now();
            let deadline = renewed + election.renew_deadline();
            match tokio::time::timeout_at(deadline, try_hold(&api, &election, &mut seen)).await {
                Ok(Ok(true)) => renewed = asked,
                Ok(Ok(false)) => {
                    tracing::warn!(lease = election.name, "another replica took the Lease");
                    break Ended::Lost;
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "renew the Lease"),
                Err(_) => {}
            }
            if Instant::now() >= deadline {
                tracing::warn!(
                    lease = election.name,
                    "could not renew the Lease: stepping down"
                );
                break Ended::Lost;
            }
        };
        task.abort();
        let _ = task.await;
        leading(false);
        if ended != Ended::Lost {
            if let Err(e) = release(&api, &election).await {
                tracing::warn!(error = %e, "give the Lease up");
            }
        }
        if ended == Ended::Shutdown {
            return;
        }
        seen = None;
    }
}

/// Why a replica stopped leading.
#[derive(Debug, PartialEq, Eq)]
enum Ended {
    Shutdown,
    /// The work ended by itself.
    Work,
    /// The Lease was taken, or could not be renewed in time.
    Lost,
}
