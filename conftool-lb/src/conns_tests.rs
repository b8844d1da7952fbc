//! The connection bounds against real sockets: a half-sent header is cut off by the header
//! timeout, a silent connection by the idle timeout, and at the cap the oldest connection
//! waiting for its request makes room for a client that sends one.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::agent::Metrics;
use crate::http::StatusServer;
use crate::limits::{ConnectionCap, StatusLimits};
use crate::runtime::Runtime;

/// Longer than anything here should take; only a hang reaches it.
const PATIENCE: Duration = Duration::from_secs(20);

async fn start(limits: StatusLimits, cap: usize) -> (SocketAddr, Arc<Metrics>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let metrics = Arc::new(Metrics::default());
    // `/pools` does not read HAProxy: no socket needed.
    let server = StatusServer::new(
        Runtime::new(Path::new("/nonexistent")),
        vec!["be".into()],
        metrics.clone(),
    );
    let cap = ConnectionCap {
        max: cap,
        configured: cap,
        open_files: None,
    };
    tokio::spawn(server.serve(listener, limits, cap));
    (addr, metrics)
}

/// Everything the server sends until it closes the connection.
async fn until_closed(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let read = s.read_to_end(&mut out);
    match tokio::time::timeout(PATIENCE, read).await {
        Ok(Ok(_)) => String::from_utf8_lossy(&out).into_owned(),
        Ok(Err(e)) => format!("error: {e}"),
        Err(_) => panic!("the connection was not closed"),
    }
}

const GET: &[u8] = b"GET /pools HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
const HALF: &[u8] = b"GET /pools HTTP/1.1\r\nHo";

#[tokio::test]
async fn a_half_sent_header_and_a_silent_connection_are_cut_off() {
    let limits = StatusLimits {
        header_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_millis(300),
        ..StatusLimits::default()
    };
    let (addr, metrics) = start(limits, 8).await;
    let mut half = TcpStream::connect(addr).await.expect("connect");
    half.write_all(HALF).await.expect("write");
    let mut silent = TcpStream::connect(addr).await.expect("connect");
    // Closed without an answer.
    assert_eq!(until_closed(&mut half).await, "");
    assert_eq!(until_closed(&mut silent).await, "");
    assert_eq!(metrics.status_timeouts.load(Ordering::Relaxed), 2);
    // A header longer than the API ever needs is refused, not buffered.
    let mut long = TcpStream::connect(addr).await.expect("connect");
    let filler = format!("GET /pools HTTP/1.1\r\nX: {}", "a".repeat(64 * 1024));
    let _ = long.write_all(filler.as_bytes()).await;
    let answer = until_closed(&mut long).await;
    // 431, or a reset if it comes before the client read it (the server closes with the
    // rest of the header unread).
    assert!(
        answer.starts_with("HTTP/1.1 431") || answer.contains("reset"),
        "{answer}"
    );
    assert_eq!(
        metrics.status_timeouts.load(Ordering::Relaxed),
        2,
        "not a timeout"
    );
    // A client that sends its request is answered.
    let mut ok = TcpStream::connect(addr).await.expect("connect");
    ok.write_all(GET).await.expect("write");
    let answer = until_closed(&mut ok).await;
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    assert!(answer.ends_with("\r\n\r\nbe\n"), "{answer}");
}

#[tokio::test]
async fn at_the_cap_the_oldest_waiting_connection_makes_room() {
    // Timeouts far off: only the cap closes anything here.
    let limits = StatusLimits {
        header_timeout: Duration::from_secs(600),
        idle_timeout: Duration::from_secs(600),
        ..StatusLimits::default()
    };
    let (addr, metrics) = start(limits, 3).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(HALF).await.expect("write");
        held.push(s);
        // In order: each accepted before the next connects.
        let n = held.len() as u64;
        tokio::time::timeout(PATIENCE, async {
            while metrics.status_connections.load(Ordering::Relaxed) < n {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("accepted");
    }
    assert_eq!(metrics.status_max_connections.load(Ordering::Relaxed), 3);
    // A fourth, well-behaved client: answered, and the oldest half-sent one is gone.
    let mut ok = TcpStream::connect(addr).await.expect("connect");
    ok.write_all(GET).await.expect("write");
    let answer = until_closed(&mut ok).await;
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    assert_eq!(until_closed(&mut held[0]).await, "");
    assert_eq!(metrics.status_evicted.load(Ordering::Relaxed), 1);
    // The others are still held: their header can still be finished and answered.
    held[2]
        .write_all(b"st: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let answer = until_closed(&mut held[2]).await;
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    assert_eq!(metrics.status_accept_errors.load(Ordering::Relaxed), 0);
}
