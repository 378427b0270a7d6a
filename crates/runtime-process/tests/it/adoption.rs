//! A restarted control plane re-adopts running workspaces: a new runtime on the
//! same data dir sees them as they are and can stop them.

use runtime::{Observed, Runtime};
use runtime_process::ProcessRuntime;

use crate::support::{wait_for, Harness};

#[tokio::test]
async fn a_second_runtime_instance_adopts_running_workspaces() {
    let h = Harness::new(vec![]);
    let ws = h.workspace("dave", 100_104, &[]);
    h.rt.start(&ws).await.unwrap();
    let upstream = h.wait_running(&ws.id).await;

    // Its own session: a signal to the control plane's session or process group
    // (Ctrl-C, systemd stopping berth) does not reach it.
    let ours = session_of("self");
    for pid in h.rt.cgroups().pids(&ws.id).unwrap() {
        assert_ne!(
            session_of(&pid.to_string()),
            ours,
            "pid {pid} is in our session"
        );
    }

    let second = ProcessRuntime::new(h.config.clone()).unwrap();
    assert!(second.list().await.unwrap().contains(&ws.id));
    let observed = wait_for(&second, &ws.id, |o| matches!(o, Observed::Running { .. })).await;
    assert_eq!(
        observed,
        Observed::Running {
            upstream: upstream.parse().unwrap()
        }
    );
    second.pause(&ws.id).await.unwrap();
    assert_eq!(h.rt.observe(&ws.id).await.unwrap(), Observed::Paused);

    second.stop(&ws.id).await.unwrap();
    assert_eq!(second.observe(&ws.id).await.unwrap(), Observed::Stopped);
    assert_eq!(h.rt.observe(&ws.id).await.unwrap(), Observed::Stopped);
    assert!(h.rt.cgroups().pids(&ws.id).unwrap().is_empty());
}

/// A sandbox the runtime adopted (started by an earlier instance) is watched
/// as closely as one it started: its exit is on `changes()` at once, not at the
/// controller's next resync.
#[tokio::test]
async fn an_adopted_workspace_that_dies_is_reported_at_once() {
    let h = Harness::new(vec![]);
    let ws = h.workspace("dana", 100_113, &[]);
    h.rt.start(&ws).await.unwrap();
    h.wait_running(&ws.id).await;

    let second = ProcessRuntime::new(h.config.clone()).unwrap();
    let mut changes = second
        .changes()
        .expect("the process runtime reports changes");
    // Observing it (as the controller's first resync does) adopts it.
    wait_for(&second, &ws.id, |o| matches!(o, Observed::Running { .. })).await;
    let pids = h.rt.cgroups().pids(&ws.id).unwrap();
    let status = std::process::Command::new("kill")
        .arg("-KILL")
        .args(pids.iter().map(u32::to_string))
        .status()
        .unwrap();
    assert!(status.success());
    let changed = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        loop {
            match changes.recv().await {
                Ok(id) if id == ws.id => return id,
                Ok(_) => continue,
                Err(e) => panic!("changes: {e}"),
            }
        }
    })
    .await
    .expect("the adopted sandbox's exit is reported within 5 s");
    assert_eq!(changed, ws.id);
    wait_for(&second, &ws.id, |o| matches!(o, Observed::Failed { .. })).await;
}

/// Another berth on the same machine (another data dir, the same cgroup parent)
/// does not count this one's workspaces as its own, so its clean-up of orphans
/// never touches them.
#[tokio::test]
async fn another_data_dir_does_not_list_our_workspaces() {
    let h = Harness::new(vec![]);
    let ws = h.workspace("dora", 100_112, &[]);
    h.rt.start(&ws).await.unwrap();
    h.wait_running(&ws.id).await;
    let elsewhere = tempfile::tempdir().unwrap();
    let mut config = h.config.clone();
    config.data_dir = elsewhere.path().join("data");
    let other = ProcessRuntime::new(config).unwrap();
    assert!(h.rt.list().await.unwrap().contains(&ws.id));
    assert!(!other.list().await.unwrap().contains(&ws.id));
}

/// The session id of a process, from `/proc/<pid>/stat`.
fn session_of(pid: &str) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name: state ppid pgrp session …
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    rest.split(' ').nth(3).unwrap().parse().unwrap()
}
