//! A real node for the control plane: Debian's `containerd` (with `runc` and
//! the CNI plugins) and the `kubelet` that `scripts/install-kube` builds, on
//! this machine, with the images of `scripts/build-kube-images` imported
//! (no registry is reachable here).
//!
//! Everything is this host's own and named per start: the containerd state
//! and socket (the Pods' network namespaces under it), the kubelet's root, a
//! CNI bridge with a `/24` of its own and a cgroup root. Dropping it stops
//! both daemons, ends what they left running, and removes all of it; the next
//! start does so for hosts whose test process died.
//!
//! The kubelet also changes the machine: kernel settings (its "kernel
//! tunables": `kernel.panic`, `vm.overcommit_memory`, …), three iptables
//! chains of its own (`KUBE-FIREWALL` drops packets to 127/8 from elsewhere),
//! its device-plugin socket under `/var/lib/kubelet` and links in
//! `/var/log/containers`. Those are put back when the last host of the
//! process stops (or, after a crash, at the next start).

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::{bin_dir, free_port, Daemons};

/// The images `scripts/build-kube-images` writes, as `ctr` imports them.
pub const JUPYTER_IMAGE: &str = "localhost/berth-jupyter:e2e";
const PAUSE_IMAGE: &str = "localhost/berth-pause:e2e";

/// The kernel settings the kubelet sets (`/proc/sys` paths).
const SYSCTLS: [&str; 6] = [
    "kernel/panic",
    "kernel/panic_on_oops",
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
];
/// The iptables chains the kubelet makes.
const CHAINS: [&str; 3] = ["KUBE-FIREWALL", "KUBE-KUBELET-CANARY", "KUBE-IPTABLES-HINT"];

/// The hosts of this process: how many run, and the machine's kernel
/// settings as the first found them ([`SYSCTLS`], one `path value` a line),
/// which the last puts back. Each host keeps a copy in its directory
/// (`machine`), for after a crash.
static RUNNING: Mutex<(usize, String)> = Mutex::new((0, String::new()));

/// The cgroup hierarchies mounted here (v1 controllers, and v2's `unified`
/// in the hybrid layout): the kubelet and runc make cgroups in each.
fn hierarchies() -> Vec<PathBuf> {
    std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect()
}

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

/// The names a host's tag (its directory's unique suffix) gives its bridge,
/// its cgroup root and its Node.
fn bridge(tag: &str) -> String {
    format!("berth-k{tag}")
}
fn cgroup(tag: &str) -> String {
    format!("berth-kubelet-{tag}")
}
fn node_name(tag: &str) -> String {
    format!("berth-node-{}", tag.to_lowercase())
}

/// A `/24` in 10.200-249.x.0 that no interface here has an address in,
/// and its first address; the caller holds `RUNNING`, so that two starts of
/// this process do not pick the same.
fn free_subnet(tag: &str) -> Result<Ipv4Addr, String> {
    let out = Command::new("ip")
        .args(["-4", "-o", "addr", "show"])
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    let taken = String::from_utf8_lossy(&out.stdout).into_owned();
    for attempt in 0u8..=255 {
        let h = Sha256::digest([tag.as_bytes(), &[attempt]].concat());
        let gateway = Ipv4Addr::new(10, 200 + h[0] % 50, h[1], 1);
        let [a, b, c, _] = gateway.octets();
        if !taken.contains(&format!(" inet {a}.{b}.{c}.")) {
            return Ok(gateway);
        }
    }
    Err("no free /24 in 10.200.0.0-10.249.255.0".into())
}

