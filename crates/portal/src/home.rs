//! `/hub/home` and `/hub/workspaces/…`: my workspaces with their live state, the
//! new-workspace form, quota use, one workspace's page, and the actions (start,
//! stop, delete) that the REST API's functions carry out.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};

use model::{DesiredState, IdleAction, Profile, Scope, Workspace, WorkspaceState};

use super::{checked, done, safe_next, FormErrors, Posted, Viewer};
use web::error::ApiResult;
use web::ops::workspaces;
use web::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/hub/home", get(home))
        .route("/hub/workspaces", post(create))
        .route("/hub/workspaces/{id}", get(workspace_page))
        .route("/hub/workspaces/{id}/start", post(start))
        .route("/hub/workspaces/{id}/stop", post(stop))
        .route(
            "/hub/workspaces/{id}/delete",
            get(confirm_delete).post(delete),
        )
        .route("/hub/events", get(events))
}

/// A workspace as pages show it.
#[derive(Debug, Serialize)]
pub(super) struct WorkspaceView {
    id: String,
    owner: String,
    name: String,
    profile: String,
    profile_display: String,
    state: &'static str,
    message: String,
    /// Whether it is asked to run (Stop is offered) or not (Start is).
    active: bool,
    deleting: bool,
    url: String,
    created_at: i64,
    last_activity: Option<i64>,
    cpu_millis: u64,
    memory_bytes: u64,
    pub(super) cost_per_hour_micros: u64,
}

pub(super) fn view(ws: &Workspace, profiles: &HashMap<String, Profile>) -> WorkspaceView {
    let p = profiles.get(ws.spec.profile.as_str());
    WorkspaceView {
        id: ws.id.to_string(),
        owner: ws.owner.to_string(),
        name: ws.name.to_string(),
        profile: ws.spec.profile.to_string(),
        profile_display: p.map(|p| p.spec.display_name.clone()).unwrap_or_default(),
        state: if ws.deletion_requested_at.is_some() {
            WorkspaceState::Deleting.as_str()
        } else {
            ws.status.state.as_str()
        },
        message: ws.status.message.clone().unwrap_or_default(),
        active: ws.spec.desired != DesiredState::Stopped,
        deleting: ws.deletion_requested_at.is_some(),
        url: model::hub::base_url(&ws.owner, &ws.name),
        created_at: ws.created_at,
        last_activity: ws.last_activity,
        cpu_millis: p.map_or(0, |p| p.spec.cpu_millis),
        memory_bytes: p.map_or(0, |p| p.spec.memory_bytes),
        cost_per_hour_micros: p.map_or(0, |p| p.spec.cost_per_hour_micros),
    }
}

/// The CPU and memory that count against a quota: those of the workspaces asked
/// to run (as the API's quota check counts them).
pub(super) fn active_use<'a>(
    workspaces: impl Iterator<Item = &'a Workspace>,
    profiles: &HashMap<String, Profile>,
) -> (u64, u64) {
    workspaces
        .filter(|w| w.spec.desired != DesiredState::Stopped)
        .filter_map(|w| profiles.get(w.spec.profile.as_str()))
        .fold((0, 0), |(cpu, mem), p| {
            (cpu + p.spec.cpu_millis, mem + p.spec.memory_bytes)
        })
}

/// A profile as the new-workspace form offers it.
#[derive(Debug, Serialize)]
struct ProfileView {
    name: String,
    display_name: String,
    cpu_millis: u64,
    memory_bytes: u64,
    idle: String,
    cost_per_hour_micros: u64,
    /// Whether starting one now stays within the user's quota.
    fits: bool,
}

/// What the culler does to a profile's idle workspaces, in words.
pub(super) fn idle_policy(p: &model::ProfileSpec) -> String {
    match p.idle_timeout_secs {
        None => "never idles out".into(),
        Some(s) => format!(
            "{} after {} idle",
            match p.idle_action {
                IdleAction::Pause => "pauses",
                IdleAction::Stop => "stops",
            },
            super::format::span_secs(s)
        ),
    }
}

pub(super) async fn profiles_by_name(st: &AppState) -> ApiResult<HashMap<String, Profile>> {
    // Every workspace names one: what the portal shows of them is no secret.
    Ok(st
        .app
        .all_profiles_unchecked()
        .await?
        .into_iter()
        .map(|p| (p.name.to_string(), p))
        .collect())
}

