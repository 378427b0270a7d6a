//! One workspace's page: its state history and conditions, the tail of its app's
//! log, what it uses now against its limits, its address, its cost so far, and
//! what happens to it next.

use std::collections::HashMap;

use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;

use model::{
    now_millis, Condition, DesiredState, IdleAction, Millis, Profile, Scope, ShareWith, Workspace,
    WorkspaceState,
};

use super::format::{span_secs, when};
use super::home::{view, WorkspaceView};
use super::{FormErrors, Viewer};
use web::error::ApiResult;
use web::AppState;

/// How much of the app's log the page shows.
const LOG_TAIL_BYTES: usize = 16 * 1024;

/// The share form as it was posted (kept when it comes back with errors).
#[derive(Debug, Default, Serialize)]
pub(super) struct ShareForm {
    pub kind: String,
    pub name: String,
    pub errors: FormErrors,
}

/// `workspace.html`: one workspace and what is known of it.
#[derive(Debug, Serialize)]
struct WorkspacePage<'a> {
    title: String,
    nav: &'static str,
    ws: WorkspaceView,
    cost_micros: u64,
    history: Vec<HistoryRow<'a>>,
    conditions: &'a [Condition],
    /// The tail of the app's log, for those who may manage it.
    log: Option<String>,
    may_manage: bool,
    may_share: bool,
    shares: Vec<ShareRow<'a>>,
    share: ShareForm,
    usage: Option<Usage>,
    disk: Option<DiskUse>,
    next_events: Vec<String>,
    idle: Option<String>,
    limits: Option<Limits>,
}

/// One change of state in a workspace's history.
#[derive(Debug, Serialize)]
struct HistoryRow<'a> {
    at: Millis,
    state: &'static str,
    message: &'a str,
}

/// Whom a workspace is shared with: a `user` or a `group`, by name.
#[derive(Debug, Serialize)]
struct ShareRow<'a> {
    kind: &'static str,
    name: &'a str,
    at: Millis,
}

/// What a running workspace uses now.
#[derive(Debug, Serialize)]
pub(super) struct Usage {
    pub cpu_millis: u64,
    pub memory_bytes: u64,
}

/// How full a workspace's disk is.
#[derive(Debug, Serialize)]
struct DiskUse {
    used_bytes: u64,
    size_bytes: u64,
    full: bool,
}

/// What a workspace's profile allows it.
#[derive(Debug, Serialize)]
struct Limits {
    cpu_millis: u64,
    memory_bytes: u64,
    disk_quota_bytes: u64,
    max_processes: u64,
}

pub(super) async fn page(
    st: &AppState,
    viewer: &Viewer,
    ws: &Workspace,
    profiles: &HashMap<String, Profile>,
    share: ShareForm,
    status: StatusCode,
) -> ApiResult<Response> {
    let v = view(ws, profiles);
    let profile = profiles.get(ws.spec.profile.as_str()).map(|p| &p.spec);
    let history = st.app.workspace_events(viewer.ctx.caller(), ws, 50).await?;
    let ran = running(st, None, Some(&ws.id)).await?;
    let cost = cost(
        ran.get(ws.id.as_str()).copied().unwrap_or(0),
        profile.map_or(0, |p| p.cost_per_hour_micros),
    );
    // The log may show what the owner's code printed: the owner's (and admins') eyes only.
    let may_manage = viewer.ctx.principal.may(Scope::Servers, &ws.owner_id);
    let may_share = viewer
        .ctx
        .principal
        .may_server(Scope::Shares, &ws.owner_id, ws.name.as_str());
    let shares = if may_share {
        st.app.shares(viewer.ctx.caller(), ws).await?
    } else {
        Vec::new()
    };
    let shares = shares
        .iter()
        .map(|s| {
            let (kind, name) = match &s.with {
                ShareWith::User(u) => ("user", u.as_str()),
                ShareWith::Group(g) => ("group", g.as_str()),
            };
            ShareRow {
                kind,
                name,
                at: s.created_at,
            }
        })
        .collect();
    let (mut log, mut usage, mut disk) = (None, None, None);
    if let Some(rt) = &st.runtime {
        if may_manage {
            log = rt.log_tail(&ws.id, LOG_TAIL_BYTES).await.ok();
        }
        if matches!(
            ws.status.state,
            WorkspaceState::Running | WorkspaceState::Starting | WorkspaceState::Paused
        ) {
            usage = rt.usage(&ws.id).await.ok().flatten();
            disk = rt.disk(&ws.id).await.ok().flatten();
        }
    }
    let history = history
        .iter()
        .map(|h| HistoryRow {
            at: h.at,
            state: h.state.as_str(),
            message: &h.message,
        })
        .collect();
    let page = WorkspacePage {
        title: format!("{}/{}", ws.owner, ws.name),
        nav: "home",
        ws: v,
        cost_micros: cost,
        history,
        conditions: &ws.status.conditions,
        log,
        may_manage,
        may_share,
        shares,
        share,
        usage: usage.map(|u| Usage {
            cpu_millis: u.cpu_millis,
            memory_bytes: u.memory_bytes,
        }),
        disk: disk.map(|d| DiskUse {
            used_bytes: d.used_bytes,
            size_bytes: d.size_bytes,
            full: d.is_full(),
        }),
        next_events: next_events(ws, profile, now_millis()),
        idle: profile.map(super::home::idle_policy),
        limits: profile.map(|p| Limits {
            cpu_millis: p.cpu_millis,
            memory_bytes: p.memory_bytes,
            disk_quota_bytes: p.disk_quota_bytes,
            max_processes: p.max_processes,
        }),
    };
    Ok(viewer.page("workspace.html", status, &page))
}

