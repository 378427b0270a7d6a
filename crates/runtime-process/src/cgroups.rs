//! One cgroup per workspace, on cgroup v1 (one directory per controller) or v2
//! (one directory in the unified hierarchy). The rest of the crate sees only
//! [`Cgroups`]: create with limits, the `cgroup.procs` files a process joins,
//! the pids inside, freeze and thaw, OOM kills, resource use and removal. Files are written
//! by hand rather than through `cgroups-rs`: the handful of files berth needs
//! is smaller than that crate's API, its hierarchies are bound to the live
//! `/sys/fs/cgroup` (we unit-test the v2 backend against a temporary directory
//! that mimics it), and its API has changed incompatibly between minor versions.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The v1 controllers a workspace is placed in; `cpuacct` counts its CPU time.
/// `cpu` and `cpuacct` are often both links to `cpu,cpuacct`; following them is
/// fine (a process joins the one directory twice, removal finds it gone the
/// second time).
const V1_CONTROLLERS: [&str; 5] = ["memory", "cpu", "cpuacct", "pids", "freezer"];
/// A CPU sample this much younger than the previous one is too close to it
/// for a rate.
pub const CPU_SAMPLE_MIN_AGE: Duration = Duration::from_millis(200);
/// A CPU sample this much older than the previous one gives a rate too stale
/// to call recent.
pub const CPU_SAMPLE_MAX_AGE: Duration = Duration::from_secs(60);
/// The CFS period berth uses; the quota is `cpu_millis` thousandths of it.
const CPU_PERIOD_US: u64 = 100_000;

/// Which cgroup hierarchy the machine has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// Legacy or hybrid: one hierarchy per controller under `<root>/<controller>`.
    V1,
    /// Unified: one hierarchy at `<root>`.
    V2,
}

/// The resource limits of one workspace, from its profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub memory_bytes: u64,
    pub cpu_millis: u64,
    pub max_processes: u64,
}

/// A workspace's cumulative CPU time at one instant; two make a rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuSample {
    pub at: Instant,
    /// CPU time used since the cgroup was made, in nanoseconds.
    pub cpu_ns: u64,
}

impl CpuSample {
    /// The CPU used between `earlier` and this sample, in thousandths of a
    /// core; `None` when `earlier` is closer than [`CPU_SAMPLE_MIN_AGE`] or
    /// older than [`CPU_SAMPLE_MAX_AGE`], or counts more than this sample (the
    /// cgroup was made anew in between).
    pub fn millis_since(&self, earlier: &CpuSample) -> Option<u64> {
        let wall = self.at.checked_duration_since(earlier.at)?;
        if !(CPU_SAMPLE_MIN_AGE..=CPU_SAMPLE_MAX_AGE).contains(&wall) {
            return None;
        }
        let cpu_ns = u128::from(self.cpu_ns.checked_sub(earlier.cpu_ns)?);
        u64::try_from(cpu_ns * 1000 / wall.as_nanos()).ok()
    }
}

/// The workspace cgroups under `<root>[/<controller>]/<parent>/<id>`.
#[derive(Debug, Clone)]
pub struct Cgroups {
    version: Version,
    root: PathBuf,
    parent: String,
}