/// All workspaces of `owner_id` (all of everyone's with `None`), oldest first.
pub(super) async fn all_workspaces(
    st: &AppState,
    owner_id: Option<String>,
) -> ApiResult<Vec<Workspace>> {
    Ok(st.app.all_workspaces_unchecked(owner_id.as_deref()).await?)
}

/// The new-workspace form as it was posted (kept when it comes back with errors).
#[derive(Debug, Default, Serialize)]
struct NewWorkspace {
    name: String,
    profile: String,
    start: bool,
}

/// `home.html`: the viewer's workspaces, those shared with them, their quota
/// use and the new-workspace form.
#[derive(Debug, Serialize)]
struct HomePage<'a> {
    title: &'static str,
    nav: &'static str,
    workspaces: Vec<WorkspaceRow>,
    shared: Vec<SharedRow>,
    profiles: Vec<ProfileView>,
    form: NewWorkspace,
    /// The profile the form has selected.
    chosen: String,
    errors: FormErrors,
    /// The names the viewer's workspaces have taken.
    names: Vec<&'a str>,
    name_pattern: &'static str,
    quota: QuotaUse,
}

/// One of the viewer's workspaces, with what it has cost so far.
#[derive(Debug, Serialize)]
struct WorkspaceRow {
    #[serde(flatten)]
    ws: WorkspaceView,
    cost_micros: u64,
}

/// A workspace someone shares with the viewer, and how it reaches them.
#[derive(Debug, Serialize)]
struct SharedRow {
    #[serde(flatten)]
    ws: WorkspaceView,
    /// `you`, or the groups, comma-separated.
    via: String,
}

/// What the viewer holds and runs against their quota.
#[derive(Debug, Serialize)]
struct QuotaUse {
    workspaces: usize,
    max_workspaces: u64,
    cpu_millis: u64,
    max_cpu_millis: u64,
    memory_bytes: u64,
    max_memory_bytes: u64,
}

async fn home(State(st): State<AppState>, viewer: Viewer) -> Response {
    let form = NewWorkspace {
        start: true,
        ..NewWorkspace::default()
    };
    match home_page(&st, &viewer, form, FormErrors::default(), StatusCode::OK).await {
        Ok(r) => r,
        Err(e) => viewer.error(e),
    }
}

async fn home_page(
    st: &AppState,
    viewer: &Viewer,
    form: NewWorkspace,
    errors: FormErrors,
    status: StatusCode,
) -> ApiResult<Response> {
    let me = &viewer.ctx.principal;
    let profiles = profiles_by_name(st).await?;
    let mine = all_workspaces(st, Some(me.user_id.to_string())).await?;
    let user = st.app.me(viewer.ctx.caller()).await?;
    let q = st.app.quota_of(user).await?.limits;
    let (cpu, mem) = active_use(mine.iter(), &profiles);
    let mut offered: Vec<ProfileView> = profiles
        .values()
        .map(|p| ProfileView {
            name: p.name.to_string(),
            display_name: p.spec.display_name.clone(),
            cpu_millis: p.spec.cpu_millis,
            memory_bytes: p.spec.memory_bytes,
            idle: idle_policy(&p.spec),
            cost_per_hour_micros: p.spec.cost_per_hour_micros,
            fits: cpu + p.spec.cpu_millis <= q.max_cpu_millis
                && mem + p.spec.memory_bytes <= q.max_memory_bytes,
        })
        .collect();
    offered.sort_by(|a, b| (a.cpu_millis, &a.name).cmp(&(b.cpu_millis, &b.name)));
    // Standard if the quota lets it start now, else the smallest that fits.
    let chosen = if form.profile.is_empty() {
        offered
            .iter()
            .find(|p| p.name == "standard" && p.fits)
            .or(offered.iter().find(|p| p.fits))
            .or(offered.iter().find(|p| p.name == "standard"))
            .or(offered.first())
            .map(|p| p.name.clone())
            .unwrap_or_default()
    } else {
        form.profile.clone()
    };
    let names: Vec<&str> = mine.iter().map(|w| w.name.as_str()).collect();
    let shared = shared_with_me(st, &me.user_id, &profiles).await?;
    let ran = super::details::running(st, Some(&me.user_id), None).await?;
    let workspaces = mine
        .iter()
        .map(|w| {
            let ws = view(w, &profiles);
            let ran = ran.get(w.id.as_str()).copied().unwrap_or(0);
            let cost_micros = super::details::cost(ran, ws.cost_per_hour_micros);
            WorkspaceRow { ws, cost_micros }
        })
        .collect();
    let page = HomePage {
        title: "Your workspaces",
        nav: "home",
        workspaces,
        shared,
        profiles: offered,
        form,
        chosen,
        errors,
        names,
        name_pattern: model::NAME_PATTERN,
        quota: QuotaUse {
            workspaces: mine.len(),
            max_workspaces: q.max_workspaces,
            cpu_millis: cpu,
            max_cpu_millis: q.max_cpu_millis,
            memory_bytes: mem,
            max_memory_bytes: q.max_memory_bytes,
        },
    };
    Ok(viewer.page("home.html", status, &page))
}

