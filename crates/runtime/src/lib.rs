//! The `Runtime` trait: how workspaces are made to run. Runtimes know no store;
//! the controller calls them with everything they need, and they report what they
//! observe. Every method is idempotent. [`fake::FakeRuntime`] runs nothing, for
//! the tests of what calls a runtime; `runtime-conformance` is the story every
//! runtime must pass.

use async_trait::async_trait;

use model::{Name, ProfileSpec, Secret, Upstream, WorkspaceId};

pub use fake::FakeRuntime;

/// Variables of an app's environment.
pub type Env = Vec<(String, String)>;
/// Secret variables of an app's environment.
pub type SecretEnv = Vec<(String, Secret)>;

/// Everything a runtime needs to know about one workspace.
#[derive(Debug, Clone)]
pub struct WorkspaceRef {
    pub id: WorkspaceId,
    pub owner: Name,
    pub name: Name,
    /// The unprivileged uid (and gid) the workspace runs as; never 0.
    pub uid: u32,
    /// The URL prefix the app serves under, `/user/{owner}/{name}/`.
    pub base_url: String,
    /// The profile's name (`standard`, `gpu`), which a runtime may place by
    /// (the Kubernetes runtime's node pools).
    pub profile_name: Name,
    pub profile: ProfileSpec,
    /// Extra environment for the app (JupyterHub spawner conventions). Every
    /// runtime gives every app, besides: `PORT`, `HOME`, `USER`,
    /// `JUPYTERHUB_USER` (the owner) and `JUPYTERHUB_SERVICE_PREFIX`
    /// (`base_url`), and, where berth's API is reachable, `JUPYTERHUB_API_URL`,
    /// `JUPYTERHUB_ACTIVITY_URL` and `JUPYTERHUB_SERVICE_URL` as they are seen
    /// from where the app runs.
    pub env: Env,
    /// Secrets for the app's environment (its hub token), kept apart from
    /// `env` so that nothing logs or shows them (`Secret` hides itself in
    /// `Debug`); a runtime hands them to the app as `env`, and never on a
    /// command line.
    pub secrets: SecretEnv,
    /// The image the app runs from, for runtimes that run images (Docker,
    /// Kubernetes); the process runtime runs the host's `/usr` and ignores it.
    pub image: Option<String>,
}

impl WorkspaceRef {
    /// Whether the app comes with a hub's credentials (a JupyterHub server).
    pub fn has_hub_token(&self) -> bool {
        self.secrets
            .iter()
            .any(|(k, _)| k == "JUPYTERHUB_API_TOKEN")
    }
}

/// What a runtime can do beyond starting, stopping and observing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capabilities {
    /// `pause` and `resume` exist: the app stops answering and comes back at
    /// the same upstream with its files. The process runtime keeps its memory
    /// too (a frozen cgroup); the Kubernetes runtime hibernates (no Pod).
    pub pause: bool,
    /// The home's size is limited to the profile's disk (`disk` reports it).
    pub disk_limit: bool,
    /// `usage` reports CPU and memory in use.
    pub usage: bool,
    /// [`Runtime::changes`] tells when a starting app first answers, so a
    /// caller need not poll `observe` for it.
    pub ready_events: bool,
}

/// What a runtime sees of a workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    /// Nothing exists for this id.
    Absent,
    /// Processes exist but the app does not answer yet.
    Starting {
        /// Why not, in words for people, where the runtime knows more than
        /// "on its way": a Pod no node has room for, an image it cannot pull.
        waiting: Option<String>,
    },
    /// The app answers at `upstream`.
    Running {
        upstream: Upstream,
    },
    Paused,
    /// Resources exist (home directory) but nothing runs.
    Stopped,
    /// The app died or could not start.
    Failed {
        /// One CamelCase word, as a Kubernetes condition's: `Exited`,
        /// `Signaled`, `OOMKilled`, `Gone`.
        reason: String,
        /// One line for people: the exit code or signal and the app's last log
        /// line (the log holds the rest).
        message: String,
    },
}

