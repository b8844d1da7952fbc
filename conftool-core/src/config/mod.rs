//! Connection configuration: `/etc/conftool/config.yaml` and its command-line overrides.
//!
//! ```yaml
//! endpoints: [https://etcd1.example:2379, https://etcd2.example:2379]
//! namespace: /conftool
//! username: conftool
//! password_file: /etc/conftool/etcd-password
//! tls: {ca: /etc/ssl/ca.pem, cert: /etc/conftool/client.pem, key: /etc/conftool/client.key}
//! timeout: 5s
//! audit_log: /var/log/conftool/audit.jsonl
//! ```
//!
//! Layout: the [`Config`] type and its file format here (ours, or the Python tool's through
//! the crate's `pyconfig`); [`Config::resolve`] and [`CallerSettings`] (the caller's flags on
//! top of the file, and what running for another user allows them) in `caller.rs`; the
//! endpoint and duration parsers in `parse.rs`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error::Error;
use crate::keys::Keyspace;
use crate::verify::LoadBalancers;

mod caller;
mod parse;

pub use caller::CallerSettings;
pub(crate) use parse::de_opt_duration;
pub use parse::{
    endpoint_scheme, normalized_endpoint, parse_duration, parse_duration_or_zero, BadDuration,
    BadEndpoint,
};

/// The default configuration file.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/conftool/config.yaml";

/// How to reach etcd, and where to record writes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// etcd client URLs (`http://` or `https://`).
    #[serde(default = "default_endpoints")]
    pub endpoints: Vec<String>,
    /// Key prefix in front of `/v1` (empty: none).
    #[serde(default)]
    pub namespace: String,
    /// etcd user, for an auth-enabled cluster.
    #[serde(default)]
    pub username: Option<String>,
    /// File holding the etcd user's password (first line, without its newline).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// TLS material.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Connect and per-request timeout.
    #[serde(default = "default_timeout", deserialize_with = "parse::de_duration")]
    pub timeout: Duration,
    /// Where to append one JSON line per write (audit trail); `syslog` for the system log.
    #[serde(default)]
    pub audit_log: Option<PathBuf>,
    /// Send the etcd password over plain `http://` (refused unless this is set).
    #[serde(default)]
    pub allow_insecure_auth: bool,
    /// Refuse every write through [`crate::Store::writer`], the audited path every tool uses
    /// (the Python tool's `read_only`): reads, dry runs and checks work.
    #[serde(default)]
    pub read_only: bool,
    /// The status URLs of the load balancers that serve each pool, for verifying a change
    /// ([`mod@crate::verify`]). Running for another user, only the system configuration's count.
    #[serde(default)]
    pub load_balancers: LoadBalancers,
    /// A password given in the file itself (the Python tool's etcd client files do that).
    #[serde(skip)]
    pub inline_password: Option<Secret>,
    /// What was read and means nothing here (the Python tool's IRC relay, say), for the
    /// caller to say once.
    #[serde(skip)]
    pub notes: Vec<String>,
}

/// A password: never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// TLS files.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// CA bundle to verify the servers with.
    pub ca: Option<PathBuf>,
    /// Client certificate (PEM).
    pub cert: Option<PathBuf>,
    /// Client key (PEM).
    pub key: Option<PathBuf>,
}

fn default_endpoints() -> Vec<String> {
    vec!["http://127.0.0.1:2379".to_string()]
}

fn default_timeout() -> Duration {
    Duration::from_secs(5)
}

impl Default for Config {
    fn default() -> Self {
        Config {
            endpoints: default_endpoints(),
            namespace: String::new(),
            username: None,
            password_file: None,
            tls: None,
            timeout: default_timeout(),
            audit_log: None,
            allow_insecure_auth: false,
            read_only: false,
            load_balancers: LoadBalancers::default(),
            inline_password: None,
            notes: Vec::new(),
        }
    }
}

