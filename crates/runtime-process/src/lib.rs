//! The embedded default runtime: each workspace is a process tree in a
//! bubblewrap sandbox, in its own cgroup and its own network namespace, on this
//! machine. [`ProcessRuntime`] implements [`runtime::Runtime`].
//!
//! # How a workspace runs
//!
//! `start` makes, idempotently: the home `<data_dir>/homes/<id>` (owned by the
//! workspace uid; [`disk`]: an ext4 image `<data_dir>/disks/<id>.ext4` of the
//! profile's disk size, loop-mounted there), the network ([`net`]: namespace `berth-<id>`, a veth pair
//! in `10.213.0.0/16`, its elements in berth's nftables table), the cgroup ([`cgroups`]: memory, cpu
//! and pids limits from the profile) and the state file `<data_dir>/run/<id>.json`
//! (slot, upstream, whether it should be running). Then it spawns, through
//! [`exec::spawn_sandbox`]:
//!
//! ```text
//! setsid sh -c '<write $$ to each cgroup.procs>; exec "$@" 3<seccomp.bpf' \
//!   nsenter --net=/run/netns/berth-<id> \
//!   setpriv --reuid U --regid U --clear-groups --inh-caps=-all --bounding-set=-all --no-new-privs \
//!   bwrap --unshare-user --disable-userns --unshare-pid --unshare-ipc --unshare-uts \
//!         --unshare-cgroup-try --cap-drop ALL --seccomp 3 \
//!         --ro-bind /usr /usr --ro-bind /etc /etc --proc /proc --dev /dev \
//!         --tmpfs /dev/shm --tmpfs /tmp --bind <home> /home/<owner> \
//!         --remount-ro /dev --remount-ro / --hostname <owner>-<name> -- <argv>
//! ```
//!
//! with the app's environment (its hub token among it) as the environment of
//! the whole chain, never on a command line, which any user may read in /proc.
//!
//! Decisions, and why:
//!
//! - **Race-free cgroup placement**: the shell joins the cgroup with its own pid
//!   before it execs anything, so every descendant is born inside.
//! - **Survives the control plane**: `setsid` puts the sandbox in its own session
//!   and bwrap runs without `--die-with-parent`; nothing holds the child handle
//!   (tokio reaps it if it exits while we run).
//! - **Network namespace**: made by `ip netns add` (root, in the initial user
//!   namespace) and joined with `nsenter --net`, so bwrap gets no `--unshare-net`.
//!   The namespace therefore belongs to the initial user namespace, and the
//!   sandboxed user has no capability over it: it cannot change its address,
//!   routes or firewall.
//! - **Unprivileged bwrap**: `setpriv` drops to the workspace uid/gid with no
//!   capabilities before bwrap runs; bwrap then builds its namespaces inside a
//!   user namespace owned by that uid (uid mapped to itself), so files in the
//!   home belong to the workspace uid on the host. This needs unprivileged user
//!   namespaces (`user.max_user_namespaces` > 0), on by default in Debian.
//! - **Less kernel to reach**: the sandbox's user namespace cannot make another
//!   (`--disable-userns`: no `unshare -U`, which most sandbox escapes start
//!   from), and [`seccomp`]'s filter refuses the system calls no development
//!   workspace needs (keyrings, eBPF, perf, userfaultfd, modules, mounts, …)
//!   with `EPERM`.
//! - **No unsafe code**: `setsid`, `ip netns add`, `nsenter`, `setpriv` and
//!   `nft` are external programs (util-linux, iproute2, nftables); interfaces
//!   and routes go through `rtnetlink`, signals through `rustix`'s safe
//!   calls, so the crate keeps the
//!   workspace's `unsafe_code = "forbid"`.
//! - **The cgroup is the source of truth**: `observe` reads the cgroups under
//!   `<cgroup root>[/<controller>]/<cgroup_parent>/` (`list` names this data
//!   dir's workspaces: those with a home or a state file); a fresh
//!   `ProcessRuntime` on the same data dir sees, observes and stops workspaces an
//!   earlier instance started. The state file only adds what the kernel does not
//!   know: the upstream address and whether the workspace is meant to run (an
//!   empty cgroup of a workspace meant to run is `Failed`).
//! - **stop** thaws, sends SIGTERM to every pid in the cgroup, SIGKILL to what is
//!   left after [`Config::stop_grace`], removes the cgroup and the network and
//!   unmounts the home; its image stays. **delete** is stop plus removing the
//!   home (or, keeping files, moving its image to `<data_dir>/kept/<id>.ext4`),
//!   log and state file.
//! - **Disk**: the home is a file system of the profile's size, so `df` inside
//!   shows the limit and a full home is `ENOSPC` to the app alone;
//!   [`Runtime::disk`] reports its use while mounted, which the controller turns
//!   into the `DiskFull` condition. A raised limit grows the home at the next
//!   start; a lowered one never shrinks it (the start log says so).
//! - **Usage**: memory is the cgroup's count (page cache included); CPU is a
//!   rate between two samples of the cgroup's CPU time, the one `usage` takes
//!   and the previous one, kept per workspace, when that is between
//!   [`cgroups::CPU_SAMPLE_MIN_AGE`] and [`cgroups::CPU_SAMPLE_MAX_AGE`] old;
//!   otherwise `usage` samples twice, [`USAGE_SAMPLE_GAP`] apart. On cgroup v1
//!   CPU time comes from the `cpuacct` controller, so a workspace started by a
//!   berth that did not place it there yet reports no usage until it restarts.
//! - **Readiness**: `Running` once `GET <base_url>` at the upstream answers with
//!   a status below 500; `Starting` before that. A task of the start probes
//!   the app (every 5 ms while up to 20 apps start, then less often, up to
//!   every 50 ms from 200 on) and says on
//!   [`Runtime::changes`] when it first answers
//!   ([`runtime::Capabilities::ready_events`]), so the controller learns of it
//!   at once instead of polling.
//!
//! - **Data directory**: homes are `0700` and owned by the workspace uid; the
//!   `homes` directory is `0711`. The data directory and its ancestors must be
//!   traversable by the workspace uids, since bwrap opens the home as that uid.
//!
//! - **Apps**: a profile's command as given, or JupyterLab from the managed
//!   environment [`Config::jupyter_env`] (made by `scripts/install-deps`, mounted
//!   read-only at the same path): JupyterHub's `jupyterhub-singleuser` when the
//!   workspace comes with a hub's credentials (`JUPYTERHUB_API_TOKEN` and the
//!   rest of a spawner's environment in [`WorkspaceRef::env`]; this runtime adds
//!   `JUPYTERHUB_API_URL`, `JUPYTERHUB_ACTIVITY_URL` and `JUPYTERHUB_SERVICE_URL`),
//!   else plain `jupyter-lab` without a token. Either way only root on the host
//!   can reach it ([`net`]'s output chain).
//! - **Network**: berth's API on [`net::GATEWAY_IP`] (announced as
//!   `BERTH_API_URL`), and the outside world only when the profile allows egress.
//!
//! Not yet: a minimal `/etc` (the host's is mounted read-only;
//! root-only files such as `/etc/shadow` stay unreadable to the workspace uid);
//! name resolution with egress works only where the host's `/etc/resolv.conf`
//! names a resolver reachable from the namespace (not a `127.0.0.x` stub).

