//! `berth-bench kube-scale`: what `benches/kube-scale.sh` runs. It starts the
//! envtest control plane (a real kube-apiserver and etcd on loopback), a
//! simulated node (kwok's way: Pods reported running and ready, claims bound,
//! no process run) and the given `berth operator run`, as a process of its
//! own so that its memory is its own; then
//!
//! 1. creates N Workspaces, all `Stopped` (so a claim, a Service and a
//!    NetworkPolicy each, no Pod), `concurrency` requests in flight, and
//!    times them until every one's status has caught up with its spec
//!    (`status.observedGeneration`; the reconcile throughput) and until
//!    every home is bound;
//! 2. sets `spec.state: Running` on M of them at once, as berth's runtime
//!    starts a workspace, and times each until its status says `Running`;
//! 3. sets them `Stopped` again at once (the node deletes each Pod at once),
//!    and times each until its status says `Stopped`.
//!
//! All are created stopped, and the M started afterwards, so that each phase
//! measures one thing: phase 1 the operator's throughput at making and
//! reporting objects, phases 2 and 3 the latency of a burst of starts and
//! stops with N Workspaces in the operator's cache (a cluster's morning and
//! evening, when most workspaces exist but are stopped).
//!
//! A phase that stops getting anywhere (less than 1 % more in 3 minutes) is
//! given up; the table then shows how far it got.
//!
//! It follows the Workspaces with one watch (no polling lists), reads memory
//! and CPU time from /proc, counts the operator's reconciles in its log (JSON,
//! `runtime_kube::operator` at debug) and the API server's requests in its
//! `/metrics` (all clients: the operator, the node, this program); then
//! prints a table on stdout. Progress goes to stderr.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Seek};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::NamespaceResourceScope;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::watcher;
use kube::{Client, Resource};
use runtime_kube::crd::{DesiredState, Home, Resources, State, Workspace, WorkspaceSpec};
use runtime_kube::envtest::{self, ControlPlane, Node};
use runtime_kube::runtime::{FIELD_MANAGER, MANAGED_BY};
use serde_json::json;

/// The namespace of the Workspaces, their objects and the operator's Lease.
const NAMESPACE: &str = "berth-scale";
/// The operator's Lease (`kubernetes.lease_name`'s default).
const LEASE: &str = "berth-operator";
/// How long the operator's Lease lasts (`kubernetes.lease_secs`' default).
const LEASE_SECS: u64 = 15;
/// Linux's USER_HZ, the unit of /proc/PID/stat's CPU times (100 on every
/// architecture Linux runs on with a stable ABI).
const CLOCK_TICKS: f64 = 100.0;

/// What `kube-scale` is asked to do.
#[derive(Debug)]
pub struct Args {
    /// The `berth` binary whose operator is measured.
    pub berth: PathBuf,
    /// Workspaces created (N).
    pub workspaces: usize,
    /// Workspaces started at once afterwards (M).
    pub start: usize,
    /// Create and start requests in flight.
    pub concurrency: usize,
    /// The longest each phase may take.
    pub timeout: Duration,
}

pub async fn run(args: Args) -> Result<()> {
    if args.workspaces == 0 || args.workspaces > 99_999 {
        bail!("--workspaces must be from 1 to 99999");
    }
    if args.start > args.workspaces || args.concurrency == 0 {
        bail!("--start must be at most --workspaces, --concurrency positive");
    }
    if !args.berth.is_file() {
        bail!("no berth binary at {}", args.berth.display());
    }
    let missing = envtest::missing();
    if !missing.is_empty() {
        bail!("the control plane needs: {}", missing.join(", "));
    }
    eprintln!("starting kube-apiserver and etcd...");
    let t = Instant::now();
    let cp = tokio::task::spawn_blocking(ControlPlane::start)
        .await?
        .map_err(anyhow::Error::msg)
        .context("start the control plane")?;
    eprintln!(
        "control plane at {} ready in {:.1} s",
        cp.url,
        t.elapsed().as_secs_f64()
    );
    let dir = tempfile::Builder::new()
        .prefix("berth-kube-scale-")
        .tempdir()?;
    let result = bench(&args, &cp, dir.path()).await;
    if result.is_err() {
        let log = std::fs::read_to_string(dir.path().join("operator.log")).unwrap_or_default();
        eprintln!("--- the operator's log ends:\n{}", tail_lines(&log, 5));
        eprintln!(
            "--- kube-apiserver's log ends:\n{}",
            tail_lines(&cp.log("kube-apiserver"), 5)
        );
    }
    // Dropping the control plane joins the thread that stops its processes.
    tokio::task::spawn_blocking(move || drop(cp)).await?;
    result
}

