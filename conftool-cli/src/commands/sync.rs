//! `conftool-sync`: make etcd match a data directory.

use std::path::{Path, PathBuf};

use clap::Parser;
use conftool_core::escape_controls;
use conftool_sync::{
    apply, load_capped, read_dir_capped, read_git_capped, read_schema_noted_as, Caps, Limits,
    DEFAULT_SCHEMA,
};
use conftool_trust::{Origin, Privilege};

use crate::commands::changes::writer;
use crate::connection::ConnArgs;
use crate::exit::{OK, PENDING};
use crate::output::{warn, Printer};
use crate::size::Size;
use conftool_core::Overrides;

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
  conftool-sync --directory conf --schema schema.yaml  # also the schema's object types\n  \
  conftool-sync --directory conf --endpoints http://127.0.0.1:2379\n\n\
Exit codes: 0 done (or nothing to do), 1 runtime failure, 2 bad input or refused by a\n\
safety limit (nothing written), 3 changes pending (--check).\n\
Shell completions and a man page: conftool-sync --completions bash|zsh|fish, conftool-sync --man."
)]
pub struct SyncArgs {
    /// The data directory (services.yaml and DC/pools.yaml, or the Python tool's node/).
    #[arg(long, short = 'd', value_name = "DIR")]
    pub directory: PathBuf,

    /// Print the plan as a diff and write nothing.
    #[arg(long, conflicts_with = "check")]
    pub dry_run: bool,

    /// Print the plan and exit 3 if there are changes pending (0 if none); write nothing.
    #[arg(long)]
    pub check: bool,

    /// The Python conftool's schema file: its object types are synced from DIR/<type>/*.yaml
    /// too. Default: /etc/conftool/schema.yaml if it exists (as the Python tool), else pool
    /// objects only.
    #[arg(long, value_name = "FILE")]
    pub schema: Option<PathBuf>,

    /// Read the directory as committed at this git revision, ignoring the working tree.
    #[arg(long, value_name = "REV")]
    pub git_rev: Option<String>,

    /// Refuse runs that delete more than this share (0..=1) of the existing objects, or of
    /// the existing service definitions.
    #[arg(long, default_value_t = Limits::default().max_delete_share, value_parser = parse_share, value_name = "SHARE")]
    pub max_delete_share: f64,

    /// Allow deleting objects that are pooled=yes (serving traffic).
    #[arg(long)]
    pub allow_delete_pooled: bool,

    /// The most bytes of data files read, all together (e.g. 512KiB, 16MiB): a file that
    /// would pass it is refused before it is read, nothing parsed. Parsing YAML takes up to
    /// ~120 times its size in memory; the default keeps a run under 500 MB.
    #[arg(long, default_value_t = Size(Caps::DEFAULT_MAX_BYTES), value_name = "SIZE")]
    pub max_input_bytes: Size,

    /// The most objects the directory may declare (pool objects and schema-declared types
    /// together): reading stops at the first one past it.
    #[arg(long, default_value_t = Caps::DEFAULT_MAX_OBJECTS, value_name = "N",
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_objects: usize,

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

fn parse_share(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("{s:?} is not a share between 0 and 1 (e.g. 0.25)")),
    }
}

/// Run `conftool-sync`.
pub async fn run(args: SyncArgs) -> anyhow::Result<u8> {
    let out = Printer::new(args.quiet.quiet);
    // The caller's schema (for another user, one they could read) or the system's.
    let privilege = Privilege::current();
    let schema_path = match &args.schema {
        Some(path) => Some((path.as_path(), Origin::Caller)),
        None if Path::new(DEFAULT_SCHEMA).is_file() => {
            Some((Path::new(DEFAULT_SCHEMA), Origin::System))
        }
        None => None,
    };
    let schema = match schema_path {
        Some((path, origin)) => {
            let (schema, notes) = read_schema_noted_as(path, &privilege, origin)?;
            // What the schema says that is read as the Python tool reads it but may not be
            // what was meant (a key it ignores, an unknown $schema): said even with --quiet,
            // as the data directory's entries that are not read are.
            for n in notes {
                warn("conftool-sync", escape_controls(&n));
            }
            Some(schema)
        }
        None => None,
    };
    let types: Vec<String> = schema
        .iter()
        .flat_map(|s| s.types.iter().map(|t| t.name.clone()))
        .collect();
    let caps = Caps {
        max_bytes: args.max_input_bytes.0,
        max_objects: args.max_objects,
    };
    let files = match &args.git_rev {
        Some(rev) => read_git_capped(&args.directory, rev, &types, &caps)?,
        None => read_dir_capped(&args.directory, &types, &caps)?,
    };
    // Entries not read: said even with --quiet (they may be data someone meant to sync).
    // Their names come from the checkout: shown with control characters escaped.
    for w in &files.warnings {
        warn(
            "conftool-sync",
            format!(
                "{}: {}",
                escape_controls(&w.path.to_string_lossy()),
                w.reason
            ),
        );
    }
    let desired = load_capped(&files, schema.as_ref(), &caps)?;
    // The text is not needed past this point: not held while etcd is read and written.
    drop(files);
    let limits = Limits {
        max_delete_share: args.max_delete_share,
        allow_delete_pooled: args.allow_delete_pooled,
    };
    let (cfg, store) = args.conn.connect().await?;
    let plan = apply::plan_against(&store, &desired).await?;

    let dir = escape_controls(&args.directory.to_string_lossy()).into_owned();
    let source = match &desired.git_rev {
        Some(rev) => format!("{dir} at {rev}"),
        None => dir,
    };
    // New objects whose defaults their rule refuses are created as the Python tool creates
    // them; said even with --quiet, as their values must be set before consumers read them.
    for e in plan.typed.iter().flat_map(|t| &t.invalid) {
        warn(
            "conftool-sync",
            format!(
                "{e}: created with its fields' defaults, which this rule refuses; set its \
                 values with confctl"
            ),
        );
    }
    let etcd = format!("etcd {} (revision {})", store.endpoints(), plan.revision);
    out.diff_with(|w| plan.write_diff(store.keyspace(), &etcd, &source, w));
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
    // apply() checks the safety limits before every write round, and records intents in
    // the audit log before every commit; a log that cannot be opened stops it here.
    let mut writer = writer(
        "conftool-sync",
        &cfg,
        &store,
        Overrides::default(),
        &args.reason,
    )?;
    let done = match apply::apply(&mut writer, &desired, plan, &limits).await {
        Ok(done) => done,
        Err(e @ conftool_sync::Error::Stopped { .. }) => {
            // What landed is real, and audited; the error says what was kept.
            return Err(anyhow::Error::new(e).context("the sync stopped part-way"));
        }
        Err(e) => return Err(e.into()),
    };
    out.info(format!(
        "Synced {source}: {}; etcd revision {} ({} round{}).",
        done.summary(),
        done.revision,
        done.rounds,
        if done.rounds == 1 { "" } else { "s" }
    ));
    Ok(OK)
}