/// The workspaces others share with the viewer, once each (a workspace may
/// reach them directly and through groups), with how: `you` or the groups.
async fn shared_with_me(
    st: &AppState,
    user_id: &str,
    profiles: &HashMap<String, Profile>,
) -> ApiResult<Vec<SharedRow>> {
    let mut by_ws: Vec<(Workspace, Vec<String>)> = Vec::new();
    for (share, ws) in st.app.shared_with(user_id).await? {
        let Some(ws) = ws else { continue };
        if ws.owner_id == user_id || ws.deletion_requested_at.is_some() {
            continue;
        }
        let via = match &share.with {
            model::ShareWith::User(_) => "you".to_owned(),
            model::ShareWith::Group(g) => format!("group {g}"),
        };
        match by_ws.iter_mut().find(|(w, _)| w.id == ws.id) {
            Some((_, vias)) => vias.push(via),
            None => by_ws.push((ws, vec![via])),
        }
    }
    Ok(by_ws
        .iter()
        .map(|(w, via)| SharedRow {
            ws: view(w, profiles),
            via: via.join(", "),
        })
        .collect())
}

#[derive(Debug, Deserialize)]
struct CreateForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    profile: String,
    start: Option<String>,
}

async fn create(State(st): State<AppState>, posted: Posted<CreateForm>) -> Response {
    let Posted { viewer, form } = posted;
    let start = checked(&form.start);
    let made = async {
        let name = web::extract::name("name", form.name.trim())?;
        let profile = web::extract::name("profile", &form.profile)?;
        let cmd = app::CreateWorkspace {
            owner: None,
            name,
            profile,
            start,
        };
        Ok::<_, web::error::ApiError>(st.app.create_workspace(viewer.ctx.caller(), cmd).await?)
    }
    .await;
    let ok = |ws: Workspace| {
        let starting = if start { "; it is starting" } else { "" };
        done(
            "/hub/home",
            &format!("Created workspace {}{starting}.", ws.name),
        )
    };
    let (st, viewer) = (&st, &viewer);
    super::settle(made, super::by_the_user, ok, |e| async move {
        let errors = FormErrors::from_api(&e, &["name", "profile"]);
        let form = NewWorkspace {
            name: form.name,
            profile: form.profile,
            start,
        };
        home_page(st, viewer, form, errors, e.code.status()).await
    })
    .await
    .unwrap_or_else(|e| viewer.error(e))
}

#[derive(Debug, Deserialize)]
struct ActionForm {
    next: Option<String>,
    keep_files: Option<String>,
}

/// Runs a start or stop through the API's function and goes back.
async fn act(
    st: &AppState,
    posted: Posted<ActionForm>,
    id: &str,
    desired: DesiredState,
) -> Response {
    let (change, verb) = match desired {
        DesiredState::Stopped => (app::WorkspaceChange::Stop, "Stopping"),
        _ => (app::WorkspaceChange::Start, "Starting"),
    };
    match workspaces::change(st, &posted.viewer.ctx, id, change).await {
        Ok(ws) => done(
            safe_next(posted.form.next.as_deref(), "/hub/home"),
            &format!("{verb} {}.", ws.name),
        ),
        Err(e) => posted.viewer.error(e),
    }
}

async fn start(
    State(st): State<AppState>,
    Path(id): Path<String>,
    posted: Posted<ActionForm>,
) -> Response {
    act(&st, posted, &id, DesiredState::Running).await
}

async fn stop(
    State(st): State<AppState>,
    Path(id): Path<String>,
    posted: Posted<ActionForm>,
) -> Response {
    act(&st, posted, &id, DesiredState::Stopped).await
}

