//! `/hub/admin/…`: users and groups, profiles, quota use, every workspace, and the
//! audit log. Each page answers non-admins with a 403 page; each action runs the
//! REST API's function, which checks the scope again and writes the audit record.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};

use api_types::{Page, ProfileUpdate};
use model::{DesiredState, Millis, WorkspaceState};

use super::details::Usage;
use super::home::{active_use, all_workspaces, idle_policy, profiles_by_name, view, WorkspaceView};
use super::{by_the_user, checked, done, see_other, settle, FormErrors, Posted, Viewer};
use web::error::{ApiError, ApiResult, Code};
use web::ops::{audit, groups, page, profiles, quotas, services, users};
use web::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/hub/admin",
            get(|| async { see_other("/hub/admin/users") }),
        )
        .route("/hub/admin/users", get(users_page).post(create_user))
        .route("/hub/admin/users/{name}", post(update_user))
        .route("/hub/admin/groups", post(create_group))
        .route("/hub/admin/groups/{name}/members", post(add_member))
        .route(
            "/hub/admin/groups/{name}/members/{user}/remove",
            post(remove_member),
        )
        .route(
            "/hub/admin/profiles",
            get(profiles_page).post(create_profile),
        )
        .route(
            "/hub/admin/profiles/{name}",
            get(profile_page).post(update_profile),
        )
        .route("/hub/admin/quotas", get(quotas_page))
        .route(
            "/hub/admin/quotas/{name}",
            get(quota_page).post(update_quota),
        )
        .route("/hub/admin/quotas/{name}/reset", post(reset_quota))
        .route("/hub/admin/workspaces", get(workspaces_page))
        .route("/hub/admin/audit", get(audit_page))
        .route(
            "/hub/admin/services",
            get(services_page).post(create_service),
        )
        .route("/hub/admin/services/{name}/delete", post(delete_service))
}

/// Runs `body` for an admin; others get the 403 page, failures the error page.
async fn admin_only<F>(viewer: &Viewer, body: F) -> Response
where
    F: std::future::Future<Output = ApiResult<Response>>,
{
    if let Some(page) = viewer.unless_admin() {
        return page;
    }
    body.await.unwrap_or_else(|e| viewer.error(e))
}

// --- users and groups ------------------------------------------------------

/// The new-user form, as posted or empty.
#[derive(Debug, Default, Deserialize, Serialize)]
struct UserForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    admin: Option<String>,
}

/// Users a page on the users and quotas pages.
const USERS_PER_PAGE: i64 = 100;

/// Which page of users: those named after `after`.
#[derive(Debug, Default, Deserialize)]
struct UsersQuery {
    after: Option<String>,
}

/// A page of users by name, and the link to the next one under `path`.
async fn users_after(
    st: &AppState,
    viewer: &Viewer,
    after: Option<&str>,
    path: &str,
) -> ApiResult<(Vec<model::User>, Option<String>)> {
    let list = st
        .app
        .users(
            viewer.ctx.caller(),
            model::Scope::ReadUsers,
            after,
            USERS_PER_PAGE + 1,
        )
        .await?;
    let Page { items, next } = page(list, USERS_PER_PAGE, |u| u.name.to_string(), Clone::clone);
    Ok((items, next.map(|after| format!("{path}?after={after}"))))
}

async fn users_page(
    State(st): State<AppState>,
    viewer: Viewer,
    Query(q): Query<UsersQuery>,
) -> Response {
    admin_only(
        &viewer,
        users_view(
            &st,
            &viewer,
            q.after.as_deref(),
            &UserForm::default(),
            FormErrors::default(),
            StatusCode::OK,
        ),
    )
    .await
}

/// `admin_users.html`: a page of users, every group, and the forms that make
/// them.
#[derive(Debug, Serialize)]
struct UsersPage<'a> {
    title: &'static str,
    nav: &'static str,
    subnav: &'static str,
    users: Vec<UserRow<'a>>,
    /// The link to the next page of users.
    next: Option<String>,
    groups: Vec<GroupRow<'a>>,
    form: &'a UserForm,
    errors: FormErrors,
    name_pattern: &'static str,
}

/// A user, with their groups and how many workspaces they hold.
#[derive(Debug, Serialize)]
struct UserRow<'a> {
    name: &'a str,
    admin: bool,
    disabled: bool,
    /// Whether it is the viewer (who may not demote or disable themselves).
    is_me: bool,
    groups: Vec<&'a str>,
    workspaces: usize,
    created_at: Millis,
    last_activity: Option<Millis>,
}

/// A group and its members' names.
#[derive(Debug, Serialize)]
struct GroupRow<'a> {
    name: &'a str,
    members: Vec<&'a str>,
}

