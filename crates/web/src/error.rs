//! `ApiError`: the one type every HTTP error becomes.
//!
//! A handler returns an `ApiError`; its response carries the error as an extension
//! with an empty body, and the `observe` middleware (which knows the request id)
//! writes the JSON body `{code, message, request_id}` and logs server errors once.
//! Codes come from [`Code`], the single table documented in `docs/http-errors.md`.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

macro_rules! codes {
    ($($variant:ident => ($status:ident, $text:literal, $doc:literal);)*) => {
        /// Every error code berth's API returns.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Code { $($variant),* }

        impl Code {
            pub const ALL: &'static [Code] = &[$(Code::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $text),* }
            }

            pub fn status(self) -> StatusCode {
                match self { $(Code::$variant => StatusCode::$status),* }
            }

            /// When a client sees it, for `docs/http-errors.md`.
            pub fn doc(self) -> &'static str {
                match self { $(Code::$variant => $doc),* }
            }
        }
    };
}

codes! {
    InvalidJson => (BAD_REQUEST, "invalid_json", "The body is not well-formed JSON.");
    InvalidQuery => (BAD_REQUEST, "invalid_query", "A query parameter is unknown or malformed, or a cursor or limit is out of range.");
    Unauthenticated => (UNAUTHORIZED, "unauthenticated", "No valid session cookie or API token was presented, or it expired.");
    InvalidCredentials => (UNAUTHORIZED, "invalid_credentials", "Login failed: unknown user, wrong password or disabled account.");
    NoPassword => (UNAUTHORIZED, "no_password", "Login failed: the account has no password (an administrator sets one, or it uses API tokens).");
    Forbidden => (FORBIDDEN, "forbidden", "The session or token lacks the scope this request needs.");
    WrongPassword => (FORBIDDEN, "wrong_password", "Changing one's own password: `old_password` is not the current password.");
    QuotaExceeded => (FORBIDDEN, "quota_exceeded", "Creating or starting the workspace would exceed the owner's quota (workspaces, CPU or memory); the message says which.");
    CsrfFailed => (FORBIDDEN, "csrf_failed", "A cookie-authenticated mutation did not carry the session's `x-csrf-token` header.");
    NotFound => (NOT_FOUND, "not_found", "No such route or resource, or one the caller may not see.");
    MethodNotAllowed => (METHOD_NOT_ALLOWED, "method_not_allowed", "The route exists but not with this HTTP method.");
    AlreadyRunning => (BAD_REQUEST, "already_running", "The server runs already: JupyterHub's answer to starting it again (`/hub/api`).");
    ServerState => (BAD_REQUEST, "server_state", "The server is not in a state for this request: starting one that is stopping, or following the progress of one that is not starting (`/hub/api`).");
    AlreadyExists => (CONFLICT, "already_exists", "A resource with this name exists already.");
    Conflict => (CONFLICT, "conflict", "The resource's state forbids this change (in use, being deleted, yourself).");
    PayloadTooLarge => (PAYLOAD_TOO_LARGE, "payload_too_large", "The body exceeds the limit (64 KiB).");
    UnsupportedMediaType => (UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "The body is not sent as `content-type: application/json`.");
    InvalidBody => (UNPROCESSABLE_ENTITY, "invalid_body", "The JSON does not match the expected shape: a missing, unknown or mistyped field.");
    InvalidName => (UNPROCESSABLE_ENTITY, "invalid_name", "A name does not match `^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$`.");
    InvalidValue => (UNPROCESSABLE_ENTITY, "invalid_value", "A field is out of its allowed range; the message names it.");
    UnknownScope => (UNPROCESSABLE_ENTITY, "unknown_scope", "A token asks for a scope berth does not know.");
    TooManyRequests => (TOO_MANY_REQUESTS, "too_many_requests", "Too many failed logins; retry after the `retry-after` header's seconds.");
    Internal => (INTERNAL_SERVER_ERROR, "internal", "A server fault; the log holds the details under the request id.");
    Unavailable => (SERVICE_UNAVAILABLE, "unavailable", "The database does not answer (`/readyz`).");
}

/// An HTTP error: a code, a message for people, and (for 5xx) the hidden cause.
#[derive(Debug)]
pub struct ApiError {
    pub code: Code,
    pub message: String,
    /// Logged, never sent.
    pub internal: Option<String>,
    pub retry_after: Option<u64>,
    /// Each field in error with why, when there are several (the message
    /// lists them too), for forms to show each beside its field.
    pub fields: Vec<(String, String)>,
}

