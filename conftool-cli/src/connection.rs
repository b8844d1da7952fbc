//! Connection flags shared by every binary: `--endpoints`, `CONFTOOL_ENDPOINTS`, `--config`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use conftool_core::config::{parse_duration, DEFAULT_CONFIG_PATH};
use conftool_core::{Config, Store};

use crate::exit::BadInput;

/// How to reach etcd. Flags win over the configuration file.
#[derive(Debug, Clone, Args)]
pub struct ConnArgs {
    /// etcd client URLs, comma-separated (overrides the config file's `endpoints`).
    #[arg(long, env = "CONFTOOL_ENDPOINTS", value_delimiter = ',', global = true)]
    pub endpoints: Vec<String>,

    /// Configuration file (endpoints, namespace, TLS, auth, timeout, audit log).
    /// A missing default file is fine; a missing file given explicitly is an error.
    #[arg(long, env = "CONFTOOL_CONFIG", global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Key namespace in front of /v1 (overrides the config file's `namespace`).
    #[arg(long, global = true, value_name = "PREFIX")]
    pub namespace: Option<String>,

    /// Connect and per-request timeout, e.g. 500ms, 5s (overrides the config file).
    #[arg(long, global = true, value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Option<Duration>,
}

impl ConnArgs {
    /// The effective configuration: the file (if any), then the flags on top.
    pub fn config(&self) -> anyhow::Result<Config> {
        let mut cfg = match &self.config {
            Some(path) => Config::load(path).map_err(BadInput::wrap)?,
            None => {
                let default = PathBuf::from(DEFAULT_CONFIG_PATH);
                if default.exists() {
                    Config::load(&default).map_err(BadInput::wrap)?
                } else {
                    Config::default()
                }
            }
        };
        if !self.endpoints.is_empty() {
            cfg.endpoints = self.endpoints.clone();
        }
        if let Some(ns) = &self.namespace {
            cfg.namespace = ns.clone();
        }
        if let Some(t) = self.timeout {
            cfg.timeout = t;
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
