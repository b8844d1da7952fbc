//! `conftool-migrate`: a Python deployment's live state, in etcd v2, moved to v3 byte for
//! byte, against a real etcd 3.4 serving both APIs.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{Ctx, Run};
use conftool_testkit::Etcd;

/// A context whose etcd also serves v2.
fn v2_ctx() -> Ctx {
    Ctx {
        etcd: Etcd::start_v2(),
        dir: conftool_testkit::temp_dir("migrate-"),
    }
}

/// `conftool-migrate` pointed at the context's etcd as both source and destination, with no
/// config file and no inherited settings.
fn cmd(ctx: &Ctx, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_conftool-migrate"));
    c.env("CONFTOOL_ENDPOINTS", ctx.etcd.endpoints_arg())
        .env_remove("CONFTOOL_CONFIG")
        .env("USER", "tester")
        .env_remove("SUDO_USER")
        .stdin(Stdio::null())
        .args([
            "--from-v2",
            &ctx.etcd.endpoint(),
            "--namespace",
            "/conftool",
        ])
        .args(args);
    c
}

fn migrate(ctx: &Ctx, args: &[&str]) -> Run {
    Run::from(cmd(ctx, args).output().expect("run conftool-migrate"))
}

/// `application/x-www-form-urlencoded` escaping of a value.
fn form_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Read one HTTP/1.1 response (Content-Length or chunked) and return its status.
fn read_response(r: &mut impl BufRead) -> u16 {
    let mut line = String::new();
    r.read_line(&mut line).expect("status line");
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {line:?}"));
    let (mut len, mut chunked) = (0usize, false);
    loop {
        line.clear();
        r.read_line(&mut line).expect("header");
        let h = line.trim_end().to_ascii_lowercase();
        if h.is_empty() {
            break;
        }
        if let Some(v) = h.strip_prefix("content-length:") {
            len = v.trim().parse().expect("content-length");
        }
        chunked |= h == "transfer-encoding: chunked";
    }
    if !chunked {
        r.read_exact(&mut vec![0; len]).expect("body");
        return status;
    }
    loop {
        line.clear();
        r.read_line(&mut line).expect("chunk size");
        let n = usize::from_str_radix(line.trim(), 16).expect("chunk size");
        r.read_exact(&mut vec![0; n + 2]).expect("chunk");
        if n == 0 {
            return status;
        }
    }
}

