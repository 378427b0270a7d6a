//! berth's built-in reverse proxy. It resolves `/user/{user}/{workspace}/…`
//! against the route table the controller publishes ([`path`]), and forwards to
//! the workspace's upstream over pooled HTTP/1.1 keep-alive connections, bodies
//! streamed both ways, WebSocket upgrades spliced through. Paths are forwarded
//! unchanged (apps run under their base URL). The request path touches no
//! store and no runtime: routes come from a watch channel, activity goes to an
//! in-memory [`Activity`] that the controller flushes in batches.
//!
//! [`Proxy::serve`] is a request's whole way through ([`door`]): who asks,
//! which workspace, whether they may, the app or a page. What only berth
//! knows (credentials, pages, metrics) comes from a [`Door`];
//! [`Proxy::forward`] is called only for an authorized request.

mod connect;
pub mod door;
pub mod path;
mod pool;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Uri};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use model::route::RouteTable;
use model::Upstream;
use tokio::sync::watch;

use model::activity::Activity;

use crate::pool::Pool;
pub use door::{Door, Page, Target};
pub use pool::SendError;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The body of a proxied response (or of a request on its way upstream).
pub type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;

/// Forwarding failed before the upstream answered.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("the workspace's app did not answer: {0}")]
    Upstream(#[source] SendError),
    #[error("invalid upstream address {0:?}")]
    BadUpstream(String),
    /// The app took longer than [`Settings::response_timeout`] to answer.
    #[error("the workspace's app did not answer within {0:?}")]
    Timeout(Duration),
}

/// How the proxy talks to apps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// How long a connection to an app may take to open.
    pub connect_timeout: Duration,
    /// How long an app may take to begin its answer (its status and
    /// headers; a body then streams as long as it takes); `None`: no limit.
    pub response_timeout: Option<Duration>,
    /// How long an idle connection to an app is kept for the next request.
    pub pool_idle_timeout: Duration,
    /// How many idle connections are kept per app.
    pub pool_max_idle_per_upstream: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            connect_timeout: Duration::from_secs(5),
            response_timeout: None,
            pool_idle_timeout: Duration::from_secs(60),
            pool_max_idle_per_upstream: 1024,
        }
    }
}

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1).
const HOP_BY_HOP: [HeaderName; 7] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

/// The proxy: pooled connections to apps, the route table, activity.
#[derive(Debug, Clone)]
pub struct Proxy {
    pool: Arc<Pool>,
    routes: watch::Receiver<Arc<RouteTable>>,
    activity: Arc<Activity>,
    /// Cookies of berth's own that an app must never see.
    strip_cookies: Arc<[String]>,
    response_timeout: Option<Duration>,
}

/// Where a forwarded request came from, for the `X-Forwarded-*` headers.
#[derive(Debug, Clone, Copy)]
pub struct Origin {
    pub client: Option<SocketAddr>,
    /// The client reached berth over HTTPS (through a proxy in front).
    pub https: bool,
}

impl Proxy {
    /// A proxy over `routes`; `strip_cookies` names cookies removed from
    /// forwarded requests (berth's session cookie).
    pub fn new(routes: watch::Receiver<Arc<RouteTable>>, strip_cookies: &[&str]) -> Self {
        Proxy::with_settings(routes, strip_cookies, Settings::default())
    }

    /// [`Proxy::new`] with `settings` rather than the defaults.
    pub fn with_settings(
        routes: watch::Receiver<Arc<RouteTable>>,
        strip_cookies: &[&str],
        settings: Settings,
    ) -> Self {
        Proxy {
            pool: Pool::new(&settings),
            routes,
            activity: Arc::default(),
            strip_cookies: strip_cookies.iter().map(|c| (*c).to_owned()).collect(),
            response_timeout: settings.response_timeout,
        }
    }

    /// Resolves a request path (without its query) against the current routes.
    pub fn resolve(&self, path: &str) -> path::Resolved {
        path::resolve(path, &self.routes.borrow())
    }

    /// A receiver of the route table, e.g. to follow one workspace's state.
    pub fn routes(&self) -> watch::Receiver<Arc<RouteTable>> {
        self.routes.clone()
    }

    pub fn activity(&self) -> &Arc<Activity> {
        &self.activity
    }

