//! Answers rendered off the server's thread and shared. Everything the API
//! answers from a snapshot is rendered once per snapshot and per request
//! target, on the blocking pool, and the same bytes go to every client who
//! asks during that tick: two hundred clients asking for the largest page
//! cost one rendering, and `/healthz` never waits behind one.
//!
//! The memory of rendered bodies is counted while anyone holds them (the
//! cache, or a connection still sending one): past [`BODY_BUDGET`] a request
//! that would render a new body gets 503 with Retry-After instead, so
//! clients that ask and never read cannot grow the daemon without bound.
//! Bodies go out in slices, so a connection holds its body until it has
//! been written, and the count is true.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use http_body_util::Full;
use hyper::body::{Body as _, Bytes, Frame, SizeHint};
use hyper::header::HeaderMap;
use hyper::{Response, StatusCode};
use tokio::sync::OnceCell;

use super::conns::Busy;
use super::respond::Body;
use crate::snapshot::Snapshot;

/// Most bytes of rendered bodies held at once.
pub const BODY_BUDGET: u64 = 64 << 20;
/// Most distinct request targets cached per snapshot.
const MAX_ENTRIES: usize = 256;
/// Slice of a shared body handed to the connection at a time.
const SLICE: usize = 64 * 1024;

/// A rendered answer, shared.
#[derive(Debug)]
pub struct Rendered {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    held: Arc<AtomicU64>,
}

impl Drop for Rendered {
    fn drop(&mut self) {
        self.held
            .fetch_sub(self.body.len() as u64, Ordering::Relaxed);
    }
}

type Entry = Arc<OnceCell<Arc<Rendered>>>;
/// The snapshot rendered from, and its answers by request target.
type Entries = (Option<Arc<Snapshot>>, HashMap<String, Entry>);

/// The answers of the current snapshot, by request target.
#[derive(Debug, Default)]
pub struct Cache {
    /// The snapshot the entries were rendered from, held so that its
    /// address cannot be reused by a later one while the entries stand.
    inner: Mutex<Entries>,
    /// Bytes of rendered bodies alive (cached or being sent).
    pub held: Arc<AtomicU64>,
}

/// Why a shared answer could not be had.
pub enum Miss {
    /// Over the memory budget: answer 503.
    Busy,
    /// No shared answer could be made: send this one.
    Own(Response<Body>),
}

impl Cache {
    /// The shared answer for `target` from snapshot `snap`, rendered
    /// by `render` on the blocking pool if nobody has yet.
    pub async fn get(
        &self,
        snap: &Arc<Snapshot>,
        target: &str,
        render: impl FnOnce() -> Response<Body> + Send + 'static,
    ) -> Result<Arc<Rendered>, Miss> {
        let entry = {
            let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            if !g.0.as_ref().is_some_and(|s| Arc::ptr_eq(s, snap)) {
                g.0 = Some(snap.clone());
                g.1.clear();
            }
            match g.1.get(target) {
                Some(e) => Some(e.clone()),
                None if g.1.len() < MAX_ENTRIES => {
                    let e: Entry = Arc::default();
                    g.1.insert(target.to_string(), e.clone());
                    Some(e)
                }
                None => None,
            }
        };
        let entry = entry.unwrap_or_default();
        if let Some(r) = entry.get() {
            return Ok(r.clone());
        }
        if self.held.load(Ordering::Relaxed) >= BODY_BUDGET {
            return Err(Miss::Busy);
        }
        let held = self.held.clone();
        let r = entry
            .get_or_try_init(|| async {
                let resp = tokio::task::spawn_blocking(render)
                    .await
                    .unwrap_or_else(|_| failed("rendering the answer failed"));
                let (parts, body) = resp.into_parts();
                match whole(body) {
                    Some(bytes) => {
                        held.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                        Ok(Arc::new(Rendered {
                            status: parts.status,
                            headers: parts.headers,
                            body: bytes,
                            held: held.clone(),
                        }))
                    }
                    // Renderers make whole bodies; never cache anything else.
                    None => Err(failed("the answer was not a whole body")),
                }
            })
            .await;
        match r {
            Ok(r) => Ok(r.clone()),
            Err(resp) => Err(Miss::Own(resp)),
        }
    }
}

fn failed(message: &str) -> Response<Body> {
    super::respond::ApiError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        message: message.into(),
    }
    .response()
}

/// The bytes of a whole body (what the renderers make), without waiting.
pub fn whole(body: Body) -> Option<Bytes> {
    match body {
        http_body_util::Either::Left(full) => {
            let mut full: Full<Bytes> = full;
            let waker = std::task::Waker::noop();
            let mut cx = Context::from_waker(waker);
            match Pin::new(&mut full).poll_frame(&mut cx) {
                Poll::Ready(Some(Ok(f))) => f.into_data().ok(),
                Poll::Ready(None) => Some(Bytes::new()),
                _ => None,
            }
        }
        http_body_util::Either::Right(_) => None,
    }
}

/// What a connection sends: an own body, or a shared one in slices. It
/// holds the connection's "busy" mark until the last slice is taken.
pub struct Served {
    inner: Inner,
    _busy: Option<Busy>,
}

enum Inner {
    Own(Body),
    Shared(Arc<Rendered>, usize),
}

impl Served {
    pub fn own(body: Body, busy: Option<Busy>) -> Served {
        Served {
            inner: Inner::Own(body),
            _busy: busy,
        }
    }

    /// The response for a shared answer.
    pub fn shared(r: Arc<Rendered>, busy: Option<Busy>) -> Response<Served> {
        let mut resp = Response::new(Served {
            inner: Inner::Shared(r.clone(), 0),
            _busy: busy,
        });
        *resp.status_mut() = r.status;
        *resp.headers_mut() = r.headers.clone();
        resp
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl hyper::body::Body for Served {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        match &mut this.inner {
            Inner::Own(b) => Pin::new(b).poll_frame(cx),
            Inner::Shared(r, pos) => {
                if *pos >= r.body.len() {
                    return Poll::Ready(None);
                }
                let end = (*pos + SLICE).min(r.body.len());
                let slice = r.body.slice(*pos..end);
                *pos = end;
                Poll::Ready(Some(Ok(Frame::data(slice))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Own(b) => b.is_end_stream(),
            Inner::Shared(r, pos) => *pos >= r.body.len(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Own(b) => b.size_hint(),
            Inner::Shared(r, pos) => SizeHint::with_exact((r.body.len() - *pos) as u64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn snap() -> Arc<Snapshot> {
        Arc::new(Snapshot::empty(&Config::default(), Default::default()))
    }

    fn page(text: &'static str) -> Response<Body> {
        super::super::respond::text(StatusCode::OK, text)
    }

    #[test]
    fn one_rendering_per_snapshot_and_target_and_memory_counted_while_held() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let cache = Cache::default();
            let (a, b) = (snap(), snap());
            let Ok(first) = cache.get(&a, "/x", || page("one")).await else {
                panic!("rendered")
            };
            let Ok(again) = cache.get(&a, "/x", || page("two")).await else {
                panic!("cached")
            };
            assert!(Arc::ptr_eq(&first, &again), "the same bytes for everyone");
            assert_eq!(cache.held.load(Ordering::Relaxed), 3);
            // The next snapshot renders anew; the old body lives while held.
            let Ok(next) = cache.get(&b, "/x", || page("three")).await else {
                panic!("rendered")
            };
            assert_eq!(&next.body[..], b"three");
            assert_eq!(cache.held.load(Ordering::Relaxed), 3 + 5);
            drop((first, again));
            assert_eq!(cache.held.load(Ordering::Relaxed), 5);
        });
    }
}
