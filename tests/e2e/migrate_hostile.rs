//! `conftool-migrate` against v2 sources it cannot trust (issue 16, finding 8) and across
//! several v2 endpoints (issue 19). Keys that would forge output or resolve to another path
//! are reported escaped and not copied; an answer past the caps on bytes or keys, or one
//! listing a key twice, is refused (exit 2, v3 unchanged), an endless one as soon as the cap
//! is passed. Answers no real etcd gives come from a small fake v2 server here (the hostile
//! peer under test); everything else is a real etcd serving v2, and v3 is always real.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crate::measure::{measured, MAX_RSS};
use crate::util::*;

/// What the fake server answers to every request.
#[derive(Clone)]
enum Answer {
    /// This status and JSON body.
    Json(u16, String),
    /// A body that never ends (chunked, or with this declared length), until the reader
    /// goes away or 4 GiB were sent.
    Endless { declared: Option<u64> },
}

/// A v2 "server" on loopback that answers every request the same way.
struct FakeV2 {
    url: String,
    stop: Arc<AtomicBool>,
    /// Body bytes written so far (over all connections).
    sent: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeV2 {
    fn start(answer: Answer) -> FakeV2 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let (stop2, sent2) = (stop.clone(), sent.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    return;
                }
                if let Ok(conn) = conn {
                    serve(conn, &answer, &sent2);
                }
            }
        });
        FakeV2 {
            url,
            stop,
            sent,
            thread: Some(thread),
        }
    }
}

impl Drop for FakeV2 {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.url.trim_start_matches("http://"));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Read a request's head, write the answer; stop at the first failed write (the client
/// went away).
fn serve(conn: TcpStream, answer: &Answer, sent: &AtomicU64) {
    let mut reader = BufReader::new(conn.try_clone().expect("clone"));
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
        line.clear();
    }
    let mut w = conn;
    match answer {
        Answer::Json(status, body) => {
            let head = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nX-Etcd-Index: 7\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = w.write_all(head.as_bytes());
            let _ = w.write_all(body.as_bytes());
            sent.fetch_add(body.len() as u64, Ordering::SeqCst);
        }
        Answer::Endless { declared } => {
            let length = match declared {
                Some(n) => format!("Content-Length: {n}\r\n"),
                None => "Transfer-Encoding: chunked\r\n".to_string(),
            };
            let head = format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{length}\r\n");
            if w.write_all(head.as_bytes()).is_err() {
                return;
            }
            let item = r#"{"key":"/conftool/v1/x","value":"{}"},"#;
            let data = item.repeat((64 << 10) / item.len());
            let frame = |d: &str| match declared {
                Some(_) => d.to_string(),
                None => format!("{:x}\r\n{d}\r\n", d.len()),
            };
            let chunk = frame(&data);
            if w.write_all(frame(r#"{"node":{"key":"/conftool","dir":true,"nodes":["#).as_bytes())
                .is_err()
            {
                return;
            }
            while sent.load(Ordering::SeqCst) < 4 << 30 {
                if w.write_all(chunk.as_bytes()).is_err() {
                    return;
                }
                sent.fetch_add(data.len() as u64, Ordering::SeqCst);
            }
        }
    }
    let _ = w.flush();
    let mut rest = Vec::new();
    let _ = reader.read_to_end(&mut rest);
}

/// `conftool-migrate --from-v2 FROM --namespace /conftool ARGS...` into the context's etcd.
fn cmd(ctx: &Ctx, from: &str, args: &[&str]) -> Command {
    let mut c = ctx.cmd("conftool-migrate");
    c.args(["--from-v2", from, "--namespace", "/conftool"])
        .args(args);
    c
}

fn migrate(ctx: &Ctx, from: &str, args: &[&str]) -> Run {
    Run::from(cmd(ctx, from, args).output().expect("run conftool-migrate"))
}

/// Neither output holds a control character other than the newlines ending lines.
#[track_caller]
fn no_raw_controls(run: &Run) {
    for (name, out) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
        let bad: Vec<char> = out
            .chars()
            .filter(|c| c.is_control() && *c != '\n')
            .collect();
        assert!(bad.is_empty(), "{name} holds {bad:?}: {out}");
    }
}

/// A v2 answer holding `nodes` (key, value) under /conftool, as etcd formats it.
fn answer(nodes: &[(&str, &str)]) -> String {
    let items: Vec<String> = nodes
        .iter()
        .map(|(k, v)| {
            serde_json::json!({"key": k, "value": v, "modifiedIndex": 5, "createdIndex": 5})
                .to_string()
        })
        .collect();
    format!(
        r#"{{"action":"get","node":{{"key":"/conftool","dir":true,"nodes":[{}]}}}}"#,
        items.join(",")
    )
}

const GOOD: &str = "/conftool/v1/pools/eqiad/appservers/apache/mw1018";
const VALUE: &str = r#"{"pooled": "yes", "weight": 10}"#;

