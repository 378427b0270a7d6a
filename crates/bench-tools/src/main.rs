//! `berth-bench`: what `benches/websocket.sh` and `benches/kube-scale.sh` run.
//!
//! - `echo --port P`: a WebSocket app that sends every message back, on any
//!   path (run as a workspace's app, and reached directly and through each
//!   proxy).
//! - `load --url U --connections N --interval-ms I --size S --seconds D`: N
//!   WebSockets to U, each sending an S-byte message every I ms for D seconds
//!   and timing each echo; prints the round-trip times' percentiles as one
//!   line of `key=value` pairs.
//! - `kube-scale --berth B --workspaces N --start M`: `berth operator run`
//!   against a real kube-apiserver with a simulated node: N Workspaces
//!   created, then M started at once; prints a table (see [`kube_scale`]).
//!
//! Written in Rust with Tokio so that the load generator is not what limits
//! the figures, and so that no program outside this workspace is needed.

mod kube_scale;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use futures::{SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser)]
#[command(name = "berth-bench", about = "Programs the benches in benches/ run")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// A WebSocket app that echoes every message, on any path.
    Echo {
        #[arg(long)]
        port: u16,
        #[arg(long, default_value = "0.0.0.0")]
        bind: String,
    },
    /// WebSockets that send a message every interval and time each echo.
    Load {
        #[arg(long)]
        url: String,
        /// Sent as the `Authorization` header of each handshake.
        #[arg(long)]
        authorization: Option<String>,
        #[arg(long, default_value_t = 1000)]
        connections: usize,
        #[arg(long, default_value_t = 50)]
        interval_ms: u64,
        #[arg(long, default_value_t = 1024)]
        size: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// The Kubernetes operator at scale: N Workspaces against a real
    /// kube-apiserver with a simulated node, then M started at once.
    KubeScale {
        /// The `berth` binary whose `berth operator run` is measured.
        #[arg(long)]
        berth: PathBuf,
        #[arg(long, default_value_t = 5000)]
        workspaces: usize,
        #[arg(long, default_value_t = 500)]
        start: usize,
        /// Create and start requests in flight.
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// The longest each phase may take.
        #[arg(long, default_value_t = 1200)]
        timeout_secs: u64,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Echo { port, bind } => rt.block_on(echo(&bind, port)),
        Command::Load {
            url,
            authorization,
            connections,
            interval_ms,
            size,
            seconds,
        } => {
            if connections == 0 || size < 16 || interval_ms == 0 || seconds == 0 {
                bail!("connections, interval and seconds must be positive, size at least 16 bytes");
            }
            rt.block_on(load(Load {
                url,
                authorization,
                connections,
                interval: Duration::from_millis(interval_ms),
                size,
                duration: Duration::from_secs(seconds),
            }))
        }
        Command::KubeScale {
            berth,
            workspaces,
            start,
            concurrency,
            timeout_secs,
        } => rt.block_on(kube_scale::run(kube_scale::Args {
            berth,
            workspaces,
            start,
            concurrency,
            timeout: Duration::from_secs(timeout_secs),
        })),
    }
}

async fn echo(bind: &str, port: u16) -> Result<()> {
    let listener = TcpListener::bind((bind, port))
        .await
        .with_context(|| format!("bind {bind}:{port}"))?;
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            // A plain request (berth's readiness check, a curl) gets `200 ok`.
            if !is_upgrade(&stream).await {
                let mut stream = stream;
                let _ = stream
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\nconnection: close\r\n\r\nok\n",
                    )
                    .await;
                return;
            }
            let Ok(ws) = tokio_tungstenite::accept_async(stream).await else {
                return;
            };
            let (mut tx, mut rx) = ws.split();
            while let Some(Ok(msg)) = rx.next().await {
                let reply = match msg {
                    Message::Text(_) | Message::Binary(_) => msg,
                    Message::Close(_) => break,
                    _ => continue,
                };
                if tx.send(reply).await.is_err() {
                    break;
                }
            }
        });
    }
}

