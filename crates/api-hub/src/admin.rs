//! JupyterHub's admin REST API under `/hub/api`: creating, changing and deleting
//! users, their API tokens, and groups, as JupyterHub's spec describes them
//! (`docs/source/_static/rest-api.yml` in jupyterhub/jupyterhub), so that
//! JupyterHub's admin clients work against berth.
//!
//! Every change goes through the code of the `/api/v1` equivalent
//! (`routes::users`, `routes::groups`, `routes::tokens`), so it is authorized
//! exactly as there and writes the same audit records: admins create, change and
//! delete users and manage groups; a user reads and manages their own tokens;
//! another user's resources are a 404.
//!
//! Where berth answers differently from JupyterHub:
//! - Bodies are checked with berth's codes: malformed JSON is a 400
//!   `invalid_json`; a missing, unknown or mistyped field a 422 `invalid_body`;
//!   a bad name a 422 `invalid_name`; an unknown user, an empty list or a rename
//!   a 422 `invalid_value` (JupyterHub answers 400 to all of them).
//! - Users cannot be renamed: a `PATCH` whose `name` differs is refused.
//! - A user who still owns workspaces (servers) is not deleted but refused with a
//!   409 `conflict`, as are deleting and demoting oneself: handlers never stop
//!   servers themselves.
//! - Group properties are not stored: a group's `properties` is always `{}`, and
//!   `PUT /hub/api/groups/{name}/properties` is not served. Roles are berth's
//!   scopes, so `roles` is always `[]` and a token asking for roles is refused.
//! - Token ids are berth's ids, and token scopes berth's scope names. A token's
//!   `oauth_client` is the workspace client it belongs to (its app's own token,
//!   or one issued through its OAuth flow), else `JupyterHub`.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use axum::routing::{get, post, put};
use axum::Router;
use serde::Deserialize;

use api_types::TokenCreate;
use model::{now_millis, Scope};

use crate::models::{Group, Token, TokenList, User};
use crate::{new_user_model, options, paginated, user_model, Paging};
use web::auth::Ctx;
use web::convert;
use web::error::{ApiError, ApiResult, Code};
use web::extract::{self, Json, Path, Query};
use web::ops::{groups, tokens, users};
use web::AppState;

/// The most names one request may list.
const MAX_NAMES: usize = 1000;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/hub/api/users", post(create_users))
        .route(
            "/hub/api/users/{name}",
            post(create_user).patch(update_user).delete(delete_user),
        )
        .route(
            "/hub/api/users/{name}/tokens",
            get(list_tokens).post(create_token),
        )
        .route(
            "/hub/api/users/{name}/tokens/{token_id}",
            get(get_token).delete(delete_token),
        )
        .route("/hub/api/groups", get(list_groups).post(create_groups))
        .route(
            "/hub/api/groups/{name}",
            get(get_group).post(create_group).delete(delete_group),
        )
        .route(
            "/hub/api/groups/{name}/users",
            post(add_members).delete(remove_members),
        )
        .route("/hub/api/groups/{name}/properties", put(set_properties))
}

/// Checks a list of names from a body: one at least, [`MAX_NAMES`] at most,
/// each valid; returns them without repeats, in order.
fn names(field: &str, list: &[String]) -> ApiResult<Vec<model::Name>> {
    if list.is_empty() || list.len() > MAX_NAMES {
        return Err(ApiError::new(
            Code::InvalidValue,
            format!("{field}: list 1 to {MAX_NAMES} names"),
        ));
    }
    let mut out: Vec<model::Name> = Vec::with_capacity(list.len());
    let mut seen = std::collections::HashSet::with_capacity(list.len());
    for n in list {
        let name = extract::name(field, n)?;
        if seen.insert(name.clone()) {
            out.push(name);
        }
    }
    Ok(out)
}

fn created<T>(body: T) -> (StatusCode, axum::Json<T>) {
    (StatusCode::CREATED, axum::Json(body))
}

// ---- users -------------------------------------------------------------------

