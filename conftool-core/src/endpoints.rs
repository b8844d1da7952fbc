//! The etcd members a store talks to, with failover that survives members that stop
//! answering.
//!
//! etcd-client's balanced channel keeps sending some requests to a member that is down, so
//! listing several endpoints gave no failover. Here requests go to one member at a time; when
//! it fails, the request is retried on another member. Writes are compare-and-swap guarded,
//! so retrying one whose answer was lost is safe: it fails its guard instead of applying twice.
//!
//! A refused connection is the easy failure. The hard one is a member that accepts TCP
//! connections and then says nothing: a SIGSTOPped process, a stalled disk, a black-holed
//! host. `Client::connect` returns before the server has said anything (the channel connects
//! lazily), so it proves nothing. What bounds the cost of such a member (see [`Budget`]):
//!
//! - **Proof of life.** With several members, a member is used only after it has answered a
//!   cheap linearizable read (and the authentication, when a user is configured); with one,
//!   there is nothing to choose, and its first request is that proof. Members are tried in a staggered
//!   race: the first one alone; if it has not answered after a short head start, the next one
//!   too, and so on; the first to answer is used and the others are dropped. A member that
//!   fails fast (refused) starts the next at once. Normally only one member is contacted.
//! - **HTTP/2 keep-alive pings** while requests are in flight: a member that stops answering
//!   them (a stopped process) fails every request on its connection with a transport error
//!   after the ping interval and timeout, and they fail over.
//! - **A per-attempt deadline** of half the timeout (when there is another member to try):
//!   a member that answers pings but not requests (a stalled disk) is left for the next.
//!
//! Every request, failovers included, ends within the timeout. When no member could serve
//! it, the error lists each member that was tried and what happened to it, and no other.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use etcd_client::{Client, ConnectOptions, GetOptions, KvClient};
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::error::{describe, human, Error, EtcdFailure, MemberFailure};

/// The key read to prove a member alive (any answer from the server will do, even a
/// permission error: it came from a live member that has a quorum behind it).
const PROBE_KEY: &str = "health";
/// How long to wait before asking again during a leader election.
const ELECTION_PAUSE: Duration = Duration::from_millis(50);

/// Time limits derived from the configured timeout and the number of members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Budget {
    /// One request, failovers included.
    pub(crate) timeout: Duration,
    /// The head start each member gets over the next one when connecting.
    pub(crate) stagger: Duration,
    /// The most one member may take on one request while there is another one to try.
    pub(crate) attempt: Duration,
    /// Silence on a connection with requests in flight after which a ping is sent.
    pub(crate) keep_alive_interval: Duration,
    /// How long a ping may go unanswered before the connection is given up.
    pub(crate) keep_alive_timeout: Duration,
}

impl Budget {
    /// The limits for `members` members and a `timeout` per request.
    ///
    /// - stagger: at most 300 ms (a healthy member answers in a few milliseconds, even over a
    ///   WAN with a TLS handshake), and small enough that every member has started within
    ///   the first half of the timeout.
    /// - attempt: half the timeout with two members or more, so that a member that never
    ///   answers leaves the other half to the next; a big legitimate read (100,000 keys,
    ///   ~0.3 s) has ample room within 2.5 s, the default. With one member, all of it.
    /// - keep-alive: a ping after a quarter of the timeout of silence. etcd answers a client
    ///   that pings more often than every 5 s (`--grpc-keepalive-min-time`) with GOAWAY once
    ///   four pings in a row got no data in between, so an interval of a quarter of the
    ///   timeout can only cut off a request that has already been silent for the whole
    ///   timeout. Pings are sent only while requests are in flight: an idle connection (a
    ///   prompt waiting for a person) is never pinged, so never cut off. A live member
    ///   answers a ping at once, even while it streams a big answer; the ping timeout allows
    ///   for a loaded machine.
    pub(crate) fn new(timeout: Duration, members: usize) -> Budget {
        let members = u32::try_from(members.max(1)).unwrap_or(u32::MAX);
        Budget {
            timeout,
            stagger: (timeout / members.saturating_mul(2)).min(Duration::from_millis(300)),
            attempt: if members > 1 { timeout / 2 } else { timeout },
            keep_alive_interval: (timeout / 4)
                .clamp(Duration::from_millis(100), Duration::from_secs(5)),
            keep_alive_timeout: (timeout / 8)
                .clamp(Duration::from_millis(250), Duration::from_secs(1)),
        }
    }
}

