//! A node's self-diagnosis, as its diagnose command prints it (Ganeti's self-diagnose data
//! collector):
//!
//! ```json
//! {"status": "evacuate", "command": "replace-disk", "details": {"disk": "sdb"}}
//! ```
//!
//! `status` is `ok`, `live-repair` (run the named repair command on the node, without taking
//! it out), `evacuate` (take it out of every pool, letting requests finish) or
//! `evacuate-failover` (take it out at once: it is going down). Anything else, and a command
//! that fails or prints something that is not such an object, is *malformed*: an event of its
//! own, never acted on, never a crash.
//!
//! The same output (as a JSON value: key order and spacing do not matter) is the same
//! event; [`Observation::fingerprint`] is what says so. Pure: running the command is the
//! caller's.

use std::fmt;

use serde_json::{Map, Value};

use crate::event::Kind;

/// How much of a malformed output is kept (in the event, shown to people).
pub const MALFORMED_KEEP: usize = 2048;

/// What a node said about itself, once.
#[derive(Debug, Clone, PartialEq)]
pub enum Observation {
    /// Nothing to do.
    Ok,
    /// It asks for something.
    Problem {
        /// What it asks for (never [`Kind::Malformed`]).
        kind: Kind,
        /// The repair command it names, if any (for `live-repair`).
        command: Option<String>,
        /// The whole output, as a JSON value (what a repair command gets on stdin).
        output: Value,
    },
    /// Its diagnose command failed or said something that is not a diagnosis.
    Malformed {
        /// Why, for people (stable for the same output: it is part of the identity).
        why: String,
        /// What it printed, lossily decoded and cut at [`MALFORMED_KEEP`] bytes.
        output: String,
    },
}

/// How a diagnose command ended, as the caller ran it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ran {
    /// It exited with this code, having printed `stdout`.
    Exited {
        /// The exit code.
        code: i32,
        /// What it printed.
        stdout: Vec<u8>,
    },
    /// It did not finish: killed by a signal, timed out, or could not be started.
    Failed(String),
}

impl Observation {
    /// What a run of the diagnose command says.
    pub fn from_run(ran: &Ran) -> Observation {
        match ran {
            Ran::Exited { code: 0, stdout } => Observation::parse(stdout),
            Ran::Exited { code, stdout } => {
                malformed(format!("the diagnose command exited {code}"), stdout)
            }
            Ran::Failed(why) => malformed(format!("the diagnose command {why}"), b""),
        }
    }

    /// Parse what a diagnose command printed (exit 0).
    ///
    /// ```
    /// use conftool_maintd::{Kind, Observation};
    /// let o = Observation::parse(br#"{"status": "evacuate", "details": "disk sdb"}"#);
    /// assert!(matches!(o, Observation::Problem { kind: Kind::Evacuate, .. }));
    /// assert_eq!(Observation::parse(br#"{"status":"ok"}"#), Observation::Ok);
    /// assert!(matches!(Observation::parse(b"oops"), Observation::Malformed { .. }));
    /// ```
    pub fn parse(stdout: &[u8]) -> Observation {
        let value: Value = match serde_json::from_slice(stdout) {
            Ok(v) => v,
            Err(e) => return malformed(format!("not JSON ({e})"), stdout),
        };
        let Some(obj) = value.as_object() else {
            return malformed("not a JSON object".into(), stdout);
        };
        let status = match obj.get("status") {
            Some(Value::String(s)) => s.as_str(),
            Some(_) => return malformed("\"status\" is not a string".into(), stdout),
            None => return malformed("no \"status\"".into(), stdout),
        };
        let kind = match status {
            "ok" => return Observation::Ok,
            "live-repair" => Kind::LiveRepair,
            "evacuate" => Kind::Evacuate,
            "evacuate-failover" => Kind::EvacuateFailover,
            other => {
                return malformed(
                    format!(
                        "unknown status \"{}\" (ok, live-repair, evacuate, evacuate-failover)",
                        conftool_core::escape_controls(other)
                    ),
                    stdout,
                )
            }
        };
        let command = match obj.get("command") {
            None | Some(Value::Null) => None,
            Some(Value::String(c)) => Some(c.clone()),
            Some(_) => return malformed("\"command\" is not a string".into(), stdout),
        };
        Observation::Problem {
            kind,
            command,
            output: value,
        }
    }

    /// The kind of event it makes (`None`: it makes none).
    pub fn kind(&self) -> Option<Kind> {
        match self {
            Observation::Ok => None,
            Observation::Problem { kind, .. } => Some(*kind),
            Observation::Malformed { .. } => Some(Kind::Malformed),
        }
    }

    /// Whether the node said something a person can read as a diagnosis (ok or a
    /// problem): only then is a node put back into service.
    pub fn well_formed(&self) -> bool {
        !matches!(self, Observation::Malformed { .. })
    }

