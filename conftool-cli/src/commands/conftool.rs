//! `conftool --datacenter DC --cluster C --service S "cp1052 pool=no; cp1053 pool=yes:weight=20000"`:
//! the syntax of the original design document. All changes of one invocation are applied
//! atomically (one transaction) or not at all.

use std::collections::BTreeMap;

use clap::Parser;
use conftool_core::{Atomicity, Edit, NodeName, PoolKey, Pooled, Selected, Selector, SetFields};

use crate::commands::changes::{apply, writer};
use crate::connection::ConnArgs;
use crate::exit::{BadInput, OK};
use crate::output::Printer;
use conftool_core::Overrides;

/// Change the state of nodes in one pool.
#[derive(Debug, Parser)]
#[command(
    name = "conftool",
    version,
    after_help = "Examples:\n  \
  conftool --datacenter eqiad --cluster cache_text --service varnish-fe \\\n      \"cp1052 pool=no; cp1053 pool=yes:weight=20000\"\n  \
  conftool -d eqiad -c appservers -s apache 'mw1018 pool=inactive'\n\n\
Each command is `NODE field=value[:field=value]` with fields pool (or pooled) = yes|no|inactive\n\
and weight = 0..65535; commands are separated by ';'. Either every change is written, in one\n\
transaction, or none is. A change that would leave the pool with fewer pooled nodes than its\n\
depool_threshold allows is refused unless --allow-below-threshold is given.\n\n\
Exit codes: 0 done, 1 runtime failure, 2 bad input (nothing written).\n\
Shell completions and a man page: conftool --completions bash|zsh|fish, conftool --man."
)]
pub struct ConftoolArgs {
    /// Datacenter of the pool.
    #[arg(long, short = 'd', value_name = "DC")]
    pub datacenter: String,
    /// Cluster of the pool.
    #[arg(long, short = 'c', value_name = "CLUSTER")]
    pub cluster: String,
    /// Service of the pool.
    #[arg(long, short = 's', value_name = "SERVICE")]
    pub service: String,
    /// Commands: "NODE pool=no; NODE pool=yes:weight=20000" (several arguments are joined with ';').
    #[arg(required = true, value_name = "COMMANDS")]
    pub commands: Vec<String>,
    /// Write even if it leaves the pool with fewer pooled nodes than its service's
    /// depool_threshold allows (default 0.5 of the pool's nodes that are not inactive).
    #[arg(long)]
    pub allow_below_threshold: bool,
    /// Quiet output.
    #[command(flatten)]
    pub quiet: crate::output::QuietArg,
    /// Why (for the audit trail).
    #[command(flatten)]
    pub reason: crate::commands::changes::ReasonArg,
    /// Connection settings.
    #[command(flatten)]
    pub conn: ConnArgs,
}

/// Parse `cp1052 pool=no; cp1053 pool=yes:weight=20000` into ordered (node, fields).
pub fn parse_commands(text: &str) -> Result<Vec<(NodeName, SetFields)>, anyhow::Error> {
    let mut out: Vec<(NodeName, SetFields)> = Vec::new();
    for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let mut words = part.split_whitespace();
        let (Some(node), Some(fields), None) = (words.next(), words.next(), words.next()) else {
            return Err(BadInput::msg(format!(
                "{part:?}: expected `NODE field=value[:field=value]`"
            )));
        };
        let node: NodeName = node.parse()?;
        let fields = SetFields::parse(fields, part)?;
        if out.iter().any(|(n, _)| *n == node) {
            return Err(BadInput::msg(format!("{node} is given more than once")));
        }
        out.push((node, fields));
    }
    if out.is_empty() {
        return Err(BadInput::msg("no commands given"));
    }
    Ok(out)
}

/// The seed document's message for a node after its change; `changed` says whether
/// anything was written for it (if not, the node already was in that state, and the
/// message says so).
pub fn message(
    node: &NodeName,
    service: &str,
    fields: &SetFields,
    state: &conftool_core::PoolState,
    changed: bool,
) -> String {
    let already = if changed { "" } else { "already " };
    match fields.pooled {
        Some(Pooled::Yes) => format!(
            "Node {node} {already}pooled in service {service} with weight {}",
            state.weight
        ),
        Some(Pooled::No) => match fields.weight {
            Some(w) => {
                format!("Node {node} {already}depooled from service {service} with weight {w}")
            }
            None => format!("Node {node} {already}depooled from service {service}"),
        },
        Some(Pooled::Inactive) if changed => {
            format!("Node {node} set inactive in service {service}")
        }
        Some(Pooled::Inactive) => format!("Node {node} already inactive in service {service}"),
        None => format!(
            "Node {node} weight {already}set to {} in service {service}",
            state.weight
        ),
    }
}

/// Run `conftool`.
pub async fn run(args: ConftoolArgs) -> anyhow::Result<u8> {
    let out = Printer::new(args.quiet.quiet);
    let commands = parse_commands(&args.commands.join(";"))?;
    let pool_key = PoolKey {
        dc: args.datacenter.parse()?,
        cluster: args.cluster.parse()?,
        service: args.service.parse()?,
    };
    let sel = Selector::for_pool(&pool_key)?;
    let wanted: BTreeMap<NodeName, SetFields> = commands.iter().cloned().collect();
    let (cfg, store) = args.conn.connect().await?;
    let selection = store.select(&sel).await?;
    let pool = format!("{}/{}/{}", args.datacenter, args.cluster, args.service);
    let missing: Vec<String> = wanted
        .keys()
        .filter(|n| !selection.objects.iter().any(|o| &o.key.node == *n))
        .map(ToString::to_string)
        .collect();
    if !missing.is_empty() {
        return Err(BadInput::msg(format!(
            "not in pool {pool}: {}; nothing written",
            missing.join(", ")
        )));
    }
    let edit = |o: &Selected| wanted.get(&o.key.node).map(|f| Edit::Set(*f));
    let changes = selection.changes(edit);
    // Every node is named exactly: only the depool threshold can refuse.
    let overrides = Overrides {
        include_inactive: true,
        allow_below_threshold: args.allow_below_threshold,
    };
    let mut writer = writer("conftool", &cfg, &store, overrides, &args.reason)?;
    let landed = apply(&mut writer, &sel, changes, edit, Atomicity::All).await;
    if landed.applied.is_empty() {
        if let Some(e) = landed.error {
            return Err(e); // one transaction: nothing was written
        }
    }
    let applied = landed.applied;
    // Report every command in the order given, with the state it left the node in.
    let mut finals: BTreeMap<&NodeName, &conftool_core::PoolState> = selection
        .objects
        .iter()
        .map(|o| (&o.key.node, &o.state))
        .collect();
    for a in &applied {
        if let Some(after) = &a.change.after {
            finals.insert(&a.change.key.node, after);
        }
    }
    for (node, fields) in &commands {
        if let Some(state) = finals.get(node) {
            let changed = applied.iter().any(|a| &a.change.key.node == node);
            out.line(message(node, &args.service, fields, state, changed));
        }
    }
    // Written, but e.g. the audit log could not record it.
    landed.error.map_or(Ok(OK), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_seed_syntax() {
        let c = parse_commands("cp1052 pool=no; cp1053 pool=yes:weight=20000").unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].0.as_str(), "cp1052");
        assert_eq!(c[1].1.to_string(), "pooled=yes:weight=20000");
        for bad in [
            "",
            "cp1052",
            "cp1052 pool=maybe",
            "cp1052 pool=no extra",
            "cp/1 pool=no",
            "a pool=no; a weight=1",
        ] {
            assert!(parse_commands(bad).is_err(), "{bad:?}");
        }
    }
}
