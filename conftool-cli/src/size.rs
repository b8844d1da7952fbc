//! Byte sizes on the command line (`--max-input-bytes 64MiB`, `--v2-max-bytes 1GiB`).

use std::fmt;
use std::str::FromStr;

/// A number of bytes, written `4194304`, `4096KiB`, `4MiB` or `1GiB` (also `K`, `M`, `G`,
/// with the same binary meaning); shown the shortest way that is exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size(pub u64);

const UNITS: [(&str, &str, u64); 3] = [
    ("GiB", "G", 1 << 30),
    ("MiB", "M", 1 << 20),
    ("KiB", "K", 1 << 10),
];

impl FromStr for Size {
    type Err = String;
    fn from_str(s: &str) -> Result<Size, String> {
        let t = s.trim();
        let (digits, unit) = UNITS
            .iter()
            .find_map(|(long, short, n)| {
                t.strip_suffix(long)
                    .or_else(|| t.strip_suffix(short))
                    .map(|d| (d, *n))
            })
            .unwrap_or((t, 1));
        digits
            .trim()
            .parse::<u64>()
            .ok()
            .and_then(|d| d.checked_mul(unit))
            .filter(|n| *n > 0)
            .map(Size)
            .ok_or_else(|| {
                format!("{s:?} is not a size in bytes (e.g. 4194304, 512KiB, 64MiB, 1GiB)")
            })
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match UNITS.iter().find(|(_, _, n)| self.0 % n == 0) {
            Some((long, _, n)) => write!(f, "{}{long}", self.0 / n),
            None => write!(f, "{}", self.0),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_and_show_in_binary_units() {
        for (text, bytes) in [
            ("1", 1),
            ("4194304", 4 << 20),
            ("512KiB", 512 << 10),
            ("512K", 512 << 10),
            ("64MiB", 64 << 20),
            ("64M", 64 << 20),
            (" 1 GiB ", 1 << 30),
            ("3G", 3 << 30),
        ] {
            assert_eq!(text.parse::<Size>(), Ok(Size(bytes)), "{text}");
        }
        for bad in [
            "",
            "0",
            "0MiB",
            "-1",
            "1.5MiB",
            "MiB",
            "4 MB",
            "1TiB",
            "99999999999999G",
        ] {
            assert!(bad.parse::<Size>().is_err(), "{bad}");
        }
        assert_eq!(Size(4 << 20).to_string(), "4MiB");
        assert_eq!(Size(1536).to_string(), "1536");
        assert_eq!(Size(3 << 10).to_string(), "3KiB");
        assert_eq!(Size(1 << 30).to_string(), "1GiB");
        assert_eq!(Size(7).to_string(), "7");
    }
}