    /// The JSON value kept in the event: the output itself, or for a malformed one what
    /// was wrong and what was printed.
    pub fn value(&self) -> Value {
        match self {
            Observation::Ok => Value::Object(Map::from_iter([("status".into(), "ok".into())])),
            Observation::Problem { output, .. } => output.clone(),
            Observation::Malformed { why, output } => Value::Object(Map::from_iter([
                ("malformed".to_string(), Value::from(why.as_str())),
                ("output".to_string(), Value::from(output.as_str())),
            ])),
        }
    }

    /// The identity of the event this observation is on `node`: the same node saying the
    /// same thing (as a JSON value) gives the same fingerprint. 16 hex digits.
    pub fn fingerprint(&self, node: &str) -> String {
        let mut text = String::from(node);
        text.push('\n');
        canonical(&self.value(), &mut text);
        format!("{:016x}", fnv1a(text.as_bytes()))
    }
}

impl fmt::Display for Observation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Observation::Ok => f.write_str("ok"),
            Observation::Problem { kind, .. } => write!(f, "{kind}"),
            Observation::Malformed { why, .. } => write!(f, "malformed: {why}"),
        }
    }
}

fn malformed(why: String, stdout: &[u8]) -> Observation {
    let cut = &stdout[..stdout.len().min(MALFORMED_KEEP)];
    Observation::Malformed {
        why,
        output: String::from_utf8_lossy(cut).into_owned(),
    }
}

/// JSON with object keys sorted at every level, no spaces: one text per JSON value.
fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::from(k.as_str()).to_string());
                out.push(':');
                if let Some(x) = m.get(k) {
                    canonical(x, out);
                }
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// FNV-1a, 64 bits: small, stable across versions and platforms (std's hasher is not).
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_json_value_is_the_same_event_whatever_its_spelling() {
        let a = Observation::parse(br#"{"status":"evacuate","details":{"a":1,"b":[1,2]}}"#);
        let b = Observation::parse(
            b"{ \"details\": {\"b\": [1, 2], \"a\": 1},\n \"status\": \"evacuate\" }",
        );
        assert_eq!(a.fingerprint("mw1"), b.fingerprint("mw1"));
        // Another node, or other details, or another order inside an array: another event.
        assert_ne!(a.fingerprint("mw1"), a.fingerprint("mw2"));
        let c = Observation::parse(br#"{"status":"evacuate","details":{"a":1,"b":[2,1]}}"#);
        assert_ne!(a.fingerprint("mw1"), c.fingerprint("mw1"));
        assert_eq!(a.fingerprint("mw1").len(), 16);
    }

    #[test]
    fn each_status_is_read_and_everything_else_is_malformed_with_why() {
        let kind = |s: &str| Observation::parse(s.as_bytes()).kind();
        assert_eq!(kind(r#"{"status":"ok","details":"fine"}"#), None);
        assert_eq!(
            kind(r#"{"status":"live-repair","command":"fix"}"#),
            Some(Kind::LiveRepair)
        );
        assert_eq!(kind(r#"{"status":"evacuate"}"#), Some(Kind::Evacuate));
        assert_eq!(
            kind(r#"{"status":"evacuate-failover"}"#),
            Some(Kind::EvacuateFailover)
        );
        let why = |s: &[u8]| match Observation::parse(s) {
            Observation::Malformed { why, .. } => why,
            other => panic!("not malformed: {other:?}"),
        };
        assert!(
            why(b"garbage").starts_with("not JSON (expected value"),
            "{}",
            why(b"garbage")
        );
        assert_eq!(why(b"[1]"), "not a JSON object");
        assert_eq!(why(b"{}"), "no \"status\"");
        assert_eq!(why(br#"{"status":3}"#), "\"status\" is not a string");
        assert_eq!(
            why(br#"{"status":"reboot\u001b"}"#),
            "unknown status \"reboot\\x1b\" (ok, live-repair, evacuate, evacuate-failover)"
        );
        assert_eq!(
            why(br#"{"status":"live-repair","command":[1]}"#),
            "\"command\" is not a string"
        );
    }

    #[test]
    fn a_failed_command_is_malformed_and_its_output_is_kept_short() {
        let long = vec![b'x'; 10_000];
        let o = Observation::from_run(&Ran::Exited {
            code: 3,
            stdout: long,
        });
        match &o {
            Observation::Malformed { why, output } => {
                assert_eq!(why, "the diagnose command exited 3");
                assert_eq!(output.len(), MALFORMED_KEEP);
            }
            other => panic!("{other:?}"),
        }
        assert!(!o.well_formed());
        assert_eq!(o.kind(), Some(Kind::Malformed));
        let t = Observation::from_run(&Ran::Failed("timed out after 2s".into()));
        assert_eq!(
            t.value()["malformed"],
            "the diagnose command timed out after 2s"
        );
        // Exit 0 with a valid diagnosis is read.
        let ok = Observation::from_run(&Ran::Exited {
            code: 0,
            stdout: br#"{"status":"ok"}"#.to_vec(),
        });
        assert_eq!(ok, Observation::Ok);
        assert!(ok.well_formed());
    }
}
