//! How many requests a command sends, counted by etcd itself (`grpc_server_handled_total` on
//! its `/metrics`, per method): one round trip where one suffices, and none to prove a lone
//! member alive before the first real request does.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;

use crate::util::*;

/// The gRPC requests etcd has answered, per method (`Range`, `Txn`, ...), every code summed.
fn handled(ctx: &Ctx) -> BTreeMap<String, u64> {
    let url = ctx.etcd.endpoint();
    let addr = url
        .strip_prefix("http://")
        .expect("a plain-text test member");
    let mut conn = TcpStream::connect(addr).expect("connect to etcd");
    conn.write_all(b"GET /metrics HTTP/1.0\r\nHost: etcd\r\n\r\n")
        .expect("ask for metrics");
    let mut text = String::new();
    conn.read_to_string(&mut text).expect("read metrics");
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Some(labels) = line.strip_prefix("grpc_server_handled_total{") else {
            continue;
        };
        let method = labels
            .split("grpc_method=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("a method label");
        let count: f64 = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .expect("a count");
        *out.entry(method.to_string()).or_default() += count as u64;
    }
    assert!(!out.is_empty(), "no request counts in etcd's metrics");
    out
}

/// The requests `args` sent (it must exit 0): each method's count after, less before.
fn requests(ctx: &Ctx, args: &[&str]) -> BTreeMap<String, u64> {
    let before = handled(ctx);
    ctx.run("confctl", args).expect_code(0);
    handled(ctx)
        .into_iter()
        .map(|(m, n)| {
            let was = before.get(&m).copied().unwrap_or_default();
            (m, n - was)
        })
        .filter(|(_, n)| *n > 0)
        .collect()
}

fn counts(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(m, n)| (m.to_string(), *n)).collect()
}

#[test]
fn commands_send_only_the_requests_their_work_needs() {
    let ctx = Ctx::new();
    let conf = ctx.copy_example("conf");
    ctx.sync(&conf, &[]).expect_code(0);
    // A selection is one range read.
    assert_eq!(
        requests(&ctx, &["select", "dc=eqiad,cluster=appservers", "get"]),
        counts(&[("Range", 1)])
    );
    // A host depool: the service keys and sync record, the host's candidate keys, its pool
    // (to judge the threshold), and the guarded write: four transactions.
    let depool = ["depool", "--hostname", "mw1018", "--service", "apache"];
    assert_eq!(requests(&ctx, &depool), counts(&[("Txn", 4)]));
    // Nothing to change: found, and no pool read or write.
    assert_eq!(requests(&ctx, &depool), counts(&[("Txn", 2)]));
    // Pooling back lowers no pool: found, then written.
    let pool = ["pool", "--hostname", "mw1018", "--service", "apache"];
    assert_eq!(requests(&ctx, &pool), counts(&[("Txn", 3)]));
}