/// `POST /hub/api/users`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUsers {
    usernames: Vec<String>,
    /// Whether every user created is an admin.
    #[serde(default)]
    admin: bool,
}

/// Creates the users that do not exist yet (201 with their models); if all
/// exist, 409, as JupyterHub answers.
async fn create_users(
    State(st): State<AppState>,
    ctx: Ctx,
    Json(req): Json<NewUsers>,
) -> ApiResult<(StatusCode, axum::Json<Vec<User>>)> {
    if !ctx.principal.has(Scope::AdminUsers) {
        return Err(ApiError::forbidden(Scope::AdminUsers));
    }
    let names = names("usernames", &req.usernames)?;
    // One transaction for all: those that exist already are left as they are.
    let users = st
        .app
        .create_users(ctx.caller(), &names, req.admin)
        .await
        .map_err(|e| match e {
            app::AppError::AlreadyExists { .. } => ApiError::new(
                Code::AlreadyExists,
                format!("all {} users exist already", req.usernames.len()),
            ),
            e => e.into(),
        })?;
    let models = users.iter().map(|u| new_user_model(&ctx, u)).collect();
    Ok(created(models))
}

/// `POST /hub/api/users/{name}`: an optional body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    #[serde(default)]
    admin: bool,
}

async fn create_user(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, axum::Json<User>)> {
    let o: NewUser = options(&body)?;
    let cmd = app::CreateUser {
        name: extract::name("name", &name)?,
        password: None,
        admin: o.admin,
    };
    let user = st.app.create_user(ctx.caller(), cmd).await?;
    Ok(created(new_user_model(&ctx, &user)))
}

/// `PATCH /hub/api/users/{name}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserChange {
    /// A new name renames the user.
    name: Option<String>,
    admin: Option<bool>,
}

async fn update_user(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(name): Path<String>,
    Json(req): Json<UserChange>,
) -> ApiResult<axum::Json<User>> {
    let change = app::UpdateUser {
        rename: req
            .name
            .filter(|n| *n != name)
            .map(|n| extract::name("name", &n))
            .transpose()?,
        admin: req.admin,
        ..app::UpdateUser::default()
    };
    let user = users::update(&st, &ctx, &name, change)
        .await
        .map_err(|e| match e.code {
            // As JupyterHub: a name taken is a bad request.
            Code::AlreadyExists => ApiError::new(Code::InvalidValue, e.message),
            _ => e,
        })?;
    Ok(axum::Json(user_model(&st, &ctx, &user, false).await?))
}