async fn bench(args: &Args, cp: &ControlPlane, dir: &Path) -> Result<()> {
    let client = cp.client().await.map_err(anyhow::Error::msg)?;
    envtest::namespace(&client, NAMESPACE)
        .await
        .context("make the namespace")?;
    let servers = ServerPids::find(cp)?;
    let node = Node::simulate(client.clone(), NAMESPACE);

    // The operator, as `berth operator run` runs in a cluster.
    let log_path = dir.join("operator.log");
    let log = std::fs::File::create(&log_path)?;
    let mut cmd = tokio::process::Command::new("setpriv");
    cmd.args(["--pdeathsig", "KILL", "--"])
        .arg(&args.berth)
        .args(["operator", "run"])
        .current_dir(dir)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", dir)
        .env("BERTH_KUBERNETES__KUBECONFIG", &cp.kubeconfig)
        .env("BERTH_KUBERNETES__NAMESPACE", NAMESPACE)
        .env("BERTH_KUBERNETES__LEASE_SECS", LEASE_SECS.to_string())
        .env("BERTH_LOG__FORMAT", "json")
        .env(
            "RUST_LOG",
            "warn,runtime_kube::operator=debug,runtime_kube::lease=info",
        )
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true);
    let mut operator = cmd.spawn().context("start berth operator run")?;
    let pid = operator.id().context("the operator's pid")?;
    let leases = Api::<Lease>::namespaced(client.clone(), NAMESPACE);
    let t = Instant::now();
    loop {
        let holder = leases
            .get_opt(LEASE)
            .await?
            .and_then(|l| l.spec?.holder_identity);
        if holder.is_some_and(|h| h.ends_with(&format!("-{pid}"))) {
            break;
        }
        if let Some(status) = operator.try_wait()? {
            bail!("berth operator run exited ({status}) before leading");
        }
        if t.elapsed() > Duration::from_secs(60) {
            bail!("berth operator run did not take the Lease within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "operator (pid {pid}) leading after {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let workspaces = Api::<Workspace>::namespaced(client.clone(), NAMESPACE);
    let seen = Arc::new(Mutex::new(Seen::default()));
    let follow = tokio::spawn(follow(workspaces.clone(), seen.clone()));
    // The operator's open sockets, at their most.
    let peak_sockets = Arc::new(AtomicUsize::new(0));
    let sampler = tokio::spawn({
        let peak = peak_sockets.clone();
        async move {
            loop {
                peak.fetch_max(Usage::of(pid).sockets, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    let procs = Procs {
        operator: pid,
        apiserver: servers.apiserver,
        etcd: servers.etcd,
    };
    let mut run = Run {
        args,
        client: client.clone(),
        workspaces,
        seen,
        node: &node,
        oplog: OperatorLog::new(log_path),
        procs,
        requests: Requests::scrape(&client).await?,
        reconciles: Reconciles::default(),
        t0: Instant::now(),
    };
    run.oplog.read();
    run.reconciles = run.oplog.counts();
    let mut report = Report {
        n: args.workspaces,
        m: args.start,
        concurrency: args.concurrency,
        idle: run.procs.sample(),
        ..Report::default()
    };
    let requests0 = run.requests.clone();

    let result = phases(&mut run, &mut report).await;

    // What the table ends with, however far the phases got (the API server
    // may be overloaded: each call is bounded).
    let bounded = Duration::from_secs(60);
    if let Ok(Ok(now)) = tokio::time::timeout(bounded, Requests::scrape(&client)).await {
        report.all_requests = now.minus(&requests0);
    }
    run.oplog.read();
    report.warnings = run.oplog.warnings.clone();
    report.leading = run.oplog.leading;
    report.timeline = {
        let seen = run.seen.lock().unwrap();
        let mut c: Vec<Duration> = seen
            .by_name
            .values()
            .filter_map(|t| t.caught_up)
            .map(|t| t - run.t0)
            .collect();
        c.sort_unstable();
        per_bucket(&c, Duration::from_secs(10))
    };
    if report.objects.is_empty() {
        report.objects = objects(&client, &node).await;
    }
    let exited = operator.try_wait()?;
    report.end = run.procs.sample();
    report.peak_sockets = peak_sockets.load(Ordering::Relaxed);
    sampler.abort();
    follow.abort();
    let _ = operator.kill().await;
    if let Err(e) = &result {
        report.failed = Some(format!("{e:#}"));
    }
    report.print();
    if let Some(status) = exited {
        bail!("berth operator run exited ({status}) during the run");
    }
    result
}

/// What the phases share.
struct Run<'a> {
    args: &'a Args,
    client: Client,
    workspaces: Api<Workspace>,
    seen: Arc<Mutex<Seen>>,
    node: &'a Node,
    oplog: OperatorLog,
    procs: Procs,
    /// The API server's request counts and the operator's reconciles when
    /// the current phase began.
    requests: Requests,
    reconciles: Reconciles,
    /// When the first Workspace was created.
    t0: Instant,
}

impl Run<'_> {
    /// Waits until it is quiet, then what the phase that began at the last
    /// call (or at the start) did.
    async fn end_phase(&mut self, events_before: u64) -> Result<PhaseEnd> {
        let quiet = quiesce(&self.seen, &mut self.oplog).await;
        let requests = Requests::scrape(&self.client).await?;
        let reconciles = self.oplog.counts();
        let end = PhaseEnd {
            quiet,
            requests: requests.minus(&self.requests),
            reconciles: reconciles.minus(&self.reconciles),
            events: self.seen.lock().unwrap().events - events_before,
            sample: self.procs.sample(),
        };
        self.requests = requests;
        self.reconciles = reconciles;
        Ok(end)
    }
}

async fn phases(run: &mut Run<'_>, report: &mut Report) -> Result<()> {
    let args = run.args;
    let n = args.workspaces;

    // Phase 1: N Workspaces, stopped.
    eprintln!(
        "phase 1: creating {n} Workspaces ({} in flight)...",
        args.concurrency
    );
    let apply = PatchParams::apply(FIELD_MANAGER).force();
    run.t0 = Instant::now();
    let mut latencies: Vec<Duration> = futures::stream::iter(0..n)
        .map(|i| {
            let (api, apply) = (run.workspaces.clone(), apply.clone());
            async move {
                let (name, object) = workspace(i);
                let sent = Instant::now();
                api.patch(&name, &apply, &Patch::Apply(&object))
                    .await
                    .with_context(|| format!("create Workspace {name}"))?;
                anyhow::Ok(sent.elapsed())
            }
        })
        .buffer_unordered(args.concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_>>()?;
    let created = run.t0.elapsed();
    latencies.sort_unstable();
    report.create = Some((
        created,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
    ));
    eprintln!(
        "  created in {:.1} s; waiting for their status...",
        created.as_secs_f64()
    );
    wait(&run.seen, "caught up", n, args.timeout, |t| {
        t.caught_up.is_some()
    })
    .await?;
    wait(&run.seen, "homes bound", n, args.timeout, |t| {
        t.bound.is_some()
    })
    .await?;
    let (caught_up, bound) = {
        let seen = run.seen.lock().unwrap();
        let since = |f: fn(&Track) -> Option<Instant>| {
            let mut v: Vec<Duration> = seen
                .by_name
                .values()
                .filter_map(f)
                .map(|t| t - run.t0)
                .collect();
            v.sort_unstable();
            v
        };
        (since(|t| t.caught_up), since(|t| t.bound))
    };
    let all_caught_up = *caught_up.last().expect("n > 0");
    let end = run.end_phase(0).await?;
    report.phase1 = Some(Phase1 {
        caught_up: all_caught_up,
        bound: *bound.last().expect("n > 0"),
        rate: n as f64 / all_caught_up.as_secs_f64(),
        rate_10_90: rate_between(&caught_up, 0.1, 0.9),
        end,
    });

    // Phase 2: M of them started at once; phase 3: stopped at once.
    eprintln!("phase 2: starting {} of them at once...", args.start);
    report.phase2 = Some(burst(run, DesiredState::Running, "running", |t| t.running).await?);
    report.objects = objects(&run.client, run.node).await;
    eprintln!("phase 3: stopping them at once...");
    report.phase3 = Some(burst(run, DesiredState::Stopped, "stopped", |t| t.stopped).await?);
    report.pods_left = (
        count::<Pod>(&run.client, Duration::from_secs(60)).await,
        run.node.pods(),
    );
    Ok(())
}

/// Sets `spec.state` to `state` on the first M Workspaces at once
/// (`concurrency` requests in flight) and waits until each has `reached` it.
async fn burst(
    run: &mut Run<'_>,
    state: DesiredState,
    what: &str,
    reached: fn(&Track) -> Option<Instant>,
) -> Result<Burst> {
    let m = run.args.start;
    let events_before = run.seen.lock().unwrap().events;
    let t1 = Instant::now();
    let sent: HashMap<String, Instant> = futures::stream::iter(0..m)
        .map(|i| {
            let api = run.workspaces.clone();
            async move {
                let name = workspace(i).0;
                let patch = json!({"spec": {"state": state}});
                let at = Instant::now();
                api.patch(&name, &PatchParams::default(), &Patch::Merge(patch))
                    .await
                    .with_context(|| format!("set Workspace {name}'s spec.state"))?;
                anyhow::Ok((name, at))
            }
        })
        .buffer_unordered(run.args.concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_>>()?;
    let requests = t1.elapsed();
    wait(&run.seen, what, m, run.args.timeout, |t| {
        reached(t).is_some()
    })
    .await?;
    let (mut each, last) = {
        let seen = run.seen.lock().unwrap();
        let each: Vec<Duration> = sent
            .iter()
            .map(|(name, at)| reached(&seen.by_name[name]).expect("reached") - *at)
            .collect();
        let last = seen.by_name.values().filter_map(reached).max();
        (each, last)
    };
    each.sort_unstable();
    let end = run.end_phase(events_before).await?;
    Ok(Burst {
        requests,
        all: last.map(|l| l - t1).unwrap_or_default(),
        each: (
            percentile(&each, 0.5),
            percentile(&each, 0.99),
            percentile(&each, 1.0),
        ),
        end,
    })
}

/// How many objects of each kind the namespace holds, and how many Pods the
/// node has bound.
async fn objects(client: &Client, node: &Node) -> Vec<(&'static str, Option<usize>)> {
    let within = Duration::from_secs(60);
    vec![
        ("Workspaces", count::<Workspace>(client, within).await),
        ("PVCs", count::<PersistentVolumeClaim>(client, within).await),
        ("Services", count::<Service>(client, within).await),
        (
            "NetworkPolicies",
            count::<NetworkPolicy>(client, within).await,
        ),
        ("Pods", count::<Pod>(client, within).await),
        ("Pods on the node", Some(node.pods())),
    ]
}

/// The Workspace object `i`: `ws-s{i}`, stopped, as berth's runtime writes one.
fn workspace(i: usize) -> (String, serde_json::Value) {
    let id = format!("s{i:05}");
    let owner = format!("u{i:05}");
    let name = Workspace::object_name(&id);
    let spec = WorkspaceSpec {
        id,
        owner: owner.clone(),
        name: "default".into(),
        profile: "Standard".into(),
        state: DesiredState::Stopped,
        image: "quay.io/jupyter/base-notebook:latest".into(),
        command: vec!["jupyterhub-singleuser".into()],
        port: 8888,
        base_url: format!("/user/{owner}/default/"),
        uid: 1000,
        env: Vec::new(),
        secret_name: None,
        resources: Resources {
            cpu_millis: 500,
            memory_bytes: 512 << 20,
            max_processes: 256,
            gpus: 0,
        },
        home: Home {
            size_bytes: 1 << 30,
            storage_class_name: None,
            keep_on_delete: false,
        },
        node_selector: BTreeMap::new(),
        tolerations: Vec::new(),
        restarted_at: None,
        egress: false,
    };
    let object = json!({
        "apiVersion": "berth.dev/v1alpha1",
        "kind": "Workspace",
        "metadata": {
            "name": name,
            "labels": {MANAGED_BY.0: MANAGED_BY.1, "berth.dev/owner": owner},
        },
        "spec": spec,
    });
    (name, object)
}

/// When each Workspace first reached what the phases wait for.
#[derive(Debug, Default)]
struct Track {
    /// Its status first described its spec (`observedGeneration` caught up).
    caught_up: Option<Instant>,
    /// Its home was first reported bound (the `HomeBound` condition).
    bound: Option<Instant>,
    /// It was first reported `Running` for a spec changed since its creation.
    running: Option<Instant>,
    /// It was first reported `Stopped` for a spec changed twice since.
    stopped: Option<Instant>,
}

#[derive(Debug, Default)]
struct Seen {
    by_name: HashMap<String, Track>,
    /// Workspace changes the watch delivered (creations and every write since).
    events: u64,
}

/// Follows every Workspace of the namespace with one watch.
async fn follow(api: Api<Workspace>, seen: Arc<Mutex<Seen>>) {
    let stream = watcher(api, watcher::Config::default());
    let mut stream = std::pin::pin!(stream);
    while let Some(event) = stream.next().await {
        let ws = match event {
            Ok(watcher::Event::Apply(ws) | watcher::Event::InitApply(ws)) => ws,
            Ok(_) => continue,
            Err(e) => {
                eprintln!("  watching Workspaces: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let now = Instant::now();
        let generation = ws.metadata.generation.unwrap_or(0);
        let status = ws.status.unwrap_or_default();
        let current = status.observed_generation >= Some(generation);
        let bound = status
            .conditions
            .iter()
            .any(|c| c.type_ == "HomeBound" && c.status == "True");
        let mut seen = seen.lock().unwrap();
        seen.events += 1;
        let t = seen
            .by_name
            .entry(ws.metadata.name.unwrap_or_default())
            .or_default();
        if current && t.caught_up.is_none() {
            t.caught_up = Some(now);
        }
        if bound && t.bound.is_none() {
            t.bound = Some(now);
        }
        if current && generation >= 2 && status.state == Some(State::Running) && t.running.is_none()
        {
            t.running = Some(now);
        }
        if current && generation >= 3 && status.state == Some(State::Stopped) && t.stopped.is_none()
        {
            t.stopped = Some(now);
        }
    }
}

/// How long a phase may go on with less than 1 % of its Workspaces getting
/// further before it is given up (an overloaded API server does not
/// recover within a run).
const STALL: Duration = Duration::from_secs(180);

/// Waits until `n` Workspaces have reached `what`, saying how many have
/// every 10 s; gives up after `timeout`, or when stalled ([`STALL`]).
async fn wait(
    seen: &Mutex<Seen>,
    what: &str,
    n: usize,
    timeout: Duration,
    reached: impl Fn(&Track) -> bool,
) -> Result<()> {
    let start = Instant::now();
    let mut said = Instant::now();
    // The last time at least 1 % more had got there, and how many had.
    let mut progress = (Instant::now(), 0);
    loop {
        let done = seen
            .lock()
            .unwrap()
            .by_name
            .values()
            .filter(|t| reached(t))
            .count();
        if done >= n {
            return Ok(());
        }
        if start.elapsed() > timeout {
            bail!("{what}: {done} of {n} after {} s", timeout.as_secs());
        }
        if done >= progress.1 + (n / 100).max(1) || progress.1 == 0 && done > 0 {
            progress = (Instant::now(), done);
        }
        if progress.0.elapsed() > STALL {
            bail!(
                "{what}: stalled at {done} of {n}, fewer than {} more in the last {} s ({} s in all)",
                (n / 100).max(1),
                STALL.as_secs(),
                start.elapsed().as_secs()
            );
        }
        if said.elapsed() >= Duration::from_secs(10) {
            eprintln!("  {what}: {done}/{n}");
            said = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits (60 s at most) until neither the operator reconciles nor any
/// Workspace changes for 3 s; returns how long that took.
async fn quiesce(seen: &Mutex<Seen>, log: &mut OperatorLog) -> Duration {
    let start = Instant::now();
    let mut last = (u64::MAX, u64::MAX);
    let mut still = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        log.read();
        let now = (log.counts().total(), seen.lock().unwrap().events);
        if now != last {
            last = now;
            still = Instant::now();
        } else if still.elapsed() >= Duration::from_secs(3) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    start.elapsed().saturating_sub(Duration::from_secs(3))
}

/// The nearest-rank percentile `p` (0 < p <= 1) of sorted `v`.
fn percentile(v: &[Duration], p: f64) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

/// Items per second between the `from` and `to` fractions of sorted times.
fn rate_between(v: &[Duration], from: f64, to: f64) -> f64 {
    let (a, b) = (percentile(v, from), percentile(v, to));
    let items = ((to - from) * v.len() as f64).max(1.0);
    items / (b - a).as_secs_f64().max(1e-3)
}

/// How many of sorted times fall in each `bucket` from 0.
fn per_bucket(v: &[Duration], bucket: Duration) -> Vec<usize> {
    let mut out = Vec::new();
    for t in v {
        let i = (t.as_secs_f64() / bucket.as_secs_f64()) as usize;
        if out.len() <= i {
            out.resize(i + 1, 0);
        }
        out[i] += 1;
    }
    out
}

/// How many objects of kind `K` the namespace holds.
async fn count<K>(client: &Client, within: Duration) -> Option<usize>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api = Api::<K>::namespaced(client.clone(), NAMESPACE);
    let params = ListParams::default();
    let list = tokio::time::timeout(within, api.list_metadata(&params));
    Some(list.await.ok()?.ok()?.items.len())
}

/// The pids of the control plane's kube-apiserver and etcd, found by their
/// command lines (its port; its etcd's URL).
struct ServerPids {
    apiserver: u32,
    etcd: u32,
}

impl ServerPids {
    fn find(cp: &ControlPlane) -> Result<ServerPids> {
        let port = cp.url.rsplit(':').next().unwrap_or_default();
        let procs = command_lines();
        let (apiserver, argv) = procs
            .iter()
            .find(|(_, argv)| {
                argv.first().is_some_and(|a| a.ends_with("/kube-apiserver"))
                    && argv.iter().any(|a| *a == format!("--secure-port={port}"))
            })
            .context("find the kube-apiserver process")?;
        let etcd_url = argv
            .iter()
            .find_map(|a| a.strip_prefix("--etcd-servers="))
            .context("kube-apiserver's --etcd-servers")?;
        let (etcd, _) = procs
            .iter()
            .find(|(_, argv)| {
                argv.first().is_some_and(|a| a.ends_with("/etcd"))
                    && argv
                        .iter()
                        .any(|a| *a == format!("--listen-client-urls={etcd_url}"))
            })
            .context("find the etcd process")?;
        Ok(ServerPids {
            apiserver: *apiserver,
            etcd: *etcd,
        })
    }
}

/// Every process's pid and command line.
fn command_lines() -> Vec<(u32, Vec<String>)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let raw = std::fs::read(e.path().join("cmdline")).ok()?;
            let argv = raw
                .split(|b| *b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            Some((pid, argv))
        })
        .collect()
}

/// One process's memory and CPU time.
#[derive(Debug, Clone, Copy, Default)]
struct Usage {
    /// Resident memory now, and at its highest so far (VmRSS, VmHWM), bytes.
    rss: u64,
    peak: u64,
    /// User and system CPU time since it started, seconds.
    cpu: f64,
    /// Open sockets (its connections to the API server, for the operator).
    sockets: usize,
}

impl Usage {
    fn of(pid: u32) -> Usage {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let kib = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .unwrap_or(0)
                * 1024
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Fields after the command's closing parenthesis: state is the 3rd
        // field, utime and stime the 14th and 15th.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let ticks = |i: usize| fields.get(i - 3).and_then(|f| f.parse::<f64>().ok());
        Usage {
            rss: kib("VmRSS:"),
            peak: kib("VmHWM:"),
            cpu: (ticks(14).unwrap_or(0.0) + ticks(15).unwrap_or(0.0)) / CLOCK_TICKS,
            sockets: std::fs::read_dir(format!("/proc/{pid}/fd"))
                .map(|fds| {
                    fds.flatten()
                        .filter(|fd| {
                            std::fs::read_link(fd.path())
                                .is_ok_and(|l| l.to_string_lossy().starts_with("socket:"))
                        })
                        .count()
                })
                .unwrap_or(0),
        }
    }
}

/// The processes measured.
struct Procs {
    operator: u32,
    apiserver: u32,
    etcd: u32,
}

/// Their usage at one moment: operator, kube-apiserver, etcd, this program.
#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    operator: Usage,
    apiserver: Usage,
    etcd: Usage,
    bench: Usage,
}

impl Procs {
    fn sample(&self) -> Sample {
        Sample {
            operator: Usage::of(self.operator),
            apiserver: Usage::of(self.apiserver),
            etcd: Usage::of(self.etcd),
            bench: Usage::of(std::process::id()),
        }
    }
}

/// The API server's `apiserver_request_total`, by (verb, resource, code).
#[derive(Debug, Default, Clone)]
struct Requests(BTreeMap<(String, String, String), u64>);

impl Requests {
    async fn scrape(client: &Client) -> Result<Requests> {
        let req = http::Request::get("/metrics").body(Vec::new())?;
        let text = client
            .request_text(req)
            .await
            .context("GET kube-apiserver /metrics")?;
        let mut out = BTreeMap::new();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("apiserver_request_total{") else {
                continue;
            };
            let Some((labels, value)) = rest.rsplit_once("} ") else {
                continue;
            };
            let label = |key: &str| {
                labels
                    .split("\",")
                    .find_map(|kv| kv.strip_prefix(&format!("{key}=\"")))
                    .map(|v| v.trim_end_matches('"').to_owned())
                    .unwrap_or_default()
            };
            let mut resource = label("resource");
            let sub = label("subresource");
            if !sub.is_empty() {
                resource = format!("{resource}/{sub}");
            }
            let n = value.trim().parse::<f64>().unwrap_or(0.0) as u64;
            *out.entry((label("verb"), resource, label("code")))
                .or_insert(0) += n;
        }
        Ok(Requests(out))
    }

    fn minus(&self, before: &Requests) -> Requests {
        Requests(
            self.0
                .iter()
                .map(|(k, v)| (k.clone(), v - before.0.get(k).copied().unwrap_or(0)))
                .filter(|(_, v)| *v > 0)
                .collect(),
        )
    }

    fn total(&self) -> u64 {
        self.0.values().sum()
    }

    /// Requests answered with `code`s for which `which` holds.
    fn with_code(&self, which: impl Fn(&str) -> bool) -> u64 {
        self.0
            .iter()
            .filter(|((_, _, code), _)| which(code))
            .map(|(_, v)| v)
            .sum()
    }

    /// "code xN, …" for codes other than 2xx.
    fn errors(&self) -> String {
        let mut by_code: BTreeMap<&str, u64> = BTreeMap::new();
        for ((_, _, code), n) in &self.0 {
            if !code.starts_with('2') {
                *by_code.entry(code).or_insert(0) += n;
            }
        }
        if by_code.is_empty() {
            return "none".into();
        }
        by_code
            .iter()
            .map(|(c, n)| format!("{c} x{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The operator's reconciles, as its log says.
#[derive(Debug, Default, Clone, Copy)]
struct Reconciles {
    ok: u64,
    failed: u64,
}

impl Reconciles {
    fn total(&self) -> u64 {
        self.ok + self.failed
    }
    fn minus(&self, before: &Reconciles) -> Reconciles {
        Reconciles {
            ok: self.ok - before.ok,
            failed: self.failed - before.failed,
        }
    }
}

/// Reads the operator's JSON log as it grows.
#[derive(Debug)]
struct OperatorLog {
    path: PathBuf,
    offset: u64,
    partial: String,
    reconciles: Reconciles,
    /// Warnings and errors, by message (workspace names taken out).
    warnings: BTreeMap<String, u64>,
    /// Times it took the Lease.
    leading: u64,
}

impl OperatorLog {
    fn new(path: PathBuf) -> OperatorLog {
        OperatorLog {
            path,
            offset: 0,
            partial: String::new(),
            reconciles: Reconciles::default(),
            warnings: BTreeMap::new(),
            leading: 0,
        }
    }

    fn counts(&self) -> Reconciles {
        self.reconciles
    }

    fn read(&mut self) {
        let Ok(mut file) = std::fs::File::open(&self.path) else {
            return;
        };
        if file.seek(std::io::SeekFrom::Start(self.offset)).is_err() {
            return;
        }
        let mut buf = Vec::new();
        let Ok(n) = file.read_to_end(&mut buf) else {
            return;
        };
        self.offset += n as u64;
        self.partial.push_str(&String::from_utf8_lossy(&buf));
        let Some(end) = self.partial.rfind('\n') else {
            return;
        };
        let complete: String = self.partial.drain(..=end).collect();
        for line in complete.lines() {
            self.line(line);
        }
    }

    fn line(&mut self, line: &str) {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            // What `berth operator run` prints on stdout is no warning.
            if !line.trim().is_empty() && !line.starts_with("operator for namespace") {
                *self.warnings.entry(anonymous(line)).or_insert(0) += 1;
            }
            return;
        };
        let level = v["level"].as_str().unwrap_or_default();
        let target = v["target"].as_str().unwrap_or_default();
        let fields = &v["fields"];
        let message = fields["message"].as_str().unwrap_or_default();
        match (level, message) {
            ("DEBUG", "reconciled") => self.reconciles.ok += 1,
            ("DEBUG", "reconcile") => self.reconciles.failed += 1,
            ("INFO", "leading") if target.ends_with("lease") => self.leading += 1,
            // kube-client's at each full TLS handshake with a certificate
            // it does not check (envtest's kubeconfig says so).
            ("WARN", "Server cert bypassed") => {}
            ("WARN" | "ERROR", _) => {
                let error = fields["error"].as_str().unwrap_or_default();
                let key = anonymous(&format!("{level} {message}: {error}"));
                *self.warnings.entry(key).or_insert(0) += 1;
            }
            _ => {}
        }
    }
}

/// `s` with the bench's workspace names (`ws-s01234`, `u01234`) and
/// numbers of 4 digits or more (resource versions, uids' parts) made
/// uniform, so that the same warning about different workspaces counts as
/// one.
fn anonymous(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut digits = String::new();
    let flush = |digits: &mut String, out: &mut String| {
        if digits.len() >= 4 {
            out.push('#');
        } else {
            out.push_str(digits);
        }
        digits.clear();
    };
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else {
            flush(&mut digits, &mut out);
            out.push(c);
        }
    }
    flush(&mut digits, &mut out);
    out
}

fn tail_lines(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Everything the table shows.
#[derive(Debug, Default)]
struct Report {
    n: usize,
    m: usize,
    concurrency: usize,
    /// Phase 1's creates: all answered after; each's p50 and p99.
    create: Option<(Duration, Duration, Duration)>,
    phase1: Option<Phase1>,
    phase2: Option<Burst>,
    phase3: Option<Burst>,
    /// Pods after phase 3: in the API, on the node.
    pods_left: (Option<usize>, usize),
    /// Why the phases ended early.
    failed: Option<String>,
    /// Workspaces caught up in each 10 s from the first create.
    timeline: Vec<usize>,
    all_requests: Requests,
    idle: Sample,
    end: Sample,
    peak_sockets: usize,
    warnings: BTreeMap<String, u64>,
    leading: u64,
    /// Objects of each kind at the end; `None` when the count failed.
    objects: Vec<(&'static str, Option<usize>)>,
}

/// What a phase did, from its start until it was quiet.
#[derive(Debug)]
struct PhaseEnd {
    quiet: Duration,
    requests: Requests,
    reconciles: Reconciles,
    /// Workspace changes the watch saw.
    events: u64,
    sample: Sample,
}

#[derive(Debug)]
struct Phase1 {
    /// From the first create until all statuses caught up, all homes bound.
    caught_up: Duration,
    bound: Duration,
    /// Workspaces caught up per second: overall, and from 10 % to 90 %.
    rate: f64,
    rate_10_90: f64,
    end: PhaseEnd,
}

/// Phase 2 or 3: M Workspaces' state set at once.
#[derive(Debug)]
struct Burst {
    /// Until all requests were answered.
    requests: Duration,
    /// From the first request until the last Workspace got there.
    all: Duration,
    /// Each, from its request until it got there: p50, p99, max.
    each: (Duration, Duration, Duration),
    end: PhaseEnd,
}

fn s(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / (1024.0 * 1024.0))
}

fn row(k: &str, v: impl std::fmt::Display) {
    println!("  {k:<52} {v}");
}

/// "operator 1.2, kube-apiserver 3.4, ..." CPU seconds from `a` to `b`.
fn cpu(a: &Sample, b: &Sample) -> String {
    format!(
        "operator {:.1}, kube-apiserver {:.1}, etcd {:.1}, bench+node {:.1}",
        b.operator.cpu - a.operator.cpu,
        b.apiserver.cpu - a.apiserver.cpu,
        b.etcd.cpu - a.etcd.cpu,
        b.bench.cpu - a.bench.cpu
    )
}

impl PhaseEnd {
    /// The rows every phase has; `what` names its unit ("Workspace").
    fn rows(&self, what: &str, count: usize, before: &Sample) {
        let per = |x: u64| x as f64 / count.max(1) as f64;
        row(
            &format!("operator reconciles (ok + failed) per {what}"),
            format!(
                "{:.2} ({} + {}); quiet {} after the last",
                per(self.reconciles.total()),
                self.reconciles.ok,
                self.reconciles.failed,
                s(self.quiet)
            ),
        );
        row(
            &format!("Workspace writes seen per {what}"),
            format!("{:.2}", per(self.events)),
        );
        row(
            &format!("API requests per {what} (all clients)"),
            format!(
                "{:.1} ({}; non-2xx: {})",
                per(self.requests.total()),
                self.requests.total(),
                self.requests.errors()
            ),
        );
        row(
            "operator's open sockets once quiet",
            self.sample.operator.sockets,
        );
        row("CPU seconds", cpu(before, &self.sample));
    }
}

impl Report {
    fn print(&self) {
        println!();
        println!(
            "phase 1: create {} Workspaces (spec.state Stopped), {} requests in flight",
            self.n, self.concurrency
        );
        if let Some((all, p50, p99)) = self.create {
            row(
                "create requests (all answered)",
                format!(
                    "{} ({:.0}/s; each p50 {}, p99 {})",
                    s(all),
                    self.n as f64 / all.as_secs_f64(),
                    ms(p50),
                    ms(p99)
                ),
            );
        }
        if let Some(p) = &self.phase1 {
            row(
                "all statuses caught up (observedGeneration)",
                format!("{} after the first create", s(p.caught_up)),
            );
            row(
                "reconcile throughput (Workspaces caught up/s)",
                format!(
                    "{:.0}/s overall, {:.0}/s from 10 % to 90 %",
                    p.rate, p.rate_10_90
                ),
            );
            row(
                "all homes bound (HomeBound True)",
                format!("{} after the first create", s(p.bound)),
            );
            p.end.rows("Workspace", self.n, &self.idle);
        }
        let mut before = self.phase1.as_ref().map_or(&self.idle, |p| &p.end.sample);
        for (p, verb, state, unit) in [
            (&self.phase2, "start", "Running", "started"),
            (&self.phase3, "stop", "Stopped", "stopped"),
        ] {
            let Some(p) = p else { continue };
            println!();
            println!(
                "phase {}: {verb} {} of them at once (spec.state {state})",
                if verb == "start" { 2 } else { 3 },
                self.m
            );
            row(&format!("{verb} requests (all answered)"), s(p.requests));
            row(
                &format!("time for {} to reach {state}", self.m),
                format!("{} after the first request", s(p.all)),
            );
            row(
                &format!("each, request to {state}: p50 / p99 / max"),
                format!("{} / {} / {}", s(p.each.0), s(p.each.1), s(p.each.2)),
            );
            p.end.rows(unit, self.m, before);
            before = &p.end.sample;
        }
        if self.phase3.is_some() {
            row(
                "Pods left: in the API, on the node",
                format!(
                    "{}, {}",
                    self.pods_left.0.map_or("?".to_owned(), |n| n.to_string()),
                    self.pods_left.1
                ),
            );
        }
        if let Some(why) = &self.failed {
            println!();
            println!("DID NOT FINISH: {why}");
            row("CPU seconds, from the start", cpu(&self.idle, &self.end));
        }
        println!();
        println!("memory, MiB resident (VmRSS; peak VmHWM)");
        let after = |p: Option<&PhaseEnd>, u: fn(&Sample) -> Usage| {
            p.map_or("-".to_owned(), |p| mib(u(&p.sample).rss))
        };
        let mem = |u: fn(&Sample) -> Usage| {
            format!(
                "{} / {} / {} / {}; peak {}",
                mib(u(&self.idle).rss),
                after(self.phase1.as_ref().map(|p| &p.end), u),
                after(self.phase2.as_ref().map(|p| &p.end), u),
                mib(u(&self.end).rss),
                mib(u(&self.end).peak)
            )
        };
        row("(leading, idle / after phase 1 / after phase 2 / end)", "");
        row("operator (berth operator run)", mem(|s| s.operator));
        row("kube-apiserver", mem(|s| s.apiserver));
        row("etcd", mem(|s| s.etcd));
        row("bench + simulated node + watch", mem(|s| s.bench));
        row(
            "operator's open sockets: at their most (sampled 4/s), at the end",
            format!("{}, {}", self.peak_sockets, self.end.operator.sockets),
        );
        println!();
        println!("objects in the namespace after phase 2 (or at the end)");
        row(
            &self
                .objects
                .iter()
                .map(|(k, _)| *k)
                .collect::<Vec<_>>()
                .join(" / "),
            self.objects
                .iter()
                .map(|(_, n)| n.map_or("?".to_owned(), |n| n.to_string()))
                .collect::<Vec<_>>()
                .join(" / "),
        );
        println!();
        println!("operator log: took the Lease {} time(s)", self.leading);
        if self.warnings.is_empty() {
            println!("  no warnings or errors");
        }
        for (w, n) in &self.warnings {
            println!("  x{n}: {}", w.chars().take(300).collect::<String>());
        }
        println!();
        println!(
            "Workspaces caught up per 10 s from the first create: {}",
            self.timeline
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(" ")
        );
        println!("API requests, whole run, most frequent (verb resource code: count):");
        let mut top: Vec<_> = self.all_requests.0.iter().collect();
        top.sort_by(|a, b| b.1.cmp(a.1));
        for ((verb, resource, code), n) in top.iter().take(14) {
            println!("  {verb:<7} {resource:<32} {code}: {n}");
        }
        println!("API requests not answered 2xx, whole run:");
        for ((verb, resource, code), n) in top.iter().filter(|((_, _, c), _)| !c.starts_with('2')) {
            println!("  {verb:<7} {resource:<32} {code}: {n}");
        }
        let conflicts = self.all_requests.with_code(|c| c == "409");
        let throttled = self.all_requests.with_code(|c| c == "429");
        let server = self.all_requests.with_code(|c| c.starts_with('5'));
        println!("  409 conflicts: {conflicts}, 429 throttled: {throttled}, 5xx: {server}");
    }
}
