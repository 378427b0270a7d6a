//! The conformance story (from `runtime-conformance`) with a small app and with
//! JupyterLab, then what is particular to the process runtime: bad requests,
//! dead apps, logs.

use std::time::Duration;

use model::App;
use runtime::{Observed, Runtime};

use crate::support::{http_get, network_gone, network_leftovers, Harness, ProcessSubject};

#[tokio::test]
async fn conformance_story() {
    let subject = ProcessSubject {
        h: Harness::new(vec![]),
        owner: "alice",
        uid: 100_101,
        jupyterlab: false,
    };
    runtime_conformance::story(&subject).await;
}

#[tokio::test]
async fn conformance_story_with_jupyterlab() {
    let subject = ProcessSubject {
        h: Harness::new(vec![]),
        owner: "jo",
        uid: 100_111,
        jupyterlab: true,
    };
    runtime_conformance::story(&subject).await;
}

#[tokio::test]
async fn unsupported_or_bad_requests_are_permanent_errors() {
    let h = Harness::new(vec![]);
    let mut ws = h.workspace("bob", 100_102, &[]);
    ws.profile.app = App::Jupyterlab;
    let mut config = h.config.clone();
    config.jupyter_env = "/nonexistent/jupyter".into();
    let without_env = runtime_process::ProcessRuntime::new(config).unwrap();
    let err = without_env.start(&ws).await.unwrap_err();
    assert!(!err.retryable(), "{err}");
    assert!(err.to_string().contains("scripts/install-deps"), "{err}");

    let mut ws = h.workspace("bob", 0, &[]);
    assert!(!h.rt.start(&ws).await.unwrap_err().retryable());
    ws.uid = 100_102;
    ws.id = "../etc".into();
    assert!(!h.rt.start(&ws).await.unwrap_err().retryable());
    assert!(!h.rt.observe(&"a b".into()).await.unwrap_err().retryable());
    assert!(!h
        .rt
        .resume(&"nothing-here".into())
        .await
        .unwrap_err()
        .retryable());
    assert_eq!(
        h.rt.observe(&"nothing-here".into()).await.unwrap(),
        Observed::Absent
    );
    h.rt.stop(&"nothing-here".into()).await.unwrap();
    h.rt.delete(&"nothing-here".into(), false).await.unwrap();
    h.rt.delete(&"nothing-here".into(), true).await.unwrap();
}

