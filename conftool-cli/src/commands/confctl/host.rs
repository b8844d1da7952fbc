//! `confctl pool|depool|drain|decommission [--hostname H] [--service S]`: act on every pool
//! a host is in, like the restart scripts' shortcuts.

use clap::Args;
use conftool_core::{HostVerb, NodeName, Service};

use super::Opts;
use crate::commands::changes::{failure, writer, Landed};
use crate::connection::ConnArgs;
use conftool_core::Overrides;

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
    verb: HostVerb,
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
        .map(|h| h.parse::<NodeName>())
        .collect::<Result<Vec<_>, _>>()?;
    let service = args
        .service
        .as_deref()
        .map(str::parse::<Service>)
        .transpose()?;
    let (cfg, store) = conn.connect().await?;
    opts.debug_connection(&cfg, &store);
    let mut writer = writer("confctl", &cfg, &store, guard, &opts.reason)?;
    // Point reads of the host's candidate keys, not a read of the whole fleet; the rules
    // (depool threshold) and the audit trail are the library's.
    let landed = match writer.host(verb, &names, service.as_ref()).await {
        Ok(done) => {
            let skipped: Vec<String> = done.skipped.iter().map(ToString::to_string).collect();
            for s in &skipped {
                opts.out.info(format!("{s}: left alone (pooled=inactive)"));
            }
            if done.applied.is_empty() {
                opts.out.info("Nothing to change.");
            }
            let json = opts.json.then(|| serde_json::json!({ "skipped": skipped }));
            return Landed {
                applied: done.applied,
                error: None,
            }
            .report(&opts.out, json);
        }
        Err(e) => failure(e),
    };
    let json = opts.json.then(|| serde_json::json!({ "skipped": [] }));
    landed.report(&opts.out, json)
}
