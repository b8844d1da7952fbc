//! One flow for every kind of object confctl selects: `select`, each `--action` of `tags`
//! and `get` run [`execute`] over pool objects (nodes, `select.rs`) and over the objects of
//! a schema type (`typed.rs`) alike. A [`Kind`] says how its objects are selected, shown,
//! planned and written (through the library's one audited write path); the rules of the
//! flow are written once, here:
//!
//! - everything is parsed before etcd is touched (bad input writes nothing);
//! - a selection is one range read; malformed values are warned about, and a write to a
//!   selection holding one is refused whole;
//! - a write that matches nothing is bad input; `--host` refuses a selection of several names;
//! - objects already in the requested state are not rewritten, and when nothing is left to
//!   write confctl says so;
//! - a write asks first as the [`Confirm`] rule says (unless `--yes`, or `--host`);
//! - what landed is printed (the Python tool's change lines, or one `--json` document), also
//!   when the write stopped part-way, and the error says what was kept.

use conftool_core::{escape_controls, Config, Overrides, Store, Writer};
use serde_json::{json, Value};

use super::get::{self, GetStyle};
use super::Opts;
use crate::commands::changes::{confirm, writer, Landed};
use crate::connection::ConnArgs;
use crate::exit::{BadInput, FAILURE, OK};
use crate::output::{stderr_line, warn};

/// What an action asks of a selection.
#[derive(Debug, Clone)]
pub(super) enum Act<E> {
    /// Print it.
    Get,
    /// Change each object so.
    Edit(E),
}

impl<E> Act<E> {
    /// Whether the action writes.
    pub(super) fn writes(&self) -> bool {
        matches!(self, Act::Edit(_))
    }
}

/// A kind of object: how its objects are selected, shown and changed.
pub(super) trait Kind {
    /// A selector of this kind's objects.
    type Sel: std::fmt::Display;
    /// What one read selected.
    type Selection;
    /// One selected object.
    type Object;
    /// What a write does to each object.
    type Edit;
    /// One object's change, planned.
    type Change;
    /// One change as it landed.
    type Landed;
    /// What [`Kind::check`] read, for [`Kind::apply`].
    type Checked;

    /// `objects`, or `TYPE objects`: what messages call them.
    fn objects(&self) -> String;
    /// Parse a selector (bad input, nothing written, when it is not one).
    fn selector(&self, input: &str) -> anyhow::Result<Self::Sel>;
    /// Parse an action; the action as messages and `--json` show it.
    fn action(&self, input: &str) -> anyhow::Result<(Act<Self::Edit>, String)>;
    /// Refuse flags that mean nothing for this kind (rather than ignoring them).
    fn check_overrides(&self, overrides: Overrides) -> anyhow::Result<()>;

    /// Read what `sel` selects: one range read.
    async fn select(
        &self,
        store: &Store,
        sel: &Self::Sel,
    ) -> Result<Self::Selection, conftool_core::Error>;
    /// The prefix that read covers (for `--debug`).
    fn prefix(&self, store: &Store, sel: &Self::Sel) -> String;
    /// The revision the selection was read at.
    fn revision(selection: &Self::Selection) -> i64;
    /// The objects selected.
    fn selected(selection: &Self::Selection) -> &[Self::Object];
    /// Selected keys whose values are malformed, each with why.
    fn malformed(selection: &Self::Selection) -> &[(String, String)];
    /// The warning for one malformed value.
    fn malformed_warning(&self, key: &str, why: &str) -> String;
    /// An object's name (`--host` checks that a selection has one).
    fn name(o: &Self::Object) -> &str;

    /// `get`: the Python tool's line for an object, written into `out` (no newline).
    fn write_line(&self, out: &mut dyn std::fmt::Write, o: &Self::Object) -> std::fmt::Result;
    /// `get --yaml`: the object as the Python tool's `asdict`.
    fn as_dict(&self, o: &Self::Object) -> Value;
    /// `get all`: the object's stored value.
    fn stored(&self, o: &Self::Object) -> Value;
    /// `get --json`: the whole selection.
    fn get_json(&self, sel: &Self::Sel, selection: &Self::Selection) -> Value;

