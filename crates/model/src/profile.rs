//! Profiles: the resource and policy templates a workspace is created from.

use serde::{Deserialize, Serialize};

use crate::{Millis, Name};

/// The app a workspace launches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum App {
    /// JupyterLab via `jupyterhub-singleuser` from berth's managed Python environment.
    Jupyterlab,
    /// Any command; it must serve HTTP at its base URL (`$JUPYTERHUB_SERVICE_PREFIX`).
    /// Its arguments may hold [`PLACEHOLDERS`], filled in at each start.
    /// With `strip_prefix`, the proxy removes the base URL from each request's
    /// path (and puts it back on redirects), for apps that serve at `/`.
    Command {
        argv: Vec<String>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        strip_prefix: bool,
    },
}

impl App {
    /// Whether the proxy serves the app at `/` (the base URL removed).
    pub fn strip_prefix(&self) -> bool {
        matches!(
            self,
            App::Command {
                strip_prefix: true,
                ..
            }
        )
    }
}

/// The `{name}`s a command's arguments may hold, and what each becomes; `{{`
/// and `}}` stand for literal braces before or after a placeholder's name
/// (`{{port}}` is the text `{port}`). Any other brace is left as it is, so
/// shell and Python code need no escaping.
pub const PLACEHOLDERS: &[(&str, &str)] = &[
    ("port", "the port the app must listen on (also $PORT)"),
    (
        "base_url",
        "the URL prefix it serves under, /user/{username}/{servername}/ (also $JUPYTERHUB_SERVICE_PREFIX)",
    ),
    ("username", "the workspace owner's name (also $JUPYTERHUB_USER)"),
    ("servername", "the workspace's name"),
    ("home", "the home directory, /home/{username} (also $HOME)"),
];

/// What a start fills a command's placeholders with.
#[derive(Debug, Clone)]
pub struct CommandVars<'a> {
    pub port: u16,
    pub base_url: &'a str,
    pub username: &'a str,
    pub servername: &'a str,
    pub home: &'a str,
}

impl CommandVars<'_> {
    fn get(&self, name: &str) -> Option<String> {
        Some(match name {
            "port" => self.port.to_string(),
            "base_url" => self.base_url.to_owned(),
            "username" => self.username.to_owned(),
            "servername" => self.servername.to_owned(),
            "home" => self.home.to_owned(),
            _ => return None,
        })
    }

    /// `arg` with each `{placeholder}` replaced, and `{{placeholder}}` made
    /// the literal `{placeholder}`.
    pub fn fill(&self, arg: &str) -> String {
        let mut out = String::with_capacity(arg.len());
        let mut rest = arg;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let tail = &rest[open..];
            let escaped = placeholder_at(tail.strip_prefix("{{").unwrap_or(""))
                .filter(|(_, after)| after.starts_with('}'))
                .map(|(name, _)| name);
            if let Some(name) = escaped {
                out.push('{');
                out.push_str(name);
                out.push('}');
                rest = &tail[name.len() + 4..];
            } else if let Some((value, len)) = placeholder_at(&tail[1..])
                .and_then(|(name, _)| Some((self.get(name)?, name.len() + 2)))
            {
                out.push_str(&value);
                rest = &tail[len..];
            } else {
                out.push('{');
                rest = &tail[1..];
            }
        }
        out.push_str(rest);
        out
    }
}

/// The placeholder name at the start of `s` (after its `{`) if `s` goes on
/// with `name}`; the name and what follows its `}`.
fn placeholder_at(s: &str) -> Option<(&str, &str)> {
    let (name, after) = s.split_once('}')?;
    PLACEHOLDERS
        .iter()
        .any(|(known, _)| *known == name)
        .then_some((name, after))
}

/// What the culler does with a workspace idle past its profile's timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdleAction {
    /// Stop its processes; files stay.
    Stop,
    /// Freeze its processes; memory stays held, resuming is instant.
    Pause,
}

impl IdleAction {
    pub const ALL: &'static [IdleAction] = &[IdleAction::Stop, IdleAction::Pause];

    pub fn as_str(self) -> &'static str {
        match self {
            IdleAction::Stop => "stop",
            IdleAction::Pause => "pause",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "stop" => Some(IdleAction::Stop),
            "pause" => Some(IdleAction::Pause),
            _ => None,
        }
    }
}

/// What a profile specifies; validated by [`ProfileSpec::validate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileSpec {
    pub display_name: String,
    /// CPU in thousandths of a core (2000 = 2 CPUs).
    pub cpu_millis: u64,
    pub memory_bytes: u64,
    pub max_processes: u64,
    pub disk_quota_bytes: u64,
    /// Hibernate after this long without activity; `None` never.
    pub idle_timeout_secs: Option<u64>,
    pub idle_action: IdleAction,
    /// Delete the workspace this long after creation; `None` never.
    pub max_lifetime_secs: Option<u64>,
    /// Cost per running hour in millionths of the currency unit.
    pub cost_per_hour_micros: u64,
    pub start_timeout_secs: u64,
    pub app: App,
    /// Whether the workspace may reach the network beyond berth's own API.
    pub egress: bool,
}

/// A stored profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub id: String,
    pub name: Name,
    pub spec: ProfileSpec,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// A field of a profile that is out of range; `field` names it as on the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ProfileSpecError {
    pub field: &'static str,
    pub reason: String,
}

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

