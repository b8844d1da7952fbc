//! `watch-pools` against a real, throwaway etcd: state changed through `conftool_core`,
//! the lines it prints checked, and how it ends.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use conftool_core::{Config, Edit, Guard, Pooled, SetFields, Store, Write};
use conftool_testkit::Etcd;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// The longest any one line or exit may take (a bound, not a timing assertion).
const PATIENCE: Duration = Duration::from_secs(30);
const SELECTOR: &str = "dc=eqiad,cluster=appservers";

fn watch_pools(etcd: &Etcd, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_watch-pools"))
        .args(["--endpoints", &etcd.endpoints_arg()])
        .args(args)
        .env_remove("CONFTOOL_ENDPOINTS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start watch-pools")
}

/// Its stdout, line by line, read by a thread of its own.
fn lines(stdout: ChildStdout) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

fn next(rx: &mpsc::Receiver<String>) -> String {
    rx.recv_timeout(PATIENCE)
        .expect("watch-pools printed a line in time")
}

fn signal(child: &Child, sig: Signal) {
    let pid = i32::try_from(child.id()).expect("pid");
    // A process this test started and has not reaped.
    kill(Pid::from_raw(pid), sig).expect("signal watch-pools");
}

fn wait(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        assert!(Instant::now() < deadline, "watch-pools did not exit");
        std::thread::sleep(Duration::from_millis(10));
    }
}

async fn store(etcd: &Etcd) -> Store {
    let cfg = Config {
        endpoints: etcd.endpoints(),
        ..Config::default()
    };
    Store::connect(&cfg).await.expect("connect")
}

/// Create objects (as a sync would), through the library.
async fn create(s: &Store, objects: &[(&str, &str)]) -> i64 {
    let writes: Vec<Write> = objects
        .iter()
        .map(|(k, v)| Write::Put {
            key: (*k).into(),
            value: (*v).into(),
            guard: Guard::Absent,
        })
        .collect();
    let report = s.raw().commit(&writes).await.expect("create");
    assert_eq!(report.applied.len(), objects.len());
    report.applied[0].1
}

/// Apply `edit` to what `selector` selects, through the library: the revision it landed at.
async fn edit(s: &Store, selector: &str, edit: Edit) -> i64 {
    let sel = selector.parse().expect("selector");
    let selection = s.select(&sel).await.expect("select");
    let writes: Vec<Write> = selection
        .changes(|_| Some(edit))
        .iter()
        .map(|c| c.write(s.keyspace()))
        .collect();
    let report = s.raw().commit_atomic(&writes).await.expect("edit");
    assert_eq!(report.applied.len(), writes.len());
    report.applied[0].1
}

