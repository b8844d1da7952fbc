//! `confctl select SELECTOR ACTION`.

use conftool_core::{Action, Atomicity, Edit, Selector};
use serde_json::json;

use super::Opts;
use crate::commands::changes::{apply_audited, change_lines, confirm};
use crate::connection::ConnArgs;
use crate::exit::{BadInput, FAILURE, OK};
use crate::output::{get_line, object_json};

/// Run `confctl select`.
pub(super) async fn run(
    conn: &ConnArgs,
    opts: &Opts,
    selector: &str,
    action: &str,
) -> anyhow::Result<u8> {
    // Parse everything before touching etcd: bad input never reaches the store.
    let sel: Selector = selector.parse().map_err(BadInput::wrap)?;
    let action: Action = action.parse().map_err(BadInput::wrap)?;
    let (cfg, store) = conn.connect().await?;
    let selection = store.select(&sel).await?;
    for (key, why) in &selection.malformed {
        eprintln!("confctl: warning: {key}: {why}");
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
            "selector {sel} matches no objects; nothing written"
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
        eprintln!(
            "{} objects selected by {sel}; {action} changes:",
            selection.objects.len()
        );
        for c in &changes {
            for l in change_lines(c) {
                eprintln!("  {l}");
            }
        }
        if !confirm("Ok to continue?") {
            eprintln!("confctl: aborted; nothing written.");
            return Ok(FAILURE);
        }
    }
    let json = opts.json.then(|| summary_json(&sel, &action, unchanged));
    apply_audited(
        "confctl",
        &cfg,
        &store,
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
