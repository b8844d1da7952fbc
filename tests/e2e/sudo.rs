//! Safe under sudo: a caller with a sudoers rule for the tools cannot send the etcd password
//! to a listener of theirs, read root's files through error messages, or append to root's
//! files. Root through sudo is emulated by running as root with `SUDO_UID`/`SUDO_USER` set
//! (as sudo leaves them); the unprivileged side runs as `nobody`. The second round (issue 16)
//! is in `sudo_reads.rs` (files read on the caller's behalf) and `sudo_writes.rs` (what is
//! written, sudo to a service account, the audit log); the helpers here serve all three.

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::util::*;

pub(crate) const PASSWORD: &str = "S3cret-Etcd-Passw0rd";
pub(crate) const NOBODY: u32 = 65534;

/// A listener that accepts connections and records every byte it receives, never answering.
pub(crate) struct Recorder {
    pub(crate) url: String,
    addr: SocketAddr,
    /// The peers in the order they were accepted, and every byte received.
    received: Arc<Mutex<(Vec<SocketAddr>, Vec<u8>)>>,
    /// The recorder's own connections ([`Recorder::settled`]), not counted.
    markers: Mutex<Vec<SocketAddr>>,
}

impl Recorder {
    pub(crate) fn start() -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let url = format!("http://{addr}");
        let received = Arc::new(Mutex::new((Vec::new(), Vec::new())));
        let rec = received.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { return };
                // Counted here, in the order the kernel queued them (see `settled`).
                if let Ok(peer) = conn.peer_addr() {
                    rec.lock().expect("lock").0.push(peer);
                }
                let rec = rec.clone();
                std::thread::spawn(move || {
                    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = conn.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        rec.lock().expect("lock").1.extend_from_slice(&buf[..n]);
                    }
                });
            }
        });
        Recorder {
            url,
            addr,
            received,
            markers: Mutex::new(Vec::new()),
        }
    }

    /// The connections accepted so far (the recorder's own left out).
    pub(crate) fn connections(&self) -> usize {
        let markers = self.markers.lock().expect("lock");
        let received = self.received.lock().expect("lock");
        received.0.iter().filter(|p| !markers.contains(p)).count()
    }

    /// The connections made before this call (the recorder's own left out), once they have
    /// all been accepted: the recorder connects to itself and waits until that connection is
    /// accepted. The listener takes connections in the order they were made, so a tool that
    /// has exited has had every connection it made counted by then: no sleeping and hoping.
    pub(crate) fn settled(&self) -> usize {
        let marker = TcpStream::connect(self.addr).expect("connect to the recorder");
        let me = marker.local_addr().expect("addr");
        self.markers.lock().expect("lock").push(me);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !self.received.lock().expect("lock").0.contains(&me) {
            assert!(
                std::time::Instant::now() < deadline,
                "the recorder never accepted its own connection"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        self.connections()
    }

    pub(crate) fn saw(&self, needle: &str) -> bool {
        let data = &self.received.lock().expect("lock").1;
        data.windows(needle.len()).any(|w| w == needle.as_bytes())
    }
}

/// A directory that `nobody` can search (the test's own dir and the run dir above it are
/// root-only by default).
pub(crate) fn open_dir(ctx: &Ctx, rel: &str, mode: u32) -> PathBuf {
    let mut p = ctx.dir.path().to_path_buf();
    for dir in [conftool_testkit::run_dir().path(), ctx.dir.path()] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    p.push(rel);
    std::fs::create_dir_all(&p).expect("mkdir");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod");
    p
}

pub(crate) fn write_mode(path: &Path, text: &str, mode: u32) {
    std::fs::write(path, text).expect("write");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

pub(crate) fn chown_nobody(path: &Path) {
    nix::unistd::chown(path, Some(nix::unistd::Uid::from_raw(NOBODY)), None).expect("chown");
}

/// A command run "through sudo" by `nobody`: as root, with sudo's variables.
pub(crate) fn sudo(ctx: &Ctx, bin_name: &str) -> Command {
    let mut c = ctx.cmd(bin_name);
    as_sudo(&mut c);
    c
}

pub(crate) fn as_sudo(c: &mut Command) {
    c.env_remove("CONFTOOL_ENDPOINTS")
        .env_remove("CONFTOOL_CONFIG")
        .env("SUDO_UID", NOBODY.to_string())
        .env("SUDO_GID", NOBODY.to_string())
        .env("SUDO_USER", "nobody")
        .env("USER", "root")
        .stdin(Stdio::null());
}

pub(crate) fn run(mut c: Command) -> Run {
    Run::from(c.output().expect("run"))
}

pub(crate) fn no_secret(run: &Run, secret: &str) {
    assert!(
        !run.stdout.contains(secret) && !run.stderr.contains(secret),
        "{secret:?} leaked: {run:?}"
    );
}

/// The system's files, as an administrator would install them: a root-owned config
/// (world-readable, as `/etc/conftool/config.yaml` is) pointing at a root-only password file.
pub(crate) struct System {
    pub(crate) config: PathBuf,
    pub(crate) password: PathBuf,
}

pub(crate) fn system(ctx: &Ctx, endpoint: &str, audit_log: Option<&Path>) -> System {
    let etc = open_dir(ctx, "etc", 0o755);
    let password = etc.join("etcd-password");
    write_mode(&password, &format!("{PASSWORD}\n"), 0o600);
    let config = etc.join("config.yaml");
    let mut text = format!(
        "endpoints: [{endpoint}]\nusername: conftool\npassword_file: {}\n\
         allow_insecure_auth: true\ntimeout: 2s\n",
        password.display()
    );
    if let Some(log) = audit_log {
        text.push_str(&format!("audit_log: {}\n", log.display()));
    }
    write_mode(&config, &text, 0o644);
    System { config, password }
}

#[test]
fn the_password_never_goes_to_an_endpoint_the_caller_chose() {
    let ctx = Ctx::new();
    let rec = Recorder::start();
    let sys = system(&ctx, &ctx.etcd.endpoint(), None);
    let cfg = sys.config.to_str().expect("utf-8");
    let select = ["select", "name=x", "get"];
    // --endpoints and CONFTOOL_ENDPOINTS over the system's configuration.
    let mut c = sudo(&ctx, "confctl");
    c.args(["--config", cfg, "--endpoints", &rec.url])
        .args(select);
    let r = run(c);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("--endpoints may only name endpoints of"),
        "{r:?}"
    );
    let mut c = sudo(&ctx, "confctl");
    c.env("CONFTOOL_ENDPOINTS", &rec.url)
        .args(["--config", cfg])
        .args(select);
    assert_eq!(run(c).code, 2);
    // A configuration of the caller's own, naming the system's password file.
    let theirs = open_dir(&ctx, "home", 0o755).join("my.yaml");
    write_mode(
        &theirs,
        &format!(
            "endpoints: [{}]\nusername: conftool\npassword_file: {}\nallow_insecure_auth: true\n",
            rec.url,
            sys.password.display()
        ),
        0o644,
    );
    chown_nobody(&theirs);
    for how in ["flag", "env"] {
        let mut c = sudo(&ctx, "confctl");
        match how {
            "flag" => c.args(["--config", theirs.to_str().expect("utf-8")]),
            _ => c.env("CONFTOOL_CONFIG", &theirs),
        };
        c.args(select);
        let r = run(c);
        assert_eq!(r.code, 2, "{how}: {r:?}");
        assert!(r.stderr.contains("must be a system file"), "{r:?}");
        no_secret(&r, PASSWORD);
    }
    assert_eq!(rec.settled(), 0, "the caller's listener was contacted");
    assert!(!rec.saw(PASSWORD));
    // The control: root itself may point the tools anywhere, and the listener does hear
    // from them then (so the refusals above are what kept it silent).
    let mut c = ctx.cmd("confctl");
    c.env_remove("CONFTOOL_ENDPOINTS")
        .args(["--config", cfg, "--endpoints", &rec.url, "--timeout", "1s"])
        .args(select);
    assert_eq!(run(c).code, 1);
    assert!(
        rec.connections() > 0,
        "the recorder heard nothing: the test proves nothing"
    );
}

#[test]
fn root_only_files_are_never_quoted() {
    let ctx = Ctx::new();
    let dir = open_dir(&ctx, "secrets", 0o755);
    let secret = dir.join("shadow");
    write_mode(&secret, "TOKEN-4f2a9c: root-only\n", 0o600);
    let mut c = sudo(&ctx, "confctl");
    c.args([
        "--config",
        secret.to_str().expect("utf-8"),
        "select",
        "name=x",
        "get",
    ]);
    let r = run(c);
    assert_eq!(r.code, 2, "{r:?}");
    no_secret(&r, "TOKEN-4f2a9c");
    // Root itself sees what is wrong with its file.
    let mut c = ctx.cmd("confctl");
    c.args([
        "--config",
        secret.to_str().expect("utf-8"),
        "select",
        "name=x",
        "get",
    ]);
    let r = run(c);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("TOKEN-4f2a9c"), "{r:?}");
}

