//! The outermost middleware: gives each request an id, renders `ApiError`s as JSON
//! with that id, logs each request once, and records Prometheus metrics.

use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use web::auth::RequestId;
use web::error::{Code, ErrorInfo};
use web::AppState;

pub(crate) async fn observe(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let id = request_id();
    req.extensions_mut().insert(RequestId(id.clone()));
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let res = next.run(req).await;
    finish(&state, res, &id, &method, &route, started)
}

/// A new request id. From the thread-local generator: no system call.
pub(crate) fn request_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// What every answer of berth's own gets on its way out: an [`ApiError`]'s
/// JSON body, the `x-request-id` header, a log line and the metrics.
///
/// [`ApiError`]: web::error::ApiError
pub(crate) fn finish(
    state: &AppState,
    mut res: Response,
    id: &str,
    method: &Method,
    route: &str,
    started: Instant,
) -> Response {
    if let Some(info) = res.extensions_mut().remove::<ErrorInfo>() {
        if info.code.status().is_server_error() {
            tracing::error!(request_id = %id, %method, %route, code = info.code.as_str(),
                cause = info.internal.as_deref().unwrap_or(""), "request failed");
        }
        res = render_error(res, info.code, info.message, id);
    } else if res.status() == StatusCode::METHOD_NOT_ALLOWED && !has_body(&res) {
        res = render_error(res, Code::MethodNotAllowed, "method not allowed".into(), id);
    }
    if let Ok(v) = HeaderValue::from_str(id) {
        res.headers_mut().insert("x-request-id", v);
    }
    let elapsed = started.elapsed();
    state
        .metrics
        .observe_request(method.as_str(), route, res.status().as_u16(), elapsed);
    tracing::debug!(request_id = %id, %method, %route, status = res.status().as_u16(),
        ms = elapsed.as_secs_f64() * 1000.0, "request");
    res
}

fn has_body(res: &Response) -> bool {
    res.headers().get(header::CONTENT_TYPE).is_some()
}

fn render_error(res: Response, code: Code, message: String, request_id: &str) -> Response {
    let (mut parts, _) = res.into_parts();
    let body = api_types::ErrorBody {
        status: parts.status.as_u16(),
        code: code.as_str().to_owned(),
        message,
        request_id: request_id.to_owned(),
    };
    let json = serde_json::to_vec(&body).expect("an error body always serializes");
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(json))
}
