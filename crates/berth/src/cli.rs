//! The client verbs: `berth login`, `users`, `tokens`, `profiles`, `ws`, `groups`,
//! `audit`. Human tables by default, `--json` for scripts; every error is a clear
//! message on stderr and a non-zero exit.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

use anyhow::{bail, Context};
use api_types::*;
use clap::{Args, Subcommand};
use client::{AuditQuery, Client, WorkspaceQuery};
use comfy_table::{presets::UTF8_BORDERS_ONLY, ContentArrangement, Table};
use serde::{Deserialize, Serialize};

const DEFAULT_URL: &str = "http://127.0.0.1:8000";

/// Options every client verb takes.
#[derive(Debug, Args)]
pub struct Global {
    /// berth's URL (default: the one `berth login` stored, else http://127.0.0.1:8000).
    #[arg(
        long,
        global = true,
        env = "BERTH_URL",
        value_name = "URL",
        help_heading = "Global options"
    )]
    url: Option<String>,
    /// API token to use instead of the one `berth login` stored.
    #[arg(
        long,
        global = true,
        env = "BERTH_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN",
        help_heading = "Global options"
    )]
    token: Option<String>,
    /// Print JSON instead of tables (for scripts).
    #[arg(long, global = true, help_heading = "Global options")]
    json: bool,
    /// Show every column of a table, however wide (tables fit the terminal,
    /// or 80 columns, otherwise).
    #[arg(long, global = true, help_heading = "Global options")]
    wide: bool,
}

/// A number of CPUs above 0, as `--cpu` takes it.
fn cpus(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err("expected a number of CPUs above 0, such as 2 or 0.5".into()),
    }
}

/// A number of CPUs, 0 or more, as a quota's `--cpu` takes it.
fn cpus_or_zero(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err("expected a number of CPUs, 0 or more, such as 8 or 0.5".into()),
    }
}

/// A size such as 512MiB or 8GiB.
fn size(s: &str) -> Result<u64, String> {
    match s.parse::<bytesize::ByteSize>() {
        Ok(b) if !s.trim_start().starts_with('-') => Ok(b.as_u64()),
        _ => Err("expected a size such as 512MiB, 8GiB or 1TiB".into()),
    }
}

/// A whole number, 0 or more.
fn whole(s: &str) -> Result<u64, String> {
    s.parse::<u64>()
        .map_err(|_| "expected a whole number, 0 or more".into())
}

/// A number of lines, as `--tail` takes it (berth checks the range).
fn lines(s: &str) -> Result<u32, String> {
    s.parse::<u32>()
        .map_err(|_| "expected a number of lines, 1 to 10000".into())
}

/// A price, 0 or more.
fn price(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err("expected a price, 0 or more, such as 0.25".into()),
    }
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Log in with a password and store an API token for the other commands.
    #[command(after_help = "Examples:\n  berth login -u ada\n  \
        berth login --url https://berth.example.com -u ada\n  \
        berth login -u admin --password-stdin <<< \"$PASSWORD\"")]
    Login {
        /// Your user name.
        #[arg(long, short)]
        username: String,
        /// Read the password from the first line of stdin instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Revoke the stored token and forget it.
    Logout,
    /// Show who the stored token belongs to, with its scopes.
    Whoami,
    /// Change your password (asks for the current one), or, as an admin,
    /// set another user's.
    #[command(after_help = "Examples:\n  berth passwd\n  berth passwd ada\n  \
        printf '%s\\n%s\\n' \"$OLD\" \"$NEW\" | berth passwd --password-stdin")]
    Passwd {
        /// The user whose password to set (admins); default: yours.
        user: Option<String>,
        /// Read the passwords from stdin instead of prompting: the current one
        /// on the first line (for your own), then the new one.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Users: list, create, change, delete, and their quotas (admins).
    #[command(subcommand)]
    Users(UsersCommand),
    /// API tokens: yours, or (admins) anyone's.
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// Profiles: the resources and app a workspace gets (admins change them).
    #[command(subcommand)]
    Profiles(ProfilesCommand),
    /// Workspaces: create, start, stop, open, follow their logs, share.
    #[command(subcommand)]
    Ws(WsCommand),
    /// Groups of users, to share workspaces with (admins).
    #[command(subcommand)]
    Groups(GroupsCommand),
    /// Services: tools' own identities and tokens, as JupyterHub's (admins).
    #[command(subcommand)]
    Services(ServicesCommand),
    /// The audit log, newest first (admins).
    #[command(
        after_help = "Examples:\n  berth audit\n  berth audit --user ada --action workspace\n  \
        berth audit --action auth.login --since 2026-11-01T00:00:00Z --limit 200"
    )]
    Audit {
        /// Only what this user did.
        #[arg(long, value_name = "NAME")]
        user: Option<String>,
        /// Only this action (workspace.create) or family of actions (workspace).
        #[arg(long)]
        action: Option<String>,
        /// Only from this time on (RFC 3339, e.g. 2026-11-01T00:00:00Z).
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// Only before this time (RFC 3339).
        #[arg(long, value_name = "TIME")]
        until: Option<String>,
        /// At most this many records (1 to 500).
        #[arg(long, default_value_t = 50, allow_negative_numbers = true)]
        limit: i64,
    },
}

#[derive(Debug, Subcommand)]
#[command(after_help = "Examples:\n  berth users list\n  \
    berth users create ada --password-stdin <<< \"$PASSWORD\"\n  \
    berth users set ada --admin true\n  berth users quota ada --workspaces 3 --cpu 4 --memory 16GiB")]
