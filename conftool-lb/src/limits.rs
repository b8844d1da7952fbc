//! What bounds the status API, so that no client (it listens on loopback: any local user)
//! can take from the agent what it needs to do its job: file descriptors above all. Without
//! bounds, ~1,100 connections each sending half a request header and holding took the agent
//! to its 1,024-descriptor limit; HAProxy's runtime socket then failed with `Too many open
//! files`, depools stayed out of HAProxy, and the failing `accept` spun a core.
//!
//! - [`StatusLimits`]: the configuration (`status_limits:` in the agent's file): how many
//!   connections, how long a request header may take, how long a connection may sit idle.
//! - [`connection_cap`]: the connections actually allowed, so that they fit in the process's
//!   open-files limit next to what the agent needs besides ([`descriptors_besides`]).
//! - [`Backoff`]: the pause after a failed `accept`, growing while it keeps failing.
//!
//! Pure but for [`open_files_limit`], so the rules are unit-tested here.

use std::time::Duration;

use serde::Deserialize;

use crate::config::de_duration;
use crate::error::Error;

/// Status API requests that read HAProxy at the same time, at most (each holds a socket).
pub const STATUS_HAPROXY_QUERIES: usize = 4;

/// The status API's bounds (`status_limits:` in the agent's configuration file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusLimits {
    /// Connections open at once, at most (fewer if the open-files limit does not leave room
    /// for them: see [`connection_cap`]). A connection beyond it closes the oldest one that
    /// is not being answered (waiting for, or sending, its request), so a client that sends
    /// its request at once is answered however many others hold connections.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// A request's header must be complete within this time of the connection being opened
    /// or its previous answer sent; so this also ends idle keep-alive connections.
    #[serde(default = "default_header_timeout", deserialize_with = "de_duration")]
    pub header_timeout: Duration,
    /// A connection on which no byte moves either way for this long is closed (a client
    /// that stops reading its answer).
    #[serde(default = "default_idle_timeout", deserialize_with = "de_duration")]
    pub idle_timeout: Duration,
}

fn default_max_connections() -> usize {
    256
}

fn default_header_timeout() -> Duration {
    Duration::from_secs(5)
}

fn default_idle_timeout() -> Duration {
    Duration::from_secs(10)
}

impl Default for StatusLimits {
    fn default() -> Self {
        StatusLimits {
            max_connections: default_max_connections(),
            header_timeout: default_header_timeout(),
            idle_timeout: default_idle_timeout(),
        }
    }
}

impl StatusLimits {
    /// What is wrong with these limits, if anything.
    pub fn check(&self) -> Result<(), LimitsError> {
        let short = Duration::from_millis(100);
        if !(1..=65_536).contains(&self.max_connections) {
            return Err(LimitsError::MaxConnections(self.max_connections));
        }
        for (name, d, most) in [
            ("header_timeout", self.header_timeout, 600),
            ("idle_timeout", self.idle_timeout, 3600),
        ] {
            if d < short || d > Duration::from_secs(most) {
                return Err(LimitsError::Timeout {
                    name,
                    value: d,
                    most_secs: most,
                });
            }
        }
        Ok(())
    }
}

/// A status API limit out of its range ([`StatusLimits::check`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LimitsError {
    /// `max_connections` not between 1 and 65536.
    #[error("status_limits.max_connections {0} is not between 1 and 65536")]
    MaxConnections(usize),
    /// A timeout under 100 ms or over its most.
    #[error("status_limits.{name} {value:?} is not between 100ms and {most_secs}s")]
    Timeout {
        /// Which timeout.
        name: &'static str,
        /// Its value.
        value: Duration,
        /// Its most, in seconds.
        most_secs: u64,
    },
}

/// Descriptors the agent needs besides the status API's connections, for `pools` pools:
/// standard streams, the async runtime's own, the etcd connections (the store's, and one per
/// pool's watch, two while one moves to another member), the HAProxy sockets of the agent
/// and of the status API's requests, the reserved one (see [`crate::runtime`]) and a margin.
pub fn descriptors_besides(pools: usize) -> u64 {
    let pools = u64::try_from(pools).unwrap_or(u64::MAX);
    let queries = u64::try_from(STATUS_HAPROXY_QUERIES).unwrap_or(u64::MAX);
    32u64
        .saturating_add(pools.saturating_mul(2))
        .saturating_add(queries)
}

/// The connections the status API allows, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionCap {
    /// Connections allowed.
    pub max: usize,
    /// What the configuration asked for (more than `max` when the limit did not allow it).
    pub configured: usize,
    /// The process's open-files limit (soft), if it has one.
    pub open_files: Option<u64>,
}

impl ConnectionCap {
    /// The open-files limit allowed fewer connections than configured.
    pub fn clamped(&self) -> bool {
        self.max < self.configured
    }
}

