//! The OpenAPI document of `/api/v1`, generated from the handlers' annotations.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
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
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(
                crate::auth::SESSION_COOKIE,
            ))),
        );
    }
}

/// The complete document, as served at `/api/v1/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    crate::routes::api().split_for_parts().1
}
