//! Safe under sudo, round two (issue 16, findings 1, 5, 6 and 8): what a run for another
//! user writes, and what it writes down about who did it. `--man-dir` writes no file on the
//! caller's behalf, nor through a link for anyone; a schema cannot map onto the service
//! definitions (or any key conftool-rs owns); sudo to a service account is a run for
//! another user too, and the audit names the person; the audit log is not moved by a
//! directory link and cannot be dropped with another `--config`; DEL and bidirectional
//! controls are spelled out. Each attack runs as `nobody` through emulated sudo (see
//! `sudo.rs`), with a control showing the same command does what the attack wanted when the
//! rule does not apply (so the test tests something).

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::sudo::{
    as_sudo, chown_nobody, no_secret, open_dir, run, sudo, write_mode, Recorder, PASSWORD,
};
use crate::sudo_reads::{home, strs, their_link, theirs};
use crate::util::*;

const SEL: &str = "dc=eqiad,service=apache,name=mw1018";
const KEY: &str = "/v1/pools/eqiad/appservers/apache/mw1018";
/// The service account `sudo -u` switches to in these tests.
const DAEMON: u32 = 1;

fn synced() -> Ctx {
    let ctx = Ctx::new();
    let conf = ctx.copy_example("conf");
    ctx.sync(&conf, &[]).expect_code(0);
    ctx
}

fn audit_lines(log: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(log)
        .expect("audit log")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn man_dir_is_refused_for_another_user_and_never_follows_links() {
    let ctx = Ctx::new();
    let secrets = open_dir(&ctx, "secrets", 0o700);
    let precious = secrets.join("precious");
    write_mode(&precious, "keep\n", 0o600);
    // A directory the caller may write to, with their link under a page's name.
    let man = open_dir(&ctx, "man", 0o1777);
    their_link(&precious, &man.join("confctl-select.1"));
    let mut c = sudo(&ctx, "confctl");
    c.args(["--man-dir", s(&man)]);
    let r = run(c);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr
            .contains("--man-dir writes files, which is refused when running for another user"),
        "{r:?}"
    );
    assert_eq!(std::fs::read_to_string(&precious).expect("read"), "keep\n");
    assert_eq!(
        std::fs::read_dir(&man).expect("ls").count(),
        1,
        "nothing written"
    );
    // A path under a root-only directory: no directory is created there.
    let mut c = sudo(&ctx, "confctl");
    c.args(["--man-dir", s(&secrets.join("a/b"))]);
    assert_eq!(run(c).code, 2);
    assert!(!secrets.join("a").exists());
    // Whoever runs it (here root itself, as CI would): the planted link is not followed.
    let r = ctx.run("confctl", &["--man-dir", s(&man)]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("confctl-select.1: a symbolic link"),
        "{r:?}"
    );
    assert_eq!(std::fs::read_to_string(&precious).expect("read"), "keep\n");
    // The control: a fresh directory gets every page; a second run replaces them.
    let fresh = ctx.path("fresh/man1");
    for _ in 0..2 {
        ctx.run("confctl", &["--man-dir", s(&fresh)]).expect_code(0);
    }
    for page in ["confctl.1", "confctl-select.1"] {
        let text = std::fs::read_to_string(fresh.join(page)).expect(page);
        assert!(text.starts_with(".ie") || text.contains(".TH"), "{page}");
    }
}

