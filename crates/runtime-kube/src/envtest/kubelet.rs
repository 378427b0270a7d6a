//! A real node for the control plane: Debian's `containerd` (with `runc` and
//! the CNI plugins) and the `kubelet` that `scripts/install-kube` builds, on
//! this machine, with the images of `scripts/build-kube-images` imported
//! (no registry is reachable here).
//!
//! Everything is this host's own and named per start: the containerd state
//! and socket, the kubelet's root, a CNI bridge with a `/24` of its own and a
//! cgroup root. Dropping it stops both daemons, ends what they left running,
//! and removes all of it.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::{bin_dir, free_port, random_byte, Daemons};

/// The images `scripts/build-kube-images` writes, as `ctr` imports them.
pub const JUPYTER_IMAGE: &str = "localhost/berth-jupyter:e2e";
const PAUSE_IMAGE: &str = "localhost/berth-pause:e2e";

/// The cgroup v1 controllers the kubelet wants its root in.
const CONTROLLERS: [&str; 9] = [
    "cpuset", "cpu", "cpuacct", "memory", "pids", "systemd", "freezer", "blkio", "devices",
];
/// And the hierarchies where it, or runc, makes cgroups under it.
const HIERARCHIES: [&str; 10] = [
    "cpuset", "cpu", "cpuacct", "memory", "pids", "systemd", "freezer", "blkio", "devices",
    "unified",
];

/// Where `scripts/build-kube-images` puts the image archives.
fn image_dir() -> PathBuf {
    bin_dir().with_file_name("images")
}

/// What a real node needs that is not here, each named.
pub fn missing() -> Vec<String> {
    let mut missing = Vec::new();
    let kubelet = bin_dir().join("kubelet");
    if !kubelet.is_file() {
        missing.push(format!(
            "{} (scripts/install-kube builds it)",
            kubelet.display()
        ));
    }
    for image in ["jupyter.oci.tar", "pause.oci.tar"] {
        let path = image_dir().join(image);
        if !path.is_file() {
            missing.push(format!(
                "{} (scripts/build-kube-images builds it)",
                path.display()
            ));
        }
    }
    for tool in [
        "/usr/bin/containerd",
        "/usr/bin/containerd-shim-runc-v2",
        "/usr/bin/ctr",
        "/usr/sbin/runc",
        "/usr/lib/cni/bridge",
        "/usr/lib/cni/host-local",
        "/usr/lib/cni/loopback",
    ] {
        if !Path::new(tool).is_file() {
            missing.push(format!("{tool} (scripts/install-deps installs it)"));
        }
    }
    if !Path::new("/sys/fs/cgroup/memory").is_dir() {
        missing.push("cgroup v1 controllers under /sys/fs/cgroup".into());
    }
    missing
}

/// containerd and a kubelet registered as node `name`.
#[derive(Debug)]
pub(super) struct Host {
    dir: tempfile::TempDir,
    pub(super) name: String,
    /// The bridge's address: the node's, and where Pods reach this host.
    pub(super) gateway: Ipv4Addr,
    tag: String,
    kubelet: Option<Daemons>,
    containerd: Option<Daemons>,
}

/// The names a host's tag gives its bridge and its cgroup root.
fn bridge(tag: &str) -> String {
    format!("berth-k{tag}")
}
fn cgroup(tag: &str) -> String {
    format!("berth-kubelet-{tag}")
}