impl ProfileSpec {
    /// The embedded default: Standard, 2 CPU / 8 GiB, JupyterLab.
    pub fn standard() -> Self {
        ProfileSpec {
            display_name: "Standard (2 CPU, 8 GiB)".into(),
            cpu_millis: 2000,
            memory_bytes: 8 * GIB,
            max_processes: 1024,
            disk_quota_bytes: 20 * GIB,
            idle_timeout_secs: Some(3600),
            idle_action: IdleAction::Stop,
            max_lifetime_secs: None,
            cost_per_hour_micros: 0,
            start_timeout_secs: 120,
            app: App::Jupyterlab,
            egress: true,
        }
    }

    /// The first of [`ProfileSpec::problems`], if any.
    pub fn validate(&self) -> Result<(), ProfileSpecError> {
        match self.problems().into_iter().next() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Every field out of range, each with its allowed range, in field order.
    pub fn problems(&self) -> Vec<ProfileSpecError> {
        let mut problems = Vec::new();
        let mut check = |ok: bool, field: &'static str, reason: &str| {
            if !ok {
                problems.push(ProfileSpecError {
                    field,
                    reason: reason.to_owned(),
                });
            }
        };
        let d = self.display_name.trim();
        check(
            !d.is_empty() && d.len() <= 100 && !d.chars().any(char::is_control),
            "display_name",
            "must be 1 to 100 printable characters",
        );
        check(
            (10..=512_000).contains(&self.cpu_millis),
            "cpu",
            "must be between 0.01 and 512 CPUs",
        );
        check(
            (64 * MIB..=16 * 1024 * GIB).contains(&self.memory_bytes),
            "memory_bytes",
            "must be between 64 MiB and 16 TiB",
        );
        check(
            (8..=4_194_304).contains(&self.max_processes),
            "max_processes",
            "must be between 8 and 4194304",
        );
        check(
            (16 * MIB..=1 << 50).contains(&self.disk_quota_bytes),
            "disk_quota_bytes",
            "must be between 16 MiB and 1 PiB",
        );
        let year = 366 * 24 * 3600;
        check(
            self.idle_timeout_secs
                .is_none_or(|s| (60..=year).contains(&s)),
            "idle_timeout_secs",
            "must be between 60 seconds and a year",
        );
        check(
            self.max_lifetime_secs
                .is_none_or(|s| (300..=10 * year).contains(&s)),
            "max_lifetime_secs",
            "must be between 5 minutes and 10 years",
        );
        check(
            self.cost_per_hour_micros <= 1_000_000_000_000,
            "cost_per_hour",
            "must be between 0 and 1000000",
        );
        check(
            (5..=3600).contains(&self.start_timeout_secs),
            "start_timeout_secs",
            "must be between 5 and 3600 seconds",
        );
        if let App::Command { argv, .. } = &self.app {
            check(
                !argv.is_empty() && argv.len() <= 256,
                "app.argv",
                "must hold 1 to 256 arguments",
            );
            check(
                argv.iter()
                    .all(|a| !a.is_empty() && a.len() <= 4096 && !a.contains('\0')),
                "app.argv",
                "arguments must be non-empty, without NUL, at most 4096 bytes",
            );
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_and_other_braces_kept() {
        let vars = CommandVars {
            port: 8888,
            base_url: "/user/alice/lab/",
            username: "alice",
            servername: "lab",
            home: "/home/alice",
        };
        let cases = [
            ("--port={port}", "--port=8888"),
            (
                "{base_url}x{username}{servername}",
                "/user/alice/lab/xalicelab",
            ),
            ("{home}/.cache", "/home/alice/.cache"),
            ("{{port}}", "{port}"),
            ("awk '{print $1}' ${HOME} {}", "awk '{print $1}' ${HOME} {}"),
            ("{nope} {port", "{nope} {port"),
            ("{", "{"),
            ("é{port}é", "é8888é"),
        ];
        for (arg, want) in cases {
            assert_eq!(vars.fill(arg), want, "{arg}");
        }
    }

    #[test]
    fn standard_is_valid_and_bounds_are_enforced() {
        let std = ProfileSpec::standard();
        std.validate().unwrap();
        let cases: Vec<(ProfileSpec, &str)> = vec![
            (
                ProfileSpec {
                    cpu_millis: 0,
                    ..std.clone()
                },
                "cpu",
            ),
            (
                ProfileSpec {
                    memory_bytes: 1,
                    ..std.clone()
                },
                "memory_bytes",
            ),
            (
                ProfileSpec {
                    max_processes: 1,
                    ..std.clone()
                },
                "max_processes",
            ),
            (
                ProfileSpec {
                    display_name: " ".into(),
                    ..std.clone()
                },
                "display_name",
            ),
            (
                ProfileSpec {
                    idle_timeout_secs: Some(1),
                    ..std.clone()
                },
                "idle_timeout_secs",
            ),
            (
                ProfileSpec {
                    app: App::Command {
                        argv: vec![],
                        strip_prefix: false,
                    },
                    ..std.clone()
                },
                "app.argv",
            ),
            (
                ProfileSpec {
                    app: App::Command {
                        argv: vec!["a\0b".into()],
                        strip_prefix: false,
                    },
                    ..std.clone()
                },
                "app.argv",
            ),
        ];
        for (spec, field) in cases {
            assert_eq!(spec.validate().unwrap_err().field, field);
        }
    }
}
