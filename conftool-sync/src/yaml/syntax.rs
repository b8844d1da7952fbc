//! YAML syntax errors in the words of the person editing the file, at the place to fix.
//!
//! libyaml says what its parser expected (`did not find expected ',' or ']', while parsing a
//! flow sequence at line 3 column 25`), which names neither the real problem nor, often, its
//! line: an unclosed `[` is noticed on a later line, a tab is "a character that cannot start
//! any token". The common mistakes are recognised here and said plainly, placed where the
//! fix goes; anything else keeps libyaml's words.
//!
//! A syntax error also wins over any other: a data file whose `[` is not closed reads on
//! into the next line (`[apache2, nginx` + `mw1350: [...]` is a list holding
//! `nginx mw1350`), so the checks of names would otherwise report a symptom.

/// libyaml's message split into its parts: the problem, and the construct being read
/// with where it started (`while parsing a flow sequence at line 3 column 25`; without a
/// place when it started where the problem is, at `at`).
struct Parts<'a> {
    problem: &'a str,
    context: Option<(&'a str, (usize, usize))>,
}

fn parts(message: &str, at: (usize, usize)) -> Parts<'_> {
    let (problem, context) = match message.split_once(", while ") {
        Some((p, c)) => (p, Some(c)),
        None => (message, None),
    };
    let context = context.and_then(|c| {
        let Some((what, place)) = c.rsplit_once(" at line ") else {
            return Some((c, at));
        };
        let (line, col) = place.split_once(" column ")?;
        Some((what, (line.parse().ok()?, col.trim().parse().ok()?)))
    });
    Parts {
        problem: problem.trim(),
        context,
    }
}

/// The character at 1-based `line` and `col` of `text`.
fn char_at(text: &str, (line, col): (usize, usize)) -> Option<char> {
    text.lines()
        .nth(line.checked_sub(1)?)?
        .chars()
        .nth(col.checked_sub(1)?)
}

fn place((line, col): (usize, usize)) -> String {
    format!("line {line}, column {col}")
}

/// A plain explanation of a syntax error libyaml reported as `message` (its position
/// already taken out) at `at`, with the place it belongs; `None` keeps libyaml's words.
pub(crate) fn explain(
    text: &str,
    message: &str,
    at: (usize, usize),
) -> Option<((usize, usize), String)> {
    let p = parts(message, at);
    let at_end = at.0 > text.lines().count();
    let noticed = if at_end {
        "the end of the file".to_string()
    } else {
        place(at)
    };
    if char_at(text, at) == Some('\t') {
        return Some((
            at,
            "a tab character: YAML indents with spaces only (replace the tab with spaces)".into(),
        ));
    }
    match (p.problem, p.context) {
        (problem, Some((what, opened)))
            if problem.starts_with("did not find expected ',' or ")
                && what.starts_with("parsing a flow ") =>
        {
            let (open, close, kind) = if what.ends_with("mapping") {
                ('{', '}', "mapping")
            } else {
                ('[', ']', "list")
            };
            Some((
                opened,
                format!(
                    "the {kind} opened with '{open}' here is not closed: ',' or '{close}' \
                     expected before {noticed} (add the missing '{close}')"
                ),
            ))
        }
        (problem, Some((what, opened)))
            if problem.starts_with("found unexpected end of stream")
                && what.starts_with("scanning a quoted scalar") =>
        {
            Some((
                opened,
                "the quoted string opened here is not closed (add the missing quote)".into(),
            ))
        }
        (problem, _) if problem.starts_with("mapping values are not allowed") => Some(
            missing_colon_above(text, at).unwrap_or((
                at,
                "a ': ' inside a value: quote the value (\"a: b\"), or start a new line for a \
                 new key"
                    .into(),
            )),
        ),
        (problem, Some((what, opened)))
            if problem.starts_with("did not find expected key")
                && what.starts_with("parsing a block mapping") =>
        {
            if let Some(c @ (']' | '}')) = char_at(text, at) {
                return Some(stray_closer(text, at, c));
            }
            let started = if opened == at {
                String::new()
            } else {
                format!(" (the mapping read here started at {})", place(opened))
            };
            Some((
                at,
                format!(
                    "the indentation of this line matches no key above it: the keys of one \
                     mapping line up, indented with spaces{started}"
                ),
            ))
        }
        (problem, _) if problem.starts_with("unknown anchor") => Some((
            at,
            "an alias (*name) of an anchor (&name) that is not defined before it".into(),
        )),
        _ => None,
    }
}

/// A `: ` found where no value may have one, right below a line of the same indentation
/// that has no `:` at all: that line's key lacks its colon, and the plain text ran on into
/// this line.
fn missing_colon_above(text: &str, at: (usize, usize)) -> Option<((usize, usize), String)> {
    let lines: Vec<&str> = text.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let row = at.0.checked_sub(1)?;
    let here = lines.get(row)?;
    let (i, above) = lines
        .get(..row)?
        .iter()
        .enumerate()
        .rev()
        .find(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))?;
    let bare = indent(above) == indent(here) && !above.contains(':');
    bare.then(|| {
        (
            (i + 1, indent(above) + 1),
            "this line has no ': ' after its key, so the next line was read as part of it: \
             is a ':' missing?"
                .into(),
        )
    })
}

