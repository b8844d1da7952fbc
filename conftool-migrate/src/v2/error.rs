//! What can go wrong reading v2, which errors pass a read on to the next endpoint, and how
//! text from the server is shown (control characters escaped).

use std::path::PathBuf;
use std::time::Duration;

use conftool_core::escape_controls;

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
    /// The answer is larger than [`V2Source::max_bytes`](super::V2Source::max_bytes):
    /// refused by its stated length, or as soon as that much was read (the rest is not).
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
    /// More keys under the prefix than [`V2Source::max_keys`](super::V2Source::max_keys);
    /// the rest was not read.
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
    pub(super) fn fails_over(&self) -> bool {
        match self {
            Error::Connect { .. } | Error::Timeout { .. } => true,
            Error::Status { status, .. } => *status >= 500,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conftool_core::Classify as _;

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
}
