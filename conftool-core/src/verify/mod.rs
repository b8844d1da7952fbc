//! Verification against load balancers: after a change in etcd, ask every load balancer
//! of every pool touched whether each host is really out of rotation (or back in), until
//! all say so or the time is up. It fails closed: a load balancer that cannot be reached,
//! answers something that is not a state, does not list the host, keeps it in rotation
//! because of the pool's depool threshold, or is not as wanted in time, is a
//! [`VerifyError`] naming the load balancer, the pool and the host, never a pass.
//!
//! ```no_run
//! use conftool_core::verify::{verify, Target, VerifyOptions, Want};
//! use conftool_core::Config;
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let cfg = Config::load("/etc/conftool/config.yaml".as_ref())?;
//! let target = Target {
//!     pool: "eqiad/appservers/apache".parse()?,
//!     host: "mw1018.eqiad.wmnet".parse()?,
//!     want: Want::Out,
//! };
//! let verified = verify(&cfg.load_balancers, &[target], &VerifyOptions::default()).await?;
//! for c in &verified.checks {
//!     println!("{} {} {}: {} after {:?}", c.lb, c.pool, c.host, c.want, c.after);
//! }
//! # Ok(()) }
//! ```
//!
//! # Layout
//! - `lbs`: the configuration's `load_balancers` ([`LoadBalancers`], [`LbUrl`]), checked
//!   when it is read.
//! - `answer`: pure: a load balancer's answer ([`Seen`]) and what it means for a host
//!   wanted in or out.
//! - `poll`: the I/O: one small HTTP/1.1 (or TLS) request per load balancer and host, every
//!   one at once (a few dozen in flight), asked again with a growing pause (from 20 ms up to
//!   [`VerifyOptions::interval`]) until it is as wanted.

mod answer;
mod lbs;
mod poll;

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use crate::model::{ObjectKey, PoolKey, PoolState, Pooled};
use crate::names::NodeName;
use crate::store::Store;

pub use answer::Seen;
pub use lbs::{LbUrl, LbUrlError, LoadBalancers};
pub use poll::verify;

/// Which way a host is to be seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Want {
    /// Out of rotation: getting no new requests.
    Out,
    /// In rotation: getting new requests.
    In,
}

impl Want {
    /// What a load balancer should make of an object in this state: in rotation if it
    /// serves (`pooled: yes`, weight above 0), out otherwise.
    pub fn of(state: &PoolState) -> Want {
        if state.serving() {
            Want::In
        } else {
            Want::Out
        }
    }
}

impl fmt::Display for Want {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Want::Out => "out of rotation",
            Want::In => "in rotation",
        })
    }
}

/// One host in one pool, and how it should be seen by each of the pool's load balancers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Target {
    /// The pool.
    pub pool: PoolKey,
    /// The host.
    pub host: NodeName,
    /// In or out.
    pub want: Want,
}

impl Target {
    /// What to verify for an object written as `state` (see [`Want::of`]). `None` for an
    /// `inactive` object: a load balancer may drop it from its configuration altogether
    /// (PyBal does), so there is nothing it must list.
    pub fn of(key: &ObjectKey, state: &PoolState) -> Option<Target> {
        (state.pooled != Pooled::Inactive).then(|| Target {
            pool: key.pool.clone(),
            host: key.node.clone(),
            want: Want::of(state),
        })
    }
}

/// How to verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyOptions {
    /// How long every load balancer has to be as wanted, from the start of the
    /// verification; each request's own timeout falls within it.
    pub timeout: Duration,
    /// The longest pause between two questions to one load balancer about one host (the
    /// first ones come sooner: 20 ms, then doubling up to this).
    pub interval: Duration,
    /// Out of rotation also means no request left on the host: wait until the load
    /// balancer reports no session on it (`conftool-lb-agent` does; a load balancer that
    /// does not report sessions fails the verification, [`VerifyError::NoSessions`]).
    pub wait_sessions: bool,
}

impl Default for VerifyOptions {
    /// 30 s, at most 200 ms between two questions, without waiting for sessions.
    fn default() -> Self {
        VerifyOptions {
            timeout: Duration::from_secs(30),
            interval: Duration::from_millis(200),
            wait_sessions: false,
        }
    }
}

/// What was verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// One per load balancer, pool and host: when it was seen as wanted.
    pub checks: Vec<Check>,
    /// How long the whole verification took.
    pub elapsed: Duration,
}

/// One load balancer's word on one host of one pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The load balancer.
    pub lb: LbUrl,
    /// The pool.
    pub pool: PoolKey,
    /// The host.
    pub host: NodeName,
    /// As wanted: in or out.
    pub want: Want,
    /// When it was first seen as wanted, from the start of the verification.
    pub after: Duration,
    /// What the load balancer said then.
    pub seen: Seen,
}

