//! Safe under sudo, round two (issue 16, findings 2 and 3): every file a run for another
//! user reads on the caller's behalf (`set/@FILE`, `--schema`, the JSON Schema files a
//! schema names, a data directory, the files a configuration names) is one the caller could
//! read, is never reached through a link the caller controls, is a regular file of bounded
//! size, and is never quoted to the caller unless they could read it. Each attack is run as
//! `nobody` through emulated sudo (root with sudo's variables, see `sudo.rs`), with a
//! control that shows the same command works on a file the caller may read, or that root
//! itself would have been shown the content (so the test tests something). The
//! check-then-open race (finding 3) is run thousands of times in unit tests: conftool-trust's
//! `tests::a_file_swapped_for_a_link_never_yields_what_it_points_to` and conftool-core's
//! `pyconfig::tests::a_callers_rc_swapped_for_a_link_never_leaks_what_it_points_to`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::sudo::{chown_nobody, no_secret, open_dir, run, sudo, write_mode};
use crate::util::*;

const SEL: &str = "dc=eqiad,service=apache,name=mw1018";
const KEY: &str = "/v1/pools/eqiad/appservers/apache/mw1018";

/// A symbolic link of `nobody`'s (as one they planted would be).
pub(crate) fn their_link(target: &Path, link: &Path) {
    std::os::unix::fs::symlink(target, link).expect("symlink");
    nix::unistd::fchownat(
        nix::fcntl::AT_FDCWD,
        link,
        Some(nix::unistd::Uid::from_raw(crate::sudo::NOBODY)),
        None,
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .expect("lchown");
}

/// `nobody`'s home: a directory they own, others may search.
pub(crate) fn home(ctx: &Ctx) -> PathBuf {
    let h = open_dir(ctx, "home", 0o755);
    chown_nobody(&h);
    h
}

/// A file of `nobody`'s.
pub(crate) fn theirs(path: &Path, text: &str) -> PathBuf {
    write_mode(path, text, 0o644);
    chown_nobody(path);
    path.to_path_buf()
}

/// Borrowed arguments.
pub(crate) fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// confctl through sudo, pointed at this context's etcd (no configuration file: nothing
/// there to protect, so the endpoints are the caller's to give).
fn sudo_confctl(ctx: &Ctx, args: &[&str]) -> Run {
    let mut c = sudo(ctx, "confctl");
    c.args(["--endpoints", &ctx.etcd.endpoint()]).args(args);
    run(c)
}

/// Run to the end, however long it takes, unless it hangs: a command that has not exited
/// after a minute is killed and the test fails (a FIFO would block it forever; this is a
/// guard against hanging the suite, not a measure of speed).
fn run_unless_hung(mut c: Command) -> Run {
    let child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(out) => Run::from(out.expect("wait")),
        Err(_) => {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            panic!("{c:?} hung");
        }
    }
}

#[test]
fn set_at_file_reads_only_what_the_caller_could() {
    let ctx = Ctx::new();
    let conf = ctx.copy_example("conf");
    ctx.sync(&conf, &[]).expect_code(0);
    let shadow = open_dir(&ctx, "secrets", 0o755).join("shadow");
    write_mode(&shadow, "root:SHADOW-HASH-7f3e:19000:0:99999:7:::\n", 0o600);
    let home = home(&ctx);
    let link = home.join("values.yaml");
    their_link(&shadow, &link);
    let mine = theirs(&home.join("mine.yaml"), "weight: 7\n");
    let set = |f: &Path| format!("set/@{}", f.display());
    let before = ctx.state();
    // A root-only file, by name or through the caller's link: refused, never quoted.
    for (file, why) in [
        (&shadow, "could not read it (no permission to read it)"),
        (
            &link,
            "values.yaml is a symbolic link, which is not followed",
        ),
    ] {
        let r = sudo_confctl(&ctx, &["select", SEL, &set(file)]);
        assert_eq!(r.code, 2, "{r:?}");
        assert!(r.stderr.contains(why), "{r:?}");
        no_secret(&r, "SHADOW-HASH");
        assert_eq!(ctx.state(), before, "nothing written");
    }
    // Root itself is shown what is wrong with its file: the content would have leaked.
    let r = ctx.run("confctl", &["select", SEL, &set(&shadow)]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("SHADOW-HASH"), "{r:?}");
    // The caller's own file works.
    sudo_confctl(&ctx, &["select", SEL, &set(&mine)]).expect_code(0);
    assert!(ctx.dump()[KEY].contains("\"weight\":7"), "{:?}", ctx.dump());
}