/// The managed JupyterLab (from `scripts/install-deps`) runs in the sandbox under
/// its base URL and serves its UI and API.
#[tokio::test]
async fn jupyterlab_runs_in_the_sandbox() {
    let h = Harness::new(vec![]);
    let mut ws = h.workspace("jo", 100_110, &[]);
    ws.profile.app = App::Jupyterlab;
    ws.profile.memory_bytes = 1 << 30;
    h.rt.start(&ws).await.unwrap_or_else(|e| panic!("{e}"));
    let upstream = h.wait_running(&ws.id).await;
    let (status, body) = http_get(
        &upstream,
        "/user/jo/lab/api/status",
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"kernels\""), "{body}");
    let (status, page) = http_get(&upstream, "/user/jo/lab/lab", Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert!(page.contains("JupyterLab"), "{page}");
    // Outside its base URL there is nothing.
    let (status, _) = http_get(&upstream, "/lab", Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(status, 404);
    // Its state lives in the home, owned by the workspace uid.
    let home = h.home(&ws.id);
    assert!(home.join(".local/share/jupyter").is_dir() || home.join(".jupyter").is_dir());
}

#[tokio::test]
async fn a_dead_app_is_failed_with_its_log() {
    let h = Harness::new(vec![]);
    let mut ws = h.workspace("carol", 100_103, &[]);
    ws.profile.app = App::Command {
        argv: vec![
            "sh".into(),
            "-c".into(),
            "echo about to fail; exit 3".into(),
        ],
        strip_prefix: false,
    };
    let mut changes = h.rt.changes().expect("the process runtime reports exits");
    h.rt.start(&ws).await.unwrap_or_else(|e| panic!("{e}"));
    let changed = tokio::time::timeout(Duration::from_secs(30), changes.recv()).await;
    assert_eq!(
        changed.unwrap().unwrap(),
        ws.id,
        "the exit is reported at once"
    );
    let observed = h
        .wait_for(&ws.id, |o| matches!(o, Observed::Failed { .. }))
        .await;
    let Observed::Failed { reason, message } = observed else {
        unreachable!()
    };
    assert_eq!(reason, "Exited");
    assert_eq!(
        message, "the app exited with code 3: about to fail",
        "one line: the exit code and the last line of the log"
    );
    assert!(h.rt.log_tail(&ws.id, 4096).contains("about to fail"));
    // Starting again retries.
    h.rt.start(&ws).await.unwrap();
    h.rt.stop(&ws.id).await.unwrap();
    assert_eq!(h.rt.observe(&ws.id).await.unwrap(), Observed::Stopped);
}

#[tokio::test]
async fn the_test_guard_leaves_nothing_behind() {
    let h = Harness::new(vec![]);
    let ws = h.workspace("judy", 100_110, &[]);
    h.rt.start(&ws).await.unwrap();
    let upstream = h.wait_running(&ws.id).await;
    h.rt.pause(&ws.id).await.unwrap();
    let parent = std::path::Path::new("/sys/fs/cgroup")
        .join(match h.rt.cgroups().version() {
            runtime_process::cgroups::Version::V1 => "pids",
            runtime_process::cgroups::Version::V2 => "",
        })
        .join(&h.config.cgroup_parent);
    assert!(parent.is_dir());
    drop(h); // what a failing test does while unwinding
    assert!(!parent.exists(), "{} left behind", parent.display());
    assert_eq!(
        network_leftovers(&ws.id, &upstream).await,
        Vec::<String>::new()
    );
}

/// A secret in the workspace's environment (its hub token) reaches the app,
/// and never any process's command line, which every user may read in /proc.
#[tokio::test]
async fn secrets_reach_the_app_but_no_command_line() {
    const SECRET: &str = "berth_a-secret-that-must-not-show-in-ps";
    let h = Harness::new(vec![]);
    let mut ws = h.workspace("lena", 100_115, &[("SAVE_ENV", "1".into())]);
    ws.secrets
        .push(("JUPYTERHUB_API_TOKEN".into(), model::Secret::new(SECRET)));
    assert!(!format!("{ws:?}").contains(SECRET), "nor in its Debug");
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (seen, done) = (seen.clone(), done.clone());
        std::thread::spawn(move || {
            let mut scans = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                for entry in std::fs::read_dir("/proc").unwrap().flatten() {
                    let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
                        continue;
                    };
                    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
                    if cmdline.contains(SECRET) {
                        let program: String = cmdline.chars().take(60).collect();
                        seen.lock().unwrap().push(program);
                    }
                }
                scans += 1;
            }
            scans
        })
    };
    h.rt.start(&ws).await.unwrap();
    h.wait_running(&ws.id).await;
    let env = crate::support::read_json(&h.home(&ws.id).join("env.json")).await;
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let scans = watcher.join().unwrap();
    assert!(
        scans > 5,
        "/proc was scanned {scans} times during the start"
    );
    assert_eq!(env["JUPYTERHUB_API_TOKEN"], SECRET, "the app has its token");
    assert!(env["PATH"].as_str().is_some_and(|p| !p.is_empty()));
    let seen = seen.lock().unwrap();
    assert!(
        seen.is_empty(),
        "{} command lines showed the secret, e.g. {:?}",
        seen.len(),
        seen.first()
    );
}

/// A control plane that died while it made a workspace's network (after the
/// namespace and veth pair, before anything ran) leaves them
/// to the next observe, which removes them.
#[tokio::test]
async fn a_network_a_crashed_start_left_is_removed() {
    let h = Harness::new(vec![]);
    let ws = h.workspace("kim", 100_114, &[]);
    // Firewall elements come only after the state file names them, so a
    // crash before that leaves the namespace and the veth pair.
    let links = runtime_process::net::Links::open().unwrap();
    let (slot, _) = runtime_process::net::set_up(&links, &ws.id).await.unwrap();
    let upstream = format!("{}:8888", slot.workspace_ip());
    assert_eq!(network_leftovers(&ws.id, &upstream).await.len(), 2);

    // A new instance (the restarted control plane) observes it, as its resync does.
    let second = runtime_process::ProcessRuntime::new(h.config.clone()).unwrap();
    let observed = second.observe(&ws.id).await.unwrap();
    assert!(
        matches!(observed, Observed::Absent | Observed::Stopped),
        "{observed:?}"
    );
    assert_eq!(network_gone(&ws.id, &upstream).await, Vec::<String>::new());
}

