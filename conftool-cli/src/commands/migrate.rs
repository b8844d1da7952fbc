//! `conftool-migrate`: copy a Python deployment's live state from etcd v2 into v3.

use conftool_core::Classify as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use conftool_core::config::parse_duration;
use conftool_core::{escape_controls, BatchLimits, Overrides, Store};
use conftool_migrate::migrate::{self, MigrationPlan, Overwrite, SkipReason};
use conftool_migrate::v2::{self, V2Read, V2Source};

use crate::commands::changes::writer;
use crate::connection::ConnArgs;
use crate::exit::{BadInput, OK, PENDING};
use crate::output::{warn, Printer};
use crate::size::Size;

const PROG: &str = "conftool-migrate";

/// How many keys of a kind a warning names before it only counts the rest.
const NAMED: usize = 10;

/// Copy the keyspace of a Python conftool deployment (etcd v2, read over HTTP) into etcd v3,
/// values byte for byte.
///
/// Dry run by default: prints what would be written as a diff (v3 as it is, v2 as it would
/// be copied) and a summary. With --apply, writes in compare-and-swap guarded transactions
/// (create if absent; replace only if unchanged since read), then re-reads both sides and
/// compares them. Keys whose v3 value differs are refused (nothing written) unless
/// --overwrite-differing; keys only v3 has are reported, never deleted. Directories, values
/// that are not JSON, keys with a TTL and keys with a '.', '..' or empty segment or a
/// control character are not copied (and are reported, escaped). An answer larger than
/// --v2-max-bytes, holding more than --v2-max-keys keys, or listing a key twice is refused
/// (nothing written).
#[derive(Debug, Parser)]
#[command(
    name = "conftool-migrate",
    version,
    after_help = "Examples:\n  \
  conftool-migrate --from-v2 http://etcd1:2379                   # dry run: the diff and a summary\n  \
  conftool-migrate --from-v2 http://etcd1:2379 --check           # exit 3 if anything is left to copy\n  \
  conftool-migrate --from-v2 http://etcd1:2379 --apply -r T1234  # copy, then verify\n  \
  conftool-migrate --from-v2 http://etcd1:2379,http://etcd2:2379  # the next one if etcd1 is down\n  \
  conftool-migrate --from-v2 https://etcd1:2379 --v2-ca /etc/ssl/certs/Puppet_Internal_CA.pem \\\n      \
  --v2-username root --v2-password-file /root/.etcd-v2-password --apply\n\n\
Exit codes: 0 done (or nothing to do), 1 runtime failure (including a failed verification),\n\
2 bad input or refused (keys differ without --overwrite-differing; nothing written),\n\
3 changes pending (--check).\n\
Shell completions and a man page: conftool-migrate --completions bash|zsh|fish, conftool-migrate --man."
)]
pub struct MigrateArgs {
    /// The v2 source: http://HOST:PORT or https://HOST:PORT of etcd members of one cluster,
    /// comma-separated; tried in order, the next one when one cannot be reached, does not
    /// answer within --v2-timeout or answers with a server error.
    #[arg(
        long,
        value_name = "URL[,URL...]",
        value_delimiter = ',',
        required = true
    )]
    pub from_v2: Vec<String>,

    /// The subtree to copy, the same key strings in v2 and v3 (the Python tool's namespace).
    #[arg(long, default_value = "/conftool", value_name = "PREFIX")]
    pub prefix: String,

    /// Write (without it: a dry run).
    #[arg(long, conflicts_with = "check")]
    pub apply: bool,

    /// Print the plan and exit 3 if anything is left to copy (0 if nothing); write nothing.
    #[arg(long)]
    pub check: bool,

    /// Replace v3 values that differ from v2's (otherwise the run is refused).
    #[arg(long)]
    pub overwrite_differing: bool,

    /// CA bundle to check an https:// v2 source against [default: the system bundle].
    #[arg(long, value_name = "FILE")]
    pub v2_ca: Option<PathBuf>,

    /// Client certificate (PEM) for an https:// v2 source that requires one.
    #[arg(long, value_name = "FILE", requires = "v2_key")]
    pub v2_cert: Option<PathBuf>,

    /// The client certificate's private key (PEM).
    #[arg(long, value_name = "FILE", requires = "v2_cert")]
    pub v2_key: Option<PathBuf>,

    /// v2 basic-auth user (etcd v2 auth).
    #[arg(long, value_name = "USER", requires = "v2_password_file")]
    pub v2_username: Option<String>,

    /// File holding the v2 user's password (its first line).
    #[arg(long, value_name = "FILE", requires = "v2_username")]
    pub v2_password_file: Option<PathBuf>,

    /// Send the v2 password over plain http:// (refused otherwise).
    #[arg(long, requires = "v2_username")]
    pub v2_allow_insecure_auth: bool,

    /// Time allowed for one read of the whole v2 subtree, per endpoint tried.
    #[arg(long, default_value = "60s", value_parser = parse_duration, value_name = "DURATION")]
    pub v2_timeout: Duration,

    /// The largest v2 answer read (e.g. 256MiB): a larger one is refused as soon as that
    /// much has arrived (or by its stated length), the rest not read, nothing written.
    #[arg(long, default_value_t = Size(v2::DEFAULT_MAX_BYTES), value_name = "SIZE")]
    pub v2_max_bytes: Size,

    /// The most v2 keys (values and directories) under --prefix: reading stops at the
    /// first one past it, nothing written.
    #[arg(long, default_value_t = v2::DEFAULT_MAX_KEYS, value_name = "N",
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub v2_max_keys: usize,

    /// Operations per v3 transaction (etcd's --max-txn-ops, 128 by default).
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u16).range(1..),
          value_name = "N")]
    pub max_txn_ops: u16,

    /// Quiet output.
    #[command(flatten)]
    pub quiet: crate::output::QuietArg,
    /// Why (for the audit trail).
    #[command(flatten)]
    pub reason: crate::commands::changes::ReasonArg,

    /// Connection settings (of etcd v3, the destination).
    #[command(flatten)]
    pub conn: ConnArgs,
}

