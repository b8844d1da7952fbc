//! What a YAML file that is not read was probably meant to be: the reason given for it, with
//! a "did you mean" where one is obvious.

use std::path::Path;

use super::rules::Ctx;
use super::{NODE_DIR, POOLS_FILE};
use crate::labels::LABELS_DIR;
use crate::load::SERVICES_FILE;

/// Whether `name` is at most two edits from `target`, ignoring case: worth a "did you mean".
pub(super) fn close_to(name: &str, target: &str) -> bool {
    let a: Vec<char> = name.to_lowercase().chars().collect();
    let b: Vec<char> = target.chars().collect();
    // Levenshtein distance, one row at a time.
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (row[j + 1] + 1)
                .min(row[j] + 1)
                .min(diag + usize::from(ca != cb));
            diag = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()] <= 2
}

impl Ctx<'_> {
    /// Why a YAML file that is not read is an error, with a hint where one is obvious.
    pub(super) fn yaml_reason(&self, parts: &[String]) -> String {
        let name = parts.last().map_or("", String::as_str);
        let at_top = || {
            let dcs = if self.python {
                "node/<dc>.yaml"
            } else {
                "<dc>/pools.yaml"
            };
            format!(
                "YAML file not read: only {SERVICES_FILE} is read at the top of the data \
                 directory (datacenters are in {dcs})"
            )
        };
        match parts {
            [_] if close_to(name, SERVICES_FILE) && !self.has(Path::new(SERVICES_FILE)) => {
                format!("YAML file not read: did you mean {SERVICES_FILE}?")
            }
            [_] if close_to(name, POOLS_FILE) => format!(
                "YAML file not read: {POOLS_FILE} belongs in a datacenter's directory, \
                 <dc>/{POOLS_FILE}"
            ),
            [_] => at_top(),
            [t, _] if self.types.contains(t) => {
                format!("YAML file not read: only <name>.yaml files are read in {t}/")
            }
            [n, _] if n == NODE_DIR => {
                let lower = name.to_ascii_lowercase();
                let cut = if lower.ends_with(".yaml") { 5 } else { 4 };
                let stem = &name[..name.len() - cut];
                format!(
                    "YAML file not read: did you mean {stem}.yaml? (only node/<dc>.yaml files \
                     are read)"
                )
            }
            [l, _] if l == LABELS_DIR && self.python => {
                let lower = name.to_ascii_lowercase();
                let cut = if lower.ends_with(".yaml") { 5 } else { 4 };
                let stem = &name[..name.len() - cut];
                format!(
                    "YAML file not read: did you mean {stem}.yaml? (only labels/<dc>.yaml files \
                     are read)"
                )
            }
            [l, _] if l == LABELS_DIR && !self.has(&Path::new(l).join(POOLS_FILE)) => format!(
                "YAML file not read: labels/<dc>.yaml is the Python conftool layout's (beside \
                 node/<dc>.yaml); with <dc>/{POOLS_FILE}, a node's labels are in its entry: \
                 `mw1018: {{services: [apache], labels: {{rack: B4}}}}`"
            ),
            [dc, _] => {
                let has_pools = self.has(&Path::new(dc).join(POOLS_FILE));
                if close_to(name, POOLS_FILE) && !has_pools {
                    format!("YAML file not read: did you mean {POOLS_FILE}?")
                } else {
                    format!(
                        "YAML file not read: only {POOLS_FILE} is read in a datacenter's \
                         directory"
                    )
                }
            }
            [n, ..] if n == NODE_DIR => {
                "YAML file not read: only the files directly in node/ are read".into()
            }
            [l, ..] if l == LABELS_DIR && self.python => {
                "YAML file not read: only the files directly in labels/ are read".into()
            }
            [t, ..] if self.types.contains(t) => {
                format!("YAML file not read: only the .yaml files directly in {t}/ are read")
            }
            _ => format!(
                "YAML file not read: only <dc>/{POOLS_FILE} is read, not the files in a \
                 datacenter's subdirectories"
            ),
        }
    }
}