/// What a workspace uses now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// Recent CPU use in thousandths of a core (1500 = 1.5 CPUs busy).
    pub cpu_millis: u64,
    /// Memory in use, in bytes (the cgroup's usage, page cache included as the kernel counts it).
    pub memory_bytes: u64,
}

/// A workspace's home: its size limit and what its files take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Disk {
    pub used_bytes: u64,
    /// What the file system holds at most (a little under the profile's
    /// limit: the file system's own structures take the rest).
    pub size_bytes: u64,
    /// What the app may still write.
    pub available_bytes: u64,
}

impl Disk {
    /// Full: what is left would not hold a small file's worth of blocks
    /// (under 1% of the size, or 1 MiB).
    pub fn is_full(&self) -> bool {
        self.available_bytes < (self.size_bytes / 100).min(1 << 20)
    }
}

/// What a runtime error came from (an I/O error, a failed command), kept
/// for logs that walk the chain ([`model::error_chain`]).
pub type ErrorSource = std::sync::Arc<dyn std::error::Error + Send + Sync>;

/// A runtime operation failed; `retryable` says whether trying again can help.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RuntimeError {
    /// This runtime cannot do that at all (see [`Runtime::capabilities`]).
    #[error("{op} workspace {id}: the {runtime} runtime cannot")]
    Unsupported {
        op: &'static str,
        id: WorkspaceId,
        runtime: &'static str,
    },
    /// Trying again may help (a busy system, a process slow to go).
    #[error("{op} workspace {id}{}", colon(message))]
    Transient {
        op: &'static str,
        id: WorkspaceId,
        /// What went wrong, where `source` does not say it all; may be empty.
        message: String,
        #[source]
        source: Option<ErrorSource>,
    },
    /// It will fail again the same way (a bad command, a missing tool).
    #[error("{op} workspace {id}{}", colon(message))]
    Permanent {
        op: &'static str,
        id: WorkspaceId,
        message: String,
        #[source]
        source: Option<ErrorSource>,
    },
}

/// `: message`, or nothing for an empty one.
fn colon(message: &str) -> String {
    match message {
        "" => String::new(),
        m => format!(": {m}"),
    }
}

impl RuntimeError {
    pub fn retryable(&self) -> bool {
        matches!(self, RuntimeError::Transient { .. })
    }

    /// A transient failure of `op` on `id`, said in `message`.
    pub fn transient(op: &'static str, id: &str, message: impl Into<String>) -> Self {
        RuntimeError::Transient {
            op,
            id: id.into(),
            message: message.into(),
            source: None,
        }
    }

    /// A permanent failure of `op` on `id`, said in `message`.
    pub fn permanent(op: &'static str, id: &str, message: impl Into<String>) -> Self {
        RuntimeError::Permanent {
            op,
            id: id.into(),
            message: message.into(),
            source: None,
        }
    }

    /// The same error, caused by `source`.
    pub fn because(mut self, cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        if let RuntimeError::Transient { source, .. } | RuntimeError::Permanent { source, .. } =
            &mut self
        {
            *source = Some(std::sync::Arc::new(cause));
        }
        self
    }
}

/// What [`Runtime::log_read`] read: the bytes, and the offset after them
/// (where the next read starts).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogRead {
    pub bytes: Vec<u8>,
    pub end: u64,
}

impl LogRead {
    /// Where [`Runtime::log_read`] starts reading a log of `len` bytes.
    pub fn start(len: u64, from: Option<u64>, max_bytes: usize) -> u64 {
        match from {
            Some(f) if f <= len => f,
            Some(_) => 0,
            None => len.saturating_sub(max_bytes as u64),
        }
    }

    /// Reads `log` as [`Runtime::log_read`] does.
    pub fn of(log: &[u8], from: Option<u64>, max_bytes: usize) -> LogRead {
        let len = log.len() as u64;
        let start = LogRead::start(len, from, max_bytes);
        let end = len.min(start + max_bytes as u64);
        LogRead {
            bytes: log[start as usize..end as usize].to_vec(),
            end,
        }
    }
}