/// A v2 error, with the exit code it deserves.
fn v2_error(e: v2::Error) -> anyhow::Error {
    if e.is_bad_input() {
        BadInput::msg(format!("{e}; nothing written"))
    } else {
        anyhow::Error::new(e).context("cannot read etcd v2; nothing written")
    }
}

/// Run `conftool-migrate`.
pub async fn run(args: MigrateArgs) -> anyhow::Result<u8> {
    let out = Printer::new(args.quiet.quiet);
    // Everything that can be checked without a network, first.
    for url in &args.from_v2 {
        v2::parse_url(url).map_err(v2_error)?;
    }
    v2::check_prefix(&args.prefix).map_err(v2_error)?;
    let source = V2Source {
        endpoints: args.from_v2.clone(),
        ca: args.v2_ca.clone(),
        cert: args.v2_cert.clone(),
        key: args.v2_key.clone(),
        username: args.v2_username.clone(),
        password_file: args.v2_password_file.clone(),
        timeout: args.v2_timeout,
        allow_insecure_auth: args.v2_allow_insecure_auth,
        max_bytes: args.v2_max_bytes.0,
        max_keys: args.v2_max_keys,
    };
    let cfg = args.conn.config()?;
    if cfg.namespace != args.prefix {
        warn(
            PROG,
            format!(
                "copying {p}; the v3 configuration's namespace is {ns:?}, so the tools using it \
                 read {ns}/v1, not {p}/v1",
                p = args.prefix,
                ns = cfg.namespace
            ),
        );
    }
    let v2_data = source.read(&args.prefix).await.map_err(v2_error)?;
    let store = Store::connect(&cfg).await?;
    let limits = BatchLimits {
        max_txn_ops: usize::from(args.max_txn_ops),
        ..*store.limits()
    };
    let store = store.with_limits(limits);
    let range = migrate::v3_prefix(&args.prefix);
    let v3 = store.read_prefix(&range).await?;
    let plan = migrate::plan(&v2_data, &v3);

    out.diff(&render_diff(&plan, &store, &v2_data.endpoint, &args.prefix));
    report_unmigrated(&plan);
    if !plan.pending() {
        out.info(format!(
            "Nothing to do: all {} values v2 holds under {} are in v3, byte for byte \
             (v3 revision {}).",
            plan.identical, args.prefix, plan.v3_revision
        ));
        return Ok(OK);
    }
    out.info(format!("Plan: {}.", plan.summary()));
    let overwrite = if args.overwrite_differing {
        Overwrite::Differing
    } else {
        Overwrite::Refuse
    };
    if overwrite == Overwrite::Refuse && !plan.differing.is_empty() {
        return Err(BadInput::msg(format!(
            "{} keys in v3 differ from v2 (shown above with - for v3 and + for v2); \
             nothing written (pass --overwrite-differing to replace them with v2's values)",
            plan.differing.len()
        )));
    }
    if !args.apply {
        out.info("Dry run: nothing written (pass --apply to write).");
        return Ok(if args.check { PENDING } else { OK });
    }

    let mut w = writer(PROG, &cfg, &store, Overrides::default(), &args.reason)?;
    let done = migrate::apply(&mut w, &args.prefix, &v2_data, plan, overwrite)
        .await
        .map_err(|e| match e {
            e if e.is_bad_input() => BadInput::msg(format!(
                "{e}; nothing written (pass --overwrite-differing to replace them)"
            )),
            e => anyhow::Error::new(e).context(
                "the migration stopped part-way (what landed is in v3 and the audit log); \
                 re-run to finish",
            ),
        })?;
    out.info(format!(
        "Wrote {} keys ({} created, {} overwritten) in {} round{}; v3 revision {}.",
        done.created + done.overwritten,
        done.created,
        done.overwritten,
        done.rounds,
        if done.rounds == 1 { "" } else { "s" },
        done.revision
    ));
    verify(&out, &source, &store, &args.prefix, &v2_data).await?;
    Ok(OK)
}