/// Whether the request head waiting on `stream` (peeked, not read) asks for
/// a WebSocket.
async fn is_upgrade(stream: &tokio::net::TcpStream) -> bool {
    let mut buf = vec![0u8; 8192];
    loop {
        let n = match stream.peek(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => n,
        };
        let head = String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase();
        if head.contains("\r\n\r\n") || n == buf.len() {
            return head.contains("upgrade: websocket");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

struct Load {
    url: String,
    authorization: Option<String>,
    connections: usize,
    interval: Duration,
    size: usize,
    duration: Duration,
}

/// One connection's round-trip times, in microseconds, and its failures.
#[derive(Default)]
struct Outcome {
    rtts: Vec<u32>,
    errors: usize,
}

async fn load(load: Load) -> Result<()> {
    let load = std::sync::Arc::new(load);
    // Connect all first (in batches, as a browser-full of tabs would not all
    // arrive in one instant), then run them all for the duration.
    let mut sockets = Vec::with_capacity(load.connections);
    for batch in (0..load.connections).collect::<Vec<_>>().chunks(100) {
        let opened = futures::future::join_all(batch.iter().map(|_| connect(&load))).await;
        for ws in opened {
            sockets.push(ws?);
        }
    }
    let start = Instant::now() + Duration::from_millis(100);
    let mut tasks = Vec::with_capacity(sockets.len());
    for (i, ws) in sockets.into_iter().enumerate() {
        let load = load.clone();
        // Spread the connections' sends over the interval.
        let offset = load.interval.mul_f64(i as f64 / load.connections as f64);
        tasks.push(tokio::spawn(run(ws, load, start + offset)));
    }
    let mut rtts = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let o = t.await?;
        rtts.extend(o.rtts);
        errors += o.errors;
    }
    if rtts.is_empty() {
        bail!("no message came back ({errors} errors)");
    }
    rtts.sort_unstable();
    let pct = |p: f64| rtts[((rtts.len() as f64 * p) as usize).min(rtts.len() - 1)] as f64 / 1000.0;
    println!(
        "messages={} errors={} p50_ms={:.3} p90_ms={:.3} p99_ms={:.3} max_ms={:.3}",
        rtts.len(),
        errors,
        pct(0.5),
        pct(0.9),
        pct(0.99),
        pct(1.0)
    );
    Ok(())
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(load: &Load) -> Result<Ws> {
    let mut req = load.url.as_str().into_client_request()?;
    if let Some(auth) = &load.authorization {
        req.headers_mut()
            .insert("authorization", HeaderValue::from_str(auth)?);
    }
    let (ws, _) = tokio_tungstenite::connect_async_with_config(req, None, true)
        .await
        .with_context(|| format!("connect to {}", load.url))?;
    Ok(ws)
}

/// Sends a message every interval from `first` on, each carrying its sequence
/// number, and times the echo of each; an echo that takes longer than 20
/// intervals, or a connection that fails, counts as an error and ends it.
async fn run(ws: Ws, load: std::sync::Arc<Load>, first: Instant) -> Outcome {
    let (mut tx, mut rx) = ws.split();
    let mut out = Outcome::default();
    let end = first + load.duration;
    let mut tick = tokio::time::interval_at(first.into(), load.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut payload = vec![b'x'; load.size];
    let mut seq: u64 = 0;
    while Instant::now() < end {
        tick.tick().await;
        seq += 1;
        payload[..8].copy_from_slice(&seq.to_be_bytes());
        let sent = Instant::now();
        if tx.send(Message::binary(payload.clone())).await.is_err() {
            out.errors += 1;
            break;
        }
        let echoed = tokio::time::timeout(load.interval * 20, async {
            while let Some(msg) = rx.next().await {
                match msg {
                    Ok(Message::Binary(b)) if b.len() >= 8 && b[..8] == seq.to_be_bytes() => {
                        return true
                    }
                    Ok(_) => continue,
                    Err(_) => return false,
                }
            }
            false
        })
        .await;
        match echoed {
            Ok(true) => out
                .rtts
                .push(sent.elapsed().as_micros().min(u32::MAX as u128) as u32),
            _ => {
                out.errors += 1;
                break;
            }
        }
    }
    let _ = tx.send(Message::Close(None)).await;
    out
}