/// One cluster's client URLs and the member in use.
pub(crate) struct Endpoints {
    urls: Vec<String>,
    opts: ConnectOptions,
    budget: Budget,
    active: Mutex<Active>,
    /// Whether any member has answered (to tell "cannot talk to it at all" from failures
    /// later on, for hints in messages).
    contacted: AtomicBool,
}

struct Active {
    /// The member in use, or the first to try when there is none.
    idx: usize,
    kv: Option<KvClient>,
    /// The whole client of that member (for leases).
    client: Option<Client>,
    /// Counts the connections made, so that a request that failed on an old one does not
    /// drop a new one to the same member.
    epoch: u64,
}

/// The member a request runs on.
struct InUse {
    idx: usize,
    epoch: u64,
    kv: KvClient,
    client: Client,
}

/// Whether an error says the cluster is electing a leader.
fn leader_changed(e: &etcd_client::Error) -> bool {
    EtcdFailure::of(e) == EtcdFailure::NoLeader
}

/// Whether an error means "try another member" (see [`EtcdFailure::is_transient`]).
pub(crate) fn retryable(e: &etcd_client::Error) -> bool {
    EtcdFailure::of(e).is_transient()
}

/// Whether an error is a connection given up because its keep-alive pings went unanswered.
fn pings_unanswered(e: &etcd_client::Error) -> bool {
    // hyper's error says "http2 error"; its source, "keep-alive timed out".
    let mut src: Option<&dyn std::error::Error> = match e {
        etcd_client::Error::GRpcStatus(s) => Some(s),
        etcd_client::Error::TransportError(t) => Some(t),
        _ => None,
    };
    while let Some(s) = src {
        if s.to_string().contains("keep-alive timed out") {
            return true;
        }
        src = s.source();
    }
    false
}

/// What to say about a member that said nothing for `waited`.
pub(crate) fn silent(waited: Duration, why: &str) -> String {
    format!("no answer within {} ({why})", human(waited))
}

/// The members that failed one request, in the order they first failed, each with the last
/// thing that happened to it.
#[derive(Debug, Default, Clone)]
pub(crate) struct Tried(Vec<MemberFailure>);

impl Tried {
    pub(crate) fn record(&mut self, endpoint: &str, what: String) {
        match self.0.iter_mut().find(|m| m.endpoint == endpoint) {
            Some(m) => m.what = what,
            None => self.0.push(MemberFailure {
                endpoint: endpoint.to_string(),
                what,
            }),
        }
    }

    pub(crate) fn into_error(self) -> Error {
        Error::Unavailable { members: self.0 }
    }
}

/// Connect to one member and wait for it to answer a read: its client once it has.
async fn prove(
    idx: usize,
    url: String,
    opts: ConnectOptions,
) -> (usize, Result<Client, etcd_client::Error>) {
    let proof = async {
        // Authenticates when a user is configured (itself a proof of life).
        let client = Client::connect([url.as_str()], Some(opts)).await?;
        probe(&mut client.kv_client()).await?;
        Ok(client)
    };
    (idx, proof.await)
}

/// Ask a member for a cheap linearizable read, waiting out leader elections: `Ok` once it
/// answered (even with a refusal, a definite answer that the request itself will meet and
/// report), the error when it failed in a way that says "try another member". Unbounded in
/// time: callers put a deadline on it.
pub(crate) async fn probe(kv: &mut KvClient) -> Result<(), etcd_client::Error> {
    let count_only = GetOptions::new().with_count_only();
    loop {
        match kv.get(PROBE_KEY, Some(count_only.clone())).await {
            Ok(_) => return Ok(()),
            Err(e) if leader_changed(&e) => tokio::time::sleep(ELECTION_PAUSE).await,
            Err(e) if retryable(&e) => return Err(e),
            Err(_) => return Ok(()),
        }
    }
}

