//! The floor: the same keys and values the tools handle, moved straight through etcd-client
//! the fastest simple way (transactions of 128 puts, 8 in flight; one range read in pages of
//! 100,000 pinned to one revision), and the same YAML parsed into plain values. Each floor
//! operation runs as its own process (`conftool-bench floor ...`), like the tools, so both
//! sides pay for process start-up and connecting, and both get a peak RSS of their own.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{ensure, Context};
use clap::{Args, ValueEnum};
use etcd_client::{Client, Compare, CompareOp, GetOptions, KvClient, Txn, TxnOp};
use futures::stream::{self, StreamExt, TryStreamExt};

use crate::fleet::{Fleet, ROOT_PREFIX, SELECTED_PREFIX};

/// Puts per transaction (etcd's default `--max-txn-ops`).
const TXN_OPS: usize = 128;
/// Transactions in flight.
const IN_FLIGHT: usize = 8;
/// Keys per page of a range read: as large as the tools' own (etcd 3.4 visits the rest of
/// the range for every page, so small pages make big reads quadratic).
const PAGE: i64 = 100_000;

/// Which floor operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
pub(crate) enum Mode {
    /// Write the whole fleet (services and objects) into an empty etcd.
    Write,
    /// Read everything under /v1/.
    Read,
    /// Parse the data directory's YAML files into plain values.
    Parse,
    /// Read the selected tenth of the fleet.
    ReadSelected,
    /// Read the selected tenth and put pooled=no into each of its objects.
    SetSelected,
    /// Get one key and put it back changed.
    Single,
    /// Read the key's whole pool (its parent prefix), then put the key changed in one
    /// transaction that compares the pool's range at the revision read: what an atomic
    /// depool threshold costs at the least.
    PoolPut,
}

impl Mode {
    /// The mode as written on the command line.
    pub(crate) fn arg(self) -> String {
        self.to_possible_value()
            .map(|v| v.get_name().to_string())
            .unwrap_or_default()
    }
}

/// `conftool-bench floor MODE ...` (run by the bench itself, as a child process).
#[derive(Debug, Args)]
pub(crate) struct FloorArgs {
    /// The operation.
    #[arg(value_enum)]
    pub mode: Mode,
    /// The etcd client URL.
    #[arg(long, default_value = "")]
    pub endpoint: String,
    /// Fleet size (for `write`).
    #[arg(long, default_value_t = 0)]
    pub objects: usize,
    /// Data directory (for `parse`).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// The key (for `single` and `pool-put`).
    #[arg(long, default_value = "")]
    pub key: String,
}

/// What a floor process reports on stdout, as one JSON line.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct FloorReport {
    /// Keys written or read, or YAML documents parsed.
    pub keys: usize,
    /// Seconds spent generating the key list before connecting: work the tools do not do
    /// (they parse YAML instead, which is part of what is measured), subtracted from the
    /// floor's wall time.
    pub setup_s: f64,
    /// Seconds from connecting to the end of the operation.
    pub op_s: f64,
}