    /// Forwards an authorized request to `upstream` and returns
    /// the app's response. A WebSocket upgrade is answered with the app's `101`
    /// and then spliced, each direction's traffic counting as activity. With
    /// `strip` (a prefix without its final `/`), the app is served at `/`: the
    /// prefix leaves the request's path, is named in `X-Forwarded-Prefix`,
    /// and comes back on the front of an absolute-path `Location`.
    pub async fn forward<B>(
        &self,
        mut req: Request<B>,
        upstream: &Upstream,
        workspace_id: &str,
        origin: Origin,
        strip: Option<&str>,
        now: i64,
    ) -> Result<Response<ProxyBody>, ProxyError>
    where
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        self.activity.touch(workspace_id, now);
        let upgrade = is_upgrade(req.headers()).then(|| hyper::upgrade::on(&mut req));
        let (mut parts, body) = req.into_parts();
        // Origin-form, as a request to an origin server is written: the
        // request's own, unless a prefix goes or it came in absolute-form.
        if strip.is_some() || parts.uri.scheme().is_some() {
            let mut path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
            if let Some(rest) = strip.and_then(|p| path_and_query.strip_prefix(p)) {
                path_and_query = rest;
            }
            parts.uri = match path_and_query.starts_with('/') {
                true => Uri::try_from(path_and_query),
                false => Uri::try_from(format!("/{path_and_query}")),
            }
            .map_err(|_| ProxyError::BadUpstream(upstream.to_string()))?;
        }
        let host = parts.headers.get(header::HOST).cloned();
        strip_hop_by_hop(&mut parts.headers, upgrade.is_some());
        self.strip_cookies(&mut parts.headers);
        forwarded_headers(&mut parts.headers, origin, host);
        // Only berth says where the app is mounted.
        parts.headers.remove("x-forwarded-prefix");
        if let Some(prefix) = strip.and_then(|p| HeaderValue::from_str(p).ok()) {
            parts.headers.insert("x-forwarded-prefix", prefix);
        }
        if !parts.headers.contains_key(header::HOST) {
            // An HTTP/1.0 request may have none; HTTP/1.1 requires one.
            if let Ok(v) = HeaderValue::from_str(&upstream.to_string()) {
                parts.headers.insert(header::HOST, v);
            }
        }
        let body = body.map_err(Into::into).boxed_unsync();
        let req = Request::from_parts(parts, body);
        let answer = async {
            match upgrade {
                Some(_) => (self.pool.send_upgrade(upstream, req).await)
                    .map(|r| r.map(|b| b.map_err(Into::into).boxed_unsync())),
                None => (self.pool.send(upstream, req).await).map(|r| r.map(pool::boxed)),
            }
        };
        let answer = match self.response_timeout {
            Some(limit) => tokio::time::timeout(limit, answer)
                .await
                .map_err(|_| ProxyError::Timeout(limit))?,
            None => answer.await,
        };
        let mut response = answer.map_err(ProxyError::Upstream)?;

        if let (Some(client_side), StatusCode::SWITCHING_PROTOCOLS) = (upgrade, response.status()) {
            let app_side = hyper::upgrade::on(&mut response);
            let activity = self.activity.clone();
            let id = workspace_id.to_owned();
            tokio::spawn(async move {
                match tokio::try_join!(client_side, app_side) {
                    Ok((client, app)) => {
                        splice(TokioIo::new(client), TokioIo::new(app), &activity, &id).await;
                    }
                    Err(e) => tracing::debug!(workspace.id = %id, "upgrade failed: {e}"),
                }
            });
            let (parts, _) = response.into_parts();
            return Ok(Response::from_parts(parts, empty()));
        }
        strip_hop_by_hop(response.headers_mut(), false);
        if let Some(prefix) = strip {
            prefix_location(response.headers_mut(), prefix);
        }
        Ok(response)
    }

    fn strip_cookies(&self, headers: &mut HeaderMap) {
        if self.strip_cookies.is_empty() || !headers.contains_key(header::COOKIE) {
            return;
        }
        let kept: Vec<String> = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .map(str::trim)
            .filter(|c| {
                let name = c.split('=').next().unwrap_or_default();
                !c.is_empty() && !self.strip_cookies.iter().any(|s| s == name)
            })
            .map(str::to_owned)
            .collect();
        headers.remove(header::COOKIE);
        if !kept.is_empty() {
            if let Ok(v) = HeaderValue::from_str(&kept.join("; ")) {
                headers.insert(header::COOKIE, v);
            }
        }
    }
}

/// Puts `prefix` on the front of a `Location` that is an absolute path (not a
/// URL, nor `//host/…`), so that an app served at `/` redirects within its
/// workspace.
fn prefix_location(headers: &mut HeaderMap, prefix: &str) {
    let Some(location) = headers.get(header::LOCATION).and_then(|l| l.to_str().ok()) else {
        return;
    };
    if !location.starts_with('/') || location.starts_with("//") || location.starts_with(prefix) {
        return;
    }
    if let Ok(v) = HeaderValue::from_str(&format!("{prefix}{location}")) {
        headers.insert(header::LOCATION, v);
    }
}

/// An empty body.
pub fn empty() -> ProxyBody {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// Whether the request asks to switch protocols (a WebSocket handshake).
fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
}