impl Endpoints {
    /// Prepare to talk to `urls` and find a member that answers (authenticating, when a user
    /// is configured), within `timeout`.
    pub(crate) async fn connect(
        urls: Vec<String>,
        opts: ConnectOptions,
        timeout: Duration,
    ) -> Result<Endpoints, Error> {
        let budget = Budget::new(timeout, urls.len());
        let opts = opts
            .with_keep_alive(budget.keep_alive_interval, budget.keep_alive_timeout)
            .with_keep_alive_while_idle(false);
        let eps = Endpoints {
            urls,
            opts,
            budget,
            active: Mutex::new(Active {
                idx: 0,
                kv: None,
                client: None,
                epoch: 0,
            }),
            contacted: AtomicBool::new(false),
        };
        let mut tried = Tried::default();
        eps.client(Instant::now() + timeout, &mut tried).await?;
        Ok(eps)
    }

    /// The client of the member in use, finding one that answers if there is none (by
    /// `deadline`); members that fail on the way are recorded in `tried`.
    async fn client(&self, deadline: Instant, tried: &mut Tried) -> Result<InUse, Error> {
        let Ok(mut active) = tokio::time::timeout_at(deadline, self.active.lock()).await else {
            return Err(std::mem::take(tried).into_error());
        };
        if let (Some(kv), Some(client)) = (&active.kv, &active.client) {
            return Ok(InUse {
                idx: active.idx,
                epoch: active.epoch,
                kv: kv.clone(),
                client: client.clone(),
            });
        }
        let (idx, client) = if self.urls.len() == 1 {
            (0, self.connect_only(deadline, tried).await?)
        } else {
            self.race(active.idx, deadline, tried, &self.opts).await?
        };
        let kv = client
            .kv_client()
            .max_decoding_message_size(256 << 20)
            .max_encoding_message_size(8 << 20);
        active.idx = idx;
        active.kv = Some(kv.clone());
        active.client = Some(client.clone());
        active.epoch += 1;
        Ok(InUse {
            idx,
            epoch: active.epoch,
            kv,
            client,
        })
    }

    /// A client of the only member, without the probe: with nothing to choose between, its
    /// first request is the proof of life, failing as the probe would have (and retried by
    /// [`Endpoints::run`] within the same timeout), a round trip earlier per process.
    /// Authentication, when a user is configured, still happens here.
    async fn connect_only(&self, deadline: Instant, tried: &mut Tried) -> Result<Client, Error> {
        let url = &self.urls[0];
        let start = Instant::now();
        match tokio::time::timeout_at(
            deadline,
            Client::connect([url.as_str()], Some(self.opts.clone())),
        )
        .await
        {
            Ok(Ok(client)) => Ok(client),
            Ok(Err(e)) if retryable(&e) => {
                tried.record(url, self.failure(0, &e, start.elapsed()));
                Err(std::mem::take(tried).into_error())
            }
            Ok(Err(e)) => Err(self.answer(0, &e)),
            Err(_) => {
                tried.record(url, silent(start.elapsed(), "stalled, or no quorum"));
                Err(std::mem::take(tried).into_error())
            }
        }
    }

    /// The staggered race (see the module header), starting with member `first`: the first
    /// member to answer, with a client connected to it alone, made with `opts`. Fails when
    /// every member failed or `deadline` passed (with what happened to each member started),
    /// or when a member gave a definite answer that another would give too (authentication
    /// failed).
    pub(crate) async fn race(
        &self,
        first: usize,
        deadline: Instant,
        tried: &mut Tried,
        opts: &ConnectOptions,
    ) -> Result<(usize, Client), Error> {
        let n = self.urls.len();
        let mut queue = (0..n).map(|k| (first + k) % n);
        let mut pending = FuturesUnordered::new();
        // The members started and not finished, with when they were started.
        let mut started: Vec<(usize, Instant)> = Vec::new();
        let mut next_at = Instant::now();
        loop {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            if now >= next_at || pending.is_empty() {
                match queue.next() {
                    Some(i) => {
                        started.push((i, now));
                        pending.push(prove(i, self.urls[i].clone(), opts.clone()));
                        next_at = now + self.budget.stagger;
                        continue;
                    }
                    None if pending.is_empty() => return Err(std::mem::take(tried).into_error()),
                    None => next_at = deadline,
                }
            }
            tokio::select! {
                Some((i, res)) = pending.next() => {
                    let since = started.iter().find(|s| s.0 == i).map_or(now, |s| s.1);
                    started.retain(|s| s.0 != i);
                    match res {
                        Ok(client) => {
                            self.contacted.store(true, Ordering::Relaxed);
                            return Ok((i, client));
                        }
                        Err(e) if retryable(&e) => {
                            tried.record(&self.urls[i], self.failure(i, &e, since.elapsed()));
                            // Failed fast: no need to give it a head start.
                            next_at = Instant::now();
                        }
                        Err(e) => return Err(self.answer(i, &e)),
                    }
                }
                () = tokio::time::sleep_until(next_at.min(deadline)) => {}
            }
        }
        for (i, since) in started {
            let what = silent(
                deadline.saturating_duration_since(since),
                "stalled, or no quorum",
            );
            tried.record(&self.urls[i], what);
        }
        Err(std::mem::take(tried).into_error())
    }

