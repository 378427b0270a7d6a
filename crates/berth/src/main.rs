//! `berth`: the control plane (`serve`) and its command-line client, one binary.

/// mimalloc: fewer cycles per request than the system allocator on the proxy
/// path (measured with benches/proxy.sh).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod cli;
mod config;
mod kubernetes;
mod listen;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "berth",
    version,
    about = "On-demand, isolated development workspaces",
    after_help = "Examples:\n  \
        berth serve                                   run berth here (http://127.0.0.1:8000)\n  \
        berth login -u admin                          log the CLI in\n  \
        berth ws create lab --start --wait            a JupyterLab workspace, started\n  \
        berth ws open lab                             open it in the browser\n  \
        berth completion bash > /etc/bash_completion.d/berth\n\n\
        Each command has its own --help."
)]
struct Args {
    #[command(flatten)]
    global: cli::Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the control plane: API, portal and proxy on one listener.
    #[command(after_help = "Examples:\n  berth serve\n  \
        berth serve --bind 0.0.0.0:8000 --data-dir /var/lib/berth\n  \
        berth serve --config /etc/berth/berth.toml")]
    Serve {
        /// Config file (default: ./berth.toml if it exists).
        #[arg(long, env = "BERTH_CONFIG")]
        config: Option<PathBuf>,
        /// Address to listen on, e.g. 127.0.0.1:8000.
        #[arg(long)]
        bind: Option<std::net::SocketAddr>,
        /// Directory for the SQLite database and workspace files.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// PostgreSQL URL instead of the embedded SQLite.
        #[arg(long)]
        database_url: Option<String>,
        /// Start even though the data dir holds workspaces the database does
        /// not know: stop them, keeping their files (berth refuses otherwise).
        #[arg(long)]
        stop_orphans: bool,
    },
    /// Configuration helpers: the defaults, and the configuration in effect.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print a shell completion script for berth.
    #[command(after_help = "Examples:\n  \
        berth completion bash > /etc/bash_completion.d/berth\n  \
        berth completion zsh > \"${fpath[1]}/_berth\"\n  \
        berth completion fish > ~/.config/fish/completions/berth.fish")]
    Completion {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// berth on Kubernetes: the operator that runs Workspace objects, and
    /// their CustomResourceDefinition.
    #[command(subcommand)]
    Operator(OperatorCommand),
    /// Tasks run on the server's machine, against its database directly.
    #[command(subcommand)]
    Admin(AdminCommand),
    #[command(flatten)]
    Client(cli::ClientCommand),
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print a commented example berth.toml with the defaults.
    Default,
    /// Print the effective configuration (secrets redacted), after validation.
    Show {
        /// Config file (default: ./berth.toml if it exists).
        #[arg(long, env = "BERTH_CONFIG")]
        config: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum OperatorCommand {
    /// Run the operator (reconcile Workspaces into Pods, claims, Services and
    /// NetworkPolicies) while this process holds the Lease, until SIGTERM.
    /// `berth serve` with runtime = "kubernetes" runs it too, unless
    /// kubernetes.operator = false.
    #[command(
        after_help = "Examples:\n  berth operator run --config /etc/berth/berth.toml\n  \
        BERTH_KUBERNETES__NAMESPACE=workspaces berth operator run"
    )]
    Run {
        /// Config file (default: ./berth.toml if it exists); its [kubernetes] section.
        #[arg(long, env = "BERTH_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Print the Workspace CustomResourceDefinition (YAML), for `kubectl apply -f -`.
    #[command(after_help = "Examples:\n  berth operator crd | kubectl apply -f -")]
    Crd,
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Set a user's password (a lost admin password, too), whether `berth
    /// serve` runs or not; their sessions end. Prints a new random password
    /// unless one comes on stdin.
    #[command(after_help = "Examples:\n  berth admin reset-password admin\n  \
        berth admin reset-password ada --data-dir /var/lib/berth --password-stdin <<< \"$PW\"")]
    ResetPassword {
        /// The user.
        name: String,
        /// Read the new password from the first line of stdin.
        #[arg(long)]
        password_stdin: bool,
        /// The server's config file (default: ./berth.toml if it exists).
        #[arg(long, env = "BERTH_CONFIG")]
        config: Option<PathBuf>,
        /// The server's data directory, as `berth serve` was given it.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// The server's PostgreSQL URL, if it uses one.
        #[arg(long)]
        database_url: Option<String>,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match args.command {
        Command::Serve {
            config,
            bind,
            data_dir,
            database_url,
            stop_orphans,
        } => {
            let overrides = config::Overrides {
                bind: bind.map(|b| b.to_string()),
                data_dir,
                database_url,
            };
            config::Config::load(config.as_deref(), &overrides).and_then(|cfg| {
                serve::init_tracing(&cfg);
                tokio::runtime::Runtime::new()?.block_on(serve::run(cfg, stop_orphans))
            })
        }
        Command::Completion { shell } => {
            use clap::CommandFactory;
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Args::command(), "berth", &mut script);
            cli::emit(&script)
        }
        Command::Config(ConfigCommand::Default) => {
            print!("{}", config::EXAMPLE);
            Ok(())
        }
        Command::Config(ConfigCommand::Show { config }) => {
            config::Config::load(config.as_deref(), &config::Overrides::default()).and_then(|c| {
                print!("{}", toml::to_string(&c)?);
                Ok(())
            })
        }
        Command::Operator(OperatorCommand::Crd) => {
            print!("{}", runtime_kube::crd::crd_yaml());
            Ok(())
        }
        Command::Operator(OperatorCommand::Run { config }) => {
            config::Config::load(config.as_deref(), &config::Overrides::default()).and_then(|cfg| {
                serve::init_tracing(&cfg);
                tokio::runtime::Runtime::new()?.block_on(kubernetes::run_operator(cfg))
            })
        }
        Command::Admin(AdminCommand::ResetPassword {
            name,
            password_stdin,
            config,
            data_dir,
            database_url,
        }) => {
            let overrides = config::Overrides {
                bind: None,
                data_dir,
                database_url,
            };
            config::Config::load(config.as_deref(), &overrides).and_then(|cfg| {
                tokio::runtime::Runtime::new()?.block_on(serve::reset_password(
                    &cfg,
                    &name,
                    password_stdin,
                ))
            })
        }
        Command::Client(cmd) => tokio::runtime::Runtime::new()
            .map_err(anyhow::Error::from)
            .and_then(|rt| rt.block_on(cli::run(cmd, args.global))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every command and every flag or argument of every command, with the
    /// path of commands leading to it.
    fn walk(cmd: &clap::Command, path: &str, each: &mut dyn FnMut(&str, &clap::Command)) {
        each(path, cmd);
        for sub in cmd.get_subcommands() {
            walk(sub, &format!("{path} {}", sub.get_name()), each);
        }
    }

    #[test]
    fn every_command_and_flag_says_what_it_is_for() {
        let mut cmd = super::Args::command();
        cmd.build();
        let mut missing = Vec::new();
        let mut commands = 0;
        walk(&cmd, "berth", &mut |path, c| {
            commands += 1;
            if c.get_about()
                .is_none_or(|a| a.to_string().trim().is_empty())
            {
                missing.push(path.to_owned());
            }
            for arg in c.get_arguments() {
                let id = arg.get_id().as_str();
                if ["help", "version"].contains(&id) {
                    continue;
                }
                if arg
                    .get_help()
                    .is_none_or(|h| h.to_string().trim().is_empty())
                {
                    missing.push(format!("{path} <{id}>"));
                }
            }
        });
        assert!(commands > 50, "{commands} commands walked");
        assert!(missing.is_empty(), "no help text: {missing:#?}");
    }

    #[test]
    fn the_command_tree_is_consistent() {
        super::Args::command().debug_assert();
    }
}