pub enum UsersCommand {
    /// List every user.
    List,
    /// Show one user.
    Show {
        /// The user's name.
        name: String,
    },
    /// Create a user.
    Create {
        /// The new user's name: lowercase letters, digits and dashes.
        name: String,
        /// Make the user an admin.
        #[arg(long)]
        admin: bool,
        /// Read the password from stdin; without it the account has no password.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Rename, change the admin flag, disable or enable, or set a new password.
    Set {
        /// The user's name.
        name: String,
        /// A new name; the user's workspaces (stopped), files, tokens, groups
        /// and shares follow.
        #[arg(long = "rename", value_name = "NEW_NAME")]
        rename: Option<String>,
        /// Make the user an admin (true) or not (false).
        #[arg(long, value_name = "BOOL")]
        admin: Option<bool>,
        /// Disable the account (true: no logins, tokens refused) or enable it (false).
        #[arg(long, value_name = "BOOL")]
        disabled: Option<bool>,
        /// Read a new password from stdin.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Delete a user, with their workspaces and tokens.
    Delete {
        /// The user's name.
        name: String,
    },
    /// Show a user's quota and use; with limits, give the user those of their
    /// own (admins; the limits not given stay as they are).
    Quota {
        /// The user's name.
        name: String,
        /// Workspaces held at most.
        #[arg(long, value_name = "N", value_parser = whole, allow_negative_numbers = true)]
        workspaces: Option<u64>,
        /// CPUs running at most, e.g. 8 or 0.5.
        #[arg(long, value_name = "CPUS", value_parser = cpus_or_zero, allow_negative_numbers = true)]
        cpu: Option<f64>,
        /// Memory running at most, e.g. 32GiB.
        #[arg(long, value_name = "SIZE", value_parser = size, allow_negative_numbers = true)]
        memory: Option<u64>,
        /// Give the user the default quota again.
        #[arg(long, conflicts_with_all = ["workspaces", "cpu", "memory"])]
        reset: bool,
    },
}

#[derive(Debug, Subcommand)]
#[command(after_help = "Examples:\n  berth tokens list\n  \
    berth tokens create --note ci --scope read:servers --expires-in 86400\n  berth tokens revoke ID")]
pub enum TokensCommand {
    /// List tokens (their secrets are never shown again).
    List {
        /// Whose tokens (admins); default: yours.
        #[arg(long, value_name = "NAME")]
        user: Option<String>,
    },
    /// Create a token; it is printed once.
    Create {
        /// For this user (admins); default: you.
        #[arg(long, value_name = "NAME")]
        user: Option<String>,
        /// What the token is for, shown in lists.
        #[arg(long, default_value = "")]
        note: String,
        /// A scope, such as read:servers (repeatable); default: all of yours.
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
        /// Lifetime in seconds; default: until revoked.
        #[arg(long, value_name = "SECONDS", value_parser = whole, allow_negative_numbers = true)]
        expires_in: Option<u64>,
    },
    /// Revoke a token: it stops working at once.
    Revoke {
        /// The token's id, from `berth tokens list`.
        id: String,
        /// Whose token (admins); default: yours.
        #[arg(long, value_name = "NAME")]
        user: Option<String>,
    },
}

/// The settable fields of a profile.
#[derive(Debug, Args)]
pub struct ProfileFields {
    /// The name people see when they pick a profile.
    #[arg(long, value_name = "TEXT")]
    display_name: Option<String>,
    /// CPUs, e.g. 2 or 0.5.
    #[arg(long, value_name = "CPUS", value_parser = cpus, allow_negative_numbers = true)]
    cpu: Option<f64>,
    /// Memory, e.g. 8GiB.
    #[arg(long, value_name = "SIZE", value_parser = size, allow_negative_numbers = true)]
    memory: Option<u64>,
    /// Processes a workspace may run at once.
    #[arg(long, value_name = "N", value_parser = whole, allow_negative_numbers = true)]
    max_processes: Option<u64>,
    /// The home's size, e.g. 20GiB.
    #[arg(long, value_name = "SIZE", value_parser = size, allow_negative_numbers = true)]
    disk: Option<u64>,
    /// Seconds without activity before hibernation; 0 = never.
    #[arg(long, value_name = "SECONDS", value_parser = whole, allow_negative_numbers = true)]
    idle_timeout: Option<u64>,
    /// What hibernation does: stop (the default) or pause.
    #[arg(long, value_parser = ["stop", "pause"])]
    idle_action: Option<String>,
    /// Seconds after creation before deletion; 0 = never.
    #[arg(long, value_name = "SECONDS", value_parser = whole, allow_negative_numbers = true)]
    max_lifetime: Option<u64>,
    /// What an hour of a running workspace costs, for the cost shown.
    #[arg(long, value_name = "PRICE", value_parser = price, allow_negative_numbers = true)]
    cost_per_hour: Option<f64>,
    /// Seconds a start may take before it counts as failed.
    #[arg(long, value_name = "SECONDS", value_parser = whole, allow_negative_numbers = true)]
    start_timeout: Option<u64>,
    /// Launch JupyterLab.
    #[arg(long, conflicts_with = "command")]
    jupyterlab: bool,
    /// Whether workspaces may reach the network beyond berth's API: true or false.
    #[arg(long, value_name = "BOOL")]
    egress: Option<bool>,
    /// With --command: the app serves at / and the proxy strips the
    /// workspace's URL prefix from requests (for any plain web server).
    #[arg(long, requires = "command")]
    strip_prefix: bool,
    /// Launch this command instead (all remaining arguments; put it last).
    /// {port}, {base_url}, {username}, {servername} and {home} are filled in.
    #[arg(long, num_args = 1.., allow_hyphen_values = true, value_name = "ARGV")]
    command: Option<Vec<String>>,
}

impl ProfileFields {
    fn into_update(self) -> ProfileUpdate {
        let app = match (self.jupyterlab, self.command) {
            (true, _) => Some(App::Jupyterlab),
            (false, Some(argv)) => Some(App::Command {
                argv,
                strip_prefix: self.strip_prefix,
            }),
            (false, None) => None,
        };
        ProfileUpdate {
            display_name: self.display_name,
            cpu: self.cpu,
            memory_bytes: self.memory,
            max_processes: self.max_processes,
            disk_quota_bytes: self.disk,
            idle_timeout_secs: self.idle_timeout,
            idle_action: self.idle_action,
            max_lifetime_secs: self.max_lifetime,
            cost_per_hour: self.cost_per_hour,
            start_timeout_secs: self.start_timeout,
            app,
            egress: self.egress,
        }
    }
}

#[derive(Debug, Subcommand)]
#[command(after_help = "Examples:\n  berth profiles list\n  \
    berth profiles create small --display-name \"Small (1 CPU, 2 GiB)\" --cpu 1 --memory 2GiB\n  \
    berth profiles create web --display-name Web --strip-prefix --command python3 -m http.server '{port}'\n  \
    berth profiles update small --idle-timeout 1800 --idle-action pause")]