#[tokio::test]
async fn prints_the_snapshot_then_each_change_and_exits_0_on_sigterm() {
    let etcd = Etcd::start();
    let s = store(&etcd).await;
    let yes = r#"{"pooled":"yes","weight":10}"#;
    let seeded = create(
        &s,
        &[
            ("/v1/pools/eqiad/appservers/apache/mw1018", yes),
            ("/v1/pools/eqiad/appservers/apache/mw1019", yes),
            ("/v1/pools/eqiad/appservers/apache/mw1020", "not json\u{1b}"),
            ("/v1/pools/eqiad/api/apache/mw1018", yes),
            ("/v1/pools/codfw/appservers/apache/mw2018", yes),
        ],
    )
    .await;
    let mut child = watch_pools(&etcd, &[SELECTOR]);
    let out = lines(child.stdout.take().expect("stdout"));
    assert_eq!(
        next(&out),
        format!("{seeded} snapshot objects=2 malformed=1")
    );
    assert_eq!(
        next(&out),
        format!("{seeded} object eqiad/appservers/apache/mw1018 pooled=yes weight=10")
    );
    assert_eq!(
        next(&out),
        format!("{seeded} object eqiad/appservers/apache/mw1019 pooled=yes weight=10")
    );
    let malformed = next(&out);
    assert!(
        malformed.starts_with(&format!(
            "{seeded} malformed eqiad/appservers/apache/mw1020 "
        )),
        "{malformed}"
    );
    assert!(
        !malformed.contains('\u{1b}'),
        "control characters escaped: {malformed}"
    );

    // A depool of one object; a change outside the selection (not printed); two objects
    // changed in one transaction; a delete.
    let depool = Edit::Set(SetFields {
        pooled: Some(Pooled::No),
        weight: None,
    });
    let r1 = edit(&s, "dc=eqiad,cluster=appservers,name=mw1018", depool).await;
    edit(&s, "dc=eqiad,cluster=api", depool).await;
    let weight = Edit::Set(SetFields {
        pooled: Some(Pooled::Yes),
        weight: Some(conftool_core::Weight(5)),
    });
    let r2 = edit(&s, SELECTOR, weight).await;
    let r3 = edit(&s, "dc=eqiad,cluster=appservers,name=mw1019", Edit::Delete).await;
    for want in [
        format!("{r1} put eqiad/appservers/apache/mw1018 pooled=no weight=10"),
        format!("{r2} put eqiad/appservers/apache/mw1018 pooled=yes weight=5"),
        format!("{r2} put eqiad/appservers/apache/mw1019 pooled=yes weight=5"),
        format!("{r3} delete eqiad/appservers/apache/mw1019"),
    ] {
        assert_eq!(next(&out), want);
    }
    signal(&child, Signal::SIGTERM);
    let status = wait(&mut child);
    assert_eq!(status.code(), Some(0), "{status}");
    assert!(
        out.recv_timeout(PATIENCE).is_err(),
        "nothing more after the last change"
    );
}

#[tokio::test]
async fn exits_0_when_stdout_closes_even_with_nothing_to_print() {
    let etcd = Etcd::start();
    let mut child = watch_pools(&etcd, &[SELECTOR]);
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    stdout.read_line(&mut first).expect("read the first line");
    assert!(first.contains(" snapshot objects=0 malformed=0"), "{first}");
    drop(stdout);
    let status = wait(&mut child);
    assert_eq!(status.code(), Some(0), "{status}");
}

#[tokio::test]
async fn exits_0_on_sigint() {
    let etcd = Etcd::start();
    let mut child = watch_pools(&etcd, &[SELECTOR]);
    let out = lines(child.stdout.take().expect("stdout"));
    assert!(next(&out).contains(" snapshot "));
    signal(&child, Signal::SIGINT);
    assert_eq!(wait(&mut child).code(), Some(0));
}

#[test]
fn a_bad_selector_is_exit_code_2_with_nothing_printed() {
    let output = Command::new(env!("CARGO_BIN_EXE_watch-pools"))
        .args(["--endpoints", "http://127.0.0.1:9", "colour=blue"])
        .output()
        .expect("run watch-pools");
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("usage: watch-pools"), "{stderr}");
}

#[test]
fn depool_during_refuses_an_option_given_twice_and_runs_nothing() {
    let dir = conftool_testkit::temp_dir("depool-during-");
    let ran = dir.path().join("ran");
    for (twice, what) in [
        (
            ["--service", "apache", "--service", "nginx"],
            "--service given twice",
        ),
        (
            ["--hostname", "mw1018", "--hostname", "mw1019"],
            "--hostname given twice",
        ),
    ] {
        let mut args = vec!["--endpoints", "http://127.0.0.1:9"];
        if twice[0] != "--hostname" {
            args.extend(["--hostname", "mw1018"]);
        }
        args.extend(twice);
        args.extend(["--", "touch", ran.to_str().expect("utf-8")]);
        let out = Command::new(env!("CARGO_BIN_EXE_depool-during"))
            .args(&args)
            .env_remove("CONFTOOL_ENDPOINTS")
            .stdin(Stdio::null())
            .output()
            .expect("run depool-during");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(what),
            "{args:?}: {out:?}"
        );
        assert!(!ran.exists(), "the command ran");
    }
}

