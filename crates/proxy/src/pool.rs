//! Keep-alive connections to apps, driven by the task of the request that
//! uses them.
//!
//! hyper-util's pooled client runs every upstream connection in a task of
//! its own: a request goes to that task through a channel and its answer comes
//! back through another, two task wake-ups (often a wake of the other worker
//! thread) per request. Here a request's own task, the one serving the
//! client's connection, polls the upstream connection ([`hyper`]'s HTTP/1.1
//! client connection) while it waits for the answer's head and, through
//! [`Driven`], while the body streams back; when the body has ended, the
//! connection goes back to the pool. An idle connection is polled by no one:
//! before reuse it is polled once, which notices an app that closed it, and a
//! request that found it closed before being sent goes out on a new one.
//!
//! WebSocket upgrades get a connection of their own, run in a task of its own
//! until the upgrade (the spliced connection is never pooled).

use std::collections::HashMap;
use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1;
use model::Upstream;

use crate::connect::{self, Conn as Stream};
use crate::{ProxyBody, Settings};

/// An open connection to an app: the request side and the connection itself,
/// which someone must poll for either to make progress.
struct Conn {
    sender: http1::SendRequest<ProxyBody>,
    driver: Pin<Box<http1::Connection<Stream, ProxyBody>>>,
    /// The connection future has completed: closed, or failed.
    done: bool,
}

impl Conn {
    /// Polls the connection once; `false` once it has ended.
    fn drive(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.done && self.driver.as_mut().poll(cx).is_ready() {
            self.done = true;
        }
        !self.done
    }

    /// Whether a request may be sent on it now; polls it once, without a
    /// waker, to take in what the app sent meanwhile (a close).
    fn reusable(&mut self) -> bool {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        self.drive(&mut cx) && self.sender.is_ready()
    }
}

/// The most a pooled connection buffers of an app's answer (hyper's read
/// buffer grows to this, from 8 KiB, while reads fill it): a body streams
/// through in reads of at most this size. hyper's default, about 400 KiB, let
/// a thousand connections of 40 KiB answers hold 64 KiB each.
const UPSTREAM_BUFFER: usize = 16 * 1024;

struct Idle {
    conn: Conn,
    since: Instant,
}

#[derive(Default)]
struct Idles {
    by_upstream: HashMap<Upstream, Vec<Idle>>,
    count: usize,
}

/// Idle connections by upstream, at most `max_idle` of each, none older than
/// `idle_timeout`.
pub(crate) struct Pool {
    idle: Mutex<Idles>,
    connect_timeout: Duration,
    idle_timeout: Duration,
    max_idle: usize,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("idle", &self.idle.lock().map(|i| i.count).unwrap_or(0))
            .finish()
    }
}