#[test]
fn service_definitions_come_only_from_the_sync() {
    let ctx = synced();
    let home = home(&ctx);
    let schema = |path: &str| {
        theirs(
            &home.join(format!("{path}.yaml")),
            &format!(
                "svcs:\n  path: {path}\n  tags: [cluster]\n  free_form: true\n  schema:\n    \
                 depool_threshold: {{type: any, default: 0.5}}\n"
            ),
        )
    };
    let set = |schema: &Path, through_sudo: bool| {
        let mut c = if through_sudo {
            sudo(&ctx, "confctl")
        } else {
            ctx.cmd("confctl")
        };
        c.args(["--endpoints", &ctx.etcd.endpoint(), "--schema", s(schema)])
            .args([
                "--object-type",
                "svcs",
                "select",
                "cluster=appservers,name=apache",
            ])
            .arg("set/depool_threshold=0");
        run(c)
    };
    let before = ctx.state();
    for (path, owner) in [("services", "services/"), ("pools", "pools/")] {
        let schema = schema(path);
        for through_sudo in [true, false] {
            let r = set(&schema, through_sudo);
            assert_eq!(r.code, 2, "{path} sudo={through_sudo}: {r:?}");
            assert!(
                r.stderr.contains(&format!(
                    "object type svcs: path \"{path}\" is inside {owner}, which conftool-rs owns"
                )),
                "{r:?}"
            );
            assert_eq!(ctx.state(), before, "nothing written");
        }
    }
    // The control: the same type at a path of its own is written.
    ctx.put("/v1/mine/appservers/apache", r#"{"depool_threshold":0.5}"#);
    set(&schema("mine"), true).expect_code(0);
    assert_ne!(
        ctx.dump()["/v1/mine/appservers/apache"],
        r#"{"depool_threshold":0.5}"#
    );

    // Numbers in service definitions are numbers: a string is refused, with its place.
    let conf = ctx.copy_example("conf2");
    let services = conf.join("services.yaml");
    let text = std::fs::read_to_string(&services).expect("read");
    let apache = "appservers:\n  apache:\n    port: 80\n";
    assert!(text.contains(apache));
    let line = text[..text.find(apache).expect("apache")].lines().count() + 4;
    let with = |value: &str| {
        let t = text.replace(apache, &format!("{apache}    depool_threshold: {value}\n"));
        std::fs::write(&services, t).expect("write");
    };
    with("\"0.0\"");
    let before = ctx.state();
    let r = ctx.sync(&conf, &[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains(&format!(
            "services.yaml:{line}:23: appservers.apache.depool_threshold: invalid type: \
             string \"0.0\""
        )),
        "{r:?}"
    );
    assert_eq!(ctx.state(), before);
    with("0.0");
    ctx.sync(&conf, &[]).expect_code(0);
    assert!(ctx.dump()["/v1/services/appservers/apache"].contains("\"depool_threshold\":0.0"));
}

/// `runuser -u daemon` (the service account), with sudo's variables naming `nobody` when
/// `for_nobody` (as `sudo -u daemon` by nobody leaves them).
fn as_daemon(for_nobody: bool, args: &[&str]) -> Run {
    let mut c = Command::new("runuser");
    c.args(["-u", "daemon", "--", "env"]);
    if for_nobody {
        c.args(["SUDO_UID=65534", "SUDO_GID=65534", "SUDO_USER=nobody"]);
    }
    c.arg(bin("confctl"))
        .args(args)
        .env_remove("CONFTOOL_ENDPOINTS")
        .env_remove("CONFTOOL_CONFIG")
        .env_remove("SUDO_UID")
        .env_remove("SUDO_GID")
        .env_remove("SUDO_USER")
        .stdin(Stdio::null());
    run(c)
}

#[test]
fn sudo_to_a_service_account_runs_for_the_person() {
    let ctx = synced();
    let rec = Recorder::start();
    let etc = open_dir(&ctx, "etc", 0o755);
    let pw = etc.join("etcd-password");
    write_mode(&pw, &format!("{PASSWORD}\n"), 0o400);
    nix::unistd::chown(&pw, Some(nix::unistd::Uid::from_raw(DAEMON)), None).expect("chown");
    let cfg = etc.join("config.yaml");
    write_mode(
        &cfg,
        &format!(
            "endpoints: [{}]\nusername: conftool\npassword_file: {}\n\
             allow_insecure_auth: true\ntimeout: 2s\n",
            ctx.etcd.endpoint(),
            pw.display()
        ),
        0o644,
    );
    let before = ctx.state();
    let set = [
        "--config",
        s(&cfg),
        "--endpoints",
        &rec.url,
        "select",
        SEL,
        "set/weight=3",
    ];
    let r = as_daemon(true, &set);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("--endpoints may only name"), "{r:?}");
    assert_eq!(ctx.state(), before);
    let get = [
        "--config",
        s(&cfg),
        "--endpoints",
        &rec.url,
        "select",
        "name=x",
        "get",
    ];
    let r = as_daemon(true, &get);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("--endpoints may only name endpoints of"),
        "{r:?}"
    );
    no_secret(&r, PASSWORD);
    assert_eq!(rec.settled(), 0, "the caller's listener was contacted");
    // The control: the service account itself may point it anywhere (its own password).
    assert_eq!(as_daemon(false, &get).code, 1);
    assert!(rec.connections() > 0, "the recorder heard nothing");

    // The audit names the person, and the account that wrote the line.
    let logs = open_dir(&ctx, "logs", 0o755);
    nix::unistd::chown(&logs, Some(nix::unistd::Uid::from_raw(DAEMON)), None).expect("chown");
    let log = logs.join("audit.jsonl");
    let audited = etc.join("audited.yaml");
    write_mode(
        &audited,
        &format!(
            "endpoints: [{}]\naudit_log: {}\n",
            ctx.etcd.endpoint(),
            log.display()
        ),
        0o644,
    );
    let set = |w: &str| ["--config", s(&audited), "select", SEL, w].map(String::from);
    as_daemon(true, &strs(&set("set/weight=4"))).expect_code(0);
    as_daemon(false, &strs(&set("set/weight=5"))).expect_code(0);
    let lines = audit_lines(&log);
    let (ops, first): (Vec<_>, Vec<_>) = lines.iter().partition(|l| l["op"] != lines[0]["op"]);
    assert!(!first.is_empty() && !ops.is_empty(), "{lines:?}");
    for l in &first {
        assert_eq!(
            (&l["user"], &l["account"]),
            (&"nobody".into(), &"daemon".into()),
            "{l}"
        );
    }
    for l in &ops {
        assert_eq!(l["user"], "daemon", "{l}");
        assert!(l.get("account").is_none(), "{l}");
    }
}

