//! The HTTP API: a small hyper server on its own thread, answering only from
//! the latest published snapshot, so nothing it does reaches the capture.
//!
//! Endpoints: the original TrafficAlerted's `/all`, `/active` and
//! `/capabilities` in their JSON shapes; everything new under `/api/v1/`
//! ([`api`]); `/metrics` for Prometheus ([`metrics`]); the live dashboard
//! under `/dashboard/` ([`dashboard`]); `/healthz`, open to load balancers
//! even when access control is on ([`auth`]).

mod api;
mod auth;
mod cache;
mod conns;
mod dashboard;
mod metrics;
mod query;
mod respond;
mod stall;
mod stream;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use arc_swap::ArcSwap;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::{Semaphore, oneshot};

use crate::config::Auth;
use crate::snapshot::{Published, Snapshot};

pub use auth::Access;
pub use respond::Body;

/// Most simultaneous connections; when full, an idle kept-alive one is
/// closed to make room, else the new one is closed at once.
pub const MAX_CONNECTIONS: usize = 512;
/// Most simultaneous connections of one client address.
pub const MAX_PER_CLIENT: usize = 32;
/// Most simultaneous event streams (each holds a connection for as long as
/// the client wants); more get 503.
pub const MAX_STREAMS: usize = 32;
/// Most history reads at once (each reads files from disk).
pub const MAX_HISTORY_READS: usize = 2;
/// Most bytes of request head (request line and headers) accepted.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Time a client gets to send a request head, also between requests on a
/// kept-alive connection: an idle or trickling client is cut off after it.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a write may wait for a client that does not read.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

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
    access: Arc<ArcSwap<Access>>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl HttpServer {
    /// The addresses actually bound (useful with port 0).
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Puts new credentials into effect for every request from now on (a
    /// reload rotating a leaked token must not wait for a restart). Says
    /// what changed, or `None` when nothing did.
    pub fn set_auth(&self, auth: Option<&Auth>) -> Option<&'static str> {
        let new = Access::new(auth);
        let old = self.access.load_full();
        if *old == new {
            return None;
        }
        let what = match (&*old, &new) {
            (Access::Open, _) => "access control turned on",
            (_, Access::Open) => "access control turned off",
            _ => "credentials changed",
        };
        self.access.store(Arc::new(new));
        if matches!(*self.access.load_full(), Access::Open) {
            self.warn_if_exposed();
        }
        Some(what)
    }

    /// Warns, once per address, when the API answers beyond loopback
    /// without access control.
    pub fn warn_if_exposed(&self) {
        if !matches!(**self.access.load(), Access::Open) {
            return;
        }
        for a in self.addrs.iter().filter(|a| !a.ip().is_loopback()) {
            log::warn!(
                "the HTTP API on {a} is reachable from the network and has no access control; set [http.auth] or keep it on a management network"
            );
        }
    }

    /// Stops accepting, ends open streams and the thread.
    pub fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What every request handler shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub published: Published,
    /// Swapped whole at a reload; each request reads it once.
    pub access: Arc<ArcSwap<Access>>,
    pub streams: Arc<Semaphore>,
    pub history_reads: Arc<Semaphore>,
    pub conns: Arc<conns::Conns>,
    pub cache: cache::Cache,
}

/// Binds every address now (so a busy port is an error at start), then
/// serves from a thread of its own.
pub fn start(
    listen: &[SocketAddr],
    auth: Option<&Auth>,
    published: Published,
) -> Result<HttpServer, HttpError> {
    let mut listeners = Vec::new();
    let mut addrs = Vec::new();
    for &addr in listen {
        let l = std::net::TcpListener::bind(addr).map_err(|err| HttpError::Bind { addr, err })?;
        l.set_nonblocking(true)
            .map_err(|err| HttpError::Bind { addr, err })?;
        addrs.push(l.local_addr().unwrap_or(addr));
        listeners.push(l);
    }
    let access = Arc::new(ArcSwap::from_pointee(Access::new(auth)));
    let shared = Arc::new(Shared {
        published,
        access: access.clone(),
        streams: Arc::new(Semaphore::new(MAX_STREAMS)),
        history_reads: Arc::new(Semaphore::new(MAX_HISTORY_READS)),
        conns: Arc::new(conns::Conns::new(MAX_CONNECTIONS, MAX_PER_CLIENT)),
        cache: cache::Cache::default(),
    });
    let (tx, rx) = oneshot::channel();
    let thread = std::thread::Builder::new()
        .name("http".into())
        .spawn(move || serve(listeners, shared, rx))
        .map_err(HttpError::Thread)?;
    Ok(HttpServer {
        addrs,
        access,
        shutdown: Some(tx),
        thread: Some(thread),
    })
}

