//! Where a JSON pointer lands in a JSON text (line and column), so that an error about a
//! part of a JSON Schema file names its line. serde_json keeps no positions for values it
//! has parsed; the text is walked again, only along the pointer's path.

/// The 1-based line and column of the value at `pointer` (`/properties/port/type`; `""`
/// is the whole document) in `text`, if the text holds it.
pub(crate) fn locate_pointer(text: &str, pointer: &str) -> Option<(usize, usize)> {
    let mut s = Scanner {
        b: text.as_bytes(),
        i: 0,
    };
    s.ws();
    if !pointer.is_empty() {
        for token in pointer.strip_prefix('/')?.split('/') {
            let token = token.replace("~1", "/").replace("~0", "~");
            s.enter(&token)?;
        }
    }
    Some(s.position(text))
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            self.i += 1;
        }
    }

    fn position(&self, text: &str) -> (usize, usize) {
        let before = text.get(..self.i).unwrap_or(text);
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
        (line, col)
    }

    /// Move from the start of an object or array to the start of its member `token`.
    fn enter(&mut self, token: &str) -> Option<()> {
        match self.peek()? {
            b'{' => {
                self.i += 1;
                loop {
                    self.ws();
                    if self.peek()? == b'}' {
                        return None;
                    }
                    let key = self.string()?;
                    self.ws();
                    (self.peek()? == b':').then_some(())?;
                    self.i += 1;
                    self.ws();
                    if key == token {
                        return Some(());
                    }
                    self.skip_value()?;
                    self.ws();
                    if self.peek()? == b',' {
                        self.i += 1;
                    }
                }
            }
            b'[' => {
                let want: usize = token.parse().ok()?;
                self.i += 1;
                for _ in 0..want {
                    self.ws();
                    self.skip_value()?;
                    self.ws();
                    (self.peek()? == b',').then_some(())?;
                    self.i += 1;
                }
                self.ws();
                (self.peek()? != b']').then_some(())
            }
            _ => None,
        }
    }

    /// A string at the cursor, unescaped as far as matching keys needs (`\"`, `\\`, `\/`
    /// and `\uXXXX`).
    fn string(&mut self) -> Option<String> {
        (self.peek()? == b'"').then_some(())?;
        self.i += 1;
        let mut out = Vec::new();
        loop {
            let c = self.peek()?;
            self.i += 1;
            match c {
                b'"' => return String::from_utf8(out).ok(),
                b'\\' => {
                    let e = self.peek()?;
                    self.i += 1;
                    match e {
                        b'u' => {
                            let hex = std::str::from_utf8(self.b.get(self.i..self.i + 4)?).ok()?;
                            self.i += 4;
                            let ch = char::from_u32(u32::from_str_radix(hex, 16).ok()?)
                                .unwrap_or('\u{fffd}');
                            out.extend_from_slice(ch.to_string().as_bytes());
                        }
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        other => out.push(other),
                    }
                }
                other => out.push(other),
            }
        }
    }

    fn skip_value(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.string().map(|_| ()),
            open @ (b'{' | b'[') => {
                let close = if open == b'{' { b'}' } else { b']' };
                self.i += 1;
                loop {
                    self.ws();
                    match self.peek()? {
                        c if c == close => {
                            self.i += 1;
                            return Some(());
                        }
                        b',' | b':' => self.i += 1,
                        _ => self.skip_value()?,
                    }
                }
            }
            _ => {
                while self
                    .peek()
                    .is_some_and(|c| !matches!(c, b',' | b'}' | b']') && !c.is_ascii_whitespace())
                {
                    self.i += 1;
                }
                Some(())
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn finds_members_and_items() {
        let text = "{\n  \"id\": \"a,b\",\n  \"properties\": {\n    \"x\\\"y\": {\"type\": \"string\"},\n    \"port\": {\n      \"type\": 12\n    },\n    \"l\": [1, {\"a/b\": [true]}]\n  }\n}\n";
        assert_eq!(locate_pointer(text, ""), Some((1, 1)));
        assert_eq!(locate_pointer(text, "/id"), Some((2, 9)));
        assert_eq!(locate_pointer(text, "/properties/port/type"), Some((6, 15)));
        assert_eq!(locate_pointer(text, "/properties/x\"y/type"), Some((4, 22)));
        assert_eq!(
            locate_pointer(text, "/properties/l/1/a~1b/0"),
            Some((8, 23))
        );
        assert_eq!(locate_pointer(text, "/properties/nope"), None);
        assert_eq!(locate_pointer(text, "/properties/l/2"), None);
        assert_eq!(locate_pointer(text, "/id/x"), None);
    }
}
