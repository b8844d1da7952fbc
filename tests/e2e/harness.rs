//! The test harness cleans up after itself: an interrupted run (SIGTERM, SIGINT) kills the
//! etcd members it started and removes its files; a killed run's files are swept by the next.
//! Checked on a real run of this test binary, started as a child.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::util::*;

/// Started as a child by the test below: holds an etcd member and a test directory, says
/// where they are, and waits to be interrupted.
#[test]
#[ignore = "run as a child process by interrupted_and_killed_runs_leave_nothing_behind"]
fn holds_an_etcd_until_interrupted() {
    let etcd = Etcd::start();
    let dir = conftool_testkit::temp_dir("test-");
    std::fs::write(dir.path().join("file"), "x").expect("write");
    println!(
        "RUN {} MEMBER {}",
        conftool_testkit::run_dir().path().display(),
        etcd.member_pid(0).expect("member pid")
    );
    // Not a terminal: stdout may be block-buffered.
    std::io::Write::flush(&mut std::io::stdout()).expect("flush");
    std::thread::sleep(Duration::from_secs(120));
}

/// Start the holder; returns it with its run directory and its etcd member's PID.
// The child is returned for the caller to wait on, and reaped on every failure path here.
#[allow(clippy::zombie_processes)]
fn start_holder() -> (std::process::Child, PathBuf, i32) {
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "harness::holds_an_etcd_until_interrupted",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the holder");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    loop {
        line.clear();
        if out.read_line(&mut line).unwrap_or(0) == 0 {
            let _ = child.kill();
            let status = child.wait();
            panic!("the holder ended ({status:?}) without saying where its files are");
        }
        // libtest prints `test NAME ... ` before the test's own output, on the same line.
        if let Some((_, rest)) = line.trim().split_once("RUN ") {
            let parsed = rest
                .split_once(" MEMBER ")
                .and_then(|(root, pid)| Some((PathBuf::from(root), pid.parse().ok()?)));
            let Some((root, pid)) = parsed else {
                let _ = child.kill();
                let status = child.wait();
                panic!("the holder ({status:?}) said {line:?}");
            };
            return (child, root, pid);
        }
    }
}

/// Whether a process exists and is not a zombie.
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')))
        .unwrap_or(false)
}

/// Wait (bounded) for the member to be gone; it is not this process's child to reap.
fn wait_gone(pid: i32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    !alive(pid)
}

fn has_files(root: &Path) -> bool {
    root.join("lock").exists()
}

#[test]
fn interrupted_and_killed_runs_leave_nothing_behind() {
    for sig in [Signal::SIGTERM, Signal::SIGINT] {
        let (mut child, root, member) = start_holder();
        assert!(has_files(&root) && alive(member), "{}", root.display());
        kill(Pid::from_raw(child.id() as i32), sig).expect("signal the holder");
        let status = child.wait().expect("wait");
        assert_eq!(status.code(), Some(128 + sig as i32), "{sig}: {status:?}");
        assert!(!root.exists(), "{sig}: {} left behind", root.display());
        assert!(
            wait_gone(member),
            "{sig}: etcd member {member} left running"
        );
    }
    // SIGKILL: nothing runs in the holder any more, so its member dies by its parent-death
    // signal and its files stay until the next run sweeps them.
    let mine = conftool_testkit::temp_dir("test-");
    let (mut child, root, member) = start_holder();
    kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL).expect("kill the holder");
    child.wait().expect("wait");
    assert!(
        wait_gone(member),
        "etcd member {member} outlived its killed parent"
    );
    assert!(has_files(&root));
    let swept = conftool_testkit::cleanup::sweep(root.parent().expect("tmp"));
    assert!(swept.contains(&root), "{swept:?}");
    assert!(!root.exists());
    // This run's own directory is never swept while it runs.
    assert!(mine.path().exists());
}
