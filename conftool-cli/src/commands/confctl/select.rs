//! `confctl select SELECTOR ACTION`.

use clap::Args;
use conftool_core::{escape_controls, Action, Atomicity, Config, Edit, Overrides, Selector, Store};
use serde_json::json;

use super::action_file;
use super::get::{self, GetStyle};
use super::Opts;
use crate::commands::changes::{apply, change_lines, check_rules, confirm, writer};
use crate::connection::ConnArgs;
use crate::exit::{BadInput, FAILURE, OK};
use crate::output::{stderr_line, warn};

/// `confctl select SELECTOR ACTION`.
#[derive(Debug, Clone, Args)]
pub struct SelectArgs {
    /// The selector, e.g. 'dc=eqiad,cluster=appservers,name=mw10.*'.
    pub selector: String,
    /// The action: get | set/pooled=yes|no|inactive[:weight=N] | set/@FILE (a YAML file
    /// with pooled and/or weight) | delete.
    pub action: String,
    /// Do not ask for confirmation when a write matches more than one object.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Let a write by pattern (or without a name) change pooled=inactive objects, which it
    /// otherwise leaves alone. Not needed when the selector names one host exactly.
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
    let action = action_file::parse(&args.action)?;
    let (cfg, store) = conn.connect().await?;
    opts.debug_connection(&cfg, &store);
    let req = Request {
        sel: &sel,
        action: &action,
        overrides: Overrides {
            include_inactive: args.include_inactive,
            allow_below_threshold: args.allow_below_threshold,
        },
        get_style: GetStyle::Lines,
        confirm: Confirm::WhenSeveral,
    };
    execute(&cfg, &store, opts, req).await
}

/// One selection and what to do with it: `select`, or one `--action` of `tags`.
pub(super) struct Request<'a> {
    /// Which objects.
    pub sel: &'a Selector,
    /// What to do with them.
    pub action: &'a Action,
    /// The rules the user lifted.
    pub overrides: Overrides,
    /// How `get` prints them.
    pub get_style: GetStyle<'a>,
    /// When a write asks before going ahead (unless `--yes`).
    pub confirm: Confirm,
}

/// When a write asks for confirmation first (the Python confctl's two rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Confirm {
    /// `select`: a write to more than one object.
    WhenSeveral,
    /// `tags` with `re:`: a write to at least half of the pool's `pool` objects.
    AtLeastHalfOf { pool: usize },
    /// `tags` with `all`: every write.
    Always,
    /// `tags` with a node's name: never.
    Never,
}

impl Confirm {
    /// Whether a write to `selected` objects asks.
    pub(super) fn asks(self, selected: usize) -> bool {
        match self {
            Confirm::WhenSeveral => selected > 1,
            Confirm::AtLeastHalfOf { pool } => pool <= 2 * selected,
            Confirm::Always => true,
            Confirm::Never => false,
        }
    }
}

/// Select, then print (`get`) or write through the one audited path, asking first when a
/// write matches more than one object (unless `--yes`, or `--host` and they are one host's).
pub(super) async fn execute(
    cfg: &Config,
    store: &Store,
    opts: &Opts,
    req: Request<'_>,
) -> anyhow::Result<u8> {
    let Request {
        sel,
        action,
        overrides,
        get_style,
        confirm: asking,
    } = req;
    let selection = store.select(sel).await?;
    opts.debug(|| {
        format!(
            "selector {sel}: read {} at revision {}: {} objects matched, {} malformed",
            sel.prefix(store.keyspace()),
            selection.revision,
            selection.objects.len(),
            selection.malformed.len()
        )
    });
    for (key, why) in &selection.malformed {
        warn("confctl", format!("{key}: {why}"));
    }
    let edit = match action {
        Action::Get => {
            get::print(opts, sel, &selection, get_style);
            return Ok(OK);
        }
        Action::Set(fields) => Edit::Set(*fields),
        Action::Delete => Edit::Delete,
    };
    if selection.objects.is_empty() && selection.malformed.is_empty() {
        return Err(BadInput::msg(format!(
            "selector {} matches no objects; nothing written",
            escape_controls(&sel.to_string())
        )));
    }
    if opts.host {
        one_host(sel, selection.objects.iter().map(|o| o.key.node.as_str()))?;
    }
    // The audit log is checked here, and the rules before asking anything.
    let mut writer = writer("confctl", cfg, store, overrides, &opts.reason)?;
    let planned = writer
        .changes(sel, &selection, |_| Some(edit))
        .map_err(crate::commands::changes::nothing_written)?;
    for key in &planned.left_alone {
        opts.out.info(format!(
            "{key}: left alone (pooled=inactive; name the host exactly or pass \
             --include-inactive to change it)"
        ));
    }
    let changes = planned.changes.clone();
    let unchanged = selection.objects.len() - changes.len();
    check_rules(&writer, &changes).await?;
    if changes.is_empty() {
        let left = planned.left_alone.len();
        opts.out.info(if left == 0 {
            format!(
                "All {} selected objects are already in the requested state; nothing written.",
                selection.objects.len()
            )
        } else {
            format!(
                "Nothing written: of {} selected objects, {left} are pooled=inactive (left \
                 alone) and the others are already in the requested state.",
                selection.objects.len()
            )
        });
        if opts.json {
            let mut doc = summary_json(sel, action, unchanged);
            doc["changed"] = json!([]);
            opts.out.line(doc.to_string());
        }
        return Ok(OK);
    }
    // `--host` said these are one host's objects, and `one_host` checked it.
    if asking.asks(selection.objects.len()) && !opts.yes && !opts.host {
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
    let json = opts.json.then(|| summary_json(sel, action, unchanged));
    apply(
        &mut writer,
        sel,
        changes,
        |_| Some(edit),
        Atomicity::Batched,
    )
    .await
    .report(&opts.out, json)
}

/// `--host`: the user says the write is about one host, so it goes ahead without asking
/// when every selected object has the same name, and is refused (bad input, nothing
/// written) when they do not: the selector is not what the user thinks it is. (The Python
/// tool asks as if `--host` were not given.) The rule is the library's
/// ([`conftool_core::one_host`]); nodes and schema objects alike.
pub(super) fn one_host<'a>(
    sel: &dyn std::fmt::Display,
    names: impl IntoIterator<Item = &'a str>,
) -> anyhow::Result<()> {
    conftool_core::one_host(names).map_err(|e| {
        BadInput::msg(format!(
            "--host: selector {}: {}; nothing written",
            escape_controls(&sel.to_string()),
            escape_controls(&e.to_string())
        ))
    })
}

/// The `--json` document of a write, before its `changed` list is added.
fn summary_json(sel: &Selector, action: &Action, unchanged: usize) -> serde_json::Value {
    json!({
        "selector": sel.to_string(),
        "action": action.to_string(),
        "unchanged": unchanged,
    })
}