/// Sending failed before the app answered.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("could not connect: {0}")]
    Connect(#[source] io::Error),
    #[error("{0}")]
    Http(#[source] hyper::Error),
}

impl Pool {
    /// A pool; with a Tokio runtime at hand, a task closes connections idle for
    /// longer than the idle timeout (it ends with the pool).
    pub(crate) fn new(settings: &Settings) -> Arc<Pool> {
        let pool = Arc::new(Pool {
            idle: Mutex::default(),
            connect_timeout: settings.connect_timeout,
            idle_timeout: settings.pool_idle_timeout,
            max_idle: settings.pool_max_idle_per_upstream,
        });
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(sweep(Arc::downgrade(&pool), settings.pool_idle_timeout));
        }
        pool
    }

    /// Sends `req` to `upstream` and waits for the answer's head, on an idle
    /// connection if there is one; its body, when polled, drives the
    /// connection and returns it to the pool at its end.
    pub(crate) async fn send(
        self: &Arc<Self>,
        upstream: &Upstream,
        mut req: Request<ProxyBody>,
    ) -> Result<Response<Driven>, SendError> {
        loop {
            let (mut conn, reused) = match self.checkout(upstream) {
                Some(conn) => (conn, true),
                None => (self.open(upstream).await?, false),
            };
            let Conn {
                sender,
                driver,
                done,
            } = &mut conn;
            let mut answer = std::pin::pin!(sender.try_send_request(req));
            let answered = poll_fn(|cx| {
                if let Poll::Ready(answered) = answer.as_mut().poll(cx) {
                    return Poll::Ready(answered);
                }
                if !*done && driver.as_mut().poll(cx).is_ready() {
                    // Closed or failed: the answer's future says how, at once.
                    *done = true;
                    return answer.as_mut().poll(cx);
                }
                Poll::Pending
            })
            .await;
            match answered {
                Ok(res) => {
                    let pool = Arc::downgrade(self);
                    let upstream = upstream.clone();
                    return Ok(res.map(|body| Driven {
                        body,
                        ended: false,
                        conn: Some((conn, upstream, pool)),
                    }));
                }
                // An idle connection the app had closed: the request was not
                // sent, so it goes out on a new one.
                Err(mut e) if reused => match e.take_message() {
                    Some(unsent) => req = unsent,
                    None => return Err(SendError::Http(e.into_error())),
                },
                Err(e) => return Err(SendError::Http(e.into_error())),
            }
        }
    }

    /// Sends an upgrade request on a new connection, which runs in a task of
    /// its own so that the upgrade completes.
    pub(crate) async fn send_upgrade(
        &self,
        upstream: &Upstream,
        req: Request<ProxyBody>,
    ) -> Result<Response<Incoming>, SendError> {
        let stream = connect::connect(upstream, self.connect_timeout)
            .await
            .map_err(SendError::Connect)?;
        let (mut sender, conn) = http1::handshake(stream).await.map_err(SendError::Http)?;
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!("upstream connection: {e}");
            }
        });
        sender.send_request(req).await.map_err(SendError::Http)
    }

    async fn open(&self, upstream: &Upstream) -> Result<Conn, SendError> {
        let stream = connect::connect(upstream, self.connect_timeout)
            .await
            .map_err(SendError::Connect)?;
        let (sender, driver) = http1::Builder::new()
            .max_buf_size(UPSTREAM_BUFFER)
            .handshake(stream)
            .await
            .map_err(SendError::Http)?;
        Ok(Conn {
            sender,
            driver: Box::pin(driver),
            done: false,
        })
    }

    /// The most recently used idle connection to `upstream` that is still
    /// open; stale ones on the way are closed.
    fn checkout(&self, upstream: &Upstream) -> Option<Conn> {
        let mut idle = self.idle.lock().expect("the pool's lock is never poisoned");
        let idle = &mut *idle;
        let list = idle.by_upstream.get_mut(upstream)?;
        let mut found = None;
        while let Some(mut entry) = list.pop() {
            idle.count -= 1;
            if entry.since.elapsed() < self.idle_timeout && entry.conn.reusable() {
                found = Some(entry.conn);
                break;
            }
        }
        if list.is_empty() {
            idle.by_upstream.remove(upstream);
        }
        found
    }

    fn checkin(&self, upstream: Upstream, mut conn: Conn) {
        if !conn.reusable() {
            return;
        }
        let mut idle = self.idle.lock().expect("the pool's lock is never poisoned");
        let idle = &mut *idle;
        let list = idle.by_upstream.entry(upstream).or_default();
        if list.len() < self.max_idle {
            list.push(Idle {
                conn,
                since: Instant::now(),
            });
            idle.count += 1;
        }
    }

    /// Closes the connections idle for longer than the idle timeout.
    fn close_stale(&self) {
        let mut idle = self.idle.lock().expect("the pool's lock is never poisoned");
        let idle = &mut *idle;
        let timeout = self.idle_timeout;
        idle.by_upstream.retain(|_, list| {
            list.retain(|e| e.since.elapsed() < timeout);
            !list.is_empty()
        });
        idle.count = idle.by_upstream.values().map(Vec::len).sum();
    }

    #[cfg(test)]
    fn idle_count(&self) -> usize {
        self.idle.lock().unwrap().count
    }
}

async fn sweep(pool: Weak<Pool>, every: Duration) {
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(100)));
    tick.tick().await;
    loop {
        tick.tick().await;
        match pool.upgrade() {
            Some(pool) => pool.close_stale(),
            None => return,
        }
    }
}

/// An app's answer body that drives its connection while it streams, and
/// returns the connection to the pool once it has ended.
pub(crate) struct Driven {
    body: Incoming,
    /// The body said it has no more frames.
    ended: bool,
    conn: Option<(Conn, Upstream, Weak<Pool>)>,
}