async fn users_view(
    st: &AppState,
    viewer: &Viewer,
    after: Option<&str>,
    form: &UserForm,
    errors: FormErrors,
    status: StatusCode,
) -> ApiResult<Response> {
    let (list, next) = users_after(st, viewer, after, "/hub/admin/users").await?;
    let groups = groups::list(st, &viewer.ctx).await?;
    let workspaces = all_workspaces(st, None).await?;
    let mut owned: HashMap<&str, usize> = HashMap::new();
    for w in &workspaces {
        *owned.entry(w.owner_id.as_str()).or_default() += 1;
    }
    let mut member_of: HashMap<&str, Vec<&str>> = HashMap::new();
    for g in &groups {
        for m in &g.members {
            member_of
                .entry(m.as_str())
                .or_default()
                .push(g.name.as_str());
        }
    }
    let group_rows = groups
        .iter()
        .map(|g| GroupRow {
            name: g.name.as_str(),
            members: g.members.iter().map(|m| m.as_str()).collect(),
        })
        .collect();
    let users = list
        .iter()
        .map(|u| UserRow {
            name: u.name.as_str(),
            admin: u.is_admin,
            disabled: u.disabled,
            is_me: u.id == viewer.ctx.principal.user_id,
            groups: member_of.get(u.name.as_str()).cloned().unwrap_or_default(),
            workspaces: owned.get(u.id.as_str()).copied().unwrap_or(0),
            created_at: u.created_at,
            last_activity: u.last_activity,
        })
        .collect();
    let page = UsersPage {
        title: "Users",
        nav: "admin",
        subnav: "users",
        users,
        next,
        groups: group_rows,
        form,
        errors,
        name_pattern: model::NAME_PATTERN,
    };
    Ok(viewer.page("admin_users.html", status, &page))
}

/// The users page again, with `e` beside the form field `field` (the API's
/// field name `prefix` trimmed from its message).
async fn users_with_error(
    st: &AppState,
    viewer: &Viewer,
    e: &ApiError,
    field: String,
    prefix: &str,
) -> ApiResult<Response> {
    let mut errors = FormErrors::default();
    errors
        .fields
        .insert(field, e.message.trim_start_matches(prefix).to_owned());
    users_view(
        st,
        viewer,
        None,
        &UserForm::default(),
        errors,
        e.code.status(),
    )
    .await
}

async fn create_user(State(st): State<AppState>, posted: Posted<UserForm>) -> Response {
    let Posted { viewer, form } = posted;
    admin_only(&viewer, async {
        let created = async {
            let cmd = app::CreateUser {
                name: web::extract::name("name", form.name.trim())?,
                password: (!form.password.is_empty()).then(|| form.password.clone()),
                admin: checked(&form.admin),
            };
            Ok::<_, ApiError>(st.app.create_user(viewer.ctx.caller(), cmd).await?)
        };
        let ok = |u: model::User| done("/hub/admin/users", &format!("Created user {}.", u.name));
        let (st, viewer) = (&st, &viewer);
        settle(created.await, by_the_user, ok, |e| async move {
            let errors = FormErrors::from_api(&e, &["name", "password"]);
            let form = UserForm {
                password: String::new(),
                ..form
            };
            users_view(st, viewer, None, &form, errors, e.code.status()).await
        })
        .await
    })
    .await
}

#[derive(Debug, Deserialize)]
struct UserAction {
    action: String,
}

async fn update_user(
    State(st): State<AppState>,
    Path(name): Path<String>,
    posted: Posted<UserAction>,
) -> Response {
    let viewer = &posted.viewer;
    admin_only(viewer, async {
        let (req, said) = match posted.form.action.as_str() {
            "make-admin" => (
                app::UpdateUser {
                    admin: Some(true),
                    ..app::UpdateUser::default()
                },
                "is now an admin",
            ),
            "revoke-admin" => (
                app::UpdateUser {
                    admin: Some(false),
                    ..app::UpdateUser::default()
                },
                "is no longer an admin",
            ),
            "disable" => (
                app::UpdateUser {
                    disabled: Some(true),
                    ..app::UpdateUser::default()
                },
                "is disabled",
            ),
            "enable" => (
                app::UpdateUser {
                    disabled: Some(false),
                    ..app::UpdateUser::default()
                },
                "is enabled",
            ),
            _ => return Err(ApiError::new(Code::InvalidValue, "action: unknown")),
        };
        let u = users::update(&st, &viewer.ctx, &name, req).await?;
        Ok(done("/hub/admin/users", &format!("{} {said}.", u.name)))
    })
    .await
}

#[derive(Debug, Deserialize)]
struct GroupForm {
    #[serde(default)]
    name: String,
}

