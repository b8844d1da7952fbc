//! `conftool-bench thresholds`: what holding the depool threshold under concurrency costs
//! (issue 17), measured, never asserted, next to etcd's own floor in the same run:
//!
//! - the floor: one etcd-client transaction comparing and writing one key (the shape of a
//!   depool's write before the threshold became atomic), and the same with one more compare
//!   over the pool's whole key range (what the atomic threshold adds): their difference is
//!   the compare's cost, at the pool size given;
//! - the library's depool of one host (`Writer::host`: point reads, the pool read that
//!   judges it, the guarded write), with the threshold judged and with it lifted (no pool
//!   read, no range compare);
//! - writers at once on one pool: how long until all of them are done, and how many landed;
//! - a rack: 40 hosts over 12 pools planned, written as one operation, and the operation
//!   ended.
//!
//! Samples are interleaved (one of each row in turn), so drift on a shared machine hits
//! every row alike.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use conftool_core::{Actor, AuditLog, Config, Guard, HostVerb, NodeName, Overrides, Store, Write};
use conftool_testkit::EtcdCluster;
use etcd_client::{Compare, CompareOp, Txn, TxnOp};

use crate::report::{loadavg, Machine};

/// Options of `conftool-bench thresholds`.
pub(crate) struct Options {
    pub samples: usize,
    pub pool: usize,
    pub writers: usize,
}

const YES: &str = r#"{"pooled":"yes","weight":1}"#;
const NO: &str = r#"{"pooled":"no","weight":1}"#;

fn key(cluster: &str, service: &str, node: &str) -> String {
    format!("/v1/pools/eqiad/{cluster}/{service}/{node}")
}

pub(crate) fn main(opts: &Options) -> anyhow::Result<()> {
    let machine = Machine::probe(
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
        .into(),
    );
    println!("{}", machine.line());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let etcd = EtcdCluster::start_with(1, &[]);
    let load = loadavg();
    rt.block_on(run(&etcd, opts))?;
    println!("load average {load:.1} before, {:.1} after", loadavg());
    Ok(())
}

async fn store(etcd: &EtcdCluster) -> anyhow::Result<Store> {
    let cfg = Config {
        endpoints: etcd.endpoints(),
        ..Config::default()
    };
    Ok(Store::connect(&cfg).await?)
}

/// A pool `cluster/apache` of `n` nodes `{cluster}{i}`, its service at `threshold`.
async fn make_pool(
    s: &Store,
    cluster: &str,
    services: &[&str],
    n: usize,
    threshold: f64,
) -> anyhow::Result<()> {
    let mut writes = Vec::new();
    for svc in services {
        writes.push(Write::Put {
            key: format!("/v1/services/{cluster}/{svc}"),
            value: format!(
                r#"{{"port":80,"default_values":{{"pooled":"yes","weight":1}},"depool_threshold":{threshold}}}"#
            ),
            guard: Guard::Absent,
        });
        for i in 0..n {
            writes.push(Write::Put {
                key: key(cluster, svc, &format!("{cluster}{i:03}")),
                value: YES.into(),
                guard: Guard::Absent,
            });
        }
    }
    s.raw().commit(&writes).await?;
    Ok(())
}