/// Wait (bounded) until `path` exists.
fn wait_for(path: &std::path::Path) {
    let deadline = Instant::now() + PATIENCE;
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

async fn pooled(s: &Store, key: &str) -> String {
    let sel = "name=.*".parse().expect("selector");
    let selection = s.select(&sel).await.expect("select");
    let o = selection
        .objects
        .iter()
        .find(|o| s.keyspace().object_key(&o.key) == key)
        .unwrap_or_else(|| panic!("{key} missing"));
    o.state.pooled.to_string()
}

#[tokio::test]
async fn depool_during_a_command_then_restore_exactly_what_it_changed() {
    let etcd = Etcd::start();
    let s = store(&etcd).await;
    let yes = r#"{"pooled":"yes","weight":10}"#;
    let inactive = r#"{"pooled":"inactive","weight":0}"#;
    let mut objects = vec![("/v1/pools/eqiad/jobrunner/jobrunner/mw1018", inactive)];
    let keys: Vec<String> = ["apache", "nginx"]
        .iter()
        .flat_map(|svc| (18..22).map(move |n| format!("/v1/pools/eqiad/appservers/{svc}/mw10{n}")))
        .collect();
    objects.extend(keys.iter().map(|k| (k.as_str(), yes)));
    create(&s, &objects).await;
    let dir = conftool_testkit::temp_dir("depool-during-");
    let log = dir.path().join("audit.jsonl");
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "endpoints: [{}]\naudit_log: {}\n",
            etcd.endpoint(),
            log.display()
        ),
    )
    .expect("config");
    let (started, go) = (dir.path().join("started"), dir.path().join("go"));
    let script = format!(
        "touch {}; while [ ! -e {} ]; do sleep 0.02; done; exit 7",
        started.display(),
        go.display()
    );
    let child = Command::new(env!("CARGO_BIN_EXE_depool-during"))
        .arg("--config")
        .arg(&config)
        .args(["--hostname", "mw1018", "--", "sh", "-c", &script])
        .env_remove("CONFTOOL_ENDPOINTS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start depool-during");
    wait_for(&started);
    // While the command runs, the host is out of its pools; inactive objects are untouched.
    let apache = "/v1/pools/eqiad/appservers/apache/mw1018";
    let nginx = "/v1/pools/eqiad/appservers/nginx/mw1018";
    let jobrunner = "/v1/pools/eqiad/jobrunner/jobrunner/mw1018";
    assert_eq!(pooled(&s, apache).await, "no");
    assert_eq!(pooled(&s, nginx).await, "no");
    assert_eq!(pooled(&s, jobrunner).await, "inactive");
    // Meanwhile someone decommissions the host from nginx: that is theirs, not to undo.
    edit(
        &s,
        "dc=eqiad,service=nginx,name=mw1018",
        Edit::Set(SetFields {
            pooled: Some(Pooled::Inactive),
            weight: None,
        }),
    )
    .await;
    std::fs::write(&go, "").expect("go");
    let out = child.wait_with_output().expect("wait");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The command failed: the host stays out, and the operation stays open to say so.
    assert_eq!(
        out.status.code(),
        Some(7),
        "the command's exit code: {out:?}"
    );
    assert_eq!(pooled(&s, apache).await, "no", "{stdout}");
    let id = stdout
        .lines()
        .find_map(|l| l.strip_prefix("operation "))
        .expect("the operation id is printed")
        .to_string();
    assert!(
        stderr.contains(&format!("confctl operation end {id}")),
        "{stderr}"
    );
    let (ops, _) = s.operations().await.expect("operations");
    assert_eq!(ops.len(), 1);
    assert_eq!(ops[0].state, conftool_core::OperationState::Open);
    assert_eq!(
        ops[0].objects.len(),
        2,
        "both depools recorded: {:?}",
        ops[0]
    );
    // Run again (the restart fixed): it resumes the open operation and puts back exactly
    // what was depooled, not what someone else changed meanwhile.
    let again = Command::new(env!("CARGO_BIN_EXE_depool-during"))
        .arg("--config")
        .arg(&config)
        .args(["--hostname", "mw1018", "--", "true"])
        .env_remove("CONFTOOL_ENDPOINTS")
        .stdin(Stdio::null())
        .output()
        .expect("run depool-during again");
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert_eq!(again.status.code(), Some(0), "{again:?}");
    assert!(
        stdout.starts_with(&format!("operation {id} (resumed)\n")),
        "{stdout}"
    );
    assert_eq!(pooled(&s, apache).await, "yes", "{stdout}");
    assert_eq!(pooled(&s, nginx).await, "inactive", "{stdout}");
    assert_eq!(pooled(&s, jobrunner).await, "inactive");
    assert!(
        stdout.contains("restored eqiad/appservers/apache/mw1018 pooled=yes")
            && stdout.contains("left eqiad/appservers/nginx/mw1018: it became inactive meanwhile"),
        "{stdout}"
    );
    let (ops, _) = s.operations().await.expect("operations");
    assert_eq!(ops[0].state, conftool_core::OperationState::Ended);
    // Every write is in the audit trail with its operation, each intent before its write.
    let audit = std::fs::read_to_string(&log).expect("audit log");
    let events: Vec<String> = audit
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("JSON");
            assert_eq!(v["operation"].as_str(), Some(id.as_str()), "{l}");
            format!(
                "{} {}",
                v["event"].as_str().unwrap_or("?"),
                v["key"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        events,
        [
            format!("intent {apache}"),
            format!("intent {nginx}"),
            format!("applied {apache}"),
            format!("applied {nginx}"),
            "end ".to_string(),
            // The re-run finds nothing to depool (no write, no line), then restores.
            format!("intent {apache}"),
            format!("applied {apache}"),
            "end ".to_string(),
        ],
        "{audit}"
    );
    for line in audit.lines() {
        assert!(line.contains("\"tool\":\"depool-during\""), "{line}");
    }
}