impl Host {
    /// Starts containerd, imports the images, starts the kubelet against
    /// `kubeconfig`; returns once the kubelet has registered its Node (the
    /// caller waits for it to be Ready).
    pub(super) fn start(kubeconfig: &Path) -> Result<Host, String> {
        remove_stale();
        let dir = tempfile::Builder::new()
            .prefix("berth-kubelet-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let d = dir.path().to_owned();
        let tag = format!("{:02x}{:02x}", random_byte(3), random_byte(4));
        std::fs::write(d.join("pid"), std::process::id().to_string()).map_err(|e| e.to_string())?;
        std::fs::write(d.join("tag"), &tag).map_err(|e| e.to_string())?;
        // 10.200-249.X.0/24: a range of its own per start.
        let gateway = Ipv4Addr::new(10, 200 + random_byte(5) % 50, random_byte(6), 1);
        let mut host = Host {
            dir,
            name: cgroup(&tag),
            gateway,
            tag: tag.clone(),
            kubelet: None,
            containerd: None,
        };
        let (bridge, cgroup) = (bridge(&tag), cgroup(&tag));
        // The bridge exists before any Pod, so that this host can listen
        // on its address; the CNI plugin takes it as it finds it.
        let [a, b, c, _] = gateway.octets();
        run("ip", &["link", "add", &bridge, "type", "bridge"])?;
        run(
            "ip",
            &["addr", "add", &format!("{gateway}/24"), "dev", &bridge],
        )?;
        run("ip", &["link", "set", &bridge, "up"])?;
        for controller in CONTROLLERS {
            let path = Path::new("/sys/fs/cgroup").join(controller).join(&cgroup);
            std::fs::create_dir_all(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            if controller == "cpuset" {
                for file in ["cpuset.cpus", "cpuset.mems"] {
                    let parent = std::fs::read_to_string(path.with_file_name(file))
                        .map_err(|e| e.to_string())?;
                    std::fs::write(path.join(file), parent.trim()).map_err(|e| e.to_string())?;
                }
            }
        }

        let sock = d.join("containerd.sock");
        std::fs::create_dir_all(d.join("cni")).map_err(|e| e.to_string())?;
        std::fs::write(
            d.join("containerd.toml"),
            format!(
                r#"version = 2
root = "{root}"
state = "{state}"
[grpc]
  address = "{sock}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  # No CAP_SYS_RESOURCE here: runc cannot lower a score (-998 for sandboxes).
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{cni}"
"#,
                root = d.join("containerd").display(),
                state = d.join("containerd-state").display(),
                sock = sock.display(),
                cni = d.join("cni").display(),
            ),
        )
        .map_err(|e| e.to_string())?;
        std::fs::write(
            d.join("cni").join("10-berth.conflist"),
            serde_json::json!({
                "cniVersion": "1.0.0",
                "name": bridge,
                "plugins": [
                    {
                        "type": "bridge", "bridge": bridge, "isGateway": true,
                        "ipMasq": false, "hairpinMode": true,
                        "ipam": {
                            "type": "host-local",
                            "ranges": [[{"subnet": format!("{a}.{b}.{c}.0/24"), "gateway": gateway}]],
                            "dataDir": d.join("ipam"),
                        },
                    },
                    {"type": "loopback"},
                ],
            })
            .to_string(),
        )
        .map_err(|e| e.to_string())?;
        host.containerd = Some(Daemons::start(
            &d,
            vec![(
                vec![
                    "containerd".into(),
                    "--config".into(),
                    d.join("containerd.toml").display().to_string(),
                ],
                "containerd.log",
            )],
        )?);
        wait(Duration::from_secs(30), || sock.exists())
            .map_err(|_| format!("containerd made no socket:\n{}", host.log("containerd")))?;
        for image in ["pause.oci.tar", "jupyter.oci.tar"] {
            let path = image_dir().join(image);
            run(
                "ctr",
                &[
                    "--address",
                    &sock.display().to_string(),
                    "--namespace",
                    "k8s.io",
                    "images",
                    "import",
                    &path.display().to_string(),
                ],
            )?;
        }

        std::fs::write(
            d.join("kubelet.yaml"),
            format!(
                "apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
cgroupRoot: /{cgroup}
failCgroupV1: false
failSwapOn: false
port: {port}
readOnlyPort: 0
healthzPort: 0
podLogsDir: {logs}
authentication:
  anonymous: {{enabled: false}}
  webhook: {{enabled: false}}
authorization:
  mode: AlwaysAllow
containerRuntimeEndpoint: unix://{sock}
imageGCHighThresholdPercent: 100
evictionHard: {{}}
evictionPressureTransitionPeriod: 0s
",
                cgroup = cgroup,
                port = free_port(),
                logs = d.join("pod-logs").display(),
                sock = sock.display(),
            ),
        )
        .map_err(|e| e.to_string())?;
        host.kubelet = Some(Daemons::start(
            &d,
            vec![(
                vec![
                    bin_dir().join("kubelet").display().to_string(),
                    format!("--config={}", d.join("kubelet.yaml").display()),
                    format!("--kubeconfig={}", kubeconfig.display()),
                    format!("--root-dir={}", d.join("kubelet").display()),
                    format!("--cert-dir={}", d.join("kubelet-pki").display()),
                    format!("--hostname-override={}", host.name),
                    format!("--node-ip={gateway}"),
                ],
                "kubelet.log",
            )],
        )?);
        Ok(host)
    }

    /// Where claims' `local` volumes go.
    pub(super) fn volumes(&self) -> PathBuf {
        self.dir.path().join("volumes")
    }

    /// The log of `containerd` or `kubelet`.
    pub(super) fn log(&self, which: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{which}.log"))).unwrap_or_default()
    }

    /// What the containers of Pods named `pod` wrote, from the kubelet's
    /// log files (`{namespace}_{pod}_{uid}/{container}/{restart}.log`).
    pub(super) fn pod_log(&self, pod: &str) -> String {
        let mut out = String::new();
        let logs = self.dir.path().join("pod-logs");
        for entry in std::fs::read_dir(logs).into_iter().flatten().flatten() {
            let dir = entry.file_name().to_string_lossy().into_owned();
            if dir.split('_').nth(1) != Some(pod) {
                continue;
            }
            for container in std::fs::read_dir(entry.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                for file in std::fs::read_dir(container.path())
                    .into_iter()
                    .flatten()
                    .flatten()
                {
                    out.push_str(&std::fs::read_to_string(file.path()).unwrap_or_default());
                }
            }
        }
        out
    }
}

/// The processes left in a host's cgroups and its containerd's shims: each
/// Pod's, once the kubelet is gone.
fn leftovers(dir: &Path, tag: &str) -> Vec<i32> {
    let mut pids = Vec::new();
    let mut dirs = vec![Path::new("/sys/fs/cgroup/pids").join(cgroup(tag))];
    while let Some(dir) = dirs.pop() {
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        pids.extend(procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                dirs.push(entry.path());
            }
        }
    }
    let sock = dir.join("containerd.sock").display().to_string();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        if cmdline.starts_with("/usr/bin/containerd-shim") && cmdline.contains(&sock) {
            pids.push(pid);
        }
    }
    pids
}