async fn create_group(State(st): State<AppState>, posted: Posted<GroupForm>) -> Response {
    let Posted { viewer, form } = posted;
    admin_only(&viewer, async {
        let made = groups::create(&st, &viewer.ctx, form.name.trim(), &[]).await;
        let ok = |g: model::Group| done("/hub/admin/users", &format!("Created group {}.", g.name));
        let (st, viewer) = (&st, &viewer);
        settle(made, by_the_user, ok, |e| async move {
            users_with_error(st, viewer, &e, "group".into(), "name: ").await
        })
        .await
    })
    .await
}

#[derive(Debug, Deserialize)]
struct MemberForm {
    #[serde(default)]
    user: String,
}

async fn add_member(
    State(st): State<AppState>,
    Path(group): Path<String>,
    posted: Posted<MemberForm>,
) -> Response {
    let Posted { viewer, form } = posted;
    admin_only(&viewer, async {
        let user = form.user.trim().to_owned();
        let added = groups::add(&st, &viewer.ctx, &group, std::slice::from_ref(&user)).await;
        let group = &group;
        let ok = |_| done("/hub/admin/users", &format!("Added {user} to {group}."));
        let (st, viewer) = (&st, &viewer);
        settle(added, by_the_user, ok, |e| async move {
            users_with_error(st, viewer, &e, format!("member-{group}"), "users: ").await
        })
        .await
    })
    .await
}

async fn remove_member(
    State(st): State<AppState>,
    Path((group, user)): Path<(String, String)>,
    posted: Posted<super::NoFields>,
) -> Response {
    let viewer = &posted.viewer;
    admin_only(viewer, async {
        groups::remove(&st, &viewer.ctx, &group, &user).await?;
        Ok(done(
            "/hub/admin/users",
            &format!("Removed {user} from {group}."),
        ))
    })
    .await
}

// --- profiles --------------------------------------------------------------

/// A profile as its form shows it, in the units people use.
#[derive(Debug, Default, Deserialize, Serialize)]
struct ProfileForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    cpu: String,
    #[serde(default)]
    memory_gib: String,
    #[serde(default)]
    disk_gib: String,
    #[serde(default)]
    max_processes: String,
    /// `0`: never.
    #[serde(default)]
    idle_minutes: String,
    #[serde(default)]
    idle_action: String,
    /// `0`: never.
    #[serde(default)]
    lifetime_days: String,
    #[serde(default)]
    cost_per_hour: String,
    #[serde(default)]
    start_timeout_secs: String,
    /// `jupyterlab`, or a command line.
    #[serde(default)]
    command: String,
    /// Serve the command's app at `/` (the proxy strips the URL prefix).
    strip_prefix: Option<String>,
    egress: Option<String>,
}

/// The form's fields by the API's names in error messages.
const PROFILE_FIELDS: [(&str, &str); 11] = [
    ("name", "name"),
    ("display_name", "display_name"),
    ("cpu", "cpu"),
    ("memory_bytes", "memory_gib"),
    ("disk_quota_bytes", "disk_gib"),
    ("max_processes", "max_processes"),
    ("idle_timeout_secs", "idle_minutes"),
    ("idle_action", "idle_action"),
    ("max_lifetime_secs", "lifetime_days"),
    ("cost_per_hour", "cost_per_hour"),
    ("start_timeout_secs", "start_timeout_secs"),
];

impl ProfileForm {
    fn of(p: &model::Profile) -> Self {
        let s = &p.spec;
        let gib = super::format::gib;
        ProfileForm {
            name: p.name.to_string(),
            display_name: s.display_name.clone(),
            cpu: super::format::cpus(s.cpu_millis),
            memory_gib: gib(s.memory_bytes),
            disk_gib: gib(s.disk_quota_bytes),
            max_processes: s.max_processes.to_string(),
            idle_minutes: s.idle_timeout_secs.map_or(0, |t| t / 60).to_string(),
            idle_action: s.idle_action.as_str().to_owned(),
            lifetime_days: super::format::cpus(
                s.max_lifetime_secs.map_or(0, |t| t * 1000 / 86_400),
            ),
            cost_per_hour: super::format::money(s.cost_per_hour_micros),
            start_timeout_secs: s.start_timeout_secs.to_string(),
            command: match &s.app {
                model::App::Jupyterlab => "jupyterlab".into(),
                model::App::Command { argv, .. } => argv.join(" "),
            },
            strip_prefix: s.app.strip_prefix().then(|| "on".into()),
            egress: s.egress.then(|| "on".into()),
        }
    }

    fn defaults() -> Self {
        let standard = model::Profile {
            id: String::new(),
            name: model::Name::parse("new").expect("valid name"),
            spec: model::ProfileSpec::standard(),
            created_at: 0,
            updated_at: 0,
        };
        ProfileForm {
            name: String::new(),
            display_name: String::new(),
            ..ProfileForm::of(&standard)
        }
    }

