//! Connection flags shared by every binary: `--endpoints`, `CONFTOOL_ENDPOINTS`, `--config`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use conftool_core::config::{parse_duration, CallerSettings, DEFAULT_CONFIG_PATH};
use conftool_core::{Config, Store};
use conftool_trust::Privilege;

use crate::exit::BadInput;

/// How to reach etcd. Flags win over the configuration file.
#[derive(Debug, Clone, Args)]
pub struct ConnArgs {
    /// etcd client URLs, comma-separated (overrides the config file's `endpoints`)
    /// [env: CONFTOOL_ENDPOINTS].
    #[arg(long, value_delimiter = ',', global = true, value_name = "URLS")]
    pub endpoints: Vec<String>,

    /// Configuration file (endpoints, namespace, TLS, auth, timeout, audit log).
    /// A missing default file is fine; a missing file given explicitly is an error
    /// [env: CONFTOOL_CONFIG].
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Key namespace in front of /v1 (overrides the config file's `namespace`).
    #[arg(long, global = true, value_name = "PREFIX")]
    pub namespace: Option<String>,

    /// Connect and per-request timeout, e.g. 500ms, 5s (overrides the config file).
    #[arg(long, global = true, value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Option<Duration>,
}

impl ConnArgs {
    /// The effective configuration: the file (if any), then the flags (or their
    /// environment variables) on top, under the trust rules of
    /// [`conftool_trust`] when running through sudo.
    pub fn config(&self) -> anyhow::Result<Config> {
        // The variables are read here rather than by clap, so that usage messages do not
        // show a flag as given when only its variable is set.
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let config = self
            .config
            .clone()
            .or_else(|| env("CONFTOOL_CONFIG").map(PathBuf::from));
        let endpoints: Vec<String> = if self.endpoints.is_empty() {
            env("CONFTOOL_ENDPOINTS")
                .map(|v| v.split(',').map(|s| s.trim().to_string()).collect())
                .unwrap_or_default()
        } else {
            self.endpoints.clone()
        };
        if endpoints.iter().any(String::is_empty) {
            return Err(BadInput::msg(
                "--endpoints (or CONFTOOL_ENDPOINTS) has an empty URL",
            ));
        }
        let caller = CallerSettings {
            config,
            endpoints,
            namespace: self.namespace.clone(),
            timeout: self.timeout,
        };
        let cfg = Config::resolve(
            &caller,
            Path::new(DEFAULT_CONFIG_PATH),
            &Privilege::current(),
        )?;
        // What the configuration holds that means nothing here (the Python tool's IRC
        // relay, say): said once.
        let prog = std::env::args()
            .next()
            .and_then(|a| a.rsplit('/').next().map(str::to_string))
            .unwrap_or_else(|| "conftool".into());
        for note in &cfg.notes {
            crate::output::warn(&prog, note);
        }
        Ok(cfg)
    }

    /// Connect to etcd with the effective configuration.
    pub async fn connect(&self) -> anyhow::Result<(Config, Store)> {
        let cfg = self.config()?;
        // The store's errors already name the endpoints.
        let store = Store::connect(&cfg).await?;
        Ok((cfg, store))
    }
}
