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

mod http;
mod parse;

use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper::Uri;

use conftool_core::escape_controls;
pub use parse::{parse, ParseError};

pub use conftool_core::http1::SYSTEM_CA_BUNDLE;

/// [`V2Source::max_bytes`] by default: 32 MiB (100,000 objects are ~16 MB of JSON). A
/// migration costs ~2.3 KB of memory per key copied and ~8 times the bytes of its values
/// (the answer, the values read, planned, written, shown, re-read to verify): with both
/// defaults, the costliest copy measured peaks under 400 MB.
pub const DEFAULT_MAX_BYTES: u64 = 32 << 20;

/// [`V2Source::max_keys`] by default: 150,000 keys (values and directories).
pub const DEFAULT_MAX_KEYS: usize = 150_000;

/// What can go wrong reading v2.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The URL, a prefix or an option is unusable (bad input: nothing was read).
    #[error("{0}")]
    BadInput(String),
    /// A file named by an option (CA bundle, password file) cannot be used.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The server could not be reached or the connection failed.
    #[error("etcd v2 at {url}: {}", escape_controls(reason))]
    Connect {
        /// The source URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// No answer within the timeout.
    #[error("etcd v2 at {url}: no answer within {timeout:?}")]
    Timeout {
        /// The source URL.
        url: String,
        /// The timeout.
        timeout: Duration,
    },
    /// Every endpoint failed (each one's error, in the order tried).
    #[error("no v2 endpoint could be read: {}", join(.0))]
    Unavailable(Vec<Error>),
    /// The prefix does not exist in v2 (a wrong `--prefix`, or the wrong server).
    #[error("etcd v2 at {url} has no key {prefix}")]
    NotFound {
        /// The source URL.
        url: String,
        /// The prefix asked for.
        prefix: String,
    },
    /// The server answered with an error status (401: wrong or missing credentials).
    #[error("etcd v2 at {url} answered {status}: {}", escape_controls(body))]
    Status {
        /// The source URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The start of the answer's body.
        body: String,
    },
    /// The answer is not the JSON of a v2 read.
    #[error("etcd v2 at {url}: unexpected answer: {}", escape_controls(reason))]
    Protocol {
        /// The source URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The answer is larger than [`V2Source::max_bytes`]: refused by its stated length, or
    /// as soon as that much was read (the rest is not).
    #[error(
        "etcd v2 at {url}: the answer is larger than the {} a migration reads{}; not read \
         further (raise the cap with --v2-max-bytes if this is intended)",
        human(*limit),
        declared.map(|d| format!(" (it says {d} bytes)")).unwrap_or_default()
    )]
    TooLarge {
        /// The source URL.
        url: String,
        /// The cap, in bytes.
        limit: u64,
        /// The length the answer declared, when it did.
        declared: Option<u64>,
    },
    /// More keys under the prefix than [`V2Source::max_keys`]; the rest was not read.
    #[error(
        "etcd v2 at {url}: more than the {limit} keys under {prefix} a migration holds; not \
         read further (raise the cap with --v2-max-keys if this is intended)"
    )]
    TooManyKeys {
        /// The source URL.
        url: String,
        /// The prefix read.
        prefix: String,
        /// The cap.
        limit: usize,
    },
    /// The answer lists a key twice, which a v2 store cannot hold: it is not to be trusted.
    #[error(
        "etcd v2 at {url}: the answer lists the key {} twice; a v2 store holds each key once, \
         so the answer is not copied",
        escape_controls(key)
    )]
    Duplicate {
        /// The source URL.
        url: String,
        /// The key, as sent.
        key: String,
    },
}