/// Deleting with `keep_files` releases everything but the home, whose image
/// moves to `kept/<id>.ext4`, and the workspace is no longer the runtime's.
#[tokio::test]
async fn delete_can_keep_the_files() {
    let h = Harness::new(vec![]);
    let ws = h.workspace("kim", 100_113, &[("WRITE", "keep me".into())]);
    h.rt.start(&ws).await.unwrap();
    let upstream = h.wait_running(&ws.id).await;
    h.rt.delete(&ws.id, true).await.unwrap();
    h.rt.delete(&ws.id, true).await.unwrap();
    assert_eq!(h.rt.observe(&ws.id).await.unwrap(), Observed::Absent);
    assert!(!h.rt.list().await.unwrap().contains(&ws.id));
    assert!(!h.home(&ws.id).exists());
    // The home's image is kept; mounted read-only, it holds the files.
    let kept = h.rt.kept_dir(&ws.id).with_extension("ext4");
    let at = tempfile::tempdir().unwrap();
    let (image, dir) = (kept.to_str().unwrap(), at.path().to_str().unwrap());
    runtime_process::exec::run("mount", &["-o", "loop,ro", image, dir])
        .await
        .unwrap();
    let marker = std::fs::read_to_string(at.path().join("marker.txt"));
    runtime_process::exec::run("umount", &[dir]).await.unwrap();
    assert_eq!(marker.unwrap(), "keep me\n");
    assert!(!h.rt.cgroups().exists(&ws.id));
    assert_eq!(
        network_leftovers(&ws.id, &upstream).await,
        Vec::<String>::new()
    );
}

/// A workspace that a berth before the shared firewall table started, with a
/// table of its own, keeps running through the upgrade: the new runtime's
/// first start moves its rules into the shared sets and drops its table, and
/// its stop then leaves nothing behind.
#[tokio::test]
async fn an_older_berths_firewall_table_moves_into_the_shared_one() {
    let h = Harness::new(vec![8081]);
    let old = h.workspace("lena", 100_115, &[]);
    h.rt.start(&old).await.unwrap();
    let upstream = h.wait_running(&old.id).await;
    let ip = upstream.split(':').next().unwrap().to_owned();
    let slot = (u32::from(ip.parse::<std::net::Ipv4Addr>().unwrap())
        - u32::from(std::net::Ipv4Addr::new(10, 213, 0, 0)))
        / 4;
    let ifname = format!("bw{slot}");
    let table = format!("berth_{}", old.id.replace('-', "_"));

    // Made as the older berth made it: a table of its own (with egress), no
    // elements, a state file without the firewall's fields.
    let nft = |script: String| async move {
        runtime_process::exec::run_with_stdin("nft", &["-f", "-"], &script)
            .await
            .unwrap()
    };
    nft(format!(
        "delete element inet berth gateway {{ \"{ifname}\" . 8081 }}
table inet {table} {{
  chain postrouting {{
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr {ip} oifname != \"{ifname}\" masquerade
  }}
}}
"
    ))
    .await;
    let state_path = h
        .config
        .data_dir
        .join("run")
        .join(format!("{}.json", old.id));
    let mut state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&state_path).unwrap()).unwrap();
    let fields = state.as_object_mut().unwrap();
    fields.remove("policy");
    fields.remove("shared_firewall");
    std::fs::write(&state_path, serde_json::to_vec(&state).unwrap()).unwrap();

    // The upgraded runtime: its first start makes the shared table.
    let new = runtime_process::ProcessRuntime::new(h.config.clone()).unwrap();
    let other = h.workspace("lena", 100_115, &[]);
    new.start(&other).await.unwrap();
    let listed = |set: &'static str| async move {
        runtime_process::exec::run("nft", &["list", "set", "inet", "berth", set])
            .await
            .unwrap()
    };
    assert!(listed("gateway")
        .await
        .contains(&format!("\"{ifname}\" . 8081")));
    assert!(
        listed("egress")
            .await
            .contains(&format!("\"{ifname}\" . {ip}")),
        "its table masqueraded: it had egress"
    );
    assert!(
        runtime_process::exec::run("nft", &["list", "table", "inet", &table])
            .await
            .is_err()
    );
    assert_eq!(
        new.observe(&old.id).await.unwrap(),
        Observed::Running {
            upstream: upstream.parse().unwrap()
        },
        "still running"
    );

    new.stop(&old.id).await.unwrap();
    new.stop(&other.id).await.unwrap();
    assert_eq!(network_gone(&old.id, &upstream).await, Vec::<String>::new());
}
