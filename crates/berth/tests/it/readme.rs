//! The README's shell examples, run as written against a real `berth serve`
//! (process runtime), in the order the README gives them.
//!
//! A block runs when the line before its opening fence is
//! `<!-- readme-test -->` (run it; it must exit 0) or
//! `<!-- readme-test: serve -->` (start it in the background and wait until
//! it listens). Each block runs in `bash -euo pipefail`, with the `berth` under
//! test first on `PATH` and a fresh `HOME`. Two things are changed, and only
//! these: the README's address `127.0.0.1:8000` becomes a free port, and its
//! data dir `/var/lib/berth` a temporary one, so that the test touches nothing
//! of the machine's own berth.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use client::Client;

use crate::process::Rig;
use crate::BIN;

const MARK: &str = "<!-- readme-test";
const README_ADDR: &str = "127.0.0.1:8000";
const README_DATA_DIR: &str = "/var/lib/berth";

#[derive(Debug)]
struct Block {
    /// The line of the README its fence opens on (1-based).
    line: usize,
    serve: bool,
    text: String,
}

/// The marked ` ```sh ` blocks of `readme`.
fn blocks(readme: &str) -> Vec<Block> {
    let lines: Vec<&str> = readme.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(mark) = line.trim().strip_prefix(MARK) else {
            continue;
        };
        let serve = match mark.trim() {
            "-->" => false,
            ": serve -->" => true,
            other => panic!("README line {}: unknown mark {other:?}", i + 1),
        };
        let fence = lines.get(i + 1).copied().unwrap_or_default();
        assert_eq!(
            fence.trim(),
            "```sh",
            "README line {}: a mark must precede a ```sh block",
            i + 2
        );
        let body: Vec<&str> = lines[i + 2..]
            .iter()
            .take_while(|l| l.trim() != "```")
            .copied()
            .collect();
        out.push(Block {
            line: i + 2,
            serve,
            text: body.join("\n"),
        });
    }
    out
}

fn readme_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md")
}

#[test]
fn the_marks_are_found() {
    let readme = std::fs::read_to_string(readme_path()).unwrap();
    let found = blocks(&readme);
    assert!(found.iter().filter(|b| b.serve).count() == 1, "{found:#?}");
    assert!(found.len() >= 3, "{found:#?}");
}

#[tokio::test]
async fn the_readme_examples_run_as_written() {
    let readme = std::fs::read_to_string(readme_path()).unwrap();
    let mut rig = Rig::new();
    let home = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let data_dir = rig.data_dir();
    let bin_dir = Path::new(BIN).parent().unwrap().to_owned();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let shell = |text: &str| {
        let text = text
            .replace(README_ADDR, &addr)
            .replace(README_DATA_DIR, &data_dir.to_string_lossy());
        let mut cmd = Command::new("bash");
        cmd.args(["-euo", "pipefail", "-c", &text])
            .env("PATH", &path)
            .env("HOME", home.path())
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("BERTH_URL")
            .env_remove("BERTH_TOKEN")
            .env_remove("BERTH_DATABASE_URL")
            .env("RUST_LOG", "warn")
            .current_dir(home.path());
        cmd
    };
    let mut admin_password = None;
    for block in blocks(&readme) {
        eprintln!("README line {}:\n{}", block.line, block.text);
        if block.serve {
            admin_password = block
                .text
                .split("BERTH_ADMIN_PASSWORD='")
                .nth(1)
                .and_then(|s| s.split('\'').next())
                .map(str::to_owned);
            // One simple command: bash execs it, so the rig's serve is berth
            // itself (SIGTERM reaches it), not a shell.
            assert!(!block.text.trim().contains('\n'), "one command to serve");
            let mut child = shell(block.text.trim())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap();
            let stdout = child.stdout.take().unwrap();
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if let Some(url) = line.strip_prefix("listening on ") {
                        let _ = tx.send(url.to_owned());
                    }
                }
            });
            let url = rx
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("README line {}: serve never listened", block.line));
            rig.adopt_serve(child, url);
            continue;
        }
        let out = shell(&block.text).stdin(Stdio::null()).output().unwrap();
        assert!(
            out.status.success(),
            "README line {}: {}\nstdout:\n{}\nstderr:\n{}",
            block.line,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let password = admin_password.expect("the serve block sets BERTH_ADMIN_PASSWORD");
    let mut api = Client::new(&format!("http://{addr}"), None).unwrap();
    api.login("admin", &password).await.unwrap();
    // The first example's site serves the workspace's home, under its prefix.
    let token = api
        .create_token(
            "admin",
            &api_types::TokenCreate {
                note: "readme".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .token;
    let (status, body) = crate::process::http_get_with(
        &addr,
        "/user/admin/site/",
        &[("Authorization", &format!("token {token}"))],
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Directory listing for /"), "{body}");
    rig.delete_all(&api).await;
    rig.stop();
}

/// The README opens with its two commands, and they are the scripts that set
/// up a fresh machine and then run berth or the tests.
#[test]
fn the_two_first_commands_are_the_scripts() {
    use std::os::unix::fs::PermissionsExt;
    let readme = std::fs::read_to_string(readme_path()).unwrap();
    let first = readme
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .unwrap();
    let commands: Vec<&str> = first
        .lines()
        .map(|l| l.split('#').next().unwrap().trim())
        .collect();
    assert_eq!(commands, ["scripts/serve", "scripts/test"], "{first}");
    let root = readme_path().parent().unwrap().to_owned();
    for script in ["scripts/serve", "scripts/test"] {
        let path = root.join(script);
        let text = std::fs::read_to_string(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert!(mode & 0o111 != 0, "{script} is not executable");
        assert!(
            text.contains("scripts/install-deps"),
            "{script} sets up the machine first"
        );
    }
    let ci = std::fs::read_to_string(root.join(".ci/run")).unwrap();
    assert!(
        ci.contains("\nscripts/test\n"),
        ".ci/run runs the README's test command"
    );
}