/// A verification that did not pass, naming the load balancer, the pool and the host, and
/// why. [`VerifyError::is_bad_input`] tells a setting to fix (nothing was asked of a load
/// balancer) from a verification that failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// No load balancer is configured for the pool (`load_balancers`).
    #[error(
        "no load balancer is configured for pool {pool} (the configuration's load_balancers \
         has no entry for it)"
    )]
    NoLoadBalancer {
        /// The pool.
        pool: PoolKey,
    },
    /// `load_balancers` names a pool that has no object in etcd: a typo, most likely (its
    /// real name then has no load balancer). Found by [`preflight`].
    #[error(
        "the configuration's load_balancers names pool {pool}, which has no object in etcd \
         (a misspelt pool?)"
    )]
    UnknownPool {
        /// The pool.
        pool: PoolKey,
    },
    /// No answer could be had: the connection failed, no answer came in time, or the
    /// load balancer answered with an error status, until the time was up.
    #[error("load balancer {lb} (pool {pool}, host {host}): unreachable: {reason}")]
    Unreachable {
        /// The load balancer.
        lb: LbUrl,
        /// The pool.
        pool: PoolKey,
        /// The host.
        host: NodeName,
        /// The last failure.
        reason: String,
    },
    /// The answer is not a host's state.
    #[error("load balancer {lb} (pool {pool}, host {host}): unparsable answer: {reason}")]
    Unparsable {
        /// The load balancer.
        lb: LbUrl,
        /// The pool.
        pool: PoolKey,
        /// The host.
        host: NodeName,
        /// What is wrong with it (with its start, escaped).
        reason: String,
    },
    /// `404`: the load balancer does not list the host (or the pool, at that URL).
    #[error(
        "load balancer {lb} (pool {pool}): host {host} is not listed (404 Not Found at {url})",
        url = lb.host_url(host)
    )]
    NotListed {
        /// The load balancer.
        lb: LbUrl,
        /// The pool.
        pool: PoolKey,
        /// The host.
        host: NodeName,
    },
    /// Depooled in etcd, the host is kept in rotation by the load balancer, so as not to
    /// leave the pool below its depool threshold.
    #[error(
        "load balancer {lb} (pool {pool}): host {host} is kept in rotation by the pool's \
         depool threshold (too few other hosts are pooled)"
    )]
    KeptInRotation {
        /// The load balancer.
        lb: LbUrl,
        /// The pool.
        pool: PoolKey,
        /// The host.
        host: NodeName,
    },
    /// Sessions were to be waited for, and the load balancer does not report them.
    #[error(
        "load balancer {lb} (pool {pool}, host {host}): does not report the host's sessions, \
         so they cannot be waited for"
    )]
    NoSessions {
        /// The load balancer.
        lb: LbUrl,
        /// The pool.
        pool: PoolKey,
        /// The host.
        host: NodeName,
    },
    /// The load balancer answered, but not as wanted, until the time was up.
    #[error(
        "load balancer {lb} (pool {pool}): host {host} not {want} within {}s; last seen: \
         {last_seen}",
        waited.as_secs_f64()
    )]
    Timeout {
        /// The load balancer.
        lb: LbUrl,
        /// The pool.
        pool: PoolKey,
        /// The host.
        host: NodeName,
        /// What was waited for.
        want: Want,
        /// Its last answer.
        last_seen: Seen,
        /// How long was waited.
        waited: Duration,
    },
    /// etcd could not be read ([`preflight`]).
    #[error(transparent)]
    Store(#[from] crate::Error),
}

/// Bad input: an error in the settings (no load balancer for a pool, a pool that does not
/// exist), found before any load balancer is asked, and before anything is written by a
/// caller that checks first ([`preflight`]).
impl conftool_model::Classify for VerifyError {
    fn class(&self) -> conftool_model::ErrorClass {
        match self {
            VerifyError::NoLoadBalancer { .. } | VerifyError::UnknownPool { .. } => {
                conftool_model::ErrorClass::BadInput
            }
            VerifyError::Store(e) => e.class(),
            _ => conftool_model::ErrorClass::Failure,
        }
    }
}

/// The checks to make before writing what is to be verified: every pool `load_balancers`
/// names in the datacenters and clusters of the targets exists in etcd (has an object;
/// [`VerifyError::UnknownPool`]: a misspelt entry is named, rather than its real pool
/// reported without a load balancer), and every target's pool has a load balancer
/// ([`VerifyError::NoLoadBalancer`]). One read of etcd (those pools).
pub async fn preflight(
    store: &Store,
    lbs: &LoadBalancers,
    targets: &[Target],
) -> Result<(), VerifyError> {
    let clusters: BTreeSet<(&str, &str)> = targets
        .iter()
        .map(|t| (t.pool.dc.as_str(), t.pool.cluster.as_str()))
        .collect();
    let configured: BTreeSet<PoolKey> = lbs
        .iter()
        .map(|(p, _)| p)
        .filter(|p| clusters.contains(&(p.dc.as_str(), p.cluster.as_str())))
        .cloned()
        .collect();
    if !configured.is_empty() {
        let members = store.pool_members(&configured).await?;
        if let Some(pool) = configured
            .into_iter()
            .find(|p| members.get(p).is_none_or(|m| m.members.is_empty()))
        {
            return Err(VerifyError::UnknownPool { pool });
        }
    }
    match targets.iter().find(|t| lbs.for_pool(&t.pool).is_empty()) {
        Some(t) => Err(VerifyError::NoLoadBalancer {
            pool: t.pool.clone(),
        }),
        None => Ok(()),
    }
}