impl Cgroups {
    /// Looks at `root` (normally `/sys/fs/cgroup`): a `cgroup.controllers` file
    /// there means v2; a `memory` directory means v1.
    pub fn detect(root: &Path, parent: &str) -> io::Result<Self> {
        let version = if root.join("cgroup.controllers").is_file() {
            Version::V2
        } else if root.join("memory").is_dir() {
            Version::V1
        } else {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no cgroup v1 or v2 hierarchy under {}", root.display()),
            ));
        };
        Ok(Self::new(version, root, parent))
    }

    pub fn new(version: Version, root: &Path, parent: &str) -> Self {
        Self {
            version,
            root: root.to_owned(),
            parent: parent.to_owned(),
        }
    }

    pub fn version(&self) -> Version {
        self.version
    }

    /// The parent directories (one per v1 controller, or the one v2 directory).
    fn parents(&self) -> Vec<PathBuf> {
        match self.version {
            Version::V1 => V1_CONTROLLERS
                .iter()
                .map(|c| self.root.join(c).join(&self.parent))
                .collect(),
            Version::V2 => vec![self.root.join(&self.parent)],
        }
    }

    fn dirs(&self, id: &str) -> Vec<PathBuf> {
        self.parents().into_iter().map(|p| p.join(id)).collect()
    }

    /// Where the processes are listed: the `pids` controller on v1.
    fn main_dir(&self, id: &str) -> PathBuf {
        match self.version {
            Version::V1 => self.root.join("pids").join(&self.parent).join(id),
            Version::V2 => self.root.join(&self.parent).join(id),
        }
    }

    fn controller_dir(&self, controller: &str, id: &str) -> PathBuf {
        match self.version {
            Version::V1 => self.root.join(controller).join(&self.parent).join(id),
            Version::V2 => self.root.join(&self.parent).join(id),
        }
    }

    /// Creates the cgroup (idempotent) and writes the limits.
    pub fn create(&self, id: &str, limits: &Limits) -> io::Result<()> {
        if self.version == Version::V2 {
            // Controllers must be enabled in every ancestor's subtree_control.
            fs::create_dir_all(self.root.join(&self.parent))?;
            for dir in [self.root.clone(), self.root.join(&self.parent)] {
                write(&dir.join("cgroup.subtree_control"), "+memory +cpu +pids")?;
            }
        }
        for dir in self.dirs(id) {
            fs::create_dir_all(&dir)?;
        }
        let quota = limits.cpu_millis * CPU_PERIOD_US / 1000;
        match self.version {
            Version::V1 => {
                let mem = self.controller_dir("memory", id);
                write(
                    &mem.join("memory.limit_in_bytes"),
                    &limits.memory_bytes.to_string(),
                )?;
                // Without swap accounting the file is absent; with it, swap counts too.
                let memsw = mem.join("memory.memsw.limit_in_bytes");
                if memsw.exists() {
                    write(&memsw, &limits.memory_bytes.to_string())?;
                }
                let cpu = self.controller_dir("cpu", id);
                write(&cpu.join("cpu.cfs_period_us"), &CPU_PERIOD_US.to_string())?;
                write(&cpu.join("cpu.cfs_quota_us"), &quota.to_string())?;
                let pids = self.controller_dir("pids", id);
                write(&pids.join("pids.max"), &limits.max_processes.to_string())?;
            }
            Version::V2 => {
                let dir = self.main_dir(id);
                write(&dir.join("memory.max"), &limits.memory_bytes.to_string())?;
                let swap = dir.join("memory.swap.max");
                if swap.exists() {
                    write(&swap, "0")?;
                }
                write(&dir.join("cpu.max"), &format!("{quota} {CPU_PERIOD_US}"))?;
                write(&dir.join("pids.max"), &limits.max_processes.to_string())?;
            }
        }
        Ok(())
    }

    /// The files a process writes its pid to, in order, to join every controller.
    pub fn procs_files(&self, id: &str) -> Vec<PathBuf> {
        self.dirs(id)
            .into_iter()
            .map(|d| d.join("cgroup.procs"))
            .collect()
    }

    /// Whether any directory of this cgroup exists.
    pub fn exists(&self, id: &str) -> bool {
        self.dirs(id).iter().any(|d| d.is_dir())
    }

    /// The pids in the cgroup; empty when it does not exist.
    pub fn pids(&self, id: &str) -> io::Result<Vec<u32>> {
        match fs::read_to_string(self.main_dir(id).join("cgroup.procs")) {
            Ok(text) => Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// Asks the freezer to freeze (`true`) or thaw every process.
    pub fn set_frozen(&self, id: &str, frozen: bool) -> io::Result<()> {
        match self.version {
            Version::V1 => write(
                &self.controller_dir("freezer", id).join("freezer.state"),
                if frozen { "FROZEN" } else { "THAWED" },
            ),
            Version::V2 => write(
                &self.main_dir(id).join("cgroup.freeze"),
                if frozen { "1" } else { "0" },
            ),
        }
    }

    /// Whether the freezer reports the cgroup completely frozen (not just freezing).
    pub fn is_frozen(&self, id: &str) -> io::Result<bool> {
        match self.version {
            Version::V1 => {
                let state =
                    fs::read_to_string(self.controller_dir("freezer", id).join("freezer.state"))?;
                Ok(state.trim() == "FROZEN")
            }
            Version::V2 => {
                let events = fs::read_to_string(self.main_dir(id).join("cgroup.events"))?;
                Ok(keyed(&events, "frozen") == Some(1))
            }
        }
    }

    /// Whether freezing was asked for (v1 `FREEZING`/`FROZEN`, v2 `cgroup.freeze` 1).
    pub fn freeze_requested(&self, id: &str) -> io::Result<bool> {
        match self.version {
            Version::V1 => {
                let state =
                    fs::read_to_string(self.controller_dir("freezer", id).join("freezer.state"))?;
                Ok(state.trim() != "THAWED")
            }
            Version::V2 => {
                let freeze = fs::read_to_string(self.main_dir(id).join("cgroup.freeze"))?;
                Ok(freeze.trim() == "1")
            }
        }
    }

    /// How many processes the OOM killer killed in this cgroup.
    pub fn oom_kills(&self, id: &str) -> u64 {
        let (file, key) = match self.version {
            Version::V1 => ("memory.oom_control", "oom_kill"),
            Version::V2 => ("memory.events", "oom_kill"),
        };
        fs::read_to_string(self.controller_dir("memory", id).join(file))
            .ok()
            .and_then(|text| keyed(&text, key))
            .unwrap_or(0)
    }

    /// Memory in use, page cache included: v1 `memory.usage_in_bytes`, v2
    /// `memory.current`. `NotFound` when the cgroup does not exist.
    pub fn memory_bytes(&self, id: &str) -> io::Result<u64> {
        let file = match self.version {
            Version::V1 => "memory.usage_in_bytes",
            Version::V2 => "memory.current",
        };
        let path = self.controller_dir("memory", id).join(file);
        number(&fs::read_to_string(&path)?).ok_or_else(|| malformed(&path))
    }

    /// CPU time used so far, sampled now: v1 `cpuacct.usage` (nanoseconds),
    /// v2 `usage_usec` in `cpu.stat`. `NotFound` when the cgroup does not exist.
    pub fn cpu_sample(&self, id: &str) -> io::Result<CpuSample> {
        let (path, cpu_ns) = match self.version {
            Version::V1 => {
                let path = self.controller_dir("cpuacct", id).join("cpuacct.usage");
                let text = fs::read_to_string(&path)?;
                (path, number(&text))
            }
            Version::V2 => {
                let path = self.main_dir(id).join("cpu.stat");
                let text = fs::read_to_string(&path)?;
                let usec = keyed(&text, "usage_usec");
                (path, usec.and_then(|us| us.checked_mul(1000)))
            }
        };
        Ok(CpuSample {
            at: Instant::now(),
            cpu_ns: cpu_ns.ok_or_else(|| malformed(&path))?,
        })
    }

    /// Removes the (empty) cgroup; a missing one is fine.
    pub fn remove(&self, id: &str) -> io::Result<()> {
        for dir in self.dirs(id) {
            match fs::remove_dir(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!("remove {}: {e}", dir.display()),
                    ))
                }
            }
        }
        Ok(())
    }

    /// Removes the (empty) berth-owned parent directories; missing ones are fine.
    pub fn remove_parent(&self) -> io::Result<()> {
        for dir in self.parents() {
            match fs::remove_dir(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

fn write(path: &Path, value: &str) -> io::Result<()> {
    fs::write(path, value).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("write {value:?} to {}: {e}", path.display()),
        )
    })
}