/// How long workspaces have run, by id, from their state histories: those of
/// `owner_id`, or the one `workspace_id`, or all.
pub(super) async fn running(
    st: &AppState,
    owner_id: Option<&str>,
    workspace_id: Option<&str>,
) -> ApiResult<HashMap<String, u64>> {
    Ok(st
        .app
        .running_millis_unchecked(owner_id, workspace_id)
        .await?)
}

/// What `running_ms` of running costs at `per_hour_micros`, in millionths.
pub(super) fn cost(running_ms: u64, per_hour_micros: u64) -> u64 {
    (u128::from(running_ms) * u128::from(per_hour_micros) / 3_600_000) as u64
}

/// What will happen to a workspace, in words: when it idles out and when it is
/// deleted.
fn next_events(ws: &Workspace, p: Option<&model::ProfileSpec>, now: Millis) -> Vec<String> {
    let mut out = Vec::new();
    if ws.deletion_requested_at.is_some() {
        out.push("It is being deleted.".to_owned());
        return out;
    }
    let Some(p) = p else { return out };
    let active = ws.spec.desired != DesiredState::Stopped;
    match (p.idle_timeout_secs, active) {
        (Some(t), true) if ws.status.state == WorkspaceState::Running => {
            let since = ws.last_activity.max(ws.status.started_at).unwrap_or(now);
            let at = since + (t as i64) * 1000;
            let verb = match p.idle_action {
                IdleAction::Pause => "pauses",
                IdleAction::Stop => "stops",
            };
            out.push(if at > now {
                format!(
                    "It {verb} after {} idle: at {} unless it is used (in {}).",
                    span_secs(t),
                    when(at),
                    span_secs(((at - now) / 1000) as u64)
                )
            } else {
                format!(
                    "It {verb} after {} idle: soon, unless it is used.",
                    span_secs(t)
                )
            });
        }
        (Some(t), _) => out.push(format!(
            "While running, it {} after {} idle.",
            match p.idle_action {
                IdleAction::Pause => "pauses",
                IdleAction::Stop => "stops",
            },
            span_secs(t)
        )),
        (None, _) => out.push("It never idles out; stop it when you are done.".to_owned()),
    }
    match p.max_lifetime_secs {
        Some(l) => out.push(format!(
            "It is deleted on {}.",
            when(ws.created_at + (l as i64) * 1000)
        )),
        None => out.push("It is kept until you delete it.".to_owned()),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_is_the_hourly_rate_for_the_time_run() {
        assert_eq!(cost(5_400_000, 1_000_000), 1_500_000);
        assert_eq!(cost(0, 1_000_000), 0);
        assert_eq!(cost(u64::MAX, 3_600_000), u64::MAX, "no overflow");
    }
}