/// A way to run workspaces: process (bwrap + cgroups), docker, kubernetes.
#[async_trait]
pub trait Runtime: Send + Sync + std::fmt::Debug + 'static {
    /// A short name for logs and metrics.
    fn name(&self) -> &'static str;
    /// What it can do beyond the lifecycle; nothing, unless it says.
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }
    /// Creates what is missing and starts the app; a running workspace is left alone.
    async fn start(&self, ws: &WorkspaceRef) -> Result<(), RuntimeError>;
    /// Stops every process; files stay.
    async fn stop(&self, id: &WorkspaceId) -> Result<(), RuntimeError>;
    async fn pause(&self, id: &WorkspaceId) -> Result<(), RuntimeError>;
    async fn resume(&self, id: &WorkspaceId) -> Result<(), RuntimeError>;
    /// Removes everything the workspace had: with `keep_files`, all but its
    /// files, which the runtime keeps aside (where is the runtime's to say).
    async fn delete(&self, id: &WorkspaceId, keep_files: bool) -> Result<(), RuntimeError>;
    async fn observe(&self, id: &WorkspaceId) -> Result<Observed, RuntimeError>;
    /// Ids of every workspace this runtime holds anything for (re-adoption, clean-up).
    async fn list(&self) -> Result<Vec<WorkspaceId>, RuntimeError>;
    /// Ids of workspaces whose state changed by itself (an app exited; an
    /// app that came up, where [`Capabilities::ready_events`] says so), for a
    /// runtime that can tell at once; `None` where only `observe` finds out.
    fn changes(&self) -> Option<tokio::sync::broadcast::Receiver<WorkspaceId>> {
        None
    }

    /// The last `max_bytes` of the app's log, for status messages and `berth ws show`.
    async fn log_tail(&self, id: &WorkspaceId, max_bytes: usize) -> Result<String, RuntimeError> {
        let read = self.log_read(id, None, max_bytes).await?;
        Ok(String::from_utf8_lossy(&read.bytes).into_owned())
    }

    /// A piece of the app's log, for following it: up to `max_bytes` from byte
    /// `from` on, or, with `from` `None`, its last `max_bytes`. A `from` past
    /// the log's end (a log made anew) reads from its start.
    async fn log_read(
        &self,
        _id: &WorkspaceId,
        _from: Option<u64>,
        _max_bytes: usize,
    ) -> Result<LogRead, RuntimeError> {
        Ok(LogRead::default())
    }

    /// The app's output since its last start (at most the last `max_bytes`),
    /// without the runtime's own lines; where a runtime cannot tell starts
    /// apart, its log tail.
    async fn start_log(&self, id: &WorkspaceId, max_bytes: usize) -> Result<String, RuntimeError> {
        self.log_tail(id, max_bytes).await
    }

    /// What the workspace uses now; `None` where this runtime cannot tell, or
    /// where nothing runs. May take a moment (a CPU rate needs two samples).
    async fn usage(&self, _id: &WorkspaceId) -> Result<Option<Usage>, RuntimeError> {
        Ok(None)
    }

    /// The workspace's home against its limit; `None` where this runtime
    /// cannot tell, or while the home is not mounted (stopped).
    async fn disk(&self, _id: &WorkspaceId) -> Result<Option<Disk>, RuntimeError> {
        Ok(None)
    }
}

pub mod fake {
    //! An in-memory runtime for controller and API tests, with failure injection.

    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;