    /// The members' client URLs.
    pub(crate) fn urls(&self) -> &[String] {
        &self.urls
    }

    /// The time limits in use.
    pub(crate) fn budget(&self) -> Budget {
        self.budget
    }

    /// The connection options of request connections (credentials, TLS, timeouts and the
    /// keep-alive of [`Budget`]), for connections of another kind to start from.
    pub(crate) fn options(&self) -> &ConnectOptions {
        &self.opts
    }

    /// The member requests go to now (or will try first, when none is in use).
    pub(crate) async fn active_member(&self) -> usize {
        self.active.lock().await.idx
    }

    /// Move on from the member `failed` ran on (unless another request already did).
    async fn advance(&self, failed: &InUse) {
        let mut active = self.active.lock().await;
        if active.epoch == failed.epoch {
            active.idx = (failed.idx + 1) % self.urls.len();
            active.kv = None;
            active.client = None;
        }
    }

    /// A definite answer from member `idx`.
    pub(crate) fn answer(&self, idx: usize, e: &etcd_client::Error) -> Error {
        Error::etcd(&self.urls[idx], e, !self.contacted.load(Ordering::Relaxed))
    }

    /// What happened to member `idx`, which failed with `e` after `waited`.
    pub(crate) fn failure(&self, idx: usize, e: &etcd_client::Error, waited: Duration) -> String {
        if pings_unanswered(e) {
            return silent(waited, "keep-alive pings unanswered: stopped, or cut off");
        }
        describe(&self.urls[idx], e, !self.contacted.load(Ordering::Relaxed))
    }

