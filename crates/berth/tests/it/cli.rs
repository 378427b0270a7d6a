//! The CLI as people meet it: tables that fit 80 columns (all columns with
//! `--wide`), clear errors for bad values, `ws open`, shell completion.

use std::process::Command;

use test_support::Engine;

use crate::{Berth, ADMIN_PASSWORD, BIN};

/// 32 characters, the longest name berth takes.
const LONG: &str = "a-rather-long-name-for-a-thing-1";
const OTHER: &str = "another-rather-long-user-name-22";

fn stdout(out: &std::process::Output, args: &[&str]) -> String {
    assert!(
        out.status.success(),
        "berth {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[tokio::test]
async fn tables_fit_80_columns_and_errors_say_what_is_expected() {
    assert_eq!(LONG.len(), 32);
    assert_eq!(OTHER.len(), 32);
    let db = Engine::Sqlite.fresh().await;
    let berth = Berth::start(&db, "none");
    berth.login("admin", "admin", ADMIN_PASSWORD);
    let ok = |args: &[&str]| stdout(&berth.cli("admin", args, None), args);

    // Long names everywhere a table shows one.
    ok(&["users", "create", LONG]);
    ok(&["users", "create", OTHER]);
    ok(&["groups", "create", LONG, LONG, OTHER, "admin"]);
    ok(&[
        "profiles",
        "create",
        LONG,
        "--display-name",
        "A profile whose display name is as long as people make them, or longer",
        "--idle-timeout",
        "3600",
        "--cost-per-hour",
        "12.5",
        "--strip-prefix",
        "--command",
        "python3",
        "-m",
        "http.server",
        "--bind",
        "0.0.0.0",
        "--directory",
        "/home/someone/with/a/deep/directory",
        "{port}",
    ]);
    ok(&["ws", "create", LONG, "--profile", LONG, "--owner", LONG]);
    ok(&["ws", "create", "lab"]);
    ok(&["ws", "share", "lab", "--user", OTHER]);
    ok(&["ws", "share", "lab", "--group", LONG]);
    ok(&[
        "tokens",
        "create",
        "--note",
        "a note as long as a sentence someone writes to remember a token by",
        "--scope",
        "read:servers",
        "--scope",
        "access:servers",
        "--scope",
        "read:users:activity",
        "--expires-in",
        "86400",
    ]);
    ok(&[
        "services",
        "create",
        "a-rather-long-name-for-a-service",
        "--admin",
    ]);

    let tables: &[&[&str]] = &[
        &["whoami"],
        &["users", "list"],
        &["users", "show", LONG],
        &["users", "quota", LONG],
        &["tokens", "list"],
        &["profiles", "list"],
        &["profiles", "show", LONG],
        &["ws", "list"],
        &["ws", "show", LONG, "--owner", LONG],
        &["ws", "shares", "lab"],
        &["ws", "shared", "--user", OTHER],
        &["groups", "list"],
        &["services", "list"],
        &["audit", "--limit", "100"],
    ];
    for args in tables {
        let text = ok(args);
        if std::env::var_os("BERTH_SHOW_TABLES").is_some() {
            eprintln!("berth {}\n{text}", args.join(" "));
        }
        for line in text.lines() {
            assert!(
                line.chars().count() <= 80,
                "berth {args:?}: a line of {} columns:\n{text}",
                line.chars().count()
            );
        }
    }
    // Without --wide some columns are left out; with it, all are there.
    let narrow = ok(&["ws", "list"]);
    let wide = ok(&["--wide", "ws", "list"]);
    for column in ["DESIRED", "ID"] {
        assert!(!narrow.contains(column), "{narrow}");
        assert!(wide.contains(column), "{wide}");
    }
    let wide = ok(&["profiles", "list", "--wide"]);
    assert!(
        wide.lines().any(|l| l
            .contains("A profile whose display name is as long as people make them, or longer")),
        "--wide does not wrap:\n{wide}"
    );

    // Bad values: what was expected, before anything is sent.
    for (args, expected) in [
        (
            &[
                "profiles",
                "create",
                "x",
                "--display-name",
                "X",
                "--cpu",
                "-1",
            ][..],
            "invalid value '-1' for '--cpu <CPUS>': expected a number of CPUs above 0",
        ),
        (
            &["profiles", "update", "standard", "--memory", "lots"],
            "expected a size such as 512MiB",
        ),
        (
            &["profiles", "update", "standard", "--idle-timeout", "-5"],
            "expected a whole number, 0 or more",
        ),
        (
            &["audit", "--action", "bogus"],
            "action: no such action or family of actions; the families are auth, group",
        ),
        (
            &["ws", "logs", "lab", "--tail", "0"],
            "tail: must be between 1 and 10000 lines",
        ),
        (
            &["ws", "open", "nothing-here"],
            "admin has no workspace named nothing-here",
        ),
    ] {
        let err = berth.fails("admin", args);
        assert!(err.contains(expected), "berth {args:?}: {err}");
    }

    // ws open prints the address (no browser without a desktop).
    let open = ok(&["ws", "open", "lab", "--no-browser"]);
    assert_eq!(open.trim(), format!("{}/user/admin/lab/", berth.url));

    // ws logs of a runtime-less berth: empty, and not an error.
    assert_eq!(ok(&["ws", "logs", "lab"]), "");
}

#[test]
fn completion_scripts_load_in_their_shells() {
    let script = |shell: &str| {
        let out = Command::new(BIN)
            .args(["completion", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}");
        String::from_utf8(out.stdout).unwrap()
    };
    let bash = script("bash");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("berth.bash");
    std::fs::write(&file, bash).unwrap();
    // Loaded, bash completes `berth ws lo` to `logs`.
    let probe = format!(
        "source {}; COMP_WORDS=(berth ws lo); COMP_CWORD=2; _berth berth lo ws; echo \"${{COMPREPLY[@]}}\"",
        file.display()
    );
    let out = Command::new("bash").args(["-c", &probe]).output().unwrap();
    let words = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && words.split_whitespace().any(|w| w == "logs"),
        "{words} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for shell in ["zsh", "fish"] {
        let text = script(shell);
        assert!(
            text.contains("reset-password") && text.contains("berth"),
            "{shell}"
        );
    }
    let err = Command::new(BIN)
        .args(["completion", "tcsh"])
        .output()
        .unwrap();
    assert!(!err.status.success());
    assert!(String::from_utf8_lossy(&err.stderr).contains("possible values: bash"));
}
