//! The client verbs: `berth login`, `users`, `tokens`, `profiles`, `ws`, `groups`,
//! `audit`. Human tables by default, `--json` for scripts; every error is a clear
//! message on stderr and a non-zero exit.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

use anyhow::{bail, Context};
use api_types::*;
use clap::{Args, Subcommand};
use client::{AuditQuery, Client, WorkspaceQuery};
use comfy_table::{presets::UTF8_BORDERS_ONLY, Table};
use serde::{Deserialize, Serialize};

const DEFAULT_URL: &str = "http://127.0.0.1:8000";

/// Options every client verb takes.
#[derive(Debug, Args)]
pub struct Global {
    /// berth's URL (default: the one `berth login` stored, else http://127.0.0.1:8000).
    #[arg(long, global = true, env = "BERTH_URL")]
    url: Option<String>,
    /// API token (default: the one `berth login` stored).
    #[arg(long, global = true, env = "BERTH_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Log in with a password and store an API token for the other verbs.
    Login {
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
    #[command(subcommand)]
    Users(UsersCommand),
    #[command(subcommand)]
    Tokens(TokensCommand),
    #[command(subcommand)]
    Profiles(ProfilesCommand),
    /// Workspaces.
    #[command(subcommand)]
    Ws(WsCommand),
    #[command(subcommand)]
    Groups(GroupsCommand),
    /// Services: tools' own identities and tokens, as JupyterHub's (admins).
    #[command(subcommand)]
    Services(ServicesCommand),
    /// The audit log, newest first (admins).
    Audit {
        #[arg(long)]
        user: Option<String>,
        /// An action (workspace.create) or a family (workspace).
        #[arg(long)]
        action: Option<String>,
        /// RFC 3339 time, e.g. 2026-11-01T00:00:00Z.
        #[arg(long)]
        since: Option<String>,
        #[arg(long)]
        until: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    List,
    Show {
        name: String,
    },
    Create {
        name: String,
        #[arg(long)]
        admin: bool,
        /// Read the password from stdin; without it the account has no password.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Rename, change the admin flag, disable or enable, or set a new password.
    Set {
        name: String,
        /// A new name; the user's workspaces (stopped), files, tokens, groups
        /// and shares follow.
        #[arg(long = "rename", value_name = "NEW_NAME")]
        rename: Option<String>,
        #[arg(long)]
        admin: Option<bool>,
        #[arg(long)]
        disabled: Option<bool>,
        #[arg(long)]
        password_stdin: bool,
    },
    Delete {
        name: String,
    },
    /// Show a user's quota and use; with limits, give the user those of their
    /// own (admins; the limits not given stay as they are).
    Quota {
        name: String,
        /// Workspaces held at most.
        #[arg(long)]
        workspaces: Option<u64>,
        /// CPUs running at most, e.g. 8 or 0.5.
        #[arg(long)]
        cpu: Option<f64>,
        /// Memory running at most, e.g. 32GiB.
        #[arg(long)]
        memory: Option<bytesize::ByteSize>,
        /// Give the user the default quota again.
        #[arg(long, conflicts_with_all = ["workspaces", "cpu", "memory"])]
        reset: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    List {
        /// Whose tokens (default: yours).
        #[arg(long)]
        user: Option<String>,
    },
    /// Create a token; it is printed once.
    Create {
        #[arg(long)]
        user: Option<String>,
        #[arg(long, default_value = "")]
        note: String,
        /// A scope (repeatable); default: all of yours.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Lifetime in seconds.
        #[arg(long)]
        expires_in: Option<u64>,
    },
    Revoke {
        id: String,
        #[arg(long)]
        user: Option<String>,
    },
}

/// The settable fields of a profile.
#[derive(Debug, Args)]
pub struct ProfileFields {
    #[arg(long)]
    display_name: Option<String>,
    /// CPUs, e.g. 2 or 0.5.
    #[arg(long)]
    cpu: Option<f64>,
    /// Memory, e.g. 8GiB.
    #[arg(long)]
    memory: Option<bytesize::ByteSize>,
    #[arg(long)]
    max_processes: Option<u64>,
    /// Disk quota, e.g. 20GiB.
    #[arg(long)]
    disk: Option<bytesize::ByteSize>,
    /// Seconds without activity before hibernation; 0 = never.
    #[arg(long)]
    idle_timeout: Option<u64>,
    /// What hibernation does: stop (the default) or pause.
    #[arg(long, value_parser = ["stop", "pause"])]
    idle_action: Option<String>,
    /// Seconds after creation before deletion; 0 = never.
    #[arg(long)]
    max_lifetime: Option<u64>,
    #[arg(long)]
    cost_per_hour: Option<f64>,
    #[arg(long)]
    start_timeout: Option<u64>,
    /// Launch JupyterLab.
    #[arg(long, conflicts_with = "command")]
    jupyterlab: bool,
    /// Whether workspaces may reach the network beyond berth's API: true or false.
    #[arg(long)]
    egress: Option<bool>,
    /// With --command: the app serves at / and the proxy strips the
    /// workspace's URL prefix from requests (for any plain web server).
    #[arg(long, requires = "command")]
    strip_prefix: bool,
    /// Launch this command instead (all remaining arguments; put it last).
    /// {port}, {base_url}, {username}, {servername} and {home} are filled in.
    #[arg(long, num_args = 1.., allow_hyphen_values = true)]
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
            memory_bytes: self.memory.map(|b| b.as_u64()),
            max_processes: self.max_processes,
            disk_quota_bytes: self.disk.map(|b| b.as_u64()),
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
pub enum ProfilesCommand {
    List,
    Show {
        name: String,
    },
    Create {
        name: String,
        #[command(flatten)]
        fields: ProfileFields,
    },
    Update {
        name: String,
        #[command(flatten)]
        fields: ProfileFields,
    },
    Delete {
        name: String,
    },
}

/// Which workspace: a name (yours, or `--owner`'s) or an id.
#[derive(Debug, Args)]
pub struct WsRef {
    /// Workspace name or id.
    workspace: String,
    /// The owner, when naming another user's workspace (admins).
    #[arg(long)]
    owner: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum WsCommand {
    Create {
        name: String,
        #[arg(long)]
        profile: Option<String>,
        #[arg(long)]
        owner: Option<String>,
        /// Start it right away.
        #[arg(long)]
        start: bool,
        /// With --start: print the start's steps and the app's first output,
        /// and return once it is ready (exit status 1 if the start fails).
        #[arg(long, requires = "start")]
        wait: bool,
    },
    List {
        #[arg(long)]
        owner: Option<String>,
        #[arg(long)]
        state: Option<String>,
        #[arg(long)]
        profile: Option<String>,
    },
    Show(WsRef),
    Start {
        #[command(flatten)]
        ws: WsRef,
        /// Print the start's steps and the app's first output, and return once
        /// it is ready (exit status 1 if the start fails).
        #[arg(long)]
        wait: bool,
    },
    Stop(WsRef),
    /// Change the profile (applied at the next start).
    Update {
        #[command(flatten)]
        ws: WsRef,
        #[arg(long)]
        profile: String,
    },
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
        #[arg(long)]
        user: Option<String>,
    },
}

/// Whom to share with: exactly one of a user and a group.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct ShareTarget {
    /// A user's name.
    #[arg(long)]
    user: Option<String>,
    /// A group's name: its members, as they come and go.
    #[arg(long)]
    group: Option<String>,
}

/// Which share to revoke: a user's, a group's, or all.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct UnshareTarget {
    /// The share with this user.
    #[arg(long)]
    user: Option<String>,
    /// The share with this group.
    #[arg(long)]
    group: Option<String>,
    /// Every share of the workspace.
    #[arg(long)]
    all: bool,
}

#[derive(Debug, Subcommand)]
pub enum GroupsCommand {
    List,
    Create { name: String, members: Vec<String> },
    Add { name: String, users: Vec<String> },
    Remove { name: String, user: String },
    Delete { name: String },
}

#[derive(Debug, Subcommand)]
pub enum ServicesCommand {
    List,
    /// Create a service and print its token, once: give it to the tool as
    /// `JUPYTERHUB_API_TOKEN`.
    Create {
        name: String,
        /// Acts as an admin (as the idle culler must); else it can only
        /// identify itself.
        #[arg(long)]
        admin: bool,
    },
    /// Delete a service; its token stops working at once.
    Delete {
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
}

impl Out {
    fn print<T: Serialize>(
        &self,
        value: &T,
        table: impl FnOnce(&T) -> Table,
    ) -> anyhow::Result<()> {
        if self.json {
            println!("{}", serde_json::to_string_pretty(value)?);
        } else {
            println!("{}", table(value));
        }
        Ok(())
    }

    fn done(&self, what: &str) {
        if !self.json {
            println!("{what}");
        }
    }
}

fn table(header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_BORDERS_ONLY).set_header(header.to_vec());
    for r in rows {
        t.add_row(r);
    }
    t
}

fn opt(s: &Option<String>) -> String {
    s.clone().unwrap_or_else(|| "-".into())
}

fn users_table(users: &[User]) -> Table {
    table(
        &["NAME", "ADMIN", "DISABLED", "GROUPS", "CREATED"],
        users.iter().map(|u| {
            vec![
                u.name.clone(),
                u.admin.to_string(),
                u.disabled.to_string(),
                u.groups.join(","),
                u.created.clone(),
            ]
        }),
    )
}

fn quota_table(q: &UserQuota) -> Table {
    let mem = |b: u64| bytesize::ByteSize(b).to_string_as(true);
    let own = |set: bool| if set { "own" } else { "default" }.to_owned();
    let (l, d, u, c) = (&q.limits, &q.default, &q.used, &q.custom);
    table(
        &["", "IN USE", "LIMIT", "FROM", "DEFAULT"],
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

fn tokens_table(tokens: &[Token]) -> Table {
    table(
        &["ID", "PREFIX", "NOTE", "SCOPES", "EXPIRES", "LAST USED"],
        tokens.iter().map(|t| {
            vec![
                t.id.clone(),
                t.prefix.clone(),
                t.note.clone(),
                t.scopes.join(" "),
                opt(&t.expires_at),
                opt(&t.last_used),
            ]
        }),
    )
}

fn profiles_table(profiles: &[Profile]) -> Table {
    let secs = |s: Option<u64>| s.map(|s| format!("{s}s")).unwrap_or_else(|| "never".into());
    table(
        &[
            "NAME",
            "DISPLAY NAME",
            "CPU",
            "MEMORY",
            "DISK",
            "IDLE",
            "LIFETIME",
            "COST/H",
            "EGRESS",
            "APP",
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

fn workspaces_table(ws: &[Workspace]) -> Table {
    table(
        &["NAME", "OWNER", "PROFILE", "DESIRED", "STATE", "URL", "ID"],
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

fn shares_table(shares: &[Share]) -> Table {
    table(
        &["WORKSPACE", "WITH", "READY", "URL", "SINCE"],
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
                s.created.clone(),
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
    let out = Out { json: g.json };
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
                table(
                    &["USER", "ADMIN", "VIA", "SCOPES"],
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
                table(
                    &["AT", "ACTOR", "ACTION", "TARGET", "OUTCOME", "FROM"],
                    items.iter().map(|a| {
                        vec![
                            a.at.clone(),
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
                    max_memory_bytes: memory.map(|m| m.as_u64()).or(own.max_memory_bytes),
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
            println!("{}", one(&w));
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
                table(
                    &["NAME", "ADMIN"],
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
                out.print(&made, |_| table(&[], []))
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
        table(
            &["NAME", "MEMBERS", "CREATED"],
            gs.iter()
                .map(|g| vec![g.name.clone(), g.members.join(","), g.created.clone()]),
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
