//! The status page and metrics, served over HTTP from what the daemon keeps up to date.

use std::io::{Read, Write};
use std::net::TcpStream;

use conftool_core::{Actor, AuditLog, LoadBalancers};
use conftool_maintd::{http, Ctx, Daemon, Shared};

use crate::harness::World;

fn get(addr: std::net::SocketAddr, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    let (head, body) = out.split_once("\r\n\r\n").expect("an HTTP answer");
    (
        head.lines().next().unwrap_or("").to_string(),
        body.to_string(),
    )
}

#[test]
fn the_status_page_shows_events_and_the_metrics_count_them_by_state() {
    let w = World::new(3, 0.0);
    let status = Shared::default();
    let d = Daemon::new(
        Ctx {
            store: w.store(),
            cfg: w.config(""),
            lbs: LoadBalancers::default(),
            actor: Actor::from_env("conftool-maintd", None),
            audit: AuditLog::default(),
            by: "maintd-a".into(),
        },
        status.clone(),
    );
    w.say("mw1", r#"{"status":"evacuate"}"#);
    w.say("mw2", "nonsense");
    w.once(&d);
    let addr = w.rt.block_on(async {
        let l = http::bind("127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("bind");
        let addr = l.local_addr().expect("addr");
        tokio::spawn(http::serve(l, status));
        addr
    });
    let (line, body) = get(addr, "/status");
    assert_eq!(line, "HTTP/1.1 200 OK");
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(v["nodes"]["mw1"], "evacuate");
    assert!(
        v["nodes"]["mw2"]
            .as_str()
            .unwrap_or("")
            .starts_with("malformed: not JSON"),
        "{v}"
    );
    let states: Vec<&str> = v["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["state"].as_str())
        .collect();
    assert_eq!(states.len(), 2, "{v}");
    assert!(
        states.contains(&"ready") && states.contains(&"observed"),
        "{v}"
    );
    let (_, m) = get(addr, "/metrics");
    for want in [
        "conftool_maintd_events{state=\"ready\"} 1",
        "conftool_maintd_events{state=\"observed\"} 1",
        "conftool_maintd_actions_total{action=\"evacuate\",outcome=\"ok\"} 1",
        "conftool_maintd_round_duration_seconds_count 1",
        "conftool_maintd_malformed_total 1",
    ] {
        assert!(m.lines().any(|l| l == want), "no {want:?} in\n{m}");
    }
    let (line, _) = get(addr, "/nope");
    assert_eq!(line, "HTTP/1.1 404 Not Found");
}