#[test]
fn schema_files_are_read_only_if_the_caller_could() {
    let ctx = Ctx::new();
    ctx.put("/v1/accounts/x", r#"{"password":0}"#);
    let home = home(&ctx);
    let rootonly = open_dir(&ctx, "rootonly", 0o700);
    let typed = |schema: &Path, action: &str| {
        let s = schema.to_str().expect("utf-8");
        [
            "--schema",
            s,
            "--object-type",
            "acct",
            "select",
            "name=x",
            action,
        ]
        .map(String::from)
    };
    // --schema naming a root-only file.
    let bad_schema = ctx.path("secret-schema.yaml");
    write_mode(
        &bad_schema,
        "acct:\n  path: accounts\n  tags: []\n  schema:\n    password: \"SCHEMA-SECRET-9\"\n",
        0o600,
    );
    let r = sudo_confctl(&ctx, &strs(&typed(&bad_schema, "get")));
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("could not read it"), "{r:?}");
    no_secret(&r, "SCHEMA-SECRET-9");
    let r = ctx.run("confctl", &strs(&typed(&bad_schema, "get")));
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("SCHEMA-SECRET-9"),
        "root is shown it: {r:?}"
    );

    // The caller's own schema, declaring an int, with set/@ a root-only file.
    let schema = theirs(
        &home.join("schema.yaml"),
        "acct:\n  path: accounts\n  tags: []\n  schema:\n    password: {type: int, default: 0}\n",
    );
    let password = rootonly.join("password");
    write_mode(&password, "password: ROOT-PASSWORD-5\n", 0o644);
    let before = ctx.state();
    let set = |f: &Path| format!("set/@{}", f.display());
    let r = sudo_confctl(&ctx, &strs(&typed(&schema, &set(&password))));
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("no permission to search"), "{r:?}");
    no_secret(&r, "ROOT-PASSWORD-5");
    assert_eq!(ctx.state(), before);
    // Controls: the caller's own file is quoted back to them (so a leak would show), and
    // a good one is written.
    let shown = theirs(&home.join("shown.yaml"), "password: CALLER-VISIBLE\n");
    let r = sudo_confctl(&ctx, &strs(&typed(&schema, &set(&shown))));
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("CALLER-VISIBLE"), "{r:?}");
    let good = theirs(&home.join("good.yaml"), "password: 5\n");
    sudo_confctl(&ctx, &strs(&typed(&schema, &set(&good)))).expect_code(0);
    assert_eq!(ctx.dump()["/v1/accounts/x"], r#"{"password":5}"#);

    // A json_schema base_path under a root-only directory.
    write_mode(
        &rootonly.join("rule.json"),
        r#"{"type": "ROOT-RULE-SECRET"}"#,
        0o644,
    );
    let js = open_dir(&ctx, "home/js", 0o755);
    theirs(&js.join("rule.json"), r#"{"type": "object"}"#);
    let with_rules = |base: &Path| {
        format!(
            "acct:\n  path: accounts\n  tags: []\n  schema:\n    password: {{type: any, \
             default: 0}}\n  json_schema:\n    base_path: {}\n    rules:\n      r: \
             {{selector: \"name=.*\", schema: rule.json}}\n",
            base.display()
        )
    };
    let hidden = theirs(&home.join("hidden.yaml"), &with_rules(&rootonly));
    let r = sudo_confctl(&ctx, &strs(&typed(&hidden, "get")));
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("no permission to search"), "{r:?}");
    no_secret(&r, "ROOT-RULE-SECRET");
    // Root itself reads it (and finds it is no JSON Schema).
    let r = ctx.run("confctl", &strs(&typed(&hidden, "get")));
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr
            .contains("rootonly/rule.json:1:10: object type acct, rule r: not a valid draft"),
        "root reads it: {r:?}"
    );
    let open = theirs(&home.join("open.yaml"), &with_rules(&js));
    sudo_confctl(&ctx, &strs(&typed(&open, "get"))).expect_code(0);
}

