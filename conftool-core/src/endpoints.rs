//! The etcd members a store talks to, with failover.
//!
//! etcd-client's balanced channel keeps sending some requests to a member that is down, so
//! listing several endpoints gave no failover. Here requests go to one member at a time; when
//! it is unreachable, times out or reports a leader change, the request is retried on the
//! next member (each member at most once per request), so a tool keeps working while a
//! minority of the cluster is down. Writes are compare-and-swap guarded, so retrying one
//! whose answer was lost is safe: it fails its guard instead of applying twice.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use etcd_client::{Client, ConnectOptions, KvClient};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::error::Error;

/// One cluster's client URLs and the member in use.
pub(crate) struct Endpoints {
    urls: Vec<String>,
    opts: ConnectOptions,
    timeout: Duration,
    active: Mutex<Active>,
    /// Whether any request has succeeded (to tell "cannot talk to it at all" from failures
    /// later on, for hints in messages).
    contacted: AtomicBool,
}

struct Active {
    idx: usize,
    kv: Option<KvClient>,
}

/// Whether an error says the cluster is electing a leader.
fn leader_changed(e: &etcd_client::Error) -> bool {
    matches!(e, etcd_client::Error::GRpcStatus(s)
        if s.message().contains("leader changed") || s.message().contains("no leader"))
}

/// Whether an error means "try another member".
fn retryable(e: &etcd_client::Error) -> bool {
    match e {
        etcd_client::Error::TransportError(_) => true,
        etcd_client::Error::GRpcStatus(s) => {
            leader_changed(e)
                || matches!(
                    s.code(),
                    tonic::Code::Unavailable
                        | tonic::Code::DeadlineExceeded
                        | tonic::Code::Cancelled
                )
        }
        _ => false,
    }
}

impl Endpoints {
    /// Prepare to talk to `urls`; connects (and authenticates) to the first member now so
    /// that bad credentials fail at once.
    pub(crate) async fn connect(
        urls: Vec<String>,
        opts: ConnectOptions,
        timeout: Duration,
    ) -> Result<Endpoints, Error> {
        let eps = Endpoints {
            urls,
            opts,
            timeout,
            active: Mutex::new(Active { idx: 0, kv: None }),
            contacted: AtomicBool::new(false),
        };
        // Authentication (when configured) happens here; an unreachable first member is
        // not fatal yet: requests fail over.
        match eps.client(Instant::now() + timeout).await {
            Ok(_) => Ok(eps),
            Err((idx, e)) if retryable(&e) => {
                eps.advance(idx).await;
                Ok(eps)
            }
            Err((_, e)) => Err(eps.describe(&e)),
        }
    }

    /// All URLs, comma-separated, for messages.
    pub(crate) fn joined(&self) -> String {
        self.urls.join(",")
    }

    /// The client of the member in use, connecting to it if needed (by `deadline`).
    async fn client(
        &self,
        deadline: Instant,
    ) -> Result<(usize, KvClient), (usize, etcd_client::Error)> {
        let mut active = self.active.lock().await;
        let idx = active.idx;
        if let Some(kv) = &active.kv {
            return Ok((idx, kv.clone()));
        }
        let url = [self.urls[idx].as_str()];
        let connect = Client::connect(url, Some(self.opts.clone()));
        let client = match tokio::time::timeout_at(deadline, connect).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err((idx, e)),
            Err(_) => {
                return Err((
                    idx,
                    etcd_client::Error::GRpcStatus(tonic::Status::deadline_exceeded(
                        "Timeout expired",
                    )),
                ))
            }
        };
        let kv = client
            .kv_client()
            .max_decoding_message_size(256 << 20)
            .max_encoding_message_size(8 << 20);
        active.kv = Some(kv.clone());
        Ok((idx, kv))
    }

    /// Move on from member `idx` (unless another request already did).
    async fn advance(&self, idx: usize) {
        let mut active = self.active.lock().await;
        if active.idx == idx {
            active.idx = (idx + 1) % self.urls.len();
            active.kv = None;
        }
    }

    fn describe(&self, e: &etcd_client::Error) -> Error {
        Error::etcd(&self.joined(), e, !self.contacted.load(Ordering::Relaxed))
    }

    /// Run one request on the member in use, failing over to the next member on connection
    /// errors and leader changes. The whole request, failovers included, ends within the
    /// timeout: a member that does not answer in time is reported, not waited out twice.
    pub(crate) async fn run<T, F, Fut>(&self, f: F) -> Result<T, Error>
    where
        F: Fn(KvClient) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        let deadline = Instant::now() + self.timeout;
        let attempts = self.urls.len().max(2);
        let mut last: Option<Error> = None;
        let mut election = false;
        for _ in 0..attempts {
            if election {
                // Give an election a moment; a dead member is skipped at once.
                let pause = Instant::now() + Duration::from_millis(50);
                if pause >= deadline {
                    break;
                }
                tokio::time::sleep_until(pause).await;
            }
            let (idx, kv) = match self.client(deadline).await {
                Ok(c) => c,
                Err((idx, e)) if retryable(&e) => {
                    last = Some(self.describe(&e));
                    self.advance(idx).await;
                    continue;
                }
                Err((_, e)) => return Err(self.describe(&e)),
            };
            match tokio::time::timeout_at(deadline, f(kv)).await {
                Ok(Ok(v)) => {
                    self.contacted.store(true, Ordering::Relaxed);
                    return Ok(v);
                }
                Ok(Err(e)) if retryable(&e) => {
                    election = leader_changed(&e);
                    last = Some(self.describe(&e));
                }
                Ok(Err(e)) => return Err(self.describe(&e)),
                Err(_) => {
                    // Out of time: report it; the next request starts on the next member.
                    self.advance(idx).await;
                    return Err(Error::Timeout {
                        endpoints: self.joined(),
                        timeout: self.timeout,
                    });
                }
            }
            self.advance(idx).await;
        }
        Err(last.unwrap_or_else(|| Error::Timeout {
            endpoints: self.joined(),
            timeout: self.timeout,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: tonic::Code, msg: &str) -> etcd_client::Error {
        etcd_client::Error::GRpcStatus(tonic::Status::new(code, msg))
    }

    #[test]
    fn fails_over_on_outages_and_elections_only() {
        let election = status(tonic::Code::Unknown, "etcdserver: leader changed");
        assert!(retryable(&election) && leader_changed(&election));
        let down = status(tonic::Code::Unavailable, "tcp connect error");
        assert!(retryable(&down) && !leader_changed(&down));
        for final_error in [
            status(
                tonic::Code::PermissionDenied,
                "etcdserver: permission denied",
            ),
            status(
                tonic::Code::InvalidArgument,
                "etcdserver: authentication failed",
            ),
            status(
                tonic::Code::InvalidArgument,
                "etcdserver: too many operations in txn request",
            ),
        ] {
            assert!(!retryable(&final_error), "{final_error}");
        }
    }
}
