//! `confctl tags TAGS --action ACTION NAMEDEF [--action ACTION NAMEDEF ...]`: the Python
//! confctl's older mode (also spelled `confctl --tags TAGS ...`, as its scripts do).
//!
//! TAGS names one pool with every tag given literally (`dc=eqiad,cluster=appservers,
//! service=apache`); NAMEDEF picks objects in it: a node name, `re:REGEX` (matched at the
//! start of the name only, as Python's `re.match`: `re:mw10` selects `mw1018`), or `all`.
//! Each `--action` becomes a selector and goes through `select`'s path: the same output,
//! rules and audit trail. A write asks first as the Python tool's tags mode does: for `all`,
//! or a `re:` that picks at least half of the pool; never for a node's name (`--yes` skips
//! the question). Every TAGS and NAMEDEF is checked before etcd is
//! touched; the actions then run in order and stop at the first that fails.
//!
//! With `--object-type TYPE` (a schema type), TAGS gives every tag of that type literally
//! (`dc=eqiad,cluster=cache_text`; `''` for a type without tags, which the Python tool cannot
//! address in this mode), NAMEDEF is an object name, `re:REGEX` or `all`, and each action
//! runs as `confctl --object-type TYPE select` runs it, with the confirmation rule above.

use clap::Args;
use conftool_core::schema::{ObjectType, TypeSelector};
use conftool_core::{escape_controls, Config, Overrides, PoolKey, Selector};

use super::namedef::NameDef;
use super::pipeline::{execute, Act, Confirm, Kind, Request};
use super::select::Nodes;
use super::typed::Typed;
use super::Opts;
use crate::connection::ConnArgs;
use crate::exit::{BadInput, OK};

/// `confctl tags TAGS --action ACTION NAMEDEF ...`.
#[derive(Debug, Clone, Args)]
pub struct TagsArgs {
    /// The pool, every tag given literally: dc=DC,cluster=CLUSTER,service=SERVICE.
    pub taglist: String,
    /// ACTION (get | set/pooled=yes|no|inactive[:weight=N] | set/@FILE | delete) on NAMEDEF (a node
    /// name, re:REGEX matched at the start of names, or all). May be given several times;
    /// the actions run in order.
    #[arg(
        long,
        num_args = 2,
        value_names = ["ACTION", "NAMEDEF"],
        required = true,
        action = clap::ArgAction::Append
    )]
    pub action: Vec<String>,
    /// Do not ask for confirmation when a write reaches `all`, or at least half of the pool
    /// with `re:`.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Let `re:` or `all` put pooled=inactive objects back into service (pooled=yes). Not
    /// needed when NAMEDEF is a node name.
    #[arg(long)]
    pub include_inactive: bool,
    /// Write even if the change leaves a pool with fewer pooled nodes than its service's
    /// depool_threshold allows.
    #[arg(long)]
    pub allow_below_threshold: bool,
}

/// Parse TAGS: exactly `dc`, `cluster` and `service`, each once, with literal values that
/// are valid names. (The Python tool ignores tags it does not know and lets a repeated tag's
/// last value win; a typo there would act on a pool the user did not mean, so both are
/// refused here.)
fn parse_tags(input: &str) -> anyhow::Result<PoolKey> {
    let bad = |why: String| {
        BadInput::msg(format!(
            "invalid TAGS {:?}: {why}; expected dc=DC,cluster=CLUSTER,service=SERVICE",
            escape_controls(input)
        ))
    };
    let (mut dc, mut cluster, mut service) = (None, None, None);
    for part in input.split(',') {
        let Some((tag, value)) = part.split_once('=') else {
            return Err(bad(format!("{:?} is not tag=value", escape_controls(part))));
        };
        let slot = match tag.trim() {
            "dc" => &mut dc,
            "cluster" => &mut cluster,
            "service" => &mut service,
            other => {
                return Err(bad(format!(
                    "unknown tag {:?} (node objects have the tags dc, cluster and service)",
                    escape_controls(other)
                )))
            }
        };
        if slot.replace(value.trim()).is_some() {
            return Err(bad(format!("tag {} given twice", tag.trim())));
        }
    }
    let (Some(dc), Some(cluster), Some(service)) = (dc, cluster, service) else {
        let missing: Vec<&str> = [("dc", dc), ("cluster", cluster), ("service", service)]
            .iter()
            .filter(|(_, v)| v.is_none())
            .map(|(t, _)| *t)
            .collect();
        return Err(bad(format!("missing tag {}", missing.join(", "))));
    };
    let name_err = |e: conftool_core::NameError| bad(e.to_string());
    Ok(PoolKey {
        dc: dc.parse().map_err(name_err)?,
        cluster: cluster.parse().map_err(name_err)?,
        service: service.parse().map_err(name_err)?,
    })
}