pub enum ProfilesCommand {
    /// List the profiles.
    List,
    /// Show one profile.
    Show {
        /// The profile's name.
        name: String,
    },
    /// Create a profile (admins); what is not given takes Standard's value.
    Create {
        /// The new profile's name: lowercase letters, digits and dashes.
        name: String,
        #[command(flatten)]
        fields: ProfileFields,
    },
    /// Change a profile (admins); workspaces get it at their next start.
    Update {
        /// The profile's name.
        name: String,
        #[command(flatten)]
        fields: ProfileFields,
    },
    /// Delete a profile no workspace uses (admins).
    Delete {
        /// The profile's name.
        name: String,
    },
}

/// Which workspace: a name (yours, or `--owner`'s) or an id.
#[derive(Debug, Args)]
pub struct WsRef {
    /// The workspace's name (or its id).
    workspace: String,
    /// The owner, when naming another user's workspace (admins, or a share).
    #[arg(long, value_name = "NAME")]
    owner: Option<String>,
}

#[derive(Debug, Subcommand)]
#[command(
    after_help = "Examples:\n  berth ws create lab --profile standard --start --wait\n  \
    berth ws list\n  berth ws open lab\n  berth ws logs -f lab\n  berth ws stop lab\n  \
    berth ws share lab --user grace\n  berth ws delete lab --keep-files"
)]
pub enum WsCommand {
    /// Create a workspace (stopped, unless --start).
    Create {
        /// The workspace's name: lowercase letters, digits and dashes.
        name: String,
        /// Its profile; default: the default profile.
        #[arg(long, value_name = "NAME")]
        profile: Option<String>,
        /// For another user (admins).
        #[arg(long, value_name = "NAME")]
        owner: Option<String>,
        /// Start it right away.
        #[arg(long)]
        start: bool,
        /// With --start: print the start's steps and the app's first output,
        /// and return once it is ready (exit status 1 if the start fails).
        #[arg(long, requires = "start")]
        wait: bool,
    },
    /// List workspaces: yours, or (admins) everyone's.
    List {
        /// Only this user's.
        #[arg(long, value_name = "NAME")]
        owner: Option<String>,
        /// Only those in this state: pending, starting, running, stopping,
        /// stopped, paused or failed.
        #[arg(long)]
        state: Option<String>,
        /// Only those with this profile.
        #[arg(long, value_name = "NAME")]
        profile: Option<String>,
    },
    /// Show a workspace: its state, message and conditions.
    Show(WsRef),
    /// Start a workspace.
    Start {
        #[command(flatten)]
        ws: WsRef,
        /// Print the start's steps and the app's first output, and return once
        /// it is ready (exit status 1 if the start fails).
        #[arg(long)]
        wait: bool,
    },
    /// Stop a workspace; its files stay.
    Stop(WsRef),
    /// Print a workspace's address and open it in your browser (when there is
    /// one); a stopped workspace's page offers to start it.
    Open {
        #[command(flatten)]
        ws: WsRef,
        /// Only print the address.
        #[arg(long)]
        no_browser: bool,
    },
    /// Print a workspace's log: the app's output and berth's lines about its
    /// starts and exits.
    Logs {
        #[command(flatten)]
        ws: WsRef,
        /// Keep printing what the app writes, until you press Ctrl-C or the
        /// workspace is deleted.
        #[arg(long, short)]
        follow: bool,
        /// Only the last N lines (1 to 10000); default: the last MiB.
        #[arg(long, value_name = "N", value_parser = lines, allow_negative_numbers = true)]
        tail: Option<u32>,
    },
    /// Change the profile (applied at the next start).
    Update {
        #[command(flatten)]
        ws: WsRef,
        /// The new profile.
        #[arg(long, value_name = "NAME")]
        profile: String,
    },
    /// Delete a workspace, with its files unless --keep-files.
    Delete {
        #[command(flatten)]
        ws: WsRef,
        /// Keep its files (set aside by the runtime) instead of deleting them.
        #[arg(long)]
        keep_files: bool,
    },
    /// Let a user, or a group's members, use the workspace: open its app and
    /// work in it (files, terminals, kernels). Starting, stopping and deleting
    /// it stay the owner's.
    Share {
        #[command(flatten)]
        ws: WsRef,
        #[command(flatten)]
        with: ShareTarget,
    },
    /// Revoke a share, or all of the workspace's shares.
    Unshare {
        #[command(flatten)]
        ws: WsRef,
        #[command(flatten)]
        with: UnshareTarget,
    },
    /// List whom the workspace is shared with.
    Shares(WsRef),
    /// List the workspaces others share with you.
    Shared {
        /// Whose (admins); default: yours.
        #[arg(long, value_name = "NAME")]
        user: Option<String>,
    },
}

/// Whom to share with: exactly one of a user and a group.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct ShareTarget {
    /// A user's name.
    #[arg(long, value_name = "NAME")]
    user: Option<String>,
    /// A group's name: its members, as they come and go.
    #[arg(long, value_name = "NAME")]
    group: Option<String>,
}

