//! `confctl pool|depool|drain|decommission`: act on every pool a host is in, like the
//! restart scripts' shortcuts, or on a group of hosts (`--hostname` repeated,
//! `--hosts-file`): one plan for the whole group, checked once against every pool it touches,
//! written all or nothing (or `--partial`), recorded in an operation that `confctl operation
//! end` undoes, and shown first with `--dry-run`. A depool policy
//! (`depool-policy.yaml`) says which hosts are depooled by a command of their owners, or by
//! a person.

use std::path::PathBuf;

use clap::Args;
use conftool_core::policy::{Mechanism, Policy};
use std::collections::{BTreeMap, BTreeSet};

use conftool_core::{Datacenter, HostVerb, LabelMap, LabelSelector, NodeName, Overrides, Service};

use super::group_report;
use super::policy_run::{self, PolicyHost};
use super::Opts;
use crate::commands::changes::{failure, writer, Landed};
use crate::connection::ConnArgs;
use crate::exit::BadInput;

/// Which hosts, which service, and how.
#[derive(Debug, Clone, Args)]
pub struct HostArgs {
    /// A host name; repeat for several (default: this machine's FQDN, then its short name).
    #[arg(long, value_name = "HOST")]
    pub hostname: Vec<String>,
    /// A file of host names, one per line (`#` comments and blank lines ignored).
    #[arg(long, value_name = "FILE")]
    pub hosts_file: Option<PathBuf>,
    /// Every host of a datacenter whose labels match (`rack=B4`, `rack=B4,row=B`: all must
    /// match), as the data directory declares them; needs --dc.
    #[arg(long, value_name = "LABELS", requires = "dc")]
    pub label: Option<String>,
    /// The datacenter of --label's hosts.
    #[arg(long, value_name = "DC", requires = "label")]
    pub dc: Option<String>,
    /// Only this service (default: every service the hosts are in).
    #[arg(long, value_name = "SERVICE")]
    pub service: Option<String>,
    /// Show, per host, each pool and its state, what would change, which pools would cross
    /// their depool threshold and which hosts conftool does not manage; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// For a group: write the hosts that fit within the pools' depool thresholds and name
    /// the others (default: all or nothing).
    #[arg(long)]
    pub partial: bool,
    /// Record the change as an operation in etcd (printed), which `confctl operation end ID`
    /// undoes. Groups of hosts always do.
    #[arg(long)]
    pub operation: bool,
    /// The depool policy: which hosts are depooled by a command or by a person (default:
    /// /etc/conftool/depool-policy.yaml if it exists).
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Verification against the load balancers.
    #[command(flatten)]
    pub verify: super::verify::VerifyArgs,
}

/// `confctl pool`'s arguments.
#[derive(Debug, Clone, Args)]
pub struct PoolArgs {
    /// Which hosts, which service.
    #[command(flatten)]
    pub host: HostArgs,
    /// Also pool objects that are pooled=inactive (out of rotation on purpose).
    #[arg(long)]
    pub include_inactive: bool,
}

/// Arguments of the verbs that lower serving counts (`depool`, `drain`, `decommission`).
#[derive(Debug, Clone, Args)]
pub struct GuardedArgs {
    /// Which hosts, which service.
    #[command(flatten)]
    pub host: HostArgs,
    /// Write even if it leaves a pool with fewer serving nodes than its service's
    /// depool_threshold (default 0.5 of the pool's nodes that are not inactive) or
    /// min_pooled allows.
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

/// The default policy file.
const DEFAULT_POLICY: &str = "/etc/conftool/depool-policy.yaml";

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

/// The hosts asked for, each with the names it may be known by; whether they were named
/// (rather than this machine).
fn hosts(args: &HostArgs) -> anyhow::Result<(Vec<Vec<NodeName>>, bool)> {
    let mut named: Vec<String> = args.hostname.clone();
    if let Some(file) = &args.hosts_file {
        named.extend(read_hosts_file(file)?);
    }
    if named.is_empty() && args.label.is_some() {
        return Ok((Vec::new(), true));
    }
    if named.is_empty() {
        if args.hosts_file.is_some() {
            return Err(BadInput::msg(format!(
                "hosts file {} names no host; nothing written",
                args.hosts_file
                    .as_deref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            )));
        }
        // This machine: its FQDN, then its short name.
        let host = this_host();
        let mut names = vec![host.parse::<NodeName>()?];
        if let Some((short, _)) = host.split_once('.') {
            names.push(short.parse()?);
        }
        return Ok((vec![names], false));
    }
    let mut out = Vec::new();
    for n in named {
        let name: NodeName = n.parse()?;
        if !out.iter().any(|v: &Vec<NodeName>| v[0] == name) {
            out.push(vec![name]);
        }
    }
    Ok((out, true))
}

/// Host names from a file: one per line, `#` comments and blank lines ignored; a bad name
/// is bad input with its line.
fn read_hosts_file(path: &std::path::Path) -> anyhow::Result<Vec<String>> {
    use conftool_trust::{read_file, Origin, Privilege, Quote};
    // Read as the user this runs for would: under sudo, only a file they could read, and
    // its content quoted in errors only then.
    let contents = read_file(
        path,
        &Privilege::current(),
        Origin::Caller,
        4 << 20,
        "hosts file",
    )
    .map_err(|e| {
        BadInput::msg(format!(
            "hosts file {}: {e}; nothing written",
            path.display()
        ))
    })?;
    let quote = contents.quote == Quote::Content;
    let text = String::from_utf8(contents.bytes).map_err(|_| {
        BadInput::msg(format!(
            "hosts file {}: not UTF-8 text; nothing written",
            path.display()
        ))
    })?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if let Err(e) = line.parse::<NodeName>() {
            let why = if quote {
                e.to_string()
            } else {
                "not a valid host name".into()
            };
            return Err(BadInput::msg(format!(
                "hosts file {}:{}: {why}; nothing written",
                path.display(),
                i + 1
            )));
        }
        out.push(line.to_string());
    }
    Ok(out)
}

