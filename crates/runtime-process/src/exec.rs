//! Every external program this crate runs goes through here: the short-lived
//! tools (`ip`, `nft`, the disk's tools) through [`run`], and the sandboxed app through
//! [`spawn_sandbox`], which builds the one long-lived command line
//! `setsid sh -c <join cgroups; exec> nsenter --net=… setpriv … bwrap … -- argv`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::AsyncWriteExt;
use tokio::process::{Child, Command};

/// An external program failed.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("could not run {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{program} {args} exited with {status}: {stderr}")]
    Failed {
        program: String,
        args: String,
        status: std::process::ExitStatus,
        stderr: String,
    },
    #[error("no free address slot in 10.213.0.0/16")]
    Exhausted,
    #[error("enable IPv4 forwarding for egress: {0}")]
    Forwarding(std::io::Error),
    #[error("netlink: {op}")]
    Netlink {
        op: &'static str,
        #[source]
        source: rtnetlink::Error,
    },
    #[error("a workspace's network namespace")]
    Namespace(#[source] std::io::Error),
}

impl ExecError {
    pub fn stderr_contains(&self, needle: &str) -> bool {
        matches!(self, ExecError::Failed { stderr, .. } if stderr.contains(needle))
    }
}

/// Runs `program args`, returning its stdout; a non-zero exit is an error
/// carrying stderr.
pub async fn run(program: &str, args: &[&str]) -> Result<String, ExecError> {
    run_with_stdin(program, args, "").await
}