/// Re-read both sides and compare them; an error (exit 1) if they do not match.
async fn verify(
    out: &Printer,
    source: &V2Source,
    store: &Store,
    prefix: &str,
    before: &V2Read,
) -> anyhow::Result<()> {
    let v2_now = source
        .read(prefix)
        .await
        .context("verification: cannot re-read etcd v2")?;
    let v3_now = store
        .read_prefix(&migrate::v3_prefix(prefix))
        .await
        .context("verification: cannot re-read etcd v3")?;
    let v = migrate::verify(&v2_now, &v3_now);
    if !v.is_ok() {
        let example = |keys: &[String]| {
            keys.first()
                .map(|k| format!(" (e.g. {})", escape_controls(k)))
                .unwrap_or_default()
        };
        let moved = if v2_now.entries != before.entries {
            "; v2 changed during the migration: freeze writers to v2 and re-run"
        } else {
            ""
        };
        anyhow::bail!(
            "verification failed: of {} v2 values, {} are identical in v3, {} are missing{}, \
             {} differ{}{moved}",
            v.v2_values,
            v.matched,
            v.missing.len(),
            example(&v.missing),
            v.differing.len(),
            example(&v.differing),
        );
    }
    out.info(format!(
        "Verified: all {} v2 values under {prefix} are in v3 byte for byte (v2 index {}, v3 \
         revision {}, {} v3 keys under {prefix}).",
        v.v2_values, v2_now.index, v3_now.revision, v.v3_keys
    ));
    Ok(())
}

/// The writes as a diff of v3 (as it is) against v2 (as it would be copied), in key order.
fn render_diff(plan: &MigrationPlan, store: &Store, url: &str, prefix: &str) -> String {
    if !plan.pending() {
        return String::new();
    }
    let mut lines: Vec<(&str, String)> = Vec::new();
    // Keys too come from v2: escaped like the values, so that none can forge a line.
    for (key, value) in &plan.create {
        lines.push((
            key,
            format!("+{} {}\n", escape_controls(key), escape_controls(value)),
        ));
    }
    for d in &plan.differing {
        lines.push((
            &d.key,
            format!(
                "-{k} {}\n+{k} {}\n",
                escape_controls(&d.v3),
                escape_controls(&d.v2),
                k = escape_controls(&d.key)
            ),
        ));
    }
    lines.sort();
    let mut text = format!(
        "--- etcd v3 {} (revision {})\n+++ etcd v2 {} {prefix} (index {})\n",
        escape_controls(store.endpoints()),
        plan.v3_revision,
        escape_controls(url),
        plan.v2_index
    );
    for (_, l) in lines {
        text.push_str(&l);
    }
    text
}

/// Warnings for what is not copied and what only v3 has (shown even with --quiet).
fn report_unmigrated(plan: &MigrationPlan) {
    let name = |keys: Vec<&str>, what: &str| {
        if keys.is_empty() {
            return;
        }
        let shown: Vec<String> = keys
            .iter()
            .take(NAMED)
            .map(|k| escape_controls(k).into_owned())
            .collect();
        let more = keys.len().saturating_sub(NAMED);
        let rest = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        warn(
            PROG,
            format!("{} {what}: {}{rest}", keys.len(), shown.join(", ")),
        );
    };
    let skipped = |want: fn(&SkipReason) -> bool| {
        plan.skipped
            .iter()
            .filter(|s| want(&s.reason))
            .map(|s| s.key.as_str())
            .collect::<Vec<_>>()
    };
    name(
        skipped(|r| *r == SkipReason::NotJson),
        "v2 values are not JSON and are not copied",
    );
    name(
        skipped(|r| matches!(r, SkipReason::Expiring { .. })),
        "v2 keys have a TTL (locks, leases) and are not copied",
    );
    name(
        skipped(|r| matches!(r, SkipReason::UnsafeKey(_))),
        "v2 keys have a '.', '..' or empty segment or a control character, which no conftool \
         tool writes, and are not copied",
    );
    name(
        plan.only_in_v3.iter().map(String::as_str).collect(),
        "keys are only in v3 (kept as they are)",
    );
}
