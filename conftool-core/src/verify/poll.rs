//! The I/O of a verification: every load balancer of every target asked at once, each
//! again after a growing pause until it is as wanted, within one deadline.
//!
//! What is asked again and what ends the verification at once: an answer that cannot
//! change by waiting (a `404`, an unparsable answer, a host kept in rotation by the depool
//! threshold, no session count when sessions are to be waited for) fails at once; a failed
//! connection, a request without an answer in its time, or an error status (the agent's
//! `503` when it cannot read HAProxy) is asked again, and is the error if it is still so
//! when the time is up: a load balancer restarting is not a failure, one that stays away
//! is.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::try_join_all;
use http_body_util::Empty;
use hyper::body::Bytes;
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::sync::Semaphore;

use super::answer::{decide, read_answer, Answer, Decision, Seen};
use super::{Check, LbUrl, LoadBalancers, Target, Verified, VerifyError, VerifyOptions};
use crate::http1::{read_body, send, AbortOnDrop};

/// The largest answer read: a host's state is under 200 bytes.
const MAX_ANSWER: u64 = 64 << 10;
/// The longest one request may take (within the deadline): a load balancer that stalls is
/// asked again rather than waited for until the end.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// The first pause before asking again; it doubles up to [`VerifyOptions::interval`].
const FIRST_PAUSE: Duration = Duration::from_millis(20);
/// Requests in flight at once, across every load balancer (a rack's hosts in a few pools,
/// each behind several load balancers, must not flood them).
const IN_FLIGHT: usize = 32;

/// Verify every target against every load balancer of its pool, all at once: the first
/// failure ends it (the others are dropped). Targets given twice are asked once. A target
/// whose pool has no load balancer configured fails at once, before any is asked
/// ([`VerifyError::NoLoadBalancer`]).
pub async fn verify(
    lbs: &LoadBalancers,
    targets: &[Target],
    opts: &VerifyOptions,
) -> Result<Verified, VerifyError> {
    let start = Instant::now();
    let mut targets: Vec<&Target> = targets.iter().collect();
    targets.sort();
    targets.dedup();
    if let Some(t) = targets.iter().find(|t| lbs.for_pool(&t.pool).is_empty()) {
        return Err(VerifyError::NoLoadBalancer {
            pool: t.pool.clone(),
        });
    }
    let pairs: Vec<(&LbUrl, &Target)> = targets
        .iter()
        .flat_map(|t| lbs.for_pool(&t.pool).iter().map(move |lb| (lb, *t)))
        .collect();
    let tls = match pairs.iter().find(|(lb, _)| lb.is_https()) {
        None => None,
        Some((lb, t)) => Some(tls_connector().map_err(|reason| unreachable(lb, t, reason))?),
    };
    let ask = Asker {
        tls,
        permits: Arc::new(Semaphore::new(IN_FLIGHT)),
        start,
        deadline: start + opts.timeout,
        opts: opts.clone(),
    };
    let checks = try_join_all(pairs.into_iter().map(|(lb, t)| ask.until_wanted(lb, t))).await?;
    Ok(Verified {
        checks,
        elapsed: start.elapsed(),
    })
}

fn unreachable(lb: &LbUrl, t: &Target, reason: String) -> VerifyError {
    VerifyError::Unreachable {
        lb: lb.clone(),
        pool: t.pool.clone(),
        host: t.host.clone(),
        reason,
    }
}

/// What every question shares.
struct Asker {
    tls: Option<tokio_rustls::TlsConnector>,
    permits: Arc<Semaphore>,
    start: Instant,
    deadline: Instant,
    opts: super::VerifyOptions,
}