#[test]
fn the_sync_reads_only_directories_the_caller_could() {
    let ctx = Ctx::new();
    let secret = open_dir(&ctx, "secret-conf", 0o700);
    copy_dir(&example_conf(), &secret);
    let services = secret.join("services.yaml");
    write_mode(&services, "appservers:\n  apache: SYNC-SECRET-3\n", 0o644);
    let before = ctx.state();
    let sync = |dir: &Path, extra: &[&str]| {
        let mut c = sudo(&ctx, "conftool-sync");
        c.args(["--endpoints", &ctx.etcd.endpoint(), "--directory"])
            .arg(dir)
            .args(extra);
        run(c)
    };
    let r = sync(&secret, &[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("no permission to list"), "{r:?}");
    no_secret(&r, "SYNC-SECRET-3");
    assert_eq!(ctx.state(), before);
    // Root itself is shown the content.
    let r = ctx.sync(&secret, &[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("SYNC-SECRET-3"), "{r:?}");
    // A directory the caller may list, holding one file they may not read.
    let open = open_dir(&ctx, "open-conf", 0o755);
    copy_dir(&example_conf(), &open);
    let pools = open.join("eqiad/pools.yaml");
    std::fs::set_permissions(&pools, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("chmod");
    let r = sync(&open, &[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr
            .contains("pools.yaml: the user this runs for could not read it"),
        "{r:?}"
    );
    assert_eq!(ctx.state(), before);
    // A git checkout the caller cannot list.
    git_init(&secret);
    let r = sync(&secret, &["--git-rev", "HEAD"]);
    assert_eq!(r.code, 2, "{r:?}");
    no_secret(&r, "SYNC-SECRET-3");
    assert_eq!(ctx.state(), before);
    // The control: readable by the caller, it syncs.
    std::fs::set_permissions(&pools, std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .expect("chmod");
    sync(&open, &[]).expect_code(0);
    assert!(ctx.count("/v1/pools/") > 0);
}

fn git_init(dir: &Path) {
    for args in [
        &["init", "-q"][..],
        &["add", "-A"],
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.org",
            "commit",
            "-qm",
            "c",
        ],
    ] {
        let ok = Command::new("git")
            .args(args)
            .current_dir(dir)
            .status()
            .expect("git");
        assert!(ok.success(), "git {args:?}");
    }
}

/// `set/@FIFO`, `--schema FIFO` and `set/@/dev/zero` end at once with "not a regular file",
/// through sudo and without (before, they hung or read until memory ran out).
#[test]
fn fifos_and_devices_are_refused_at_once() {
    let ctx = Ctx::new();
    let home = home(&ctx);
    let fifo = home.join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o666)).expect("mkfifo");
    chown_nobody(&fifo);
    let f = fifo.to_str().expect("utf-8");
    let at_fifo = format!("set/@{f}");
    let cases: [&[&str]; 3] = [
        &["select", SEL, &at_fifo],
        &["select", SEL, "set/@/dev/zero"],
        &[
            "--schema",
            f,
            "--object-type",
            "x",
            "select",
            "name=x",
            "get",
        ],
    ];
    let before = ctx.state();
    for args in cases {
        for through_sudo in [true, false] {
            let mut c = if through_sudo {
                sudo(&ctx, "confctl")
            } else {
                ctx.cmd("confctl")
            };
            c.args(["--endpoints", &ctx.etcd.endpoint()]).args(args);
            let r = run_unless_hung(c);
            assert_eq!(r.code, 2, "{args:?} sudo={through_sudo}: {r:?}");
            assert!(r.stderr.contains("not a regular file"), "{r:?}");
        }
    }
    assert_eq!(ctx.state(), before);
    // The control: a regular file in the same place is read.
    let mine = theirs(&home.join("w.yaml"), "weight: 3\n");
    let conf = ctx.copy_example("conf");
    ctx.sync(&conf, &[]).expect_code(0);
    sudo_confctl(&ctx, &["select", SEL, &format!("set/@{}", mine.display())]).expect_code(0);
}

/// Finding 3, the files a configuration names: the system's configuration names an etcd
/// client file in a sticky directory anyone may write to, where the caller planted a link
/// to a root-only file. (The race itself is run in conftool-trust's and conftool-core's unit
/// tests.)
#[test]
fn files_a_config_names_are_not_reached_through_the_callers_links() {
    let ctx = Ctx::new();
    let conf = ctx.copy_example("conf");
    ctx.sync(&conf, &[]).expect_code(0);
    let shadow = open_dir(&ctx, "secrets", 0o755).join("shadow");
    write_mode(&shadow, "SHADOW-LINE-1\n", 0o600);
    let tmp = open_dir(&ctx, "tmp", 0o1777);
    let rc = tmp.join("etcdrc");
    their_link(&shadow, &rc);
    let etc = open_dir(&ctx, "etc", 0o755);
    let config = etc.join("config.yaml");
    write_mode(
        &config,
        &format!(
            "hosts: [{}]\nnamespace: \"\"\ndriver_options: {{etcd_config_file: {}}}\n",
            ctx.etcd.endpoint(),
            rc.display()
        ),
        0o644,
    );
    let get = [
        "--config",
        config.to_str().expect("utf-8"),
        "select",
        SEL,
        "get",
    ];
    let mut c = sudo(&ctx, "confctl");
    c.args(get);
    let r = run(c);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("etcdrc is a symbolic link"), "{r:?}");
    no_secret(&r, "SHADOW-LINE-1");
    // Root itself follows its link, and is shown the file.
    let r = ctx.run("confctl", &get);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("SHADOW-LINE-1"), "{r:?}");
    // The control: root's own file there works through sudo.
    std::fs::remove_file(&rc).expect("rm");
    write_mode(&rc, "protocol: http\n", 0o644);
    let mut c = sudo(&ctx, "confctl");
    c.args(get);
    let r = run(c).expect_code(0);
    assert!(r.stdout.contains("mw1018"), "{r:?}");
}