impl Host {
    /// Starts containerd, imports the images, starts the kubelet against
    /// `kubeconfig`; returns once the kubelet has registered its Node (the
    /// caller waits for it to be Ready).
    pub(super) fn start(kubeconfig: &Path) -> Result<Host, String> {
        let mut running = RUNNING.lock().unwrap();
        if running.0 == 0 {
            remove_stale();
            running.1 = machine();
        }
        let dir = tempfile::Builder::new()
            .prefix("berth-kubelet-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let d = dir.path().to_owned();
        let tag = d
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("berth-kubelet-"))
            .ok_or("a temporary directory without its prefix")?
            .to_owned();
        std::fs::write(d.join("pid"), std::process::id().to_string()).map_err(|e| e.to_string())?;
        std::fs::write(d.join("tag"), &tag).map_err(|e| e.to_string())?;
        let gateway = free_subnet(&tag)?;
        std::fs::write(d.join("machine"), &running.1).map_err(|e| e.to_string())?;
        running.0 += 1;
        // From here on, dropping it cleans up (and counts it gone).
        let mut host = Host {
            dir,
            name: node_name(&tag),
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
        drop(running);
        for hierarchy in hierarchies() {
            let path = hierarchy.join(&cgroup);
            std::fs::create_dir(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            if hierarchy.ends_with("cpuset") {
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
  # Pods' network namespaces under the state directory, which clean-up sweeps.
  netns_mounts_under_state_dir = true
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
        let mut running = RUNNING.lock().unwrap();
        clean(self.dir.path(), &self.tag);
        running.0 -= 1;
        if running.0 == 0 {
            restore_machine(&running.1);
        }
    }
}

/// The kernel settings the kubelet changes, as they are now.
fn machine() -> String {
    let saved: Vec<String> = SYSCTLS
        .iter()
        .filter_map(|s| {
            let value = std::fs::read_to_string(Path::new("/proc/sys").join(s)).ok()?;
            Some(format!("{s} {}", value.trim()))
        })
        .collect();
    saved.join("\n")
}

/// Puts back what the kubelets changed on the machine: the kernel settings
/// `saved` ([`machine`]), their iptables chains, their device-plugin socket
/// (and its directories, if left empty).
fn restore_machine(saved: &str) {
    for line in saved.lines() {
        if let Some((setting, value)) = line.split_once(' ') {
            if let Err(e) = std::fs::write(Path::new("/proc/sys").join(setting), value) {
                eprintln!("envtest kubelet: cannot put back {setting} = {value}: {e}");
            }
        }
    }
    for program in ["iptables", "ip6tables"] {
        for table in ["filter", "nat", "mangle"] {
            remove_chains(program, table);
        }
    }
    let plugins = Path::new("/var/lib/kubelet/device-plugins");
    let _ = std::fs::remove_file(plugins.join("kubelet.sock"));
    let _ = std::fs::remove_dir(plugins);
    let _ = std::fs::remove_dir("/var/lib/kubelet");
}

/// Removes the kubelet's [`CHAINS`] from `table`, and the rules jumping to them.
fn remove_chains(program: &str, table: &str) {
    let Ok(out) = Command::new(program).args(["-t", table, "-S"]).output() else {
        return;
    };
    let rules = String::from_utf8_lossy(&out.stdout).into_owned();
    for rule in rules.lines() {
        let words: Vec<&str> = rule.split_whitespace().collect();
        let jumps = words
            .windows(2)
            .any(|w| w[0] == "-j" && CHAINS.contains(&w[1]));
        if words.first() == Some(&"-A") && jumps {
            let _ = Command::new(program)
                .args(["-t", table, "-D"])
                .args(&words[1..])
                .output();
        }
    }
    for chain in CHAINS {
        if rules.lines().any(|l| l == format!("-N {chain}")) {
            let _ = Command::new(program)
                .args(["-t", table, "-F", chain])
                .output();
            let _ = Command::new(program)
                .args(["-t", table, "-X", chain])
                .output();
        }
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
        if pids.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            eprintln!("envtest kubelet: processes {pids:?} outlived SIGKILL for 10 s");
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
    for hierarchy in hierarchies() {
        remove_cgroup(&hierarchy.join(cgroup(tag)));
    }
    // The kubelet's links to its Pods' logs, which are in `dir`.
    for entry in std::fs::read_dir("/var/log/containers")
        .into_iter()
        .flatten()
        .flatten()
    {
        if std::fs::read_link(entry.path()).is_ok_and(|t| t.starts_with(dir)) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Cleans up after hosts whose test process is gone; and, if no other
/// process runs one, puts the machine back as the first of them found it.
fn remove_stale() {
    let mut stale = Vec::new();
    let mut others = false;
    for entry in std::fs::read_dir(std::env::temp_dir())
        .into_iter()
        .flatten()
        .flatten()
    {
        let path = entry.path();
        let read = |f: &str| std::fs::read_to_string(path.join(f)).unwrap_or_default();
        let name = entry.file_name().to_string_lossy().into_owned();
        let (pid, tag) = (read("pid"), read("tag"));
        let Some(pid) = name
            .starts_with("berth-kubelet-")
            .then(|| pid.trim().parse::<u32>().ok())
            .flatten()
        else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            others |= pid != std::process::id();
        } else if !tag.is_empty() {
            stale.push((path, tag.trim().to_owned()));
        }
    }
    for (path, tag) in stale {
        clean(&path, &tag);
        if !others {
            if let Ok(saved) = std::fs::read_to_string(path.join("machine")) {
                restore_machine(&saved);
            }
        }
        let _ = std::fs::remove_dir_all(&path);
    }
}

/// Removes a cgroup and those under it, deepest first.
fn remove_cgroup(dir: &Path) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_cgroup(&entry.path());
        }
    }
    match std::fs::remove_dir(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            eprintln!("envtest kubelet: cannot remove {}: {e}", dir.display());
        }
        _ => {}
    }
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