/// Write `items` to etcd's v2 API as the Python tool does (`PUT /v2/keys<key>`, form body
/// `value=...`), over 64 keep-alive connections in parallel.
fn v2_put_all(endpoint: &str, items: &[(String, String)]) {
    let addr = endpoint.trim_start_matches("http://").to_string();
    let per = items.len().div_ceil(64).max(1);
    std::thread::scope(|s| {
        for chunk in items.chunks(per) {
            let addr = addr.clone();
            s.spawn(move || {
                let conn = TcpStream::connect(&addr).expect("connect to v2");
                let mut reader = BufReader::new(conn.try_clone().expect("clone"));
                let mut w = conn;
                for (key, value) in chunk {
                    let body = format!("value={}", form_escape(value));
                    let req = format!(
                        "PUT /v2/keys{key} HTTP/1.1\r\nHost: {addr}\r\n\
                         Content-Type: application/x-www-form-urlencoded\r\n\
                         Content-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    w.write_all(req.as_bytes()).expect("send");
                    let status = read_response(&mut reader);
                    assert!(status == 200 || status == 201, "PUT {key}: {status}");
                }
            });
        }
    });
}

/// One request on its own connection; returns the status.
fn v2_request(endpoint: &str, head: &str, body: &str) -> u16 {
    let addr = endpoint.trim_start_matches("http://");
    let mut conn = TcpStream::connect(addr).expect("connect to v2");
    let req = format!(
        "{head}\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(req.as_bytes()).expect("send");
    read_response(&mut BufReader::new(conn))
}

/// A Python-style deployment: `objects` pool objects (some depooled, some inactive, weights
/// varied), service definitions, and a key of another object type with non-ASCII text.
/// Returns what a migration must copy.
fn python_fleet(objects: usize) -> BTreeMap<String, String> {
    let mut keys = BTreeMap::new();
    let clusters = [
        "appservers",
        "api",
        "jobrunner",
        "cache_text",
        "cache_upload",
    ];
    for i in 0..objects {
        let dc = if i % 2 == 0 { "eqiad" } else { "codfw" };
        let cluster = clusters[(i / 2) % clusters.len()];
        let service = if (i / 10) % 2 == 0 { "apache" } else { "nginx" };
        let pooled = match i % 13 {
            0 => "inactive",
            1 | 2 => "no",
            _ => "yes",
        };
        // json.dumps of the Python tool's dict: ", " and ": " separators.
        let value = format!("{{\"pooled\": \"{pooled}\", \"weight\": {}}}", i % 31);
        keys.insert(
            format!("/conftool/v1/pools/{dc}/{cluster}/{service}/mw{i:05}.{dc}.wmnet"),
            value,
        );
    }
    for c in clusters {
        for s in ["apache", "nginx"] {
            keys.insert(
                format!("/conftool/v1/services/{c}/{s}"),
                r#"{"default_values": {"pooled": "no", "weight": 10}, "port": 80, "datacenters": ["eqiad", "codfw"]}"#.to_string(),
            );
        }
    }
    keys.insert(
        "/conftool/v1/mediawiki-config/eqiad/ReadOnly".into(),
        "{\"val\": \"caf\\u00e9 \u{e9}t\u{e9} \u{1f600}\"}".into(),
    );
    keys
}

/// Populate v2 with `fleet` plus what must not be copied: a non-JSON value, a key with a
/// TTL, an empty directory.
fn populate(ctx: &Ctx, fleet: &BTreeMap<String, String>) {
    let items: Vec<(String, String)> = fleet
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .chain([("/conftool/v1/notes".to_string(), "plain text".to_string())])
        .collect();
    v2_put_all(&ctx.etcd.endpoint(), &items);
    v2_put_all(
        &ctx.etcd.endpoint(),
        &[("/conftool/v1/locks/sync?ttl=600".into(), "{}".into())],
    );
    let dir = [("/conftool/v1/empty?dir=true".to_string(), String::new())];
    v2_put_all(&ctx.etcd.endpoint(), &dir);
}

/// The v3 keys under /conftool/.
fn v3_conftool(ctx: &Ctx) -> BTreeMap<String, String> {
    ctx.dump()
        .into_iter()
        .filter(|(k, _)| k.starts_with("/conftool/"))
        .collect()
}

/// How many v3 keys exist under /conftool/ (a count-only read).
async fn v3_count(client: &mut etcd_client::Client) -> i64 {
    let opts = etcd_client::GetOptions::new()
        .with_prefix()
        .with_count_only();
    client
        .get("/conftool/", Some(opts))
        .await
        .map(|r| r.count())
        .unwrap_or(-1)
}

#[test]
fn a_python_fleet_moves_over_byte_for_byte_once() {
    let ctx = v2_ctx();
    let fleet = python_fleet(20_000);
    let start = Instant::now();
    populate(&ctx, &fleet);
    eprintln!(
        "populated v2 with {} keys in {:?}",
        fleet.len() + 3,
        start.elapsed()
    );
    let (before, rev0) = (ctx.dump(), ctx.revision());

    // Dry run (the default) and --check: the diff and the summary, nothing written.
    let dry = migrate(&ctx, &[]).expect_code(0);
    let plus = dry
        .stdout
        .lines()
        .filter(|l| l.starts_with("+/conftool/"))
        .count();
    assert_eq!(
        plus,
        fleet.len(),
        "{}",
        &dry.stdout[..500.min(dry.stdout.len())]
    );
    assert!(
        dry.stderr.contains(&format!(
            "Plan: {} to create, 0 already identical, 0 differing",
            fleet.len()
        )),
        "{}",
        dry.stderr
    );
    assert!(
        dry.stderr.contains("1 v2 values are not JSON"),
        "{}",
        dry.stderr
    );
    assert!(
        dry.stderr.contains("/conftool/v1/locks/sync"),
        "{}",
        dry.stderr
    );
    assert!(
        dry.stderr.contains("Dry run: nothing written"),
        "{}",
        dry.stderr
    );
    migrate(&ctx, &["--check"]).expect_code(3);
    assert_eq!(ctx.dump(), before, "a dry run wrote");
    assert_eq!(ctx.revision(), rev0, "a dry run bumped the revision");

    // The copy, verified by the tool and here: every value byte for byte, nothing else.
    let run = migrate(&ctx, &["--apply", "-r", "T1234 switch-over"]).expect_code(0);
    assert!(
        run.stderr.contains(&format!("Wrote {} keys", fleet.len())),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("Verified: all"), "{}", run.stderr);
    let after = v3_conftool(&ctx);
    assert_eq!(after.len(), fleet.len());
    for (k, v) in &fleet {
        assert_eq!(after.get(k), Some(v), "{k}");
    }
    assert_eq!(after, fleet);
    // Depooled and inactive nodes stay so.
    let key = "/conftool/v1/pools/eqiad/appservers/apache/mw00000.eqiad.wmnet";
    assert_eq!(after[key], r#"{"pooled": "inactive", "weight": 0}"#);

    // Again: nothing to do, no revision bump.
    let rev1 = ctx.revision();
    let again = migrate(&ctx, &["--apply"]).expect_code(0);
    assert!(again.stderr.contains("Nothing to do"), "{}", again.stderr);
    assert_eq!(ctx.revision(), rev1, "a second run wrote");
    migrate(&ctx, &["--check"]).expect_code(0);
}

#[test]
fn a_killed_migration_converges_when_run_again() {
    let ctx = v2_ctx();
    let fleet = python_fleet(20_000);
    populate(&ctx, &fleet);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut client = rt.block_on(ctx.etcd.client());
    // Small transactions, so that the run is long enough to be killed in the middle.
    let mut child = cmd(&ctx, &["--apply", "--max-txn-ops", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(30);
    while rt.block_on(v3_count(&mut client)) < 500 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    // SIGKILL, to this child only.
    let killed = child.kill();
    let _ = child.wait();
    killed.expect("kill");
    let landed = rt.block_on(v3_count(&mut client));
    let total = i64::try_from(fleet.len()).expect("count");
    assert!(
        landed > 0 && landed < total,
        "the run was not killed part-way ({landed} of {total} keys landed)"
    );
    // Only whole values landed, each byte for byte.
    for (k, v) in v3_conftool(&ctx) {
        assert_eq!(fleet.get(&k), Some(&v), "{k}");
    }
    let rerun = migrate(&ctx, &["--apply"]).expect_code(0);
    assert!(
        rerun
            .stderr
            .contains(&format!("{} already identical", landed)),
        "{}",
        rerun.stderr
    );
    assert_eq!(v3_conftool(&ctx), fleet);
    let rev = ctx.revision();
    migrate(&ctx, &["--apply"]).expect_code(0);
    assert_eq!(ctx.revision(), rev);
}

#[test]
fn a_differing_v3_value_is_refused_unless_overwriting_is_asked_for() {
    let ctx = v2_ctx();
    let fleet = python_fleet(40);
    populate(&ctx, &fleet);
    let (key, v2_value) = fleet
        .iter()
        .next()
        .map(|(k, v)| (k.clone(), v.clone()))
        .expect("key");
    // Written to v3 by our tools meanwhile: other formatting, other state; and a key only v3 has.
    ctx.put(&key, r#"{"pooled":"no","weight":3}"#);
    ctx.put(
        "/conftool/v1/pools/eqiad/new/apache/mw9999",
        r#"{"pooled":"yes","weight":1}"#,
    );
    let audit = ctx.path("audit.jsonl");
    let config = ctx.write(
        "config.yaml",
        &format!(
            "endpoints: [{}]\nnamespace: /conftool\naudit_log: {}\n",
            ctx.etcd.endpoint(),
            audit.display()
        ),
    );
    let config = config.to_str().expect("utf-8 path");
    let (before, rev0) = (ctx.dump(), ctx.revision());

    let refused = migrate(&ctx, &["--apply", "--config", config]).expect_code(2);
    assert!(
        refused.stderr.contains("1 keys in v3 differ from v2"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("--overwrite-differing"),
        "{}",
        refused.stderr
    );
    assert!(
        refused
            .stdout
            .contains(&format!("-{key} {{\"pooled\":\"no\",\"weight\":3}}")),
        "{}",
        refused.stdout
    );
    assert!(
        refused.stderr.contains("1 keys are only in v3"),
        "{}",
        refused.stderr
    );
    assert_eq!(ctx.dump(), before, "a refused run wrote");
    assert_eq!(ctx.revision(), rev0);
    // A dry run says the same, with the same code.
    migrate(&ctx, &["--config", config]).expect_code(2);

    migrate(
        &ctx,
        &["--apply", "--overwrite-differing", "--config", config],
    )
    .expect_code(0);
    let after = ctx.dump();
    assert_eq!(after[&key], v2_value);
    assert_eq!(
        after["/conftool/v1/pools/eqiad/new/apache/mw9999"], r#"{"pooled":"yes","weight":1}"#,
        "a key only v3 has was touched"
    );
    for (k, v) in &fleet {
        assert_eq!(after.get(k), Some(v), "{k}");
    }
    // Audited: one intent and one applied line per key written, one end line.
    let log = std::fs::read_to_string(&audit).expect("audit log");
    let count = |event: &str| {
        log.lines()
            .filter(|l| l.contains(&format!("\"event\":\"{event}\"")))
            .count()
    };
    assert_eq!(
        (count("intent"), count("applied"), count("end")),
        (fleet.len(), fleet.len(), 1),
        "{log}"
    );
    assert!(log.contains("conftool-migrate"), "{log}");
}

#[test]
fn bad_flags_exit_2_and_write_nothing() {
    let ctx = v2_ctx();
    populate(&ctx, &python_fleet(10));
    let (before, rev0) = (ctx.dump(), ctx.revision());
    let bare = |args: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_conftool-migrate"));
        c.env("CONFTOOL_ENDPOINTS", ctx.etcd.endpoints_arg())
            .env_remove("CONFTOOL_CONFIG")
            .stdin(Stdio::null())
            .args(args);
        Run::from(c.output().expect("run"))
    };
    let v2 = ctx.etcd.endpoint();
    for args in [
        vec!["--apply"],
        vec!["--from-v2", "127.0.0.1:2379", "--apply"],
        vec!["--from-v2", "http://user:pw@127.0.0.1:2379", "--apply"],
        vec!["--from-v2", &v2, "--prefix", "conftool", "--apply"],
        vec!["--from-v2", &v2, "--prefix", "/conftool/", "--apply"],
        vec!["--from-v2", &v2, "--prefix", "/absent", "--apply"],
        vec!["--from-v2", &v2, "--apply", "--check"],
        vec!["--from-v2", &v2, "--apply", "--v2-username", "root"],
        vec!["--from-v2", &v2, "--apply", "--max-txn-ops", "0"],
        vec!["--from-v2", &v2, "--apply", "--v2-timeout", "soon"],
        vec!["--from-v2", &v2, "--apply", "--frobnicate"],
    ] {
        let run = bare(&args);
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
        assert!(!run.stderr.trim().is_empty(), "{args:?}: no message");
    }
    // Help, man page and completions need no --from-v2.
    let help = bare(&["--help"]);
    assert_eq!(help.code, 0, "{help:?}");
    assert!(help.stdout.contains("--overwrite-differing") && help.stdout.contains("--man"));
    assert_eq!(bare(&["--man"]).code, 0);
    let comp = bare(&["--completions", "bash"]);
    assert!(
        comp.code == 0 && comp.stdout.contains("--from-v2"),
        "{comp:?}"
    );
    let absent = bare(&["--from-v2", &v2, "--prefix", "/absent"]);
    assert!(
        absent.stderr.contains("has no key /absent"),
        "{}",
        absent.stderr
    );
    assert_eq!(ctx.dump(), before);
    assert_eq!(ctx.revision(), rev0);
    // An unreachable source is a runtime failure, not bad input.
    let port = conftool_testkit::free_port();
    let down = bare(&["--from-v2", &format!("http://127.0.0.1:{port}"), "--apply"]);
    assert_eq!(down.code, 1, "{down:?}");
    assert!(
        down.stderr.contains("cannot read etcd v2; nothing written"),
        "{}",
        down.stderr
    );
}

#[test]
fn a_v2_source_with_basic_auth_is_read_with_the_password_file() {
    let ctx = v2_ctx();
    let fleet = python_fleet(30);
    populate(&ctx, &fleet);
    // etcd v2 auth: a root user, auth on, and the guest role's access revoked.
    let ep = ctx.etcd.endpoint();
    let json = "Content-Type: application/json";
    let root = "Authorization: Basic cm9vdDpyb290cHc="; // root:rootpw
    let user = r#"{"user":"root","password":"rootpw"}"#;
    assert_eq!(
        v2_request(
            &ep,
            &format!("PUT /v2/auth/users/root HTTP/1.1\r\n{json}"),
            user
        ),
        201
    );
    assert_eq!(v2_request(&ep, "PUT /v2/auth/enable HTTP/1.1", ""), 200);
    let revoke = r#"{"role":"guest","revoke":{"kv":{"read":["/*"],"write":["/*"]}}}"#;
    let head = format!("PUT /v2/auth/roles/guest HTTP/1.1\r\n{json}\r\n{root}");
    assert_eq!(v2_request(&ep, &head, revoke), 200);
    let (before, rev0) = (ctx.dump(), ctx.revision());

    let anonymous = migrate(&ctx, &["--apply"]).expect_code(1);
    assert!(
        anonymous.stderr.contains("answered 401"),
        "{}",
        anonymous.stderr
    );
    let wrong = ctx.write("wrong", "nope\n");
    let wrong = wrong.to_str().expect("utf-8 path");
    let wrong_pw = [
        "--apply",
        "--v2-username",
        "root",
        "--v2-password-file",
        wrong,
        "--v2-allow-insecure-auth",
    ];
    let denied = migrate(&ctx, &wrong_pw).expect_code(1);
    assert!(denied.stderr.contains("answered 401"), "{}", denied.stderr);
    assert_eq!((ctx.dump(), ctx.revision()), (before.clone(), rev0));

    let password = ctx.write("password", "rootpw\n");
    let password = password.to_str().expect("utf-8 path");
    let auth = [
        "--apply",
        "--v2-username",
        "root",
        "--v2-password-file",
        password,
    ];
    // A password over plain http is refused unless allowed explicitly.
    let clear = migrate(&ctx, &auth).expect_code(2);
    assert!(
        clear.stderr.contains("--v2-allow-insecure-auth"),
        "{}",
        clear.stderr
    );
    assert_eq!((ctx.dump(), ctx.revision()), (before.clone(), rev0));
    let mut allowed = auth.to_vec();
    allowed.push("--v2-allow-insecure-auth");
    migrate(&ctx, &allowed).expect_code(0);
    assert_eq!(v3_conftool(&ctx), fleet);
}

/// One PUT to an https v2 source, through `openssl s_client` (with the client certificate).
fn v2_put_tls(ctx: &Ctx, tls: &conftool_testkit::TlsFiles, key: &str, value: &str) {
    let addr = ctx
        .etcd
        .endpoint()
        .trim_start_matches("https://")
        .to_string();
    let body = format!("value={}", form_escape(value));
    let req = format!(
        "PUT /v2/keys{key} HTTP/1.1\r\nHost: {addr}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut child = Command::new("openssl")
        .args(["s_client", "-quiet", "-ign_eof", "-connect", &addr])
        .arg("-CAfile")
        .arg(&tls.ca)
        .arg("-cert")
        .arg(&tls.client_cert)
        .arg("-key")
        .arg(&tls.client_key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl s_client");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(req.as_bytes())
        .expect("send");
    let out = child.wait_with_output().expect("openssl");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("HTTP/1.1 201") || text.starts_with("HTTP/1.1 200"),
        "PUT {key} over TLS: {text}"
    );
}

#[test]
fn an_https_v2_source_is_checked_against_its_ca_and_given_a_client_certificate() {
    let dir = conftool_testkit::temp_dir("migrate-tls-");
    let tls = conftool_testkit::tls::generate(&dir.path().join("tls"));
    let ctx = Ctx {
        etcd: conftool_testkit::EtcdCluster::start_tls(&tls, &["--enable-v2=true"]),
        dir,
    };
    let fleet = python_fleet(4);
    for (k, v) in &fleet {
        v2_put_tls(&ctx, &tls, k, v);
    }
    let config = ctx.write(
        "config.yaml",
        &format!(
            "endpoints: [{}]\nnamespace: /conftool\ntls: {{ca: {}, cert: {}, key: {}}}\n",
            ctx.etcd.endpoint(),
            tls.ca.display(),
            tls.client_cert.display(),
            tls.client_key.display()
        ),
    );
    let path = |p: &std::path::Path| p.to_str().expect("utf-8 path").to_string();
    let (config, ca, cert, key) = (
        path(&config),
        path(&tls.ca),
        path(&tls.client_cert),
        path(&tls.client_key),
    );
    let (before, rev0) = (ctx.dump(), ctx.revision());
    // Another CA: the server is not trusted; no client certificate: the server refuses.
    let other = conftool_testkit::tls::generate(&ctx.path("other"));
    let other_ca = path(&other.ca);
    let untrusted = migrate(
        &ctx,
        &["--config", &config, "--v2-ca", &other_ca, "--apply"],
    );
    assert_eq!(untrusted.code, 1, "{untrusted:?}");
    assert!(untrusted.stderr.contains("TLS"), "{}", untrusted.stderr);
    let anonymous = migrate(&ctx, &["--config", &config, "--v2-ca", &ca, "--apply"]);
    assert_eq!(anonymous.code, 1, "{anonymous:?}");
    assert_eq!((ctx.dump(), ctx.revision()), (before, rev0));

    let args = [
        "--config",
        &config,
        "--v2-ca",
        &ca,
        "--v2-cert",
        &cert,
        "--v2-key",
        &key,
    ];
    let mut apply = args.to_vec();
    apply.push("--apply");
    migrate(&ctx, &apply).expect_code(0);
    assert_eq!(v3_conftool(&ctx), fleet);
    migrate(&ctx, &args).expect_code(0);
}

#[test]
fn a_closed_or_full_stdout_never_changes_what_is_written_nor_the_exit_code() {
    use crate::util::Sink;
    let ctx = v2_ctx();
    let fleet = python_fleet(300);
    populate(&ctx, &fleet);
    let from = ctx.etcd.endpoint();
    let base = ["--from-v2", from.as_str(), "--namespace", "/conftool"];
    let with = |extra: &[&'static str]| -> Vec<&str> {
        base.iter().copied().chain(extra.iter().copied()).collect()
    };
    let state = || (ctx.dump(), ctx.revision());
    let before = state();
    // A dry run and a check into a closed pipe: their codes, nothing written.
    let run = ctx.run_to(Sink::ClosedBoth, "conftool-migrate", &with(&[]));
    assert_eq!(run.code, 0, "{run:?}");
    let run = ctx.run_to(Sink::ClosedStdout, "conftool-migrate", &with(&["--check"]));
    assert_eq!(run.code, 3, "changes are pending: {run:?}");
    assert_eq!(state(), before);
    // Into /dev/full, the diff is lost: that is a failure, and still nothing written.
    let run = ctx.run_to(Sink::FullStdout, "conftool-migrate", &with(&[]));
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(state(), before);
    // --apply into a closed pipe writes everything and says so by its code.
    let run = ctx.run_to(Sink::ClosedBoth, "conftool-migrate", &with(&["--apply"]));
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(v3_conftool(&ctx), fleet, "every object copied");
}
