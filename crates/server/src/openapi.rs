//! The OpenAPI document of `/api/v1`, generated from the handlers' annotations.

use utoipa::openapi::schema::{Schema, SchemaType, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::RefOr;
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "berth",
        description = "On-demand, isolated development workspaces. Authenticate with \
            `Authorization: Bearer <token>` (or `token <token>`), or with the session \
            cookie from `POST /api/v1/auth/login` plus its `x-csrf-token` on mutations. \
            Errors are `{code, message, request_id}`; codes are listed in docs/http-errors.md."
    ),
    modifiers(&Security),
    components(schemas(api_types::WorkspaceStateEvent)),
    security(("token" = []), ("session" = [])),
    tags(
        (name = "auth", description = "Log in and out; who am I"),
        (name = "users"), (name = "groups"), (name = "tokens"), (name = "profiles"),
        (name = "workspaces", description = "Desired state of workspaces; the controller converges them"),
        (name = "shares", description = "Who may use a workspace besides its owner"),
        (name = "audit", description = "The append-only audit log (admins)"),
    )
)]
pub(crate) struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let c = doc.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        c.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(web::auth::SESSION_COOKIE))),
        );
    }
}

/// The values of the API's fields that are strings of a fixed set, from the
/// domain's own lists (so the document cannot drift from what the API says):
/// `enum` in each field's schema.
struct Enums;

impl Modify for Enums {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        fn strs<T: Copy>(all: &[T], name: fn(T) -> &'static str) -> Vec<&'static str> {
            all.iter().map(|v| name(*v)).collect()
        }
        use model::{
            AuditAction, ConditionKind, DesiredState, IdleAction, Outcome, WorkspaceState,
        };
        let codes = strs(web::error::Code::ALL, web::error::Code::as_str);
        let states = strs(WorkspaceState::ALL, WorkspaceState::as_str);
        let mut events = states.clone();
        events.push("deleted");
        let idle = strs(IdleAction::ALL, IdleAction::as_str);
        let fields: [(&str, &str, Vec<&str>); 11] = [
            ("ErrorBody", "code", codes),
            ("Workspace", "state", states),
            (
                "Workspace",
                "desired_state",
                strs(DesiredState::ALL, DesiredState::as_str),
            ),
            ("WorkspaceStateEvent", "state", events),
            (
                "Condition",
                "kind",
                strs(ConditionKind::ALL, ConditionKind::as_str),
            ),
            ("Profile", "idle_action", idle.clone()),
            ("ProfileCreate", "idle_action", idle.clone()),
            ("ProfileUpdate", "idle_action", idle),
            (
                "AuditRecord",
                "action",
                strs(AuditAction::ALL, AuditAction::as_str),
            ),
            (
                "AuditRecord",
                "outcome",
                strs(Outcome::ALL, Outcome::as_str),
            ),
            ("Me", "via", vec!["session", "token"]),
        ];
        let schemas = &mut doc.components.get_or_insert_with(Default::default).schemas;
        for (schema, field, values) in fields {
            set_enum(schemas, schema, field, values);
        }
    }
}

/// Sets the values `field` of `schema` may take (and `null`, if it may be null).
fn set_enum(
    schemas: &mut std::collections::BTreeMap<String, RefOr<Schema>>,
    schema: &str,
    field: &str,
    values: Vec<&str>,
) {
    let Some(RefOr::T(Schema::Object(object))) = schemas.get_mut(schema) else {
        panic!("the OpenAPI document has no object schema {schema}");
    };
    let Some(RefOr::T(Schema::Object(property))) = object.properties.get_mut(field) else {
        panic!("the OpenAPI schema {schema} has no field {field}");
    };
    let nullable = matches!(&property.schema_type,
        SchemaType::Array(types) if types.contains(&Type::Null));
    let mut values: Vec<serde_json::Value> = values.into_iter().map(Into::into).collect();
    if nullable {
        values.push(serde_json::Value::Null);
    }
    property.enum_values = Some(values);
}

/// The router of `/api/v1` and its complete document, as served at
/// `/api/v1/openapi.json` (the handlers' schemas are in only once it is split).
pub(crate) fn api() -> (axum::Router<crate::AppState>, utoipa::openapi::OpenApi) {
    let (router, mut doc) = crate::routes::api().split_for_parts();
    Enums.modify(&mut doc);
    (router, doc)
}

/// The complete document, as served at `/api/v1/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api().1
}