/// The depool policy: the file given, or the default one if it exists.
fn policy(args: &HostArgs) -> anyhow::Result<Policy> {
    let path = match &args.policy {
        Some(p) => p.clone(),
        None if std::path::Path::new(DEFAULT_POLICY).exists() => PathBuf::from(DEFAULT_POLICY),
        None => return Ok(Policy::default()),
    };
    // Its commands run as this process: under sudo it must be root's own file.
    if conftool_trust::Privilege::current().is_sudo() {
        conftool_trust::system_file(&path).map_err(|why| {
            BadInput::msg(format!(
                "depool policy {}: running through sudo, the policy must be root's own: {why}; \
                 nothing written",
                path.display()
            ))
        })?;
    }
    let text = conftool_trust::read_bounded(&path, 1 << 20, "depool policy").map_err(|e| {
        BadInput::msg(format!(
            "depool policy {}: {e}; nothing written",
            path.display()
        ))
    })?;
    let text = String::from_utf8_lossy(&text);
    Policy::parse(&text).map_err(|e| {
        let at = e.line.map_or(String::new(), |l| format!(":{l}"));
        BadInput::msg(format!(
            "depool policy {}{at}: {}; nothing written",
            path.display(),
            e.message
        ))
    })
}

/// Every host of `dc` whose labels `sel` matches, and every host's labels there; a
/// selector that matches none is bad input (naming a label no host has).
async fn labelled_hosts(
    store: &conftool_core::Store,
    sel: &LabelSelector,
    dc: &Datacenter,
) -> anyhow::Result<(Vec<NodeName>, LabelMap)> {
    let all = store.labels(Some(dc)).await?;
    let found: Vec<NodeName> = all
        .iter()
        .filter(|(_, l)| sel.matches(l))
        .map(|((_, n), _)| n.clone())
        .collect();
    if !found.is_empty() {
        return Ok((found, all));
    }
    let names: BTreeSet<&str> = all
        .values()
        .flat_map(|l| l.iter().map(|(k, _)| k.as_str()))
        .collect();
    let unknown: Vec<&str> = sel
        .terms()
        .map(|(k, _)| k.as_str())
        .filter(|k| !names.contains(k))
        .collect();
    let why = if unknown.is_empty() {
        format!("no host in {dc} has the labels {sel}")
    } else {
        format!(
            "no host in {dc} has a label named {} (labels there: {})",
            unknown.join(", "),
            if names.is_empty() {
                "none".to_string()
            } else {
                names.into_iter().collect::<Vec<_>>().join(", ")
            }
        )
    };
    Err(BadInput::msg(format!(
        "--label {sel}: {why}; nothing written"
    )))
}

