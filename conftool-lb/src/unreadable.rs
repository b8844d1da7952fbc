//! What the agent says about the keys and values under a pool it cannot read: each one
//! once, not at every event, and again only if it went away and came back. Without this a
//! malformed value or a key with a bad node name was skipped in silence (the server stayed
//! as HAProxy had it, reported at most as `unknown_to_etcd`).

use std::collections::BTreeSet;

use conftool_core::{NodeName, Selection};

/// What was said about one pool's unreadable keys and values: (key, reason) pairs.
#[derive(Debug, Default)]
pub(crate) struct Said {
    said: BTreeSet<(String, String)>,
}

impl Said {
    /// The (key, reason) pairs of `view` (a pool's, whose keys start with `prefix`) not said
    /// yet. Those no longer in the view are forgotten, so one that comes back is said again.
    pub(crate) fn news(&mut self, prefix: &str, view: &Selection) -> Vec<(String, String)> {
        if view.malformed.is_empty() && view.unreadable.is_empty() && self.said.is_empty() {
            return Vec::new();
        }
        let now: BTreeSet<(String, String)> = view
            .malformed
            .iter()
            .cloned()
            .chain(
                view.unreadable
                    .iter()
                    .filter(|k| k.starts_with(prefix))
                    .map(|k| (k.clone(), key_reason(prefix, k))),
            )
            .collect();
        let news = now.difference(&self.said).cloned().collect();
        self.said = now;
        news
    }
}

/// Why a key under a pool's prefix is not one of its objects' keys.
fn key_reason(prefix: &str, key: &str) -> String {
    let rest = key.strip_prefix(prefix).unwrap_or(key);
    if rest.contains('/') {
        return format!("not an object key: a path below a node name (expected {prefix}<node>)");
    }
    match rest.parse::<NodeName>() {
        Err(e) => format!("not an object key: {e}"),
        // Not reached: a valid node name makes an object key.
        Ok(_) => "not an object key".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PREFIX: &str = "/v1/pools/eqiad/web/http/";

    fn view(malformed: &[(&str, &str)], unreadable: &[&str]) -> Selection {
        Selection {
            malformed: malformed
                .iter()
                .map(|(k, r)| (k.to_string(), r.to_string()))
                .collect(),
            unreadable: unreadable.iter().map(|k| k.to_string()).collect(),
            ..Selection::default()
        }
    }

    #[test]
    fn each_unreadable_key_or_value_is_said_once_and_again_when_it_comes_back() {
        let mut said = Said::default();
        assert!(said.news(PREFIX, &Selection::default()).is_empty());
        let bad_value = ("/v1/pools/eqiad/web/http/mw1", "malformed value: x");
        let bad_name = "/v1/pools/eqiad/web/http/mw 1\u{1b}[31m";
        let deeper = "/v1/pools/eqiad/web/http/mw2/x";
        let v = view(&[bad_value], &[bad_name, deeper]);
        let news = said.news(PREFIX, &v);
        let keys: Vec<&str> = news.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, [bad_name, bad_value.0, deeper], "in key order");
        assert!(
            news[0]
                .1
                .starts_with("not an object key: invalid node name"),
            "{news:?}"
        );
        assert_eq!(news[1].1, bad_value.1);
        assert_eq!(
            news[2].1,
            "not an object key: a path below a node name (expected /v1/pools/eqiad/web/http/<node>)"
        );
        // The same view again, at every event: nothing new.
        assert!(said.news(PREFIX, &v).is_empty());
        // Another bad value for the same key is said; a key that went away and came back too.
        let other_value = (bad_value.0, "malformed value: y");
        assert_eq!(
            said.news(PREFIX, &view(&[other_value], &[bad_name])).len(),
            1
        );
        assert_eq!(
            said.news(PREFIX, &view(&[other_value], &[bad_name, deeper])),
            [(deeper.to_string(), news[2].1.clone())]
        );
        // Keys outside the pool (a wider read) are not this pool's to report.
        assert!(said
            .news(PREFIX, &view(&[], &["/v1/pools/eqiad/web/other/x y"]))
            .is_empty());
    }
}
