//! Which v2 keys are safe to copy into v3 as they are.
//!
//! v3 consumers build keys from names and split keys back into names; conftool never
//! writes a key with an empty segment, a `.` or `..` segment or a control character, and
//! etcd's own v2 API cleans such paths before storing them. A v2 answer that holds one
//! anyway is corrupt or forged: copying it would plant, in v3, a key that a consumer could
//! resolve to another path, or that would forge a line wherever it is printed. Such keys
//! are not copied (each is reported, escaped), and the rest of the migration goes on: they
//! cannot be conftool's state.

use std::fmt;

/// Why a key is not copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyProblem {
    /// A control character (a newline, an escape sequence) anywhere in it.
    ControlCharacter,
    /// A `.` or `..` segment.
    DotSegment,
    /// An empty segment (`//`, or a trailing `/`).
    EmptySegment,
}

impl fmt::Display for KeyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyProblem::ControlCharacter => "a control character",
            KeyProblem::DotSegment => "a '.' or '..' segment",
            KeyProblem::EmptySegment => "an empty segment",
        })
    }
}

/// What is wrong with `key` (an absolute v2 key), if anything. Pure.
pub fn key_problem(key: &str) -> Option<KeyProblem> {
    if key.chars().any(char::is_control) {
        return Some(KeyProblem::ControlCharacter);
    }
    let segments = key.strip_prefix('/').unwrap_or(key).split('/');
    let mut problem = None;
    for seg in segments {
        match seg {
            "." | ".." => return Some(KeyProblem::DotSegment),
            "" => problem = Some(KeyProblem::EmptySegment),
            _ => {}
        }
    }
    problem
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_paths_are_safe() {
        for ok in [
            "/conftool/v1/pools/eqiad/appservers/apache/mw1018.eqiad.wmnet",
            "/conftool/v1/mediawiki-config/eqiad/ReadOnly",
            "/c/...",
            "/c/a..b",
            "/c/caf\u{e9}",
        ] {
            assert_eq!(key_problem(ok), None, "{ok}");
        }
        for (bad, why) in [
            ("/c/\u{1b}[31mred", KeyProblem::ControlCharacter),
            ("/c/a\nforged line", KeyProblem::ControlCharacter),
            ("/c/\u{85}", KeyProblem::ControlCharacter),
            ("/c/../../etc", KeyProblem::DotSegment),
            ("/c/./x", KeyProblem::DotSegment),
            ("/c/x/..", KeyProblem::DotSegment),
            ("/c//x", KeyProblem::EmptySegment),
            ("/c/x/", KeyProblem::EmptySegment),
            ("/c//..", KeyProblem::DotSegment),
        ] {
            assert_eq!(key_problem(bad), Some(why), "{bad:?}");
        }
        assert_eq!(KeyProblem::DotSegment.to_string(), "a '.' or '..' segment");
    }
}