/// The largest configuration file read.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;
/// The largest password file read.
pub const MAX_PASSWORD_BYTES: u64 = 4 << 10;
/// The largest TLS file (certificate, key, CA bundle) read.
pub const MAX_TLS_BYTES: u64 = 1 << 20;

pub use conftool_trust::Quote;

impl Config {
    /// Read a configuration file (at most [`MAX_CONFIG_BYTES`], a regular file).
    pub fn load(path: &Path) -> Result<Config, Error> {
        Config::load_quoting(path, Quote::Content)
    }

    /// Read a configuration file, quoting its content in errors only if `quote` allows.
    pub fn load_quoting(path: &Path, quote: Quote) -> Result<Config, Error> {
        Config::load_as(path, quote, &conftool_trust::Privilege::current())
    }

    /// Read a configuration file in either format (ours, or the Python tool's
    /// `config.yaml` with its etcd client files: the crate's `pyconfig` module), quoting content in
    /// errors only if `quote` allows; `privilege` decides whose `~/.etcdrc` counts.
    pub fn load_as(
        path: &Path,
        quote: Quote,
        privilege: &conftool_trust::Privilege,
    ) -> Result<Config, Error> {
        let bytes = conftool_trust::read_bounded(path, MAX_CONFIG_BYTES, "configuration file")
            .map_err(|e| Error::Config {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        Config::from_bytes(path, bytes, quote, privilege)
    }

    /// Parse a configuration file's bytes (read from `path`) in either format; see
    /// [`Config::load_as`].
    pub fn from_bytes(
        path: &Path,
        bytes: Vec<u8>,
        quote: Quote,
        privilege: &conftool_trust::Privilege,
    ) -> Result<Config, Error> {
        let Ok(text) = String::from_utf8(bytes) else {
            return Err(Error::Config {
                path: path.to_path_buf(),
                reason: "not valid UTF-8".into(),
            });
        };
        let python = yaml_serde::from_str::<yaml_serde::Value>(&text)
            .ok()
            .and_then(|v| v.as_mapping().cloned())
            .is_some_and(|m| {
                m.keys()
                    .filter_map(|k| k.as_str())
                    .any(|k| crate::pyconfig::PYTHON_KEYS.contains(&k))
            });
        let parsed = if python {
            crate::pyconfig::load(path, &text, privilege).map(|(mut cfg, notes)| {
                cfg.notes = notes;
                cfg
            })
        } else {
            Config::from_yaml(path, &text)
        };
        match parsed {
            Err(Error::Config { path, .. }) if quote == Quote::PlaceOnly => {
                let place = yaml_serde::from_str::<yaml_serde::Value>(&text)
                    .err()
                    .or_else(|| yaml_serde::from_str::<Config>(&text).err())
                    .and_then(|e| e.location())
                    .map(|l| format!(" at line {}, column {}", l.line(), l.column()))
                    .unwrap_or_default();
                Err(Error::Config {
                    path,
                    reason: format!(
                        "not a valid configuration{place} (its content is not shown: the \
                         user who ran this could not read the file)"
                    ),
                })
            }
            other => other,
        }
    }

    /// Parse configuration text; `path` is only used in error messages.
    pub fn from_yaml(path: &Path, text: &str) -> Result<Config, Error> {
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        let cfg: Config = yaml_serde::from_str(text).map_err(|e| Error::Config {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        if cfg.endpoints.is_empty() {
            return Err(Error::Config {
                path: path.to_path_buf(),
                reason: "endpoints is empty".into(),
            });
        }
        Ok(cfg)
    }

    /// Check what must hold before the first request: every endpoint a plain
    /// `http(s)://host[:port]` URL, all with one scheme, TLS settings only with `https`, a
    /// `username` only with a `password_file`, and the password sent over `https` only
    /// (unless `allow_insecure_auth`). `path` names the configuration in errors.
    pub fn validate(&self, path: &Path) -> Result<(), Error> {
        let fail = |reason: String| Error::Config {
            path: path.to_path_buf(),
            reason,
        };
        if self.endpoints.is_empty() {
            return Err(fail("no endpoints".into()));
        }
        let mut schemes = std::collections::BTreeSet::new();
        for (i, url) in self.endpoints.iter().enumerate() {
            let scheme =
                endpoint_scheme(url).map_err(|why| fail(format!("endpoint {} {why}", i + 1)))?;
            schemes.insert(scheme);
        }
        if schemes.len() > 1 {
            return Err(fail(
                "endpoints mix http:// and https://; use one scheme for every member".into(),
            ));
        }
        let https = schemes.contains("https");
        if self.tls.is_some() && !https {
            return Err(fail(
                "tls settings need https:// endpoints (they are http://)".into(),
            ));
        }
        if self.username.is_some() && self.password_file.is_none() && self.inline_password.is_none()
        {
            return Err(fail("username is set but password_file is not".into()));
        }
        if self.username.is_some() && !https && !self.allow_insecure_auth {
            return Err(fail(
                "refusing to send the etcd password over plain http://; use https:// \
                 endpoints (or set allow_insecure_auth: true in the configuration)"
                    .into(),
            ));
        }
        Ok(())
    }

    /// The keyspace under this configuration's namespace.
    pub fn keyspace(&self) -> Keyspace {
        Keyspace::new(&self.namespace)
    }

    /// The etcd password: the first line of `password_file` (a regular file of at most
    /// [`MAX_PASSWORD_BYTES`]). Errors never quote the file.
    pub fn password(&self) -> Result<Option<String>, Error> {
        if let Some(Secret(p)) = &self.inline_password {
            return Ok(Some(p.clone()));
        }
        let Some(path) = &self.password_file else {
            return Ok(None);
        };
        let fail = |reason: String| Error::Config {
            path: path.clone(),
            reason,
        };
        let bytes = conftool_trust::read_bounded(path, MAX_PASSWORD_BYTES, "password file")
            .map_err(|e| fail(format!("cannot read password file: {e}")))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| fail("password file is not valid UTF-8".into()))?;
        match text.lines().next() {
            Some(line) if !line.is_empty() => Ok(Some(line.to_string())),
            _ => Err(fail(
                "password file has no password on its first line".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Classify as _;

    #[test]
    fn parses_the_documented_example() {
        let text = "endpoints: [https://etcd1.example:2379, https://etcd2.example:2379]\n\
                    namespace: /conftool\nusername: conftool\n\
                    password_file: /etc/conftool/etcd-password\n\
                    tls: {ca: /etc/ssl/ca.pem, cert: /etc/conftool/client.pem, key: /etc/conftool/client.key}\n\
                    timeout: 5s\naudit_log: /var/log/conftool/audit.jsonl\n";
        let c = Config::from_yaml(Path::new("c.yaml"), text).unwrap();
        assert_eq!(c.endpoints.len(), 2);
        assert_eq!(c.timeout, Duration::from_secs(5));
        assert_eq!(c.keyspace().pools_prefix(), "/conftool/v1/pools/");
        assert_eq!(
            c.tls.unwrap().key.unwrap(),
            PathBuf::from("/etc/conftool/client.key")
        );
    }

    #[test]
    fn load_balancers_are_read_and_checked_with_the_file() {
        let p = Path::new("/etc/conftool/config.yaml");
        let c = Config::from_yaml(
            p,
            "endpoints: [http://a:1]\nload_balancers:\n  eqiad/appservers/apache: [http://lb1:9090/pools/apache]\n",
        )
        .unwrap();
        let pool = "eqiad/appservers/apache".parse().unwrap();
        assert_eq!(c.load_balancers.for_pool(&pool).len(), 1);
        assert!(Config::default().load_balancers.is_empty());
        for (text, why) in [
            (
                "load_balancers:\n  eqiad/appservers/apache: ['file:///etc/passwd']\n",
                "load balancer 1 is not an http:// or https:// URL",
            ),
            (
                "load_balancers:\n  appservers/apache: [http://lb1/p]\n",
                "is not dc/cluster/service",
            ),
        ] {
            let e = Config::from_yaml(p, text).unwrap_err();
            assert!(e.is_bad_input(), "{e}");
            let e = e.to_string();
            assert!(
                e.contains(why) && e.contains("config.yaml") && e.contains("line 2"),
                "{e}"
            );
        }
        // The Python tool's format takes it too, as it takes our audit_log.
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("config.yaml");
        std::fs::write(
            &f,
            "hosts: [http://a:1]\nload_balancers: {eqiad/appservers/apache: [http://lb1/p]}\n",
        )
        .unwrap();
        assert_eq!(
            Config::load(&f)
                .unwrap()
                .load_balancers
                .for_pool(&pool)
                .len(),
            1
        );
    }

    #[test]
    fn rejects_unknown_fields_and_bad_timeouts() {
        let e = Config::from_yaml(Path::new("c.yaml"), "endpoint: [x]\n").unwrap_err();
        assert!(
            e.to_string().contains("c.yaml") && e.to_string().contains("endpoint"),
            "{e}"
        );
        assert!(Config::from_yaml(Path::new("c"), "timeout: 5h\n").is_err());
        assert!(Config::from_yaml(Path::new("c"), "endpoints: []\n").is_err());
    }

    #[test]
    fn validation_refuses_mixed_schemes_and_plaintext_passwords() {
        let p = Path::new("c.yaml");
        let cfg = |text: &str| Config::from_yaml(p, text).unwrap();
        let err = |c: Config| c.validate(p).unwrap_err().to_string();
        assert!(cfg("endpoints: [http://a:1]\n").validate(p).is_ok());
        assert!(err(cfg("endpoints: [http://a:1, https://b:1]\n")).contains("mix http"));
        assert!(err(cfg("endpoints: [http://a:1]\ntls: {ca: /x}\n")).contains("need https"));
        assert!(err(cfg("endpoints: [https://a:1]\nusername: u\n"))
            .contains("username is set but password_file is not"));
        assert!(err(cfg(
            "endpoints: [http://a:1]\nusername: u\npassword_file: /p\n"
        ))
        .contains("over plain http://"));
        assert!(cfg(
            "endpoints: [http://a:1]\nusername: u\npassword_file: /p\nallow_insecure_auth: true\n"
        )
        .validate(p)
        .is_ok());
        assert!(
            cfg("endpoints: [https://a:1]\nusername: u\npassword_file: /p\n")
                .validate(p)
                .is_ok()
        );
        assert!(err(cfg("endpoints: ['http://u:pw@a:1']\n")).contains("endpoint 1 has a user"));
    }

    #[test]
    fn errors_about_unreadable_files_quote_no_content() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("shadow");
        std::fs::write(&f, "root:$6$secrethash:19000:0:99999:7:::\n").unwrap();
        let quoted = Config::load(&f).unwrap_err().to_string();
        assert!(quoted.contains("secrethash"), "{quoted}");
        let placed = Config::load_quoting(&f, Quote::PlaceOnly)
            .unwrap_err()
            .to_string();
        assert!(
            !placed.contains("secrethash") && !placed.contains("root:"),
            "{placed}"
        );
        assert!(placed.contains("line 1, column"), "{placed}");
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "\nsecond").unwrap();
        let c = Config {
            password_file: Some(pw.clone()),
            ..Config::default()
        };
        let e = c.password().unwrap_err().to_string();
        assert!(
            e.contains("no password on its first line") && !e.contains("second"),
            "{e}"
        );
        std::fs::write(&pw, "x".repeat(5000)).unwrap();
        let e = c.password().unwrap_err().to_string();
        assert!(
            e.contains("bigger than the 4 KiB a password file may be"),
            "{e}"
        );
    }
}
