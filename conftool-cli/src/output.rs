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
