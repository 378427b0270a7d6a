//! Extractors whose rejections are `ApiError`s with stable codes.

use axum::extract::path::ErrorKind;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, Code};

/// A JSON body: wrong content type, malformed JSON, wrong shape and oversize
/// bodies each get their own code.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Json(v)),
            Err(rejection) => Err(json_error(rejection)),
        }
    }
}

fn json_error(r: JsonRejection) -> ApiError {
    let code = match r.status() {
        StatusCode::PAYLOAD_TOO_LARGE => Code::PayloadTooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => Code::UnsupportedMediaType,
        StatusCode::UNPROCESSABLE_ENTITY => Code::InvalidBody,
        _ => Code::InvalidJson,
    };
    let message = match code {
        Code::PayloadTooLarge => "the body is larger than 64 KiB".to_owned(),
        Code::UnsupportedMediaType => "send the body as content-type: application/json".to_owned(),
        _ => r.body_text(),
    };
    ApiError::new(code, message)
}

/// Query parameters; unknown or malformed ones are a 400 `invalid_query`.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|r: QueryRejection| ApiError::new(Code::InvalidQuery, r.body_text()))
    }
}

/// Path parameters. A segment that does not decode (not UTF-8) names nothing
/// that can exist, so it is a 404 like any other unknown name or id.
#[derive(Debug)]
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(p) => Ok(Path(p.0)),
            Err(PathRejection::FailedToDeserializePathParams(e))
                if matches!(e.kind(), ErrorKind::InvalidUtf8InPathParam { .. }) =>
            {
                Err(ApiError::new(Code::NotFound, "no such resource"))
            }
            Err(r) => Err(ApiError::internal(r.body_text())),
        }
    }
}

/// Parses a name from the API, with the `invalid_name` code on failure.
pub fn name(field: &str, s: &str) -> Result<model::Name, ApiError> {
    model::Name::parse(s).map_err(|e| ApiError::new(Code::InvalidName, format!("{field}: {e}")))
}

/// A name from a URL path: an invalid one cannot exist, so it is a 404.
pub fn path_name(what: &str, s: &str) -> Result<model::Name, ApiError> {
    model::Name::parse(s).map_err(|_| ApiError::not_found(what))
}

/// Whether `s` can be an id or a cursor: ids are UUIDs and cursors ids or names,
/// so anything longer or with other characters (NUL, which PostgreSQL refuses in
/// text, among them) cannot name a record.
fn id_like(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// An id from a URL path: one that cannot exist is a 404.
pub fn path_id<'a>(what: &str, s: &'a str) -> Result<&'a str, ApiError> {
    if id_like(s) {
        Ok(s)
    } else {
        Err(ApiError::not_found(what))
    }
}

/// A page cursor from the query (`after`, `before`): malformed is `invalid_query`.
pub fn cursor(field: &str, s: Option<String>) -> Result<Option<String>, ApiError> {
    match s {
        Some(c) if !id_like(&c) => Err(ApiError::new(
            Code::InvalidQuery,
            format!("{field}: not a cursor from a previous page"),
        )),
        c => Ok(c),
    }
}

/// Page size: default 50, at most 500.
pub fn limit(l: Option<i64>) -> Result<i64, ApiError> {
    match l {
        None => Ok(50),
        Some(n) if (1..=500).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::new(
            Code::InvalidQuery,
            "limit must be between 1 and 500",
        )),
    }
}
