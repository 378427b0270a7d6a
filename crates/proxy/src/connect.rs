//! Connections to apps: TCP to an address, or a Unix socket. The pooled
//! client keys its connections by a URI's authority, so a socket's path is
//! written into one ([`authority`]) and read back when the pool needs a new
//! connection.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use model::Upstream;
use tokio::net::{TcpStream, UnixStream};

use crate::BoxError;

/// The suffix of an authority that stands for a Unix socket.
const UNIX: &str = ".unix.berth";

/// The authority of a URI that reaches `upstream`: its address, or its socket's
/// path in hex under [`UNIX`].
pub(crate) fn authority(upstream: &Upstream) -> String {
    match upstream {
        Upstream::Tcp(addr) => addr.to_string(),
        Upstream::Unix(path) => {
            let hex: String = path
                .as_os_str()
                .as_encoded_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            format!("{hex}{UNIX}")
        }
    }
}

/// The socket path an authority of [`authority`] names, if it names one.
fn socket_path(uri: &Uri) -> Option<PathBuf> {
    let hex = uri.host()?.strip_suffix(UNIX)?;
    if hex.len() % 2 != 0 {
        return None;
    }
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    let path = String::from_utf8(bytes).ok()?;
    Some(PathBuf::from(path))
}

/// Opens TCP connections with `tcp`, and Unix socket connections itself.
#[derive(Debug, Clone)]
pub(crate) struct Connector {
    pub(crate) tcp: HttpConnector,
    pub(crate) timeout: Duration,
}

impl tower_service::Service<Uri> for Connector {
    type Response = Conn;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Conn, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.tcp.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        match socket_path(&uri) {
            Some(path) => {
                let timeout = self.timeout;
                Box::pin(async move { Ok(Conn::Unix(connect_unix(&path, timeout).await?)) })
            }
            None => {
                let tcp = self.tcp.call(uri);
                Box::pin(async move { Ok(Conn::Tcp(tcp.await?)) })
            }
        }
    }
}

async fn connect_unix(path: &Path, timeout: Duration) -> io::Result<TokioIo<UnixStream>> {
    match tokio::time::timeout(timeout, UnixStream::connect(path)).await {
        Ok(stream) => Ok(TokioIo::new(stream?)),
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("connect to {} timed out", path.display()),
        )),
    }
}

/// A connection to an app.
#[derive(Debug)]
pub(crate) enum Conn {
    Tcp(TokioIo<TcpStream>),
    Unix(TokioIo<UnixStream>),
}

impl Connection for Conn {
    fn connected(&self) -> Connected {
        match self {
            Conn::Tcp(s) => s.connected(),
            Conn::Unix(s) => s.connected(),
        }
    }
}

impl Read for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl Write for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Conn::Unix(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Conn::Tcp(s) => s.is_write_vectored(),
            Conn::Unix(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Tcp(s) => Pin::new(s).poll_flush(cx),
            Conn::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_path_goes_through_an_authority_and_back() {
        let path = PathBuf::from("/run/berth/w-1/app.sock");
        let uri: Uri = format!("http://{}/x", authority(&Upstream::Unix(path.clone())))
            .parse()
            .unwrap();
        assert_eq!(socket_path(&uri), Some(path));
        let tcp: Uri = "http://127.0.0.1:80/".parse().unwrap();
        assert_eq!(socket_path(&tcp), None);
    }
}