/// One `--action ACTION NAMEDEF`, parsed, for objects of kind `K`.
struct Unit<K: Kind> {
    act: Act<K::Edit>,
    /// The action as messages show it.
    action: String,
    /// Every object under the pool's tags (counted for the confirmation rule).
    pool: K::Sel,
    /// The objects NAMEDEF picks.
    sel: K::Sel,
    namedef: NameDef,
    /// As given, for messages.
    given: String,
}

/// Run `confctl tags`, on node objects (`ty` is `None`) or on a schema type's objects.
pub(super) async fn run(
    conn: &ConnArgs,
    opts: &Opts,
    args: &TagsArgs,
    ty: Option<&ObjectType>,
) -> anyhow::Result<u8> {
    // Everything is parsed before etcd is touched: bad input writes nothing.
    match ty {
        None => run_units(&Nodes, conn, opts, args, node_units(args)?).await,
        Some(ty) => {
            let kind = Typed(ty);
            let units = typed_units(&kind, args)?;
            run_units(&kind, conn, opts, args, units).await
        }
    }
}

/// Run the actions in order, stopping at the first that fails.
async fn run_units<K: Kind>(
    kind: &K,
    conn: &ConnArgs,
    opts: &Opts,
    args: &TagsArgs,
    units: Vec<Unit<K>>,
) -> anyhow::Result<u8> {
    let overrides = Overrides {
        include_inactive: args.include_inactive,
        allow_below_threshold: args.allow_below_threshold,
    };
    let (cfg, store) = conn.connect().await?;
    opts.debug_connection(&cfg, &store);
    let total = units.len();
    for (i, unit) in units.iter().enumerate() {
        let code = run_unit(kind, &cfg, &store, opts, unit, overrides).await;
        let wrote_before = units[..i].iter().any(|u| u.act.writes());
        match code {
            Ok(OK) => {}
            Ok(code) => return Ok(code),
            // A later action's bad input is no longer "nothing written" once an earlier
            // action wrote: say what happened and make it a runtime failure (exit 1).
            Err(e) if wrote_before => {
                anyhow::bail!(
                    "{e:#} ({} of {total}; the actions before it were carried out)",
                    unit.given
                )
            }
            Err(e) if total > 1 => return Err(e.context(format!("{} of {total}", unit.given))),
            Err(e) => return Err(e),
        }
    }
    Ok(OK)
}

/// The `--action` pairs, each with what it was given as.
fn pairs(args: &TagsArgs) -> anyhow::Result<Vec<(&str, &str, String)>> {
    args.action
        .chunks(2)
        .map(|pair| match pair {
            [action, namedef] => Ok((
                action.as_str(),
                namedef.as_str(),
                format!("--action {action} {}", escape_controls(namedef)),
            )),
            _ => Err(BadInput::msg("--action takes two values: ACTION NAMEDEF")),
        })
        .collect()
}