impl ApiError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            internal: None,
            retry_after: None,
            fields: Vec::new(),
        }
    }

    /// 422 `invalid_value` for every field of `fields` at once:
    /// `field: reason; field: reason`.
    pub fn invalid_fields(fields: Vec<(String, String)>) -> Self {
        let message = fields
            .iter()
            .map(|(f, why)| format!("{f}: {why}"))
            .collect::<Vec<_>>()
            .join("; ");
        ApiError {
            fields,
            ..ApiError::new(Code::InvalidValue, message)
        }
    }

    pub fn not_found(what: &str) -> Self {
        ApiError::new(Code::NotFound, format!("{what} not found"))
    }

    pub fn forbidden(scope: model::Scope) -> Self {
        ApiError::new(
            Code::Forbidden,
            format!("this request needs the scope {scope}"),
        )
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        ApiError {
            code: Code::Internal,
            message: "internal server error".into(),
            internal: Some(cause.to_string()),
            retry_after: None,
            fields: Vec::new(),
        }
    }
}

impl From<::auth::PasswordError> for ApiError {
    fn from(e: ::auth::PasswordError) -> Self {
        match e {
            ::auth::PasswordError::Rejected(why) => ApiError {
                fields: vec![("password".into(), why.into())],
                ..ApiError::new(Code::InvalidValue, format!("password: {why}"))
            },
            e => ApiError::internal(e),
        }
    }
}

impl From<app::AppError> for ApiError {
    fn from(e: app::AppError) -> Self {
        use app::AppError as E;
        let about = |field: &str, why: &str, e: ApiError| ApiError {
            fields: vec![(field.to_owned(), why.to_owned())],
            ..e
        };
        match e {
            E::NotFound { what } => ApiError::not_found(what),
            E::Forbidden { scope } => ApiError::forbidden(scope),
            E::Refused { message } => ApiError::new(Code::Forbidden, message),
            E::Invalid { field, message } => about(
                field,
                &message,
                ApiError::new(Code::InvalidValue, format!("{field}: {message}")),
            ),
            E::AlreadyExists { field, message } => {
                let why = message
                    .strip_prefix(&format!("{field}: "))
                    .unwrap_or(&message);
                about(field, why, ApiError::new(Code::AlreadyExists, &*message))
            }
            E::Conflict { message } => ApiError::new(Code::Conflict, message),
            E::QuotaExceeded { message } => ApiError::new(Code::QuotaExceeded, message),
            E::Unauthenticated => ApiError::new(Code::Unauthenticated, e.to_string()),
            E::InvalidCredentials => ApiError::new(Code::InvalidCredentials, e.to_string()),
            E::NoPassword { .. } => ApiError::new(Code::NoPassword, e.to_string()),
            E::WrongPassword => about(
                "old_password",
                "that is not your current password",
                ApiError::new(Code::WrongPassword, e.to_string()),
            ),
            E::TooManyRequests { retry_after } => ApiError {
                retry_after: Some(retry_after),
                ..ApiError::new(Code::TooManyRequests, e.to_string())
            },
            E::Internal(cause) => ApiError::internal(cause),
            E::Store(e) => ApiError::internal(model::error_chain(&e)),
        }
    }
}

/// The error of a response, left for the `observe` middleware to render.
#[derive(Debug, Clone)]
pub struct ErrorInfo {
    pub code: Code,
    pub message: String,
    pub internal: Option<String>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = self.code.status().into_response();
        if let Some(secs) = self.retry_after {
            res.headers_mut()
                .insert("retry-after", HeaderValue::from(secs));
        }
        res.extensions_mut().insert(ErrorInfo {
            code: self.code,
            message: self.message,
            internal: self.internal,
        });
        res
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// The Markdown table of `docs/http-errors.md`, generated from [`Code`].
pub fn error_table_markdown() -> String {
    let mut s = String::from("| status | code | when |\n|---|---|---|\n");
    for c in Code::ALL {
        s.push_str(&format!(
            "| {} | `{}` | {} |\n",
            c.status().as_u16(),
            c.as_str(),
            c.doc()
        ));
    }
    s
}
