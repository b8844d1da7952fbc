//! HAProxy's runtime API over its unix socket: one connection per command (HAProxy's
//! non-interactive mode answers and closes), with a timeout so a hung HAProxy cannot stall
//! the agent.
//!
//! The agent's own runtime ([`Runtime::with_reserve`]) keeps one descriptor in reserve (an
//! open `/dev/null`): when opening the socket fails because the process is out of
//! descriptors (`EMFILE`, `ENFILE`), the reserve is closed and the socket opened in its
//! place, and the reserve is taken again once the command is done. So a depool still
//! reaches HAProxy when something else (a flood of status API connections, a leak) has
//! used up the rest. The status API's reads use a runtime without one: they may fail then.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::error::Error;
use crate::haproxy::{parse_servers_state, parse_stat_sessions, Command, ServerState};
use crate::names::ServerName;

/// How long one command may take.
const TIMEOUT: Duration = Duration::from_secs(5);
/// The largest answer read (a backend of thousands of servers is well under this).
const MAX_ANSWER: u64 = 16 << 20;

/// A runtime API socket.
#[derive(Debug, Clone)]
pub struct Runtime {
    path: PathBuf,
    reserve: Option<Arc<Reserve>>,
}

/// The descriptor kept for the socket, and how often it was used.
#[derive(Debug)]
struct Reserve {
    file: Mutex<Option<File>>,
    used: AtomicU64,
}

impl Reserve {
    /// Take a descriptor again if none is held (best effort: out of descriptors, later).
    fn refill(&self) {
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if file.is_none() {
            *file = File::open("/dev/null").ok();
        }
    }

    /// Close the reserved descriptor so that the next one opened gets it; whether there
    /// was one.
    fn release(&self) -> bool {
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        let had = file.take().is_some();
        if had {
            self.used.fetch_add(1, Ordering::Relaxed);
        }
        had
    }
}

/// Whether an error means the process (or the system) is out of descriptors.
fn out_of_descriptors(e: &std::io::Error) -> bool {
    use nix::errno::Errno;
    e.raw_os_error()
        .is_some_and(|n| n == Errno::EMFILE as i32 || n == Errno::ENFILE as i32)
}

impl Runtime {
    /// The socket at `path` (nothing is connected until a command is sent).
    pub fn new(path: &Path) -> Runtime {
        Runtime {
            path: path.to_path_buf(),
            reserve: None,
        }
    }

    /// The socket at `path`, with a descriptor kept in reserve for it (see the
    /// [module](self)); clones share the one reserve.
    pub fn with_reserve(path: &Path) -> Runtime {
        let reserve = Reserve {
            file: Mutex::new(None),
            used: AtomicU64::new(0),
        };
        reserve.refill();
        Runtime {
            path: path.to_path_buf(),
            reserve: Some(Arc::new(reserve)),
        }
    }

    /// Whether a descriptor is held in reserve now.
    pub fn has_reserve(&self) -> bool {
        self.reserve
            .as_ref()
            .is_some_and(|r| r.file.lock().unwrap_or_else(|e| e.into_inner()).is_some())
    }

    /// How many times the reserved descriptor was given up to reach HAProxy.
    pub fn reserve_used(&self) -> u64 {
        self.reserve
            .as_ref()
            .map_or(0, |r| r.used.load(Ordering::Relaxed))
    }

    /// Connect, falling back on the reserved descriptor when out of descriptors.
    async fn connect(&self) -> std::io::Result<UnixStream> {
        match UnixStream::connect(&self.path).await {
            Err(e) if out_of_descriptors(&e) => match &self.reserve {
                Some(r) if r.release() => UnixStream::connect(&self.path).await,
                _ => Err(e),
            },
            other => other,
        }
    }

    /// Send one command line, return HAProxy's whole answer.
    pub async fn send(&self, command: &str) -> Result<String, Error> {
        let io = |source| Error::Socket {
            path: self.path.clone(),
            source,
        };
        let talk = async {
            let mut s = self.connect().await.map_err(io)?;
            s.write_all(format!("{command}\n").as_bytes())
                .await
                .map_err(io)?;
            let mut out = String::new();
            s.take(MAX_ANSWER)
                .read_to_string(&mut out)
                .await
                .map_err(io)?;
            Ok(out)
        };
        let answer = tokio::time::timeout(TIMEOUT, talk)
            .await
            .map_err(|_| io(std::io::Error::from(std::io::ErrorKind::TimedOut)))?;
        // The socket is closed by now: its descriptor, if it was the reserved one, is free.
        if let Some(r) = &self.reserve {
            r.refill();
        }
        answer
    }

    /// `show servers state <backend>`.
    pub async fn servers(&self, backend: &str) -> Result<Vec<ServerState>, Error> {
        let answer = self.send(&format!("show servers state {backend}")).await?;
        parse_servers_state(&answer)
    }

    /// Each server's current sessions (`show stat <backend> 4 -1`: servers only).
    pub async fn sessions(&self, backend: &str) -> Result<BTreeMap<ServerName, u64>, Error> {
        let answer = self.send(&format!("show stat {backend} 4 -1")).await?;
        parse_stat_sessions(&answer)
    }

    /// Apply one command; HAProxy answers these with an empty line when they succeed.
    pub async fn apply(&self, command: &Command) -> Result<(), Error> {
        let line = command.to_string();
        let answer = self.send(&line).await?;
        let answer = answer.trim();
        if answer.is_empty() {
            Ok(())
        } else {
            Err(Error::HaProxy {
                command: line,
                reason: answer.to_string(),
            })
        }
    }
}
