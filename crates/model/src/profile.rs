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
    Command { argv: Vec<String> },
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

    pub fn validate(&self) -> Result<(), ProfileSpecError> {
        fn check(ok: bool, field: &'static str, reason: &str) -> Result<(), ProfileSpecError> {
            if ok {
                Ok(())
            } else {
                Err(ProfileSpecError {
                    field,
                    reason: reason.to_owned(),
                })
            }
        }
        let d = self.display_name.trim();
        check(
            !d.is_empty() && d.len() <= 100 && !d.chars().any(char::is_control),
            "display_name",
            "must be 1 to 100 printable characters",
        )?;
        check(
            (10..=512_000).contains(&self.cpu_millis),
            "cpu",
            "must be between 0.01 and 512 CPUs",
        )?;
        check(
            (64 * MIB..=16 * 1024 * GIB).contains(&self.memory_bytes),
            "memory_bytes",
            "must be between 64 MiB and 16 TiB",
        )?;
        check(
            (8..=4_194_304).contains(&self.max_processes),
            "max_processes",
            "must be between 8 and 4194304",
        )?;
        check(
            (16 * MIB..=1 << 50).contains(&self.disk_quota_bytes),
            "disk_quota_bytes",
            "must be between 16 MiB and 1 PiB",
        )?;
        let year = 366 * 24 * 3600;
        check(
            self.idle_timeout_secs
                .is_none_or(|s| (60..=year).contains(&s)),
            "idle_timeout_secs",
            "must be between 60 seconds and a year",
        )?;
        check(
            self.max_lifetime_secs
                .is_none_or(|s| (300..=10 * year).contains(&s)),
            "max_lifetime_secs",
            "must be between 5 minutes and 10 years",
        )?;
        check(
            self.cost_per_hour_micros <= 1_000_000_000_000,
            "cost_per_hour",
            "must be between 0 and 1000000",
        )?;
        check(
            (5..=3600).contains(&self.start_timeout_secs),
            "start_timeout_secs",
            "must be between 5 and 3600 seconds",
        )?;
        if let App::Command { argv } = &self.app {
            check(
                !argv.is_empty() && argv.len() <= 256,
                "app.argv",
                "must hold 1 to 256 arguments",
            )?;
            check(
                argv.iter()
                    .all(|a| !a.is_empty() && a.len() <= 4096 && !a.contains('\0')),
                "app.argv",
                "arguments must be non-empty, without NUL, at most 4096 bytes",
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
                    app: App::Command { argv: vec![] },
                    ..std.clone()
                },
                "app.argv",
            ),
            (
                ProfileSpec {
                    app: App::Command {
                        argv: vec!["a\0b".into()],
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
