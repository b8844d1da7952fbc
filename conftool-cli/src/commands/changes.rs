//! What confctl and conftool share once they know what to change: confirmation, applying
//! with compare-and-swap, the audit trail, and the Python tool's change lines.

use std::io::BufRead;

use anyhow::Context;
use conftool_core::{
    Actor, Applied, Atomicity, AuditLog, Change, Config, Edit, Selected, Selector, Store,
};

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

/// Apply changes with compare-and-swap (re-applying `edit` to fresh data after a lost
/// race), then record every applied change in the audit trail.
pub async fn apply_audited(
    tool: &str,
    cfg: &Config,
    store: &Store,
    sel: &Selector,
    changes: Vec<Change>,
    edit: impl Fn(&Selected) -> Option<Edit>,
    atomicity: Atomicity,
) -> anyhow::Result<Vec<Applied>> {
    let applied = store.apply(sel, changes, edit, atomicity).await?;
    let actor = Actor::from_env(tool, cfg.username.clone());
    AuditLog::from_config(cfg.audit_log.as_deref())
        .record(store.keyspace(), &actor, &applied)
        .context("the changes were written, but recording them in the audit log failed")?;
    Ok(applied)
}
