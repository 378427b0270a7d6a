//! The CRD in the Helm chart is the one the Rust types make
//! (`UPDATE_CRD=1 cargo test -p runtime-kube crd` writes it anew).

use std::path::Path;

#[test]
fn the_charts_crd_is_the_generated_one() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy/helm/berth/crds/workspaces.berth.dev.yaml");
    let generated = format!(
        "# Generated from crates/runtime-kube/src/crd.rs by `berth operator crd`;\n# UPDATE_CRD=1 cargo test -p runtime-kube crd writes it anew.\n{}",
        runtime_kube::crd::crd_yaml()
    );
    if std::env::var_os("UPDATE_CRD").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let in_chart = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        in_chart == generated,
        "{} differs from the CRD the types make: run UPDATE_CRD=1 cargo test -p runtime-kube crd",
        path.display()
    );
}