    /// Keeps workspace states in a map and records every call. Each workspace
    /// has a simulated home (file name → content) that its "app" writes while
    /// running ([`FakeRuntime::write_file`]); it survives stop and goes with delete.
    #[derive(Debug)]
    pub struct FakeRuntime {
        state: Mutex<HashMap<WorkspaceId, Observed>>,
        changes: tokio::sync::broadcast::Sender<WorkspaceId>,
        homes: Mutex<HashMap<WorkspaceId, HashMap<String, String>>>,
        /// Homes of workspaces deleted with `keep_files`.
        kept: Mutex<HashMap<WorkspaceId, HashMap<String, String>>>,
        calls: Mutex<Vec<String>>,
        fail_next: Mutex<Option<RuntimeError>>,
        /// What `usage` reports while a workspace runs.
        usage: Mutex<HashMap<WorkspaceId, Usage>>,
        /// What `disk` reports while a workspace runs.
        disks: Mutex<HashMap<WorkspaceId, Disk>>,
        /// The apps' logs ([`FakeRuntime::log`]).
        logs: Mutex<HashMap<WorkspaceId, Vec<u8>>>,
        /// Where every start ends, if not running ([`FakeRuntime::start_as`]).
        start_as: Mutex<Option<Observed>>,
    }

    impl Default for FakeRuntime {
        fn default() -> Self {
            FakeRuntime {
                state: Mutex::default(),
                changes: tokio::sync::broadcast::channel(64).0,
                homes: Mutex::default(),
                kept: Mutex::default(),
                calls: Mutex::default(),
                fail_next: Mutex::default(),
                usage: Mutex::default(),
                disks: Mutex::default(),
                logs: Mutex::default(),
                start_as: Mutex::default(),
            }
        }
    }

    impl FakeRuntime {
        pub fn new() -> Self {
            Self::default()
        }

        /// Where the fake app of `id` "answers": a socket path that names
        /// it, where nothing listens.
        pub fn upstream_of(id: &str) -> Upstream {
            Upstream::Unix(format!("/nonexistent/berth-fake/{id}.sock").into())
        }

        /// The next call fails with `err`.
        pub fn fail_next(&self, err: RuntimeError) {
            *self.fail_next.lock().unwrap() = Some(err);
        }

        /// Every call so far, as `op id`.
        pub fn calls(&self) -> Vec<String> {
            self.calls.lock().unwrap().clone()
        }

        /// The app of a running workspace writes a file into its home; `false`
        /// if the workspace is not running (no app to write it).
        pub fn write_file(&self, id: &str, name: &str, content: &str) -> bool {
            let running = matches!(
                self.state.lock().unwrap().get(id),
                Some(Observed::Running { .. })
            );
            if running {
                self.homes
                    .lock()
                    .unwrap()
                    .entry(id.into())
                    .or_default()
                    .insert(name.to_owned(), content.to_owned());
            }
            running
        }

        /// A file of the workspace's home.
        pub fn read_file(&self, id: &str, name: &str) -> Option<String> {
            self.homes.lock().unwrap().get(id)?.get(name).cloned()
        }

        /// A file of a home kept when its workspace was deleted.
        pub fn kept_file(&self, id: &str, name: &str) -> Option<String> {
            self.kept.lock().unwrap().get(id)?.get(name).cloned()
        }

        /// Sets what `observe` reports, as if the workspace changed by itself,
        /// and says so on [`Runtime::changes`].
        pub fn set(&self, id: &str, observed: Observed) {
            self.state.lock().unwrap().insert(id.into(), observed);
            let _ = self.changes.send(id.into());
        }

        /// Sets what [`Runtime::usage`] reports for `id` while it is running
        /// (it reports `None` otherwise).
        pub fn set_usage(&self, id: &str, usage: Usage) {
            self.usage.lock().unwrap().insert(id.into(), usage);
        }

        /// Sets what [`Runtime::disk`] reports for `id` while it is running
        /// (it reports `None` otherwise).
        pub fn set_disk(&self, id: &str, disk: Disk) {
            self.disks.lock().unwrap().insert(id.into(), disk);
        }

        /// The app of `id` writes `text` to its log.
        pub fn log(&self, id: &str, text: &str) {
            self.logs
                .lock()
                .unwrap()
                .entry(id.into())
                .or_default()
                .extend_from_slice(text.as_bytes());
        }

        /// Makes every later start end at once in `observed` (an app that
        /// exits as soon as it starts), or start normally again with `None`.
        pub fn start_as(&self, observed: Option<Observed>) {
            *self.start_as.lock().unwrap() = observed;
        }