    /// The changes `edit` makes to `selection` under `writer`'s rules, and the keys the
    /// rules leave alone; refused whole when the selection holds a malformed value.
    fn plan(
        &self,
        writer: &Writer<'_>,
        sel: &Self::Sel,
        selection: &Self::Selection,
        edit: &Self::Edit,
    ) -> anyhow::Result<(Vec<Self::Change>, Vec<String>)>;
    /// Refuse changes that break a rule before asking a person; what it read to judge them
    /// is handed to [`Kind::apply`], whose write judges its first round by it (atomically,
    /// at the revision read).
    async fn check(
        &self,
        writer: &Writer<'_>,
        sel: &Self::Sel,
        selection: &Self::Selection,
        changes: &[Self::Change],
    ) -> anyhow::Result<Self::Checked>;
    /// The Python tool's lines for a change.
    fn change_lines(c: &Self::Change) -> Vec<String>;
    /// Write `changes` through `writer`; what landed, also when it stopped part-way.
    async fn apply(
        &self,
        writer: &mut Writer<'_>,
        sel: &Self::Sel,
        changes: Vec<Self::Change>,
        edit: &Self::Edit,
        checked: Self::Checked,
    ) -> Landed<Self::Landed>;
    /// The Python tool's lines for a landed change.
    fn landed_lines(l: &Self::Landed) -> Vec<String>;
    /// A landed change in `--json`'s `changed` list.
    fn landed_json(l: &Self::Landed) -> Value;
    /// The `--json` document of a write, before its `changed` list is added.
    fn write_json(&self, sel: &Self::Sel, action: &str, unchanged: usize) -> Value;
}

/// One selection and what to do with it: `select`, or one `--action` of `tags`.
pub(super) struct Request<'a, K: Kind> {
    /// Which objects.
    pub sel: &'a K::Sel,
    /// What to do with them.
    pub act: &'a Act<K::Edit>,
    /// The action as messages show it.
    pub action: &'a str,
    /// The rules the user lifted.
    pub overrides: Overrides,
    /// How `get` prints them.
    pub get_style: GetStyle<'a>,
    /// When a write asks before going ahead (unless `--yes`).
    pub confirm: Confirm,
}

/// `confctl [--object-type TYPE] select SELECTOR ACTION`: parsed before etcd is touched.
pub(super) async fn select<K: Kind>(
    kind: &K,
    conn: &ConnArgs,
    opts: &Opts,
    args: &super::select::SelectArgs,
) -> anyhow::Result<u8> {
    let overrides = Overrides {
        include_inactive: args.include_inactive,
        allow_below_threshold: args.allow_below_threshold,
    };
    kind.check_overrides(overrides)?;
    let sel = kind.selector(&args.selector)?;
    let (act, action) = kind.action(&args.action)?;
    let (cfg, store) = conn.connect().await?;
    opts.debug_connection(&cfg, &store);
    let req = Request {
        sel: &sel,
        act: &act,
        action: &action,
        overrides,
        get_style: GetStyle::Lines,
        confirm: Confirm::WhenSeveral,
    };
    execute(kind, &cfg, &store, opts, req).await
}