async fn delete_user(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    // As JupyterHub: without the scope at all, 403 before any lookup.
    ctx.require_any(Scope::DeleteUsers)?;
    users::delete(&st, &ctx, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- tokens ------------------------------------------------------------------

/// JupyterHub's token model.
fn token_model(owner: &model::User, t: &model::Token) -> Token {
    let w = convert::token(t);
    Token {
        created: w.created,
        expires_at: w.expires_at,
        id: w.id,
        kind: "api_token",
        last_activity: w.last_used,
        note: w.note,
        oauth_client: match t.workspace_id.as_deref() {
            Some(ws) => model::hub::client_id(ws),
            None => "JupyterHub".to_owned(),
        },
        roles: Vec::new(),
        scopes: t.scopes.as_jupyterhub(&owner.name, owner.is_admin),
        session_id: None,
        token: None,
        user: owner.name.to_string(),
    }
}

/// A user's tokens that have not expired, as `{"api_tokens": [...]}`.
async fn list_tokens(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<TokenList>> {
    ctx.require_any(Scope::ReadTokens)?;
    let (user, all) = tokens::list(&st, &ctx, &name).await?;
    let now = now_millis();
    let api_tokens = all
        .iter()
        .filter(|t| t.expires_at.is_none_or(|at| at > now))
        .map(|t| token_model(&user, t))
        .collect();
    Ok(axum::Json(TokenList { api_tokens }))
}

async fn get_token(
    State(st): State<AppState>,
    ctx: Ctx,
    Path((name, id)): Path<(String, String)>,
) -> ApiResult<axum::Json<Token>> {
    ctx.require_any(Scope::ReadTokens)?;
    let (user, all) = tokens::list(&st, &ctx, &name).await?;
    let token = all
        .iter()
        .find(|t| t.id == id)
        .ok_or_else(|| ApiError::not_found("token"))?;
    Ok(axum::Json(token_model(&user, token)))
}

/// `POST /hub/api/users/{name}/tokens`: an optional body (other keys are
/// ignored, as by JupyterHub).
#[derive(Debug, Default, Deserialize)]
struct NewToken {
    note: Option<String>,
    /// Lifetime in seconds; null, absent or 0 for a token that does not expire.
    expires_in: Option<serde_json::Number>,
    /// Null or absent: every scope the caller holds for that user.
    scopes: Option<Vec<String>>,
    /// JupyterHub's deprecated roles: only none is accepted.
    roles: Option<Vec<String>>,
}

/// A token's lifetime in whole seconds, however JSON spells the number (`60`,
/// `60.0`); 0, like null, is a token that does not expire (JupyterHub).
fn lifetime(n: Option<serde_json::Number>) -> ApiResult<Option<u64>> {
    let Some(n) = n else { return Ok(None) };
    let secs = n.as_u64().or_else(|| {
        n.as_f64()
            .filter(|f| f.fract() == 0.0 && (0.0..=u64::MAX as f64).contains(f))
            .map(|f| f as u64)
    });
    match secs {
        Some(0) => Ok(None),
        Some(s) => Ok(Some(s)),
        None => Err(ApiError::new(
            Code::InvalidValue,
            format!("expires_in: {n} is not a whole, non-negative number of seconds"),
        )),
    }
}

/// Creates a token; 201 with its model and, once, the token itself in `token`.
async fn create_token(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, axum::Json<Token>)> {
    // As JupyterHub: a user who does not exist and one the caller may not
    // make tokens for get the same 403.
    let owner = match extract::path_name("user", &name) {
        Ok(n) => st.app.user_unchecked(&n).await?,
        Err(_) => None,
    };
    let Some(owner) = owner.filter(|u| ctx.principal.may(Scope::Tokens, &u.id)) else {
        return Err(ApiError::new(
            Code::Forbidden,
            format!("user {name} not found or no permissions to make tokens for"),
        ));
    };
    let o: NewToken = options(&body)?;
    if o.roles.as_ref().is_some_and(|r| !r.is_empty()) {
        return Err(ApiError::new(
            Code::InvalidValue,
            "roles: berth has no roles; ask for scopes",
        ));
    }
    // JupyterHub's default note.
    let note = match o.note {
        Some(note) if !note.is_empty() => note,
        _ if ctx.principal.name.as_str() == name => "Requested via api".to_owned(),
        _ => format!("Requested via api by user {}", ctx.principal.name),
    };
    let req = TokenCreate {
        note,
        scopes: o.scopes,
        expires_in: lifetime(o.expires_in)?,
    };
    let (token, secret) = tokens::create(&st, &ctx, &name, req).await?;
    Ok(created(Token {
        token: Some(secret),
        ..token_model(&owner, &token)
    }))
}

async fn delete_token(
    State(st): State<AppState>,
    ctx: Ctx,
    Path((name, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    ctx.require_any(Scope::Tokens)?;
    tokens::delete(&st, &ctx, &name, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- groups ------------------------------------------------------------------

/// JupyterHub's group model.
fn group_model(g: &model::Group) -> Group {
    let w = convert::group(g);
    Group {
        kind: "group",
        name: w.name,
        properties: g.properties.clone(),
        roles: Vec::new(),
        users: w.members,
    }
}

/// The groups the caller may see; paginated when the client asks for
/// JupyterHub's pagination media type.
async fn list_groups(
    State(st): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<Paging>,
) -> ApiResult<Response> {
    let mut all = groups::list(&st, &ctx).await?;
    // As JupyterHub: in creation order (ids are time-ordered).
    all.sort_by(|a, b| a.id.cmp(&b.id));
    let models = all.iter().map(group_model).collect();
    Ok(paginated(&headers, &uri, models, &q))
}

/// `POST /hub/api/groups`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewGroups {
    groups: Vec<String>,
    /// The members of every group created.
    #[serde(default)]
    users: Vec<String>,
}

/// Creates several groups with the same members: 201 with their models; 409,
/// before any is created, if one exists already.
async fn create_groups(
    State(st): State<AppState>,
    ctx: Ctx,
    Json(req): Json<NewGroups>,
) -> ApiResult<(StatusCode, axum::Json<Vec<Group>>)> {
    if !ctx.principal.has(Scope::AdminGroups) {
        return Err(ApiError::forbidden(Scope::AdminGroups));
    }
    let wanted = names("groups", &req.groups)?;
    for name in &wanted {
        match st.app.group(ctx.caller(), name).await {
            Ok(_) => {
                return Err(ApiError::new(
                    Code::AlreadyExists,
                    format!("group {name} exists already"),
                ))
            }
            Err(app::AppError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let members = groups::user_names(&req.users)?;
    st.app.user_ids(&members).await?;
    let mut models = Vec::with_capacity(wanted.len());
    for name in wanted {
        let cmd = app::CreateGroup {
            name,
            members: members.clone(),
        };
        models.push(group_model(&st.app.create_group(ctx.caller(), cmd).await?));
    }
    Ok(created(models))
}

async fn get_group(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<Group>> {
    // As JupyterHub: without the scope at all, 403 before any lookup.
    ctx.require_any(Scope::ReadGroups)?;
    let g = groups::visible_group(&st, &ctx, &name).await?;
    Ok(axum::Json(group_model(&g)))
}

/// `POST /hub/api/groups/{name}` (optional) and `/hub/api/groups/{name}/users`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Members {
    #[serde(default)]
    users: Vec<String>,
}

async fn create_group(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, axum::Json<Group>)> {
    let o: Members = options(&body)?;
    let g = groups::create(&st, &ctx, &name, &o.users).await?;
    Ok(created(group_model(&g)))
}

async fn delete_group(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    groups::delete(&st, &ctx, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The body of adding and removing members: `users` is required.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MemberList {
    users: Vec<String>,
}

async fn add_members(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(name): Path<String>,
    Json(req): Json<MemberList>,
) -> ApiResult<axum::Json<Group>> {
    Ok(axum::Json(group_model(
        &groups::add(&st, &ctx, &name, &req.users).await?,
    )))
}

/// Removes users from a group (200 with its model); all must exist, and each
/// removal is the `/api/v1` removal of one member, audit record included.
async fn remove_members(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(name): Path<String>,
    Json(req): Json<MemberList>,
) -> ApiResult<axum::Json<Group>> {
    if !ctx.principal.has(Scope::AdminGroups) {
        return Err(ApiError::forbidden(Scope::AdminGroups));
    }
    let g = groups::visible_group(&st, &ctx, &name).await?;
    let users = groups::user_names(&req.users)?;
    st.app.user_ids(&users).await?;
    let mut done: Vec<&model::Name> = Vec::with_capacity(users.len());
    for user in &users {
        if !done.contains(&user) {
            st.app.remove_member(ctx.caller(), &g.name, user).await?;
            done.push(user);
        }
    }
    Ok(axum::Json(group_model(
        &st.app.group(ctx.caller(), &g.name).await?,
    )))
}

/// Replaces a group's properties with the body, a JSON object (200 with the
/// group's model).
async fn set_properties(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<axum::Json<Group>> {
    // JupyterHub's scope for this is `groups`.
    ctx.require_any(Scope::Groups)?;
    let properties = crate::json_object(&body, "the group's properties")?;
    let g = groups::set_properties(&st, &ctx, &name, properties).await?;
    Ok(axum::Json(group_model(&g)))
}