/// The value of a single-value file.
fn number(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

fn malformed(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{} does not hold a number", path.display()),
    )
}

/// The value of `key` in a flat-keyed file (`key value` per line).
fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        memory_bytes: 512 << 20,
        cpu_millis: 1500,
        max_processes: 64,
    };

    fn read(path: PathBuf) -> String {
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// A temporary directory laid out like a unified `/sys/fs/cgroup`.
    fn fake_v2() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("cgroup.controllers"), "cpu memory pids\n").unwrap();
        dir
    }

    #[test]
    fn detects_v2_from_cgroup_controllers() {
        let dir = fake_v2();
        let cg = Cgroups::detect(dir.path(), "berth").unwrap();
        assert_eq!(cg.version(), Version::V2);
        let empty = tempfile::tempdir().unwrap();
        assert!(Cgroups::detect(empty.path(), "berth").is_err());
        fs::create_dir(empty.path().join("memory")).unwrap();
        assert_eq!(
            Cgroups::detect(empty.path(), "berth").unwrap().version(),
            Version::V1
        );
    }

    #[test]
    fn v2_writes_limits_in_the_unified_layout() {
        let dir = fake_v2();
        let root = dir.path();
        let cg = Cgroups::detect(root, "berth").unwrap();
        cg.create("w1", &LIMITS).unwrap();
        let ws = root.join("berth/w1");
        assert_eq!(read(ws.join("memory.max")), "536870912");
        assert_eq!(read(ws.join("cpu.max")), "150000 100000");
        assert_eq!(read(ws.join("pids.max")), "64");
        assert_eq!(
            read(root.join("cgroup.subtree_control")),
            "+memory +cpu +pids"
        );
        assert_eq!(
            read(root.join("berth/cgroup.subtree_control")),
            "+memory +cpu +pids"
        );
        assert_eq!(cg.procs_files("w1"), vec![ws.join("cgroup.procs")]);
        assert!(cg.exists("w1"));
        // The kernel would fill these in.
        fs::write(ws.join("cgroup.procs"), "12\n34\n").unwrap();
        assert_eq!(cg.pids("w1").unwrap(), vec![12, 34]);
        fs::write(
            ws.join("memory.events"),
            "low 0\nhigh 0\nmax 3\noom 1\noom_kill 2\n",
        )
        .unwrap();
        assert_eq!(cg.oom_kills("w1"), 2);
    }

    #[test]
    fn v2_freezes_with_cgroup_freeze() {
        let dir = fake_v2();
        let cg = Cgroups::detect(dir.path(), "berth").unwrap();
        cg.create("w1", &LIMITS).unwrap();
        let ws = dir.path().join("berth/w1");
        cg.set_frozen("w1", true).unwrap();
        assert_eq!(read(ws.join("cgroup.freeze")), "1");
        assert!(cg.freeze_requested("w1").unwrap());
        fs::write(ws.join("cgroup.events"), "populated 1\nfrozen 0\n").unwrap();
        assert!(!cg.is_frozen("w1").unwrap());
        fs::write(ws.join("cgroup.events"), "populated 1\nfrozen 1\n").unwrap();
        assert!(cg.is_frozen("w1").unwrap());
        cg.set_frozen("w1", false).unwrap();
        assert_eq!(read(ws.join("cgroup.freeze")), "0");
        assert!(!cg.freeze_requested("w1").unwrap());
    }

    #[test]
    fn v2_reads_memory_current_and_cpu_stat() {
        let dir = fake_v2();
        let cg = Cgroups::detect(dir.path(), "berth").unwrap();
        let err = cg.memory_bytes("w1").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert_eq!(
            cg.cpu_sample("w1").unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        cg.create("w1", &LIMITS).unwrap();
        let ws = dir.path().join("berth/w1");
        fs::write(ws.join("memory.current"), "123456789\n").unwrap();
        fs::write(
            ws.join("cpu.stat"),
            "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n",
        )
        .unwrap();
        assert_eq!(cg.memory_bytes("w1").unwrap(), 123_456_789);
        assert_eq!(cg.cpu_sample("w1").unwrap().cpu_ns, 2_500_000_000);
        fs::write(ws.join("cpu.stat"), "user_usec 2000000\n").unwrap();
        let err = cg.cpu_sample("w1").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn v1_reads_memory_usage_and_cpuacct() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for c in V1_CONTROLLERS {
            fs::create_dir(root.join(c)).unwrap();
        }
        let cg = Cgroups::detect(root, "berth").unwrap();
        assert_eq!(
            cg.memory_bytes("w1").unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        cg.create("w1", &LIMITS).unwrap();
        fs::write(root.join("memory/berth/w1/memory.usage_in_bytes"), "4096\n").unwrap();
        fs::write(root.join("cpuacct/berth/w1/cpuacct.usage"), "17448050737\n").unwrap();
        assert_eq!(cg.memory_bytes("w1").unwrap(), 4096);
        assert_eq!(cg.cpu_sample("w1").unwrap().cpu_ns, 17_448_050_737);
        fs::write(root.join("memory/berth/w1/memory.usage_in_bytes"), "max\n").unwrap();
        assert_eq!(
            cg.memory_bytes("w1").unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
    }

    #[test]
    fn cpu_rate_is_cpu_time_over_wall_time() {
        let t0 = Instant::now();
        let at = |ms: u64, cpu_ms: u64| CpuSample {
            at: t0 + Duration::from_millis(ms),
            cpu_ns: cpu_ms * 1_000_000,
        };
        // 375 ms of CPU in 250 ms: 1.5 cores.
        assert_eq!(at(250, 1_375).millis_since(&at(0, 1_000)), Some(1500));
        assert_eq!(at(10_000, 0).millis_since(&at(0, 0)), Some(0));
        // A minute at a quarter core, at the edge of staleness.
        assert_eq!(at(60_000, 15_000).millis_since(&at(0, 0)), Some(250));
        // Too close, too old, backwards in time or in CPU (a new cgroup).
        assert_eq!(at(100, 50).millis_since(&at(0, 0)), None);
        assert_eq!(at(60_001, 50).millis_since(&at(0, 0)), None);
        assert_eq!(at(0, 50).millis_since(&at(1_000, 0)), None);
        assert_eq!(at(1_000, 50).millis_since(&at(0, 100)), None);
    }

    #[test]
    fn v1_writes_one_directory_per_controller() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for c in V1_CONTROLLERS {
            fs::create_dir(root.join(c)).unwrap();
        }
        let cg = Cgroups::detect(root, "berth").unwrap();
        assert_eq!(cg.version(), Version::V1);
        cg.create("w1", &LIMITS).unwrap();
        assert_eq!(
            read(root.join("memory/berth/w1/memory.limit_in_bytes")),
            "536870912"
        );
        assert_eq!(read(root.join("cpu/berth/w1/cpu.cfs_quota_us")), "150000");
        assert_eq!(read(root.join("cpu/berth/w1/cpu.cfs_period_us")), "100000");
        assert_eq!(read(root.join("pids/berth/w1/pids.max")), "64");
        assert!(root.join("cpuacct/berth/w1").is_dir());
        assert_eq!(cg.procs_files("w1").len(), 5);
        cg.set_frozen("w1", true).unwrap();
        assert_eq!(read(root.join("freezer/berth/w1/freezer.state")), "FROZEN");
        assert!(cg.is_frozen("w1").unwrap());
        fs::write(
            root.join("memory/berth/w1/memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
        )
        .unwrap();
        assert_eq!(cg.oom_kills("w1"), 1);
        assert!(!cg.exists("w2"));
        assert!(cg.pids("w2").unwrap().is_empty());
    }
}