/// Like [`run`], feeding `stdin` to the program.
pub async fn run_with_stdin(
    program: &str,
    args: &[&str],
    stdin: &str,
) -> Result<String, ExecError> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| ExecError::Spawn {
            program: program.to_owned(),
            source,
        })?;
    if let Some(mut pipe) = child.stdin.take() {
        // A program that does not read its stdin closes the pipe: not an error.
        let _ = pipe.write_all(stdin.as_bytes()).await;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|source| ExecError::Spawn {
            program: program.to_owned(),
            source,
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(ExecError::Failed {
            program: program.to_owned(),
            args: args.join(" "),
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

/// The exit status of the sandbox when it could not join its cgroup.
pub const JOIN_FAILED: i32 = 121;

/// What the sandbox is made of.
#[derive(Debug)]
pub struct Sandbox<'a> {
    /// The `cgroup.procs` files the process joins before anything else runs.
    pub cgroup_procs: Vec<PathBuf>,
    pub netns: String,
    pub uid: u32,
    /// Host directory mounted read-write at `home`.
    pub host_home: &'a Path,
    pub home: String,
    /// Host directories mounted read-only at the same path (the app environment).
    pub ro_binds: Vec<PathBuf>,
    pub hostname: &'a str,
    pub env: Vec<(String, String)>,
    pub argv: &'a [String],
    /// The seccomp program ([`crate::seccomp`]), which bwrap reads from fd 3.
    pub seccomp: &'a Path,
    pub log: File,
}

/// The `bwrap` arguments (without the program name) for `sandbox`.
pub fn bwrap_args(sandbox: &Sandbox<'_>) -> Vec<String> {
    let mut a: Vec<String> = Vec::new();
    let mut push = |items: &[&str]| a.extend(items.iter().map(|s| (*s).to_owned()));
    push(&[
        // The sandbox's own user namespace (uid mapped to itself), in which no
        // further one can be made: no `unshare -U` to gain capabilities over
        // fresh namespaces, the kernel surface most sandbox escapes need.
        "--unshare-user",
        "--disable-userns",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--new-session",
        "--cap-drop",
        "ALL",
        "--ro-bind",
        "/usr",
        "/usr",
        "--ro-bind",
        "/etc",
        "/etc",
    ]);
    // On merged-/usr systems these are links into /usr; elsewhere directories.
    for dir in ["/bin", "/sbin", "/lib", "/lib64", "/lib32"] {
        match std::fs::read_link(dir) {
            Ok(target) => push(&["--symlink", &target.to_string_lossy(), dir]),
            Err(_) if Path::new(dir).is_dir() => push(&["--ro-bind", dir, dir]),
            Err(_) => {}
        }
    }
    push(&[
        "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/dev/shm", "--tmpfs", "/tmp",
    ]);
    for dir in &sandbox.ro_binds {
        let dir = dir.to_string_lossy();
        push(&["--ro-bind", &dir, &dir]);
    }
    push(&[
        "--bind",
        &sandbox.host_home.to_string_lossy(),
        &sandbox.home,
        // Nothing but the home, /tmp and /dev/shm is writable: not even
        // bwrap's own root and /dev, which would be in-memory scratch space.
        "--remount-ro",
        "/dev",
        "--remount-ro",
        "/",
        "--chdir",
        &sandbox.home,
        "--hostname",
        sandbox.hostname,
        "--seccomp",
        "3",
        // The app's environment is this process chain's own (see
        // `spawn_sandbox`), never arguments: a command line is every user's
        // to read in /proc, an environment only its owner's.
        "--",
    ]);
    a.extend(sandbox.argv.iter().cloned());
    a
}

/// Where the sandbox chain's programs are looked for.
const SYSTEM_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// `name`'s absolute path in [`SYSTEM_PATH`], or `name` as it is.
fn tool(name: &str) -> String {
    SYSTEM_PATH
        .split(':')
        .map(|dir| Path::new(dir).join(name))
        .find(|p| p.is_file())
        .map_or_else(|| name.to_owned(), |p| p.to_string_lossy().into_owned())
}

/// Starts the sandboxed app in its own session, its output appended to the log.
/// A small shell writes its own pid into every `cgroup.procs` file and only then
/// execs the rest, so nothing of the app ever runs outside the cgroup. The chain
/// execs all the way down (`sh` → `nsenter` → `setpriv` → `bwrap`): the
/// returned child's pid is bwrap's.
pub fn spawn_sandbox(sandbox: Sandbox<'_>) -> std::io::Result<Child> {
    // The seccomp program goes to fd 3, which bwrap (`--seccomp 3`) reads
    // and closes; nothing between the shell and bwrap closes it.
    const JOIN: &str = r#"f=$1; n=$2; shift 2; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 121; shift; n=$((n-1)); done; exec "$@" 3<"$f""#;
    let uid = sandbox.uid.to_string();
    let log_err = sandbox.log.try_clone()?;
    // By absolute path: the chain runs with the app's PATH.
    let (sh, nsenter, setpriv, bwrap) =
        (tool("sh"), tool("nsenter"), tool("setpriv"), tool("bwrap"));
    let mut cmd = Command::new(tool("setsid"));
    cmd.args([&sh, "-c", JOIN, "sh"])
        .arg(sandbox.seccomp)
        .arg(sandbox.cgroup_procs.len().to_string())
        .args(&sandbox.cgroup_procs)
        .args([nsenter, format!("--net=/run/netns/{}", sandbox.netns)])
        .args([
            &setpriv,
            "--reuid",
            &uid,
            "--regid",
            &uid,
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--no-new-privs",
            &bwrap,
        ])
        .args(bwrap_args(&sandbox))
        // The app's environment, and nothing of berth's: `sh`, `nsenter`,
        // `setpriv` and `bwrap` pass it on as it is (secrets such as
        // JUPYTERHUB_API_TOKEN included, which therefore never appear on a
        // command line). PATH serves the chain and, unless the app's own
        // environment sets one, the app.
        .env_clear()
        .env("PATH", SYSTEM_PATH)
        .envs(sandbox.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(sandbox.log)
        .stderr(log_err)
        // The workspace outlives this process: never kill it when the handle goes.
        .kill_on_drop(false);
    cmd.spawn()
}