impl Asker {
    /// Ask `lb` about `t` until it is as wanted, or it cannot be, or the time is up.
    async fn until_wanted(&self, lb: &LbUrl, t: &Target) -> Result<Check, VerifyError> {
        let mut pause = FIRST_PAUSE;
        let mut last_seen: Option<Seen> = None;
        let mut last_failure: Option<String> = None;
        loop {
            let remaining = self.deadline.saturating_duration_since(Instant::now());
            let limit = remaining.min(REQUEST_TIMEOUT);
            let asked = tokio::time::timeout(limit, async {
                // Never closed: acquiring only fails on a closed semaphore.
                let _permit = self.permits.acquire().await;
                self.get(lb, t).await
            })
            .await;
            match asked {
                // Cut short by the deadline rather than by its own time: not the load
                // balancer's failure; what it said last stands.
                Err(_) if limit < REQUEST_TIMEOUT => {}
                Err(_) => last_failure = Some(format!("no answer within {}s", limit.as_secs_f64())),
                Ok(Err(reason)) => last_failure = Some(reason),
                Ok(Ok((_, _, false))) => {
                    return Err(VerifyError::Unparsable {
                        lb: lb.clone(),
                        pool: t.pool.clone(),
                        host: t.host.clone(),
                        reason: format!("an answer bigger than {} KiB", MAX_ANSWER >> 10),
                    })
                }
                Ok(Ok((status, body, true))) => match read_answer(status, &body) {
                    Answer::Seen(seen) => {
                        last_failure = None;
                        match decide(t.want, self.opts.wait_sessions, &seen) {
                            Decision::Done => {
                                return Ok(Check {
                                    lb: lb.clone(),
                                    pool: t.pool.clone(),
                                    host: t.host.clone(),
                                    want: t.want,
                                    after: self.start.elapsed(),
                                    seen,
                                })
                            }
                            Decision::Wait => last_seen = Some(seen),
                            Decision::Kept => {
                                return Err(VerifyError::KeptInRotation {
                                    lb: lb.clone(),
                                    pool: t.pool.clone(),
                                    host: t.host.clone(),
                                })
                            }
                            Decision::NoSessions => {
                                return Err(VerifyError::NoSessions {
                                    lb: lb.clone(),
                                    pool: t.pool.clone(),
                                    host: t.host.clone(),
                                })
                            }
                        }
                    }
                    Answer::NotListed => {
                        return Err(VerifyError::NotListed {
                            lb: lb.clone(),
                            pool: t.pool.clone(),
                            host: t.host.clone(),
                        })
                    }
                    Answer::Unparsable(reason) => {
                        return Err(VerifyError::Unparsable {
                            lb: lb.clone(),
                            pool: t.pool.clone(),
                            host: t.host.clone(),
                            reason,
                        })
                    }
                    Answer::Status(reason) => last_failure = Some(reason),
                },
            }
            let now = Instant::now();
            if now >= self.deadline {
                return Err(match (last_failure, last_seen) {
                    (Some(reason), _) => unreachable(lb, t, reason),
                    (None, Some(last_seen)) => VerifyError::Timeout {
                        lb: lb.clone(),
                        pool: t.pool.clone(),
                        host: t.host.clone(),
                        want: t.want,
                        last_seen,
                        waited: self.opts.timeout,
                    },
                    (None, None) => unreachable(
                        lb,
                        t,
                        format!("no answer within {}s", self.opts.timeout.as_secs_f64()),
                    ),
                });
            }
            tokio::time::sleep(pause.min(self.deadline - now)).await;
            pause = (pause * 2).min(self.opts.interval.max(FIRST_PAUSE));
        }
    }

    /// One `GET <url>/<host>` asking for JSON, on a fresh connection: the status, the body
    /// (at most [`MAX_ANSWER`]) and whether that is all of it.
    async fn get(&self, lb: &LbUrl, t: &Target) -> Result<(u16, Vec<u8>, bool), String> {
        let tcp = tokio::net::TcpStream::connect((lb.host(), lb.port()))
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        let req = Request::get(lb.host_path(&t.host))
            .header(hyper::header::HOST, lb.authority())
            .header(hyper::header::ACCEPT, "application/json")
            .header(hyper::header::USER_AGENT, "conftool-verify")
            .body(Empty::<Bytes>::new())
            .map_err(|e| format!("cannot build the request: {e}"))?;
        let (resp, driver) = match &self.tls {
            Some(tls) => {
                let name = rustls_pki_types::ServerName::try_from(lb.host().to_string())
                    .map_err(|e| format!("bad server name: {e}"))?;
                let stream = tls
                    .connect(name, tcp)
                    .await
                    .map_err(|e| format!("TLS: {e}"))?;
                send(TokioIo::new(stream), req).await
            }
            None => send(TokioIo::new(tcp), req).await,
        }
        .map_err(|e| e.to_string())?;
        let _driver = AbortOnDrop(driver);
        let status = resp.status().as_u16();
        let declared = resp
            .headers()
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > MAX_ANSWER) {
            return Ok((status, Vec::new(), false));
        }
        let (body, complete) = read_body(resp, MAX_ANSWER)
            .await
            .map_err(|e| format!("reading the answer: {e}"))?;
        Ok((status, body, complete))
    }
}

/// A TLS client trusting the system's CA bundle (where Debian keeps it; a site's own CA
/// is added there with `update-ca-certificates`).
fn tls_connector() -> Result<tokio_rustls::TlsConnector, String> {
    let path = crate::http1::SYSTEM_CA_BUNDLE;
    let pem = conftool_trust::read_bounded(path.as_ref(), 16 << 20, "CA file")
        .map_err(|e| format!("TLS setup: cannot read {path}: {e}"))?;
    let roots = crate::http1::roots(&pem).map_err(|e| format!("TLS setup: {path}: {e}"))?;
    let config = crate::http1::client_builder(roots)
        .map_err(|e| e.to_string())?
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}