/// `64 MiB`, `1.5 GiB`, `1000 bytes`.
fn human(n: u64) -> String {
    match [(1u64 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")]
        .into_iter()
        .find(|(unit, _)| n >= *unit)
    {
        Some((unit, name)) if n % unit == 0 => format!("{} {name}", n / unit),
        Some((unit, name)) => format!("{:.1} {name}", n as f64 / unit as f64),
        None => format!("{n} bytes"),
    }
}

fn join(errors: &[Error]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Bad input: a usage error, or a source refused by a cap or for its content.
impl conftool_core::Classify for Error {
    fn class(&self) -> conftool_core::ErrorClass {
        match self {
            Error::BadInput(_)
            | Error::File { .. }
            | Error::NotFound { .. }
            | Error::TooLarge { .. }
            | Error::TooManyKeys { .. }
            | Error::Duplicate { .. } => conftool_core::ErrorClass::BadInput,
            _ => conftool_core::ErrorClass::Failure,
        }
    }
}

impl Error {
    /// Whether the next endpoint should be tried: this one could not be reached, did not
    /// answer in time, or answered with a server error (a member without a leader).
    fn fails_over(&self) -> bool {
        match self {
            Error::Connect { .. } | Error::Timeout { .. } => true,
            Error::Status { status, .. } => *status >= 500,
            _ => false,
        }
    }
}

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

    fn auth_header(&self) -> Result<Option<String>, Error> {
        use base64::Engine as _;
        match (&self.username, &self.password_file) {
            (None, None) => Ok(None),
            (Some(user), Some(file)) => {
                let password = read_password(file)?;
                let token =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                Ok(Some(format!("Basic {token}")))
            }
            _ => Err(Error::BadInput(
                "--v2-username and --v2-password-file go together".into(),
            )),
        }
    }
}

/// The first line of a password file.
fn read_password(path: &Path) -> Result<String, Error> {
    let fail = |reason: String| Error::File {
        path: path.to_path_buf(),
        reason,
    };
    let bytes = conftool_trust::read_bounded(path, 64 << 10, "password file")
        .map_err(|e| fail(format!("cannot read password file: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|_| fail("not valid UTF-8".into()))?;
    match text.lines().next() {
        Some(p) if !p.is_empty() => Ok(p.to_string()),
        _ => Err(fail("empty password file".into())),
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
    fn only_an_endpoint_that_is_down_or_failing_passes_the_read_on() {
        let url = || "http://a:1".to_string();
        let status = |status| Error::Status {
            url: url(),
            status,
            body: String::new(),
        };
        assert!(Error::Connect {
            url: url(),
            reason: "refused".into()
        }
        .fails_over());
        assert!(Error::Timeout {
            url: url(),
            timeout: Duration::from_secs(1)
        }
        .fails_over());
        assert!(status(500).fails_over() && status(503).fails_over());
        assert!(!status(401).fails_over() && !status(404).fails_over());
        let refusals = [
            Error::TooLarge {
                url: url(),
                limit: 1,
                declared: None,
            },
            Error::TooManyKeys {
                url: url(),
                prefix: "/c".into(),
                limit: 1,
            },
            Error::Duplicate {
                url: url(),
                key: "/c/a".into(),
            },
        ];
        for e in refusals {
            assert!(!e.fails_over() && e.is_bad_input(), "{e}");
        }
    }

    #[test]
    fn what_the_server_sent_is_shown_escaped() {
        let url = "http://a:1".to_string();
        for e in [
            Error::Status {
                url: url.clone(),
                status: 500,
                body: "x\n\u{1b}[2J".into(),
            },
            Error::Protocol {
                url: url.clone(),
                reason: "bad\rline".into(),
            },
            Error::Duplicate {
                url: url.clone(),
                key: "/c/\u{7}".into(),
            },
            Error::Connect {
                url: url.clone(),
                reason: "tls \u{1b}".into(),
            },
        ] {
            let shown = e.to_string();
            assert!(!shown.chars().any(char::is_control), "{shown:?}");
        }
        let e = Error::TooLarge {
            url,
            limit: 64 << 20,
            declared: Some(3 << 30),
        };
        assert_eq!(
            e.to_string(),
            "etcd v2 at http://a:1: the answer is larger than the 64 MiB a migration reads (it \
             says 3221225472 bytes); not read further (raise the cap with --v2-max-bytes if this \
             is intended)"
        );
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(1000), "1000 bytes");
        assert_eq!(human(2 << 30), "2 GiB");
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
