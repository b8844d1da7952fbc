//! Rendering a [`Plan`] as a unified diff of the keyspace: `-` lines are keys as stored
//! now, `+` lines as they will be stored. Only keys the plan touches appear.

use conftool_core::Keyspace;
use similar::TextDiff;

use crate::plan::Plan;

impl Plan {
    /// The plan as a unified diff between etcd (`old_label`) and the directory
    /// (`new_label`). Empty when there is nothing to write.
    pub fn render_diff(&self, ks: &Keyspace, old_label: &str, new_label: &str) -> String {
        let mut old: Vec<(String, String)> = Vec::new();
        let mut new: Vec<(String, String)> = Vec::new();
        for s in &self.services {
            let key = ks.service_key(&s.key.0, &s.key.1);
            if let Some((_, v)) = &s.old {
                old.push((key.clone(), v.clone()));
            }
            if let Some(def) = &s.new {
                new.push((key, serde_json::to_string(def).unwrap_or_default()));
            }
        }
        for (key, state) in &self.create {
            new.push((ks.object_key(key), state.to_json()));
        }
        for d in &self.delete {
            old.push((ks.object_key(&d.key), d.old.clone()));
        }
        if let Some((value, _)) = &self.meta {
            new.push((ks.sync_meta_key(), value.clone()));
        }
        if old.is_empty() && new.is_empty() {
            return String::new();
        }
        let text = |mut v: Vec<(String, String)>| {
            v.sort();
            v.into_iter()
                .map(|(k, v)| format!("{k} {v}\n"))
                .collect::<String>()
        };
        let (old, new) = (text(old), text(new));
        TextDiff::from_lines(&old, &new)
            .unified_diff()
            .context_radius(0)
            .header(old_label, new_label)
            .to_string()
    }
}