impl Drop for Host {
    fn drop(&mut self) {
        self.kubelet.take();
        self.containerd.take();
        clean(self.dir.path(), &self.tag);
    }
}

/// Removes what a host's daemons leave once they are gone (with the test
/// process, or stopped): Pods' processes and their shims, mounts (images'
/// root file systems, volumes, sandboxes' `/dev/shm`), the bridge, the
/// cgroups. Not its directory.
fn clean(dir: &Path, tag: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let pids = leftovers(dir, tag);
        if pids.is_empty() || Instant::now() > deadline {
            break;
        }
        for pid in pids {
            if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let root = dir.display().to_string();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut mounts: Vec<&str> = mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.strip_prefix(&root).is_some_and(|r| r.starts_with('/')))
        .collect();
    mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for m in mounts {
        let _ = rustix::mount::unmount(m, rustix::mount::UnmountFlags::DETACH);
    }
    let _ = run("ip", &["link", "del", &bridge(tag)]);
    for hierarchy in HIERARCHIES {
        remove_cgroup(
            &Path::new("/sys/fs/cgroup")
                .join(hierarchy)
                .join(cgroup(tag)),
        );
    }
}

/// Cleans up after hosts whose test process is gone.
fn remove_stale() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if !entry
            .file_name()
            .to_string_lossy()
            .starts_with("berth-kubelet-")
        {
            continue;
        }
        let read = |f: &str| std::fs::read_to_string(path.join(f)).unwrap_or_default();
        let dead = read("pid")
            .trim()
            .parse::<u32>()
            .is_ok_and(|pid| !Path::new(&format!("/proc/{pid}")).exists());
        let tag = read("tag");
        if dead && !tag.is_empty() {
            clean(&path, tag.trim());
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

/// Removes a cgroup and those under it, deepest first.
fn remove_cgroup(dir: &Path) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_cgroup(&entry.path());
        }
    }
    let _ = std::fs::remove_dir(dir);
}

fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

fn wait(within: Duration, mut done: impl FnMut() -> bool) -> Result<(), ()> {
    let deadline = Instant::now() + within;
    while !done() {
        if Instant::now() > deadline {
            return Err(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}