#[test]
fn the_audit_log_cannot_be_aimed_at_roots_files() {
    let ctx = Ctx::new();
    let conf = ctx.copy_example("conf");
    ctx.sync(&conf, &[]).expect_code(0);
    let precious = open_dir(&ctx, "etc2", 0o755).join("ld.so.preload");
    write_mode(&precious, "keep\n", 0o644);
    let set = [
        "select",
        "dc=eqiad,service=apache,name=mw1018",
        "set/pooled=no",
    ];
    let before = ctx.state();
    // A caller's configuration naming the file as its audit log.
    let theirs = open_dir(&ctx, "home", 0o755).join("my.yaml");
    write_mode(
        &theirs,
        &format!(
            "endpoints: [{}]\naudit_log: {}\n",
            ctx.etcd.endpoint(),
            precious.display()
        ),
        0o644,
    );
    chown_nobody(&theirs);
    let mut c = sudo(&ctx, "confctl");
    c.args(["--config", theirs.to_str().expect("utf-8")])
        .args(set);
    let r = run(c);
    assert_eq!(r.code, 2, "{r:?}");
    // A symlink planted in a log directory anyone may write to.
    let logs = open_dir(&ctx, "log", 0o1777);
    let log = logs.join("audit.jsonl");
    std::os::unix::fs::symlink(&precious, &log).expect("symlink");
    let sys = system(&ctx, &ctx.etcd.endpoint(), Some(&log));
    // (no auth on this etcd: the system configuration's user would be refused by it)
    let text = std::fs::read_to_string(&sys.config).expect("read");
    let text = text
        .lines()
        .filter(|l| !l.starts_with("username") && !l.starts_with("password_file"))
        .collect::<Vec<_>>()
        .join("\n");
    write_mode(&sys.config, &format!("{text}\n"), 0o644);
    let cfg = sys.config.to_str().expect("utf-8");
    let mut c = sudo(&ctx, "confctl");
    c.args(["--config", cfg]).args(set);
    let r = run(c);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("symbolic link"), "{r:?}");
    assert_eq!(std::fs::read_to_string(&precious).expect("read"), "keep\n");
    assert_eq!(
        ctx.state(),
        before,
        "nothing may be written without its audit"
    );
    // Without the planted link, under umask 000, the log is created 0640.
    std::fs::remove_file(&log).expect("rm");
    let mut c = Command::new("sh");
    as_sudo(&mut c);
    c.args(["-c", "umask 000; exec \"$0\" \"$@\""])
        .arg(bin("confctl"))
        .args(["--config", cfg])
        .args(set);
    run(c).expect_code(0);
    let mode = std::fs::metadata(&log).expect("log").permissions().mode();
    assert_eq!(mode & 0o7777, 0o640);
}

