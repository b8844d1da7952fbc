//! The status API's connections: accepted, bounded and timed out so that clients cannot use
//! up the agent's descriptors or its CPU (see [`crate::limits`] for why).
//!
//! - **A bound.** At most `cap` connections are kept. One more (accepted: a client that
//!   sends its request at once is answered while others hold connections, instead of
//!   queueing behind them in the kernel's backlog) closes the oldest connection that is not
//!   being answered (still waiting for, or reading, its request). When every one is being
//!   answered, accepting waits until one is done.
//! - **Timeouts.** A request header must be complete within `header_timeout` of the
//!   connection being ready for it (hyper's header timer; it also ends idle keep-alive
//!   connections); a connection on which no byte moves for `idle_timeout` is closed.
//! - **A failing accept** (out of descriptors despite the bound: something else used them,
//!   or the limit was lowered under the running agent) pauses ([`Backoff`]) before it tries
//!   again, instead of looping on the error; connections held are left alone (closing one
//!   for another client would not give the agent anything it needs).

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::http::StatusServer;
use crate::limits::{Backoff, StatusLimits};

/// The most a connection buffers of a request (hyper's least is 8 KiB).
const READ_BUFFER: usize = 16 * 1024;

/// The first pause after a failed accept, and the longest.
const ACCEPT_PAUSE: (Duration, Duration) = (Duration::from_millis(10), Duration::from_secs(1));

/// One open connection.
#[derive(Debug)]
struct Slot {
    /// Since when it has been waiting for a request; `None` while one is being answered.
    waiting_since: Option<Instant>,
    /// Asked to close (counted in `leaving` until it has).
    leaving: bool,
    close: Arc<Notify>,
}

#[derive(Debug, Default)]
struct Inner {
    next_id: u64,
    slots: HashMap<u64, Slot>,
    leaving: usize,
}

/// The open connections.
#[derive(Debug, Default)]
struct Table {
    inner: Mutex<Inner>,
    /// A connection closed, or finished answering (and may be closed to make room).
    changed: Notify,
}

impl Table {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn open(&self) -> (u64, Arc<Notify>) {
        let mut t = self.lock();
        let id = t.next_id;
        t.next_id += 1;
        let close = Arc::new(Notify::new());
        t.slots.insert(
            id,
            Slot {
                waiting_since: Some(Instant::now()),
                leaving: false,
                close: close.clone(),
            },
        );
        (id, close)
    }

    fn set_answering(&self, id: u64, answering: bool) {
        if let Some(s) = self.lock().slots.get_mut(&id) {
            s.waiting_since = (!answering).then(Instant::now);
        }
        if !answering {
            self.changed.notify_one();
        }
    }

    fn closed(&self, id: u64) {
        let mut t = self.lock();
        if t.slots.remove(&id).is_some_and(|s| s.leaving) {
            t.leaving -= 1;
        }
        drop(t);
        self.changed.notify_one();
    }

    /// (open, open and not asked to close).
    fn counts(&self) -> (usize, usize) {
        let t = self.lock();
        (t.slots.len(), t.slots.len() - t.leaving)
    }

    /// Ask the connection waiting longest for its request to close; whether there was one.
    fn close_oldest_waiting(&self) -> bool {
        let mut t = self.lock();
        let oldest = t
            .slots
            .iter()
            .filter(|(_, s)| !s.leaving)
            .filter_map(|(id, s)| s.waiting_since.map(|w| (w, *id)))
            .min();
        let Some((_, id)) = oldest else { return false };
        if let Some(s) = t.slots.get_mut(&id) {
            s.leaving = true;
            s.close.notify_one();
        }
        t.leaving += 1;
        true
    }
}

