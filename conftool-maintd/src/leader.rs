//! One active instance: the leader holds the lease-backed lock `maintd` (conftool's leased
//! locks, concurrency 1: `confctl lock list` shows who leads), refreshed while it runs.
//! Others wait in line; when the leader dies its lease runs out (within the lease's time to
//! live) and the next in line holds the lock. The leader checks before every round and
//! every action that its entry still holds the lock: one whose lease ran out (a stalled
//! process, a partition) stops acting at once.

use std::time::Duration;

use conftool_core::{Actor, Error as StoreError, Lock, LockHolder, LockName, LockRequest, Store};

use crate::error::Error;

/// The lock's name.
pub const LOCK_NAME: &str = "maintd";

/// The lock.
pub fn lock_name() -> Result<LockName, Error> {
    LOCK_NAME
        .parse::<LockName>()
        .map_err(|e| Error::Store(e.into()))
}

/// The leadership, held.
#[derive(Debug)]
pub struct Leadership {
    lock: Lock,
}

/// Who leads now, for a standby's status and a one-shot run's message.
pub fn describe(holders: &[LockHolder]) -> String {
    match holders.first() {
        Some(h) => format!(
            "{}@{} pid {} leads since {}",
            h.user, h.host, h.pid, h.since
        ),
        None => "another instance is taking the lead".into(),
    }
}

/// Try to lead, waiting up to `wait` in line; `Err(holders)` if another instance still
/// leads then.
pub async fn try_lead(
    store: &Store,
    actor: &Actor,
    ttl: Duration,
    wait: Duration,
) -> Result<Result<Leadership, Vec<LockHolder>>, Error> {
    let mut req = LockRequest::new(lock_name()?, ttl, "conftool-maintd");
    req.reason = Some("the maintenance daemon's leader".into());
    match store.lock(actor, &req, wait).await {
        Ok(mut lock) => {
            lock.keep_alive();
            Ok(Ok(Leadership { lock }))
        }
        Err(StoreError::LockBusy { holders, .. }) => Ok(Err(holders)),
        Err(e) => Err(e.into()),
    }
}

impl Leadership {
    /// This leader's lock entry.
    pub fn holder(&self) -> &LockHolder {
        self.lock.holder()
    }

    /// Whether this instance still holds the lock ([`Error::LostLeadership`] if not).
    pub async fn check(&self, store: &Store) -> Result<(), Error> {
        let state = store.lock_state(&lock_name()?).await?;
        let mine = &self.lock.holder().id;
        if state
            .entries
            .iter()
            .take(state.holding)
            .any(|(h, _)| &h.id == mine)
        {
            Ok(())
        } else {
            Err(Error::LostLeadership)
        }
    }

    /// Step down: the next in line takes over at once.
    pub async fn release(self) -> Result<(), Error> {
        self.lock.release().await.map_err(Error::from)
    }
}
