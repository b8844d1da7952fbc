//! What confctl and conftool share once they know what to change: confirmation, applying
//! with compare-and-swap, the audit trail, and the Python tool's change lines.

use std::collections::BTreeSet;
use std::io::BufRead;

use anyhow::Context;
use conftool_core::{
    Actor, Applied, Atomicity, AuditLog, AuditSink, Change, Config, Edit, PoolKey, Selected,
    Selector, Store,
};

use crate::exit::{BadInput, OK};
use crate::output::{stderr_line, stderr_text, Printer};

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
    stderr_text(&format!("{question} [y/N] "));
    let mut answer = String::new();
    match std::io::stdin().lock().read_line(&mut answer) {
        Ok(0) | Err(_) => {
            stderr_line("");
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

/// Open the audit log for a write by `tool` (before anything is written: a log that cannot
/// be written refuses the change).
pub fn open_audit(tool: &str, cfg: &Config) -> anyhow::Result<AuditSink> {
    let actor = Actor::from_env(tool, cfg.username.clone());
    AuditLog::from_config(cfg.audit_log.as_deref())
        .open(&actor)
        .context("nothing written")
}

/// Apply changes with compare-and-swap (re-applying `edit` to fresh data after a lost
/// race), recording intents before each commit and every change that landed after it, even
/// when the write stopped part-way.
pub async fn apply_audited(
    tool: &str,
    cfg: &Config,
    store: &Store,
    sel: &Selector,
    changes: Vec<Change>,
    edit: impl Fn(&Selected) -> Option<Edit>,
    atomicity: Atomicity,
) -> Landed {
    let mut audit = match open_audit(tool, cfg) {
        Ok(a) => a,
        Err(error) => {
            return Landed {
                applied: Vec::new(),
                error: Some(error),
            }
        }
    };
    match store.apply(sel, changes, edit, atomicity, &mut audit).await {
        Ok(applied) => Landed {
            applied,
            error: None,
        },
        Err(failure) => {
            let n = failure.applied.len();
            let audit_failed = matches!(failure.error, conftool_core::Error::Audit { .. });
            let err = anyhow::Error::new(failure.error);
            let err = match (n, audit_failed) {
                (0, _) => err.context("nothing written"),
                (_, true) => err.context(format!(
                    "{n} changes were written (shown above), but recording them in the audit log failed"
                )),
                (_, false) => err.context(format!(
                    "stopped after writing {n} of the changes (shown above)"
                )),
            };
            Landed {
                applied: failure.applied,
                error: Some(err),
            }
        }
    }
}

/// Which of the write rules ([`conftool_core::rules`]) the user chose to lift.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Overrides {
    /// Let a pattern turn `inactive` objects `yes`.
    pub include_inactive: bool,
    /// Let a change leave pools below their depool threshold.
    pub allow_below_threshold: bool,
}

/// Refuse (bad input, nothing written) changes that break a rule the user did not lift:
/// turning `inactive` objects `yes` by a pattern, or leaving a pool below its depool
/// threshold (which reads the affected pools: one round trip, only when a change lowers a
/// pool's pooled count).
pub async fn check_rules(
    store: &Store,
    sel: &Selector,
    changes: &[Change],
    overrides: Overrides,
) -> anyhow::Result<()> {
    use conftool_core::rules::{below_threshold, lowers_pooled, reactivations, Refusal};
    if !overrides.include_inactive {
        let swept = reactivations(sel, changes);
        if !swept.is_empty() {
            let refusal = Refusal::Reactivation(swept.iter().map(|c| c.key.clone()).collect());
            return Err(BadInput::msg(format!(
                "refusing to write: {refusal}; nothing written (name the host exactly, \
                 e.g. name=mw1018.eqiad.wmnet, or pass --include-inactive)"
            )));
        }
    }
    if overrides.allow_below_threshold || !changes.iter().any(lowers_pooled) {
        return Ok(());
    }
    let pools: BTreeSet<PoolKey> = changes
        .iter()
        .filter(|c| lowers_pooled(c))
        .map(|c| c.key.pool.clone())
        .collect();
    let members = store.pool_members(&pools).await?;
    let below = below_threshold(&members, changes);
    if below.is_empty() {
        return Ok(());
    }
    let refusal = Refusal::BelowThreshold(below);
    Err(BadInput::msg(format!(
        "refusing to write: {refusal}; nothing written (pass --allow-below-threshold to \
         write anyway)"
    )))
}