#[test]
fn credentials_need_tls_and_a_password() {
    let ctx = Ctx::new();
    let rec = Recorder::start();
    let dir = open_dir(&ctx, "etc", 0o755);
    let pw = dir.join("pw");
    write_mode(&pw, &format!("{PASSWORD}\n"), 0o600);
    let cfg = dir.join("plain.yaml");
    write_mode(
        &cfg,
        &format!(
            "endpoints: [{}]\nusername: conftool\npassword_file: {}\n",
            rec.url,
            pw.display()
        ),
        0o644,
    );
    let r = ctx.run(
        "confctl",
        &[
            "--config",
            cfg.to_str().expect("utf-8"),
            "select",
            "name=x",
            "get",
        ],
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("over plain http://"), "{r:?}");
    let nopw = dir.join("nopw.yaml");
    write_mode(
        &nopw,
        "endpoints: [https://127.0.0.1:1]\nusername: conftool\n",
        0o644,
    );
    let r = ctx.run(
        "confctl",
        &[
            "--config",
            nopw.to_str().expect("utf-8"),
            "select",
            "name=x",
            "get",
        ],
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr
            .contains("username is set but password_file is not"),
        "{r:?}"
    );
    assert_eq!(rec.settled(), 0);
}

#[test]
fn endpoint_urls_are_checked_up_front_and_never_echoed() {
    let ctx = Ctx::new();
    let good = ctx.etcd.endpoint();
    let https = good.replace("http://", "https://");
    let r = ctx.run(
        "confctl",
        &[
            "--endpoints",
            &format!("{good},{https}"),
            "select",
            "name=x",
            "get",
        ],
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("mix http:// and https://"), "{r:?}");
    let secret_url = "http://admin:Pw-0f-Admin@127.0.0.1:2379";
    let mut c = ctx.cmd("confctl");
    c.env("CONFTOOL_ENDPOINTS", secret_url).arg("--help");
    let r = run(c);
    assert_eq!(r.code, 0);
    no_secret(&r, "Pw-0f-Admin");
    let mut c = ctx.cmd("confctl");
    c.env("CONFTOOL_ENDPOINTS", secret_url)
        .args(["select", "name=x", "get"]);
    let r = run(c);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("has a user name or password in it"),
        "{r:?}"
    );
    no_secret(&r, "Pw-0f-Admin");
    let r = ctx.run(
        "confctl",
        &[
            "--endpoints",
            "http://etcd\u{1b}]0;pwned\u{7}:2379",
            "select",
            "name=x",
            "get",
        ],
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(!r.stderr.contains('\u{1b}'), "{r:?}");
}

