//! The steps of a safe action on a host, shared by `confctl run`, `confctl rolling` and the
//! fleet tools built on this library (the reboot coordinator, the maintenance daemon):
//! an operation opened (or resumed) first, the host's serving objects depooled into it,
//! and, once the disruptive thing is done, exactly those put back. Locks, the stop switch and
//! verification against the load balancers are the caller's to combine
//! ([`crate::locks`], [`Store::stopped`], [`crate::verify`]).

use crate::error::Error;
use crate::names::{NodeName, Service};
use crate::operation::OperationId;
use crate::rules::HostVerb;
use crate::select::ApplyError;
use crate::selection::{Applied, Selected};
use crate::writer::Writer;

/// A host depooled into an operation.
#[derive(Debug, Clone)]
pub struct HostDepool {
    /// The operation that records it (and puts it back when ended).
    pub operation: OperationId,
    /// Whether the operation was an open one, resumed (a re-run after a crash).
    pub resumed: bool,
    /// What this call depooled (objects already depooled by a crashed run are in the
    /// operation's record, not here).
    pub applied: Vec<Applied>,
    /// The host's objects (of the services asked for) as read, for verifying them.
    pub objects: Vec<Selected>,
}

impl Writer<'_> {
    /// Open (or resume: the open operation of `kind` about this host) an operation, and
    /// depool the host's objects into it: of `services` only when given, `inactive` ones
    /// left alone, judged by the depool threshold (atomically with the write). Refused, a
    /// new operation (with nothing in it) is closed again and the refusal returned; a
    /// resumed one stays open (it holds what a crashed run depooled).
    pub async fn depool_into_operation(
        &mut self,
        kind: &str,
        host: &NodeName,
        services: &[Service],
    ) -> Result<HostDepool, ApplyError> {
        let fail = |error| ApplyError {
            applied: Vec::new(),
            error,
        };
        let mut subject = vec![host.to_string()];
        subject.extend(services.iter().map(|s| format!("service={s}")));
        let (operation, resumed) = self.resume_or_open(kind, subject).await.map_err(fail)?;
        let mut applied = Vec::new();
        let mut objects = Vec::new();
        let scopes: Vec<Option<&Service>> = if services.is_empty() {
            vec![None]
        } else {
            services.iter().map(Some).collect()
        };
        for service in scopes {
            match self
                .host(HostVerb::Depool, std::slice::from_ref(host), service)
                .await
            {
                Ok(done) => {
                    applied.extend(done.applied);
                    objects.extend(done.selection.objects);
                }
                Err(e) => {
                    let mut e = e;
                    e.applied.splice(0..0, applied);
                    if !resumed && e.applied.is_empty() {
                        let _ = self.end_operation(&operation, false).await;
                    }
                    return Err(e);
                }
            }
        }
        Ok(HostDepool {
            operation,
            resumed,
            applied,
            objects,
        })
    }
}

/// Whether an error is the depool threshold refusing (so a caller may wait for capacity
/// and try again, as a rolling run does).
pub fn is_threshold_refusal(e: &Error) -> bool {
    matches!(
        e,
        Error::Model(conftool_model::Error::Refused(
            conftool_model::rules::Refusal::BelowThreshold(_)
        ))
    )
}
