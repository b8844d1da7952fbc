//! `verify` against scripted load balancers on loopback (tiny HTTP servers answering what
//! each test says, in order): what is asked again, what fails at once, and what each
//! failure names. The agent itself is in the e2e tests.

use conftool_core::Classify as _;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use conftool_core::verify::{
    verify, LbUrl, LoadBalancers, Target, VerifyError, VerifyOptions, Want,
};

/// A load balancer answering each request with the next of `answers` (the last one
/// repeated); status 0 means: accept, read, never answer.
struct Scripted {
    url: String,
    requests: Arc<Mutex<Vec<String>>>,
}

fn scripted(answers: &[(u16, &str)]) -> Scripted {
    let answers: Vec<(u16, String)> = answers.iter().map(|(s, b)| (*s, b.to_string())).collect();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = requests.clone();
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let n = {
                let mut r = seen.lock().expect("lock");
                r.push(String::from_utf8_lossy(&head).into_owned());
                r.len() - 1
            };
            let (status, body) = &answers[n.min(answers.len() - 1)];
            if *status == 0 {
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_secs(3));
                    drop(s);
                });
                continue;
            }
            let _ = write!(
                s,
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    Scripted {
        url: format!("http://{addr}/pools/be"),
        requests,
    }
}

const POOL: &str = "eqiad/web/http";

fn lbs(urls: &[&str]) -> LoadBalancers {
    let list: Vec<LbUrl> = urls.iter().map(|u| u.parse().expect("url")).collect();
    LoadBalancers::new(BTreeMap::from([(POOL.parse().expect("pool"), list)]))
}

fn target(host: &str, want: Want) -> Target {
    Target {
        pool: POOL.parse().expect("pool"),
        host: host.parse().expect("host"),
        want,
    }
}

fn opts(ms: u64) -> VerifyOptions {
    VerifyOptions {
        timeout: Duration::from_millis(ms),
        interval: Duration::from_millis(50),
        wait_sessions: false,
    }
}

const IN: &str = r#"{"pooled": true, "weight": 10, "up": true, "enabled": true}"#;
const OUT: &str = r#"{"pooled": false, "weight": 10, "up": true, "enabled": false}"#;

#[tokio::test]
async fn a_load_balancer_is_asked_again_until_the_host_is_out() {
    // Restarting (503), then still pooled, then out.
    let lb = scripted(&[(503, "cannot read haproxy"), (200, IN), (200, OUT)]);
    let v = verify(&lbs(&[&lb.url]), &[target("mw1", Want::Out)], &opts(10_000))
        .await
        .unwrap();
    assert_eq!(v.checks.len(), 1);
    let c = &v.checks[0];
    assert_eq!(
        (c.lb.as_str(), c.want, c.seen.pooled),
        (lb.url.as_str(), Want::Out, false)
    );
    let requests = lb.requests.lock().unwrap();
    assert_eq!(requests.len(), 3);
    assert!(
        requests[0].starts_with("GET /pools/be/mw1 HTTP/1.1\r\n"),
        "{}",
        requests[0]
    );
    assert!(requests[0]
        .to_ascii_lowercase()
        .contains("accept: application/json"));
}

#[tokio::test]
async fn every_load_balancer_of_every_target_is_asked() {
    let (a, b) = (
        scripted(&[(200, IN)]),
        scripted(&[(200, "enabled/up/pooled\n")]),
    );
    let targets = [
        target("mw1", Want::In),
        target("mw2", Want::In),
        target("mw1", Want::In),
    ];
    let v = verify(&lbs(&[&a.url, &b.url]), &targets, &opts(5_000))
        .await
        .unwrap();
    assert_eq!(v.checks.len(), 4, "a target given twice is asked once");
    assert_eq!(a.requests.lock().unwrap().len(), 2);
    assert_eq!(b.requests.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn the_timeout_names_what_was_last_seen() {
    let lb = scripted(&[(200, IN)]);
    let e = verify(&lbs(&[&lb.url]), &[target("mw1", Want::Out)], &opts(300))
        .await
        .unwrap_err();
    match &e {
        VerifyError::Timeout {
            want,
            last_seen,
            host,
            ..
        } => {
            assert_eq!(
                (*want, last_seen.pooled, host.as_str()),
                (Want::Out, true, "mw1")
            )
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        e.to_string(),
        format!(
            "load balancer {} (pool {POOL}): host mw1 not out of rotation within 0.3s; last \
             seen: pooled, enabled, up, weight 10",
            lb.url
        )
    );
    assert!(
        lb.requests.lock().unwrap().len() > 2,
        "asked again meanwhile"
    );
}

#[tokio::test]
async fn a_load_balancer_that_never_answers_well_is_unreachable() {
    let erring = scripted(&[(503, "haproxy: no socket")]);
    let e = verify(&lbs(&[&erring.url]), &[target("mw1", Want::In)], &opts(300))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, VerifyError::Unreachable { reason, .. } if reason == "HTTP 503: \"haproxy: no socket\""),
        "{e:?}"
    );
    let silent = scripted(&[(0, "")]);
    let e = verify(&lbs(&[&silent.url]), &[target("mw1", Want::In)], &opts(300))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, VerifyError::Unreachable { reason, .. } if reason == "no answer within 0.3s"),
        "{e:?}"
    );
    assert!(!e.is_bad_input());
}

#[tokio::test]
async fn what_waiting_cannot_change_fails_at_once() {
    let wait_sessions = VerifyOptions {
        wait_sessions: true,
        ..opts(30_000)
    };
    let cases: [(&str, u16, &str, &VerifyOptions); 4] = [
        ("NoSessions", 200, OUT, &wait_sessions),
        (
            "Kept",
            200,
            r#"{"pooled": true, "kept_by_threshold": true}"#,
            &opts(30_000),
        ),
        (
            "NotListed",
            404,
            "The desired url /pools/be/mw1 was not found",
            &opts(30_000),
        ),
        ("Unparsable", 200, &"x".repeat(100 << 10), &opts(30_000)),
    ];
    for (name, status, body, o) in cases {
        let lb = scripted(&[(status, body)]);
        let e = verify(&lbs(&[&lb.url]), &[target("mw1", Want::Out)], o)
            .await
            .unwrap_err();
        let ok = match name {
            "NoSessions" => matches!(e, VerifyError::NoSessions { .. }),
            "Kept" => matches!(e, VerifyError::KeptInRotation { .. }),
            "NotListed" => matches!(e, VerifyError::NotListed { .. }),
            _ => {
                matches!(&e, VerifyError::Unparsable { reason, .. } if reason == "an answer bigger than 64 KiB")
            }
        };
        assert!(ok, "{name}: {e:?}");
        assert_eq!(lb.requests.lock().unwrap().len(), 1, "{name}: asked once");
    }
}

#[tokio::test]
async fn a_pool_without_a_load_balancer_is_refused_before_any_is_asked() {
    let lb = scripted(&[(200, OUT)]);
    let other = Target {
        pool: "eqiad/web/other".parse().unwrap(),
        ..target("mw1", Want::Out)
    };
    let e = verify(
        &lbs(&[&lb.url]),
        &[target("mw1", Want::Out), other],
        &opts(5_000),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&e, VerifyError::NoLoadBalancer { pool } if pool.to_string() == "eqiad/web/other"),
        "{e:?}"
    );
    assert!(e.is_bad_input());
    assert!(lb.requests.lock().unwrap().is_empty());
    // Nothing to verify is verified.
    let v = verify(&LoadBalancers::default(), &[], &opts(5_000))
        .await
        .unwrap();
    assert!(v.checks.is_empty());
}