    /// The API's update body, or every field's error at once: a number that
    /// does not parse, and whatever the API would refuse of the rest.
    fn to_update(&self) -> ApiResult<ProfileUpdate> {
        let mut unparsed: Vec<(String, String)> = Vec::new();
        let mut num = |field: &str, s: &str| -> Option<f64> {
            let v = s
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0);
            if v.is_none() {
                unparsed.push((field.to_owned(), "enter a number, 0 or more".to_owned()));
            }
            v
        };
        // Beyond u64 saturates, and the API's range check names the limits.
        let scaled = |v: Option<f64>, scale: f64| v.map(|v| (v * scale).round() as u64);
        let gib = (1u64 << 30) as f64;
        let command = self.command.trim();
        let update = ProfileUpdate {
            display_name: Some(self.display_name.trim().to_owned()),
            cpu: num("cpu", &self.cpu),
            memory_bytes: scaled(num("memory_bytes", &self.memory_gib), gib),
            disk_quota_bytes: scaled(num("disk_quota_bytes", &self.disk_gib), gib),
            max_processes: scaled(num("max_processes", &self.max_processes), 1.0),
            idle_timeout_secs: scaled(num("idle_timeout_secs", &self.idle_minutes), 60.0),
            idle_action: Some(self.idle_action.clone()),
            max_lifetime_secs: scaled(num("max_lifetime_secs", &self.lifetime_days), 86_400.0),
            cost_per_hour: num("cost_per_hour", &self.cost_per_hour),
            start_timeout_secs: scaled(num("start_timeout_secs", &self.start_timeout_secs), 1.0),
            app: Some(if command.is_empty() || command == "jupyterlab" {
                api_types::App::Jupyterlab
            } else {
                api_types::App::Command {
                    argv: command.split_whitespace().map(str::to_owned).collect(),
                    strip_prefix: checked(&self.strip_prefix),
                }
            }),
            egress: Some(checked(&self.egress)),
        };
        if unparsed.is_empty() {
            return Ok(update);
        }
        // The other fields' errors too, as the API would give them.
        let mut errors = unparsed;
        if let Err(e) = web::convert::apply_profile(model::ProfileSpec::standard(), update) {
            errors.extend(e.fields);
        }
        Err(ApiError::invalid_fields(errors))
    }
}

/// Files an API error under the profile form's field.
fn profile_errors(e: &ApiError) -> FormErrors {
    FormErrors::from_api_as(e, &PROFILE_FIELDS)
}

async fn profiles_page(State(st): State<AppState>, viewer: Viewer) -> Response {
    admin_only(
        &viewer,
        profiles_view(
            &st,
            &viewer,
            &ProfileForm::defaults(),
            FormErrors::default(),
            StatusCode::OK,
        ),
    )
    .await
}

/// `admin_profiles.html`: every profile and the form that makes one.
#[derive(Debug, Serialize)]
struct ProfilesPage<'a> {
    title: &'static str,
    nav: &'static str,
    subnav: &'static str,
    profiles: Vec<ProfileRow<'a>>,
    form: &'a ProfileForm,
    errors: FormErrors,
    name_pattern: &'static str,
}

/// A profile, in brief, with how many workspaces use it.
#[derive(Debug, Serialize)]
struct ProfileRow<'a> {
    name: &'a str,
    display_name: &'a str,
    cpu_millis: u64,
    memory_bytes: u64,
    idle: String,
    lifetime_secs: Option<u64>,
    cost_per_hour_micros: u64,
    used_by: usize,
}

async fn profiles_view(
    st: &AppState,
    viewer: &Viewer,
    form: &ProfileForm,
    errors: FormErrors,
    status: StatusCode,
) -> ApiResult<Response> {
    let mut list = st.app.profiles(viewer.ctx.caller()).await?;
    list.sort_by(|a, b| a.name.cmp(&b.name));
    let workspaces = all_workspaces(st, None).await?;
    let profiles = list
        .iter()
        .map(|p| ProfileRow {
            name: p.name.as_str(),
            display_name: &p.spec.display_name,
            cpu_millis: p.spec.cpu_millis,
            memory_bytes: p.spec.memory_bytes,
            idle: idle_policy(&p.spec),
            lifetime_secs: p.spec.max_lifetime_secs,
            cost_per_hour_micros: p.spec.cost_per_hour_micros,
            used_by: workspaces
                .iter()
                .filter(|w| w.spec.profile == p.name)
                .count(),
        })
        .collect();
    let page = ProfilesPage {
        title: "Profiles",
        nav: "admin",
        subnav: "profiles",
        profiles,
        form,
        errors,
        name_pattern: model::NAME_PATTERN,
    };
    Ok(viewer.page("admin_profiles.html", status, &page))
}

