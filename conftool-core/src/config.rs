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

use crate::error::Error;
use crate::keys::Keyspace;

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
        }
    }
}

impl Config {
    /// Read a configuration file.
    pub fn load(path: &Path) -> Result<Config, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Config {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        Config::from_yaml(path, &text)
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

    /// The keyspace under this configuration's namespace.
    pub fn keyspace(&self) -> Keyspace {
        Keyspace::new(&self.namespace)
    }

    /// The etcd password, read from `password_file`.
    pub fn password(&self) -> Result<Option<String>, Error> {
        let Some(path) = &self.password_file else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path).map_err(|e| Error::Config {
            path: path.clone(),
            reason: format!("cannot read password file: {e}"),
        })?;
        Ok(Some(text.lines().next().unwrap_or_default().to_string()))
    }
}

/// Parse `500ms`, `5s`, `2m` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?}: expected e.g. 500ms, 5s or 1m"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("invalid duration {s:?}: unit must be ms, s or m")),
    };
    if !(secs.is_finite() && secs > 0.0 && secs < 86_400.0) {
        return Err(format!(
            "invalid duration {s:?}: must be positive and under a day"
        ));
    }
    Ok(Duration::from_secs_f64(secs))
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
        assert!(parse_duration("-1s").is_err());
    }
}
