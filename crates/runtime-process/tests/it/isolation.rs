//! What a workspace sees from inside: only its own processes and home, a
//! read-only /usr, and on the network only berth's API port on its host-side
//! address — not other workspaces, not the host's loopback, not other host ports.

use std::net::TcpListener;
use std::time::Duration;

use model::Runtime;
use serde_json::json;

use crate::support::{http_get, read_json, Harness};

#[tokio::test]
async fn a_workspace_sees_only_itself() {
    // Stand-ins for berth's API (allowed) and some other host service (not).
    let api = TcpListener::bind("0.0.0.0:0").unwrap();
    let other = TcpListener::bind("0.0.0.0:0").unwrap();
    let loopback = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = |l: &TcpListener| l.local_addr().unwrap().port().to_string();
    let h = Harness::new(vec![api.local_addr().unwrap().port()]);

    let neighbour = h.workspace("erin", 100_105, &[("WRITE", "secret".into())]);
    h.rt.start(&neighbour).await.unwrap();
    let neighbour_upstream = h.wait_running(&neighbour.id).await;

    let ws = h.workspace(
        "frank",
        100_106,
        &[
            ("CHECKS", "1".into()),
            ("OTHER_APP", neighbour_upstream.clone()),
            (
                "OTHER_HOME",
                h.home(&neighbour.id).to_string_lossy().into_owned(),
            ),
            ("HOST_LOOPBACK_PORT", port(&loopback)),
            ("HOST_API_PORT", port(&api)),
            ("HOST_OTHER_PORT", port(&other)),
        ],
    );
    h.rt.start(&ws).await.unwrap();
    let upstream = h.wait_running(&ws.id).await;
    let checks = read_json(&h.home(&ws.id).join("checks.json")).await;
    eprintln!("checks from inside: {checks}");

    assert_eq!(checks["uid"], 100_106);
    assert_eq!(checks["hostname"], "lab");
    let pids: Vec<u64> = serde_json::from_value(checks["pids"].clone()).unwrap();
    assert!(pids.contains(&1), "own pid namespace: {pids:?}");
    assert!(pids.len() <= 4, "only its own processes: {pids:?}");
    assert_eq!(checks["usr_writable"], false);
    assert_eq!(checks["home_entries"], json!(["frank"]));
    assert_eq!(checks["other_home"], "No such file or directory");

    assert_eq!(
        checks["host_api"], "connected",
        "berth's API must be reachable"
    );
    for key in ["other_app", "host_loopback", "host_other_port"] {
        assert_ne!(
            checks[key], "connected",
            "{key} must be unreachable: {checks}"
        );
    }
    // The host (the proxy) reaches both.
    for (u, owner) in [(&upstream, "frank"), (&neighbour_upstream, "erin")] {
        let (status, body) = http_get(u, "/", Duration::from_secs(5)).await.unwrap();
        assert_eq!(status, 200);
        assert!(body.contains(owner), "{body}");
    }
}