fn serve(
    listeners: Vec<std::net::TcpListener>,
    shared: Arc<Shared>,
    shutdown: oneshot::Receiver<()>,
) {
    // History reads and rendering go to the blocking pool, off the thread
    // that answers /healthz and /metrics.
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(2)
        .max_blocking_threads(MAX_HISTORY_READS + 2)
        .thread_name("http-io")
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            log::error!("HTTP: cannot start its runtime: {e}");
            return;
        }
    };
    rt.block_on(async move {
        for l in listeners {
            match tokio::net::TcpListener::from_std(l) {
                Ok(l) => {
                    tokio::spawn(accept_loop(l, shared.clone()));
                }
                Err(e) => log::error!("HTTP: {e}"),
            }
        }
        let _ = shutdown.await;
    });
    // Dropping the runtime drops every connection and stream task with it.
    rt.shutdown_timeout(Duration::from_millis(500));
}

async fn accept_loop(l: tokio::net::TcpListener, shared: Arc<Shared>) {
    let mut refused: u64 = 0;
    loop {
        let (stream, peer) = match l.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of descriptors and the like: back off instead of spinning.
                log::warn!("HTTP accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(slot) = shared.conns.admit(peer.ip()) else {
            refused += 1;
            if refused.is_power_of_two() {
                log::warn!(
                    "HTTP: {refused} connection(s) refused so far (at most {MAX_PER_CLIENT} busy per client address, {MAX_CONNECTIONS} in all); the last from {}",
                    peer.ip()
                );
            }
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        tokio::spawn(async move {
            let slot = Arc::new(slot);
            let close = slot.close.clone();
            let on = slot.clone();
            let svc = service_fn(move |req| {
                let shared = shared.clone();
                let busy = on.busy();
                async move { Ok::<_, Infallible>(handle(req, &shared, busy).await) }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(MAX_HEAD_BYTES)
                .keep_alive(true)
                .serve_connection(
                    TokioIo::new(stall::WriteDeadline::new(stream, WRITE_TIMEOUT)),
                    svc,
                );
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = close.notified() => {
                    // Idle and needed elsewhere: close between requests.
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
            drop(slot);
        });
    }
}

/// Answers one request: access, method, then the route. `busy` marks the
/// connection busy until the answer has been handed over.
pub(crate) async fn handle(
    req: Request<Incoming>,
    shared: &Shared,
    busy: conns::Busy,
) -> Response<cache::Served> {
    let own = |r: Response<Body>, busy| r.map(|b| cache::Served::own(b, Some(busy)));
    let path = req.uri().path().to_string();
    let light = matches!(path.as_str(), "/healthz" | "/metrics" | "/dashboard" | "/")
        || path.starts_with("/dashboard/")
        || path == "/api/v1/stream"
        || path == "/api/v1/alerts/history"
        || (path.starts_with("/api/v1/alerts/") && path.ends_with("/pcap"));
    let decided = respond_to(req, shared).await;
    match decided {
        Respond::Now(r) => own(r, busy),
        Respond::Render(target, snap) if !light => {
            let (from, t) = (snap.clone(), target.clone());
            let got = shared
                .cache
                .get(&from, &target, move || {
                    let (path, query) = split_target(&t);
                    answer(path, query, &snap).unwrap_or_else(|e| e.response())
                })
                .await;
            match got {
                Ok(r) => cache::Served::shared(r, Some(busy)),
                Err(cache::Miss::Own(r)) => own(r, busy),
                Err(cache::Miss::Busy) => {
                    shared
                        .conns
                        .stats
                        .busy
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let mut r = respond::ApiError::unavailable(
                        "answers being sent already hold their memory budget; try again in a second",
                    )
                    .response();
                    respond::set(&mut r, hyper::header::RETRY_AFTER, "1");
                    own(r, busy)
                }
            }
        }
        Respond::Render(target, snap) => {
            let (path, query) = split_target(&target);
            let mut r = answer(path, query, &snap).unwrap_or_else(|e| e.response());
            if path == "/metrics" {
                r = metrics::with_server(r, &shared.conns);
            }
            own(r, busy)
        }
    }
}

/// A request target as path and query.
fn split_target(target: &str) -> (&str, Option<&str>) {
    match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    }
}

/// What a request gets: an answer now, or one rendered from the snapshot.
enum Respond {
    Now(Response<Body>),
    Render(String, Arc<Snapshot>),
}

async fn respond_to(req: Request<Incoming>, shared: &Shared) -> Respond {
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(str::to_string);
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Respond::Now(respond::method_not_allowed(req.method(), &path));
    }
    // RFC 9112, 3.2: an HTTP/1.1 request without Host is answered 400.
    if req.version() == hyper::Version::HTTP_11 && !req.headers().contains_key(hyper::header::HOST)
    {
        return Respond::Now(
            respond::ApiError {
                status: StatusCode::BAD_REQUEST,
                message: "an HTTP/1.1 request needs a Host header".into(),
            }
            .response(),
        );
    }
    let access = shared.access.load();
    if path != "/healthz" && !dashboard::is_public(&path, &access) {
        if let Err(refused) = access.check(req.headers()) {
            return Respond::Now(refused.response());
        }
    }
    let snap = shared.published.load();
    let now = match path.as_str() {
        "/api/v1/stream" => stream::open(shared),
        "/api/v1/alerts/history" => api::history(&snap, query.as_deref(), shared).await,
        p if p.starts_with("/api/v1/alerts/") && p.ends_with("/pcap") => {
            api::attack_pcap(&snap, p, query.as_deref(), shared).await
        }
        _ => {
            let target = match &query {
                Some(q) => format!("{path}?{q}"),
                None => path,
            };
            return Respond::Render(target, snap);
        }
    };
    Respond::Now(now.unwrap_or_else(|e| e.response()))
}

/// The answers that need nothing but the snapshot.
fn answer(path: &str, query: Option<&str>, snap: &Snapshot) -> respond::Answer {
    match path {
        "/healthz" => Ok(respond::text(StatusCode::OK, "ok\n")),
        "/metrics" => Ok(metrics::response(snap)),
        "/dashboard" | "/" => Ok(respond::redirect("/dashboard/")),
        p if p.starts_with("/dashboard/") => dashboard::file(p),
        p => api::route(p, query, snap),
    }
}

/// What a page of the alert history read from `r` holds: events, `more`,
/// `next_since` (the fuzz target's door into the history reader), lines
/// longer than `max_line` skipped.
pub fn history_page(
    r: impl std::io::BufRead,
    since: u64,
    limit: usize,
    max_line: usize,
) -> std::io::Result<(usize, bool, u64)> {
    let mut pager = api::history::Pager::new(since, limit, None).max_line(max_line);
    pager.read(r)?;
    let page = pager.page();
    Ok((page.events.len(), page.more, page.next_since))
}

/// The status a GET of `target` (path and query) with these headers would
/// get, for everything answered from the snapshot alone: what the fuzz
/// target drives, untrusted text in, never a panic.
pub fn probe(target: &str, headers: &hyper::HeaderMap, access: &Access, snap: &Snapshot) -> u16 {
    let (path, query) = split_target(target);
    if path != "/healthz" && !dashboard::is_public(path, access) {
        if let Err(refused) = access.check(headers) {
            return refused.response().status().as_u16();
        }
    }
    match answer(path, query, snap) {
        Ok(r) => r.status().as_u16(),
        Err(e) => e.status.as_u16(),
    }
}