/// Accept and serve connections from `listener` with at most `cap` open, until dropped.
pub(crate) async fn serve(
    server: Arc<StatusServer>,
    listener: TcpListener,
    limits: StatusLimits,
    cap: usize,
) {
    let table = Arc::new(Table::default());
    let metrics = server.metrics();
    metrics
        .status_max_connections
        .store(cap as u64, Ordering::Relaxed);
    let mut backoff = Backoff::new(ACCEPT_PAUSE.0, ACCEPT_PAUSE.1);
    loop {
        // Room for one more: at most `cap` open (those asked to close count until they
        // have), so at most `cap + 1` descriptors with the one accepted next. Over it, the
        // oldest connection waiting for its request goes (maybe the last accepted, if every
        // other is being answered); none waiting: no accepts until one is answered.
        loop {
            let (open, staying) = table.counts();
            metrics
                .status_connections
                .store(open as u64, Ordering::Relaxed);
            if open <= cap {
                break;
            }
            if staying > cap && table.close_oldest_waiting() {
                metrics.status_evicted.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            table.changed.notified().await;
        }
        match listener.accept().await {
            Ok((stream, _)) => {
                backoff.reset();
                let (id, close) = table.open();
                let (t, server) = (table.clone(), server.clone());
                tokio::spawn(async move {
                    connection(&server, &t, id, stream, close, limits).await;
                    t.closed(id);
                    let open = t.counts().0 as u64;
                    server
                        .metrics()
                        .status_connections
                        .store(open, Ordering::Relaxed);
                });
            }
            Err(_) => {
                // Out of descriptors, or a connection gone before it was accepted: the same
                // pause either way (a passing error costs 10 ms).
                metrics.status_accept_errors.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(backoff.next_pause()).await;
            }
        }
    }
}

/// Serve one connection until it ends, times out or is asked to close; its socket is
/// closed when this returns.
async fn connection(
    server: &Arc<StatusServer>,
    table: &Arc<Table>,
    id: u64,
    stream: tokio::net::TcpStream,
    close: Arc<Notify>,
    limits: StatusLimits,
) {
    let epoch = Instant::now();
    let last_io = Arc::new(AtomicU64::new(0));
    let io = TokioIo::new(Tracked {
        inner: stream,
        epoch,
        last_io: last_io.clone(),
    });
    let svc = {
        let (server, table) = (server.clone(), table.clone());
        hyper::service::service_fn(move |req| {
            let answering = Answering::new(&table, id);
            let server = server.clone();
            async move {
                let reply = server.answer(req).await;
                drop(answering);
                Ok::<_, std::convert::Infallible>(reply)
            }
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        // The API's requests are a line and a few headers; hyper's default (~400 KiB) would
        // let every held connection pin that much memory with a header it never finishes.
        .max_buf_size(READ_BUFFER);
    let metrics = server.metrics();
    tokio::select! {
        done = builder.serve_connection(io, svc) => {
            // A client that goes away mid-answer is its own business; a timeout is counted.
            if done.is_err_and(|e| e.is_timeout()) {
                metrics.status_timeouts.fetch_add(1, Ordering::Relaxed);
            }
        }
        () = close.notified() => {}
        () = idle(epoch, &last_io, limits.idle_timeout) => {
            metrics.status_timeouts.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Completes once no byte has moved for `limit`.
async fn idle(epoch: Instant, last_io: &AtomicU64, limit: Duration) {
    loop {
        let last = epoch + Duration::from_millis(last_io.load(Ordering::Relaxed));
        let deadline = last + limit;
        if Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep_until(deadline.into()).await;
    }
}

/// A request being answered, for as long as this lives.
struct Answering {
    table: Arc<Table>,
    id: u64,
}

impl Answering {
    fn new(table: &Arc<Table>, id: u64) -> Answering {
        table.set_answering(id, true);
        Answering {
            table: table.clone(),
            id,
        }
    }
}

impl Drop for Answering {
    fn drop(&mut self) {
        self.table.set_answering(self.id, false);
    }
}

/// A stream that notes when a byte last moved (milliseconds since `epoch`).
struct Tracked<S> {
    inner: S,
    epoch: Instant,
    last_io: Arc<AtomicU64>,
}

impl<S> Tracked<S> {
    fn moved(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_io.store(ms, Ordering::Relaxed);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.moved();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.moved();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
#[path = "conns_tests.rs"]
mod tests;
