//! Members that stop answering: a paused etcd process and a black-hole listener.
//!
//! Both accept TCP connections (the kernel does that for a stopped process too) and then say
//! nothing, which is what a member with a stalled disk, a SIGSTOPped process or a black-holed
//! host looks like to a client. A refused connection is the easy case; these are the hard one.

use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::EtcdCluster;

/// Send `signal` to `pid`, a member process this harness started and still owns.
#[allow(unsafe_code)]
fn signal(pid: u32, signal: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        panic!("pid {pid} out of range");
    };
    // SAFETY: kill(2) touches no memory of ours; the PID is a child we have not reaped (the
    // guard borrows the cluster, which reaps its members only when killing them).
    let rc = unsafe { libc::kill(pid, signal) };
    assert_eq!(
        rc,
        0,
        "kill({pid}, {signal}): {}",
        std::io::Error::last_os_error()
    );
}

/// A member frozen with SIGSTOP; it is resumed with SIGCONT when this guard is dropped (also
/// when a test panics). The guard borrows the cluster, so the member cannot be killed and
/// reaped (and its PID reused) while it is paused.
#[must_use = "the member resumes when the guard is dropped"]
pub struct Paused<'a> {
    cluster: &'a EtcdCluster,
    member: usize,
    pid: u32,
}

impl EtcdCluster {
    /// Freeze member `i` with SIGSTOP: it keeps its sockets, so the kernel still accepts
    /// connections to it, but it answers nothing (not even HTTP/2 pings) until resumed.
    pub fn pause_member(&self, i: usize) -> Paused<'_> {
        let pid = self
            .member_pid(i)
            .unwrap_or_else(|| panic!("member {i} does not run"));
        signal(pid, libc::SIGSTOP);
        // The signal only marks the stop as pending: wait until the kernel says every thread
        // of the member is stopped, or a request sent right after could still be served.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !stopped(pid) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        Paused {
            cluster: self,
            member: i,
            pid,
        }
    }
}

/// Whether process `pid` is stopped (`T` in `/proc/<pid>/stat`).
fn stopped(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| rest.starts_with('T')))
        .unwrap_or(false)
}

impl Paused<'_> {
    /// Which member is paused.
    pub fn member(&self) -> usize {
        self.member
    }

    /// The paused member's client URL.
    pub fn endpoint(&self) -> String {
        self.cluster.member_endpoint(self.member)
    }

    /// Resume the member now (the same as dropping the guard).
    pub fn resume(self) {}
}

impl Drop for Paused<'_> {
    fn drop(&mut self) {
        // SIGCONT to a process that is running anyway is harmless.
        signal(self.pid, libc::SIGCONT);
    }
}

/// A listener on a free loopback port that accepts every connection and never sends or reads
/// a byte. Closed (with every connection it accepted) when dropped.
pub struct BlackHole {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl BlackHole {
    /// Start one.
    pub fn start() -> BlackHole {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().expect("local address").port();
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut held: Vec<TcpStream> = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => held.push(stream),
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
            // Dropping `held` and `listener` closes everything.
        });
        BlackHole {
            port,
            stop,
            thread: Some(thread),
        }
    }

    /// Its `http://` URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for BlackHole {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
