//! JupyterHub's services under `/hub/api/services`: non-human identities (the
//! idle culler, other tools) with their own tokens. A service is an admin or
//! holds nothing, as a JupyterHub service with or without the admin role;
//! it owns no workspace, belongs to no group and cannot log in. berth runs
//! no service itself and proxies to none, so `command` and `url` stay empty.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use serde_json::{Map, Value};

use model::Scope;

use crate::models::{Service, ServiceDetails};
use web::auth::Ctx;
use web::error::{ApiError, ApiResult, Code};
use web::extract::{self, Path};
use web::ops::services::{create, delete};
use web::AppState;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/hub/api/services", get(list_services))
        .route(
            "/hub/api/services/{name}",
            get(get_service).post(create_service).delete(delete_service),
        )
}

/// JupyterHub's service model, with what `read:services` shows (else only
/// the kind, name and admin flag).
pub(crate) fn service_model(ctx: &Ctx, s: &model::User) -> Service {
    model_with(ctx, s, Some(String::new()), Some(Map::new()), Some(true))
}

/// A service's own model at `/hub/api/user`: as JupyterHub's, which reads
/// it from its database, with no `url`, `info` or `display`. A service may
/// always read its name there.
pub(crate) fn whoami_model(ctx: &Ctx, s: &model::User) -> Service {
    model_with(ctx, s, None, None, None)
}

fn model_with(
    ctx: &Ctx,
    s: &model::User,
    url: Option<String>,
    info: Option<Map<String, Value>>,
    display: Option<bool>,
) -> Service {
    let details = ctx
        .principal
        .has(Scope::ReadServices)
        .then(|| ServiceDetails {
            command: Vec::new(),
            display,
            info,
            pid: 0,
            prefix: String::new(),
            url,
        });
    Service {
        admin: s.is_admin,
        details,
        kind: "service",
        name: s.name.to_string(),
        roles: ctx.principal.has(Scope::ReadRolesServices).then(|| {
            if s.is_admin {
                vec!["admin"]
            } else {
                vec![]
            }
        }),
    }
}

async fn list_services(
    State(st): State<AppState>,
    ctx: Ctx,
) -> ApiResult<axum::Json<BTreeMap<String, Service>>> {
    let all = st
        .app
        .services(ctx.caller())
        .await?
        .iter()
        .map(|s| (s.name.to_string(), service_model(&ctx, s)))
        .collect();
    Ok(axum::Json(all))
}

async fn find(st: &AppState, name: &str) -> ApiResult<model::User> {
    Ok(st
        .app
        .service(&extract::path_name("service", name)?)
        .await?)
}

async fn get_service(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<Service>> {
    let may_read = [
        Scope::ReadServices,
        Scope::ReadServicesName,
        Scope::ReadRolesServices,
    ];
    if !may_read.iter().any(|s| ctx.principal.has(*s)) {
        return Err(ApiError::forbidden(Scope::ReadServicesName));
    }
    let s = find(&st, &name).await?;
    Ok(axum::Json(service_model(&ctx, &s)))
}

/// `POST /hub/api/services/{name}`: the keys of JupyterHub's that mean
/// something to berth; `command` and `url` only empty.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewService {
    name: Option<String>,
    #[serde(default)]
    admin: bool,
    /// The service's token, as its configuration holds it; none for a
    /// service that only identifies itself later.
    api_token: Option<String>,
    #[serde(default)]
    command: Vec<String>,
    #[serde(default)]
    url: String,
}

/// Creates a service (201 with its model); 409 if the name is taken.
async fn create_service(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, axum::Json<Service>)> {
    ctx.require_any(Scope::AdminServices)?;
    let name = extract::name("name", &name)?;
    exists_not(&st, &name).await?;
    let spec = crate::json_object(&body, "the service")?;
    // As JupyterHub: an empty object is no service either.
    if spec.is_empty() {
        return Err(ApiError::new(
            Code::InvalidBody,
            "the body must be the service: admin, api_token",
        ));
    }
    let spec: NewService = serde_json::from_value(Value::Object(spec))
        .map_err(|e| ApiError::new(Code::InvalidBody, e.to_string()))?;
    if spec.name.as_deref().is_some_and(|n| n != name.as_str()) {
        return Err(ApiError::new(
            Code::InvalidValue,
            "name: must be the name in the path",
        ));
    }
    if !spec.command.is_empty() || !spec.url.is_empty() {
        return Err(ApiError::new(
            Code::InvalidValue,
            "command, url: berth neither runs services nor proxies to them",
        ));
    }
    let service = create(&st, &ctx, &name, spec.admin, spec.api_token.as_deref()).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(service_model(&ctx, &service)),
    ))
}

/// 409 if service `name` exists.
async fn exists_not(st: &AppState, name: &model::Name) -> ApiResult<()> {
    match st.app.service(name).await {
        Ok(_) => Err(ApiError::new(
            Code::AlreadyExists,
            format!("service {name} exists already"),
        )),
        Err(app::AppError::NotFound { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Deletes a service and its tokens: 200 with no body, as JupyterHub.
async fn delete_service(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    delete(&st, &ctx, &name).await?;
    Ok(StatusCode::OK)
}
