//! `conftool-sync`: make etcd match a data directory.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use conftool_core::{Actor, AuditLog};
use conftool_sync::{apply, load, read_dir, read_git, Limits, Written};

use crate::connection::ConnArgs;
use crate::exit::{OK, PENDING};
use crate::output::Printer;

/// Sync the static pool configuration of a data directory into etcd.
///
/// New objects are created with their service's default_values; objects still declared
/// keep their pooled/weight untouched; objects no longer declared are deleted; service
/// definitions are written as declared. A run with nothing to do writes nothing.
#[derive(Debug, Parser)]
#[command(
    name = "conftool-sync",
    version,
    after_help = "Examples:\n  \
  conftool-sync --directory conf --dry-run          # show the diff, write nothing\n  \
  conftool-sync --directory conf --check            # exit 3 if etcd differs from conf/\n  \
  conftool-sync --directory conf --git-rev HEAD     # sync conf/ as committed at HEAD\n  \
  conftool-sync --directory conf --endpoints http://127.0.0.1:2379\n\n\
Exit codes: 0 done (or nothing to do), 1 runtime failure, 2 bad input or refused by a\n\
safety limit (nothing written), 3 changes pending (--check)."
)]
pub struct SyncArgs {
    /// The data directory (services.yaml and <dc>/pools.yaml, or the Python tool's node/).
    #[arg(long, short = 'd', value_name = "DIR")]
    pub directory: PathBuf,

    /// Print the plan as a diff and write nothing.
    #[arg(long, conflicts_with = "check")]
    pub dry_run: bool,

    /// Print the plan and exit 3 if there are changes pending (0 if none); write nothing.
    #[arg(long)]
    pub check: bool,

    /// Read the directory as committed at this git revision, ignoring the working tree.
    #[arg(long, value_name = "REV")]
    pub git_rev: Option<String>,

    /// Refuse runs that delete more than this share (0..=1) of the existing objects.
    #[arg(long, default_value_t = Limits::default().max_delete_share, value_parser = parse_share, value_name = "SHARE")]
    pub max_delete_share: f64,

    /// Allow deleting objects that are pooled=yes (serving traffic).
    #[arg(long)]
    pub allow_delete_pooled: bool,

    /// Do not print the diff or progress; errors still go to stderr.
    #[arg(long, short = 'q')]
    pub quiet: bool,

    /// Connection settings.
    #[command(flatten)]
    pub conn: ConnArgs,
}

fn parse_share(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("{s:?} is not a share between 0 and 1 (e.g. 0.25)")),
    }
}

/// Run `conftool-sync`.
pub async fn run(args: SyncArgs) -> anyhow::Result<u8> {
    let out = Printer::new(args.quiet);
    let files = match &args.git_rev {
        Some(rev) => read_git(&args.directory, rev)?,
        None => read_dir(&args.directory)?,
    };
    // Entries not read: said even with --quiet (they may be data someone meant to sync).
    for w in &files.warnings {
        eprintln!("conftool-sync: warning: {}: {}", w.path.display(), w.reason);
    }
    let desired = load(&files)?;
    let limits = Limits {
        max_delete_share: args.max_delete_share,
        allow_delete_pooled: args.allow_delete_pooled,
    };
    let (cfg, store) = args.conn.connect().await?;
    let plan = apply::plan_against(&store, &desired).await?;

    let source = match &desired.git_rev {
        Some(rev) => format!("{} at {rev}", args.directory.display()),
        None => args.directory.display().to_string(),
    };
    if !args.quiet {
        let etcd = format!("etcd {} (revision {})", store.endpoints(), plan.revision);
        out.diff(&plan.render_diff(store.keyspace(), &etcd, &source));
    }
    if plan.writes_nothing() {
        out.info(format!(
            "Nothing to do: etcd matches {source} (revision {}).",
            plan.revision
        ));
        return Ok(OK);
    }
    out.info(format!("Plan: {}.", plan.summary()));
    if args.dry_run || args.check {
        // Report a refusal now rather than at the real run.
        plan.guard(&limits)?;
        out.info("Dry run: nothing written.");
        return Ok(if args.check { PENDING } else { OK });
    }
    // apply() checks the safety limits before every write round.
    let actor = Actor::from_env("conftool-sync", cfg.username.clone());
    let audit = AuditLog::from_config(cfg.audit_log.as_deref());
    let done = match apply::apply(&store, &desired, plan, &limits).await {
        Ok(done) => done,
        Err(conftool_sync::Error::Stopped { done, cause }) => {
            // What landed is real: audit it, then fail (the error says what was kept).
            let logged = record(&audit, &actor, &done.written);
            let stopped = conftool_sync::Error::Stopped { done, cause };
            let err = anyhow::Error::new(stopped).context("the sync stopped part-way");
            return Err(match logged {
                Ok(()) => err,
                Err(log) => err.context(format!("and the audit log failed: {log}")),
            });
        }
        Err(e) => return Err(e.into()),
    };
    record(&audit, &actor, &done.written)
        .context("the sync was written, but recording it in the audit log failed")?;
    out.info(format!(
        "Synced {source}: {}; etcd revision {} ({} round{}).",
        done.summary(),
        done.revision,
        done.rounds,
        if done.rounds == 1 { "" } else { "s" }
    ));
    Ok(OK)
}

/// Audit a sync's writes (parsing their values only when an audit log is configured).
fn record(
    audit: &AuditLog,
    actor: &Actor,
    written: &[Written],
) -> Result<(), conftool_core::Error> {
    if !audit.is_enabled() {
        return Ok(());
    }
    let entries: Vec<_> = written.iter().map(Written::audit_entry).collect();
    audit.record_entries(actor, &entries)
}
