//! `confctl select SELECTOR ACTION` on pool objects: node objects as a [`Kind`] of the one
//! flow (`pipeline.rs`), with their rules (depool thresholds, `inactive` objects left alone
//! by patterns) from the library's writer.

use clap::Args;
use conftool_core::{
    Action, Applied, Atomicity, Checked, Edit, Overrides, Selected, Selection, Selector, Store,
    Writer,
};
use serde_json::{json, Value};

use super::action_file;
use super::pipeline::{Act, Kind};
use crate::commands::changes::{
    applied_json, change_lines, check_rules, landed, nothing_written, Landed,
};
use crate::output::{object_json, write_get_line};

/// `confctl select SELECTOR ACTION`.
#[derive(Debug, Clone, Args)]
pub struct SelectArgs {
    /// The selector, e.g. 'dc=eqiad,cluster=appservers,name=mw10.*'.
    pub selector: String,
    /// The action: get | set/pooled=yes|no|inactive[:weight=N] | set/@FILE (a YAML file
    /// with pooled and/or weight) | delete.
    pub action: String,
    /// Do not ask for confirmation when a write matches more than one object.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Let a write by pattern (or without a name) change pooled=inactive objects, which it
    /// otherwise leaves alone. Not needed when the selector names one host exactly.
    #[arg(long)]
    pub include_inactive: bool,
    /// Write even if the change leaves a pool with fewer pooled nodes than its service's
    /// depool_threshold allows (default 0.5 of the pool's nodes that are not inactive).
    #[arg(long)]
    pub allow_below_threshold: bool,
}

/// Pool objects (the built-in `node` type).
pub(super) struct Nodes;

impl Kind for Nodes {
    type Sel = Selector;
    type Selection = Selection;
    type Object = Selected;
    type Edit = Edit;
    type Change = conftool_core::Change;
    type Landed = Applied;
    type Checked = Checked;

    fn objects(&self) -> String {
        "objects".into()
    }

    fn selector(&self, input: &str) -> anyhow::Result<Selector> {
        Ok(input.parse()?)
    }

    fn action(&self, input: &str) -> anyhow::Result<(Act<Edit>, String)> {
        let action = action_file::parse(input)?;
        let act = match action {
            Action::Get => Act::Get,
            Action::Set(fields) => Act::Edit(Edit::Set(fields)),
            Action::Delete => Act::Edit(Edit::Delete),
        };
        Ok((act, action.to_string()))
    }

    fn check_overrides(&self, _: Overrides) -> anyhow::Result<()> {
        Ok(())
    }

    async fn select(
        &self,
        store: &Store,
        sel: &Selector,
    ) -> Result<Selection, conftool_core::Error> {
        store.select(sel).await
    }

    fn prefix(&self, store: &Store, sel: &Selector) -> String {
        sel.prefix(store.keyspace())
    }

    fn revision(selection: &Selection) -> i64 {
        selection.revision
    }

    fn selected(selection: &Selection) -> &[Selected] {
        &selection.objects
    }

    fn malformed(selection: &Selection) -> &[(String, String)] {
        &selection.malformed
    }

    fn malformed_warning(&self, key: &str, why: &str) -> String {
        format!("{key}: {why}")
    }

    fn name(o: &Selected) -> &str {
        o.key.node.as_str()
    }

    fn write_line(&self, out: &mut dyn std::fmt::Write, o: &Selected) -> std::fmt::Result {
        write_get_line(out, &o.key, &o.state)
    }

    /// The Python tool's `Entity.asdict()`: `{NAME: VALUE, "tags": "dc=..,cluster=..,service=.."}`.
    fn as_dict(&self, o: &Selected) -> Value {
        json!({
            o.key.node.as_str(): self.stored(o),
            "tags": o.key.tags().to_string(),
        })
    }

    /// `pooled`, `weight` and any fields we do not know.
    fn stored(&self, o: &Selected) -> Value {
        serde_json::to_value(&o.state).unwrap_or(Value::Null)
    }

    fn get_json(&self, sel: &Selector, selection: &Selection) -> Value {
        let objects: Vec<_> = selection
            .objects
            .iter()
            .map(|o| object_json(&o.key, &o.state))
            .collect();
        json!({
            "selector": sel.to_string(),
            "revision": selection.revision,
            "objects": objects,
        })
    }

    fn plan(
        &self,
        writer: &Writer<'_>,
        sel: &Selector,
        selection: &Selection,
        edit: &Edit,
    ) -> anyhow::Result<(Vec<conftool_core::Change>, Vec<String>)> {
        let planned = writer
            .changes(sel, selection, |_| Some(*edit))
            .map_err(nothing_written)?;
        let left_alone = planned.left_alone.iter().map(ToString::to_string).collect();
        Ok((planned.changes, left_alone))
    }

    async fn check(
        &self,
        writer: &Writer<'_>,
        sel: &Selector,
        selection: &Selection,
        changes: &[conftool_core::Change],
    ) -> anyhow::Result<Checked> {
        check_rules(writer, sel, selection, changes).await
    }

    fn change_lines(c: &conftool_core::Change) -> Vec<String> {
        change_lines(c)
    }

    async fn apply(
        &self,
        writer: &mut Writer<'_>,
        sel: &Selector,
        changes: Vec<conftool_core::Change>,
        edit: &Edit,
        checked: Checked,
    ) -> Landed {
        let edit = *edit;
        let written = writer
            .apply_checked(
                sel,
                changes,
                move |_| Some(edit),
                Atomicity::Batched,
                checked,
            )
            .await;
        landed(written)
    }

    fn landed_lines(a: &Applied) -> Vec<String> {
        change_lines(&a.change)
    }

    fn landed_json(a: &Applied) -> Value {
        applied_json(a)
    }

    fn write_json(&self, sel: &Selector, action: &str, unchanged: usize) -> Value {
        json!({
            "selector": sel.to_string(),
            "action": action,
            "unchanged": unchanged,
        })
    }
}