fn node_units(args: &TagsArgs) -> anyhow::Result<Vec<Unit<Nodes>>> {
    let pool = parse_tags(&args.taglist)?;
    let whole = Selector::for_pool(&pool)?;
    let mut units = Vec::new();
    for (action, namedef, given) in pairs(args)? {
        let namedef = NameDef::parse_node(namedef)?;
        let (act, action) = Nodes.action(action)?;
        units.push(Unit {
            act,
            action,
            sel: namedef.selector(&pool)?,
            pool: whole.clone(),
            namedef,
            given,
        });
    }
    Ok(units)
}

fn typed_units<'t>(kind: &Typed<'t>, args: &TagsArgs) -> anyhow::Result<Vec<Unit<Typed<'t>>>> {
    let ty = kind.0;
    kind.check_overrides(Overrides {
        include_inactive: args.include_inactive,
        allow_below_threshold: args.allow_below_threshold,
    })?;
    let (_, pool) = TypeSelector::for_tags(&args.taglist, &ty.tags).map_err(|e| {
        BadInput::msg(format!(
            "invalid TAGS {:?} for object type {}: {e}; nothing written",
            escape_controls(&args.taglist),
            ty.name
        ))
    })?;
    let mut units = Vec::new();
    for (action, namedef, given) in pairs(args)? {
        let namedef = NameDef::parse(
            namedef,
            "an object name",
            conftool_core::schema::object::check_name,
        )?;
        let sel = namedef
            .typed_selector(&pool)
            .map_err(|e| BadInput::msg(format!("{given}: {e}; nothing written")))?;
        let (act, action) = kind.action(action)?;
        units.push(Unit {
            act,
            action,
            pool: pool.clone(),
            sel,
            namedef,
            given,
        });
    }
    Ok(units)
}

/// As the Python tool: a write asks first when it reaches `all`, or when a regex picks at
/// least half of the pool (counted by reading the pool, only then); a name never asks.
async fn run_unit<K: Kind>(
    kind: &K,
    cfg: &Config,
    store: &conftool_core::Store,
    opts: &Opts,
    unit: &Unit<K>,
    overrides: Overrides,
) -> anyhow::Result<u8> {
    let confirm = match &unit.namedef {
        _ if !unit.act.writes() => Confirm::Never,
        NameDef::Name(_) => Confirm::Never,
        NameDef::All => Confirm::Always,
        NameDef::Regex(_) => Confirm::AtLeastHalfOf {
            pool: K::selected(&kind.select(store, &unit.pool).await?).len(),
        },
    };
    let req = Request {
        sel: &unit.sel,
        act: &unit.act,
        action: &unit.action,
        overrides,
        get_style: unit.namedef.get_style(),
        confirm,
    };
    execute(kind, cfg, store, opts, req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_need_every_tag_once_with_a_valid_name() {
        let pool = parse_tags("dc=eqiad, cluster=appservers ,service=apache").unwrap();
        assert_eq!(
            (
                pool.dc.as_str(),
                pool.cluster.as_str(),
                pool.service.as_str()
            ),
            ("eqiad", "appservers", "apache")
        );
        let pool = parse_tags("service=apache,dc=eqiad,cluster=appservers").unwrap();
        assert_eq!(pool.service.as_str(), "apache");
        for (input, want) in [
            ("dc=eqiad,cluster=appservers", "missing tag service"),
            ("dc=eqiad", "missing tag cluster, service"),
            (
                "dc=eqiad,cluster=a,service=b,name=c",
                "unknown tag \"name\"",
            ),
            (
                "dc=eqiad,dc=codfw,cluster=a,service=b",
                "tag dc given twice",
            ),
            ("dc=eqiad,cluster=a,service=b,", "\"\" is not tag=value"),
            ("dc=eq.*,cluster=a,service=b", "invalid"),
            ("dc=eqiad,cluster=a/b,service=b", "invalid"),
            ("dc=,cluster=a,service=b", "invalid"),
            ("", "is not tag=value"),
        ] {
            let e = parse_tags(input).unwrap_err();
            assert!(e.downcast_ref::<BadInput>().is_some(), "{input}");
            assert!(format!("{e:#}").contains(want), "{input}: {e:#}");
        }
    }
}