/// Which share to revoke: a user's, a group's, or all.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct UnshareTarget {
    /// The share with this user.
    #[arg(long, value_name = "NAME")]
    user: Option<String>,
    /// The share with this group.
    #[arg(long, value_name = "NAME")]
    group: Option<String>,
    /// Every share of the workspace.
    #[arg(long)]
    all: bool,
}

#[derive(Debug, Subcommand)]
#[command(after_help = "Examples:\n  berth groups create analysts ada grace\n  \
    berth groups add analysts alan\n  berth groups remove analysts ada")]
pub enum GroupsCommand {
    /// List the groups and their members.
    List,
    /// Create a group, with members.
    Create {
        /// The group's name: lowercase letters, digits and dashes.
        name: String,
        /// Its first members' names.
        members: Vec<String>,
    },
    /// Add users to a group.
    Add {
        /// The group's name.
        name: String,
        /// The users' names.
        #[arg(required = true)]
        users: Vec<String>,
    },
    /// Take a user out of a group.
    Remove {
        /// The group's name.
        name: String,
        /// The user's name.
        user: String,
    },
    /// Delete a group; its shares go with it.
    Delete {
        /// The group's name.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
#[command(
    after_help = "Examples:\n  berth services create idle-culler --admin\n  berth services list"
)]
pub enum ServicesCommand {
    /// List the services.
    List,
    /// Create a service and print its token, once: give it to the tool as
    /// `JUPYTERHUB_API_TOKEN`.
    Create {
        /// The service's name.
        name: String,
        /// Acts as an admin (as the idle culler must); else it can only
        /// identify itself.
        #[arg(long)]
        admin: bool,
    },
    /// Delete a service; its token stops working at once.
    Delete {
        /// The service's name.
        name: String,
    },
}

/// What `berth login` stores.
#[derive(Debug, Serialize, Deserialize)]
struct Credentials {
    url: String,
    user: String,
    token: String,
    token_id: String,
}

fn credentials_path() -> anyhow::Result<PathBuf> {
    let dir = dirs::config_dir().context("find the user's config directory (is HOME set?)")?;
    Ok(dir.join("berth").join("credentials.toml"))
}

fn load_credentials() -> anyhow::Result<Option<Credentials>> {
    let path = credentials_path()?;
    match std::fs::read_to_string(&path) {
        Ok(s) => toml::from_str(&s)
            .map(Some)
            .with_context(|| format!("read {} (delete it and log in again)", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("read {}", path.display())),
    }
}

fn save_credentials(c: &Credentials) -> anyhow::Result<PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = credentials_path()?;
    let dir = path.parent().expect("the path has a parent");
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let tmp = path.with_extension("toml.tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("write {}", tmp.display()))?;
    f.write_all(toml::to_string(c)?.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, &path).with_context(|| format!("write {}", path.display()))?;
    Ok(path)
}

pub(crate) fn read_password(from_stdin: bool, prompt: &str) -> anyhow::Result<String> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("read the password from stdin")?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    if !std::io::stdin().is_terminal() {
        bail!("no terminal to ask for a password: use --password-stdin");
    }
    rpassword::prompt_password(prompt).context("read the password")
}

struct Out {
    json: bool,
    wide: bool,
}

/// A table's column: shown always, or only with `--wide`.
#[derive(Debug, Clone, Copy)]
enum Col {
    Always(&'static str),
    Wide(&'static str),
}
use Col::{Always, Wide};

/// What a command prints as a table: its columns and rows (one cell per
/// column).
struct Grid {
    cols: &'static [Col],
    rows: Vec<Vec<String>>,
}

fn grid(cols: &'static [Col], rows: impl IntoIterator<Item = Vec<String>>) -> Grid {
    Grid {
        cols,
        rows: rows.into_iter().collect(),
    }
}

/// Writes `bytes` to stdout, flushed.
fn write_out(bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(bytes).and_then(|()| stdout.flush())
}

/// A write error, unless it is a reader that went away (`| head`): that is the
/// reader's choice, not an error.
fn unless_closed(e: std::io::Error) -> anyhow::Result<()> {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        Ok(())
    } else {
        Err(e.into())
    }
}

/// Writes `bytes` to stdout; a reader that went away is no error.
pub(crate) fn emit(bytes: &[u8]) -> anyhow::Result<()> {
    write_out(bytes).or_else(unless_closed)
}

impl Out {
    fn print<T: Serialize>(&self, value: &T, grid: impl FnOnce(&T) -> Grid) -> anyhow::Result<()> {
        let text = if self.json {
            serde_json::to_string_pretty(value)?
        } else {
            self.table(grid(value)).to_string()
        };
        emit(format!("{text}\n").as_bytes())
    }

    /// The grid as a table: without `--wide`, only the columns always shown,
    /// wrapped to the terminal's width (80 columns when not on a terminal).
    fn table(&self, g: Grid) -> Table {
        let shown: Vec<usize> = (0..g.cols.len())
            .filter(|&i| self.wide || matches!(g.cols[i], Always(_)))
            .collect();
        let mut t = Table::new();
        t.load_preset(UTF8_BORDERS_ONLY);
        if self.wide {
            t.set_content_arrangement(ContentArrangement::Disabled);
        } else {
            t.set_content_arrangement(ContentArrangement::Dynamic);
            if !std::io::stdout().is_terminal() {
                t.set_width(80);
            }
        }
        t.set_header(shown.iter().map(|&i| match g.cols[i] {
            Always(name) | Wide(name) => name,
        }));
        for row in g.rows {
            t.add_row(shown.iter().map(|&i| row[i].clone()));
        }
        t
    }

