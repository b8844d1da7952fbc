//! Text from untrusted places (values stored in etcd, names of files in a checkout) made safe
//! to show to a person.
//!
//! A stored value holding a newline can forge lines of a diff; one holding an escape sequence
//! can retitle or repaint the terminal that shows it. [`escape_controls`] spells every control
//! character out visibly, so what reaches a terminal is exactly one line per line the program
//! meant, in plain characters. Output meant for programs (JSON) is not passed through it: JSON
//! escapes control characters itself.

use std::borrow::Cow;
use std::fmt::Write;

/// `s` with every control character (every `char` for which [`char::is_control`] holds: C0,
/// DEL and C1) written out visibly: `\n`, `\r`, `\t`, `\x1b` for the other ASCII ones and
/// `\u{9b}` for C1. Everything else, backslashes included, is left as it is; text without
/// control characters is returned borrowed.
///
/// ```
/// use conftool_model::escape_controls;
/// assert_eq!(escape_controls("mw1018"), "mw1018");
/// assert_eq!(escape_controls("a\nb\u{1b}]0;t\u{7}\u{9b}"), r"a\nb\x1b]0;t\x07\u{9b}");
/// ```
pub fn escape_controls(s: &str) -> Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str(r"\n"),
            '\r' => out.push_str(r"\r"),
            '\t' => out.push_str(r"\t"),
            c if c.is_control() && c.is_ascii() => {
                let _ = write!(out, r"\x{:02x}", u32::from(c));
            }
            c if c.is_control() => {
                let _ = write!(out, r"\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_control_character_is_spelled_out() {
        let cases = [
            ("", ""),
            (
                "plain text, ünïcödé and \\ kept",
                "plain text, ünïcödé and \\ kept",
            ),
            ("line\nforged", r"line\nforged"),
            ("cr\rtab\t", r"cr\rtab\t"),
            ("\u{1b}]0;title\u{7}", r"\x1b]0;title\x07"),
            ("\u{0}\u{1f}\u{7f}", r"\x00\x1f\x7f"),
            ("\u{80}\u{9b}31m\u{9f}", r"\u{80}\u{9b}31m\u{9f}"),
        ];
        for (raw, shown) in cases {
            assert_eq!(escape_controls(raw), shown, "{raw:?}");
        }
        // Nothing to escape: no copy.
        assert!(matches!(
            escape_controls("mw1018 {\"pooled\":\"yes\"}"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn the_result_holds_no_control_character_and_escaping_again_changes_nothing() {
        let all: String = (0u32..0x110000).filter_map(char::from_u32).collect();
        let once = escape_controls(&all);
        assert!(!once.chars().any(char::is_control));
        assert_eq!(escape_controls(&once), once);
        // C0 (32), DEL and C1 (32): each one escape of 4 (`\x1b`), 2 (`\n`) or 6 (`\u{80}`)
        // characters, the rest kept as it was.
        assert_eq!(all.chars().filter(|c| c.is_control()).count(), 65);
        let kept = all.chars().count() - 65;
        assert_eq!(once.chars().count(), kept + 3 * 2 + 30 * 4 + 32 * 6);
    }
}
