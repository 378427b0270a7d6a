//! What a workspace sees from inside: only its own processes and home, a
//! read-only /usr, and on the network berth's API port on the gateway and, with
//! egress, the world beyond the host — not other workspaces, not the host's
//! loopback, not other host ports or addresses. And from the host, only root
//! (berth) reaches a workspace's app.

use std::net::TcpListener;
use std::time::Duration;

use runtime::Runtime;
use runtime_process::net::GATEWAY_IP;
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
            ("HOST_LAN_IP", host_lan_ip()),
        ],
    );
    h.rt.start(&ws).await.unwrap();
    let upstream = h.wait_running(&ws.id).await;
    let checks = read_json(&h.home(&ws.id).join("checks.json")).await;
    eprintln!("checks from inside: {checks}");

    assert_eq!(checks["uid"], 100_106);
    let unshare = checks["unshare_user"].as_str().unwrap();
    assert!(
        unshare.starts_with("unshare: unshare failed"),
        "no user namespace can be made inside: {unshare}"
    );
    if std::env::consts::ARCH == "x86_64" {
        assert_eq!(
            checks["keyctl"], "Operation not permitted",
            "the seccomp filter refuses the kernel keyring"
        );
        assert_eq!(checks["getppid"], true, "and allows the rest");
    }
    assert_eq!(checks["hostname"], "frank-lab");
    let pids: Vec<u64> = serde_json::from_value(checks["pids"].clone()).unwrap();
    assert!(pids.contains(&1), "own pid namespace: {pids:?}");
    assert!(pids.len() <= 4, "only its own processes: {pids:?}");
    assert_eq!(
        checks["writable"],
        json!(["/dev/shm", "/tmp", "/home/frank"]),
        "nothing else is writable"
    );
    assert_eq!(checks["home_entries"], json!(["frank"]));
    assert_eq!(checks["other_home"], "No such file or directory");

    assert_eq!(
        checks["host_api"], "connected",
        "berth's API must be reachable"
    );
    for key in [
        "other_app",
        "host_loopback",
        "host_other_port",
        "host_lan_api",
    ] {
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
    // Other users on the host do not: berth's proxy is the only door.
    assert_eq!(connect_as_nobody(&upstream), "Connection refused");
}

/// The host's first global IPv4 address outside berth's range: a service bound to
/// all addresses is reachable there from the host's own network.
fn host_lan_ip() -> String {
    let out = std::process::Command::new("ip")
        .args(["-4", "-o", "addr", "show", "scope", "global"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(3))
        .filter_map(|cidr| cidr.split('/').next())
        .find(|ip| !ip.starts_with("10.213.") && !ip.starts_with("198.18."))
        .expect("the host has a global IPv4 address")
        .to_owned()
}

/// Connects to `upstream` as an unprivileged user on the host.
fn connect_as_nobody(upstream: &str) -> String {
    let (host, port) = upstream.split_once(':').unwrap();
    let script = format!(
        "import socket\ntry:\n    socket.create_connection(('{host}', {port}), timeout=3).close()\n    print('connected')\nexcept OSError as e:\n    print(e.strerror or e)"
    );
    let out = std::process::Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "/usr/bin/python3",
            "-c",
            &script,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A stand-in for the world outside: a network namespace behind a veth pair
/// (`198.18.n.0/30`, a benchmarking range) with an HTTP server; removed on drop.
struct Outside {
    ns: String,
    server: std::process::Child,
    addr: String,
}

impl Outside {
    fn new() -> Outside {
        let n = std::process::id() % 250 + 1;
        let ns = format!("bto{n}");
        let run = |args: &[&str]| {
            let out = std::process::Command::new("ip")
                .args(args)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "ip {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let _ = std::process::Command::new("ip")
            .args(["netns", "delete", &ns])
            .output();
        run(&["netns", "add", &ns]);
        let host_if = format!("{ns}h");
        run(&[
            "link", "add", &host_if, "type", "veth", "peer", "name", "eth0", "netns", &ns,
        ]);
        run(&["addr", "add", &format!("198.18.{n}.1/30"), "dev", &host_if]);
        run(&["link", "set", &host_if, "up"]);
        run(&[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("198.18.{n}.2/30"),
            "dev",
            "eth0",
        ]);
        run(&["-n", &ns, "link", "set", "eth0", "up"]);
        let addr = format!("198.18.{n}.2:8080");
        let server = std::process::Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns,
                "python3",
                "-m",
                "http.server",
                "--bind",
            ])
            .arg(format!("198.18.{n}.2"))
            .arg("8080")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Up once the host itself can connect.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "outside server did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Outside { ns, server, addr }
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        // Deleting the namespace takes the veth pair with it.
        let _ = std::process::Command::new("ip")
            .args(["netns", "delete", &self.ns])
            .output();
    }
}

#[tokio::test]
async fn egress_follows_the_profile() {
    let outside = Outside::new();
    let api = TcpListener::bind("0.0.0.0:0").unwrap();
    let other = TcpListener::bind("0.0.0.0:0").unwrap();
    let api_port = api.local_addr().unwrap().port();
    let h = Harness::new(vec![api_port]);

    let neighbour = h.workspace("gina", 100_107, &[]);
    h.rt.start(&neighbour).await.unwrap();
    let neighbour_upstream = h.wait_running(&neighbour.id).await;

    let targets = [
        outside.addr.clone(),
        neighbour_upstream.clone(),
        format!("{GATEWAY_IP}:{api_port}"),
        format!("{GATEWAY_IP}:{}", other.local_addr().unwrap().port()),
        format!("{}:{api_port}", host_lan_ip()),
        "169.254.169.254:80".to_owned(),
    ];
    let mut open = h.workspace("hank", 100_108, &[("CONNECT", targets.join(","))]);
    open.profile.egress = true;
    let mut closed = h.workspace("ida", 100_109, &[("CONNECT", targets.join(","))]);
    closed.profile.egress = false;
    h.rt.start(&open).await.unwrap();
    h.rt.start(&closed).await.unwrap();
    let open_seen = read_json(&h.home(&open.id).join("connect.json")).await;
    let closed_seen = read_json(&h.home(&closed.id).join("connect.json")).await;
    eprintln!("with egress: {open_seen}\nwithout: {closed_seen}");

    let [world, neighbour_app, api, other_port, lan_api, metadata] =
        targets.each_ref().map(|t| t.as_str());
    assert_eq!(open_seen[world], "connected", "egress reaches the world");
    assert_eq!(closed_seen[world], "Network is unreachable");
    for seen in [&open_seen, &closed_seen] {
        assert_eq!(seen[api], "connected", "berth's API through the gateway");
        for t in [neighbour_app, other_port, lan_api, metadata] {
            assert_ne!(seen[t], "connected", "{t} must be unreachable: {seen}");
            assert_ne!(seen[t], "timeout", "{t} must fail at once: {seen}");
        }
    }

    // A profile change takes effect at the next start.
    // (The home is reachable from the host only while mounted: running.)
    std::fs::remove_file(h.home(&open.id).join("connect.json")).unwrap();
    h.rt.stop(&open.id).await.unwrap();
    open.profile.egress = false;
    h.rt.start(&open).await.unwrap();
    let again = read_json(&h.home(&open.id).join("connect.json")).await;
    assert_eq!(again[world], "Network is unreachable", "{again}");
}