#[test]
fn big_configuration_and_password_files_are_refused_by_their_limit() {
    let ctx = Ctx::new();
    let big = ctx.path("big.yaml");
    let mut text = String::from("# padding\n");
    while text.len() <= 1 << 20 {
        text.push_str("# ..............................................................\n");
    }
    std::fs::write(&big, text).expect("write");
    let r = ctx.run(
        "confctl",
        &[
            "--config",
            big.to_str().expect("utf-8"),
            "select",
            "name=x",
            "get",
        ],
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr
            .contains("bigger than the 1 MiB a configuration file may be"),
        "{r:?}"
    );
    let fifo = ctx.path("fifo.yaml");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
    let r = ctx.run(
        "confctl",
        &[
            "--config",
            fifo.to_str().expect("utf-8"),
            "select",
            "name=x",
            "get",
        ],
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("not a regular file"), "{r:?}");
}

#[test]
fn error_messages_spell_out_control_characters() {
    let ctx = Ctx::new();
    let r = ctx.run(
        "confctl",
        &["select", "name=a\u{1b}]0;pwned\u{7}", "set/pooled=no"],
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        !r.stderr.contains('\u{1b}') && !r.stderr.contains('\u{7}'),
        "{r:?}"
    );
    assert!(r.stderr.contains("\\x1b]0;pwned\\x07"), "{r:?}");
    // A line break in the input cannot forge a line of the message.
    let r = ctx.run(
        "confctl",
        &["select", "name=a\nconfctl: done, all fine", "set/pooled=no"],
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        !r.stderr.lines().any(|l| l.starts_with("confctl: done")),
        "{r:?}"
    );
}
