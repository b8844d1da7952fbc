//! `confctl pool|depool|drain|decommission [--hostname H] [--service S]`: act on every pool
//! a host is in, like the restart scripts' shortcuts.

use clap::Args;
use conftool_core::{Atomicity, Edit, NodeName, Pooled, Selected, Service, SetFields, Weight};

use super::Opts;
use crate::commands::changes::{apply_audited, check_rules, Landed, Overrides};
use crate::connection::ConnArgs;
use crate::exit::BadInput;

/// Which host, which service.
#[derive(Debug, Clone, Args)]
pub struct HostArgs {
    /// The node name (default: this machine's FQDN, then its short name).
    #[arg(long, value_name = "HOST")]
    pub hostname: Option<String>,
    /// Only this service (default: every service the host is in).
    #[arg(long, value_name = "SERVICE")]
    pub service: Option<String>,
}

/// `confctl pool`'s arguments.
#[derive(Debug, Clone, Args)]
pub struct PoolArgs {
    /// Which host, which service.
    #[command(flatten)]
    pub host: HostArgs,
    /// Also pool objects that are pooled=inactive (out of rotation on purpose).
    #[arg(long)]
    pub include_inactive: bool,
}

/// Arguments of the verbs that lower pooled counts (`depool`, `decommission`).
#[derive(Debug, Clone, Args)]
pub struct GuardedArgs {
    /// Which host, which service.
    #[command(flatten)]
    pub host: HostArgs,
    /// Write even if it leaves a pool with fewer pooled nodes than its service's
    /// depool_threshold allows (default 0.5 of the pool's nodes that are not inactive).
    #[arg(long)]
    pub allow_below_threshold: bool,
}

impl GuardedArgs {
    pub(super) fn guard(&self) -> Guard {
        Guard {
            include_inactive: false,
            allow_below_threshold: self.allow_below_threshold,
        }
    }
}

/// The rules a verb's caller lifted.
pub(super) type Guard = Overrides;

/// The shortcut being run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verb {
    Pool,
    Depool,
    Drain,
    Decommission,
}

impl Verb {
    /// The edit for one object, or `None` to leave it alone.
    fn edit(self, o: &Selected, include_inactive: bool) -> Option<Edit> {
        let pooled = |p| {
            Edit::Set(SetFields {
                pooled: Some(p),
                weight: None,
            })
        };
        match self {
            // Never re-pool an inactive object unless asked: it is out of rotation on purpose.
            Verb::Pool if o.state.pooled == Pooled::Inactive && !include_inactive => None,
            Verb::Pool => Some(pooled(Pooled::Yes)),
            // Setting an inactive object to "no" would put it back in LB configuration.
            Verb::Depool if o.state.pooled == Pooled::Inactive => None,
            Verb::Depool => Some(pooled(Pooled::No)),
            Verb::Drain => Some(Edit::Set(SetFields {
                pooled: None,
                weight: Some(Weight(0)),
            })),
            Verb::Decommission => Some(pooled(Pooled::Inactive)),
        }
    }
}

/// This machine's FQDN (`hostname -f`), falling back to the kernel's host name.
fn this_host() -> String {
    std::process::Command::new("hostname")
        .arg("-f")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(conftool_core::audit::hostname)
}

pub(super) async fn run(
    conn: &ConnArgs,
    opts: &Opts,
    verb: Verb,
    args: &HostArgs,
    guard: Guard,
) -> anyhow::Result<u8> {
    let explicit = args.hostname.is_some();
    let host = args.hostname.clone().unwrap_or_else(this_host);
    let mut candidates = vec![host.clone()];
    if !explicit {
        if let Some((short, _)) = host.split_once('.') {
            candidates.push(short.to_string());
        }
    }
    let names = candidates
        .iter()
        .map(|h| h.parse::<NodeName>().map_err(BadInput::wrap))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let service = args
        .service
        .as_deref()
        .map(str::parse::<Service>)
        .transpose()
        .map_err(BadInput::wrap)?;
    let (cfg, store) = conn.connect().await?;
    // Point reads of the host's candidate keys, not a read of the whole fleet.
    let Some((sel, selection)) = store.find_node(&names, service.as_ref()).await? else {
        let what = match &args.service {
            Some(s) => format!("service {s}"),
            None => "any pool".to_string(),
        };
        return Err(BadInput::msg(format!(
            "node {} is not in {what}; nothing written",
            candidates.join(" (or ") + if candidates.len() > 1 { ")" } else { "" }
        )));
    };
    let include_inactive = guard.include_inactive;
    let edit = move |o: &Selected| verb.edit(o, include_inactive);
    let skipped: Vec<String> = selection
        .objects
        .iter()
        .filter(|o| edit(o).is_none())
        .map(|o| o.key.to_string())
        .collect();
    for s in &skipped {
        opts.out.info(format!("{s}: left alone (pooled=inactive)"));
    }
    let changes = selection.changes(edit);
    let json = opts.json.then(|| serde_json::json!({ "skipped": skipped }));
    if changes.is_empty() {
        opts.out.info("Nothing to change.");
        let nothing = Landed {
            applied: Vec::new(),
            error: None,
        };
        return nothing.report(&opts.out, json);
    }
    // The host is named exactly: only the depool threshold can refuse.
    check_rules(
        &store,
        &sel,
        &changes,
        Guard {
            include_inactive: true,
            ..guard
        },
    )
    .await?;
    apply_audited("confctl", &cfg, &store, &sel, changes, edit, Atomicity::All)
        .await
        .report(&opts.out, json)
}
