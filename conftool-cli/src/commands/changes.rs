//! What confctl and conftool share once they know what to change: confirmation, applying
//! with compare-and-swap, the audit trail, and the Python tool's change lines.

use std::io::BufRead;

use anyhow::Context;
use conftool_core::{
    Actor, Applied, Atomicity, AuditLog, Change, Config, Edit, Selected, Selector, Store,
};

use crate::exit::OK;
use crate::output::Printer;

/// `eqiad/appservers/apache/mw1018: pooled changed yes => no`, one line per changed field
/// (the Python confctl's format); `...: deleted` for a deletion.
pub fn change_lines(c: &Change) -> Vec<String> {
    let Some(after) = &c.after else {
        return vec![format!("{}: deleted", c.key)];
    };
    let mut lines = Vec::new();
    if after.pooled != c.before.pooled {
        lines.push(format!(
            "{}: pooled changed {} => {}",
            c.key, c.before.pooled, after.pooled
        ));
    }
    if after.weight != c.before.weight {
        lines.push(format!(
            "{}: weight changed {} => {}",
            c.key, c.before.weight, after.weight
        ));
    }
    lines
}

/// Ask `Ok to continue? [y/N]` on stderr and read the answer from stdin, terminal or not
/// (so `echo y | confctl ...` works); end of input means no.
pub fn confirm(question: &str) -> bool {
    eprint!("{question} [y/N] ");
    let mut answer = String::new();
    match std::io::stdin().lock().read_line(&mut answer) {
        Ok(0) | Err(_) => {
            eprintln!();
            false
        }
        Ok(_) => matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes"),
    }
}

/// What a write did: the changes that landed, and the error that stopped it, if any.
/// Changes that landed before a failure are real: they are audited and shown like the rest.
pub struct Landed {
    /// Changes written, each with its etcd revision.
    pub applied: Vec<Applied>,
    /// Why the write stopped before doing everything, if it did.
    pub error: Option<anyhow::Error>,
}

impl Landed {
    /// Print the landed changes as the Python tool's lines, or as JSON objects in `extra`'s
    /// document (`changed`, plus `error` on failure), then return the outcome.
    pub fn report(self, out: &Printer, json: Option<serde_json::Value>) -> anyhow::Result<u8> {
        match json {
            Some(mut doc) => {
                if let Some(obj) = doc.as_object_mut() {
                    obj.insert("changed".into(), changed_json(&self.applied));
                    if let Some(e) = &self.error {
                        obj.insert("error".into(), format!("{e:#}").into());
                    }
                }
                out.line(doc.to_string());
            }
            None => {
                for a in &self.applied {
                    for l in change_lines(&a.change) {
                        out.line(l);
                    }
                }
            }
        }
        match self.error {
            Some(e) => Err(e),
            None => Ok(OK),
        }
    }
}

/// Applied changes as JSON: `[{"key", "before", "after", "revision"}]`.
pub fn changed_json(applied: &[Applied]) -> serde_json::Value {
    applied
        .iter()
        .map(|a| {
            serde_json::json!({
                "key": a.change.key.to_string(),
                "before": a.change.before,
                "after": a.change.after,
                "revision": a.revision,
            })
        })
        .collect()
}

/// Apply changes with compare-and-swap (re-applying `edit` to fresh data after a lost
/// race), then record every change that landed in the audit trail, even when the write
/// stopped part-way.
pub async fn apply_audited(
    tool: &str,
    cfg: &Config,
    store: &Store,
    sel: &Selector,
    changes: Vec<Change>,
    edit: impl Fn(&Selected) -> Option<Edit>,
    atomicity: Atomicity,
) -> Landed {
    let actor = Actor::from_env(tool, cfg.username.clone());
    let (applied, error) = match store.apply(sel, changes, edit, atomicity).await {
        Ok(applied) => (applied, None),
        Err(failure) => {
            let n = failure.applied.len();
            let err = anyhow::Error::new(failure.error);
            let err = if n > 0 {
                err.context(format!(
                    "stopped after writing {n} of the changes (shown above)"
                ))
            } else {
                err
            };
            (failure.applied, Some(err))
        }
    };
    let logged = AuditLog::from_config(cfg.audit_log.as_deref())
        .record(store.keyspace(), &actor, &applied)
        .context("the changes were written, but recording them in the audit log failed");
    let error = match (error, logged) {
        (Some(e), Err(log)) => Some(e.context(format!("{log:#}"))),
        (Some(e), Ok(())) => Some(e),
        (None, Err(log)) => Some(log),
        (None, Ok(())) => None,
    };
    Landed { applied, error }
}
