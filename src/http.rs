//! The HTTP API: a small hyper server on its own thread, answering only from
//! the latest published snapshot, so nothing it does reaches the capture.
//!
//! Endpoints: `/all`, `/active` and `/capabilities` (the original
//! TrafficAlerted's JSON shapes), `/api/v1/status`, `/api/v1/interfaces`,
//! `/api/v1/alerts`, `/healthz`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::json;
use tokio::sync::{Semaphore, oneshot};

use crate::snapshot::{Published, Snapshot};

/// Most simultaneous connections; more are closed at once.
pub const MAX_CONNECTIONS: usize = 256;
/// Most bytes of request head (request line and headers) accepted.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Time a client gets to send its request head.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot listen on {addr}: {err}")]
    Bind {
        addr: SocketAddr,
        err: std::io::Error,
    },
    #[error("cannot start the HTTP thread: {0}")]
    Thread(std::io::Error),
}

/// The running server.
#[derive(Debug)]
pub struct HttpServer {
    addrs: Vec<SocketAddr>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl HttpServer {
    /// The addresses actually bound (useful with port 0).
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Stops accepting and ends the thread.
    pub fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Binds every address now (so a busy port is an error at start), then
/// serves from a thread of its own.
pub fn start(listen: &[SocketAddr], published: Published) -> Result<HttpServer, HttpError> {
    let mut listeners = Vec::new();
    let mut addrs = Vec::new();
    for &addr in listen {
        let l = std::net::TcpListener::bind(addr).map_err(|err| HttpError::Bind { addr, err })?;
        l.set_nonblocking(true)
            .map_err(|err| HttpError::Bind { addr, err })?;
        addrs.push(l.local_addr().unwrap_or(addr));
        listeners.push(l);
    }
    let (tx, rx) = oneshot::channel();
    let thread = std::thread::Builder::new()
        .name("http".into())
        .spawn(move || serve(listeners, published, rx))
        .map_err(HttpError::Thread)?;
    Ok(HttpServer {
        addrs,
        shutdown: Some(tx),
        thread: Some(thread),
    })
}

fn serve(
    listeners: Vec<std::net::TcpListener>,
    published: Published,
    shutdown: oneshot::Receiver<()>,
) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            log::error!("HTTP: cannot start its runtime: {e}");
            return;
        }
    };
    rt.block_on(async move {
        let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        let mut tasks = Vec::new();
        for l in listeners {
            let l = match tokio::net::TcpListener::from_std(l) {
                Ok(l) => l,
                Err(e) => {
                    log::error!("HTTP: {e}");
                    continue;
                }
            };
            tasks.push(tokio::spawn(accept_loop(
                l,
                published.clone(),
                permits.clone(),
            )));
        }
        let _ = shutdown.await;
        for t in tasks {
            t.abort();
        }
    });
}

async fn accept_loop(l: tokio::net::TcpListener, published: Published, permits: Arc<Semaphore>) {
    let mut refused: u64 = 0;
    loop {
        let (stream, _) = match l.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of descriptors and the like: back off instead of spinning.
                log::warn!("HTTP accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            refused += 1;
            if refused.is_power_of_two() {
                log::warn!(
                    "HTTP: {refused} connection(s) refused so far: more than {MAX_CONNECTIONS} open"
                );
            }
            drop(stream);
            continue;
        };
        let published = published.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let snap = published.load_full();
                async move { Ok::<_, Infallible>(route(&req, &snap)) }
            });
            let _ = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(MAX_HEAD_BYTES)
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), svc)
                .await;
            drop(permit);
        });
    }
}

