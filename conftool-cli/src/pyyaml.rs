//! YAML the way the Python confctl prints it (`yaml.dump(data, default_flow_style=False)`
//! from PyYAML): block style, keys sorted, sequences in a mapping not indented, and a string
//! quoted whenever YAML 1.1 would read it as something else (`'yes'`, `'no'`, `'10'`).
//!
//! The output is always valid YAML that reads back as the same data (with any YAML 1.1 or
//! 1.2 parser). For the values conftool stores (names, `yes`/`no`/`inactive`, integers) it is
//! byte for byte PyYAML's; for unusual strings it may quote where PyYAML would not (we only
//! write a string plain when it is unmistakably a string), which reads back the same.
//!
//! ```
//! use conftool_cli::pyyaml::dump;
//! let v = serde_json::json!({"mw1018": {"weight": 10, "pooled": "yes"}});
//! assert_eq!(dump(&v), "mw1018:\n  pooled: 'yes'\n  weight: 10\n");
//! ```

use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

/// PyYAML's implicit resolvers (`yaml/resolver.py`): a plain scalar matching one of these is
/// not read as a string, so a string that matches must be quoted.
static IMPLICIT: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    [
        // bool
        r"^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$",
        // float
        r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        // int
        r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$",
        // null
        r"^(?:~|null|Null|NULL|)$",
        // timestamp
        r"^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$",
    ]
    .into_iter()
    .filter_map(|re| Regex::new(re).ok())
    .collect()
});

/// `yaml.dump(v, default_flow_style=False)`: one YAML document, ending in a newline.
pub fn dump(v: &Value) -> String {
    let mut out = String::new();
    match v {
        Value::Object(m) if !m.is_empty() => mapping(&mut out, m, 0),
        Value::Array(a) if !a.is_empty() => sequence(&mut out, a, 0),
        scalar => {
            out.push_str(&inline(scalar));
            out.push('\n');
        }
    }
    out
}

/// A mapping at `indent`, keys sorted as PyYAML sorts them.
fn mapping(out: &mut String, m: &serde_json::Map<String, Value>, indent: usize) {
    let mut keys: Vec<&String> = m.keys().collect();
    keys.sort();
    for k in keys {
        out.push_str(&" ".repeat(indent));
        out.push_str(&string(k));
        out.push(':');
        match &m[k] {
            Value::Object(c) if !c.is_empty() => {
                out.push('\n');
                mapping(out, c, indent + 2);
            }
            // PyYAML does not indent a sequence that is a mapping's value.
            Value::Array(a) if !a.is_empty() => {
                out.push('\n');
                sequence(out, a, indent);
            }
            scalar => {
                out.push(' ');
                out.push_str(&inline(scalar));
                out.push('\n');
            }
        }
    }
}

/// A sequence at `indent`: `- item`, a collection item starting on the dash's line.
fn sequence(out: &mut String, a: &[Value], indent: usize) {
    for item in a {
        let mut child = String::new();
        match item {
            Value::Object(c) if !c.is_empty() => mapping(&mut child, c, indent + 2),
            Value::Array(c) if !c.is_empty() => sequence(&mut child, c, indent + 2),
            scalar => {
                out.push_str(&" ".repeat(indent));
                out.push_str("- ");
                out.push_str(&inline(scalar));
                out.push('\n');
                continue;
            }
        }
        out.push_str(&" ".repeat(indent));
        out.push_str("- ");
        out.push_str(&child[indent + 2..]);
    }
}

/// A scalar or an empty collection, on one line.
fn inline(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => number(n),
        Value::String(s) => string(s),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
    }
}

/// Integers as they are; floats as Python's `repr`, with the `.0` PyYAML adds so that an
/// exponent form still reads back as a float (`1.0e+20`).
fn number(n: &serde_json::Number) -> String {
    if n.is_i64() || n.is_u64() {
        return n.to_string();
    }
    let Some(f) = n.as_f64() else {
        return n.to_string();
    };
    let s = format!("{f:?}");
    match s.split_once('e') {
        Some((mantissa, exp)) => {
            let mantissa = if mantissa.contains('.') {
                mantissa.to_string()
            } else {
                format!("{mantissa}.0")
            };
            let exp = if exp.starts_with('-') {
                exp.to_string()
            } else {
                format!("+{exp}")
            };
            format!("{mantissa}e{exp}")
        }
        None => s,
    }
}

/// A string: plain when it is unmistakably a string, else single-quoted (printable ASCII),
/// else double-quoted with JSON escapes (which YAML's double-quoted style shares).
fn string(s: &str) -> String {
    // Characters that mean nothing to YAML after a scalar's first (`,` only does in flow
    // style, which this never writes).
    let plain_char = |c: char| {
        c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-' | '=' | ',' | '+' | '@')
    };
    let plain = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '/')
        && !s.ends_with(' ')
        && s.chars().all(|c| plain_char(c) || c == ' ')
        && !IMPLICIT.iter().any(|re| re.is_match(s));
    if plain {
        s.to_string()
    } else if s.chars().all(|c| matches!(c, ' '..='~')) {
        format!("'{}'", s.replace('\'', "''"))
    } else {
        serde_json::Value::String(s.to_string()).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Outputs of PyYAML 6.0.3's `yaml.dump(v, default_flow_style=False)`.
    #[test]
    fn matches_pyyaml() {
        let cases = [
            (
                json!({"mw1019.eqiad.wmnet": {"pooled": "no", "weight": 0, "x": {"a": [1, "on"]}},
                       "mw1018": {"weight": 10, "pooled": "yes"}}),
                "mw1018:\n  pooled: 'yes'\n  weight: 10\nmw1019.eqiad.wmnet:\n  pooled: 'no'\n  weight: 0\n  x:\n    a:\n    - 1\n    - 'on'\n",
            ),
            (json!({"a": [[1, 2], {"b": 1, "c": [3]}]}), "a:\n- - 1\n  - 2\n- b: 1\n  c:\n  - 3\n"),
            (json!({"a": {}, "b": [], "c": null, "d": true, "e": 0.5, "f": 1e20}),
             "a: {}\nb: []\nc: null\nd: true\ne: 0.5\nf: 1.0e+20\n"),
            (json!({"s": ["10", "1.5", "", "a b", " x", "dc=a,cluster=b", "a+b@c", "=", "2024-01-02", "0x1F", "~", "12:30", "inactive"]}),
             "s:\n- '10'\n- '1.5'\n- ''\n- a b\n- ' x'\n- dc=a,cluster=b\n- a+b@c\n- '='\n- '2024-01-02'\n- '0x1F'\n- '~'\n- '12:30'\n- inactive\n"),
        ];
        for (v, want) in cases {
            assert_eq!(dump(&v), want, "{v}");
        }
    }

    /// Where we quote and PyYAML would not (`it's`), or escape differently (`\e`): the
    /// same data when read back.
    #[test]
    fn stricter_than_pyyaml_where_it_does_not_matter() {
        assert_eq!(dump(&json!(["it's"])), "- 'it''s'\n");
        assert_eq!(dump(&json!({"a": "x\ny\u{1b}"})), "a: \"x\\ny\\u001b\"\n");
    }
}