    /// Run one request on the member in use, failing over to another member when it fails,
    /// stops answering or reports a leader change. The whole request, failovers included,
    /// ends within the timeout.
    pub(crate) async fn run<T, F, Fut>(&self, f: F) -> Result<T, Error>
    where
        F: Fn(KvClient) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        self.run_on(|used| f(used.kv.clone())).await
    }

    /// [`Endpoints::run`] with the member's whole client (leases, locks).
    pub(crate) async fn run_client<T, F, Fut>(&self, f: F) -> Result<T, Error>
    where
        F: Fn(Client) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        self.run_on(|used| f(used.client.clone())).await
    }

    async fn run_on<T, F, Fut>(&self, f: F) -> Result<T, Error>
    where
        F: Fn(&InUse) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        let deadline = Instant::now() + self.budget.timeout;
        let mut tried = Tried::default();
        // Each member twice at most (once more after an election, say).
        for _ in 0..2 * self.urls.len() {
            let used = self.client(deadline, &mut tried).await?;
            let idx = used.idx;
            let start = Instant::now();
            let until = (start + self.budget.attempt).min(deadline);
            match tokio::time::timeout_at(until, f(&used)).await {
                Ok(Ok(v)) => {
                    self.contacted.store(true, Ordering::Relaxed);
                    return Ok(v);
                }
                Ok(Err(e)) if retryable(&e) => {
                    tried.record(&self.urls[idx], self.failure(idx, &e, start.elapsed()));
                    self.advance(&used).await;
                    if leader_changed(&e) {
                        // Give an election a moment.
                        tokio::time::sleep_until((Instant::now() + ELECTION_PAUSE).min(deadline))
                            .await;
                    }
                }
                Ok(Err(e)) => return Err(self.answer(idx, &e)),
                Err(_) => {
                    let what = silent(start.elapsed(), "stalled, or no quorum");
                    tried.record(&self.urls[idx], what);
                    self.advance(&used).await;
                }
            }
            if Instant::now() >= deadline {
                break;
            }
        }
        Err(tried.into_error())
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
        let cut = etcd_client::Error::GRpcStatus(tonic::Status::from_error(Box::new(
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "stream closed"),
        )));
        assert!(retryable(&cut), "a status made from a local error: {cut}");
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

    #[test]
    fn budget_for_the_default_timeout() {
        let b = Budget::new(Duration::from_secs(5), 3);
        assert_eq!(b.timeout, Duration::from_secs(5));
        assert_eq!(b.stagger, Duration::from_millis(300));
        assert_eq!(b.attempt, Duration::from_millis(2500));
        assert_eq!(b.keep_alive_interval, Duration::from_millis(1250));
        assert_eq!(b.keep_alive_timeout, Duration::from_millis(625));
    }

    #[test]
    fn budget_clamps() {
        // Long timeouts: pings no more often than etcd allows, stall detection within 6 s.
        let b = Budget::new(Duration::from_secs(60), 2);
        assert_eq!(b.stagger, Duration::from_millis(300));
        assert_eq!(b.attempt, Duration::from_secs(30));
        assert_eq!(b.keep_alive_interval, Duration::from_secs(5));
        assert_eq!(b.keep_alive_timeout, Duration::from_secs(1));
        // Short ones: every member starts within the first half; sane floors.
        let b = Budget::new(Duration::from_millis(600), 3);
        assert_eq!(b.stagger, Duration::from_millis(100));
        assert_eq!(b.attempt, Duration::from_millis(300));
        assert_eq!(b.keep_alive_interval, Duration::from_millis(150));
        assert_eq!(b.keep_alive_timeout, Duration::from_millis(250));
        let b = Budget::new(Duration::from_millis(200), 1);
        assert_eq!(
            b.attempt,
            Duration::from_millis(200),
            "one member: all of it"
        );
        assert_eq!(b.keep_alive_interval, Duration::from_millis(100));
        // No members at all is a configuration error elsewhere; no division by zero here.
        assert_eq!(
            Budget::new(Duration::from_secs(1), 0).stagger,
            Duration::from_millis(300)
        );
    }

    #[test]
    fn every_member_starts_within_the_first_half_of_the_timeout() {
        for ms in [100, 500, 1000, 2000, 5000, 20_000] {
            for n in 1..=7u32 {
                let t = Duration::from_millis(ms);
                let b = Budget::new(t, n as usize);
                assert!(b.stagger * n <= t / 2, "{t:?} {n}: {b:?}");
                // Pings cannot cut off a request before it has been silent for the timeout.
                assert!(
                    b.keep_alive_interval * 4 >= t
                        || b.keep_alive_interval >= Duration::from_secs(5)
                );
            }
        }
    }

    #[test]
    fn tried_members_keep_their_order_and_last_outcome() {
        let mut t = Tried::default();
        t.record("http://a", "unreachable: refused".into());
        t.record(
            "http://b",
            "no answer within 2.5s (stalled, or no quorum)".into(),
        );
        t.record("http://a", "no stable leader".into());
        assert_eq!(
            t.into_error().to_string(),
            "etcd unavailable: http://a: no stable leader; \
             http://b: no answer within 2.5s (stalled, or no quorum)"
        );
        assert_eq!(
            Tried::default().into_error().to_string(),
            "etcd unavailable: no member could be tried in time"
        );
    }

    #[test]
    fn unanswered_pings_are_told_from_other_failures() {
        #[derive(Debug)]
        struct Pings;
        impl std::fmt::Display for Pings {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("keep-alive timed out")
            }
        }
        impl std::error::Error for Pings {}
        let mut cut = tonic::Status::unavailable("http2 error");
        cut.set_source(std::sync::Arc::new(Pings));
        let cut = etcd_client::Error::GRpcStatus(cut);
        assert!(pings_unanswered(&cut) && retryable(&cut));
        let down = status(tonic::Code::Unavailable, "tcp connect error");
        assert!(!pings_unanswered(&down));
    }

    #[test]
    fn silence_is_reported_with_its_length() {
        assert_eq!(
            silent(Duration::from_millis(1234), "stalled, or no quorum"),
            "no answer within 1.2s (stalled, or no quorum)"
        );
    }
}