/// Answers one request from a snapshot.
pub fn route<B>(req: &Request<B>, snap: &Snapshot) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    let known = [
        "/all",
        "/active",
        "/capabilities",
        "/healthz",
        "/api/v1/status",
        "/api/v1/interfaces",
        "/api/v1/alerts",
    ];
    if !known.contains(&path) {
        return error(StatusCode::NOT_FOUND, &format!("no such endpoint: {path}"));
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = error(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("{} is not allowed on {path}; use GET", req.method()),
        );
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    match path {
        "/all" => json_bytes(StatusCode::OK, snap.all_json()),
        "/active" => json_bytes(StatusCode::OK, snap.active_json()),
        "/api/v1/alerts" => json_value(
            StatusCode::OK,
            &json!({ "tick": snap.tick, "open": snap.alerts, "recently_closed": snap.closed }),
        ),
        "/capabilities" => json_value(StatusCode::OK, &capabilities(snap)),
        "/healthz" => {
            let mut r = Response::new(Full::new(Bytes::from_static(b"ok\n")));
            r.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            r
        }
        "/api/v1/status" => json_value(StatusCode::OK, &status(snap)),
        "/api/v1/interfaces" => json_value(
            StatusCode::OK,
            &json!({ "tick": snap.tick, "interfaces": snap.ifaces }),
        ),
        _ => error(StatusCode::NOT_FOUND, &format!("no such endpoint: {path}")),
    }
}

/// `/capabilities`: the original's keys, then the whole effective config and
/// what the daemon chose at start.
fn capabilities(snap: &Snapshot) -> serde_json::Value {
    let c = &snap.config;
    let interval_secs = c["traffic"]["interval"]
        .as_str()
        .and_then(|s| crate::config::units::parse_duration(s).ok())
        .map_or(0, |d| d.as_secs());
    let port_secs = c["scan"]["port_interval"]
        .as_str()
        .and_then(|s| crate::config::units::parse_duration(s).ok())
        .map_or(0, |d| d.as_secs());
    json!({
        "TrafficInterval": interval_secs,
        "ByteLimit": c["traffic"]["byte_limit"],
        "NoDestinations": c["traffic"]["keep_destinations"] == 0,
        "ChartMinBytes": c["traffic"]["chart_min_bytes"],
        "ExcludedInterfaces": c["capture"]["exclude_interfaces"],
        "ContactedIPsAnalyze": c["scan"]["address_scan"],
        "NumberContactedIPs": c["scan"]["max_contacted_ips"],
        "AnalyzePorts": c["scan"]["port_scan"],
        "NumContactedPorts": c["scan"]["max_contacted_ports"],
        "PortInterval": port_secs,
        "Version": env!("CARGO_PKG_VERSION"),
        "Config": **c,
        "Runtime": *snap.runtime,
    })
}

fn status(snap: &Snapshot) -> serde_json::Value {
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "tick": snap.tick,
        "unix_ms": snap.unix_ms,
        "window_ticks": snap.window_ticks,
        "window": { "packets": snap.window.packets, "bytes": snap.window.bytes },
        "lifetime": { "packets": snap.lifetime.packets, "bytes": snap.lifetime.bytes },
        "drop_ratio": snap.drop_ratio,
        "untracked": {
            "src_bytes": snap.lifetime_untracked.src_bytes,
            "src_packets": snap.lifetime_untracked.src_packets,
            "dst_bytes": snap.lifetime_untracked.dst_bytes,
            "dst_packets": snap.lifetime_untracked.dst_packets,
            "pair_bytes": snap.lifetime_untracked.pair_bytes,
            "pair_packets": snap.lifetime_untracked.pair_packets,
            "contacts": snap.lifetime_untracked.port_initiations,
        },
        "hosts_listed": snap.hosts.len(),
        "hosts_unlisted": snap.hosts_unlisted,
        "alerts_open": snap.alerts.len(),
        "sinks": snap.sinks,
        "tables": snap.tables,
        "health": snap.health,
        "late_shards_total": snap.late_shards_total,
        "runtime": *snap.runtime,
    })
}

fn json_value(status: StatusCode, v: &serde_json::Value) -> Response<Full<Bytes>> {
    json_bytes(
        status,
        Bytes::from(serde_json::to_vec(v).unwrap_or_default()),
    )
}

fn json_bytes(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn error(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    json_value(status, &json!({ "error": message }))
}