async fn create_profile(State(st): State<AppState>, posted: Posted<ProfileForm>) -> Response {
    let Posted { viewer, form } = posted;
    admin_only(&viewer, async {
        let made = async {
            let update = form.to_update()?;
            profiles::create(&st, &viewer.ctx, form.name.trim(), update).await
        }
        .await;
        let ok = |p: model::Profile| {
            done(
                "/hub/admin/profiles",
                &format!("Created profile {}.", p.name),
            )
        };
        let (st, viewer) = (&st, &viewer);
        settle(made, by_the_user, ok, |e| async move {
            profiles_view(st, viewer, &form, profile_errors(&e), e.code.status()).await
        })
        .await
    })
    .await
}

async fn profile_page(
    State(st): State<AppState>,
    viewer: Viewer,
    Path(name): Path<String>,
) -> Response {
    admin_only(&viewer, async {
        let name = web::extract::path_name("profile", &name)?;
        let p = st.app.profile(viewer.ctx.caller(), &name).await?;
        Ok(profile_view(
            &viewer,
            &ProfileForm::of(&p),
            FormErrors::default(),
            StatusCode::OK,
        ))
    })
    .await
}

/// `admin_profile.html`: one profile's form.
#[derive(Debug, Serialize)]
struct ProfilePage<'a> {
    title: String,
    nav: &'static str,
    subnav: &'static str,
    form: &'a ProfileForm,
    errors: FormErrors,
}

fn profile_view(
    viewer: &Viewer,
    form: &ProfileForm,
    errors: FormErrors,
    status: StatusCode,
) -> Response {
    let page = ProfilePage {
        title: format!("Profile {}", form.name),
        nav: "admin",
        subnav: "profiles",
        form,
        errors,
    };
    viewer.page("admin_profile.html", status, &page)
}

async fn update_profile(
    State(st): State<AppState>,
    Path(name): Path<String>,
    posted: Posted<ProfileForm>,
) -> Response {
    let Posted { viewer, form } = posted;
    admin_only(&viewer, async {
        let changed = async {
            let update = form.to_update()?;
            profiles::update(&st, &viewer.ctx, &name, update).await
        }
        .await;
        let name = &name;
        let ok =
            |p: model::Profile| done("/hub/admin/profiles", &format!("Saved profile {}.", p.name));
        let viewer = &viewer;
        settle(changed, by_the_user, ok, |e| async move {
            let form = ProfileForm {
                name: name.clone(),
                ..form
            };
            Ok(profile_view(
                viewer,
                &form,
                profile_errors(&e),
                e.code.status(),
            ))
        })
        .await
    })
    .await
}

// --- quotas ----------------------------------------------------------------

/// `admin_quotas.html`: the default quota, and a page of users' use against
/// their limits.
#[derive(Debug, Serialize)]
struct QuotasPage {
    title: &'static str,
    nav: &'static str,
    subnav: &'static str,
    rows: Vec<QuotaRow>,
    /// The link to the next page of users.
    next: Option<String>,
    quota: model::Quota,
}

/// One user's limits and what counts against them.
#[derive(Debug, Serialize)]
struct QuotaRow {
    name: String,
    /// Whether the user has limits of their own.
    own: bool,
    limits: model::Quota,
    workspaces: u64,
    cpu_millis: u64,
    memory_bytes: u64,
    /// Whether any limit is reached.
    full: bool,
}

async fn quotas_page(
    State(st): State<AppState>,
    viewer: Viewer,
    Query(q): Query<UsersQuery>,
) -> Response {
    admin_only(&viewer, async {
        let default = st.config.quota;
        let own = st.app.quota_overrides(viewer.ctx.caller()).await?;
        let profiles = profiles_by_name(&st).await?;
        let workspaces = all_workspaces(&st, None).await?;
        let (list, next) =
            users_after(&st, &viewer, q.after.as_deref(), "/hub/admin/quotas").await?;
        let rows = list
            .iter()
            .map(|u| {
                let mine = || workspaces.iter().filter(|w| w.owner_id == u.id);
                let n = mine().count() as u64;
                let (cpu, mem) = active_use(mine(), &profiles);
                let limits = default.with(own.get(u.id.as_str()));
                QuotaRow {
                    name: u.name.to_string(),
                    own: own.contains_key(u.id.as_str()),
                    limits,
                    workspaces: n,
                    cpu_millis: cpu,
                    memory_bytes: mem,
                    full: n >= limits.max_workspaces
                        || cpu >= limits.max_cpu_millis
                        || mem >= limits.max_memory_bytes,
                }
            })
            .collect();
        let page = QuotasPage {
            title: "Quotas",
            nav: "admin",
            subnav: "quotas",
            rows,
            next,
            quota: default,
        };
        Ok(viewer.page("admin_quotas.html", StatusCode::OK, &page))
    })
    .await
}