/// How many connections the status API may hold: the configured number, or fewer when the
/// open-files limit (`None`: none) leaves less room next to [`descriptors_besides`]. An
/// error when it leaves no room at all (raise the limit: `LimitNOFILE=` in the unit).
///
/// ```
/// use conftool_lb::limits::{connection_cap, StatusLimits};
/// let limits = StatusLimits::default(); // 256 connections
/// assert_eq!(connection_cap(&limits, Some(1024), 1).unwrap().max, 256);
/// let cap = connection_cap(&limits, Some(200), 1).unwrap();
/// assert_eq!((cap.max, cap.clamped()), (162, true));
/// assert!(connection_cap(&limits, Some(30), 1).is_err());
/// ```
pub fn connection_cap(
    limits: &StatusLimits,
    open_files: Option<u64>,
    pools: usize,
) -> Result<ConnectionCap, Error> {
    let besides = descriptors_besides(pools);
    let max = match open_files {
        None => limits.max_connections,
        Some(limit) if limit <= besides => {
            return Err(Error::OpenFiles {
                limit,
                needed: besides + 1,
            })
        }
        Some(limit) => {
            let room = usize::try_from(limit - besides).unwrap_or(usize::MAX);
            limits.max_connections.min(room)
        }
    };
    Ok(ConnectionCap {
        max,
        configured: limits.max_connections,
        open_files,
    })
}

/// The process's soft open-files limit (`RLIMIT_NOFILE`); `None` when unlimited or unknown.
pub fn open_files_limit() -> Option<u64> {
    use nix::sys::resource::{getrlimit, Resource, RLIM_INFINITY};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, _)) if soft != RLIM_INFINITY => Some(soft),
        _ => None,
    }
}

/// Pauses that double from `first` up to `most` while failures go on, and start over after
/// a success: a failing `accept` (out of descriptors, say) is retried at most a few times a
/// second instead of in a loop that spins a core, and a passing failure costs little.
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    most: Duration,
    next: Duration,
}

impl Backoff {
    /// Starting at `first`, never above `most`.
    pub fn new(first: Duration, most: Duration) -> Backoff {
        Backoff {
            first,
            most,
            next: first.min(most),
        }
    }

    /// The pause after one more failure.
    pub fn next_pause(&mut self) -> Duration {
        let pause = self.next;
        self.next = self.next.saturating_mul(2).min(self.most);
        pause
    }

    /// A success: the next failure pauses `first` again.
    pub fn reset(&mut self) {
        self.next = self.first.min(self.most);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_ceiling_and_starts_over_after_a_success() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(10), ms(100));
        let pauses: Vec<Duration> = (0..6).map(|_| b.next_pause()).collect();
        assert_eq!(pauses, [ms(10), ms(20), ms(40), ms(80), ms(100), ms(100)]);
        b.reset();
        assert_eq!(b.next_pause(), ms(10));
        // A failing accept paused this way for a minute tries at most ~70 times, not
        // millions: the bound the status server relies on.
        let mut b = Backoff::new(ms(10), Duration::from_secs(1));
        let (mut spent, mut tries) = (Duration::ZERO, 0);
        while spent < Duration::from_secs(60) {
            spent += b.next_pause();
            tries += 1;
        }
        assert_eq!(tries, 66);
        // A first pause above the ceiling is the ceiling.
        assert_eq!(Backoff::new(ms(50), ms(5)).next_pause(), ms(5));
    }

    #[test]
    fn the_cap_fits_in_the_open_files_limit() {
        let limits = StatusLimits {
            max_connections: 1000,
            ..StatusLimits::default()
        };
        // No limit, or room enough: as configured.
        let cap = connection_cap(&limits, None, 3).expect("cap");
        assert_eq!((cap.max, cap.clamped()), (1000, false));
        let cap = connection_cap(&limits, Some(65_536), 3).expect("cap");
        assert_eq!((cap.max, cap.clamped()), (1000, false));
        // 1,024 (Debian's default): what the agent needs besides is kept out of it.
        assert_eq!(descriptors_besides(3), 32 + 6 + 4);
        let cap = connection_cap(&limits, Some(1024), 3).expect("cap");
        assert_eq!(
            cap,
            ConnectionCap {
                max: 1024 - 42,
                configured: 1000,
                open_files: Some(1024)
            }
        );
        assert!(cap.clamped());
        // More pools, less room.
        assert_eq!(
            connection_cap(&limits, Some(1024), 100).expect("cap").max,
            788
        );
        // No room at all: an error that says what is needed.
        let err = connection_cap(&limits, Some(42), 3).expect_err("no room");
        assert!(
            matches!(
                err,
                Error::OpenFiles {
                    limit: 42,
                    needed: 43
                }
            ),
            "{err:?}"
        );
        assert_eq!(connection_cap(&limits, Some(43), 3).expect("cap").max, 1);
    }

    #[test]
    fn limits_are_checked() {
        assert_eq!(StatusLimits::default().check(), Ok(()));
        let bad = |l: StatusLimits| l.check().expect_err("bad").to_string();
        let d = StatusLimits::default();
        assert!(bad(StatusLimits {
            max_connections: 0,
            ..d
        })
        .contains("max_connections 0"));
        assert!(bad(StatusLimits {
            header_timeout: Duration::from_millis(10),
            ..d
        })
        .contains("header_timeout 10ms"));
        assert!(bad(StatusLimits {
            idle_timeout: Duration::from_secs(7200),
            ..d
        })
        .contains("idle_timeout"));
    }
}
