//! Reading a Python conftool deployment's keyspace over etcd's **v2** HTTP API, for the
//! migration to v3 ([`crate::migrate`]).
//!
//! The Python tool and its consumers speak v2 (`/v2/keys/conftool/v1/pools/...` with JSON
//! string values); etcd 3.6 drops v2. This module does one thing: one recursive, quorum read
//! of a prefix (`GET /v2/keys<prefix>?recursive=true&sorted=true&quorum=true`), flattened into
//! [`V2Entry`]s in key order. It never writes to v2.
//!
//! What is supported, honestly: `http://` and `https://` URLs (TLS with rustls: the server
//! certificate checked against a CA file, the system bundle by default; a client certificate
//! if the source asks for one), HTTP basic auth (etcd v2 auth: a user and a password file;
//! over plain `http://` only when explicitly allowed), several endpoints of one cluster
//! (tried in order: the next one when one cannot be reached, times out or answers with a
//! server error; see [`V2Source::read`]), a timeout per endpoint tried.
//!
//! The answer comes from a server the migration does not control, so what it may cost is
//! capped ([`V2Source::max_bytes`], [`V2Source::max_keys`]): a declared length over the cap
//! is refused before the body is read, a body is read only up to the cap (the rest never
//! is), and it is flattened while it is parsed ([`parse`]), stopping at the first key past
//! the cap. A key sent twice is refused. Text from the server is shown with control
//! characters escaped.
//!
//! Layout: the source, its checks and the failover here; one endpoint's request (TLS, basic
//! auth) in `http.rs`, the answer's bounded parse in `parse.rs`, [`Error`] in `error.rs`.

mod error;
mod http;
mod parse;

use std::path::PathBuf;
use std::time::Duration;

use hyper::Uri;

pub use error::Error;
pub use parse::{parse, ParseError};

pub use conftool_core::http1::SYSTEM_CA_BUNDLE;

/// [`V2Source::max_bytes`] by default: 32 MiB (100,000 objects are ~16 MB of JSON). A
/// migration costs ~2.3 KB of memory per key copied and ~8 times the bytes of its values
/// (the answer, the values read, planned, written, shown, re-read to verify): with both
/// defaults, the costliest copy measured peaks under 400 MB.
pub const DEFAULT_MAX_BYTES: u64 = 32 << 20;

/// [`V2Source::max_keys`] by default: 150,000 keys (values and directories).
pub const DEFAULT_MAX_KEYS: usize = 150_000;

/// How to reach a v2 source.
#[derive(Debug, Clone)]
pub struct V2Source {
    /// `http://host:port` or `https://host:port` of the members of one cluster, tried in
    /// order (see [`V2Source::read`]).
    pub endpoints: Vec<String>,
    /// CA bundle for `https://` (default: [`SYSTEM_CA_BUNDLE`]).
    pub ca: Option<PathBuf>,
    /// Client certificate (PEM) for an `https://` source that asks for one.
    pub cert: Option<PathBuf>,
    /// The client certificate's key (PEM).
    pub key: Option<PathBuf>,
    /// Basic-auth user (etcd v2 auth).
    pub username: Option<String>,
    /// File holding the user's password (its first line).
    pub password_file: Option<PathBuf>,
    /// For the whole read of one endpoint: connect, request and response.
    pub timeout: Duration,
    /// Send the password over plain `http://` anyway (refused otherwise, as the v3
    /// configuration's `allow_insecure_auth` does).
    pub allow_insecure_auth: bool,
    /// The largest answer read, in bytes ([`DEFAULT_MAX_BYTES`]).
    pub max_bytes: u64,
    /// The most keys (values and directories) read under the prefix ([`DEFAULT_MAX_KEYS`]).
    pub max_keys: usize,
}

/// One node of the v2 tree, flattened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V2Entry {
    /// The full key, e.g. `/conftool/v1/pools/eqiad/appservers/apache/mw1018`.
    pub key: String,
    /// What it is.
    pub kind: V2Kind,
}

/// What a v2 node holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum V2Kind {
    /// A value (v2 values are strings), with the index of its last change.
    Value {
        /// The stored string, exactly.
        value: String,
        /// `modifiedIndex`.
        modified_index: u64,
    },
    /// A directory (v3 has none; its keys are listed on their own).
    Dir,
    /// A value with a TTL (a lock, a lease): ephemeral, not migrated.
    Expiring {
        /// Seconds left when read.
        ttl: i64,
    },
}

/// A recursive read of one prefix.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct V2Read {
    /// `X-Etcd-Index` of the answer: the v2 store's index the read saw.
    pub index: u64,
    /// Every node under the prefix (the prefix's own node excluded), sorted by key, each
    /// key once.
    pub entries: Vec<V2Entry>,
    /// The endpoint that answered.
    pub endpoint: String,
}

/// Check a `--from-v2` URL: `http(s)://host[:port]`, nothing else (no path, no credentials).
pub fn parse_url(url: &str) -> Result<Uri, Error> {
    let bad = |why: &str| Error::BadInput(format!("--from-v2 {url:?}: {why}"));
    let uri: Uri = url.parse().map_err(|e| bad(&format!("not a URL ({e})")))?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        _ => return Err(bad("expected http://HOST:PORT or https://HOST:PORT")),
    }
    let Some(auth) = uri.authority() else {
        return Err(bad("no host"));
    };
    if auth.as_str().contains('@') {
        return Err(bad(
            "credentials do not belong in the URL (use --v2-username and --v2-password-file)",
        ));
    }
    if auth.host().is_empty() {
        return Err(bad("no host"));
    }
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(bad(
            "give only scheme, host and port (the /v2/keys path is added)",
        ));
    }
    Ok(uri)
}

