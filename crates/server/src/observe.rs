//! The outermost middleware: gives each request an id, renders `ApiError`s as JSON
//! with that id, logs each request once, and records Prometheus metrics.

use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use web::auth::RequestId;
use web::error::{Code, ErrorInfo};
use web::AppState;

pub(crate) async fn observe(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    // From the thread-local generator: no system call per request.
    let id = format!("{:032x}", rand::random::<u128>());
    req.extensions_mut().insert(RequestId(id.clone()));
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());

    let mut res = next.run(req).await;

    if let Some(info) = res.extensions_mut().remove::<ErrorInfo>() {
        if info.code.status().is_server_error() {
            tracing::error!(request_id = %id, %method, %route, code = info.code.as_str(),
                cause = info.internal.as_deref().unwrap_or(""), "request failed");
        }
        res = render_error(res, info.code, info.message, &id);
    } else if res.status() == StatusCode::METHOD_NOT_ALLOWED && !has_body(&res) {
        res = render_error(
            res,
            Code::MethodNotAllowed,
            "method not allowed".into(),
            &id,
        );
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert("x-request-id", v);
    }
    let elapsed = started.elapsed();
    state
        .metrics
        .observe_request(method.as_str(), &route, res.status().as_u16(), elapsed);
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
    Response::from_parts(parts, Body::from(json)).into_response()
}
