//! Pure: what one load balancer's answer about one host says ([`read_answer`]), and what
//! that means for a host wanted in or out of rotation ([`decide`]). The I/O is in `poll`.
//!
//! The answer is PyBal's (or `conftool-lb-agent`'s) to `GET <pool url>/<host>`: JSON
//! `{"pooled": true, "weight": 10, "up": true, "enabled": true}` when asked for
//! `application/json`, else the text `enabled/up/pooled`. The agent adds `sessions` (the
//! requests HAProxy has on the server now) and `kept_by_threshold` (a depooled server it
//! keeps in rotation so as not to go below the pool's depool threshold); a real PyBal sends
//! neither.

use std::fmt;

use serde_json::Value;

use super::Want;

/// What a load balancer said about a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// It gets new requests.
    pub pooled: bool,
    /// Its administrative state allows traffic, if said.
    pub enabled: Option<bool>,
    /// It passes its health checks, if said.
    pub up: Option<bool>,
    /// Its weight, if said.
    pub weight: Option<u64>,
    /// Requests in flight on it now, if said (the agent does; PyBal does not).
    pub sessions: Option<u64>,
    /// The load balancer keeps it in rotation, depooled, because of the pool's depool
    /// threshold (the agent says so; PyBal does not).
    pub kept_by_threshold: bool,
}

impl fmt::Display for Seen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.pooled { "pooled" } else { "not pooled" })?;
        if let Some(e) = self.enabled {
            f.write_str(if e { ", enabled" } else { ", disabled" })?;
        }
        if let Some(u) = self.up {
            f.write_str(if u { ", up" } else { ", down" })?;
        }
        if let Some(w) = self.weight {
            write!(f, ", weight {w}")?;
        }
        if let Some(s) = self.sessions {
            write!(f, ", {s} session{}", if s == 1 { "" } else { "s" })?;
        }
        if self.kept_by_threshold {
            f.write_str(", kept in rotation by the depool threshold")?;
        }
        Ok(())
    }
}

/// An answer that says nothing usable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Answer {
    /// A state.
    Seen(Seen),
    /// `404`: the load balancer does not list the host (or the pool).
    NotListed,
    /// `200` with a body that is not a state (why, with the start of the body, escaped).
    Unparsable(String),
    /// Another status: the load balancer cannot say now (`503` when the agent cannot read
    /// HAProxy). Worth asking again.
    Status(String),
}

/// How much of an answer is quoted in an error.
const QUOTED: usize = 120;

fn quoted(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(QUOTED)]);
    let more = if body.len() > QUOTED { "..." } else { "" };
    format!("\"{}\"{more}", crate::escape_controls(text.trim()))
}

/// Read one answer: its status code and body.
pub(super) fn read_answer(status: u16, body: &[u8]) -> Answer {
    match status {
        200 => match parse_state(body) {
            Ok(seen) => Answer::Seen(seen),
            Err(why) => Answer::Unparsable(format!("{why}: {}", quoted(body))),
        },
        404 => Answer::NotListed,
        _ => Answer::Status(format!("HTTP {status}: {}", quoted(body))),
    }
}

/// A host's state, as JSON or as PyBal's text.
fn parse_state(body: &[u8]) -> Result<Seen, String> {
    let text = std::str::from_utf8(body).map_err(|_| "not UTF-8 text".to_string())?;
    if let Some(seen) = parse_text(text.trim()) {
        return Ok(seen);
    }
    let v: Value =
        serde_json::from_str(text).map_err(|e| format!("neither JSON nor PyBal's text ({e})"))?;
    let Value::Object(m) = v else {
        return Err("JSON, but not an object".into());
    };
    let flag = |k: &str| match m.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(format!("{k:?} is not true or false")),
    };
    let count = |k: &str| match m.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| format!("{k:?} is not a count")),
    };
    let pooled = flag("pooled")?.ok_or_else(|| "no \"pooled\" in it".to_string())?;
    Ok(Seen {
        pooled,
        enabled: flag("enabled")?,
        up: flag("up")?,
        weight: count("weight")?,
        sessions: count("sessions")?,
        kept_by_threshold: flag("kept_by_threshold")?.unwrap_or(false),
    })
}

/// PyBal's `enabled/up/pooled` (`disabled`, `down`, `not pooled`).
fn parse_text(text: &str) -> Option<Seen> {
    let mut parts = text.split('/');
    let enabled = match parts.next()? {
        "enabled" => true,
        "disabled" => false,
        _ => return None,
    };
    let up = match parts.next()? {
        "up" => true,
        "down" => false,
        _ => return None,
    };
    let pooled = match parts.next()? {
        "pooled" => true,
        "not pooled" => false,
        _ => return None,
    };
    if parts.next().is_some() {
        return None;
    }
    Some(Seen {
        pooled,
        enabled: Some(enabled),
        up: Some(up),
        weight: None,
        sessions: None,
        kept_by_threshold: false,
    })
}

