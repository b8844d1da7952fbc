//! The one place the CLIs write output: stdout through [`Printer`] (which knows about
//! `--quiet` and whether stdout is a terminal) and stderr through [`warn`] and [`stderr_line`].
//!
//! A closed or failing stdout never stops a command half-way and never decides its exit
//! code on its own: a write that fails marks stdout as gone (further output is dropped) and
//! the command carries on, so what it writes to etcd does not depend on who reads its
//! output. At the end [`finish`] turns the command's own exit code into the final one: a
//! reader that went away (`confctl ... | head -1`, EPIPE) leaves it as it is; any other
//! output error (a full disk: ENOSPC) turns a success into a failure (exit 1), because
//! output the user asked for was lost. Writes to stderr never panic (a closed stderr pipe
//! would otherwise turn into exit 101).

use std::fmt;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;

/// What happened to stdout so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StdoutState {
    /// Every write succeeded.
    Open,
    /// The reader went away (EPIPE): output ends there, which is not a failure.
    Closed,
    /// A write failed otherwise (e.g. ENOSPC): output was lost.
    Failed(std::io::ErrorKind),
}

struct Stdout {
    state: StdoutState,
    error: Option<String>,
}

static STDOUT: Mutex<Stdout> = Mutex::new(Stdout {
    state: StdoutState::Open,
    error: None,
});