/// Run one floor operation and print its report.
pub(crate) fn main(args: &FloorArgs) -> anyhow::Result<()> {
    // The same runtime shape as the tools (conftool-cli's exit::run): one thread, the
    // fastest for one process's requests here as for the tools.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = rt.block_on(run(args))?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

async fn run(args: &FloorArgs) -> anyhow::Result<FloorReport> {
    let setup = Instant::now();
    let kvs: Vec<(String, String)> = match args.mode {
        Mode::Write => Fleet::generate(args.objects)
            .expected_kvs()
            .into_iter()
            .collect(),
        _ => Vec::new(),
    };
    let setup_s = setup.elapsed().as_secs_f64();
    let start = Instant::now();
    let keys = match args.mode {
        Mode::Parse => parse_dir(args.dir.as_ref().context("parse needs --dir")?)?,
        Mode::Write => {
            let kv = connect(&args.endpoint).await?;
            put_all(&kv, kvs).await?
        }
        Mode::Read => read_prefix(&connect(&args.endpoint).await?, ROOT_PREFIX)
            .await?
            .1
            .len(),
        Mode::ReadSelected => read_prefix(&connect(&args.endpoint).await?, SELECTED_PREFIX)
            .await?
            .1
            .len(),
        Mode::SetSelected => {
            let kv = connect(&args.endpoint).await?;
            let (_, read) = read_prefix(&kv, SELECTED_PREFIX).await?;
            let value = r#"{"pooled":"no","weight":1}"#.to_string();
            put_all(
                &kv,
                read.into_iter().map(|(k, _)| (k, value.clone())).collect(),
            )
            .await?
        }
        Mode::Single => {
            let mut kv = connect(&args.endpoint).await?;
            let got = kv.get(args.key.as_str(), None).await?;
            ensure!(got.kvs().len() == 1, "key {} not found", args.key);
            kv.put(args.key.as_str(), r#"{"pooled":"no","weight":1}"#, None)
                .await?;
            1
        }
        Mode::PoolPut => {
            let kv = connect(&args.endpoint).await?;
            let (parent, _) = args
                .key
                .rsplit_once('/')
                .context("pool-put needs a key with a parent")?;
            let prefix = format!("{parent}/");
            let (revision, pool) = read_prefix(&kv, &prefix).await?;
            ensure!(
                pool.iter().any(|(k, _)| *k == args.key),
                "key {} not found",
                args.key
            );
            let mut end = prefix.as_bytes().to_vec();
            if let Some(last) = end.last_mut() {
                *last += 1;
            }
            let unchanged = Compare::mod_revision(prefix.as_str(), CompareOp::Less, revision + 1)
                .with_range(end);
            let txn = Txn::new().when([unchanged]).and_then([TxnOp::put(
                args.key.as_str(),
                r#"{"pooled":"no","weight":1}"#,
                None,
            )]);
            let resp = kv.clone().txn(txn).await?;
            ensure!(resp.succeeded(), "the pool changed while it was read");
            pool.len()
        }
    };
    Ok(FloorReport {
        keys,
        setup_s,
        op_s: start.elapsed().as_secs_f64(),
    })
}

/// A KV client for one endpoint, able to decode pages of any realistic size.
pub(crate) async fn connect(endpoint: &str) -> anyhow::Result<KvClient> {
    let client = Client::connect([endpoint], None)
        .await
        .with_context(|| format!("connecting to {endpoint}"))?;
    Ok(client.kv_client().max_decoding_message_size(256 << 20))
}

/// Put every pair, in transactions of [`TXN_OPS`] plain puts, [`IN_FLIGHT`] at a time.
async fn put_all(kv: &KvClient, kvs: Vec<(String, String)>) -> anyhow::Result<usize> {
    let n = kvs.len();
    let txns: Vec<Txn> = kvs
        .chunks(TXN_OPS)
        .map(|chunk| {
            Txn::new().and_then(
                chunk
                    .iter()
                    .map(|(k, v)| TxnOp::put(k.as_str(), v.as_str(), None))
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    stream::iter(txns)
        .map(|txn| {
            let mut kv = kv.clone();
            async move { kv.txn(txn).await }
        })
        .buffer_unordered(IN_FLIGHT)
        .try_for_each(|_| async { Ok(()) })
        .await?;
    Ok(n)
}

/// Every key under `prefix` with its value, in pages of [`PAGE`] keys pinned to the first
/// page's revision; returns that revision too.
pub(crate) async fn read_prefix(
    kv: &KvClient,
    prefix: &str,
) -> anyhow::Result<(i64, Vec<(String, String)>)> {
    let mut end = prefix.as_bytes().to_vec();
    // Prefixes here are ASCII ending in '/': bumping the last byte gives the range end.
    if let Some(last) = end.last_mut() {
        *last += 1;
    }
    let mut start = prefix.as_bytes().to_vec();
    let mut revision = 0;
    let mut out = Vec::new();
    loop {
        let mut opts = GetOptions::new().with_range(end.clone()).with_limit(PAGE);
        if revision > 0 {
            opts = opts.with_revision(revision);
        }
        let mut resp = kv.clone().get(start.clone(), Some(opts)).await?;
        if revision == 0 {
            revision = resp.header().map(|h| h.revision()).unwrap_or_default();
        }
        let more = resp.more();
        let kvs = resp.take_kvs();
        if let Some(last) = kvs.last() {
            start = last.key().to_vec();
            start.push(0);
        }
        out.extend(kvs.into_iter().map(|kv| {
            (
                String::from_utf8_lossy(kv.key()).into_owned(),
                String::from_utf8_lossy(kv.value()).into_owned(),
            )
        }));
        if !more {
            return Ok((revision, out));
        }
    }
}

/// Parse `services.yaml` and every `<dc>/pools.yaml` into plain YAML values (no schema,
/// no checks): the least any loader must do. Returns the number of files parsed.
fn parse_dir(dir: &std::path::Path) -> anyhow::Result<usize> {
    let mut files = vec![dir.join("services.yaml")];
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let pools = entry?.path().join("pools.yaml");
        if pools.is_file() {
            files.push(pools);
        }
    }
    for f in &files {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        let value: yaml_serde::Value =
            yaml_serde::from_str(&text).with_context(|| format!("parsing {}", f.display()))?;
        ensure!(!value.is_null(), "{} is empty", f.display());
    }
    Ok(files.len())
}
