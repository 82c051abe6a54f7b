//! The web page's HTTP/1 accept loop: a cap on open connections, a
//! header-read time-out and an idle time-out, so that whatever happens on
//! the web port (idle sockets, a client sending half a header, a
//! dead browser) holds a bounded number of file descriptors for a bounded
//! time, and the stations, the journal and the printers never run short.
//!
//! Owns: accepting, refusing past the cap, the two time-outs, graceful
//! stop. Must not: know routes or pages (it serves any axum `Router`).

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The web server's limits (`[web]` in the config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Open connections at most; one more is closed at once.
    pub max_connections: usize,
    /// A request's header must arrive within this, counted from when the
    /// server waits for it (so it also ends a kept-alive connection that
    /// sends no next request).
    pub header_timeout: Duration,
    /// A connection that moves no byte either way for this long is closed.
    pub idle_timeout: Duration,
}

/// Serves `app` on `listener` until `shutdown`; requests in flight then
/// finish (at most `idle_timeout`).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let conns = TaskTracker::new();
    let mut refused: u64 = 0;
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            a = listener.accept() => a,
        };
        let (sock, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors or the like: wait instead of
                // spinning, and let the time-outs free some.
                tracing::warn!(error = %e, "the web page cannot accept a connection");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_millis(100)) => continue,
                }
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            refused += 1;
            if refused.is_power_of_two() {
                tracing::warn!(%peer, refused, max = limits.max_connections, "web connection refused: the web page has its maximum of open connections ([web] max_connections)");
            }
            drop(sock);
            continue;
        };
        let app = app.clone();
        let shutdown = shutdown.clone();
        conns.spawn(async move {
            serve_one(sock, app, limits, shutdown).await;
            drop(permit);
        });
    }
    conns.close();
    conns.wait().await;
}

async fn serve_one(
    sock: tokio::net::TcpStream,
    app: Router,
    limits: Limits,
    shutdown: CancellationToken,
) {
    let _ = sock.set_nodelay(true);
    let start = Instant::now();
    let last = Arc::new(AtomicU64::new(0));
    let io = Activity {
        inner: sock,
        start,
        last: last.clone(),
    };
    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let mut app = app.clone();
        async move {
            use tower_service::Service;
            app.call(req).await
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let tick = (limits.idle_timeout / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
    let mut stopping = false;
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "web connection ended");
                }
                return;
            }
            _ = shutdown.cancelled(), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = tokio::time::sleep(tick) => {
                let idle = start.elapsed().saturating_sub(Duration::from_millis(last.load(Ordering::Relaxed)));
                if idle >= limits.idle_timeout {
                    tracing::debug!(idle_s = idle.as_secs_f64(), "closing an idle web connection");
                    return;
                }
            }
        }
    }
}

/// A socket that notes when it last moved a byte.
struct Activity {
    inner: tokio::net::TcpStream,
    start: Instant,
    /// Milliseconds after `start` of the last byte read or written.
    last: Arc<AtomicU64>,
}

impl Activity {
    fn touch(&self) {
        self.last
            .store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

impl AsyncRead for Activity {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.touch();
        }
        r
    }
}

impl AsyncWrite for Activity {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.touch();
        }
        r
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