/// Write bytes to stdout unless it is already gone; record the first failure.
fn write_stdout(bytes: &[u8]) {
    let mut st = STDOUT.lock().unwrap_or_else(|p| p.into_inner());
    if st.state != StdoutState::Open {
        return;
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(bytes).and_then(|()| out.flush()) {
        st.state = if e.kind() == std::io::ErrorKind::BrokenPipe {
            StdoutState::Closed
        } else {
            StdoutState::Failed(e.kind())
        };
        st.error = Some(e.to_string());
    }
}

/// What happened to stdout so far.
pub fn stdout_state() -> StdoutState {
    STDOUT.lock().unwrap_or_else(|p| p.into_inner()).state
}

/// The final exit code of a command that chose `code`, given what happened to stdout: a
/// lost output (other than a reader that went away) makes a success a failure, and says so.
pub fn finish(prog: &str, code: u8) -> u8 {
    let st = STDOUT.lock().unwrap_or_else(|p| p.into_inner());
    match st.state {
        StdoutState::Open | StdoutState::Closed => code,
        StdoutState::Failed(_) => {
            let why = st.error.as_deref().unwrap_or("unknown error");
            stderr_line(&format!("{prog}: error: cannot write output: {why}"));
            if code == crate::exit::OK {
                crate::exit::FAILURE
            } else {
                code
            }
        }
    }
}

/// Text for a terminal: every control character but the line breaks a message is made of
/// spelled out (`\x1b`), so nothing quoted in it (a stored value, a file name) can move the
/// cursor, retitle the terminal or forge a line.
pub fn for_terminal(s: &str) -> String {
    s.split('\n')
        .map(|line| conftool_core::escape_controls(line).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Write one line to stderr (see [`for_terminal`]); errors are ignored (there is nowhere
/// left to report them).
pub fn stderr_line(s: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(format!("{}\n", for_terminal(s)).as_bytes());
}

/// Write text to stderr (a prompt; see [`for_terminal`]); errors are ignored.
pub fn stderr_text(s: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err
        .write_all(for_terminal(s).as_bytes())
        .and_then(|()| err.flush());
}

/// `PROG: warning: MESSAGE` on stderr, shown even with `--quiet`.
pub fn warn(prog: &str, msg: impl AsRef<str>) {
    stderr_line(&format!("{prog}: warning: {}", msg.as_ref()));
}

/// `-q/--quiet`, the same in every binary.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct QuietArg {
    /// Print no informational messages on stderr; command output on stdout, warnings and
    /// errors are still shown.
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,
}

/// Writes command output.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    /// Suppress informational lines on stderr.
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
        let s = s.as_ref();
        let mut buf = String::with_capacity(s.len() + 1);
        buf.push_str(s);
        buf.push('\n');
        write_stdout(buf.as_bytes());
    }

    /// Write text as is (always shown).
    pub fn text(&self, s: &str) {
        write_stdout(s.as_bytes());
    }

    /// An informational line to stderr, unless quiet.
    pub fn info(&self, s: impl AsRef<str>) {
        if !self.quiet {
            stderr_line(s.as_ref());
        }
    }

    /// A unified diff made by `write`, coloured on a terminal; otherwise written out a
    /// chunk at a time as it is made, never held whole (a sync's diff has a line per object).
    pub fn diff_with(&self, write: impl FnOnce(&mut dyn fmt::Write) -> fmt::Result) {
        if self.color {
            let mut diff = String::new();
            // Writing into a String cannot fail.
            let _ = write(&mut diff);
            return self.diff(&diff);
        }
        self.chunked(write);
    }

    /// Command output made by `write` (always shown), written out a chunk at a time as it
    /// is made rather than a write per line: a selection of 10,000 objects is a few writes,
    /// not 10,000.
    pub fn chunked(&self, write: impl FnOnce(&mut dyn fmt::Write) -> fmt::Result) {
        let mut out = Chunked(String::with_capacity(Chunked::SIZE));
        let _ = write(&mut out);
        if !out.0.is_empty() {
            write_stdout(out.0.as_bytes());
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
}

/// Text for stdout, written out each time [`Chunked::SIZE`] bytes have gathered.
struct Chunked(String);

impl Chunked {
    const SIZE: usize = 64 * 1024;
}

impl fmt::Write for Chunked {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.push_str(s);
        if self.0.len() >= Self::SIZE {
            write_stdout(self.0.as_bytes());
            self.0.clear();
        }
        Ok(())
    }
}

/// JSON the way Python's `json.dumps` writes it by default (`", "` and `": "` separators,
/// non-ASCII as `\uXXXX`), so output parsed by scripts written for the Python confctl stays
/// byte-compatible: the model's, one writer for node and schema objects.
pub use conftool_core::schema::object::py_json;

/// The Python confctl's `get` line for one object:
/// `{"mw1018": {"weight": 10, "pooled": "yes"}, "tags": "dc=eqiad,cluster=appservers,service=apache"}`.
pub fn get_line(key: &conftool_core::ObjectKey, state: &conftool_core::PoolState) -> String {
    let mut line = String::new();
    // Writing into a String cannot fail.
    let _ = write_get_line(&mut line, key, state);
    line
}

/// [`get_line`], written into `out` (no newline).
pub fn write_get_line(
    out: &mut dyn fmt::Write,
    key: &conftool_core::ObjectKey,
    state: &conftool_core::PoolState,
) -> fmt::Result {
    // Pieces written as they are (a selection prints thousands of these lines).
    for piece in ["{\"", key.node.as_str(), "\": {\"weight\": "] {
        out.write_str(piece)?;
    }
    write!(out, "{}", state.weight.0)?;
    for piece in [", \"pooled\": \"", state.pooled.as_str(), "\""] {
        out.write_str(piece)?;
    }
    for (k, v) in &state.extra {
        write!(
            out,
            ", {}: {}",
            serde_json::Value::String(k.clone()),
            py_json(v)
        )?;
    }
    let pool = &key.pool;
    for piece in [
        "}, \"tags\": \"dc=",
        pool.dc.as_str(),
        ",cluster=",
        pool.cluster.as_str(),
        ",service=",
        pool.service.as_str(),
        "\"}",
    ] {
        out.write_str(piece)?;
    }
    Ok(())
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

    #[test]
    fn terminal_text_keeps_line_breaks_and_spells_out_the_rest() {
        assert_eq!(
            for_terminal("a\x1b]0;title\x07\nb\tc\r"),
            "a\\x1b]0;title\\x07\nb\\tc\\r"
        );
        assert_eq!(for_terminal("plain"), "plain");
    }
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
        // Python's json.dumps escapes non-ASCII (ensure_ascii), in node and schema output alike.
        st.extra.insert("owner".into(), serde_json::json!("Zoë"));
        assert!(
            get_line(&key, &st).contains(r#", "owner": "Zo\u00eb"}"#),
            "{}",
            get_line(&key, &st)
        );
    }
}