/// Removes hop-by-hop headers, and those the `Connection` header names; an
/// upgrade keeps `Connection: upgrade` and `Upgrade`.
fn strip_hop_by_hop(headers: &mut HeaderMap, upgrade: bool) {
    // `keep-alive` and `upgrade`, the options most messages carry, name
    // headers removed below anyway; only others are made into names (which
    // allocates).
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.eq_ignore_ascii_case("keep-alive") && !t.eq_ignore_ascii_case("upgrade"))
        .filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok())
        .collect();
    for name in named.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
    if upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    } else {
        headers.remove(header::UPGRADE);
    }
}

/// Sets `X-Forwarded-For` (appending the client), `-Proto` and `-Host`; the
/// `Host` header itself is kept, as apps check it against `Origin`.
fn forwarded_headers(headers: &mut HeaderMap, origin: Origin, host: Option<HeaderValue>) {
    const XFF: HeaderName = HeaderName::from_static("x-forwarded-for");
    if let Some(client) = origin.client {
        // Written once into the buffer the header value then shares.
        let mut value = bytes::BytesMut::with_capacity(64);
        if let Some(prior) = headers.get(&XFF) {
            value.extend_from_slice(prior.as_bytes());
            value.extend_from_slice(b", ");
        }
        let _ = write!(value, "{}", client.ip());
        if let Ok(v) = HeaderValue::from_maybe_shared(value.freeze()) {
            headers.insert(XFF, v);
        }
    }
    let proto = HeaderValue::from_static(if origin.https { "https" } else { "http" });
    headers.insert(HeaderName::from_static("x-forwarded-proto"), proto);
    if let Some(host) = host {
        headers.insert(HeaderName::from_static("x-forwarded-host"), host);
    }
}

/// The buffer each direction of a spliced connection copies through: small,
/// as a thousand idle WebSockets hold two each; a larger message takes a few
/// reads.
const SPLICE_BUFFER: usize = 4096;

/// Copies both ways at once until either side closes, recording activity at
/// most once every few seconds.
async fn splice<A, B>(client: A, mut app: B, activity: &Activity, workspace_id: &str)
where
    A: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    B: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut client = Touching {
        io: client,
        activity,
        workspace_id,
        last: 0,
    };
    let _ = tokio::io::copy_bidirectional_with_sizes(
        &mut client,
        &mut app,
        SPLICE_BUFFER,
        SPLICE_BUFFER,
    )
    .await;
}

/// A connection whose traffic, either way, counts as the workspace's activity.
struct Touching<'a, T> {
    io: T,
    activity: &'a Activity,
    workspace_id: &'a str,
    /// When activity was last recorded (ms since the epoch).
    last: i64,
}

impl<T> Touching<'_, T> {
    fn touch(&mut self) {
        let now = model::now_millis();
        if now - self.last >= 5_000 {
            self.activity.touch(self.workspace_id, now);
            self.last = now;
        }
    }
}

impl<T: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Touching<'_, T> {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let polled = std::pin::Pin::new(&mut this.io).poll_read(cx, buf);
        if polled.is_ready() {
            this.touch();
        }
        polled
    }
}

impl<T: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Touching<'_, T> {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let polled = std::pin::Pin::new(&mut this.io).poll_write(cx, buf);
        if polled.is_ready() {
            this.touch();
        }
        polled
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_go_and_upgrades_stay() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert(header::UPGRADE, HeaderValue::from_static("h2c"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h, false);
        let names: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, vec!["x-kept"]);

        let mut ws = HeaderMap::new();
        ws.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        ws.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        assert!(is_upgrade(&ws));
        strip_hop_by_hop(&mut ws, true);
        assert_eq!(ws[header::CONNECTION], "upgrade");
        assert_eq!(ws[header::UPGRADE], "websocket");
    }

    #[test]
    fn forwarded_headers_append_the_client() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("192.0.2.1"));
        let origin = Origin {
            client: Some("127.0.0.1:5000".parse().unwrap()),
            https: true,
        };
        forwarded_headers(
            &mut h,
            origin,
            Some(HeaderValue::from_static("berth.example")),
        );
        assert_eq!(h["x-forwarded-for"], "192.0.2.1, 127.0.0.1");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-forwarded-host"], "berth.example");
    }

    #[test]
    fn berths_cookies_never_reach_the_app() {
        let (_tx, rx) = watch::channel(Arc::new(RouteTable::new()));
        let p = Proxy::new(rx, &["berth_session"]);
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; berth_session=s3cret"),
        );
        h.append(header::COOKIE, HeaderValue::from_static("_xsrf=x"));
        p.strip_cookies(&mut h);
        assert_eq!(h[header::COOKIE], "a=1; _xsrf=x");
        let mut only = HeaderMap::new();
        only.insert(
            header::COOKIE,
            HeaderValue::from_static("berth_session=s3cret"),
        );
        p.strip_cookies(&mut only);
        assert!(!only.contains_key(header::COOKIE));
    }
}
