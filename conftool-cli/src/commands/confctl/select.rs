//! `confctl select SELECTOR ACTION`.

use clap::Args;
use conftool_core::{escape_controls, Action, Atomicity, Edit, Selector};
use serde_json::json;

use super::Opts;
use crate::commands::changes::{apply, change_lines, check_rules, confirm, writer};
use crate::connection::ConnArgs;
use crate::exit::{BadInput, FAILURE, OK};
use crate::output::{get_line, object_json, stderr_line, warn};
use conftool_core::Overrides;

/// `confctl select SELECTOR ACTION`.
#[derive(Debug, Clone, Args)]
pub struct SelectArgs {
    /// The selector, e.g. 'dc=eqiad,cluster=appservers,name=mw10.*'.
    pub selector: String,
    /// The action: get | set/pooled=yes|no|inactive[:weight=N] | delete.
    pub action: String,
    /// Do not ask for confirmation when a write matches more than one object.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Let a selection by pattern (or without a name) put pooled=inactive objects back into
    /// service (pooled=yes). Not needed when the selector names one host exactly.
    #[arg(long)]
    pub include_inactive: bool,
    /// Write even if the change leaves a pool with fewer pooled nodes than its service's
    /// depool_threshold allows (default 0.5 of the pool's nodes that are not inactive).
    #[arg(long)]
    pub allow_below_threshold: bool,
}

/// Run `confctl select`.
pub(super) async fn run(conn: &ConnArgs, opts: &Opts, args: &SelectArgs) -> anyhow::Result<u8> {
    // Parse everything before touching etcd: bad input never reaches the store.
    let sel: Selector = args.selector.parse()?;
    let action: Action = args.action.parse()?;
    let (cfg, store) = conn.connect().await?;
    let selection = store.select(&sel).await?;
    for (key, why) in &selection.malformed {
        warn("confctl", format!("{key}: {why}"));
    }
    let edit = match action {
        Action::Get => {
            if opts.json {
                let objects: Vec<_> = selection
                    .objects
                    .iter()
                    .map(|o| object_json(&o.key, &o.state))
                    .collect();
                opts.out.line(
                    json!({
                        "selector": sel.to_string(),
                        "revision": selection.revision,
                        "objects": objects,
                    })
                    .to_string(),
                );
            } else {
                for o in &selection.objects {
                    opts.out.line(get_line(&o.key, &o.state));
                }
            }
            return Ok(OK);
        }
        Action::Set(fields) => Edit::Set(fields),
        Action::Delete => Edit::Delete,
    };
    if selection.objects.is_empty() && selection.malformed.is_empty() {
        return Err(BadInput::msg(format!(
            "selector {} matches no objects; nothing written",
            escape_controls(&sel.to_string())
        )));
    }
    if !selection.malformed.is_empty() {
        anyhow::bail!(
            "{} selected keys hold malformed values (see warnings); nothing written",
            selection.malformed.len()
        );
    }
    let changes = selection.changes(|_| Some(edit));
    let unchanged = selection.objects.len() - changes.len();
    let overrides = Overrides {
        include_inactive: args.include_inactive,
        allow_below_threshold: args.allow_below_threshold,
    };
    // The audit log is checked here, and the rules before asking anything.
    let mut writer = writer("confctl", &cfg, &store, overrides, &opts.reason)?;
    check_rules(&writer, &sel, &changes).await?;
    if changes.is_empty() {
        opts.out.info(format!(
            "All {} selected objects are already in the requested state; nothing written.",
            selection.objects.len()
        ));
        if opts.json {
            let mut doc = summary_json(&sel, &action, unchanged);
            doc["changed"] = json!([]);
            opts.out.line(doc.to_string());
        }
        return Ok(OK);
    }
    if selection.objects.len() > 1 && !opts.yes {
        stderr_line(&format!(
            "{} objects selected by {}; {} changes:",
            selection.objects.len(),
            escape_controls(&sel.to_string()),
            escape_controls(&action.to_string())
        ));
        for c in &changes {
            for l in change_lines(c) {
                stderr_line(&format!("  {l}"));
            }
        }
        if !confirm("Ok to continue?") {
            stderr_line("confctl: aborted; nothing written.");
            return Ok(FAILURE);
        }
    }
    let json = opts.json.then(|| summary_json(&sel, &action, unchanged));
    apply(
        &mut writer,
        &sel,
        changes,
        |_| Some(edit),
        Atomicity::Batched,
    )
    .await
    .report(&opts.out, json)
}

/// The `--json` document of a write, before its `changed` list is added.
fn summary_json(sel: &Selector, action: &Action, unchanged: usize) -> serde_json::Value {
    json!({
        "selector": sel.to_string(),
        "action": action.to_string(),
        "unchanged": unchanged,
    })
}
