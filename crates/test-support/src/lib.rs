//! Test fixtures that start real components on loopback.
//!
//! [`Engine::fresh`] gives a test a fresh database on each engine berth supports:
//! a SQLite file in a temporary directory, and a new database in a real PostgreSQL
//! server. The server comes from `BERTH_TEST_POSTGRES_URL` when set (an admin URL);
//! otherwise the first test of a process starts a private cluster (`initdb` +
//! `pg_ctl`, listening on 127.0.0.1 only, as the `postgres` user when running as
//! root) that a watchdog stops when the test process ends. A missing PostgreSQL is
//! a test failure with a clear message, never a skip.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use sqlx::Connection;

/// A database engine under test and the URL of a fresh, empty database on it.
#[derive(Debug)]
pub struct TestDb {
    pub engine: &'static str,
    pub url: String,
    /// Keeps a SQLite file's directory alive for the test's duration.
    _dir: Option<tempfile::TempDir>,
}

/// The engines berth supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    pub const ALL: [Engine; 2] = [Engine::Sqlite, Engine::Postgres];

    /// A fresh database on this engine.
    pub async fn fresh(self) -> TestDb {
        match self {
            Engine::Sqlite => {
                let dir = tempfile::tempdir().expect("create temp dir");
                let url = format!("sqlite://{}", dir.path().join("berth.db").display());
                TestDb {
                    engine: "sqlite",
                    url,
                    _dir: Some(dir),
                }
            }
            Engine::Postgres => TestDb {
                engine: "postgres",
                url: fresh_postgres_database().await,
                _dir: None,
            },
        }
    }
}

/// The admin URL of the PostgreSQL server tests use, starting one if needed.
pub fn postgres_admin_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| match std::env::var("BERTH_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => start_private_cluster(),
    })
}

/// Creates a new database with a unique name and returns its URL.
pub async fn fresh_postgres_database() -> String {
    let admin = postgres_admin_url();
    let name = format!("berth_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(admin)
        .await
        .unwrap_or_else(|e| panic!("connect to test PostgreSQL at {admin}: {e}"));
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let _ = conn.close().await;
    match admin.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{name}"),
        None => panic!("BERTH_TEST_POSTGRES_URL must end in /DATABASE"),
    }
}

fn find_pg_bin(tool: &str) -> PathBuf {
    let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin").join(tool))
        .filter(|p| p.exists())
        .collect();
    candidates.sort();
    candidates.pop().unwrap_or_else(|| {
        panic!(
            "PostgreSQL's {tool} was not found under /usr/lib/postgresql: run scripts/install-deps \
             (or set BERTH_TEST_POSTGRES_URL to an admin URL of a running server)"
        )
    })
}

fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// Runs a PostgreSQL tool, as the `postgres` user when we are root (the server
/// refuses to run as root).
fn pg_command(tool: &Path, as_postgres: bool) -> Command {
    if as_postgres {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(tool);
        c
    } else {
        Command::new(tool)
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("find a free port")
}

fn start_private_cluster() -> String {
    let initdb = find_pg_bin("initdb");
    let pg_ctl = find_pg_bin("pg_ctl");
    let as_postgres = running_as_root();
    let dir = std::env::temp_dir().join(format!("berth-test-pg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create PostgreSQL data dir");
    if as_postgres {
        let ok = Command::new("chown")
            .args(["postgres:postgres"])
            .arg(&dir)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(
            ok,
            "chown the test PostgreSQL dir to the postgres user (does it exist?)"
        );
    }
    let data = dir.join("data");
    let out = pg_command(&initdb, as_postgres)
        .args(["-A", "trust", "-U", "berth", "--no-sync", "-D"])
        .arg(&data)
        .stdin(Stdio::null())
        .output()
        .expect("run initdb");
    assert!(
        out.status.success(),
        "initdb failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let port = free_port();
    let opts = format!(
        "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300",
        dir.display()
    );
    let status = pg_command(&pg_ctl, as_postgres)
        .arg("-D")
        .arg(&data)
        .arg("-l")
        .arg(dir.join("log"))
        .args(["-o", &opts, "-w", "start"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run pg_ctl");
    assert!(
        status.success(),
        "pg_ctl start failed; see {}",
        dir.join("log").display()
    );
    // The watchdog stops the cluster once this test process is gone.
    let stop = format!(
        "while [ -d /proc/{pid} ]; do sleep 0.5; done; {ctl} -D {data} -m immediate stop; rm -rf {dir}",
        pid = std::process::id(),
        ctl = pg_ctl.display(),
        data = data.display(),
        dir = dir.display()
    );
    let mut watchdog = if as_postgres {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", "sh", "-c", &stop]);
        c
    } else {
        let mut c = Command::new("sh");
        c.args(["-c", &stop]);
        c
    };
    // Never waited for: it must outlive this process to stop the cluster.
    #[allow(clippy::zombie_processes)]
    watchdog
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start PostgreSQL watchdog");
    format!("postgres://berth@127.0.0.1:{port}/postgres")
}