pub mod cgroups;
pub mod disk;
pub mod exec;
pub mod net;
pub mod seccomp;

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use model::{App, CommandVars, Upstream, WorkspaceId};
use runtime::{Disk, LogRead, Observed, Runtime, RuntimeError, Usage, WorkspaceRef};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::cgroups::{Cgroups, CpuSample, Limits};
use crate::disk::{Ensured, Home};
use crate::net::Slot;
use model::bytes;

/// How long `usage` waits between two CPU samples when it has no recent one.
pub const USAGE_SAMPLE_GAP: Duration = Duration::from_millis(250);

/// The wait between two probes of a starting app, while few start: an app
/// that begins to answer is seen within this.
const READY_PROBE_MIN_GAP: Duration = Duration::from_millis(5);

/// The wait between two probes of a starting app grows by this for every
/// other app starting, up to [`READY_PROBE_MAX_GAP`]: up to 200 starting
/// apps together open at most 4,000 connections a second (20 apps each every
/// 5 ms, or 200 each every 50 ms); beyond that each is probed every 50 ms.
const READY_PROBE_GAP_PER_START: Duration = Duration::from_micros(250);

/// The longest wait between two probes of a starting app.
const READY_PROBE_MAX_GAP: Duration = Duration::from_millis(50);

/// The wait between two probes when `probing` apps are starting.
fn probe_gap(probing: usize) -> Duration {
    let shared =
        READY_PROBE_GAP_PER_START.saturating_mul(u32::try_from(probing).unwrap_or(u32::MAX));
    shared.clamp(READY_PROBE_MIN_GAP, READY_PROBE_MAX_GAP)
}

/// How much of the log a `Failed` reason carries.
const REASON_LOG_BYTES: usize = 8192;

/// berth's own lines in a workspace's log: where a start begins, and how the
/// app ended (written by the process that waits for it).
const START_MARK: &str = "berth: starting ";
const EXIT_MARK: &str = "berth: the app ";

/// The part of a log tail after the line that began the last start (all of
/// it when that line is not in the tail).
fn this_run(tail: &str) -> &str {
    match tail.rfind(START_MARK) {
        Some(at) => tail[at..].split_once('\n').map_or("", |(_, rest)| rest),
        None => tail,
    }
}

/// Where and how the process runtime keeps its workspaces.
#[derive(Debug, Clone)]
pub struct Config {
    /// Homes, logs and state files live under here.
    pub data_dir: PathBuf,
    /// The cgroup file system, normally `/sys/fs/cgroup`.
    pub cgroup_root: PathBuf,
    /// The berth-owned cgroup directory that holds one cgroup per workspace.
    pub cgroup_parent: String,
    /// TCP ports a workspace may reach on [`net::GATEWAY_IP`]: berth's API. The
    /// first is announced to the app as `BERTH_API_URL`.
    pub gateway_ports: Vec<u16>,
    /// The managed Python environment JupyterLab runs from, mounted read-only.
    pub jupyter_env: PathBuf,
    /// How long `stop` waits after SIGTERM before SIGKILL.
    pub stop_grace: Duration,
}

impl Config {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Config {
            data_dir: data_dir.into(),
            cgroup_root: PathBuf::from("/sys/fs/cgroup"),
            cgroup_parent: "berth".to_owned(),
            gateway_ports: Vec::new(),
            jupyter_env: PathBuf::from("/opt/berth/jupyter"),
            stop_grace: Duration::from_secs(5),
        }
    }
}

/// What `observe` needs that the kernel does not keep: `<data_dir>/run/<id>.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct State {
    slot: u32,
    upstream: String,
    base_url: String,
    /// Set by `start`, cleared by `stop`: an empty cgroup while set is a failure.
    running: bool,
    /// The firewall elements the network was given ([`net::firewall`]).
    #[serde(default)]
    policy: Option<net::Policy>,
    /// Whether the network uses the shared firewall table; a state file
    /// without it was written by a berth that gave each workspace a table of
    /// its own.
    #[serde(default)]
    shared_firewall: bool,
}

impl State {
    /// What its tear-down removes.
    fn made(&self) -> net::Made {
        net::Made {
            slot: Slot(self.slot),
            policy: self.policy.clone(),
            own_table: !self.shared_firewall,
        }
    }
}

