//! schemathesis (from PyPI, pinned) against a fresh `berth serve`: `/hub/api`
//! with JupyterHub's published spec, and `/api/v1` with berth's own, checking
//! that no request gets a 5xx and every answer matches its spec. The suites,
//! checks and the corrections to JupyterHub's spec are in `tests/schemathesis/`.

use std::path::Path;
use std::process::Command;

use crate::process::admin_token;

#[tokio::test]
async fn schemathesis_finds_no_server_error_and_no_schema_violation() {
    let venv = Path::new("/opt/berth/schemathesis/bin/schemathesis");
    if !venv.is_file() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{} is missing: run scripts/install-deps",
            venv.display()
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // The fuzzer changes and deletes whatever it finds: a berth of its own, with
    // no runtime (desired state only).
    let (mut serve, url) = crate::spawn_serve(dir.path(), "none", None);
    let token = admin_token(&url).await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/schemathesis/run.sh");
    let out = Command::new(script)
        .args([&url, &token])
        .env("ST_HUB_EXTRA", "1")
        .env("ST_REPORT_DIR", dir.path().join("reports"))
        .output()
        .expect("run tests/schemathesis/run.sh");
    let _ = serve.kill();
    let _ = serve.wait();
    assert!(
        out.status.success(),
        "schemathesis failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
