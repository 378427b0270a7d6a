//! Resource use read from the workspace's cgroup: memory and a CPU rate.

use runtime::{Observed, Runtime};

use crate::support::Harness;

#[tokio::test]
async fn a_running_workspace_reports_memory_and_a_busy_one_cpu() {
    let h = Harness::new(vec![]);
    let idle = h.workspace("jack", 100_110, &[]);
    let busy = h.workspace("kate", 100_111, &[("BUSY", "1".into())]);
    assert_eq!(h.rt.usage(&idle.id).await.unwrap(), None, "never started");
    h.rt.start(&idle).await.unwrap();
    h.rt.start(&busy).await.unwrap();
    h.wait_running(&idle.id).await;
    h.wait_running(&busy.id).await;

    let used =
        h.rt.usage(&idle.id)
            .await
            .unwrap()
            .expect("usage of a running workspace");
    assert!(used.memory_bytes > 0, "{used:?}");
    // The busy loop runs at the profile's limit of half a core (500).
    let hot =
        h.rt.usage(&busy.id)
            .await
            .unwrap()
            .expect("usage of a running workspace");
    assert!(hot.cpu_millis > 200, "{hot:?}");
    assert!(hot.cpu_millis < 700, "{hot:?} beyond the limit of 500");
    // A second look soon after compares with the first sample, without waiting.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let again = h.rt.usage(&busy.id).await.unwrap().unwrap();
    assert!(again.cpu_millis > 200, "{again:?}");

    h.rt.stop(&idle.id).await.unwrap();
    assert_eq!(h.rt.observe(&idle.id).await.unwrap(), Observed::Stopped);
    assert_eq!(h.rt.usage(&idle.id).await.unwrap(), None, "stopped");
    assert!(
        h.rt.usage(&"../etc".into()).await.is_err(),
        "ids are checked"
    );
}