fn pct(sorted: &[Duration], p: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

fn row(name: &str, mut d: Vec<Duration>, floor: Option<Duration>) -> Duration {
    d.sort();
    let (p50, p99) = (pct(&d, 50), pct(&d, 99));
    let ratio = floor.map_or(String::new(), |f| {
        format!(
            "  {:.2}x the floor",
            p50.as_secs_f64() / f.as_secs_f64().max(1e-9)
        )
    });
    println!(
        "  {name:<58} p50 {:>7.2} ms  p99 {:>7.2} ms{ratio}",
        p50.as_secs_f64() * 1000.0,
        p99.as_secs_f64() * 1000.0
    );
    p50
}

async fn run(etcd: &EtcdCluster, opts: &Options) -> anyhow::Result<()> {
    let s = store(etcd).await?;
    let mut client = etcd_client::Client::connect(etcd.endpoints(), None).await?;
    make_pool(&s, "big", &["apache"], opts.pool, 0.5).await?;
    // A sync record, so the host verbs find nodes by point reads as in production.
    s.raw()
        .commit(&[Write::Put {
            key: "/v1/meta/sync".into(),
            value: r#"{"datacenters":["eqiad"],"git_rev":null}"#.into(),
            guard: Guard::Absent,
        }])
        .await?;
    let prefix = "/v1/pools/eqiad/big/apache/";
    let prefix_end = "/v1/pools/eqiad/big/apache0";
    let actor = Actor::from_env("conftool-bench", None);
    let node = format!("big{:03}", 0);
    let k = key("big", "apache", &node);
    let host: NodeName = node.parse()?;
    let (mut plain, mut ranged, mut judged, mut lifted) = (vec![], vec![], vec![], vec![]);
    for i in 0..opts.samples {
        // Floor: compare one key, write it.
        let rev = client.get(k.as_str(), None).await?.kvs()[0].mod_revision();
        // Each sample writes `no` then `yes`, so the node is pooled for the library's rows.
        let value = NO;
        let t = Instant::now();
        let r = client
            .txn(
                Txn::new()
                    .when(vec![Compare::mod_revision(
                        k.as_str(),
                        CompareOp::Equal,
                        rev,
                    )])
                    .and_then(vec![TxnOp::put(k.as_str(), value, None)]),
            )
            .await?;
        plain.push(t.elapsed());
        ensure!(r.succeeded(), "the floor's write lost a race");
        // Floor with the range compare.
        let got = client.get(k.as_str(), None).await?;
        let (rev, at) = (
            got.kvs()[0].mod_revision(),
            got.header().map_or(0, |h| h.revision()),
        );
        let value = YES;
        let t = Instant::now();
        let r = client
            .txn(
                Txn::new()
                    .when(vec![
                        Compare::mod_revision(k.as_str(), CompareOp::Equal, rev),
                        Compare::mod_revision(prefix, CompareOp::Less, at + 1)
                            .with_range(prefix_end),
                    ])
                    .and_then(vec![TxnOp::put(k.as_str(), value, None)]),
            )
            .await?;
        ranged.push(t.elapsed());
        ensure!(r.succeeded(), "the range compare failed");
        // The library: depool (judged), repool; depool with the threshold lifted, repool.
        for (lift, out) in [(false, &mut judged), (true, &mut lifted)] {
            let mut w = s
                .writer(&actor, &AuditLog::default())?
                .with_overrides(Overrides {
                    allow_below_threshold: lift,
                    ..Overrides::default()
                });
            let t = Instant::now();
            let done = w
                .host(HostVerb::Depool, std::slice::from_ref(&host), None)
                .await?;
            out.push(t.elapsed());
            ensure!(
                done.applied.len() == 1,
                "sample {i}: the depool did not land: {done:?}"
            );
            w.host(HostVerb::Pool, std::slice::from_ref(&host), None)
                .await?;
        }
    }
    println!(
        "one depool in a pool of {} nodes, {} samples each:",
        opts.pool, opts.samples
    );
    let floor = row("etcd-client txn: compare one key, put (floor)", plain, None);
    row(
        "etcd-client txn: + compare over the pool's key range",
        ranged,
        Some(floor),
    );
    row(
        "Writer::host depool, threshold judged (range compare)",
        judged,
        Some(floor),
    );
    row(
        "Writer::host depool, threshold lifted (no pool read)",
        lifted,
        Some(floor),
    );

    // Writers at once.
    let writers = opts.writers.min(opts.pool);
    let start = Arc::new(tokio::sync::Barrier::new(writers));
    let t = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|i| {
            let (s, start, actor) = (s.clone(), start.clone(), actor.clone());
            tokio::spawn(async move {
                let host: NodeName = format!("big{i:03}").parse().expect("name");
                let mut w = s.writer(&actor, &AuditLog::default()).expect("writer");
                start.wait().await;
                w.host(HostVerb::Depool, &[host], None).await.is_ok()
            })
        })
        .collect();
    let mut landed = 0;
    for task in tasks {
        landed += usize::from(task.await.context("writer task")?);
    }
    println!(
        "{writers} depools at once on that pool (threshold 0.5): {} landed, the rest refused, \
         all done in {:.0} ms",
        landed,
        t.elapsed().as_secs_f64() * 1000.0
    );

    // A rack: 40 hosts over 12 pools.
    let clusters = ["ra", "rb", "rc", "rd"];
    for c in clusters {
        make_pool(&s, c, &["apache", "nginx", "envoy"], 30, 0.5).await?;
    }
    let rack: Vec<Vec<NodeName>> = clusters
        .iter()
        .flat_map(|c| (0..10).map(move |i| format!("{c}{i:03}")))
        .map(|n| n.parse().map(|n| vec![n]))
        .collect::<Result<_, _>>()?;
    let mut w = s.writer(&actor, &AuditLog::default())?;
    let t = Instant::now();
    let plan = w.plan_hosts(HostVerb::Depool, &rack, None, false).await?;
    let planned = t.elapsed();
    let id = w.open_operation("depool", vec!["rack".into()]).await?;
    let applied = w.apply_hosts(&plan).await?;
    let written = t.elapsed();
    let t = Instant::now();
    let ended = w.end_operation(&id, false).await?;
    let ended_in = t.elapsed();
    println!(
        "a rack of {} hosts over 12 pools: planned in {:.1} ms, {} objects depooled as one \
         operation in {:.1} ms (planning included); the operation ended ({} restored) in {:.1} ms",
        rack.len(),
        planned.as_secs_f64() * 1000.0,
        applied.len(),
        written.as_secs_f64() * 1000.0,
        ended.restored.len(),
        ended_in.as_secs_f64() * 1000.0
    );
    Ok(())
}