/// A host's labels as the policy matches them (none if unknown).
fn labels_of(all: Option<&LabelMap>, host: &NodeName) -> BTreeMap<String, String> {
    all.and_then(|all| all.iter().find(|((_, n), _)| n == host))
        .map(|(_, l)| {
            l.iter()
                .map(|(k, v)| (k.as_str().to_string(), v.as_str().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

pub(super) async fn run(
    conn: &ConnArgs,
    opts: &Opts,
    verb: HostVerb,
    args: &HostArgs,
    guard: Guard,
) -> anyhow::Result<u8> {
    // Everything the user gave is checked before etcd is contacted.
    let (hosts, named) = hosts(args)?;
    let service = args
        .service
        .as_deref()
        .map(str::parse::<Service>)
        .transpose()?;
    let policy = policy(args)?;
    let label = match (&args.label, &args.dc) {
        (Some(l), Some(dc)) => Some((
            l.parse::<LabelSelector>()
                .map_err(|e| BadInput::msg(format!("--label: {e}; nothing written")))?,
            dc.parse::<Datacenter>()?,
        )),
        _ => None,
    };
    if args.partial && hosts.len() < 2 && label.is_none() {
        return Err(BadInput::msg(
            "--partial is for a group of hosts; nothing written",
        ));
    }
    let (cfg, store) = conn.connect().await?;
    opts.debug_connection(&cfg, &store);
    let mut writer = writer("confctl", &cfg, &store, guard, &opts.reason)?;
    // The hosts a label selects (all of them: a rack), after the ones named.
    let mut hosts = hosts;
    let mut labelled = BTreeSet::new();
    let mut known_labels = None;
    if let Some((sel, dc)) = &label {
        let (found, all) = labelled_hosts(&store, sel, dc).await?;
        for n in found {
            if !hosts.iter().any(|v| v[0] == n) {
                labelled.insert(n.clone());
                hosts.push(vec![n]);
            }
        }
        known_labels = Some(all);
    }
    if policy.uses_labels() && known_labels.is_none() {
        known_labels = Some(store.labels(None).await?);
    }
    // Hosts the policy gives to a command or a person are not conftool's to change.
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for names in hosts {
        let labels = labels_of(known_labels.as_ref(), &names[0]);
        match policy.mechanism(&names[0], &labels) {
            Mechanism::Conftool => ours.push(names),
            m => theirs.push(PolicyHost {
                host: names[0].clone(),
                mechanism: m.clone(),
            }),
        }
    }
    let group = named && (ours.len() + theirs.len() > 1 || label.is_some());
    let plan = writer
        .plan_hosts(verb, &ours, service.as_ref(), args.partial)
        .await?;
    // A host named that is in no pool is a mistake; one a label brings in is listed.
    let missing: Vec<&NodeName> = plan
        .not_found
        .iter()
        .filter(|h| !labelled.contains(*h))
        .collect();
    if !missing.is_empty() && named {
        let names: Vec<String> = missing.iter().map(ToString::to_string).collect();
        let what = match &service {
            Some(s) => format!("service {s}"),
            None => "any pool".into(),
        };
        let (noun, verb) = if names.len() == 1 {
            ("node", "is")
        } else {
            ("nodes", "are")
        };
        return Err(BadInput::msg(format!(
            "{noun} {} {verb} not in {what}; nothing written",
            names.join(", ")
        )));
    }
    if !plan.not_found.is_empty() && !named {
        // This machine, by its FQDN and its short name: neither is in a pool.
        let names: Vec<String> = ours
            .first()
            .map(|v| v.iter().map(ToString::to_string).collect())
            .unwrap_or_default();
        let first = names.first().cloned().unwrap_or_default();
        let alt = if names.len() > 1 {
            format!(" (or {})", names[1..].join(", "))
        } else {
            String::new()
        };
        let what = match &service {
            Some(s) => format!("service {s}"),
            None => "any pool".into(),
        };
        return Err(BadInput::msg(format!(
            "node {first}{alt} is not in {what}; nothing written"
        )));
    }
    // What --verify will ask the load balancers, checked before anything is written.
    let targets = if args.verify.verify {
        let t = super::verify::targets(&plan);
        super::verify::check(&store, &cfg, &t).await?;
        t
    } else {
        Vec::new()
    };
    if args.dry_run {
        group_report::dry_run(opts, &plan, &theirs);
        return Ok(crate::exit::OK);
    }
    if plan.refused() {
        // Refused before an operation is opened or a command run.
        return failure(conftool_core::ApplyError {
            applied: Vec::new(),
            error: conftool_core::Refusal::BelowThreshold(plan.below.clone()).into(),
        })
        .report(&opts.out, None);
    }
    let changes = plan.changes();
    let record = (args.operation || (group && verb != HostVerb::Pool))
        && (!changes.is_empty() || !theirs.is_empty());
    if record {
        let subject: Vec<String> = label
            .iter()
            .map(|(sel, dc)| format!("{sel}@{dc}"))
            .chain(plan.hosts.iter().map(|h| h.host.to_string()))
            .chain(theirs.iter().map(|t| t.host.to_string()))
            .collect();
        writer.open_operation(verb.as_str(), subject).await?;
    }
    group_report::skipped(opts, &plan);
    let landed = match writer.apply_hosts(&plan).await {
        Ok(applied) => Landed {
            applied,
            error: None,
        },
        Err(e) => failure(e),
    };
    let conftool_failed = landed.error.is_some();
    // The policy's hosts: only when conftool's part went through.
    let outcomes = if conftool_failed {
        Vec::new()
    } else {
        policy_run::run_all(&mut writer, verb, &theirs).await
    };
    let op = writer.operation_record().map(|r| r.id.clone());
    let json = opts
        .json
        .then(|| group_report::json(&plan, &outcomes, op.as_ref()));
    if changes.is_empty() && theirs.is_empty() && !conftool_failed {
        opts.out.info("Nothing to change.");
    }
    let code = landed.report(&opts.out, json)?;
    group_report::after(opts, &plan, &outcomes, op.as_ref());
    if outcomes.iter().any(|o| o.failed()) {
        return Ok(crate::exit::FAILURE);
    }
    if args.verify.verify && code == crate::exit::OK {
        return super::verify::run(&opts.out, &cfg, &targets, &args.verify).await;
    }
    Ok(code)
}