/// Check a key prefix: absolute, no trailing `/` (except the root `/`), no empty, `.` or
/// `..` segments.
pub fn check_prefix(prefix: &str) -> Result<(), Error> {
    let ok = prefix.starts_with('/')
        && (prefix == "/"
            || prefix[1..]
                .split('/')
                .all(|seg| !matches!(seg, "" | "." | "..")))
        && prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::BadInput(format!(
            "--prefix {prefix:?}: expected an absolute key path like /conftool \
             (letters, digits, '.', '_', '-'; no trailing '/', no '.' or '..' segment)"
        )))
    }
}

impl V2Source {
    /// Read everything under `prefix` with one recursive quorum read, from the first
    /// endpoint that answers: an endpoint that cannot be reached, does not answer within
    /// the timeout or answers with a server error (5xx) is left for the next one. Any
    /// other answer (the data, a refusal, a 401 or a 404) is the answer.
    pub async fn read(&self, prefix: &str) -> Result<V2Read, Error> {
        check_prefix(prefix)?;
        let uris = self.checked_endpoints()?;
        let auth = self.auth_header()?;
        let tls = match uris.first().and_then(|(_, u)| u.scheme_str()) {
            Some("https") => Some(http::tls_connector(self)?),
            _ => None,
        };
        let mut failed = Vec::new();
        for (url, uri) in &uris {
            let read = http::fetch(self, url, uri, prefix, auth.as_deref(), tls.as_ref());
            let result = match tokio::time::timeout(self.timeout, read).await {
                Ok(r) => r,
                Err(_) => Err(Error::Timeout {
                    url: url.clone(),
                    timeout: self.timeout,
                }),
            };
            match result {
                Err(e) if e.fails_over() => failed.push(e),
                other => return other,
            }
        }
        Err(match failed.len() {
            1 => failed.remove(0),
            _ => Error::Unavailable(failed),
        })
    }

    /// Every endpoint checked before any is used: at least one, one scheme for all, and a
    /// password over `http://` only when allowed.
    fn checked_endpoints(&self) -> Result<Vec<(String, Uri)>, Error> {
        if self.endpoints.is_empty() {
            return Err(Error::BadInput("no v2 endpoint given (--from-v2)".into()));
        }
        let uris: Vec<(String, Uri)> = self
            .endpoints
            .iter()
            .map(|u| parse_url(u).map(|uri| (u.clone(), uri)))
            .collect::<Result<_, _>>()?;
        let schemes: std::collections::BTreeSet<&str> =
            uris.iter().filter_map(|(_, u)| u.scheme_str()).collect();
        if schemes.len() > 1 {
            return Err(Error::BadInput(
                "--from-v2: give every endpoint the same scheme (all http:// or all https://)"
                    .into(),
            ));
        }
        if schemes.contains("http") && self.username.is_some() && !self.allow_insecure_auth {
            return Err(Error::BadInput(format!(
                "{}: a password over plain http:// travels in clear; use https:// or pass \
                 --v2-allow-insecure-auth",
                self.endpoints.join(",")
            )));
        }
        Ok(uris)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conftool_core::Classify as _;

    #[test]
    fn urls_are_scheme_host_and_port_only() {
        assert!(parse_url("http://127.0.0.1:2379").is_ok());
        assert!(parse_url("https://etcd1.example:2379/").is_ok());
        for bad in [
            "127.0.0.1:2379",
            "ftp://h:1",
            "http://u:p@h:1",
            "http://h:1/v2/keys",
            "http://h:1?x=1",
            "",
        ] {
            let e = parse_url(bad).unwrap_err();
            assert!(e.is_bad_input(), "{bad}: {e}");
        }
    }

    fn source(endpoints: &[&str]) -> V2Source {
        V2Source {
            endpoints: endpoints.iter().map(|e| e.to_string()).collect(),
            ca: None,
            cert: None,
            key: None,
            username: None,
            password_file: None,
            timeout: Duration::from_secs(1),
            allow_insecure_auth: false,
            max_bytes: DEFAULT_MAX_BYTES,
            max_keys: DEFAULT_MAX_KEYS,
        }
    }

    #[test]
    fn endpoints_are_all_checked_before_any_is_used() {
        assert_eq!(
            source(&["http://a:1", "http://b:2"])
                .checked_endpoints()
                .unwrap()
                .len(),
            2
        );
        for (endpoints, says) in [
            (&[][..], "no v2 endpoint"),
            (&["http://a:1", "https://b:2"][..], "the same scheme"),
            (&["http://a:1", "b:2"][..], "--from-v2 \"b:2\""),
        ] {
            let e = source(endpoints).checked_endpoints().unwrap_err();
            assert!(e.is_bad_input() && e.to_string().contains(says), "{e}");
        }
        let mut auth = source(&["https://a:1", "https://b:1"]);
        auth.username = Some("u".into());
        assert!(auth.checked_endpoints().is_ok());
        auth.endpoints = vec!["http://a:1".into()];
        let e = auth.checked_endpoints().unwrap_err();
        assert!(e.to_string().contains("--v2-allow-insecure-auth"), "{e}");
    }

    #[test]
    fn prefixes_are_absolute_paths() {
        for ok in ["/conftool", "/", "/a/b-c_d.e"] {
            assert!(check_prefix(ok).is_ok(), "{ok}");
        }
        for bad in [
            "conftool",
            "/conftool/",
            "//x",
            "/a b",
            "/a?b",
            "",
            "/a/../b",
            "/..",
            "/a/.",
        ] {
            assert!(check_prefix(bad).is_err(), "{bad}");
        }
    }
}
