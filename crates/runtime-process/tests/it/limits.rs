//! Profile limits enforced by the cgroup: memory (the OOM killer) and pids.

use model::App;
use runtime::{Observed, Runtime};

use crate::support::{read_json, Harness, APP};

#[tokio::test]
async fn the_memory_limit_oom_kills_a_hog_and_spares_others() {
    let h = Harness::new(vec![]);
    let bystander = h.workspace("gina", 100_107, &[]);
    h.rt.start(&bystander).await.unwrap();
    h.wait_running(&bystander.id).await;

    let mut hog = h.workspace("hank", 100_108, &[("HOG_MB", "400".into())]);
    hog.profile.memory_bytes = 64 << 20;
    h.rt.start(&hog).await.unwrap();
    let observed = h
        .wait_for(&hog.id, |o| matches!(o, Observed::Failed { .. }))
        .await;
    let Observed::Failed { reason, message } = observed else {
        unreachable!()
    };
    assert_eq!(reason, "OOMKilled", "{message}");
    assert!(message.contains("memory limit"), "{message}");
    assert!(h.rt.cgroups().oom_kills(&hog.id) > 0);
    assert!(matches!(
        h.rt.observe(&bystander.id).await.unwrap(),
        Observed::Running { .. }
    ));
}

#[tokio::test]
async fn a_fork_bomb_stops_at_the_pids_limit() {
    let h = Harness::new(vec![]);
    let mut ws = h.workspace("ivan", 100_109, &[("FORKS", "500".into())]);
    ws.profile.max_processes = 16;
    ws.profile.app = App::Command {
        argv: vec!["python3".into(), "-c".into(), APP.into()],
        strip_prefix: false,
    };
    h.rt.start(&ws).await.unwrap();
    let forks = read_json(&h.home(&ws.id).join("forks.json")).await;
    let forked = forks["forked"].as_u64().unwrap();
    assert!(forked < 16, "forked {forked} processes past a limit of 16");
    assert_eq!(forks["error"], "Resource temporarily unavailable");
    assert!(h.rt.cgroups().pids(&ws.id).unwrap().len() <= 16);
    // The app itself survives its fork bomb.
    h.wait_running(&ws.id).await;
}