#[tokio::test]
async fn depool_during_refused_by_the_threshold_runs_nothing() {
    let etcd = Etcd::start();
    let s = store(&etcd).await;
    // The only node of its pool.
    create(
        &s,
        &[(
            "/v1/pools/eqiad/appservers/apache/mw1018",
            r#"{"pooled":"yes","weight":1}"#,
        )],
    )
    .await;
    let dir = conftool_testkit::temp_dir("depool-during-");
    let ran = dir.path().join("ran");
    let out = Command::new(env!("CARGO_BIN_EXE_depool-during"))
        .args([
            "--endpoints",
            &etcd.endpoint(),
            "--hostname",
            "mw1018",
            "--",
        ])
        .args(["touch", ran.to_str().expect("utf-8")])
        .env_remove("CONFTOOL_ENDPOINTS")
        .stdin(Stdio::null())
        .output()
        .expect("run depool-during");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("depool threshold"),
        "{out:?}"
    );
    assert!(!ran.exists(), "the command ran");
    assert_eq!(
        pooled(&s, "/v1/pools/eqiad/appservers/apache/mw1018").await,
        "yes"
    );
}

/// Start depool-during on mw1018, paused at `step` (it says so with a file), then SIGKILL it.
fn killed_at(etcd: &Etcd, dir: &std::path::Path, step: &str) {
    let marker = dir.join(format!("paused-{step}"));
    let _ = std::fs::remove_file(&marker);
    let mut child = Command::new(env!("CARGO_BIN_EXE_depool-during"))
        .args([
            "--endpoints",
            &etcd.endpoint(),
            "--hostname",
            "mw1018",
            "--",
            "true",
        ])
        .env_remove("CONFTOOL_ENDPOINTS")
        .env("DEPOOL_DURING_PAUSE_AT", step)
        .env("DEPOOL_DURING_PAUSE_FILE", &marker)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start depool-during");
    let deadline = Instant::now() + PATIENCE;
    while !marker.exists() {
        if let Some(status) = child.try_wait().expect("wait") {
            let mut out = String::new();
            if let Some(mut e) = child.stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut out);
            }
            panic!("depool-during ended before pausing at {step}: {status}: {out}");
        }
        assert!(
            Instant::now() < deadline,
            "depool-during never paused at {step}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    signal(&child, Signal::SIGKILL);
    wait(&mut child);
}