        fn call(&self, op: &'static str, id: &str) -> Result<(), RuntimeError> {
            self.calls.lock().unwrap().push(format!("{op} {id}"));
            match self.fail_next.lock().unwrap().take() {
                Some(e) => Err(e),
                None => Ok(()),
            }
        }

        fn transition(
            &self,
            op: &'static str,
            id: &str,
            from: &[fn(&Observed) -> bool],
            to: Observed,
        ) -> Result<(), RuntimeError> {
            self.call(op, id)?;
            let mut state = self.state.lock().unwrap();
            let current = state.get(id).cloned().unwrap_or(Observed::Absent);
            if current == to {
                return Ok(());
            }
            if !from.iter().any(|f| f(&current)) {
                return Err(RuntimeError::permanent(
                    op,
                    id,
                    format!("not possible from {current:?}"),
                ));
            }
            state.insert(id.into(), to);
            Ok(())
        }
    }

    #[async_trait]
    impl Runtime for FakeRuntime {
        fn name(&self) -> &'static str {
            "fake"
        }

        fn capabilities(&self) -> Capabilities {
            Capabilities {
                pause: true,
                disk_limit: true,
                usage: true,
                ready_events: false,
            }
        }

        async fn start(&self, ws: &WorkspaceRef) -> Result<(), RuntimeError> {
            self.call("start", &ws.id)?;
            let mut state = self.state.lock().unwrap();
            let entry = state.entry(ws.id.clone()).or_insert(Observed::Absent);
            if let Some(end) = self.start_as.lock().unwrap().clone() {
                *entry = end;
            } else if !matches!(entry, Observed::Running { .. } | Observed::Paused) {
                *entry = Observed::Running {
                    upstream: FakeRuntime::upstream_of(&ws.id),
                };
            }
            Ok(())
        }

        async fn stop(&self, id: &WorkspaceId) -> Result<(), RuntimeError> {
            self.transition("stop", id, &[|_| true], Observed::Stopped)
        }

        async fn pause(&self, id: &WorkspaceId) -> Result<(), RuntimeError> {
            self.transition(
                "pause",
                id,
                &[|o| matches!(o, Observed::Running { .. })],
                Observed::Paused,
            )
        }

        async fn resume(&self, id: &WorkspaceId) -> Result<(), RuntimeError> {
            self.transition(
                "resume",
                id,
                &[|o| matches!(o, Observed::Paused)],
                Observed::Running {
                    upstream: FakeRuntime::upstream_of(id),
                },
            )
        }

        async fn delete(&self, id: &WorkspaceId, keep_files: bool) -> Result<(), RuntimeError> {
            self.call(if keep_files { "delete-keep" } else { "delete" }, id)?;
            self.state.lock().unwrap().remove(id);
            let home = self.homes.lock().unwrap().remove(id);
            if let (true, Some(home)) = (keep_files, home) {
                self.kept.lock().unwrap().insert(id.clone(), home);
            }
            Ok(())
        }

        async fn observe(&self, id: &WorkspaceId) -> Result<Observed, RuntimeError> {
            Ok(self
                .state
                .lock()
                .unwrap()
                .get(id)
                .cloned()
                .unwrap_or(Observed::Absent))
        }

        fn changes(&self) -> Option<tokio::sync::broadcast::Receiver<WorkspaceId>> {
            Some(self.changes.subscribe())
        }

        async fn list(&self) -> Result<Vec<WorkspaceId>, RuntimeError> {
            let mut ids: Vec<WorkspaceId> = self.state.lock().unwrap().keys().cloned().collect();
            ids.sort();
            Ok(ids)
        }

        async fn usage(&self, id: &WorkspaceId) -> Result<Option<Usage>, RuntimeError> {
            let running = matches!(
                self.state.lock().unwrap().get(id),
                Some(Observed::Running { .. })
            );
            Ok(running
                .then(|| self.usage.lock().unwrap().get(id).copied())
                .flatten())
        }