#[test]
fn the_audit_log_is_not_moved_by_a_directory_link() {
    let ctx = synced();
    let secrets = open_dir(&ctx, "secrets", 0o700);
    let logs = open_dir(&ctx, "log", 0o1777);
    let dir = logs.join("conftool");
    their_link(&secrets, &dir);
    let cfg = open_dir(&ctx, "etc", 0o755).join("config.yaml");
    write_mode(
        &cfg,
        &format!(
            "endpoints: [{}]\naudit_log: {}\n",
            ctx.etcd.endpoint(),
            dir.join("audit.jsonl").display()
        ),
        0o644,
    );
    let set = || {
        let mut c = sudo(&ctx, "confctl");
        c.args(["--config", s(&cfg), "select", SEL, "set/pooled=no"]);
        run(c)
    };
    let before = ctx.state();
    let r = set();
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains("conftool is a symbolic link, which is not followed"),
        "{r:?}"
    );
    assert_eq!(ctx.state(), before, "nothing written without its audit");
    assert_eq!(std::fs::read_dir(&secrets).expect("ls").count(), 0);
    // Someone else's directory there: refused as well.
    std::fs::remove_file(&dir).expect("rm");
    std::fs::create_dir(&dir).expect("mkdir");
    chown_nobody(&dir);
    let r = set();
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("owned by uid 65534"), "{r:?}");
    assert_eq!(ctx.state(), before);
    // The control: root's own directory there takes the log.
    nix::unistd::chown(&dir, Some(nix::unistd::Uid::from_raw(0)), None).expect("chown");
    set().expect_code(0);
    let lines = audit_lines(&dir.join("audit.jsonl"));
    assert_eq!(lines[0]["user"], "nobody");
    assert_eq!(lines[0]["account"], "root");
}

/// Run `bin args` with `upper` laid over `/etc` (an overlay in a mount namespace of its
/// own: the machine's `/etc` is not touched), so that `/etc/conftool/config.yaml`, the
/// system configuration, is the test's.
fn with_etc(ctx: &Ctx, upper: &Path, through_sudo: bool, bin_name: &str, args: &[&str]) -> Run {
    static N: AtomicUsize = AtomicUsize::new(0);
    let work = ctx.path(&format!("etc-work-{}", N.fetch_add(1, Ordering::Relaxed)));
    std::fs::create_dir_all(&work).expect("mkdir");
    let script = format!(
        "mount -t overlay overlay -o lowerdir=/etc,upperdir={},workdir={} /etc && exec \"$@\"",
        upper.display(),
        work.display()
    );
    let mut c = Command::new("unshare");
    c.args([
        "--mount",
        "--propagation",
        "private",
        "--",
        "sh",
        "-c",
        &script,
        "sh",
    ])
    .arg(bin(bin_name))
    .args(args)
    .env_remove("CONFTOOL_ENDPOINTS")
    .env_remove("CONFTOOL_CONFIG")
    .env_remove("SUDO_UID")
    .env_remove("SUDO_USER")
    .stdin(Stdio::null());
    if through_sudo {
        as_sudo(&mut c);
    }
    run(c)
}