/// Select, then print (`get`) or write through the one audited path, asking first as
/// `req.confirm` says (unless `--yes`, or `--host` and they are one host's).
pub(super) async fn execute<K: Kind>(
    kind: &K,
    cfg: &Config,
    store: &Store,
    opts: &Opts,
    req: Request<'_, K>,
) -> anyhow::Result<u8> {
    let Request {
        sel,
        act,
        action,
        overrides,
        get_style,
        confirm: asking,
    } = req;
    let selection = kind.select(store, sel).await?;
    let objects = K::selected(&selection);
    let malformed = K::malformed(&selection);
    opts.debug(|| {
        format!(
            "selector {sel}: read {} at revision {}: {} {} matched, {} malformed",
            kind.prefix(store, sel),
            K::revision(&selection),
            objects.len(),
            kind.objects(),
            malformed.len()
        )
    });
    for (key, why) in malformed {
        warn("confctl", kind.malformed_warning(key, why));
    }
    let edit = match act {
        Act::Get => {
            get::print(kind, opts, sel, &selection, get_style);
            return Ok(OK);
        }
        Act::Edit(e) => e,
    };
    if objects.is_empty() && malformed.is_empty() {
        return Err(BadInput::msg(format!(
            "selector {} matches no {}; nothing written",
            escape_controls(&sel.to_string()),
            kind.objects()
        )));
    }
    if opts.host {
        one_host(sel, objects.iter().map(K::name))?;
    }
    // The audit log is checked here, and the rules before asking anything.
    let mut writer = writer("confctl", cfg, store, overrides, &opts.reason)?;
    let (changes, left_alone) = kind.plan(&writer, sel, &selection, edit)?;
    for key in &left_alone {
        opts.out.info(format!(
            "{key}: left alone (pooled=inactive; name the host exactly or pass \
             --include-inactive to change it)"
        ));
    }
    let unchanged = objects.len() - changes.len();
    let checked = kind.check(&writer, sel, &selection, &changes).await?;
    if changes.is_empty() {
        opts.out.info(match left_alone.len() {
            0 => format!(
                "All {} selected objects are already in the requested state; nothing written.",
                objects.len()
            ),
            left => format!(
                "Nothing written: of {} selected objects, {left} are pooled=inactive (left \
                 alone) and the others are already in the requested state.",
                objects.len()
            ),
        });
        if opts.json {
            let mut doc = kind.write_json(sel, action, unchanged);
            doc["changed"] = json!([]);
            opts.out.line(doc.to_string());
        }
        return Ok(OK);
    }
    let lines = changes.iter().flat_map(K::change_lines);
    let what = format!("{} ", kind.objects());
    if !asking.go_ahead(opts, objects.len(), &what, sel, action, lines) {
        return Ok(FAILURE);
    }
    let json = opts.json.then(|| kind.write_json(sel, action, unchanged));
    kind.apply(&mut writer, sel, changes, edit, checked)
        .await
        .report_with(&opts.out, json, K::landed_lines, K::landed_json)
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

    /// The question before a write: unless `--yes`, or `--host` (which said, and
    /// [`one_host`] checked, that these are one host's objects), when this rule asks, the
    /// changes are listed on stderr and the user is asked. `false`: the user said no, and was
    /// told nothing was written.
    fn go_ahead(
        self,
        opts: &Opts,
        selected: usize,
        what: &str,
        sel: &dyn std::fmt::Display,
        action: &str,
        lines: impl IntoIterator<Item = String>,
    ) -> bool {
        if !self.asks(selected) || opts.yes || opts.host {
            return true;
        }
        stderr_line(&format!(
            "{selected} {what}selected by {}; {} changes:",
            escape_controls(&sel.to_string()),
            escape_controls(action)
        ));
        for l in lines {
            stderr_line(&format!("  {}", escape_controls(&l)));
        }
        if confirm("Ok to continue?") {
            return true;
        }
        stderr_line("confctl: aborted; nothing written.");
        false
    }
}

/// `--host`: the user says the write is about one host, so it goes ahead without asking
/// when every selected object has the same name, and is refused (bad input, nothing
/// written) when they do not: the selector is not what the user thinks it is. (The Python
/// tool asks as if `--host` were not given.) The rule is the library's
/// ([`conftool_core::one_host`]); nodes and schema objects alike.
fn one_host<'a>(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_python_tools_confirmation_rules() {
        assert!(!Confirm::WhenSeveral.asks(1));
        assert!(Confirm::WhenSeveral.asks(2));
        // At least half of the pool: 2 of 4 asks, 1 of 4 does not, 2 of 5 does not.
        assert!(Confirm::AtLeastHalfOf { pool: 4 }.asks(2));
        assert!(!Confirm::AtLeastHalfOf { pool: 4 }.asks(1));
        assert!(!Confirm::AtLeastHalfOf { pool: 5 }.asks(2));
        assert!(Confirm::AtLeastHalfOf { pool: 5 }.asks(3));
        assert!(Confirm::Always.asks(1));
        assert!(!Confirm::Never.asks(100));
    }

    #[test]
    fn host_refuses_a_selection_of_several_names_as_bad_input() {
        assert!(one_host(&"name=mw1", ["mw1", "mw1"]).is_ok());
        let e = one_host(&"name=mw1.*", ["mw1", "mw12"]).unwrap_err();
        assert!(e.downcast_ref::<BadInput>().is_some());
        let msg = format!("{e:#}");
        assert!(msg.starts_with("--host: selector name=mw1.*: "), "{msg}");
        assert!(msg.ends_with("; nothing written"), "{msg}");
    }
}