/// A workspace the viewer may read, with its profile; else the error page.
pub(super) async fn find(
    st: &AppState,
    viewer: &Viewer,
    id: &str,
) -> Result<(Workspace, HashMap<String, Profile>), Response> {
    let found = async {
        let ws = workspaces::visible(st, &viewer.ctx, id).await?;
        Ok((ws, profiles_by_name(st).await?))
    }
    .await;
    found.map_err(|e| viewer.error(e))
}

#[derive(Debug, Deserialize)]
struct NextQuery {
    next: Option<String>,
}

/// `confirm_delete.html`: asks before a workspace is deleted.
#[derive(Debug, Serialize)]
struct ConfirmDeletePage<'a> {
    title: String,
    nav: &'static str,
    ws: WorkspaceView,
    /// Where the page goes after the deletion.
    next: &'a str,
}

async fn confirm_delete(
    State(st): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Query(q): Query<NextQuery>,
) -> Response {
    let (ws, profiles) = match find(&st, &viewer, &id).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let page = ConfirmDeletePage {
        title: format!("Delete {}?", ws.name),
        nav: "home",
        ws: view(&ws, &profiles),
        next: safe_next(q.next.as_deref(), "/hub/home"),
    };
    viewer.page("confirm_delete.html", StatusCode::OK, &page)
}

async fn delete(
    State(st): State<AppState>,
    Path(id): Path<String>,
    posted: Posted<ActionForm>,
) -> Response {
    let keep = checked(&posted.form.keep_files);
    match workspaces::request_delete(&st, &posted.viewer.ctx, &id, keep).await {
        Ok(ws) => done(
            safe_next(posted.form.next.as_deref(), "/hub/home"),
            &format!(
                "Deleting {}{}.",
                ws.name,
                if keep { "; its files are kept" } else { "" }
            ),
        ),
        Err(e) => posted.viewer.error(e),
    }
}

async fn workspace_page(
    State(st): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Response {
    let (ws, profiles) = match find(&st, &viewer, &id).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let share = super::details::ShareForm::default();
    match super::details::page(&st, &viewer, &ws, &profiles, share, StatusCode::OK).await {
        Ok(r) => r,
        Err(e) => viewer.error(e),
    }
}

/// The state of every workspace the viewer may read, as server-sent events: a
/// `snapshot` event with all of them (`[{"id", "state", "message", "ready",
/// "retrying"}]`),
/// then one message per change, and `{"id", "state": "deleted"}` when one is
/// gone. Pages update in place.
async fn events(State(st): State<AppState>, viewer: Viewer) -> impl IntoResponse {
    use axum::response::sse::{Event, KeepAlive, Sse};
    use futures::StreamExt;

    #[derive(Debug, Clone, PartialEq, Serialize)]
    struct Change {
        id: String,
        state: &'static str,
        message: String,
        ready: bool,
        /// A failed start to be tried again after the back-off.
        retrying: bool,
    }
    let principal = viewer.ctx.principal;
    let snapshot = move |table: &model::route::RouteTable| -> HashMap<String, Change> {
        table
            .values()
            .filter(|r| principal.may(Scope::ReadServers, &r.owner_id))
            .map(|r| {
                let c = Change {
                    id: r.workspace_id.to_string(),
                    state: r.state.as_str(),
                    message: r.message.clone(),
                    ready: r.state == WorkspaceState::Running && r.upstream.is_some(),
                    retrying: r.retrying,
                };
                (c.id.clone(), c)
            })
            .collect()
    };
    let mut routes = st.proxy.routes();
    let first = snapshot(&routes.borrow_and_update());
    // The first event (`snapshot`) lists every workspace at once, so that a page
    // can tell which of its workspaces are gone already.
    let initial: Vec<Change> = first.values().cloned().collect();
    let initial = Event::default()
        .event("snapshot")
        .json_data(&initial)
        .map_err(|e| e.to_string());
    let updates = web::live::changes(routes, snapshot, first).flat_map(|batch| {
        futures::stream::iter(batch.into_iter().map(|(id, change)| {
            change.unwrap_or(Change {
                id,
                state: "deleted",
                message: String::new(),
                ready: false,
                retrying: false,
            })
        }))
    });
    let stream = futures::stream::once(async { initial })
        .chain(updates.map(|c| Event::default().json_data(&c).map_err(|e| e.to_string())));
    Sse::new(stream).keep_alive(KeepAlive::default())
}
