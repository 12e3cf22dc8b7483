//! A connection whose client stops reading is closed once a write has made
//! no progress for a while: otherwise a few hundred clients that ask for
//! large answers and never read them would hold every connection slot.
//! Only a pending write runs the clock, so a quiet event stream or a
//! kept-alive connection between requests is not affected.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// A stream whose writes fail after `limit` without progress.
#[derive(Debug)]
pub struct WriteDeadline<S> {
    inner: S,
    limit: Duration,
    /// Armed while a write is pending; dropped when one makes progress.
    timer: Option<Pin<Box<Sleep>>>,
    /// Bytes written since this connection last gave way.
    burst: usize,
}

/// Bytes one connection writes before it lets the others (and `/healthz`)
/// have the server's thread: a client reading a large answer fast must not
/// hold it for the whole answer.
const BURST: usize = 128 * 1024;

impl<S> WriteDeadline<S> {
    pub fn new(inner: S, limit: Duration) -> WriteDeadline<S> {
        WriteDeadline {
            inner,
            limit,
            timer: None,
            burst: 0,
        }
    }

    /// Gives way once per [`BURST`] bytes: Pending, with the task woken so
    /// that it runs again after the others that are ready.
    fn give_way(&mut self, cx: &mut Context<'_>) -> bool {
        if self.burst < BURST {
            return false;
        }
        self.burst = 0;
        cx.waker().wake_by_ref();
        true
    }

    fn count(&mut self, r: &Poll<io::Result<usize>>) {
        if let Poll::Ready(Ok(n)) = r {
            self.burst += n;
        }
    }

    /// The inner stream could not take the write: wait, or give up.
    fn stalled<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        let limit = self.limit;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client stopped reading",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn progressed<T>(
        &mut self,
        r: Poll<io::Result<T>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<T>> {
        match r {
            Poll::Ready(r) => {
                self.timer = None;
                Poll::Ready(r)
            }
            Poll::Pending => self.stalled(cx),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteDeadline<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.give_way(cx) {
            return Poll::Pending;
        }
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.count(&r);
        this.progressed(r, cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.give_way(cx) {
            return Poll::Pending;
        }
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.count(&r);
        this.progressed(r, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_flush(cx);
        this.progressed(r, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.progressed(r, cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    }

    #[test]
    fn a_reader_that_stops_is_cut_off() {
        rt().block_on(async {
            let (a, _b) = tokio::io::duplex(1024);
            let mut w = WriteDeadline::new(a, Duration::from_millis(100));
            let t0 = std::time::Instant::now();
            let big = vec![0u8; 64 * 1024];
            let e = w.write_all(&big).await.unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::TimedOut);
            assert!(t0.elapsed() >= Duration::from_millis(100));
        });
    }

    #[test]
    fn a_slow_but_steady_reader_is_served() {
        rt().block_on(async {
            let (a, mut b) = tokio::io::duplex(1024);
            let mut w = WriteDeadline::new(a, Duration::from_millis(200));
            let reader = tokio::spawn(async move {
                let mut got = 0;
                let mut buf = [0u8; 512];
                loop {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    match b.read(&mut buf).await {
                        Ok(0) | Err(_) => break got,
                        Ok(n) => got += n,
                    }
                }
            });
            // 32 KiB at 512 B per 5 ms takes over 300 ms in all, longer than
            // the limit, but no single write waits that long.
            w.write_all(&vec![1u8; 32 * 1024]).await.unwrap();
            w.shutdown().await.unwrap();
            drop(w);
            assert_eq!(reader.await.unwrap(), 32 * 1024);
        });
    }
}