/// Making the host's side of the network failed.
#[derive(Debug, thiserror::Error)]
enum HostError {
    #[error("make the gateway and the shared firewall table")]
    Exec(#[from] exec::ExecError),
    #[error("read or write the state of older workspaces")]
    Io(#[from] std::io::Error),
}

/// Workspaces as sandboxed process trees on this machine.
#[derive(Debug)]
pub struct ProcessRuntime {
    config: Config,
    cgroups: Cgroups,
    /// Set once the gateway interface and the shared firewall table are
    /// known to exist (and older workspaces' tables moved into it).
    host: tokio::sync::OnceCell<()>,
    /// Ids of workspaces whose app came up or whose sandbox exited while
    /// this instance watched it ([`Runtime::changes`]).
    changed: tokio::sync::broadcast::Sender<WorkspaceId>,
    /// Workspaces whose sandbox this instance watches for its exit: those it
    /// started (it waits on the child) and those it adopted (a pidfd).
    watched: Arc<Mutex<std::collections::HashSet<String>>>,
    /// How many starting apps are being probed for readiness now.
    probing: Arc<std::sync::atomic::AtomicUsize>,
    /// The last CPU sample `usage` took of each workspace.
    cpu_samples: Mutex<HashMap<String, CpuSample>>,
}

impl ProcessRuntime {
    /// Detects the cgroup version and creates the data directories.
    pub fn new(config: Config) -> std::io::Result<Self> {
        let cgroups = Cgroups::detect(&config.cgroup_root, &config.cgroup_parent)?;
        for dir in ["homes", "disks", "logs", "run", "kept"] {
            std::fs::create_dir_all(config.data_dir.join(dir))?;
        }
        for private in ["kept", "disks"] {
            std::fs::set_permissions(
                config.data_dir.join(private),
                std::fs::Permissions::from_mode(0o700),
            )?;
        }
        // Workspace uids must traverse to their own home (bwrap runs as them);
        // they may not list the others.
        std::fs::set_permissions(
            config.data_dir.join("homes"),
            std::fs::Permissions::from_mode(0o711),
        )?;
        seccomp::write(&config.data_dir.join("run").join("seccomp.bpf"))?;
        Ok(ProcessRuntime {
            config,
            cgroups,
            host: tokio::sync::OnceCell::new(),
            changed: tokio::sync::broadcast::channel(4096).0,
            watched: Arc::default(),
            probing: Arc::default(),
            cpu_samples: Mutex::default(),
        })
    }

    pub fn cgroups(&self) -> &Cgroups {
        &self.cgroups
    }

    /// The host directory mounted as the workspace's home (where its image
    /// is mounted while it runs).
    pub fn home_dir(&self, id: &str) -> PathBuf {
        self.home(id).dir
    }

    fn home(&self, id: &str) -> Home {
        Home::new(&self.config.data_dir, id)
    }

    /// Where the home of a workspace deleted with `keep_files` is kept: its
    /// image as `<that>.ext4` (`mount -o loop,ro` reads it), or a home made
    /// before disk limits as that directory.
    pub fn kept_dir(&self, id: &str) -> PathBuf {
        self.config.data_dir.join("kept").join(id)
    }

    pub fn log_path(&self, id: &str) -> PathBuf {
        self.config.data_dir.join("logs").join(format!("{id}.log"))
    }

    fn state_path(&self, id: &str) -> PathBuf {
        self.config.data_dir.join("run").join(format!("{id}.json"))
    }

    /// The last `max_bytes` of the app's output (lossily decoded); empty if none.
    pub fn log_tail(&self, id: &str, max_bytes: usize) -> String {
        let read = self.read_log(id, None, max_bytes).unwrap_or_default();
        String::from_utf8_lossy(&read.bytes).into_owned()
    }

    /// [`Runtime::log_read`] on the log file; no file is an empty log.
    fn read_log(&self, id: &str, from: Option<u64>, max_bytes: usize) -> std::io::Result<LogRead> {
        let mut file = match std::fs::File::open(self.log_path(id)) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(LogRead::default()),
            Err(e) => return Err(e),
        };
        let start = LogRead::start(file.metadata()?.len(), from, max_bytes);
        file.seek(SeekFrom::Start(start))?;
        let mut bytes = Vec::new();
        file.take(max_bytes as u64).read_to_end(&mut bytes)?;
        let end = start + bytes.len() as u64;
        Ok(LogRead { bytes, end })
    }

    /// Removes the network of a workspace that is not meant to run, if it has
    /// one: what a crash in the middle of a start or a stop left (the resync
    /// observes every workspace, so nothing stays behind for long).
    async fn sweep_network(&self, id: &str, state: Option<&State>) {
        let netns = Path::new("/run/netns").join(net::netns_name(id));
        if !netns.exists() {
            return;
        }
        let links = match self.host("observe", id).await {
            Ok(links) => links,
            Err(e) => {
                tracing::warn!(workspace.id = id, error = %model::error_chain(&e), "removing a leftover network");
                return;
            }
        };
        tracing::warn!(
            workspace.id = id,
            "removing the network a crashed start or stop left behind"
        );
        if let Err(e) = net::tear_down(&links, id, state.map(State::made).as_ref()).await {
            tracing::warn!(workspace.id = id, error = %e, "removing a leftover network");
        }
    }

    /// Watches a running sandbox this instance did not start (a control
    /// plane's restart adopted it) as closely as one it did: a pidfd on the
    /// sandbox's first process, whose exit ends the sandbox, says at once on
    /// [`Runtime::changes`] that it exited. Works on cgroup v1 and v2 (Linux
    /// 5.3 and later); without pidfds, the controller's resync finds out.
    fn watch_adopted(&self, id: &str, pids: &[u32]) {
        if !self.watched.lock().unwrap().insert(id.to_owned()) {
            return;
        }
        let first = pids.iter().copied().min_by_key(|p| started_at(*p));
        let fd = first
            .and_then(|p| rustix::process::Pid::from_raw(p as i32))
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
            .and_then(|pid| {
                rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
                    .map_err(std::io::Error::from)
            })
            // Deprecated because a `T` that does not own its descriptor could
            // have it closed while registered; an `OwnedFd` owns it, and the
            // safe replacement, `register`, is `unsafe`.
            .and_then(
                #[allow(deprecated)]
                tokio::io::unix::AsyncFd::new,
            );
        let (changed, watched, id) = (self.changed.clone(), self.watched.clone(), id.to_owned());
        match fd {
            Ok(fd) => {
                tokio::spawn(async move {
                    // A pidfd is readable once its process has exited.
                    let _ = fd.readable().await;
                    watched.lock().unwrap().remove(&id);
                    let _ = changed.send(id.into());
                });
            }
            Err(e) => {
                watched.lock().unwrap().remove(&id);
                if e.kind() == std::io::ErrorKind::NotFound
                    || e.raw_os_error() == Some(rustix::io::Errno::SRCH.raw_os_error())
                {
                    let _ = changed.send(id.into());
                } else {
                    tracing::debug!(workspace.id = %id, error = %e, "no pidfd to watch an adopted sandbox");
                }
            }
        }
    }

    /// Makes (or keeps) the network of a workspace about to start, with its
    /// firewall elements for `ws`'s profile; the app's upstream address and
    /// the path the readiness probe asks for.
    async fn network(&self, ws: &WorkspaceRef) -> Result<(String, String), RuntimeError> {
        let id = ws.id.as_str();
        let links = self.host("start", id).await?;
        let policy = net::Policy {
            gateway_ports: self.config.gateway_ports.clone(),
            egress: ws.profile.egress,
        };
        let previous = self.read_state(id);
        if previous.is_none() {
            // The intent first: a crash while the network is being made leaves
            // a state file that says the workspace was meant to run, so that
            // observe reports it failed and a stop or a start tears it down.
            let intent = State {
                slot: net::preferred_slot(id),
                upstream: String::new(),
                base_url: ws.base_url.clone(),
                running: true,
                policy: None,
                shared_firewall: true,
            };
            self.write_state(id, &intent)
                .map_err(|e| failed("start", id, e))?;
        }
        // A network that is up keeps its slot, and its firewall elements are
        // replaced; anything else is made anew.
        let kept = match &previous {
            Some(s) if s.shared_firewall => net::is_set_up(id, Slot(s.slot))
                .await
                .map_err(|e| failed("start", id, e))?
                .map(|ns| (s.made(), ns)),
            _ => None,
        };
        let (slot, ns, old) = match kept {
            Some((made, ns)) => (made.slot, ns, made.policy),
            None => {
                net::tear_down(&links, id, previous.as_ref().map(State::made).as_ref())
                    .await
                    .map_err(|e| failed("start", id, e))?;
                let (slot, ns) = net::set_up(&links, id)
                    .await
                    .map_err(|e| failed("start", id, e))?;
                (slot, ns, None)
            }
        };
        let upstream = format!("{}:{}", slot.workspace_ip(), net::APP_PORT);
        // What the readiness probe asks for: the app's own root.
        let probe_url = if ws.profile.app.strip_prefix() {
            "/".to_owned()
        } else {
            ws.base_url.clone()
        };
        // The elements in the state file before they exist: a tear-down
        // after a crash removes them whether or not they were made.
        self.write_state(
            id,
            &State {
                slot: slot.0,
                upstream: upstream.clone(),
                base_url: probe_url.clone(),
                running: true,
                policy: Some(policy.clone()),
                shared_firewall: true,
            },
        )
        .map_err(|e| failed("start", id, e))?;
        net::configure(&ns, slot, old.as_ref(), &policy)
            .await
            .map_err(|e| failed("start", id, e))?;
        Ok((upstream, probe_url))
    }

    /// Probes a starting app until it answers, and says so on
    /// [`Runtime::changes`] at once, so that the controller need not poll
    /// it: every 5 ms while few apps start, less often the more start at
    /// once ([`probe_gap`]). A probe's first step, a connection refused until
    /// the app listens, costs the host little. It gives up when the sandbox
    /// exits (its reaper tells then) or after `timeout_secs`, the profile's
    /// start timeout, which the controller enforces.
    fn watch_readiness(&self, id: &str, upstream: &str, probe_url: String, timeout_secs: u64) {
        use std::sync::atomic::Ordering;
        let (changed, watched) = (self.changed.clone(), self.watched.clone());
        let probing = self.probing.clone();
        let (id, upstream) = (id.to_owned(), upstream.to_owned());
        tokio::spawn(async move {
            probing.fetch_add(1, Ordering::Relaxed);
            let deadline = Instant::now() + Duration::from_secs(timeout_secs);
            while Instant::now() < deadline && watched.lock().unwrap().contains(&id) {
                tokio::time::sleep(probe_gap(probing.load(Ordering::Relaxed))).await;
                if probe(&upstream, &probe_url).await {
                    let _ = changed.send(id.into());
                    break;
                }
            }
            probing.fetch_sub(1, Ordering::Relaxed);
        });
    }

    /// The gateway and the shared firewall table, made once by this
    /// instance; running workspaces that an older berth gave tables of their
    /// own are moved into it at the same time.
    ///
    /// Returns a netlink connection of the host, made for the caller: one
    /// kept would belong to the tokio runtime that first made it.
    async fn host(&self, op: &'static str, id: &str) -> Result<net::Links, RuntimeError> {
        self.host
            .get_or_try_init(|| async {
                if !self.config.gateway_ports.is_empty() {
                    net::ensure_gateway().await?;
                }
                net::ensure_table().await?;
                let legacy: Vec<(String, Slot)> = self
                    .state_ids()?
                    .into_iter()
                    .filter_map(|id| {
                        let state = self.read_state(&id)?;
                        (state.running && !state.shared_firewall).then_some((id, Slot(state.slot)))
                    })
                    .collect();
                for (id, policy) in net::migrate_legacy(&legacy, &self.config.gateway_ports).await?
                {
                    if let Some(mut state) = self.read_state(&id) {
                        state.policy = Some(policy);
                        state.shared_firewall = true;
                        self.write_state(&id, &state)?;
                    }
                    tracing::info!(workspace.id = %id, "firewall moved into the shared table");
                }
                Ok::<_, HostError>(())
            })
            .await
            .map_err(|e| failed(op, id, e))?;
        net::Links::open().map_err(|e| failed(op, id, e))
    }

    /// The ids that have a state file.
    fn state_ids(&self) -> std::io::Result<Vec<String>> {
        self.ids_in("run", ".json")
    }

    /// The workspace ids that name the entries of `dir` (under the data
    /// directory), each followed by `suffix`.
    fn ids_in(&self, dir: &str, suffix: &str) -> std::io::Result<Vec<String>> {
        let mut ids = Vec::new();
        for entry in std::fs::read_dir(self.config.data_dir.join(dir))?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(id) = name.strip_suffix(suffix) {
                if check_id("list", id).is_ok() {
                    ids.push(id.to_owned());
                }
            }
        }
        Ok(ids)
    }