#[test]
fn keys_that_forge_lines_or_paths_are_reported_escaped_and_never_copied() {
    let ctx = Ctx::new();
    let hostile = [
        ("/conftool/v1/pools/a/\u{1b}]0;owned\u{7}\u{1b}[2J", VALUE),
        (
            "/conftool/v1/pools/b\n+/conftool/v1/forged {\"pooled\": \"yes\"}",
            VALUE,
        ),
        ("/conftool/v1/pools/../../../etc/x", VALUE),
        ("/conftool/v1//pools/y", VALUE),
        ("/conftool/v1/pools/./z", VALUE),
    ];
    let mut nodes = hostile.to_vec();
    nodes.push((GOOD, VALUE));
    let fake = FakeV2::start(Answer::Json(200, answer(&nodes)));
    let before = ctx.state();
    let dry = migrate(&ctx, &fake.url, &[]).expect_code(0);
    no_raw_controls(&dry);
    // The one good key is the diff; the others are named, escaped, in one warning.
    let plus: Vec<&str> = dry.stdout.lines().filter(|l| l.starts_with('+')).collect();
    assert_eq!(plus.len(), 2, "{}", dry.stdout); // the +++ header and the good key
    assert!(
        dry.stdout.contains(&format!("+{GOOD} {VALUE}")),
        "{}",
        dry.stdout
    );
    assert!(
        dry.stderr.contains(
            "5 v2 keys have a '.', '..' or empty segment or a control character, which no \
             conftool tool writes, and are not copied:"
        ),
        "{}",
        dry.stderr
    );
    for shown in [
        r"/conftool/v1/pools/a/\x1b]0;owned\x07\x1b[2J",
        r"/conftool/v1/pools/b\n+/conftool/v1/forged",
        "/conftool/v1/pools/../../../etc/x",
        "/conftool/v1//pools/y",
    ] {
        assert!(dry.stderr.contains(shown), "{shown}: {}", dry.stderr);
    }
    assert!(
        dry.stderr.contains("5 unsafe keys skipped"),
        "{}",
        dry.stderr
    );
    assert_eq!(ctx.state(), before);
    // Applied: the good key only, and verified.
    let run = migrate(&ctx, &fake.url, &["--apply"]).expect_code(0);
    no_raw_controls(&run);
    assert!(
        run.stderr.contains("Verified: all 1 v2 values"),
        "{}",
        run.stderr
    );
    let after: Vec<(String, String)> = ctx
        .dump()
        .into_iter()
        .filter(|(k, _)| k.starts_with("/conftool"))
        .collect();
    assert_eq!(after, vec![(GOOD.to_string(), VALUE.to_string())]);
}

/// `PUT /v2/keys<key>` on a real etcd, the key's bytes percent-encoded.
fn v2_put(endpoint: &str, key: &str, value: &str) {
    let addr = endpoint.trim_start_matches("http://");
    let escape = |s: &str, keep: &[u8]| -> String {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || keep.contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    };
    let body = format!("value={}", escape(value, b"-._~"));
    let mut conn = TcpStream::connect(addr).expect("connect to v2");
    let req = format!(
        "PUT /v2/keys{} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: \
         application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        escape(key, b"/-._~"),
        body.len()
    );
    conn.write_all(req.as_bytes()).expect("send");
    let mut status = String::new();
    BufReader::new(conn).read_line(&mut status).expect("status");
    assert!(
        status.contains(" 201 ") || status.contains(" 200 "),
        "PUT {key:?}: {status}"
    );
}