impl Body for Driven {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let mut frame = Pin::new(&mut this.body).poll_frame(cx);
        if frame.is_pending() {
            // Only the connection brings the body's next bytes.
            if let Some((conn, ..)) = &mut this.conn {
                if conn.drive(cx) {
                    frame = Pin::new(&mut this.body).poll_frame(cx);
                }
            }
        }
        if let Poll::Ready(None) = frame {
            this.ended = true;
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Driven {
    fn drop(&mut self) {
        // A body read to its end leaves a connection ready for the next
        // request; one dropped before (a client gone) closes it.
        if let Some((conn, upstream, pool)) = self.conn.take() {
            if self.ended || self.body.is_end_stream() {
                if let Some(pool) = pool.upgrade() {
                    pool.checkin(upstream, conn);
                }
            }
        }
    }
}

/// A [`Driven`] body as the proxy's.
pub(crate) fn boxed(body: Driven) -> ProxyBody {
    body.map_err(Into::into).boxed_unsync()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// An app that answers every request on a connection with `body`, and
    /// counts the connections it accepted.
    async fn app(body: &'static str) -> (Upstream, Arc<std::sync::atomic::AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let mut seen = Vec::new();
                    loop {
                        let n = match s.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        seen.extend_from_slice(&buf[..n]);
                        while let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                            seen.drain(..end + 4);
                            let head = format!(
                                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                                body.len()
                            );
                            if s.write_all(head.as_bytes()).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        (Upstream::Tcp(addr), accepted)
    }

    fn get() -> Request<ProxyBody> {
        Request::builder()
            .uri("/x")
            .header("host", "app")
            .body(crate::empty())
            .unwrap()
    }

    async fn body_of(res: Response<Driven>) -> String {
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn a_connection_read_to_its_end_is_used_again() {
        let (upstream, accepted) = app("hello").await;
        let pool = Pool::new(&Settings::default());
        for _ in 0..5 {
            let res = pool.send(&upstream, get()).await.unwrap();
            assert_eq!(body_of(res).await, "hello");
        }
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(pool.idle_count(), 1);
    }

    #[tokio::test]
    async fn a_body_dropped_unread_closes_its_connection() {
        let (upstream, accepted) = app("hello").await;
        let pool = Pool::new(&Settings::default());
        let res = pool.send(&upstream, get()).await.unwrap();
        drop(res);
        assert_eq!(pool.idle_count(), 0);
        let res = pool.send(&upstream, get()).await.unwrap();
        assert_eq!(body_of(res).await, "hello");
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_connection_the_app_closed_is_not_reused() {
        // An app that answers one request per connection and closes it.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream = Upstream::Tcp(listener.local_addr().unwrap());
        tokio::spawn(async move {
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = vec![0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    .await;
                drop(s);
            }
        });
        let pool = Pool::new(&Settings::default());
        for _ in 0..3 {
            let res = pool.send(&upstream, get()).await.unwrap();
            assert_eq!(body_of(res).await, "ok");
            // Let the close arrive before the next checkout.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn at_most_max_idle_connections_are_kept() {
        let (upstream, _) = app("x").await;
        let settings = Settings {
            pool_max_idle_per_upstream: 2,
            ..Settings::default()
        };
        let pool = Pool::new(&settings);
        let answers: Vec<_> = futures_join(&pool, &upstream, 4).await;
        for res in answers {
            assert_eq!(body_of(res).await, "x");
        }
        assert_eq!(pool.idle_count(), 2);
    }

    async fn futures_join(
        pool: &Arc<Pool>,
        upstream: &Upstream,
        n: usize,
    ) -> Vec<Response<Driven>> {
        let mut answers = Vec::new();
        // Each checkout finds no idle connection while the others are held.
        for _ in 0..n {
            answers.push(pool.send(upstream, get()).await.unwrap());
        }
        answers
    }

    #[tokio::test]
    async fn an_unreachable_app_is_a_connect_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let upstream = Upstream::Tcp(listener.local_addr().unwrap());
        drop(listener);
        let pool = Pool::new(&Settings::default());
        match pool.send(&upstream, get()).await {
            Err(SendError::Connect(_)) => {}
            Err(e) => panic!("expected a connect error, got {e:?}"),
            Ok(res) => panic!("expected a connect error, got {}", res.status()),
        }
    }
}