    fn read_state(&self, id: &str) -> Option<State> {
        let text = std::fs::read(self.state_path(id)).ok()?;
        serde_json::from_slice(&text).ok()
    }

    fn write_state(&self, id: &str, state: &State) -> std::io::Result<()> {
        let path = self.state_path(id);
        let tmp = path.with_extension("json.tmp");
        std::fs::write(
            &tmp,
            serde_json::to_vec(state).map_err(std::io::Error::other)?,
        )?;
        std::fs::rename(tmp, path)
    }

    /// Signals every process in the cgroup until it is empty, then removes it.
    async fn kill_all(&self, id: &str) -> Result<(), RuntimeError> {
        self.cpu_samples.lock().unwrap().remove(id);
        if !self.cgroups.exists(id) {
            return Ok(());
        }
        let cg = &self.cgroups;
        // Frozen tasks act on signals only once thawed.
        let _ = cg.set_frozen(id, false);
        let pids = cg.pids(id).map_err(|e| failed("stop", id, e))?;
        if !pids.is_empty() {
            signal(&pids, rustix::process::Signal::TERM);
            // Most apps end at once: look soon, then less often.
            let deadline = Instant::now() + self.config.stop_grace;
            let mut gap = Duration::from_millis(2);
            while Instant::now() < deadline && !cg.pids(id).unwrap_or_default().is_empty() {
                tokio::time::sleep(gap).await;
                gap = (gap * 2).min(Duration::from_millis(50));
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let pids = cg.pids(id).map_err(|e| failed("stop", id, e))?;
                if pids.is_empty() {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(transient(
                        "stop",
                        id,
                        format!("processes {pids:?} survive SIGKILL"),
                    ));
                }
                signal(&pids, rustix::process::Signal::KILL);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        // The kernel may report the cgroup busy for a moment after its last exit.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match cg.remove(id) {
                Ok(()) => return Ok(()),
                Err(e) if Instant::now() > deadline => return Err(failed("stop", id, e)),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    async fn set_frozen(
        &self,
        op: &'static str,
        id: &str,
        frozen: bool,
    ) -> Result<(), RuntimeError> {
        check_id(op, id)?;
        let pids = self.cgroups.pids(id).map_err(|e| failed(op, id, e))?;
        if pids.is_empty() {
            return Err(permanent(op, id, "workspace is not running"));
        }
        self.cgroups
            .set_frozen(id, frozen)
            .map_err(|e| failed(op, id, e))?;
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let done = self.cgroups.is_frozen(id).map_err(|e| failed(op, id, e))? == frozen;
            if done {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(transient(op, id, "the freezer did not settle in 5s"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl ProcessRuntime {
    /// What the sandbox runs for the profile's app, and the host directories it
    /// needs mounted read-only.
    fn app_argv(&self, ws: &WorkspaceRef) -> Result<(Vec<String>, Vec<PathBuf>), RuntimeError> {
        let id = ws.id.as_str();
        match &ws.profile.app {
            App::Command { argv, .. } if !argv.is_empty() => {
                let home = format!("/home/{}", ws.owner);
                let vars = CommandVars {
                    port: net::APP_PORT,
                    base_url: &ws.base_url,
                    username: ws.owner.as_str(),
                    servername: ws.name.as_str(),
                    home: &home,
                };
                Ok((argv.iter().map(|a| vars.fill(a)).collect(), Vec::new()))
            }
            App::Command { .. } => Err(permanent("start", id, "empty argv")),
            App::Jupyterlab => {
                let env = &self.config.jupyter_env;
                // With a hub's credentials (berth's controller always gives them),
                // JupyterHub's single-user server: it logs browsers in through
                // berth's OAuth and reports activity. Without (this runtime used
                // alone, as its tests do), plain JupyterLab without a token.
                let hub = ws.has_hub_token();
                let program = env.join(if hub {
                    "bin/jupyterhub-singleuser"
                } else {
                    "bin/jupyter-lab"
                });
                if !program.is_file() {
                    return Err(permanent(
                        "start",
                        id,
                        format!(
                            "no {}: create the managed environment with scripts/install-deps",
                            program.display()
                        ),
                    ));
                }
                let mut argv = vec![program.to_string_lossy().into_owned()];
                if !hub {
                    argv.extend([
                        "--no-browser".into(),
                        "--ip=0.0.0.0".into(),
                        format!("--port={}", net::APP_PORT),
                        format!("--ServerApp.base_url={}", ws.base_url),
                        format!("--ServerApp.root_dir=/home/{}", ws.owner),
                        // No token: only root on the host reaches the app (the
                        // firewall's output chain), that is berth itself.
                        "--IdentityProvider.token=".into(),
                        "--ServerApp.allow_remote_access=True".into(),
                    ]);
                }
                Ok((argv, vec![env.clone()]))
            }
        }
    }
}

#[async_trait]
impl Runtime for ProcessRuntime {
    fn name(&self) -> &'static str {
        "process"
    }

    fn capabilities(&self) -> runtime::Capabilities {
        runtime::Capabilities {
            pause: true,
            disk_limit: true,
            usage: true,
            ready_events: true,
        }
    }

    async fn start(&self, ws: &WorkspaceRef) -> Result<(), RuntimeError> {
        let id = ws.id.as_str();
        check_id("start", id)?;
        let (argv, ro_binds) = self.app_argv(ws)?;
        if ws.uid == 0 {
            return Err(permanent("start", id, "refusing to run as uid 0"));
        }
        if !self
            .cgroups
            .pids(id)
            .map_err(|e| failed("start", id, e))?
            .is_empty()
        {
            return Ok(()); // running or paused: left alone
        }
        // Leftovers of a run that died (an empty cgroup with old OOM counts).
        self.kill_all(id).await?;

        // The home and the network do not depend on each other.
        let (home, limit) = (self.home(id), ws.profile.disk_quota_bytes);
        let (ensured, network) = tokio::join!(home.ensure(ws.uid, limit), self.network(ws));
        let ensured = ensured.map_err(|e| home_error("start", id, e))?;
        let (upstream, probe_url) = network?;
        let home = home.dir;

        let limits = Limits {
            memory_bytes: ws.profile.memory_bytes,
            cpu_millis: ws.profile.cpu_millis,
            max_processes: ws.profile.max_processes,
        };
        self.cgroups
            .create(id, &limits)
            .map_err(|e| failed("start", id, e))?;

        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(id))
            .map_err(|e| failed("start", id, e))?;
        match ensured {
            Ensured::Ready => {}
            Ensured::Grown { from, to } => {
                let _ = writeln!(
                    log,
                    "berth: the home grew from {} to {}",
                    bytes(from),
                    bytes(to)
                );
            }
            Ensured::GrowLater { size, wanted } => {
                let _ = writeln!(
                    log,
                    "berth: the home stays at {} this time: it is still in use on the host; it grows to {} at a later start",
                    bytes(size),
                    bytes(wanted)
                );
            }
            Ensured::Larger { size } => {
                let _ = writeln!(
                    log,
                    "berth: the home stays at {}: a home is not shrunk (the profile allows {})",
                    bytes(size),
                    bytes(limit)
                );
            }
            Ensured::Unlimited { reason } => {
                tracing::warn!(workspace.id = id, "home without a limit: {reason}");
                let _ = writeln!(log, "berth: the home has no limit: {reason}");
            }
        }
        let _ = writeln!(log, "{START_MARK}{argv:?} at {upstream}");
        let owner = ws.owner.as_str();
        let home_in = format!("/home/{owner}");
        let mut env: Vec<(String, String)> = vec![
            ("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()),
            ("LANG".into(), "C.UTF-8".into()),
            ("HOME".into(), home_in.clone()),
            ("USER".into(), owner.into()),
            ("PORT".into(), net::APP_PORT.to_string()),
            ("JUPYTERHUB_SERVICE_PREFIX".into(), ws.base_url.clone()),
            ("JUPYTERHUB_USER".into(), owner.into()),
        ];
        if let Some(port) = self.config.gateway_ports.first() {
            let url = format!("http://{}:{port}", net::GATEWAY_IP);
            // What a JupyterHub spawner adds where it runs the server.
            env.extend([
                ("JUPYTERHUB_API_URL".into(), format!("{url}/hub/api")),
                (
                    "JUPYTERHUB_ACTIVITY_URL".into(),
                    format!("{url}/hub/api/users/{owner}/activity"),
                ),
                ("BERTH_API_URL".into(), url),
            ]);
        }
        env.extend([
            (
                "JUPYTERHUB_SERVICE_URL".into(),
                format!("http://0.0.0.0:{}{}", net::APP_PORT, ws.base_url),
            ),
            ("JUPYTERHUB_ROOT_DIR".into(), home_in.clone()),
        ]);
        env.extend(ws.env.iter().cloned());
        // Through the exec'd process's environment, never a command line.
        env.extend(
            ws.secrets
                .iter()
                .map(|(k, v)| (k.clone(), v.expose().to_owned())),
        );
        let hostname = hostname(ws.owner.as_str(), ws.name.as_str());
        let mut child = exec::spawn_sandbox(exec::Sandbox {
            cgroup_procs: self.cgroups.procs_files(id),
            netns: net::netns_name(id),
            uid: ws.uid,
            host_home: &home,
            home: home_in,
            ro_binds,
            hostname: &hostname,
            env,
            argv: &argv,
            seccomp: &self.config.data_dir.join("run").join("seccomp.bpf"),
            log,
        })
        .map_err(|e| failed("start", id, e))?;

        // Wait until the sandbox is in its cgroup, or has already given up.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                if status.code() == Some(exec::JOIN_FAILED) {
                    let tail = self.log_tail(id, REASON_LOG_BYTES);
                    return Err(transient(
                        "start",
                        id,
                        format!("joining the cgroup: {tail}"),
                    ));
                }
                // The app (or bwrap) ran and exited already: observe reports
                // Failed with the log.
                break;
            }
            if !self.cgroups.pids(id).unwrap_or_default().is_empty() {
                break;
            }
            if Instant::now() > deadline {
                return Err(transient(
                    "start",
                    id,
                    "sandbox did not join its cgroup in 5s",
                ));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Reap it if it exits while this process lives (and say so: the app
        // died, or was stopped); it outlives us otherwise.
        let (changed, id_owned) = (self.changed.clone(), id.to_owned());
        let log_path = self.log_path(id);
        let watched = self.watched.clone();
        watched.lock().unwrap().insert(id.to_owned());
        tokio::spawn(async move {
            let status = child.wait().await;
            watched.lock().unwrap().remove(&id_owned);
            if let Ok(status) = status {
                // The exit, in the log, for observe's reason.
                let how = match (status.code(), status.signal()) {
                    (Some(code), _) => format!("exited with code {code}"),
                    (None, Some(signal)) => format!("was killed by signal {signal}"),
                    (None, None) => "ended".to_owned(),
                };
                if let Ok(mut log) = std::fs::OpenOptions::new().append(true).open(&log_path) {
                    let _ = writeln!(log, "{EXIT_MARK}{how}");
                }
            }
            let _ = changed.send(id_owned.into());
        });
        self.watch_readiness(id, &upstream, probe_url, ws.profile.start_timeout_secs);
        tracing::info!(workspace.id = id, %upstream, "workspace started");
        Ok(())
    }

    async fn stop(&self, id: &WorkspaceId) -> Result<(), RuntimeError> {
        check_id("stop", id)?;
        self.kill_all(id).await?;
        let state = self.read_state(id);
        let links = self.host("stop", id).await?;
        net::tear_down(&links, id, state.as_ref().map(State::made).as_ref())
            .await
            .map_err(|e| failed("stop", id, e))?;
        if let Some(mut state) = state {
            state.running = false;
            self.write_state(id, &state)
                .map_err(|e| failed("stop", id, e))?;
        }
        self.home(id)
            .unmount()
            .await
            .map_err(|e| home_error("stop", id, e))
    }

    async fn pause(&self, id: &WorkspaceId) -> Result<(), RuntimeError> {
        self.set_frozen("pause", id, true).await
    }

    async fn resume(&self, id: &WorkspaceId) -> Result<(), RuntimeError> {
        self.set_frozen("resume", id, false).await
    }

    /// With `keep_files` the home moves to `<data_dir>/kept/<id>` (root's
    /// alone) instead of being removed.
    async fn delete(&self, id: &WorkspaceId, keep_files: bool) -> Result<(), RuntimeError> {
        check_id("delete", id)?;
        self.stop(id).await?;
        let home = self.home(id);
        if keep_files {
            home.keep(&self.kept_dir(id)).await
        } else {
            home.remove().await
        }
        .map_err(|e| home_error("delete", id, e))?;
        for path in [self.log_path(id), self.state_path(id)] {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(failed("delete", id, e)),
            }
        }
        Ok(())
    }

    async fn observe(&self, id: &WorkspaceId) -> Result<Observed, RuntimeError> {
        check_id("observe", id)?;
        let state = self.read_state(id);
        let pids = self
            .cgroups
            .pids(id)
            .map_err(|e| failed("observe", id, e))?;
        if !pids.is_empty() {
            self.watch_adopted(id, &pids);
            if self.cgroups.freeze_requested(id).unwrap_or(false) {
                return Ok(Observed::Paused);
            }
            let Some(state) = state else {
                return Ok(Observed::Failed {
                    reason: "StateMissing".into(),
                    message: "processes run but the state file is missing".into(),
                });
            };
            // The intent written before the network was made has no upstream.
            return Ok(match state.upstream.parse::<Upstream>() {
                Ok(upstream) if probe(&state.upstream, &state.base_url).await => {
                    Observed::Running { upstream }
                }
                _ => Observed::Starting { waiting: None },
            });
        }
        if !state.as_ref().is_some_and(|s| s.running) {
            self.sweep_network(id, state.as_ref()).await;
        }
        match state {
            Some(state) if state.running => {
                let tail = self.log_tail(id, REASON_LOG_BYTES);
                // What this start wrote, and how it ended if the reaper saw it.
                let run = this_run(&tail);
                let exit = run.lines().rev().find_map(|l| l.strip_prefix(EXIT_MARK));
                let oom = self.cgroups.oom_kills(id);
                let (reason, what) = if oom > 0 {
                    (
                        "OOMKilled",
                        "was killed at its memory limit (out of memory)".to_owned(),
                    )
                } else if let Some(how) = exit {
                    let reason = if how.contains("signal") {
                        "Signaled"
                    } else {
                        "Exited"
                    };
                    (reason, how.to_owned())
                } else if self.cgroups.exists(id) {
                    ("Exited", "exited".to_owned())
                } else {
                    ("Gone", "is not running (its cgroup is gone)".to_owned())
                };
                let mut message = format!("the app {what}");
                if let Some(line) = model::last_line(run) {
                    message = format!("{message}: {line}");
                }
                Ok(Observed::Failed {
                    reason: reason.to_owned(),
                    message,
                })
            }
            Some(_) => Ok(Observed::Stopped),
            None if self.home_dir(id).exists() || self.home(id).image.exists() => {
                Ok(Observed::Stopped)
            }
            None => Ok(Observed::Absent),
        }
    }

    /// The workspaces of this data dir: those with a home, an image or a state file. A
    /// cgroup under the parent without either belongs to another berth on this
    /// machine (`start` writes the state file before it makes the cgroup, and
    /// `delete` removes it after the cgroup), and is left alone.
    async fn list(&self) -> Result<Vec<WorkspaceId>, RuntimeError> {
        let mut ids = Vec::new();
        for (dir, suffix) in [("homes", ""), ("disks", ".ext4"), ("run", ".json")] {
            let found = self
                .ids_in(dir, suffix)
                .map_err(|e| failed("list", "*", e))?;
            ids.extend(found.into_iter().map(WorkspaceId::from));
        }
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    fn changes(&self) -> Option<tokio::sync::broadcast::Receiver<WorkspaceId>> {
        Some(self.changed.subscribe())
    }

    async fn log_read(
        &self,
        id: &WorkspaceId,
        from: Option<u64>,
        max_bytes: usize,
    ) -> Result<LogRead, RuntimeError> {
        check_id("log_read", id)?;
        self.read_log(id, from, max_bytes)
            .map_err(|e| failed("log_read", id, e))
    }

    async fn start_log(&self, id: &WorkspaceId, max_bytes: usize) -> Result<String, RuntimeError> {
        check_id("start_log", id)?;
        let tail = ProcessRuntime::log_tail(self, id, max_bytes);
        Ok(this_run(&tail)
            .lines()
            .filter(|l| !l.starts_with("berth: "))
            .map(|l| format!("{l}\n"))
            .collect())
    }

    /// From the home's file system, while it is mounted.
    async fn disk(&self, id: &WorkspaceId) -> Result<Option<Disk>, RuntimeError> {
        check_id("disk", id)?;
        match self.home(id).space() {
            Ok(disk) => Ok(Some(disk)),
            Err(disk::DiskError::NotMounted) => Ok(None),
            Err(e) => Err(failed("disk", id, e)),
        }
    }

    /// From the workspace's cgroup; `None` when it has no processes (or, on
    /// v1, no `cpuacct` cgroup). Without a recent sample to compare with, this
    /// takes [`USAGE_SAMPLE_GAP`].
    async fn usage(&self, id: &WorkspaceId) -> Result<Option<Usage>, RuntimeError> {
        check_id("usage", id)?;
        let cg = &self.cgroups;
        // A missing file means the cgroup is gone (or was never made complete).
        let gone = |e: &std::io::Error| e.kind() == std::io::ErrorKind::NotFound;
        if cg.pids(id).map_err(|e| failed("usage", id, e))?.is_empty() {
            return Ok(None);
        }
        let sample = || match cg.cpu_sample(id) {
            Ok(s) => Ok(Some(s)),
            Err(e) if gone(&e) => Ok(None),
            Err(e) => Err(failed("usage", id, e)),
        };
        let Some(now) = sample()? else {
            return Ok(None);
        };
        let previous = self.cpu_samples.lock().unwrap().insert(id.to_string(), now);
        let cpu_millis = match previous.and_then(|p| now.millis_since(&p)) {
            Some(rate) => rate,
            None => {
                tokio::time::sleep(USAGE_SAMPLE_GAP).await;
                let Some(later) = sample()? else {
                    return Ok(None);
                };
                self.cpu_samples
                    .lock()
                    .unwrap()
                    .insert(id.to_string(), later);
                // Only a cgroup made anew in between makes this `None`.
                later.millis_since(&now).unwrap_or(0)
            }
        };
        let memory_bytes = match cg.memory_bytes(id) {
            Ok(bytes) => bytes,
            Err(e) if gone(&e) => return Ok(None),
            Err(e) => return Err(failed("usage", id, e)),
        };
        Ok(Some(Usage {
            cpu_millis,
            memory_bytes,
        }))
    }
}

/// Sends `signal` to `pids`; those gone already are fine.
fn signal(pids: &[u32], signal: rustix::process::Signal) {
    for pid in pids {
        if let Some(pid) = i32::try_from(*pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process(pid, signal);
        }
    }
}

/// Ids become file, interface-namespace and nftables names: keep them plain.
fn check_id(op: &'static str, id: &str) -> Result<(), RuntimeError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id.starts_with(|c: char| c.is_ascii_alphanumeric())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(permanent(op, id, "invalid workspace id"))
    }
}

/// Whether `GET base_url` at `upstream` answers with a status below 500.
async fn probe(upstream: &str, base_url: &str) -> bool {
    let Ok(Ok(mut stream)) = tokio::time::timeout(
        Duration::from_secs(1),
        tokio::net::TcpStream::connect(upstream),
    )
    .await
    else {
        return false;
    };
    let status = async {
        let request =
            format!("GET {base_url} HTTP/1.1\r\nHost: {upstream}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut buf = [0u8; 64];
        let mut len = 0;
        while len < buf.len() && !buf[..len].contains(&b'\n') {
            let n = stream.read(&mut buf[len..]).await.ok()?;
            if n == 0 {
                break;
            }
            len += n;
        }
        status_code(&buf[..len])
    };
    let code = tokio::time::timeout(Duration::from_secs(1), status).await;
    // Read the rest of the answer (briefly, at most 1 MiB) before closing, so
    // that the app does not see it cut off and log a reset connection.
    let drain = async {
        let mut rest = [0u8; 8192];
        let mut total = 0usize;
        while total < 1 << 20 {
            match stream.read(&mut rest).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_millis(200), drain).await;
    matches!(code, Ok(Some(code)) if code < 500)
}

/// The status code of an HTTP/1.x status line.
fn status_code(head: &[u8]) -> Option<u16> {
    let line = std::str::from_utf8(head).ok()?.lines().next()?;
    let mut parts = line.split(' ');
    if !parts.next()?.starts_with("HTTP/1.") {
        return None;
    }
    parts.next()?.parse().ok()
}

/// A missing tool will not appear by trying again; anything else may pass.
fn home_error(op: &'static str, id: &str, e: disk::DiskError) -> RuntimeError {
    let message = format!("the home: {e}");
    match e {
        disk::DiskError::Exec(exec::ExecError::Spawn { .. }) => permanent(
            op,
            id,
            format!("{message} (install e2fsprogs and mount: scripts/install-deps)"),
        ),
        _ => transient(op, id, message),
    }
}

fn transient(op: &'static str, id: &str, message: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::transient(op, id, message.to_string())
}

fn permanent(op: &'static str, id: &str, message: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::permanent(op, id, message.to_string())
}

/// A transient failure of `op` that `cause` says all of.
fn failed(
    op: &'static str,
    id: &str,
    cause: impl std::error::Error + Send + Sync + 'static,
) -> RuntimeError {
    RuntimeError::transient(op, id, "").because(cause)
}

/// A workspace's hostname, `{owner}-{workspace}`: every user's `default` would
/// otherwise share one. Cut to 63 characters (a hostname's limit is 64; names
/// are ASCII), without a trailing `-`.
fn hostname(owner: &str, workspace: &str) -> String {
    let mut h = format!("{owner}-{workspace}");
    h.truncate(63);
    h.trim_end_matches('-').to_owned()
}

/// When process `pid` started (clock ticks since boot), from `/proc/<pid>/stat`;
/// `u64::MAX` if it cannot be read.
fn started_at(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            // After the command name: state (field 3) … starttime (field 22).
            let rest = &stat[stat.rfind(')')? + 2..];
            rest.split(' ').nth(19)?.parse().ok()
        })
        .unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starting_apps_share_one_probe_budget() {
        let ms = Duration::from_millis;
        assert_eq!(probe_gap(1), ms(5), "one app is probed every 5 ms");
        assert_eq!(probe_gap(20), ms(5));
        assert_eq!(probe_gap(100), ms(25));
        assert_eq!(probe_gap(200), ms(50));
        assert_eq!(probe_gap(usize::MAX), ms(50), "never rarer than this");
        for n in [1, 20, 21, 100, 199, 200] {
            let per_second = n as f64 / probe_gap(n).as_secs_f64();
            assert!(per_second <= 4_000.0, "{n} apps: {per_second} probes/s");
        }
    }

    #[test]
    fn hostnames_are_owner_and_workspace_within_the_limit() {
        assert_eq!(hostname("alice", "default"), "alice-default");
        let long = "a".repeat(32);
        let h = hostname(&long, &"b".repeat(32));
        assert_eq!(h.len(), 63);
        assert!(h.starts_with(&format!("{long}-b")));
        assert_eq!(hostname(&"c".repeat(63), "x"), "c".repeat(63));
    }

    #[test]
    fn ids_must_be_plain() {
        assert!(check_id("t", "0190a1b2-aaaa-7000-8000-000000000000").is_ok());
        assert!(check_id("t", "ws_1").is_ok());
        for bad in ["", "-x", "a/b", "a b", "ä", &"x".repeat(65)] {
            assert!(check_id("t", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn status_line_is_parsed() {
        assert_eq!(status_code(b"HTTP/1.0 200 OK\r\n"), Some(200));
        assert_eq!(status_code(b"HTTP/1.1 404 Not Found\r\nX: y"), Some(404));
        assert_eq!(status_code(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(status_code(b""), None);
    }

    #[test]
    fn log_tail_returns_the_last_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("cg");
        std::fs::create_dir_all(root.join("memory")).unwrap();
        let mut config = Config::new(dir.path().join("data"));
        config.cgroup_root = root;
        let rt = ProcessRuntime::new(config).unwrap();
        assert_eq!(rt.log_tail("w1", 10), "");
        std::fs::write(rt.log_path("w1"), "0123456789abcdef").unwrap();
        assert_eq!(rt.log_tail("w1", 6), "abcdef");
        assert_eq!(rt.log_tail("w1", 100), "0123456789abcdef");
    }
}
