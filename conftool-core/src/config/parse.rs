//! Parsers for what the configuration and the command line give as text: endpoint URLs
//! (plain `http(s)://host[:port]`, never quoted in errors) and durations (`500ms`, `5s`, `1m`).

use std::time::Duration;

use serde::Deserialize;

/// Why an endpoint URL is not a plain `http(s)://host[:port]`. Never quotes the URL (it
/// might hold a password).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BadEndpoint {
    /// Control characters in the URL.
    #[error("has control characters in it")]
    Controls,
    /// Neither `http://` nor `https://`.
    #[error("is not an http:// or https:// URL")]
    Scheme,
    /// `user:password@` in the URL.
    #[error(
        "has a user name or password in it; put credentials in the configuration file \
         (username, password_file)"
    )]
    Credentials,
    /// A path, query or fragment after the authority.
    #[error("has a path, query or fragment; give scheme://host[:port] only")]
    Path,
    /// A port that is not 1..=65535.
    #[error("has an invalid port")]
    Port,
    /// An empty or invalid host.
    #[error("has an invalid host")]
    Host,
}

/// The scheme of an endpoint URL (`http` or `https`), or why it is not a plain
/// `http(s)://host[:port]`.
pub fn endpoint_scheme(url: &str) -> Result<&'static str, BadEndpoint> {
    if url.chars().any(char::is_control) {
        return Err(BadEndpoint::Controls);
    }
    let (scheme, rest) = if let Some(r) = url.strip_prefix("https://") {
        ("https", r)
    } else if let Some(r) = url.strip_prefix("http://") {
        ("http", r)
    } else {
        return Err(BadEndpoint::Scheme);
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains('@') {
        return Err(BadEndpoint::Credentials);
    }
    if authority.contains(['/', '?', '#']) {
        return Err(BadEndpoint::Path);
    }
    let (host, port) = match authority.rsplit_once(':') {
        // `[::1]` has colons but no port.
        Some(_) if authority.ends_with(']') => (authority, None),
        Some((h, p)) => (h, Some(p)),
        None => (authority, None),
    };
    if let Some(p) = port {
        if !p.parse::<u16>().is_ok_and(|p| p > 0) {
            return Err(BadEndpoint::Port);
        }
    }
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => {
            !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        }
    };
    if !host_ok {
        return Err(BadEndpoint::Host);
    }
    Ok(scheme)
}

/// The form endpoints are compared in: scheme and host in lower case, no trailing `/`.
pub fn normalized_endpoint(url: &str) -> String {
    url.trim_end_matches('/').to_ascii_lowercase()
}

/// Why a duration does not parse (the text is quoted, control characters spelled out).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BadDuration {
    /// Not a number.
    #[error("invalid duration {0:?}: expected e.g. 500ms, 5s or 1m")]
    Number(String),
    /// A unit other than ms, s or m.
    #[error("invalid duration {0:?}: unit must be ms, s or m")]
    Unit(String),
    /// Zero, negative, or a day or more.
    #[error("invalid duration {0:?}: must be positive and under a day")]
    Range(String),
}

/// Parse `500ms`, `5s`, `2m` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, BadDuration> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| BadDuration::Number(s.to_string()))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(BadDuration::Unit(s.to_string())),
    };
    if !(secs.is_finite() && secs > 0.0 && secs < 86_400.0) {
        return Err(BadDuration::Range(s.to_string()));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Like [`parse_duration`], and `0` (or `0s`) for no time at all (no waiting).
pub fn parse_duration_or_zero(s: &str) -> Result<Duration, BadDuration> {
    if s.trim().trim_end_matches('s') == "0" {
        return Ok(Duration::ZERO);
    }
    parse_duration(s)
}

pub(crate) fn de_opt_duration<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Duration>, D::Error> {
    de_duration(d).map(Some)
}

pub(super) fn de_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Num(f64),
        Text(String),
    }
    let text = match Raw::deserialize(d)? {
        Raw::Num(n) => n.to_string(),
        Raw::Text(t) => t,
    };
    parse_duration(&text).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_plain_urls_and_never_quoted() {
        for ok in [
            "http://127.0.0.1:2379",
            "https://etcd1.example:2379/",
            "http://[::1]:2379",
            "http://[::1]",
            "https://etcd_1.example",
        ] {
            assert!(endpoint_scheme(ok).is_ok(), "{ok}");
        }
        for (bad, why) in [
            ("etcd1:2379", "is not an http:// or https:// URL"),
            (
                "http://user:s3cret@etcd1:2379",
                "has a user name or password",
            ),
            ("http://etcd1:2379/v3/kv", "has a path"),
            ("http://etcd1:99999", "has an invalid port"),
            ("http://etcd1:0", "has an invalid port"),
            ("http://", "has an invalid host"),
            ("http://etc d1", "has an invalid host"),
            ("http://etcd1\x1b]0;x\x07", "has control characters"),
        ] {
            let err = endpoint_scheme(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
            assert!(!err.contains("s3cret"), "{err}");
        }
        assert_eq!(
            normalized_endpoint("HTTP://Etcd1:2379/"),
            "http://etcd1:2379"
        );
    }

    #[test]
    fn durations_have_units_and_bounds() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert_eq!(
            parse_duration("-1s"),
            Err(BadDuration::Number("-1s".into()))
        );
        assert_eq!(parse_duration("0s"), Err(BadDuration::Range("0s".into())));
        assert_eq!(parse_duration("1h"), Err(BadDuration::Unit("1h".into())));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration_or_zero("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration_or_zero(" 0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration_or_zero("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(
            parse_duration_or_zero("0m"),
            Err(BadDuration::Range("0m".into()))
        );
    }
}