/// A `]` or `}` at `at` that closes nothing: either one too many, or its opener was read
/// as part of a plain scalar because a `: ` is missing before it (`cp1053 {services: [a]}`
/// is the key `cp1053 {services`).
fn stray_closer(text: &str, at: (usize, usize), close: char) -> ((usize, usize), String) {
    let open = if close == ']' { '[' } else { '{' };
    let line: Vec<char> = text
        .lines()
        .nth(at.0.saturating_sub(1))
        .unwrap_or("")
        .chars()
        .take(at.1.saturating_sub(1))
        .collect();
    let absorbed = line.iter().position(|&c| c == open).filter(|&i| {
        let before: String = line[..i].iter().collect();
        let before = before.trim_end();
        !before.is_empty() && !before.ends_with([':', ',', '-', '[', '{'])
    });
    match absorbed {
        Some(i) => (
            (at.0, i + 1),
            format!(
                "this '{open}' is read as part of the text before it, and the '{close}' at \
                 column {} then closes nothing: is a ': ' missing before the '{open}'?",
                at.1
            ),
        ),
        None => (at, format!("a '{close}' that closes nothing (remove it)")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parts_of_libyaml_messages() {
        let p = parts(
            "did not find expected ',' or ']', while parsing a flow sequence at line 3 column 25",
            (4, 1),
        );
        assert_eq!(p.problem, "did not find expected ',' or ']'");
        assert_eq!(p.context, Some(("parsing a flow sequence", (3, 25))));
        // No place: the construct started where the problem is.
        let p = parts(
            "did not find expected key, while parsing a block mapping",
            (3, 2),
        );
        assert_eq!(p.context, Some(("parsing a block mapping", (3, 2))));
        assert_eq!(parts("unknown anchor", (1, 1)).context, None);
        assert_eq!(char_at("a\n\tb\n", (2, 1)), Some('\t'));
        assert_eq!(char_at("a\n", (3, 1)), None);
    }

    /// The message of loading `text` as `node/eqiad.yaml` of a Python-layout directory.
    fn python_node_error(text: &str) -> String {
        let files = crate::source::Files::in_memory(
            "conf",
            vec![("node/eqiad.yaml".to_string(), text.to_string())],
        );
        crate::load::load(&files).unwrap_err().to_string()
    }

    #[test]
    fn the_real_problem_and_its_line() {
        let cases = [
            // An unclosed flow list swallows the next line: not "invalid service name".
            (
                "eqiad:\n  appservers:\n    mw1349.eqiad.wmnet: [apache2, nginx\n    mw1350.eqiad.wmnet: [apache2, nginx]\n",
                "conf/node/eqiad.yaml:3:25: the list opened with '[' here is not closed: ',' or ']' expected before line 4, column 23 (add the missing ']')",
            ),
            (
                "eqiad:\n  appservers:\n    mw1349.eqiad.wmnet: [apache2, nginx\n",
                "conf/node/eqiad.yaml:3:25: the list opened with '[' here is not closed: ',' or ']' expected before the end of the file",
            ),
            (
                "eqiad:\n  appservers:\n    mw1349.eqiad.wmnet: [apache2]\n\tmw1350.eqiad.wmnet: [apache2]\n",
                "conf/node/eqiad.yaml:4:1: a tab character: YAML indents with spaces only (replace the tab with spaces)",
            ),
            (
                "eqiad:\n  appservers:\n    mw1349.eqiad.wmnet: {a: 1\n    mw1350.eqiad.wmnet: [x]\n",
                "conf/node/eqiad.yaml:3:25: the mapping opened with '{' here is not closed",
            ),
            (
                "eqiad:\n  appservers:\n    mw1349.eqiad.wmnet: [apache2]\n   mw1350.eqiad.wmnet: [apache2]\n",
                "conf/node/eqiad.yaml:4:4: the indentation of this line matches no key above it",
            ),
            (
                "eqiad:\n  appservers:\n    mw1349.eqiad.wmnet: [\"apache2]\n    mw1350.eqiad.wmnet: [apache2]\n",
                "conf/node/eqiad.yaml:3:26: the quoted string opened here is not closed",
            ),
            (
                "eqiad:\n  appservers:\n    mw1349.eqiad.wmnet: apache2: nginx\n",
                "conf/node/eqiad.yaml:3:32: a ': ' inside a value",
            ),
            (
                "eqiad:\n  appservers:\n    mw1349.eqiad.wmnet: [apache2]]\n",
                "conf/node/eqiad.yaml:3:34: a ']' that closes nothing (remove it)",
            ),
            (
                "eqiad:\n  appservers:\n    mw1349.eqiad.wmnet [apache2]\n    mw1350.eqiad.wmnet: [apache2]\n",
                "conf/node/eqiad.yaml:3:5: this line has no ': ' after its key",
            ),
            (
                "eqiad:\n  appservers:\n    mw1349.eqiad.wmnet: [apache2, *x]\n",
                "conf/node/eqiad.yaml:3:35: an alias (*name) of an anchor (&name) that is not defined before it",
            ),
        ];
        for (text, want) in cases {
            let got = python_node_error(text);
            assert!(
                got.starts_with(want),
                "{text:?}:\n{got}\nshould start with\n{want}"
            );
        }
        // Where the syntax is fine, the typed read's message stands.
        let got = python_node_error(
            "eqiad:\n  appservers:\n    mw1349.eqiad.wmnet: [apache2, \"ngi nx\"]\n",
        );
        assert!(
            got.contains(":3:35: ") && got.contains("invalid service name \"ngi nx\""),
            "{got}"
        );
    }
}