/// A real etcd stores keys with control characters (it cleans `..` away): the same holds.
#[test]
fn a_real_v2_store_with_control_characters_in_keys_is_migrated_without_them() {
    let ctx = Ctx {
        etcd: Etcd::start_v2(),
        dir: conftool_testkit::temp_dir("migrate-"),
    };
    let ep = ctx.etcd.endpoint();
    v2_put(&ep, "/conftool/v1/pools/x\u{1b}[31mred", VALUE);
    v2_put(&ep, "/conftool/v1/pools/y\nforged", VALUE);
    v2_put(&ep, GOOD, VALUE);
    let run = migrate(&ctx, &ep, &["--apply"]).expect_code(0);
    no_raw_controls(&run);
    assert!(
        run.stderr.contains(r"/conftool/v1/pools/x\x1b[31mred"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(r"/conftool/v1/pools/y\nforged"),
        "{}",
        run.stderr
    );
    let v3: Vec<String> = ctx
        .dump()
        .into_keys()
        .filter(|k| k.starts_with("/conftool"))
        .collect();
    assert_eq!(v3, vec![GOOD.to_string()]);
}

#[test]
fn an_answer_listing_a_key_twice_is_refused() {
    let ctx = Ctx::new();
    let fake = FakeV2::start(Answer::Json(
        200,
        answer(&[(GOOD, VALUE), ("/conftool/v1/other", "{}"), (GOOD, "{}")]),
    ));
    let before = ctx.state();
    let run = migrate(&ctx, &fake.url, &["--apply"]).expect_code(2);
    assert!(
        run.stderr.contains(&format!(
            "the answer lists the key {GOOD} twice; a v2 store holds each key once, so the \
             answer is not copied; nothing written"
        )),
        "{}",
        run.stderr
    );
    assert_eq!(ctx.state(), before);
}

#[test]
fn an_endless_answer_is_refused_once_the_cap_is_passed_and_not_read_further() {
    let ctx = Ctx::new();
    let before = ctx.state();
    // The default cap, measured: bounded by it, refused, nothing written.
    let fake = FakeV2::start(Answer::Endless { declared: None });
    let (run, rss) = measured(&cmd(&ctx, &fake.url, &["--apply"]));
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains(&format!(
            "etcd v2 at {}: the answer is larger than the 32 MiB a migration reads; not read \
             further (raise the cap with --v2-max-bytes if this is intended); nothing written",
            fake.url
        )),
        "{}",
        run.stderr
    );
    assert!(rss < MAX_RSS, "peak RSS {rss} bytes");
    assert_eq!(ctx.state(), before);
    // A smaller cap: the server could send little more than it (plus what the sockets
    // buffer) before the reader went away.
    let fake = FakeV2::start(Answer::Endless { declared: None });
    let run = migrate(&ctx, &fake.url, &["--v2-max-bytes", "2MiB"]).expect_code(2);
    assert!(
        run.stderr.contains("larger than the 2 MiB"),
        "{}",
        run.stderr
    );
    let url = fake.url.clone();
    let sent = fake.sent.clone();
    drop(fake);
    let sent = sent.load(Ordering::SeqCst);
    assert!(
        sent < 2 * 1024 * 1024 + (32 << 20),
        "{url} sent {sent} bytes"
    );
    // A stated length over the cap: refused before the body is read.
    let fake = FakeV2::start(Answer::Endless {
        declared: Some(3 << 30),
    });
    let run = migrate(&ctx, &fake.url, &[]).expect_code(2);
    assert!(
        run.stderr.contains("(it says 3221225472 bytes)"),
        "{}",
        run.stderr
    );
    assert_eq!(ctx.state(), before);
}

#[test]
fn more_keys_than_the_cap_are_refused_and_a_raised_cap_lets_them_through() {
    let ctx = Ctx {
        etcd: Etcd::start_v2(),
        dir: conftool_testkit::temp_dir("migrate-"),
    };
    let ep = ctx.etcd.endpoint();
    for i in 0..6 {
        v2_put(
            &ep,
            &format!("/conftool/v1/pools/eqiad/a/apache/mw{i}"),
            VALUE,
        );
    }
    // 6 values and 4 directories (v1, pools, eqiad, a, apache: 5) under /conftool.
    let before = ctx.state();
    let run = migrate(&ctx, &ep, &["--apply", "--v2-max-keys", "10"]).expect_code(2);
    assert!(
        run.stderr.contains(
            "more than the 10 keys under /conftool a migration holds; not read further (raise \
             the cap with --v2-max-keys if this is intended); nothing written"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(ctx.state(), before);
    migrate(&ctx, &ep, &["--apply", "--v2-max-keys", "11"]).expect_code(0);
    assert_eq!(ctx.count("/conftool/v1/pools/"), 6);
}

#[test]
fn the_next_v2_endpoint_is_read_when_one_is_down_or_failing() {
    let ctx = Ctx {
        etcd: Etcd::start_v2(),
        dir: conftool_testkit::temp_dir("migrate-"),
    };
    let ep = ctx.etcd.endpoint();
    v2_put(&ep, GOOD, VALUE);
    let closed = format!("http://127.0.0.1:{}", conftool_testkit::free_port());
    let failing = FakeV2::start(Answer::Json(
        500,
        r#"{"errorCode":300,"message":"Raft Internal Error"}"#.into(),
    ));
    // Dry run through a closed port and a member without a leader: the real one answers,
    // and the diff says which.
    let from = format!("{closed},{},{ep}", failing.url);
    let dry = migrate(&ctx, &from, &[]).expect_code(0);
    assert!(
        dry.stdout.contains(&format!("+++ etcd v2 {ep} /conftool")),
        "{}",
        dry.stdout
    );
    migrate(&ctx, &from, &["--apply"]).expect_code(0);
    assert_eq!(ctx.dump().get(GOOD).map(String::as_str), Some(VALUE));
    // None answering: a runtime failure naming each, nothing written.
    let before = ctx.state();
    let down = migrate(&ctx, &format!("{closed},{}", failing.url), &["--apply"]).expect_code(1);
    assert!(
        down.stderr.contains(&format!(
            "no v2 endpoint could be read: etcd v2 at {closed}: "
        )) && down
            .stderr
            .contains(&format!("etcd v2 at {} answered 500", failing.url)),
        "{}",
        down.stderr
    );
    assert_eq!(ctx.state(), before);
    // One scheme for all.
    let mixed = migrate(&ctx, &format!("{ep},https://127.0.0.1:1"), &[]).expect_code(2);
    assert!(mixed.stderr.contains("the same scheme"), "{}", mixed.stderr);
}
