//! `confctl --object-type TYPE upgrade-schema [--dry-run] [--force]`, also spelled as the
//! Python tool's `confctl upgrade-schema [--dry-run] [--force] TYPE`: after a schema change
//! (a field added), give every object of TYPE the fields it lacks, with their defaults.
//!
//! One range read of the type's keys; every object is checked as stored (with the added
//! defaults) the way a `set` checks what it writes. Objects that fail are listed
//! (`TYPE tags/name: field F: why`) and then nothing is written (exit 2), unless `--force`:
//! then the valid objects are upgraded and the invalid ones are left untouched, never reset
//! to defaults (which the Python tool does on write). `--dry-run` prints what would be added
//! and writes nothing. Objects that lack no field are not rewritten, so a second run writes
//! nothing. Writes go through the audited path, compare-and-swap guarded, batched.

use clap::Args;
use conftool_core::schema::{ObjectType, TypeSelector, TypedSelection, UpgradePlan};
use conftool_core::{escape_controls, Overrides};
use serde_json::json;

use super::Opts;
use crate::commands::changes::writer;
use crate::connection::ConnArgs;
use crate::exit::{BadInput, OK};
use crate::output::{stderr_line, warn};

/// `confctl upgrade-schema [--dry-run] [--force] [TYPE]`.
#[derive(Debug, Clone, Args)]
pub struct UpgradeArgs {
    /// Write nothing: list invalid objects and show the fields each object would get.
    #[arg(long)]
    pub dry_run: bool,
    /// Upgrade the valid objects even if some objects do not validate (those are listed and
    /// left untouched).
    #[arg(long)]
    pub force: bool,
    /// The object type to upgrade (the Python tool's spelling); the same as --object-type.
    #[arg(value_name = "TYPE")]
    pub to_upgrade: Option<String>,
}

impl UpgradeArgs {
    /// The type to upgrade: TYPE, or `--object-type`; never `node`, which has no schema.
    pub(super) fn type_name<'a>(&'a self, object_type: &'a str) -> anyhow::Result<&'a str> {
        let node = conftool_core::schema::NODE_TYPE;
        let name = match self.to_upgrade.as_deref() {
            Some(t) if object_type != node && object_type != t => {
                return Err(BadInput::msg(format!(
                    "upgrade-schema {t:?} and --object-type {object_type:?} name different \
                     types; nothing written"
                )))
            }
            Some(t) => t,
            None => object_type,
        };
        if name == node {
            return Err(BadInput::msg(
                "upgrade-schema needs a type of the schema file (confctl upgrade-schema TYPE, or \
                 --object-type TYPE upgrade-schema); node objects have no schema to upgrade; \
                 nothing written",
            ));
        }
        Ok(name)
    }
}

/// Objects that do not validate (or hold malformed values) are said on stderr, one line
/// each; then, unless `--dry-run` or `--force`, refused: bad input, nothing written. Their
/// count.
fn refuse_invalid(
    ty: &ObjectType,
    args: &UpgradeArgs,
    plan: &UpgradePlan,
    selection: &TypedSelection,
) -> anyhow::Result<usize> {
    let refused = plan.invalid.len() + selection.malformed.len();
    if refused > 0 {
        stderr_line(&format!(
            "confctl: {refused} {} objects do not validate against the schema:",
            ty.name
        ));
        for e in &plan.invalid {
            stderr_line(&format!("  {}", escape_controls(&e.to_string())));
        }
        for (key, why) in &selection.malformed {
            stderr_line(&format!(
                "  {}: malformed value: {why}",
                escape_controls(key)
            ));
        }
        if !args.dry_run && !args.force {
            return Err(BadInput::msg(format!(
                "{refused} {} objects do not validate; nothing written (--dry-run shows \
                 what would change; --force upgrades the valid objects and leaves these \
                 untouched)",
                ty.name
            )));
        }
        if args.force && !args.dry_run {
            warn(
                "confctl",
                format!("--force: the {refused} invalid objects are left untouched"),
            );
        }
    }
    Ok(refused)
}

/// Run `upgrade-schema` on `ty`.
pub(super) async fn run(
    conn: &ConnArgs,
    opts: &Opts,
    ty: &ObjectType,
    args: &UpgradeArgs,
) -> anyhow::Result<u8> {
    let (cfg, store) = conn.connect().await?;
    opts.debug_connection(&cfg, &store);
    let selection = store.select_typed(ty, &TypeSelector::any()).await?;
    let plan = selection.upgrade(ty);
    opts.debug(|| {
        format!(
            "{}: read {} at revision {}: {} objects to upgrade, {} complete, {} invalid, {} \
             malformed",
            ty.name,
            ty.prefix(store.keyspace()),
            selection.revision,
            plan.upgrades.len(),
            plan.complete,
            plan.invalid.len(),
            selection.malformed.len()
        )
    });
    let refused = refuse_invalid(ty, args, &plan, &selection)?;
    let invalid: Vec<String> = plan
        .invalid
        .iter()
        .map(ToString::to_string)
        .chain(
            selection
                .malformed
                .iter()
                .map(|(k, why)| format!("{k}: {why}")),
        )
        .collect();
    if args.dry_run || plan.upgrades.is_empty() {
        if opts.json {
            let upgrades: Vec<_> = plan
                .upgrades
                .iter()
                .map(|u| json!({"key": u.change.key, "added": u.added.iter().cloned().collect::<serde_json::Map<_, _>>()}))
                .collect();
            opts.out.line(
                json!({"object_type": ty.name, "dry_run": args.dry_run,
                       "upgrades": upgrades, "complete": plan.complete, "invalid": invalid})
                .to_string(),
            );
        } else {
            for u in &plan.upgrades {
                for l in u.lines(ty) {
                    opts.out.line(escape_controls(&l));
                }
            }
        }
        opts.out.info(format!(
            "{}{} objects of {} to upgrade, {} complete, {} invalid; nothing written.",
            if args.dry_run { "Dry run: " } else { "" },
            plan.upgrades.len(),
            ty.name,
            plan.complete,
            refused
        ));
        return Ok(OK);
    }
    let mut writer = writer("confctl", &cfg, &store, Overrides::default(), &opts.reason)?;
    let added: std::collections::BTreeMap<String, Vec<String>> = plan
        .upgrades
        .iter()
        .map(|u| (u.change.key.clone(), u.lines(ty)))
        .collect();
    let result = writer.apply_upgrade(ty, plan.upgrades).await;
    let (applied, error) = match result {
        Ok(a) => (a, None),
        Err(e) => (e.applied, Some(e.error)),
    };
    if opts.json {
        let upgraded: Vec<_> = applied
            .iter()
            .map(|(c, rev)| json!({"key": c.key, "after": c.new.as_ref().map(|f| f.iter().cloned().collect::<serde_json::Map<_, _>>()), "revision": rev}))
            .collect();
        let mut doc = json!({"object_type": ty.name, "dry_run": false, "upgraded": upgraded,
                             "complete": plan.complete, "invalid": invalid});
        if let Some(e) = &error {
            doc["error"] = json!(format!("{e:#}"));
        }
        opts.out.line(doc.to_string());
    } else {
        for (c, _) in &applied {
            for l in added.get(&c.key).into_iter().flatten() {
                opts.out.line(escape_controls(l));
            }
        }
    }
    match error {
        Some(e) => Err(e.into()),
        None => Ok(OK),
    }
}