#[test]
fn another_config_cannot_drop_the_systems_audit_log_or_read_only() {
    let ctx = synced();
    let logs = open_dir(&ctx, "var-log", 0o755);
    let log = logs.join("audit.jsonl");
    let upper = ctx.path("etc-upper");
    let system = |extra: &str| {
        std::fs::create_dir_all(upper.join("conftool")).expect("mkdir");
        // The Python tool's format, where read_only comes from; our audit_log in it.
        write_mode(
            &upper.join("conftool/config.yaml"),
            &format!(
                "hosts: [{}]\nnamespace: \"\"\naudit_log: {}\n{extra}",
                ctx.etcd.endpoint(),
                log.display()
            ),
            0o644,
        );
    };
    // Root's file the caller may read, without audit_log or read_only (an empty one is
    // the same, with the default endpoints).
    let other = open_dir(&ctx, "etc2", 0o755).join("other.yaml");
    write_mode(
        &other,
        &format!("endpoints: [{}]\n", ctx.etcd.endpoint()),
        0o644,
    );
    let set = |w: &str| ["--config", s(&other), "select", SEL, w].map(String::from);

    system("read_only: true\n");
    let before = ctx.state();
    let r = with_etc(&ctx, &upper, true, "confctl", &strs(&set("set/weight=9")));
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains("the configuration is read-only (read_only: true)"),
        "{r:?}"
    );
    assert_eq!(ctx.state(), before);
    // The control: root itself chooses freely, and the other file does drop them.
    with_etc(&ctx, &upper, false, "confctl", &strs(&set("set/weight=9"))).expect_code(0);
    assert!(ctx.dump()[KEY].contains("\"weight\":9"));
    assert!(
        !log.exists(),
        "root's run used the other file: no audit log"
    );

    // Without read_only, the write goes to the system's audit log.
    system("");
    with_etc(&ctx, &upper, true, "confctl", &strs(&set("set/weight=8"))).expect_code(0);
    let lines = audit_lines(&log);
    assert!(lines
        .iter()
        .any(|l| l["user"] == "nobody" && l["event"] == "applied"));
}

#[test]
fn audit_reasons_and_messages_spell_out_del_and_bidi_controls() {
    let ctx = synced();
    let log = ctx.path("audit.jsonl");
    let cfg = ctx.write("config.yaml", &format!("audit_log: {}\n", log.display()));
    let reason = "INC-1\u{7f} \u{202e}gnitset\u{202c} \u{2066}ok\u{2069}";
    ctx.run(
        "confctl",
        &[
            "--config",
            s(&cfg),
            "--reason",
            reason,
            "select",
            SEL,
            "set/weight=2",
        ],
    )
    .expect_code(0);
    let text = std::fs::read_to_string(&log).expect("log");
    for c in ['\u{7f}', '\u{202e}', '\u{202c}', '\u{2066}', '\u{2069}'] {
        assert!(!text.contains(c), "{c:?} raw in the audit log: {text}");
    }
    assert!(text.contains(r"\u202e"), "{text}");
    let lines = audit_lines(&log);
    assert!(lines.iter().all(|l| l["reason"] == reason), "kept exactly");
    // On a terminal (stderr), the same characters are spelled out.
    let r = ctx.run(
        "confctl",
        &["select", "name=a\u{202e}b\u{7f}", "set/pooled=no"],
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        !r.stderr.contains('\u{202e}') && !r.stderr.contains('\u{7f}'),
        "{r:?}"
    );
    assert!(r.stderr.contains(r"a\u{202e}b\x7f"), "{r:?}");
}