/// One user's own limits as typed: empty fields are the default's.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
struct QuotaForm {
    #[serde(default)]
    workspaces: String,
    #[serde(default)]
    cpu: String,
    #[serde(default)]
    memory_gib: String,
}

/// The quota form's fields by the API's names in error messages.
const QUOTA_FIELDS: [(&str, &str); 3] = [
    ("max_workspaces", "workspaces"),
    ("max_cpu", "cpu"),
    ("max_memory_bytes", "memory_gib"),
];

impl QuotaForm {
    fn of(o: &model::QuotaOverride) -> Self {
        let show = |v: Option<u64>, f: fn(u64) -> String| v.map(f).unwrap_or_default();
        QuotaForm {
            workspaces: show(o.max_workspaces, |v| v.to_string()),
            cpu: show(o.max_cpu_millis, super::format::cpus),
            memory_gib: show(o.max_memory_bytes, super::format::gib),
        }
    }

    /// The API's body, or every field's error at once: one that is not a
    /// number, and what the API would refuse of the rest.
    fn to_update(&self) -> ApiResult<api_types::QuotaUpdate> {
        let mut errors: Vec<(String, String)> = Vec::new();
        let mut num = |field: &str, s: &str, whole: bool| -> Option<f64> {
            let s = s.trim();
            if s.is_empty() {
                return None;
            }
            let v = s.parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0);
            match v {
                Some(v) if whole && v.fract() != 0.0 => {
                    errors.push((field.to_owned(), "enter a whole number, 0 or more".into()))
                }
                Some(_) => return v,
                None => errors.push((field.to_owned(), "enter a number, 0 or more".into())),
            }
            None
        };
        let workspaces = num("max_workspaces", &self.workspaces, true);
        let cpu = num("max_cpu", &self.cpu, false);
        // Past the ceiling (1 EiB) the API refuses it by name; saturate, not wrap.
        let memory = num("max_memory_bytes", &self.memory_gib, false)
            .map(|g| (g * (1u64 << 30) as f64).round().min(u64::MAX as f64) as u64);
        let update = api_types::QuotaUpdate {
            max_workspaces: workspaces.map(|v| v.min(u64::MAX as f64) as u64),
            max_cpu: cpu,
            max_memory_bytes: memory,
        };
        if errors.is_empty() {
            return Ok(update);
        }
        if let Err(e) = quotas::parse(&update) {
            errors.extend(e.fields);
        }
        Err(ApiError::invalid_fields(errors))
    }
}

async fn quota_page(
    State(st): State<AppState>,
    viewer: Viewer,
    Path(name): Path<String>,
) -> Response {
    admin_only(&viewer, async {
        let user = users::visible_user(&st, &viewer.ctx, &name, model::Scope::ReadUsers).await?;
        quota_view(
            &st,
            &viewer,
            &user,
            None,
            FormErrors::default(),
            StatusCode::OK,
        )
        .await
    })
    .await
}

/// `admin_quota.html`: one user's limits, use and the form that sets their own.
#[derive(Debug, Serialize)]
struct QuotaPage<'a> {
    title: String,
    nav: &'static str,
    subnav: &'static str,
    user: &'a str,
    /// Whether the user has limits of their own.
    own: bool,
    default: model::Quota,
    limits: model::Quota,
    used: QuotaUsed,
    form: QuotaForm,
    errors: FormErrors,
}

/// What counts against a user's quota.
#[derive(Debug, Serialize)]
struct QuotaUsed {
    workspaces: u64,
    cpu_millis: u64,
    memory_bytes: u64,
}

/// The quota page of `user`, with the form as typed, or else as saved.
async fn quota_view(
    st: &AppState,
    viewer: &Viewer,
    user: &model::User,
    typed: Option<&QuotaForm>,
    errors: FormErrors,
    status: StatusCode,
) -> ApiResult<Response> {
    let quota = st.app.quota_of(user.clone()).await?;
    let form = typed.cloned().unwrap_or_else(|| QuotaForm::of(&quota.own));
    let used = quota.used;
    let page = QuotaPage {
        title: format!("Quota of {}", user.name),
        nav: "admin",
        subnav: "quotas",
        user: user.name.as_str(),
        own: !quota.own.is_empty(),
        default: st.config.quota,
        limits: quota.limits,
        used: QuotaUsed {
            workspaces: used.workspaces,
            cpu_millis: used.cpu_millis,
            memory_bytes: used.memory_bytes,
        },
        form,
        errors,
    };
    Ok(viewer.page("admin_quota.html", status, &page))
}

