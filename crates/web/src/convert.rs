//! Conversions between domain types (`model`) and wire types (`api-types`).

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use model::{IdleAction, Millis, ProfileSpec};

use crate::error::{ApiError, Code};

pub fn time(ms: Millis) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

pub fn opt_time(ms: Option<Millis>) -> Option<String> {
    ms.map(time)
}

/// Parses an RFC 3339 time from a query parameter.
pub fn parse_time(field: &str, s: &str) -> Result<Millis, ApiError> {
    OffsetDateTime::parse(s, &Rfc3339)
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as Millis)
        .map_err(|e| {
            ApiError::new(
                Code::InvalidQuery,
                format!("{field}: not an RFC 3339 time: {e}"),
            )
        })
}

pub fn user(u: &model::User, groups: Vec<model::Name>) -> api_types::User {
    api_types::User {
        name: u.name.to_string(),
        admin: u.is_admin,
        disabled: u.disabled,
        groups: groups.into_iter().map(|g| g.to_string()).collect(),
        created: time(u.created_at),
        last_activity: opt_time(u.last_activity),
    }
}

pub fn group(g: &model::Group) -> api_types::Group {
    api_types::Group {
        name: g.name.to_string(),
        members: g.members.iter().map(|m| m.to_string()).collect(),
        created: time(g.created_at),
    }
}

pub fn token(t: &model::Token) -> api_types::Token {
    api_types::Token {
        id: t.id.to_string(),
        prefix: t.prefix.clone(),
        note: t.note.clone(),
        scopes: t.scopes.to_strings(),
        created: time(t.created_at),
        expires_at: opt_time(t.expires_at),
        last_used: opt_time(t.last_used_at),
    }
}

fn app_to_wire(a: &model::App) -> api_types::App {
    match a {
        model::App::Jupyterlab => api_types::App::Jupyterlab,
        model::App::Command { argv, strip_prefix } => api_types::App::Command {
            argv: argv.clone(),
            strip_prefix: *strip_prefix,
        },
    }
}

fn app_from_wire(a: api_types::App) -> model::App {
    match a {
        api_types::App::Jupyterlab => model::App::Jupyterlab,
        api_types::App::Command { argv, strip_prefix } => {
            model::App::Command { argv, strip_prefix }
        }
    }
}

pub fn profile(p: &model::Profile) -> api_types::Profile {
    let s = &p.spec;
    api_types::Profile {
        name: p.name.to_string(),
        display_name: s.display_name.clone(),
        cpu: s.cpu_millis as f64 / 1000.0,
        memory_bytes: s.memory_bytes,
        max_processes: s.max_processes,
        disk_quota_bytes: s.disk_quota_bytes,
        idle_timeout_secs: s.idle_timeout_secs,
        idle_action: s.idle_action.as_str().to_owned(),
        max_lifetime_secs: s.max_lifetime_secs,
        cost_per_hour: s.cost_per_hour_micros as f64 / 1e6,
        start_timeout_secs: s.start_timeout_secs,
        app: app_to_wire(&s.app),
        egress: s.egress,
        created: time(p.created_at),
        updated: time(p.updated_at),
    }
}

fn scaled(v: f64, scale: f64) -> Option<u64> {
    (v.is_finite() && v >= 0.0 && v * scale <= 9.0e15).then(|| (v * scale).round() as u64)
}

/// `0` on the wire means "never" for the optional durations.
fn never_if_zero(v: u64) -> Option<u64> {
    (v != 0).then_some(v)
}

