//! HAProxy's runtime API over its unix socket: one connection per command (HAProxy's
//! non-interactive mode answers and closes), with a timeout so a hung HAProxy cannot stall
//! the agent.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::error::Error;
use crate::haproxy::{parse_servers_state, Command, ServerState};

/// How long one command may take.
const TIMEOUT: Duration = Duration::from_secs(5);
/// The largest answer read (a backend of thousands of servers is well under this).
const MAX_ANSWER: u64 = 16 << 20;

/// A runtime API socket.
#[derive(Debug, Clone)]
pub struct Runtime {
    path: PathBuf,
}

impl Runtime {
    /// The socket at `path` (nothing is connected until a command is sent).
    pub fn new(path: &Path) -> Runtime {
        Runtime {
            path: path.to_path_buf(),
        }
    }

    /// Send one command line, return HAProxy's whole answer.
    pub async fn send(&self, command: &str) -> Result<String, Error> {
        let io = |source| Error::Socket {
            path: self.path.clone(),
            source,
        };
        let talk = async {
            let mut s = UnixStream::connect(&self.path).await.map_err(io)?;
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
        tokio::time::timeout(TIMEOUT, talk)
            .await
            .map_err(|_| io(std::io::Error::from(std::io::ErrorKind::TimedOut)))?
    }

    /// `show servers state <backend>`.
    pub async fn servers(&self, backend: &str) -> Result<Vec<ServerState>, Error> {
        let answer = self.send(&format!("show servers state {backend}")).await?;
        parse_servers_state(&answer)
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
