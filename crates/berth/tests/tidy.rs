//! The crate graph's rules, read from `cargo metadata`: which crate may
//! depend on which. ARCHITECTURE.md states them; this test holds them.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

/// Each workspace crate's direct normal (not dev, not build) dependencies.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root)
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let deps = p["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["kind"].is_null())
                .map(|d| d["name"].as_str().unwrap().to_owned())
                .collect();
            (p["name"].as_str().unwrap().to_owned(), deps)
        })
        .collect()
}

/// Crates that speak HTTP: they depend on an HTTP library.
const HTTP: [&str; 4] = ["axum", "hyper", "reqwest", "http"];

/// The binary wires everything together, test support is for tests, and the
/// benches' programs drive whole systems (an API server and an operator).
const ROOTS: [&str; 3] = ["berth", "test-support", "bench-tools"];

fn forbidden(dep: &str) -> bool {
    dep == "store" || dep.starts_with("runtime-")
}

#[test]
fn no_http_facing_crate_depends_on_the_store_or_a_runtime() {
    let graph = graph();
    assert!(
        ["server", "app", "web", "portal", "api-hub"]
            .iter()
            .all(|k| graph.contains_key(*k)),
        "{graph:?}"
    );
    let mut broken = Vec::new();
    for (krate, deps) in &graph {
        if ROOTS.contains(&krate.as_str()) || !deps.iter().any(|d| HTTP.contains(&d.as_str())) {
            continue;
        }
        for dep in deps.iter().filter(|d| forbidden(d)) {
            broken.push(format!(
                "{krate} depends on {dep}: go through the app crate"
            ));
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

#[test]
fn the_inner_crates_know_no_http_and_model_no_sql() {
    let graph = graph();
    let mut broken = Vec::new();
    for krate in ["model", "store", "app", "controller"] {
        for dep in &graph[krate] {
            if HTTP.contains(&dep.as_str()) || dep == "api-types" || dep == "server" {
                broken.push(format!("{krate} depends on {dep}"));
            }
        }
    }
    for dep in &graph["model"] {
        if dep == "sqlx" || dep == "store" || dep.starts_with("runtime") {
            broken.push(format!("model depends on {dep}"));
        }
    }
    for dep in &graph["app"] {
        if dep.starts_with("runtime-") {
            broken.push(format!(
                "app depends on {dep}: the controller runs runtimes"
            ));
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

/// The HTTP layers, inner to outer: each may depend only on the ones before it.
const HTTP_LAYERS: [&str; 4] = ["web", "portal", "api-hub", "server"];

#[test]
fn the_http_layers_depend_inward_only() {
    let graph = graph();
    let mut broken = Vec::new();
    for (i, krate) in HTTP_LAYERS.iter().enumerate() {
        for outer in &HTTP_LAYERS[i..] {
            if graph[*krate].contains(*outer) {
                broken.push(format!("{krate} depends on {outer}, which is built on it"));
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}