/// Applies the fields of a create or update body onto `base`, then validates:
/// every field in error at once.
pub fn apply_profile(
    base: ProfileSpec,
    u: api_types::ProfileUpdate,
) -> Result<ProfileSpec, ApiError> {
    let mut s = base;
    let mut errors: Vec<(String, String)> = Vec::new();
    let mut error = |field: &str, why: &str| errors.push((field.to_owned(), why.to_owned()));
    if let Some(v) = u.display_name {
        s.display_name = v;
    }
    if let Some(v) = u.cpu {
        match scaled(v, 1000.0) {
            Some(m) => s.cpu_millis = m,
            None => error("cpu", "must be between 0.01 and 512 CPUs"),
        }
    }
    if let Some(v) = u.memory_bytes {
        s.memory_bytes = v;
    }
    if let Some(v) = u.max_processes {
        s.max_processes = v;
    }
    if let Some(v) = u.disk_quota_bytes {
        s.disk_quota_bytes = v;
    }
    if let Some(v) = u.idle_timeout_secs {
        s.idle_timeout_secs = never_if_zero(v);
    }
    if let Some(v) = u.idle_action {
        match IdleAction::parse(&v) {
            Some(a) => s.idle_action = a,
            None => error("idle_action", "must be stop or pause"),
        }
    }
    if let Some(v) = u.max_lifetime_secs {
        s.max_lifetime_secs = never_if_zero(v);
    }
    if let Some(v) = u.cost_per_hour {
        match scaled(v, 1e6) {
            Some(m) => s.cost_per_hour_micros = m,
            None => error("cost_per_hour", "must be between 0 and 1000000"),
        }
    }
    if let Some(v) = u.start_timeout_secs {
        s.start_timeout_secs = v;
    }
    if let Some(v) = u.app {
        s.app = app_from_wire(v);
    }
    if let Some(v) = u.egress {
        s.egress = v;
    }
    for p in s.problems() {
        error(p.field, &p.reason);
    }
    if errors.is_empty() {
        Ok(s)
    } else {
        Err(ApiError::invalid_fields(errors))
    }
}

pub fn create_to_update(c: api_types::ProfileCreate) -> api_types::ProfileUpdate {
    api_types::ProfileUpdate {
        display_name: Some(c.display_name),
        cpu: c.cpu,
        memory_bytes: c.memory_bytes,
        max_processes: c.max_processes,
        disk_quota_bytes: c.disk_quota_bytes,
        idle_timeout_secs: c.idle_timeout_secs,
        idle_action: c.idle_action,
        max_lifetime_secs: c.max_lifetime_secs,
        cost_per_hour: c.cost_per_hour,
        start_timeout_secs: c.start_timeout_secs,
        app: c.app,
        egress: c.egress,
    }
}

pub fn workspace(w: &model::Workspace) -> api_types::Workspace {
    api_types::Workspace {
        id: w.id.to_string(),
        name: w.name.to_string(),
        owner: w.owner.to_string(),
        profile: w.spec.profile.to_string(),
        desired_state: w.spec.desired.as_str().to_owned(),
        state: w.status.state.as_str().to_owned(),
        message: w.status.message.clone(),
        conditions: w
            .status
            .conditions
            .iter()
            .map(|c| api_types::Condition {
                kind: c.kind.as_str().to_owned(),
                status: c.status,
                reason: c.reason.clone(),
                message: c.message.clone(),
                at: time(c.at),
            })
            .collect(),
        generation: w.generation,
        observed_generation: w.observed_generation,
        url: model::hub::base_url(&w.owner, &w.name),
        created: time(w.created_at),
        updated: time(w.updated_at),
        last_activity: opt_time(w.last_activity),
        deletion_requested_at: opt_time(w.deletion_requested_at),
        keep_files: w.keep_files,
    }
}

pub fn audit(r: &model::AuditRecord) -> api_types::AuditRecord {
    let a = &r.entry;
    api_types::AuditRecord {
        id: r.id.clone(),
        at: time(r.at),
        actor: a.actor.clone(),
        action: a.action.as_str().to_owned(),
        target_type: a.target_type.clone(),
        target: a.target.clone(),
        outcome: a.outcome.as_str().to_owned(),
        source: a.source.clone(),
        request_id: a.request_id.clone(),
        detail: a.detail.clone(),
    }
}

/// A share, with its workspace if at hand (for `ready`).
pub fn share(s: &model::Share, ws: Option<&model::Workspace>) -> api_types::Share {
    let (user, group) = match &s.with {
        model::ShareWith::User(u) => (Some(u.to_string()), None),
        model::ShareWith::Group(g) => (None, Some(g.to_string())),
    };
    api_types::Share {
        workspace_id: s.workspace_id.to_string(),
        owner: s.owner.to_string(),
        workspace: s.workspace.to_string(),
        user,
        group,
        url: model::hub::base_url(&s.owner, &s.workspace),
        ready: ws.is_some_and(|w| w.status.state == model::WorkspaceState::Running),
        created: time(s.created_at),
    }
}
