//! One leader among daemons (the real binary): a second instance stands by, a one-shot run
//! while another leads exits 11 saying who leads, and when the leader is SIGKILLed the
//! standby takes over and continues the events without acting on them twice.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use conftool_maintd::EventState;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::harness::{wait_until, World};

/// A daemon process, SIGKILLed by its PID when dropped.
struct Proc {
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn start(w: &World, name: &str, cfg: &Path) -> Proc {
        Proc::start_with(w, name, cfg, &[])
    }

    /// With more arguments (`--config FILE`).
    fn start_with(w: &World, name: &str, cfg: &Path, args: &[&str]) -> Proc {
        let log = w.path(&format!("{name}.log"));
        let child = daemon_cmd(w, cfg)
            .args(args)
            .stderr(std::fs::File::create(&log).expect("log"))
            .stdout(Stdio::null())
            .spawn()
            .expect("start conftool-maintd");
        Proc { child, log }
    }

    fn said(&self, event: &str) -> bool {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .contains(&format!("\"event\":\"{event}\""))
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

fn daemon_cmd(w: &World, cfg: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_conftool-maintd"));
    c.arg("--maint-config")
        .arg(cfg)
        .arg("--endpoints")
        .arg(w.etcd.endpoints_arg())
        .env_remove("CONFTOOL_CONFIG")
        .env_remove("CONFTOOL_ENDPOINTS")
        .stdin(Stdio::null());
    c
}

const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn one_leads_a_one_shot_says_so_and_the_standby_takes_over_without_acting_twice() {
    // 4 nodes at 0.5: two may be out.
    let w = World::new(4, 0.5);
    let cfg = w.path("maintd.yaml");
    std::fs::write(&cfg, w.config_text("")).expect("config");
    let a = Proc::start(&w, "a", &cfg);
    wait_until("a leads", LIMIT, || a.said("leading"));
    let b = Proc::start(&w, "b", &cfg);
    wait_until("b stands by", LIMIT, || b.said("standby"));
    assert!(!b.said("leading"));
    // A one-shot run while a leads: exit 11, saying who leads.
    let once = daemon_cmd(&w, &cfg)
        .arg("--once")
        .output()
        .expect("run --once");
    let stderr = String::from_utf8_lossy(&once.stderr);
    assert_eq!(once.status.code(), Some(11), "{stderr}");
    assert!(
        stderr.contains("not the leader: ")
            && stderr.contains(&format!("pid {} leads since", a.pid())),
        "{stderr}"
    );

    // a evacuates mw1.
    w.say("mw1", r#"{"status":"evacuate","details":"disk"}"#);
    wait_until("mw1's event ready", LIMIT, || {
        w.events_of("mw1")
            .first()
            .is_some_and(|e| e.state == EventState::Ready)
    });
    let before = w.events_of("mw1").remove(0);
    let by_a = format!("pid {}", a.pid());
    assert!(
        before.history.iter().all(|h| h.by.ends_with(&by_a)),
        "{before:?}"
    );

    // SIGKILL the leader: b takes over.
    let killed = Instant::now();
    drop(a);
    wait_until("b leads", LIMIT, || b.said("leading"));
    let took = killed.elapsed();
    println!("maintd: the standby led {took:?} after the leader was SIGKILLed (lease TTL 3s)");

    // b continues: mw1's event is left as it was (not evacuated again), mw2's is acted on.
    w.say("mw2", r#"{"status":"evacuate","details":"fan"}"#);
    wait_until("mw2's event ready", LIMIT, || {
        w.events_of("mw2")
            .first()
            .is_some_and(|e| e.state == EventState::Ready)
    });
    let by_b = format!("pid {}", b.pid());
    assert!(w.events_of("mw2")[0]
        .history
        .iter()
        .any(|h| h.by.ends_with(&by_b)));
    assert_eq!(
        w.events_of("mw1"),
        vec![before.clone()],
        "mw1's event untouched by b"
    );
    let store = w.store();
    let op = before.operation.clone().expect("operation");
    let rec =
        w.rt.block_on(store.operation(&op))
            .expect("read")
            .expect("operation");
    assert_eq!(rec.steps.len(), 1, "one evacuation step: {rec:?}");
    assert_eq!(
        (
            w.pooled()["mw1"].as_str(),
            w.pooled()["mw2"].as_str(),
            w.pooled()["mw3"].as_str()
        ),
        ("no", "no", "yes")
    );
}

#[test]
fn a_live_repair_interrupted_by_the_leader_dying_is_failed_not_run_again() {
    let w = World::new(3, 0.0);
    let cfg = w.path("maintd.yaml");
    std::fs::write(&cfg, w.config_text("")).expect("config");
    let a = Proc::start(&w, "a", &cfg);
    wait_until("a leads", LIMIT, || a.said("leading"));
    let b = Proc::start(&w, "b", &cfg);
    wait_until("b stands by", LIMIT, || b.said("standby"));
    w.hold_repair("mw1", true);
    w.say("mw1", r#"{"status":"live-repair","command":"fix-nic"}"#);
    wait_until("the repair runs", LIMIT, || {
        w.repair_inputs("mw1").len() == 1
    });
    assert_eq!(w.events_of("mw1")[0].state, EventState::InProgress);
    drop(a);
    wait_until("b leads", LIMIT, || b.said("leading"));
    wait_until("the event failed", LIMIT, || {
        w.events_of("mw1")
            .first()
            .is_some_and(|e| e.state == EventState::Failed)
    });
    // The orphaned command (its own process group) finishes now.
    w.hold_repair("mw1", false);
    let e = w.events_of("mw1").remove(0);
    let last = &e.history.last().expect("history");
    assert!(last.by.ends_with(&format!("pid {}", b.pid())), "{last:?}");
    assert!(
        last.what
            .starts_with("interrupted: the instance running its repair stopped"),
        "{last:?}"
    );
    // b's next polls do not run it again: a failed event waits for a person.
    let polls = |p: &Proc| {
        std::fs::read_to_string(&p.log)
            .unwrap_or_default()
            .matches("\"event\":\"polled\"")
            .count()
    };
    let seen = polls(&b);
    wait_until("b polled twice more", LIMIT, || polls(&b) >= seen + 2);
    assert_eq!(w.repair_inputs("mw1").len(), 1, "the repair ran once");
    assert_eq!(w.events_of("mw1")[0].state, EventState::Failed);
}

#[test]
fn an_evacuation_interrupted_by_the_leader_dying_is_resumed_without_depooling_twice() {
    let w = World::new(3, 0.5);
    // A load balancer that never answers: a's verification hangs after its depool; b's
    // (a shorter time limit) fails closed.
    let hole = conftool_testkit::BlackHole::start();
    let conftool = w.path("config.yaml");
    std::fs::write(
        &conftool,
        format!(
            "load_balancers:\n  eqiad/web/http: [{}/pools/be_http]\n",
            hole.url()
        ),
    )
    .expect("config");
    let (cfg_a, cfg_b) = (w.path("a.yaml"), w.path("b.yaml"));
    std::fs::write(
        &cfg_a,
        w.config_text("verify: true\nverify_timeout: 10m\n")
            .replace("verify: false\n", ""),
    )
    .expect("config");
    std::fs::write(
        &cfg_b,
        w.config_text("verify: true\nverify_timeout: 1s\n")
            .replace("verify: false\n", ""),
    )
    .expect("config");
    let conf = conftool.to_str().expect("utf-8");
    let a = Proc::start_with(&w, "a", &cfg_a, &["--config", conf]);
    wait_until("a leads", LIMIT, || a.said("leading"));
    let b = Proc::start_with(&w, "b", &cfg_b, &["--config", conf]);
    wait_until("b stands by", LIMIT, || b.said("standby"));
    w.say("mw1", r#"{"status":"evacuate","details":"disk"}"#);
    wait_until("mw1 depooled, its event in progress", LIMIT, || {
        w.pooled()["mw1"] == "no"
            && w.events_of("mw1")
                .first()
                .is_some_and(|e| e.state == EventState::InProgress && e.operation.is_none())
    });
    drop(a);
    wait_until("b leads", LIMIT, || b.said("leading"));
    wait_until("b finished the event", LIMIT, || {
        w.events_of("mw1")
            .first()
            .is_some_and(|e| e.state == EventState::Failed)
    });
    let e = w.events_of("mw1").remove(0);
    let last = e.history.last().expect("history");
    assert!(last.by.ends_with(&format!("pid {}", b.pid())), "{last:?}");
    assert!(
        last.what.contains("(the node's evacuation, resumed)"),
        "{last:?}"
    );
    assert!(last.what.contains("0 objects depooled"), "{last:?}");
    assert!(last.what.contains("but not verified"), "{last:?}");
    // One depool, in one operation (a's), which b continued.
    let store = w.store();
    let op = e.operation.clone().expect("operation");
    let rec =
        w.rt.block_on(store.operation(&op))
            .expect("read")
            .expect("operation");
    assert_eq!(rec.objects.len(), 1, "{rec:?}");
    assert_eq!(w.pooled()["mw1"], "no");
}

#[test]
fn a_bad_configuration_exits_2_naming_its_line_and_writes_nothing() {
    let w = World::new(1, 0.0);
    let cfg = w.path("maintd.yaml");
    std::fs::write(
        &cfg,
        w.config_text("lease_ttl: soon\n")
            .replace("lease_ttl: 3s\n", ""),
    )
    .expect("config");
    let before = w.dump();
    let out = daemon_cmd(&w, &cfg)
        .arg("--once")
        .output()
        .expect("run --once");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("maintd.yaml: line 7: lease_ttl: invalid duration \"soon\""),
        "{stderr}"
    );
    assert_eq!(w.dump(), before, "etcd unchanged");
}