async fn update_quota(
    State(st): State<AppState>,
    Path(name): Path<String>,
    posted: Posted<QuotaForm>,
) -> Response {
    let Posted { viewer, form } = posted;
    admin_only(&viewer, async {
        let saved = async {
            let own = quotas::parse(&form.to_update()?)?;
            quotas::set(&st, &viewer.ctx, &name, &own).await
        }
        .await;
        let ok = |u: model::User| {
            done(
                "/hub/admin/quotas",
                &format!("Saved the quota of {}.", u.name),
            )
        };
        let fixable = |e: &ApiError| e.code == Code::InvalidValue;
        let name = &name;
        let (st, viewer) = (&st, &viewer);
        settle(saved, fixable, ok, |e| async move {
            let user = users::visible_user(st, &viewer.ctx, name, model::Scope::ReadUsers).await?;
            let errors = FormErrors::from_api_as(&e, &QUOTA_FIELDS);
            quota_view(st, viewer, &user, Some(&form), errors, e.code.status()).await
        })
        .await
    })
    .await
}

async fn reset_quota(
    State(st): State<AppState>,
    Path(name): Path<String>,
    posted: Posted<super::NoFields>,
) -> Response {
    let viewer = &posted.viewer;
    admin_only(viewer, async {
        let u = quotas::set(&st, &viewer.ctx, &name, &model::QuotaOverride::default()).await?;
        Ok(done(
            "/hub/admin/quotas",
            &format!("{} has the default quota again.", u.name),
        ))
    })
    .await
}

// --- workspaces ------------------------------------------------------------

#[derive(Debug, Deserialize)]
struct WorkspacesQuery {
    /// Every workspace, not only the running ones.
    all: Option<String>,
}

/// `admin_workspaces.html`: everyone's running (or all) workspaces.
#[derive(Debug, Serialize)]
struct WorkspacesPage {
    title: &'static str,
    nav: &'static str,
    subnav: &'static str,
    /// Whether it lists stopped workspaces too.
    all: bool,
    workspaces: Vec<WorkspaceRow>,
}

/// A workspace with its cost so far and, when it runs, what it uses now.
#[derive(Debug, Serialize)]
struct WorkspaceRow {
    #[serde(flatten)]
    ws: WorkspaceView,
    cost_micros: u64,
    usage: Option<Usage>,
}

async fn workspaces_page(
    State(st): State<AppState>,
    viewer: Viewer,
    Query(q): Query<WorkspacesQuery>,
) -> Response {
    admin_only(&viewer, async {
        let all = checked(&q.all);
        let profiles = profiles_by_name(&st).await?;
        let list: Vec<_> = all_workspaces(&st, None)
            .await?
            .into_iter()
            .filter(|w| {
                all || w.status.state != WorkspaceState::Stopped
                    || w.spec.desired != DesiredState::Stopped
            })
            .collect();
        // Usage is sampled per workspace; sample them together.
        let usage = futures::future::join_all(list.iter().map(|w| async {
            match (&st.runtime, w.status.state) {
                (Some(rt), WorkspaceState::Running | WorkspaceState::Paused) => {
                    rt.usage(&w.id).await.ok().flatten()
                }
                _ => None,
            }
        }))
        .await;
        let ran = super::details::running(&st, None, None).await?;
        let rows = list
            .iter()
            .zip(usage)
            .map(|(w, u)| {
                let ws = view(w, &profiles);
                let ran = ran.get(w.id.as_str()).copied().unwrap_or(0);
                WorkspaceRow {
                    cost_micros: super::details::cost(ran, ws.cost_per_hour_micros),
                    usage: u.map(|u| Usage {
                        cpu_millis: u.cpu_millis,
                        memory_bytes: u.memory_bytes,
                    }),
                    ws,
                }
            })
            .collect();
        let page = WorkspacesPage {
            title: if all {
                "All workspaces"
            } else {
                "Running workspaces"
            },
            nav: "admin",
            subnav: "workspaces",
            all,
            workspaces: rows,
        };
        Ok(viewer.page("admin_workspaces.html", StatusCode::OK, &page))
    })
    .await
}

// --- audit -----------------------------------------------------------------

/// The audit log's filter, as the query string has it.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
struct AuditForm {
    #[serde(default)]
    user: String,
    #[serde(default)]
    action: String,
    /// `YYYY-MM-DD` (a date input) or RFC 3339.
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    before: String,
}

/// A date input's `YYYY-MM-DD` as the API's RFC 3339 (midnight UTC).
fn day(s: &str) -> String {
    let s = s.trim();
    if s.len() == 10 && s.as_bytes().get(4) == Some(&b'-') {
        format!("{s}T00:00:00Z")
    } else {
        s.to_owned()
    }
}

/// `admin_audit.html`: audit records, newest first, and the filter.
#[derive(Debug, Serialize)]
struct AuditPage<'a> {
    title: &'static str,
    nav: &'static str,
    subnav: &'static str,
    records: Vec<AuditRow>,
    form: &'a AuditForm,
    errors: FormErrors,
    /// The link to the next, older page.
    older: Option<String>,
}