/// What a state means for a host wanted in or out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Decision {
    /// As wanted.
    Done,
    /// Not yet: ask again.
    Wait,
    /// Wanted out, but the load balancer keeps it in rotation because of the pool's depool
    /// threshold: waiting will not change that.
    Kept,
    /// Sessions are to be waited for, and the load balancer does not count them.
    NoSessions,
}

/// Out of rotation: not pooled (and, with `wait_sessions`, no request left on it). In:
/// pooled.
pub(super) fn decide(want: Want, wait_sessions: bool, seen: &Seen) -> Decision {
    match want {
        Want::In if seen.pooled => Decision::Done,
        Want::In => Decision::Wait,
        Want::Out if seen.pooled && seen.kept_by_threshold => Decision::Kept,
        Want::Out if wait_sessions && seen.sessions.is_none() => Decision::NoSessions,
        Want::Out if seen.pooled => Decision::Wait,
        Want::Out if wait_sessions && seen.sessions != Some(0) => Decision::Wait,
        Want::Out => Decision::Done,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(body: &str) -> Seen {
        match read_answer(200, body.as_bytes()) {
            Answer::Seen(s) => s,
            other => panic!("{body}: {other:?}"),
        }
    }

    #[test]
    fn reads_pybals_json_and_text_and_the_agents_fields() {
        let s = seen(r#"{"pooled": true, "weight": 10, "up": true, "enabled": true}"#);
        assert!(s.pooled && s.sessions.is_none() && !s.kept_by_threshold);
        assert_eq!(s.to_string(), "pooled, enabled, up, weight 10");
        let s = seen(
            r#"{"pooled": false, "weight": 10, "up": true, "enabled": false, "sessions": 1, "kept_by_threshold": false, "future": [1]}"#,
        );
        assert_eq!((s.pooled, s.sessions), (false, Some(1)));
        assert_eq!(
            s.to_string(),
            "not pooled, disabled, up, weight 10, 1 session"
        );
        assert_eq!(
            seen("enabled/up/pooled\n"),
            Seen {
                pooled: true,
                enabled: Some(true),
                up: Some(true),
                weight: None,
                sessions: None,
                kept_by_threshold: false
            }
        );
        assert!(!seen("disabled/down/not pooled").pooled);
    }

    #[test]
    fn anything_else_is_named_not_guessed() {
        let unparsable = |body: &str| match read_answer(200, body.as_bytes()) {
            Answer::Unparsable(why) => why,
            other => panic!("{body}: {other:?}"),
        };
        assert!(unparsable("<html>It works!</html>").contains("neither JSON nor PyBal's text"));
        assert!(unparsable("<html>It works!</html>").contains("\"<html>It works!</html>\""));
        assert!(unparsable(r#"{"up": true}"#).contains("no \"pooled\""));
        assert!(unparsable(r#"{"pooled": "yes"}"#).contains("\"pooled\" is not true or false"));
        assert!(unparsable(r#"{"pooled": false, "sessions": -1}"#).contains("not a count"));
        assert!(unparsable("[true]").contains("not an object"));
        assert!(unparsable("enabled/up/maybe").contains("neither"));
        assert!(unparsable("").contains("neither"));
        let long = unparsable(&"x".repeat(10_000));
        assert!(long.ends_with("...") && long.len() < 400, "{long}");
        let escaped = unparsable("\x1b]0;owned\x07");
        assert!(
            escaped.contains(r"\x1b]0;owned\x07") && !escaped.contains('\x1b'),
            "{escaped}"
        );
        assert_eq!(
            read_answer(404, b"The desired url was not found"),
            Answer::NotListed
        );
        assert!(
            matches!(read_answer(503, b"haproxy: socket"), Answer::Status(s) if s.starts_with("HTTP 503: "))
        );
    }

    #[test]
    fn decisions() {
        use Decision::*;
        let s = |pooled, sessions, kept| Seen {
            pooled,
            enabled: None,
            up: None,
            weight: None,
            sessions,
            kept_by_threshold: kept,
        };
        let cases = [
            // want, wait_sessions, seen, decision
            (Want::Out, false, s(false, None, false), Done),
            (Want::Out, false, s(true, None, false), Wait),
            (Want::Out, false, s(true, Some(0), true), Kept),
            (Want::Out, true, s(true, Some(3), true), Kept),
            // Kept but not pooled (down, say): out of rotation all the same.
            (Want::Out, false, s(false, None, true), Done),
            (Want::Out, true, s(false, Some(2), false), Wait),
            (Want::Out, true, s(false, Some(0), false), Done),
            (Want::Out, true, s(false, None, false), NoSessions),
            (Want::Out, true, s(true, None, false), NoSessions),
            (Want::In, false, s(true, None, false), Done),
            (Want::In, true, s(true, Some(9), false), Done),
            (Want::In, false, s(false, None, false), Wait),
            (Want::In, false, s(true, None, true), Done),
        ];
        for (want, wait, seen, expected) in cases {
            assert_eq!(
                decide(want, wait, &seen),
                expected,
                "{want:?} {wait} {seen:?}"
            );
        }
    }
}
