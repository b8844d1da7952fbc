//! The one place the CLIs write to stdout: knows about `--json`, `--quiet`, whether stdout is
//! a terminal (colour), and treats a closed pipe (`confctl ... | head`) as a normal end.

use std::io::{IsTerminal, Write};

/// Writes command output.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    /// Suppress informational lines.
    pub quiet: bool,
    /// Colour diffs and highlights (only on a terminal, and not with `NO_COLOR`).
    pub color: bool,
}

impl Printer {
    /// A printer for stdout.
    pub fn new(quiet: bool) -> Self {
        let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        Printer { quiet, color }
    }

    /// Write a line of command output (always shown).
    pub fn line(&self, s: impl AsRef<str>) {
        let mut out = std::io::stdout().lock();
        let r = writeln!(out, "{}", s.as_ref());
        Self::check(r);
    }

    /// Write text as is (always shown).
    pub fn text(&self, s: &str) {
        let mut out = std::io::stdout().lock();
        let r = out.write_all(s.as_bytes()).and_then(|_| out.flush());
        Self::check(r);
    }

    /// An informational line to stderr, unless quiet.
    pub fn info(&self, s: impl AsRef<str>) {
        if !self.quiet {
            eprintln!("{}", s.as_ref());
        }
    }

    /// A unified diff, coloured on a terminal.
    pub fn diff(&self, diff: &str) {
        if !self.color {
            return self.text(diff);
        }
        let mut buf = String::with_capacity(diff.len() + diff.len() / 4);
        for l in diff.lines() {
            let code = if l.starts_with("+++") || l.starts_with("---") {
                "1"
            } else if l.starts_with('+') {
                "32"
            } else if l.starts_with('-') {
                "31"
            } else if l.starts_with("@@") {
                "36"
            } else {
                ""
            };
            if code.is_empty() {
                buf.push_str(l);
            } else {
                buf.push_str(&format!("\x1b[{code}m{l}\x1b[0m"));
            }
            buf.push('\n');
        }
        self.text(&buf);
    }

    fn check(r: std::io::Result<()>) {
        if let Err(e) = r {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                // The reader went away (`| head`): that is how output ends, not a failure.
                std::process::exit(0);
            }
            eprintln!("error writing output: {e}");
            std::process::exit(1);
        }
    }
}

/// JSON the way Python's `json.dumps` writes it by default (`", "` and `": "` separators),
/// so output parsed by scripts written for the Python confctl stays byte-compatible.
pub fn py_json(v: &serde_json::Value) -> String {
    use serde_json::Value;
    match v {
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(py_json).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("{}: {}", Value::String(k.clone()), py_json(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

/// The Python confctl's `get` line for one object:
/// `{"mw1018": {"weight": 10, "pooled": "yes"}, "tags": "dc=eqiad,cluster=appservers,service=apache"}`.
pub fn get_line(key: &conftool_core::ObjectKey, state: &conftool_core::PoolState) -> String {
    let mut fields = format!(
        "\"weight\": {}, \"pooled\": \"{}\"",
        state.weight, state.pooled
    );
    for (k, v) in &state.extra {
        fields.push_str(&format!(
            ", {}: {}",
            serde_json::Value::String(k.clone()),
            py_json(v)
        ));
    }
    format!(
        "{{\"{}\": {{{fields}}}, \"tags\": \"{}\"}}",
        key.node,
        key.tags()
    )
}

/// One object as a JSON value for `--json` output.
pub fn object_json(
    key: &conftool_core::ObjectKey,
    state: &conftool_core::PoolState,
) -> serde_json::Value {
    let mut v = serde_json::json!({
        "dc": key.pool.dc.as_str(),
        "cluster": key.pool.cluster.as_str(),
        "service": key.pool.service.as_str(),
        "name": key.node.as_str(),
    });
    if let (Some(obj), Ok(serde_json::Value::Object(st))) =
        (v.as_object_mut(), serde_json::to_value(state))
    {
        obj.extend(st);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use conftool_core::{ObjectKey, PoolState, Pooled, Weight};

    #[test]
    fn get_line_matches_the_python_tool() {
        let key = ObjectKey::new(
            "eqiad".parse().unwrap(),
            "appservers".parse().unwrap(),
            "apache".parse().unwrap(),
            "mw1018".parse().unwrap(),
        );
        let mut st = PoolState::new(Pooled::Yes, Weight(10));
        assert_eq!(
            get_line(&key, &st),
            r#"{"mw1018": {"weight": 10, "pooled": "yes"}, "tags": "dc=eqiad,cluster=appservers,service=apache"}"#
        );
        st.extra
            .insert("notes".into(), serde_json::json!({"a": [1, "x"]}));
        assert!(get_line(&key, &st).contains(r#", "notes": {"a": [1, "x"]}}, "tags""#));
    }
}
