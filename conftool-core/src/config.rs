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

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, Untrusted};
use crate::keys::Keyspace;
use crate::verify::LoadBalancers;

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
    #[serde(default = "default_timeout", deserialize_with = "de_duration")]
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

    /// Read a configuration file for another user: a system file, opened once and judged on
    /// its descriptor; one the caller `named` must also be readable by them. Errors quote it
    /// only if the caller could read it.
    fn load_system(
        path: &Path,
        named: bool,
        privilege: &conftool_trust::Privilege,
    ) -> Result<Config, Error> {
        use conftool_trust::{Opened, ReadError};
        let not_system = |why: String| {
            Error::Untrusted(Untrusted::NotSystem {
                path: path.to_path_buf(),
                why,
            })
        };
        let Some(caller) = privilege.caller() else {
            return Config::load_as(path, Quote::Content, privilege);
        };
        let opened = Opened::open(path, caller).map_err(|e| match e {
            ReadError::Link { .. } => not_system(e.to_string()),
            e => Error::Config {
                path: path.to_path_buf(),
                reason: e.to_string(),
            },
        })?;
        if let Some(why) = opened.not_system() {
            return Err(not_system(why));
        }
        let readable = opened.caller_cannot_read().is_none();
        if named && !readable {
            return Err(Error::Untrusted(Untrusted::ConfigNotReadable {
                path: path.to_path_buf(),
            }));
        }
        let quote = if readable {
            Quote::Content
        } else {
            Quote::PlaceOnly
        };
        let bytes = opened
            .read(MAX_CONFIG_BYTES, "configuration file")
            .map_err(|e| Error::Config {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        Config::from_bytes(path, bytes, quote, privilege)
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

/// What the caller asks for on top of the configuration file (flags, environment).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallerSettings {
    /// A configuration file instead of the default one.
    pub config: Option<PathBuf>,
    /// Endpoints instead of the file's.
    pub endpoints: Vec<String>,
    /// A namespace instead of the file's.
    pub namespace: Option<String>,
    /// A timeout instead of the file's.
    pub timeout: Option<Duration>,
}

impl Config {
    /// The effective configuration: the file (`caller.config`, else `default_path` if it
    /// exists, else the defaults), then the caller's settings on top, then [`Config::validate`].
    ///
    /// Running for another user ([`conftool_trust::Privilege::Sudo`]), the caller may narrow
    /// but never redirect: the file must be a system file, opened once and judged on its
    /// descriptor ([`conftool_trust::Opened`]); one the caller names must be readable by the
    /// caller, and the system configuration's (`default_path`) `audit_log` and `read_only`
    /// apply whatever file the caller names; errors quote no file the caller could not read;
    /// endpoints may only be some of the file's, and the namespace is the file's.
    pub fn resolve(
        caller: &CallerSettings,
        default_path: &Path,
        privilege: &conftool_trust::Privilege,
    ) -> Result<Config, Error> {
        let path = caller.config.as_deref().or_else(|| {
            // A missing default file means the defaults; a missing explicit one is an error.
            default_path.exists().then_some(default_path)
        });
        let (mut cfg, label) = match path {
            None => (Config::default(), PathBuf::from("--endpoints")),
            Some(path) => {
                let named = caller.config.is_some();
                let cfg = match privilege.caller() {
                    Some(_) => Config::load_system(path, named, privilege)?,
                    None => Config::load_as(path, Quote::Content, privilege)?,
                };
                (cfg, path.to_path_buf())
            }
        };
        // Another file the caller names cannot drop what the system configuration imposes:
        // its audit log, and read-only mode; nor choose the load balancers a verification
        // asks (one of the caller's choosing could say "out of rotation" falsely).
        if let Some(named) = caller.config.as_deref().filter(|_| privilege.is_sudo()) {
            if named != default_path {
                let system = match default_path.exists() {
                    true => Config::load_system(default_path, false, privilege)?,
                    false => Config::default(),
                };
                if system.audit_log.is_some() {
                    cfg.audit_log = system.audit_log;
                }
                cfg.read_only |= system.read_only;
                if cfg.load_balancers != system.load_balancers {
                    cfg.notes.push(format!(
                        "load_balancers of {} not used: running for another user, only those \
                         of {} count",
                        named.display(),
                        default_path.display()
                    ));
                    cfg.load_balancers = system.load_balancers;
                }
            }
        }
        if !caller.endpoints.is_empty() {
            if privilege.is_sudo() && path.is_some() {
                let allowed: std::collections::BTreeSet<String> = cfg
                    .endpoints
                    .iter()
                    .map(|u| normalized_endpoint(u))
                    .collect();
                if let Some(i) = caller
                    .endpoints
                    .iter()
                    .position(|u| !allowed.contains(&normalized_endpoint(u)))
                {
                    return Err(Error::Untrusted(Untrusted::Endpoint {
                        config: label,
                        position: i + 1,
                    }));
                }
            }
            cfg.endpoints = caller.endpoints.clone();
        }
        if let Some(ns) = &caller.namespace {
            if privilege.is_sudo() && path.is_some() && *ns != cfg.namespace {
                return Err(Error::Untrusted(Untrusted::Namespace { config: label }));
            }
            cfg.namespace = ns.clone();
        }
        if let Some(t) = caller.timeout {
            cfg.timeout = t;
        }
        cfg.validate(&label)?;
        Ok(cfg)
    }
}

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

fn de_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
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

    /// A root-owned directory under sticky /tmp, with a file in it of `mode`.
    fn file(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    #[test]
    fn under_sudo_the_caller_narrows_but_never_redirects() {
        use conftool_trust::Privilege;
        use std::os::unix::fs::PermissionsExt;
        if !nix::unistd::geteuid().is_root() {
            return; // ownership cannot be arranged without root
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let system = file(
            dir.path(),
            "config.yaml",
            "endpoints: [http://10.0.0.1:2379, http://10.0.0.2:2379]\nnamespace: /conftool\n",
            0o644,
        );
        let sudo = Privilege::Sudo {
            uid: 65534,
            gid: Some(65534),
        };
        let caller = |f: fn(&mut CallerSettings)| {
            let mut c = CallerSettings::default();
            f(&mut c);
            c
        };
        let resolve = |c: &CallerSettings, p: &Privilege| Config::resolve(c, &system, p);
        // Narrowing is fine, and so is a timeout.
        let c = caller(|c| {
            c.endpoints = vec!["http://10.0.0.2:2379/".into()];
            c.timeout = Some(Duration::from_secs(9));
        });
        let cfg = resolve(&c, &sudo).unwrap();
        assert_eq!(cfg.endpoints, ["http://10.0.0.2:2379/"]);
        assert_eq!(cfg.timeout, Duration::from_secs(9));
        // Redirecting is not, nor is another namespace; as a plain user both are.
        let away = caller(|c| {
            c.endpoints = vec!["http://10.0.0.1:2379".into(), "http://6.6.6.6:1".into()]
        });
        let e = resolve(&away, &sudo).unwrap_err();
        assert!(matches!(e, Error::Untrusted(_)) && e.is_bad_input(), "{e}");
        assert!(
            e.to_string().contains("endpoint 2 is not one of them"),
            "{e}"
        );
        assert!(resolve(&away, &Privilege::User).is_ok());
        assert!(resolve(&away, &Privilege::Root).is_ok());
        let ns = caller(|c| c.namespace = Some("/other".into()));
        assert!(resolve(&ns, &sudo)
            .unwrap_err()
            .to_string()
            .contains("--namespace"));
        let same_ns = caller(|c| c.namespace = Some("/conftool".into()));
        assert!(resolve(&same_ns, &sudo).is_ok());
        // A configuration the caller owns is not a system file.
        let mine = file(
            dir.path(),
            "mine.yaml",
            "endpoints: [http://6.6.6.6:1]\n",
            0o644,
        );
        nix::unistd::chown(&mine, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
        let c = CallerSettings {
            config: Some(mine.clone()),
            ..CallerSettings::default()
        };
        let e = resolve(&c, &sudo).unwrap_err().to_string();
        assert!(
            e.contains("must be a system file") && e.contains("owned by uid 65534"),
            "{e}"
        );
        assert!(resolve(&c, &Privilege::User).is_ok());
        // A root-only file the caller names is refused without a word of its content.
        let secret = file(dir.path(), "shadow", "root:$6$secrethash:1::::::\n", 0o600);
        let c = CallerSettings {
            config: Some(secret.clone()),
            ..CallerSettings::default()
        };
        let e = resolve(&c, &sudo).unwrap_err().to_string();
        assert!(
            e.contains("--config may only name a file the caller can read"),
            "{e}"
        );
        assert!(!e.contains("secrethash"), "{e}");
        // The system's own file, unreadable to the caller and broken: its place, not its text.
        std::fs::write(
            &system,
            "endpoints: [http://10.0.0.1:2379]\npassword_fle: /x/secretname\n",
        )
        .unwrap();
        std::fs::set_permissions(&system, std::fs::Permissions::from_mode(0o600)).unwrap();
        let e = resolve(&CallerSettings::default(), &sudo)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 2") && !e.contains("secretname") && !e.contains("password_fle"),
            "{e}"
        );
        let e = resolve(&CallerSettings::default(), &Privilege::Root)
            .unwrap_err()
            .to_string();
        assert!(e.contains("password_fle"), "root may see its own file: {e}");
        // No configuration file at all: nothing to protect, the caller's endpoints are used.
        let none = CallerSettings {
            endpoints: vec!["http://6.6.6.6:1".into()],
            ..CallerSettings::default()
        };
        let cfg = Config::resolve(&none, &dir.path().join("absent.yaml"), &sudo).unwrap();
        assert_eq!(cfg.endpoints, ["http://6.6.6.6:1"]);
    }

    /// Finding 8 of issue 16: an empty root-owned file the caller could read, named with
    /// `--config`, dropped the system configuration's audit log and read-only mode.
    #[test]
    fn under_sudo_another_config_keeps_the_systems_audit_log_and_read_only() {
        use conftool_trust::Privilege;
        use std::os::unix::fs::PermissionsExt;
        if !nix::unistd::geteuid().is_root() {
            return; // ownership cannot be arranged without root
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let system = file(
            dir.path(),
            "config.yaml",
            // The Python tool's format (where read_only comes from), with our audit_log.
            "hosts: [http://10.0.0.1:2379]\naudit_log: /var/log/conftool/audit.jsonl\n\
             read_only: true\n",
            0o644,
        );
        let empty = file(dir.path(), "empty.yaml", "", 0o644);
        let other = file(
            dir.path(),
            "codfw.yaml",
            "endpoints: [http://10.0.0.9:2379]\naudit_log: /tmp/elsewhere.jsonl\n",
            0o644,
        );
        let named = |p: &Path| CallerSettings {
            config: Some(p.to_path_buf()),
            ..CallerSettings::default()
        };
        let sudo = Privilege::Sudo {
            uid: 65534,
            gid: Some(65534),
        };
        for f in [&empty, &other] {
            let cfg = Config::resolve(&named(f), &system, &sudo).unwrap();
            assert_eq!(
                cfg.audit_log.as_deref(),
                Some(Path::new("/var/log/conftool/audit.jsonl")),
                "{f:?}"
            );
            assert!(cfg.read_only, "{f:?}");
        }
        // The other file's own settings still count (another cluster's endpoints), but not
        // its load balancers: a verification asks the system's only.
        let cfg = Config::resolve(&named(&other), &system, &sudo).unwrap();
        assert_eq!(cfg.endpoints, ["http://10.0.0.9:2379"]);
        std::fs::write(
            &other,
            "endpoints: [http://10.0.0.9:2379]\nload_balancers: {eqiad/a/b: [http://6.6.6.6/p]}\n",
        )
        .unwrap();
        let cfg = Config::resolve(&named(&other), &system, &sudo).unwrap();
        assert!(cfg.load_balancers.is_empty(), "{:?}", cfg.load_balancers);
        assert!(
            cfg.notes.iter().any(|n| n.contains("load_balancers of")),
            "{:?}",
            cfg.notes
        );
        let own = Config::resolve(&named(&other), &system, &Privilege::Root).unwrap();
        assert!(!own.load_balancers.is_empty());
        std::fs::write(
            &system,
            "hosts: [http://10.0.0.1:2379]\nload_balancers: {eqiad/a/b: [http://lb1/p]}\n",
        )
        .unwrap();
        let cfg = Config::resolve(&named(&other), &system, &sudo).unwrap();
        let pool = "eqiad/a/b".parse().unwrap();
        assert_eq!(
            cfg.load_balancers.for_pool(&pool)[0].as_str(),
            "http://lb1/p"
        );
        // Root itself chooses freely: the empty file means the defaults.
        let cfg = Config::resolve(&named(&empty), &system, &Privilege::Root).unwrap();
        assert_eq!((cfg.audit_log, cfg.read_only), (None, false));
        // A system configuration that cannot be read stops the run rather than be skipped.
        std::fs::write(&system, "endpoints: [\n").unwrap();
        let e = Config::resolve(&named(&empty), &system, &sudo).unwrap_err();
        assert!(e.to_string().contains("config.yaml"), "{e}");
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