/// `confctl`-free: end every open operation through the library, as `confctl operation end`.
async fn end_open_operations(s: &Store) -> usize {
    let (ops, _) = s.operations().await.expect("operations");
    let actor = conftool_core::Actor::from_env("test", None);
    let mut w = s
        .writer(&actor, &conftool_core::AuditLog::default())
        .expect("writer");
    let mut ended = 0;
    for op in ops
        .iter()
        .filter(|o| o.state == conftool_core::OperationState::Open)
    {
        w.end_operation(&op.id, false).await.expect("end");
        ended += 1;
    }
    ended
}

#[tokio::test]
async fn depool_during_killed_at_any_step_is_always_brought_back() {
    let etcd = Etcd::start();
    let s = store(&etcd).await;
    let yes = r#"{"pooled":"yes","weight":10}"#;
    let objects: Vec<(String, &str)> = ["apache", "nginx"]
        .iter()
        .flat_map(|svc| {
            (18..22).map(move |n| (format!("/v1/pools/eqiad/appservers/{svc}/mw10{n}"), yes))
        })
        .collect();
    let refs: Vec<(&str, &str)> = objects.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    create(&s, &refs).await;
    let dir = conftool_testkit::temp_dir("depool-during-kill-");
    let apache = "/v1/pools/eqiad/appservers/apache/mw1018";
    let nginx = "/v1/pools/eqiad/appservers/nginx/mw1018";
    for step in ["start", "opened", "depooled", "restoring"] {
        for finish in ["operation end", "re-run"] {
            killed_at(&etcd, dir.path(), step);
            let (ops, _) = s.operations().await.expect("operations");
            let open = ops
                .iter()
                .filter(|o| o.state == conftool_core::OperationState::Open)
                .count();
            // Killed before the operation was written: nothing to undo, nothing changed.
            assert_eq!(open, usize::from(step != "start"), "{step}");
            if step == "depooled" || step == "restoring" {
                assert_eq!(pooled(&s, apache).await, "no", "{step}");
                // Meanwhile someone else takes nginx out: theirs, never repooled by us.
                edit(
                    &s,
                    "dc=eqiad,service=nginx,name=mw1018",
                    Edit::Set(SetFields {
                        pooled: Some(Pooled::Inactive),
                        weight: None,
                    }),
                )
                .await;
            }
            match finish {
                "operation end" => {
                    assert_eq!(end_open_operations(&s).await, open, "{step}");
                }
                _ => {
                    let out = Command::new(env!("CARGO_BIN_EXE_depool-during"))
                        .args(["--endpoints", &etcd.endpoint(), "--hostname", "mw1018"])
                        .args(["--", "true"])
                        .env_remove("CONFTOOL_ENDPOINTS")
                        .stdin(Stdio::null())
                        .output()
                        .expect("re-run");
                    let stdout = String::from_utf8_lossy(&out.stdout);
                    assert_eq!(out.status.code(), Some(0), "{step}: {out:?}");
                    assert_eq!(stdout.contains("(resumed)"), open == 1, "{step}: {stdout}");
                }
            }
            assert_eq!(pooled(&s, apache).await, "yes", "{step} then {finish}");
            let (ops, _) = s.operations().await.expect("operations");
            assert!(
                ops.iter()
                    .all(|o| o.state == conftool_core::OperationState::Ended),
                "{step} then {finish}: {ops:?}"
            );
            if step == "depooled" || step == "restoring" {
                assert_eq!(pooled(&s, nginx).await, "inactive", "{step} then {finish}");
                // Back to the start for the next round.
                edit(
                    &s,
                    "dc=eqiad,service=nginx,name=mw1018",
                    Edit::Set(SetFields {
                        pooled: Some(Pooled::Yes),
                        weight: None,
                    }),
                )
                .await;
            }
        }
    }
}