        async fn log_read(
            &self,
            id: &WorkspaceId,
            from: Option<u64>,
            max_bytes: usize,
        ) -> Result<LogRead, RuntimeError> {
            let logs = self.logs.lock().unwrap();
            let log = logs.get(id).map(Vec::as_slice).unwrap_or_default();
            Ok(LogRead::of(log, from, max_bytes))
        }

        async fn disk(&self, id: &WorkspaceId) -> Result<Option<Disk>, RuntimeError> {
            let running = matches!(
                self.state.lock().unwrap().get(id),
                Some(Observed::Running { .. })
            );
            Ok(running
                .then(|| self.disks.lock().unwrap().get(id).copied())
                .flatten())
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn w1() -> WorkspaceId {
            WorkspaceId::new("w1")
        }

        fn ws() -> WorkspaceRef {
            WorkspaceRef {
                id: "w1".into(),
                owner: Name::parse("alice").unwrap(),
                name: Name::parse("lab").unwrap(),
                uid: 100_000,
                base_url: "/user/alice/lab/".into(),
                profile_name: Name::parse("standard").unwrap(),
                profile: ProfileSpec::standard(),
                env: vec![],
                secrets: vec![],
                image: None,
            }
        }

        #[test]
        fn a_log_is_read_from_an_offset_or_its_tail() {
            let log = b"one\ntwo\nthree\n";
            let tail = LogRead::of(log, None, 6);
            assert_eq!((tail.bytes.as_slice(), tail.end), (&b"three\n"[..], 14));
            let next = LogRead::of(log, Some(4), 4);
            assert_eq!((next.bytes.as_slice(), next.end), (&b"two\n"[..], 8));
            let at_end = LogRead::of(log, Some(14), 100);
            assert_eq!((at_end.bytes.len(), at_end.end), (0, 14));
            let anew = LogRead::of(log, Some(99), 4);
            assert_eq!((anew.bytes.as_slice(), anew.end), (&b"one\n"[..], 4));
        }

        #[tokio::test]
        async fn lifecycle_is_idempotent() {
            let rt = FakeRuntime::new();
            let w = ws();
            rt.start(&w).await.unwrap();
            rt.start(&w).await.unwrap();
            assert!(matches!(
                rt.observe(&w1()).await.unwrap(),
                Observed::Running { .. }
            ));
            rt.pause(&w1()).await.unwrap();
            rt.pause(&w1()).await.unwrap();
            assert_eq!(rt.observe(&w1()).await.unwrap(), Observed::Paused);
            rt.resume(&w1()).await.unwrap();
            rt.stop(&w1()).await.unwrap();
            assert!(
                rt.pause(&w1()).await.is_err(),
                "cannot pause a stopped workspace"
            );
            rt.delete(&w1(), false).await.unwrap();
            rt.delete(&w1(), false).await.unwrap();
            assert_eq!(rt.observe(&w1()).await.unwrap(), Observed::Absent);
            assert!(rt.list().await.unwrap().is_empty());
        }

        #[tokio::test]
        async fn usage_is_reported_while_running() {
            let rt = FakeRuntime::new();
            let busy = Usage {
                cpu_millis: 1500,
                memory_bytes: 1 << 30,
            };
            rt.set_usage("w1", busy);
            assert_eq!(rt.usage(&w1()).await.unwrap(), None, "not started");
            rt.start(&ws()).await.unwrap();
            assert_eq!(rt.usage(&w1()).await.unwrap(), Some(busy));
            rt.stop(&w1()).await.unwrap();
            assert_eq!(rt.usage(&w1()).await.unwrap(), None, "stopped");
        }

        #[tokio::test]
        async fn injected_failure_is_reported_once() {
            let rt = FakeRuntime::new();
            rt.fail_next(RuntimeError::transient("start", "w1", "boom"));
            let err = rt.start(&ws()).await.unwrap_err();
            assert!(err.retryable());
            rt.start(&ws()).await.unwrap();
            assert_eq!(rt.calls(), vec!["start w1", "start w1"]);
        }
    }
}