/// One audit record.
#[derive(Debug, Serialize)]
struct AuditRow {
    at: Millis,
    actor: Option<String>,
    action: &'static str,
    /// The target's type and name.
    target: String,
    outcome: &'static str,
    source: Option<String>,
    detail: Option<String>,
}

async fn audit_page(
    State(st): State<AppState>,
    viewer: Viewer,
    Query(form): Query<AuditForm>,
) -> Response {
    admin_only(&viewer, async {
        let opt = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_owned());
        let filter = audit::filter(
            opt(&form.user),
            opt(&form.action),
            opt(&form.since).map(|s| day(&s)),
            opt(&form.until).map(|s| day(&s)),
            opt(&form.before),
            Some(100),
        );
        let row = |r: &model::AuditRecord| {
            let a = &r.entry;
            AuditRow {
                at: r.at,
                actor: a.actor.clone(),
                action: a.action.as_str(),
                target: format!("{} {}", a.target_type, a.target),
                outcome: a.outcome.as_str(),
                source: a.source.clone(),
                detail: a.detail.clone(),
            }
        };
        let (Page { items: rows, next }, errors, status) = match filter {
            Ok(f) => {
                let records = st.app.audit(viewer.ctx.caller(), &f).await?;
                let rows = page(records, f.limit - 1, |r| r.id.clone(), row);
                (rows, FormErrors::default(), StatusCode::OK)
            }
            Err(e) => (
                Page {
                    items: Vec::new(),
                    next: None,
                },
                FormErrors::from_api(&e, &["user", "action", "since", "until", "before"]),
                e.code.status(),
            ),
        };
        let older = next.map(|before| {
            let q = AuditForm {
                before,
                ..form.clone()
            };
            format!(
                "/hub/admin/audit?{}",
                serde_urlencoded::to_string(&q).unwrap_or_default()
            )
        });
        let page = AuditPage {
            title: "Audit log",
            nav: "admin",
            subnav: "audit",
            records: rows,
            form: &form,
            errors,
            older,
        };
        Ok(viewer.page("admin_audit.html", status, &page))
    })
    .await
}

// --- services ---------------------------------------------------------------

/// `admin_services.html`: every service and the form that makes one.
#[derive(Debug, Serialize)]
struct ServicesPage {
    title: &'static str,
    nav: &'static str,
    subnav: &'static str,
    name_pattern: &'static str,
    services: Vec<ServiceRow>,
    created: Option<NewService>,
}

/// A service account.
#[derive(Debug, Serialize)]
struct ServiceRow {
    name: String,
    admin: bool,
    created_at: Millis,
}

/// A service just made, with its token, shown this once.
#[derive(Debug, Serialize)]
struct NewService {
    name: String,
    token: String,
}

/// The services page; after a creation, the new token, shown this once.
async fn services_view(
    st: &AppState,
    viewer: &Viewer,
    created: Option<(String, String)>,
) -> ApiResult<Response> {
    let services = st
        .app
        .services(viewer.ctx.caller())
        .await?
        .into_iter()
        .map(|s| ServiceRow {
            name: s.name.to_string(),
            admin: s.is_admin,
            created_at: s.created_at,
        })
        .collect();
    let page = ServicesPage {
        title: "Services",
        nav: "admin",
        subnav: "services",
        name_pattern: model::NAME_PATTERN,
        services,
        created: created.map(|(name, token)| NewService { name, token }),
    };
    Ok(viewer.page("admin_services.html", StatusCode::OK, &page))
}

async fn services_page(State(st): State<AppState>, viewer: Viewer) -> Response {
    admin_only(&viewer, services_view(&st, &viewer, None)).await
}

#[derive(Debug, Deserialize)]
struct ServiceForm {
    #[serde(default)]
    name: String,
    admin: Option<String>,
}

async fn create_service(State(st): State<AppState>, posted: Posted<ServiceForm>) -> Response {
    let viewer = &posted.viewer;
    admin_only(viewer, async {
        let name = web::extract::name("name", &posted.form.name)?;
        let token = format!("{}{}", web::auth::TOKEN_PREFIX, web::auth::random_secret());
        let admin = posted.form.admin.is_some();
        services::create(&st, &viewer.ctx, &name, admin, Some(&token)).await?;
        services_view(&st, viewer, Some((name.to_string(), token))).await
    })
    .await
}

async fn delete_service(
    State(st): State<AppState>,
    Path(name): Path<String>,
    posted: Posted<super::NoFields>,
) -> Response {
    let viewer = &posted.viewer;
    admin_only(viewer, async {
        services::delete(&st, &viewer.ctx, &name).await?;
        Ok(done(
            "/hub/admin/services",
            &format!("Service {name} is deleted; its token no longer works."),
        ))
    })
    .await
}
