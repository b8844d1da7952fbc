//! Text from untrusted places (values stored in etcd, names of files in a checkout) made safe
//! to show to a person.
//!
//! A stored value holding a newline can forge lines of a diff; one holding an escape sequence
//! can retitle or repaint the terminal that shows it; one holding Unicode's right-to-left
//! override (`U+202E`) shows the rest of its line backwards (`mw1018 ... txt.exe` reads as
//! something else than it is). [`escape_controls`] spells every such character
//! ([`is_unshowable`]) out visibly, so what reaches a terminal is exactly one line per line
//! the program meant, in plain characters, in the order they are stored. Output meant for
//! programs (JSON) is not passed through it: JSON escapes control characters itself (the
//! audit log also escapes the rest of [`is_unshowable`], see `conftool-core`'s `audit`).

use std::borrow::Cow;
use std::fmt::Write;

/// Whether `c` changes how the text around it is shown rather than showing itself: a control
/// character (every `char` for which [`char::is_control`] holds: C0, DEL and C1), one of
/// Unicode's bidirectional formatting characters (`U+061C`, `U+200E`, `U+200F`,
/// `U+202A`..=`U+202E`, `U+2066`..=`U+2069`), or its line and paragraph separators
/// (`U+2028`, `U+2029`), which some terminals and viewers break lines at.
///
/// ```
/// use conftool_model::text::is_unshowable;
/// assert!(is_unshowable('\u{7f}') && is_unshowable('\u{202e}') && is_unshowable('\n'));
/// assert!(!is_unshowable('é') && !is_unshowable('\\'));
/// ```
pub fn is_unshowable(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
                | '\u{2028}'
                | '\u{2029}'
        )
}

/// `s` with every [`is_unshowable`] character written out visibly: `\n`, `\r`, `\t`, `\x1b`
/// for the other ASCII ones and `\u{9b}`, `\u{202e}` for the others. Everything else,
/// backslashes included, is left as it is; text without such characters is returned
/// borrowed.
///
/// ```
/// use conftool_model::escape_controls;
/// assert_eq!(escape_controls("mw1018"), "mw1018");
/// assert_eq!(escape_controls("a\nb\u{1b}]0;t\u{7}\u{9b}"), r"a\nb\x1b]0;t\x07\u{9b}");
/// assert_eq!(escape_controls("x\u{202e}gpj.exe\u{7f}"), r"x\u{202e}gpj.exe\x7f");
/// ```
pub fn escape_controls(s: &str) -> Cow<'_, str> {
    // Printable ASCII, what nearly every key and value is, is shown as it is: told by its
    // bytes, without decoding characters.
    if s.bytes().all(|b| (b' '..=b'~').contains(&b)) || !s.chars().any(is_unshowable) {
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
            c if is_unshowable(c) => {
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
            ("abc\u{202e}fed", r"abc\u{202e}fed"),
            (
                "\u{61c}\u{200e}\u{200f}\u{202a}\u{2066}\u{2069}\u{2028}\u{2029}",
                r"\u{61c}\u{200e}\u{200f}\u{202a}\u{2066}\u{2069}\u{2028}\u{2029}",
            ),
            ("\u{200b}\u{2067}x", "\u{200b}\\u{2067}x"),
        ];
        for (raw, shown) in cases {
            assert_eq!(escape_controls(raw), shown, "{raw:?}");
        }
        // Nothing to escape, ASCII or not: no copy.
        for showable in ["mw1018 {\"pooled\":\"yes\"}", "ünïcödé ~", ""] {
            assert!(
                matches!(escape_controls(showable), Cow::Borrowed(_)),
                "{showable:?}"
            );
        }
    }

    #[test]
    fn the_result_holds_no_control_character_and_escaping_again_changes_nothing() {
        let all: String = (0u32..0x110000).filter_map(char::from_u32).collect();
        let once = escape_controls(&all);
        assert!(!once.chars().any(is_unshowable));
        assert_eq!(escape_controls(&once), once);
        // C0 (32), DEL and C1 (32): each one escape of 4 (`\x1b`), 2 (`\n`) or 6 (`\u{80}`)
        // characters; the 14 bidirectional controls and separators one of 7 (`\u{61c}`) or
        // 8 (`\u{202e}`); the rest kept as it was.
        assert_eq!(all.chars().filter(|c| c.is_control()).count(), 65);
        assert_eq!(all.chars().filter(|c| is_unshowable(*c)).count(), 79);
        let kept = all.chars().count() - 79;
        assert_eq!(
            once.chars().count(),
            kept + 3 * 2 + 30 * 4 + 32 * 6 + 7 + 13 * 8
        );
    }
}