    fn done(&self, what: &str) {
        if !self.json {
            println!("{what}");
        }
    }
}

/// An RFC 3339 time from the API as a table shows it: to the minute, in UTC
/// (`2026-12-04 18:02Z`; `--json` has the whole).
fn when(rfc3339: &str) -> String {
    match rfc3339.get(..16) {
        Some(minute) if rfc3339.ends_with('Z') => format!("{}Z", minute.replacen('T', " ", 1)),
        _ => rfc3339.to_owned(),
    }
}

fn opt(s: &Option<String>) -> String {
    s.clone().unwrap_or_else(|| "-".into())
}

fn users_table(users: &[User]) -> Grid {
    grid(
        &[
            Always("NAME"),
            Always("ADMIN"),
            Always("DISABLED"),
            Always("GROUPS"),
            Wide("CREATED"),
        ],
        users.iter().map(|u| {
            vec![
                u.name.clone(),
                u.admin.to_string(),
                u.disabled.to_string(),
                u.groups.join(","),
                when(&u.created),
            ]
        }),
    )
}

fn quota_table(q: &UserQuota) -> Grid {
    let mem = |b: u64| bytesize::ByteSize(b).to_string_as(true);
    let own = |set: bool| if set { "own" } else { "default" }.to_owned();
    let (l, d, u, c) = (&q.limits, &q.default, &q.used, &q.custom);
    grid(
        &[
            Always(""),
            Always("IN USE"),
            Always("LIMIT"),
            Always("FROM"),
            Always("DEFAULT"),
        ],
        [
            vec![
                "workspaces".into(),
                u.workspaces.to_string(),
                l.max_workspaces.to_string(),
                own(c.max_workspaces.is_some()),
                d.max_workspaces.to_string(),
            ],
            vec![
                "cpus running".into(),
                u.cpu.to_string(),
                l.max_cpu.to_string(),
                own(c.max_cpu.is_some()),
                d.max_cpu.to_string(),
            ],
            vec![
                "memory running".into(),
                mem(u.memory_bytes),
                mem(l.max_memory_bytes),
                own(c.max_memory_bytes.is_some()),
                mem(d.max_memory_bytes),
            ],
        ],
    )
}

fn tokens_table(tokens: &[Token]) -> Grid {
    grid(
        &[
            Always("ID"),
            Wide("PREFIX"),
            Always("NOTE"),
            Wide("SCOPES"),
            Always("EXPIRES"),
            Always("LAST USED"),
        ],
        tokens.iter().map(|t| {
            vec![
                t.id.clone(),
                t.prefix.clone(),
                t.note.clone(),
                t.scopes.join(" "),
                t.expires_at.as_deref().map_or_else(|| "-".into(), when),
                t.last_used.as_deref().map_or_else(|| "-".into(), when),
            ]
        }),
    )
}

fn profiles_table(profiles: &[Profile]) -> Grid {
    let secs = |s: Option<u64>| s.map(|s| format!("{s}s")).unwrap_or_else(|| "never".into());
    grid(
        &[
            Always("NAME"),
            Wide("DISPLAY NAME"),
            Always("CPU"),
            Always("MEMORY"),
            Always("DISK"),
            Always("IDLE"),
            Wide("LIFETIME"),
            Always("COST/H"),
            Wide("EGRESS"),
            Always("APP"),
        ],
        profiles.iter().map(|p| {
            vec![
                p.name.clone(),
                p.display_name.clone(),
                p.cpu.to_string(),
                bytesize::ByteSize(p.memory_bytes).to_string_as(true),
                bytesize::ByteSize(p.disk_quota_bytes).to_string_as(true),
                match p.idle_timeout_secs {
                    Some(s) => format!("{}s: {}", s, p.idle_action),
                    None => "never".into(),
                },
                secs(p.max_lifetime_secs),
                format!("{:.2}", p.cost_per_hour),
                if p.egress { "yes" } else { "no" }.into(),
                match &p.app {
                    App::Jupyterlab => "jupyterlab".into(),
                    App::Command { argv, .. } => argv.join(" "),
                },
            ]
        }),
    )
}

fn workspaces_table(ws: &[Workspace]) -> Grid {
    grid(
        &[
            Always("NAME"),
            Always("OWNER"),
            Always("PROFILE"),
            Wide("DESIRED"),
            Always("STATE"),
            Always("URL"),
            Wide("ID"),
        ],
        ws.iter().map(|w| {
            let state = if w.deletion_requested_at.is_some() {
                "deleting".into()
            } else {
                w.state.clone()
            };
            vec![
                w.name.clone(),
                w.owner.clone(),
                w.profile.clone(),
                w.desired_state.clone(),
                state,
                w.url.clone(),
                w.id.clone(),
            ]
        }),
    )
}

fn shares_table(shares: &[Share]) -> Grid {
    grid(
        &[
            Always("WORKSPACE"),
            Always("WITH"),
            Always("READY"),
            Always("URL"),
            Wide("SINCE"),
        ],
        shares.iter().map(|s| {
            let with = match (&s.user, &s.group) {
                (Some(u), _) => format!("user {u}"),
                (_, Some(g)) => format!("group {g}"),
                _ => "-".into(),
            };
            vec![
                format!("{}/{}", s.owner, s.workspace),
                with,
                s.ready.to_string(),
                s.url.clone(),
                when(&s.created),
            ]
        }),
    )
}

/// Follows a start, printing each step (and the app's output, indented) to
/// stderr; then the workspace as `show` prints it, or an error with the
/// reason it failed.
async fn wait_ready(c: &Client, out: &Out, w: &Workspace) -> anyhow::Result<()> {
    let ready = c
        .follow_start(&w.owner, &w.name, |message, log| {
            if log {
                eprintln!("    {message}");
            } else {
                eprintln!("{message}");
            }
        })
        .await?;
    let w = c.workspace(&w.id).await?;
    if !ready {
        let why = w.message.as_deref().unwrap_or("the start was cancelled");
        anyhow::bail!("{}/{} did not start: {why}", w.owner, w.name);
    }
    out.print(&w, |w| workspaces_table(std::slice::from_ref(w)))
}

/// Whether a browser can be opened here: a desktop session (or macOS), not a
/// shell on a server.
fn has_browser() -> bool {
    cfg!(target_os = "macos")
        || std::env::var_os("DISPLAY").is_some()
        || std::env::var_os("WAYLAND_DISPLAY").is_some()
}

/// Finds a workspace by name (of `owner`, default the caller) or by id.
async fn resolve(c: &Client, r: &WsRef) -> anyhow::Result<Workspace> {
    if model::Name::parse(&r.workspace).is_err() {
        return Ok(c.workspace(&r.workspace).await?);
    }
    let owner = match &r.owner {
        Some(o) => o.clone(),
        None => c.me().await?.user.name,
    };
    let q = WorkspaceQuery {
        owner: Some(owner.clone()),
        name: Some(r.workspace.clone()),
        ..Default::default()
    };
    match c.workspaces(&q).await?.items.pop() {
        Some(w) => Ok(w),
        None => bail!("{owner} has no workspace named {}", r.workspace),
    }
}

/// Runs one client verb.
pub async fn run(cmd: ClientCommand, g: Global) -> anyhow::Result<()> {
    let stored = load_credentials()?;
    let url = g
        .url
        .clone()
        .or_else(|| stored.as_ref().map(|c| c.url.clone()))
        .unwrap_or_else(|| DEFAULT_URL.into());
    let out = Out {
        json: g.json,
        wide: g.wide,
    };
    if let ClientCommand::Login {
        username,
        password_stdin,
    } = &cmd
    {
        let password = read_password(
            *password_stdin,
            &format!("password for {username} at {url}: "),
        )?;
        let mut c = Client::new(&url, None)?;
        c.login(username, &password).await?;
        let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
        let req = TokenCreate {
            note: format!("berth CLI on {}", host.trim()),
            ..Default::default()
        };
        let token = c.create_token(username, &req).await?;
        c.logout().await?;
        let path = save_credentials(&Credentials {
            url: url.clone(),
            user: username.clone(),
            token: token.token,
            token_id: token.info.id,
        })?;
        out.done(&format!(
            "logged in to {url} as {username}; token stored in {}",
            path.display()
        ));
        return Ok(());
    }
    let token = g
        .token
        .clone()
        .or_else(|| stored.as_ref().map(|c| c.token.clone()));
    if token.is_none() {
        bail!("not logged in: run `berth login --username NAME` or pass --token");
    }
    let c = Client::new(&url, token)?;
    match cmd {
        ClientCommand::Login { .. } => unreachable!("handled above"),
        ClientCommand::Logout => {
            if let Some(s) = &stored {
                c.delete_token(&s.user, &s.token_id).await?;
                std::fs::remove_file(credentials_path()?)?;
            }
            out.done("logged out");
        }
        ClientCommand::Passwd {
            user,
            password_stdin,
        } => {
            let me = c.me().await?.user.name;
            let user = user.unwrap_or_else(|| me.clone());
            let own = user == me;
            let old_password = if own {
                Some(read_password(password_stdin, "current password: ")?)
            } else {
                None
            };
            let password = read_password(password_stdin, &format!("new password for {user}: "))?;
            if !password_stdin && read_password(false, "new password again: ")? != password {
                bail!("the two new passwords differ; nothing was changed");
            }
            c.set_password(
                &user,
                &PasswordChange {
                    old_password,
                    password,
                },
            )
            .await?;
            out.done(&if own {
                "changed your password; your sessions in browsers were logged out".to_owned()
            } else {
                format!("set the password of {user}; their sessions were logged out")
            });
        }
        ClientCommand::Whoami => {
            let me = c.me().await?;
            out.print(&me, |m| {
                grid(
                    &[
                        Always("USER"),
                        Always("ADMIN"),
                        Always("VIA"),
                        Always("SCOPES"),
                    ],
                    [vec![
                        m.user.name.clone(),
                        m.user.admin.to_string(),
                        m.via.clone(),
                        m.scopes.join(" "),
                    ]],
                )
            })?;
        }
        ClientCommand::Users(u) => users(&c, &out, u).await?,
        ClientCommand::Tokens(t) => tokens(&c, &out, t).await?,
        ClientCommand::Profiles(p) => profiles(&c, &out, p).await?,
        ClientCommand::Ws(w) => workspaces(&c, &out, w).await?,
        ClientCommand::Groups(gc) => groups(&c, &out, gc).await?,
        ClientCommand::Services(sc) => services(&c, &out, sc).await?,
        ClientCommand::Audit {
            user,
            action,
            since,
            until,
            limit,
        } => {
            let q = AuditQuery {
                user,
                action,
                since,
                until,
                limit: Some(limit),
                before: None,
            };
            let page = c.audit(&q).await?;
            out.print(&page.items, |items| {
                grid(
                    &[
                        Always("AT"),
                        Always("ACTOR"),
                        Always("ACTION"),
                        Always("TARGET"),
                        Always("OUTCOME"),
                        Wide("FROM"),
                    ],
                    items.iter().map(|a| {
                        vec![
                            when(&a.at),
                            opt(&a.actor),
                            a.action.clone(),
                            a.target.clone(),
                            a.outcome.clone(),
                            opt(&a.source),
                        ]
                    }),
                )
            })?;
        }
    }
    Ok(())
}

async fn users(c: &Client, out: &Out, cmd: UsersCommand) -> anyhow::Result<()> {
    match cmd {
        UsersCommand::List => {
            let mut all = Vec::new();
            let mut after = None;
            loop {
                let page = c.users(after.as_deref()).await?;
                all.extend(page.items);
                match page.next {
                    Some(n) => after = Some(n),
                    None => break,
                }
            }
            out.print(&all, |u| users_table(u))
        }
        UsersCommand::Show { name } => out.print(&c.user(&name).await?, |u| {
            users_table(std::slice::from_ref(u))
        }),
        UsersCommand::Create {
            name,
            admin,
            password_stdin,
        } => {
            let password = password_stdin
                .then(|| read_password(true, ""))
                .transpose()?;
            let u = c
                .create_user(&UserCreate {
                    name,
                    password,
                    admin,
                })
                .await?;
            out.print(&u, |u| users_table(std::slice::from_ref(u)))
        }
        UsersCommand::Set {
            name,
            rename,
            admin,
            disabled,
            password_stdin,
        } => {
            let password = password_stdin
                .then(|| read_password(true, ""))
                .transpose()?;
            let u = c
                .update_user(
                    &name,
                    &UserUpdate {
                        name: rename,
                        admin,
                        disabled,
                        password,
                    },
                )
                .await?;
            out.print(&u, |u| users_table(std::slice::from_ref(u)))
        }
        UsersCommand::Delete { name } => {
            c.delete_user(&name).await?;
            out.done(&format!("deleted user {name}"));
            Ok(())
        }
        UsersCommand::Quota {
            name,
            workspaces,
            cpu,
            memory,
            reset,
        } => {
            let q = if reset {
                c.reset_user_quota(&name).await?;
                c.user_quota(&name).await?
            } else if workspaces.is_some() || cpu.is_some() || memory.is_some() {
                let own = c.user_quota(&name).await?.custom;
                let req = QuotaUpdate {
                    max_workspaces: workspaces.or(own.max_workspaces),
                    max_cpu: cpu.or(own.max_cpu),
                    max_memory_bytes: memory.or(own.max_memory_bytes),
                };
                c.set_user_quota(&name, &req).await?
            } else {
                c.user_quota(&name).await?
            };
            out.print(&q, quota_table)
        }
    }
}

async fn me_or(c: &Client, user: Option<String>) -> anyhow::Result<String> {
    match user {
        Some(u) => Ok(u),
        None => Ok(c.me().await?.user.name),
    }
}

async fn tokens(c: &Client, out: &Out, cmd: TokensCommand) -> anyhow::Result<()> {
    match cmd {
        TokensCommand::List { user } => {
            let user = me_or(c, user).await?;
            out.print(&c.tokens(&user).await?, |t| tokens_table(t))
        }
        TokensCommand::Create {
            user,
            note,
            scopes,
            expires_in,
        } => {
            let user = me_or(c, user).await?;
            let scopes = (!scopes.is_empty()).then_some(scopes);
            let t = c
                .create_token(
                    &user,
                    &TokenCreate {
                        note,
                        scopes,
                        expires_in,
                    },
                )
                .await?;
            if out.json {
                println!("{}", serde_json::to_string_pretty(&t)?);
            } else {
                println!("{}\n(shown once: store it now)", t.token);
            }
            Ok(())
        }
        TokensCommand::Revoke { id, user } => {
            let user = me_or(c, user).await?;
            c.delete_token(&user, &id).await?;
            out.done(&format!("revoked token {id}"));
            Ok(())
        }
    }
}

async fn profiles(c: &Client, out: &Out, cmd: ProfilesCommand) -> anyhow::Result<()> {
    match cmd {
        ProfilesCommand::List => out.print(&c.profiles().await?, |p| profiles_table(p)),
        ProfilesCommand::Show { name } => out.print(&c.profile(&name).await?, |p| {
            profiles_table(std::slice::from_ref(p))
        }),
        ProfilesCommand::Create { name, fields } => {
            let u = fields.into_update();
            let Some(display_name) = u.display_name.clone() else {
                bail!("--display-name is required to create a profile");
            };
            let req = ProfileCreate {
                name,
                display_name,
                cpu: u.cpu,
                memory_bytes: u.memory_bytes,
                max_processes: u.max_processes,
                disk_quota_bytes: u.disk_quota_bytes,
                idle_timeout_secs: u.idle_timeout_secs,
                idle_action: u.idle_action,
                max_lifetime_secs: u.max_lifetime_secs,
                cost_per_hour: u.cost_per_hour,
                start_timeout_secs: u.start_timeout_secs,
                app: u.app,
                egress: u.egress,
            };
            out.print(&c.create_profile(&req).await?, |p| {
                profiles_table(std::slice::from_ref(p))
            })
        }
        ProfilesCommand::Update { name, fields } => {
            let p = c.update_profile(&name, &fields.into_update()).await?;
            out.print(&p, |p| profiles_table(std::slice::from_ref(p)))
        }
        ProfilesCommand::Delete { name } => {
            c.delete_profile(&name).await?;
            out.done(&format!("deleted profile {name}"));
            Ok(())
        }
    }
}

async fn workspaces(c: &Client, out: &Out, cmd: WsCommand) -> anyhow::Result<()> {
    let one = |w: &Workspace| workspaces_table(std::slice::from_ref(w));
    match cmd {
        WsCommand::Create {
            name,
            profile,
            owner,
            start,
            wait,
        } => {
            let w = c
                .create_workspace(&WorkspaceCreate {
                    name,
                    profile,
                    owner,
                    start,
                })
                .await?;
            if wait {
                return wait_ready(c, out, &w).await;
            }
            out.print(&w, one)
        }
        WsCommand::List {
            owner,
            state,
            profile,
        } => {
            let mut q = WorkspaceQuery {
                owner,
                state,
                profile,
                ..Default::default()
            };
            let mut all = Vec::new();
            loop {
                let page = c.workspaces(&q).await?;
                all.extend(page.items);
                match page.next {
                    Some(n) => q.after = Some(n),
                    None => break,
                }
            }
            out.print(&all, |w| workspaces_table(w))
        }
        WsCommand::Show(r) => {
            let w = resolve(c, &r).await?;
            if out.json {
                return out.print(&w, one);
            }
            println!("{}", out.table(one(&w)));
            println!(
                "generation {} (observed {})",
                w.generation, w.observed_generation
            );
            if let Some(m) = &w.message {
                println!("message: {m}");
            }
            for cond in &w.conditions {
                println!(
                    "condition {} = {} ({}): {}",
                    cond.kind, cond.status, cond.reason, cond.message
                );
            }
            Ok(())
        }
        WsCommand::Start { ws, wait } => {
            let w = resolve(c, &ws).await?;
            let w = c.start_workspace(&w.id).await?;
            if wait {
                return wait_ready(c, out, &w).await;
            }
            out.print(&w, one)
        }
        WsCommand::Open { ws, no_browser } => {
            let w = resolve(c, &ws).await?;
            let url = c.absolute(&w.url);
            if out.json {
                return out.print(&serde_json::json!({ "url": url }), |_| grid(&[], []));
            }
            println!("{url}");
            if w.state != "running" {
                eprintln!(
                    "{}/{} is {}; its page offers to start it",
                    w.owner, w.name, w.state
                );
            }
            if !no_browser && has_browser() {
                if let Err(e) = open::that_detached(&url) {
                    eprintln!("no browser opened ({e}): open the address above");
                }
            }
            Ok(())
        }
        WsCommand::Logs { ws, follow, tail } => {
            let w = resolve(c, &ws).await?;
            // The first failed write ends the follow (`-f | head` returns).
            let mut failed = None;
            c.logs(&w.id, tail, follow, |chunk| {
                failed = write_out(chunk).err();
                failed.is_none()
            })
            .await?;
            failed.map_or(Ok(()), unless_closed)
        }
        WsCommand::Stop(r) => {
            let w = resolve(c, &r).await?;
            out.print(&c.stop_workspace(&w.id).await?, one)
        }
        WsCommand::Update { ws, profile } => {
            let w = resolve(c, &ws).await?;
            let req = WorkspaceUpdate {
                profile: Some(profile),
            };
            out.print(&c.update_workspace(&w.id, &req).await?, one)
        }
        WsCommand::Delete { ws, keep_files } => {
            let w = resolve(c, &ws).await?;
            out.print(&c.delete_workspace(&w.id, keep_files).await?, one)
        }
        WsCommand::Share { ws, with } => {
            let w = resolve(c, &ws).await?;
            let req = ShareCreate {
                user: with.user,
                group: with.group,
            };
            let s = c.share(&w.id, &req).await?;
            out.print(&s, |s| shares_table(std::slice::from_ref(s)))
        }
        WsCommand::Unshare { ws, with } => {
            let w = resolve(c, &ws).await?;
            let whom = match (with.user, with.group) {
                (Some(u), _) => {
                    c.unshare(&w.id, false, &u).await?;
                    format!("user {u}")
                }
                (_, Some(g)) => {
                    c.unshare(&w.id, true, &g).await?;
                    format!("group {g}")
                }
                _ => {
                    c.unshare_all(&w.id).await?;
                    "anyone".to_owned()
                }
            };
            out.done(&format!(
                "{}/{} is no longer shared with {whom}",
                w.owner, w.name
            ));
            Ok(())
        }
        WsCommand::Shares(r) => {
            let w = resolve(c, &r).await?;
            out.print(&c.shares(&w.id).await?, |s| shares_table(s))
        }
        WsCommand::Shared { user } => {
            let user = me_or(c, user).await?;
            out.print(&c.shared_with(&user).await?, |s| shares_table(s))
        }
    }
}

async fn services(c: &Client, out: &Out, cmd: ServicesCommand) -> anyhow::Result<()> {
    match cmd {
        ServicesCommand::List => {
            let all = c.services().await?;
            out.print(&all, |all| {
                grid(
                    &[Always("NAME"), Always("ADMIN")],
                    all.values().map(|s| {
                        vec![
                            s["name"].as_str().unwrap_or_default().to_owned(),
                            s["admin"].to_string(),
                        ]
                    }),
                )
            })
        }
        ServicesCommand::Create { name, admin } => {
            let token = format!(
                "{}{}",
                model::secret::TOKEN_PREFIX,
                model::secret::random_secret()
            );
            let mut made = c.create_service(&name, admin, &token).await?;
            made["api_token"] = serde_json::Value::String(token.clone());
            if out.json {
                out.print(&made, |_| grid(&[], []))
            } else {
                println!("created service {name}; its token (shown once):\n{token}");
                Ok(())
            }
        }
        ServicesCommand::Delete { name } => {
            c.delete_service(&name).await?;
            out.done(&format!("deleted service {name}"));
            Ok(())
        }
    }
}

async fn groups(c: &Client, out: &Out, cmd: GroupsCommand) -> anyhow::Result<()> {
    let groups_table = |gs: &[Group]| {
        grid(
            &[Always("NAME"), Always("MEMBERS"), Wide("CREATED")],
            gs.iter()
                .map(|g| vec![g.name.clone(), g.members.join(","), when(&g.created)]),
        )
    };
    match cmd {
        GroupsCommand::List => out.print(&c.groups().await?, |g| groups_table(g)),
        GroupsCommand::Create { name, members } => {
            let g = c.create_group(&GroupCreate { name, members }).await?;
            out.print(&g, |g| groups_table(std::slice::from_ref(g)))
        }
        GroupsCommand::Add { name, users } => {
            let g = c.add_group_members(&name, users).await?;
            out.print(&g, |g| groups_table(std::slice::from_ref(g)))
        }
        GroupsCommand::Remove { name, user } => {
            c.remove_group_member(&name, &user).await?;
            out.done(&format!("removed {user} from {name}"));
            Ok(())
        }
        GroupsCommand::Delete { name } => {
            c.delete_group(&name).await?;
            out.done(&format!("deleted group {name}"));
            Ok(())
        }
    }
}
