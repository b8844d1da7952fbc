//! What confctl and conftool share once they know what to change: confirmation, applying
//! with compare-and-swap, the audit trail, and the Python tool's change lines.

use std::io::BufRead;

use conftool_core::{
    Actor, Applied, ApplyError, Atomicity, AuditLog, Change, Checked, Config, Edit, Overrides,
    Selected, Selector, Store, Writer,
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
/// `A` is how a landed change is told: a pool object's [`Applied`] (the default), or a schema
/// object's change with its revision.
pub struct Landed<A = Applied> {
    /// Changes written, each with its etcd revision.
    pub applied: Vec<A>,
    /// Why the write stopped before doing everything, if it did.
    pub error: Option<anyhow::Error>,
}

impl Landed {
    /// Print the landed changes as the Python tool's lines, or as JSON objects in `extra`'s
    /// document (`changed`, plus `error` on failure), then return the outcome.
    pub fn report(self, out: &Printer, json: Option<serde_json::Value>) -> anyhow::Result<u8> {
        self.report_with(out, json, |a| change_lines(&a.change), applied_json)
    }
}

impl<A> Landed<A> {
    /// [`Landed::report`] for any kind of landed change: `lines` gives its Python-tool
    /// lines, `to_json` its entry in the document's `changed` list.
    pub fn report_with(
        self,
        out: &Printer,
        json: Option<serde_json::Value>,
        lines: impl Fn(&A) -> Vec<String>,
        to_json: impl Fn(&A) -> serde_json::Value,
    ) -> anyhow::Result<u8> {
        match json {
            Some(mut doc) => {
                if let Some(obj) = doc.as_object_mut() {
                    let changed = self.applied.iter().map(to_json).collect();
                    obj.insert("changed".into(), serde_json::Value::Array(changed));
                    if let Some(e) = &self.error {
                        obj.insert("error".into(), format!("{e:#}").into());
                    }
                }
                out.line(doc.to_string());
            }
            // A line per landed change, written out a chunk at a time (a write of 10,000
            // objects is a few writes to stdout, not 10,000).
            None => out.chunked(|w| {
                for l in self.applied.iter().flat_map(&lines) {
                    writeln!(w, "{l}")?;
                }
                Ok(())
            }),
        }
        match self.error {
            Some(e) => Err(e),
            None => Ok(OK),
        }
    }
}

/// An applied change as JSON: `{"key", "before", "after", "revision"}`.
pub fn applied_json(a: &Applied) -> serde_json::Value {
    serde_json::json!({
        "key": a.change.key.to_string(),
        "before": a.change.before,
        "after": a.change.after,
        "revision": a.revision,
    })
}

/// A writer for `tool` (the library's one audited write path), with the rules the user
/// lifted. Opening it checks the audit log: one that cannot be written refuses here, before
/// anything is written.
pub fn writer<'s>(
    tool: &str,
    cfg: &Config,
    store: &'s Store,
    overrides: Overrides,
    reason: &ReasonArg,
) -> anyhow::Result<Writer<'s>> {
    let actor = Actor::from_env(tool, cfg.username.clone());
    let audit = AuditLog::from_config(cfg.audit_log.as_deref());
    let writer = store
        .writer(&actor, &audit)
        .map_err(nothing_written)?
        .with_overrides(overrides);
    Ok(match &reason.reason {
        Some(r) => writer.with_reason(r.clone()),
        None => writer,
    })
}

/// Whether the error is a short, final answer that reads best with "nothing written" after
/// it (`node X is not in any pool; nothing written`) rather than before.
fn said_after(e: &conftool_core::Error) -> bool {
    matches!(
        e,
        conftool_core::Error::NotFound { .. }
            | conftool_core::Error::ReadOnly
            | conftool_core::Error::OperationNotFound(_)
    )
}

/// A library error after which nothing was written, and the CLI says so (the library's
/// messages say what went wrong, never what was written). Its exit code is the error's.
#[derive(Debug)]
pub struct NothingWritten(pub conftool_core::Error);

impl std::fmt::Display for NothingWritten {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}; nothing written", self.0)
    }
}

// No `source`: the inner error is the message, an error chain would say it twice.
impl std::error::Error for NothingWritten {}

impl conftool_core::Classify for NothingWritten {
    fn class(&self) -> conftool_core::ErrorClass {
        self.0.class()
    }
}

/// An error before anything was written, said so once.
pub fn nothing_written(e: conftool_core::Error) -> anyhow::Error {
    if said_after(&e) {
        NothingWritten(e).into()
    } else {
        anyhow::Error::new(e).context("nothing written")
    }
}

/// `-r/--reason`, the same in every binary that writes.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ReasonArg {
    /// Why the change is made (a ticket, an incident): recorded on every audit line.
    #[arg(long, short = 'r', global = true, value_name = "TEXT")]
    pub reason: Option<String>,
}

/// A refusal by a rule, with what lifts it (the flags are the CLI's, so the hint is too).
fn with_hint(e: conftool_core::Error) -> anyhow::Error {
    use conftool_core::{ModelError as Model, Refusal};
    let hint = match &e {
        conftool_core::Error::Model(Model::Refused(Refusal::BelowThreshold(_))) => {
            "pass --allow-below-threshold to write anyway"
        }
        _ => return e.into(),
    };
    BadInput::msg(format!("{e}; nothing written ({hint})"))
}

/// Refuse changes made from `selection` (read by `sel`) that break a rule not lifted (see
/// [`Writer::check_selected`]).
pub async fn check_rules(
    writer: &Writer<'_>,
    sel: &Selector,
    selection: &conftool_core::Selection,
    changes: &[Change],
) -> anyhow::Result<Checked> {
    writer
        .check_selected(sel, selection, changes)
        .await
        .map_err(with_hint)
}

/// What a failed write says: nothing written, or what was kept.
pub fn failure(failure: ApplyError) -> Landed {
    stopped(failure.applied, failure.error)
}

/// A write of any kind of object that stopped with `error` after `applied` landed: nothing
/// written (with the rule's hint, if a rule refused it), or how many changes were kept.
pub fn stopped<A>(applied: Vec<A>, error: conftool_core::Error) -> Landed<A> {
    let n = applied.len();
    let audit_failed = matches!(error, conftool_core::Error::Audit { .. });
    let err = match (n, audit_failed) {
        (0, _) if said_after(&error) => nothing_written(error),
        (0, _) => match with_hint(error) {
            e if e.downcast_ref::<BadInput>().is_some() => e,
            e => e.context("nothing written"),
        },
        (_, true) => anyhow::Error::new(error).context(format!(
            "{n} changes were written (shown above), but recording them in the audit log failed"
        )),
        (_, false) => anyhow::Error::new(error).context(format!(
            "stopped after writing {n} of the changes (shown above)"
        )),
    };
    Landed {
        applied,
        error: Some(err),
    }
}

/// Apply changes through `writer` (rules, compare-and-swap with re-application to fresh
/// data, the audit trail), reporting what landed even when the write stopped part-way.
pub async fn apply(
    writer: &mut Writer<'_>,
    sel: &Selector,
    changes: Vec<Change>,
    edit: impl Fn(&Selected) -> Option<Edit> + Send + Sync,
    atomicity: Atomicity,
) -> Landed {
    landed(writer.apply(sel, changes, edit, atomicity).await)
}

/// What a write's result says landed (also when it stopped part-way).
pub fn landed(written: Result<Vec<Applied>, ApplyError>) -> Landed {
    match written {
        Ok(applied) => Landed {
            applied,
            error: None,
        },
        Err(e) => failure(e),
    }
}
