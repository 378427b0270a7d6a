//! `/user/{user}/{workspace}/…`: every request is authenticated (from the auth
//! cache), authorized (`access:servers` on the workspace: its owner, an admin, or
//! a token filtered to it), and
//! then forwarded by the [`proxy`] crate, or answered with a page: a stopped
//! workspace offers to start; a starting one follows its state by server-sent
//! events and reloads when it is ready. Nothing here reads the store or calls a
//! runtime, except what the auth cache misses.

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use model::{now_millis, Scope, WorkspaceState};
use proxy::path::Resolved;

use crate::auth;
use crate::AppState;

pub(crate) async fn handle(State(st): State<AppState>, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    let query = req
        .uri()
        .query()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    let (owner, name, route) = match st.proxy.resolve(&path) {
        Resolved::Workspace { owner, name, route } => (owner, name, route),
        Resolved::Redirect(to) => return redirect(&format!("{to}{query}")),
        Resolved::NotFound => {
            return page(
                StatusCode::NOT_FOUND,
                "Not found",
                "<p>There is no such workspace.</p>",
            )
        }
        Resolved::BadPath => {
            return page(
                StatusCode::BAD_REQUEST,
                "Bad path",
                "<p>Paths with <code>.</code> or <code>..</code> segments are not served.</p>",
            )
        }
    };
    let (parts, body) = req.into_parts();
    let who = match may_open(&parts, &st, &route.owner_id, &name).await {
        Ok(who) => who,
        Err(page) => return page,
    };
    let title = format!("{owner}/{name}");
    match (route.state, route.upstream.as_deref()) {
        (WorkspaceState::Running, Some(upstream)) => {
            let client = parts
                .extensions
                .get::<ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0);
            let origin = proxy::Origin {
                client,
                proto: if st.config.secure_cookies {
                    "https"
                } else {
                    "http"
                },
            };
            let req = Request::from_parts(parts, body);
            match st
                .proxy
                .forward(req, upstream, &route.workspace_id, origin, now_millis())
                .await
            {
                Ok(response) => response.map(Body::new),
                Err(e) => {
                    tracing::warn!(workspace.id = %route.workspace_id, "proxy: {e}");
                    page(
                        StatusCode::BAD_GATEWAY,
                        &title,
                        "<p>The workspace's app did not answer. It may be restarting; try again in a moment.</p>",
                    )
                }
            }
        }
        (WorkspaceState::Pending | WorkspaceState::Starting | WorkspaceState::Running, _) => {
            progress_page(&title, &route.workspace_id, route.state, &route.message)
        }
        (state, _) => stopped_page(&title, &route.workspace_id, state, &route.message, who.csrf),
    }
}

/// Who is asking, if they may open the workspace `name` of `owner_id`
/// (`access:servers` on it); else the page that says why not (log in, or 403).
pub(crate) async fn may_open(
    parts: &axum::http::request::Parts,
    st: &AppState,
    owner_id: &str,
    name: &str,
) -> Result<auth::Authenticated, Response> {
    let who = match auth::authenticate(parts, st).await {
        Ok(who) => who,
        Err(e) if e.code == crate::error::Code::Unauthenticated => {
            return Err(page(
                StatusCode::UNAUTHORIZED,
                "Log in",
                "<p>Log in to berth to open this workspace.</p>",
            ))
        }
        Err(e) => return Err(e.into_response()),
    };
    if !who
        .principal
        .may_server(Scope::AccessServers, owner_id, name)
    {
        return Err(page(
            StatusCode::FORBIDDEN,
            "Forbidden",
            &format!(
                "<p>You ({}) may not open this workspace.</p>",
                escape(who.principal.name.as_str())
            ),
        ));
    }
    Ok(who)
}

fn redirect(to: &str) -> Response {
    match HeaderValue::from_str(to) {
        Ok(v) => (StatusCode::FOUND, [(header::LOCATION, v)]).into_response(),
        Err(_) => page(StatusCode::BAD_REQUEST, "Bad path", "<p>Unusable path.</p>"),
    }
}

/// The page a starting workspace shows: it follows the state and reloads when
/// the workspace is running.
fn progress_page(title: &str, id: &str, state: WorkspaceState, message: &str) -> Response {
    let body = format!(
        r#"<p>Your workspace is starting. This page reloads when it is ready.</p>
<p role="status" aria-live="polite">State: <strong id="state">{state}</strong> <span id="message">{message}</span></p>
<script>
const events = new EventSource("/api/v1/workspaces/{id}/events");
events.onmessage = (e) => {{
  const s = JSON.parse(e.data);
  document.getElementById("state").textContent = s.state;
  document.getElementById("message").textContent = s.message || "";
  if (s.ready) {{ events.close(); location.reload(); }}
  if (s.state === "failed" || s.state === "stopped" || s.state === "deleted") {{ events.close(); location.reload(); }}
}};
</script>"#,
        state = state.as_str(),
        message = escape(message),
        id = escape(id),
    );
    page(StatusCode::SERVICE_UNAVAILABLE, title, &body)
}

/// The page a stopped (paused, failed) workspace shows, offering to start it.
fn stopped_page(
    title: &str,
    id: &str,
    state: WorkspaceState,
    message: &str,
    csrf: Option<String>,
) -> Response {
    let action = match csrf {
        Some(csrf) => format!(
            r#"<button id="start" type="button">Start it</button>
<script>
document.getElementById("start").onclick = async () => {{
  const r = await fetch("/api/v1/workspaces/{id}/start", {{method: "POST", headers: {{"x-csrf-token": "{csrf}"}}}});
  if (r.ok) location.reload(); else document.getElementById("error").textContent = (await r.json()).message;
}};
</script>
<p id="error" role="alert"></p>"#,
            id = escape(id),
            csrf = escape(&csrf),
        ),
        None => format!(
            "<p>Start it with <code>POST /api/v1/workspaces/{}/start</code>.</p>",
            escape(id)
        ),
    };
    let body = format!(
        "<p>This workspace is <strong>{}</strong>.</p><p>{}</p>{action}",
        state.as_str(),
        escape(message)
    );
    page(StatusCode::SERVICE_UNAVAILABLE, title, &body)
}

pub(crate) fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · berth</title>
<style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;line-height:1.5}}button{{font:inherit;padding:.4rem 1rem}}</style>
</head><body><h1>{title}</h1>
{body}
</body></html>"#,
        title = escape(title),
    );
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        html,
    )
        .into_response()
}

/// Escapes text for HTML element content and quoted attributes.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
