//! A binary's own peak resident memory, for the tests that bound it (issue 16: a merge
//! request must not take a CI runner down).
//!
//! The kernel's `ru_maxrss` of a child is the peak of its own address space, but Linux also
//! folds in, at `exec`, the peak of the address space it replaced: with `posix_spawn` (what
//! std uses) that is this test binary's, which runs every test at once and would inflate
//! every figure. So the binary is started by a launcher that is itself freshly exec'd: this
//! test binary again, running only [`launcher`], whose own footprint (a few MiB) is the only
//! floor under the figure. The launcher waits for its one child and reports
//! `getrusage(RUSAGE_CHILDREN)`, which with a single child is that child's peak.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::util::Run;

/// What the launcher is given, through its environment.
const PROGRAM: &str = "CONFTOOL_E2E_MEASURE_PROGRAM";
const ARGS: &str = "CONFTOOL_E2E_MEASURE_ARGS";
const OUT: &str = "CONFTOOL_E2E_MEASURE_OUT";

/// Run by [`measured`] as a child process: run the program, wait, write its exit code
/// and peak RSS.
#[test]
#[ignore = "run as a child process by measure::measured"]
fn launcher() {
    let program = std::env::var_os(PROGRAM).expect("program");
    let args: Vec<String> =
        serde_json::from_str(&std::env::var(ARGS).expect("args")).expect("args as JSON");
    let out = PathBuf::from(std::env::var_os(OUT).expect("output directory"));
    let file = |name: &str| std::fs::File::create(out.join(name)).expect("output file");
    let status = Command::new(program)
        .args(&args)
        .env_remove(PROGRAM)
        .env_remove(ARGS)
        .env_remove(OUT)
        .stdin(Stdio::null())
        .stdout(file("stdout"))
        .stderr(file("stderr"))
        .status()
        .expect("run the measured program");
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .expect("getrusage");
    let result = serde_json::json!({
        "code": status.code().unwrap_or(-1),
        "max_rss_kib": usage.max_rss(),
    });
    std::fs::write(out.join("result.json"), result.to_string()).expect("result");
}

/// Run `cmd` (its program, arguments and environment changes; stdin is closed) to the end
/// through the launcher; what it did and its own peak RSS in bytes.
pub fn measured(cmd: &Command) -> (Run, u64) {
    let out = conftool_testkit::temp_dir("measure-");
    let args: Vec<String> = cmd
        .get_args()
        .map(|a| a.to_str().expect("UTF-8 argument").to_string())
        .collect();
    let mut launcher = Command::new(std::env::current_exe().expect("test binary"));
    launcher
        .args([
            "--exact",
            "measure::launcher",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
            "-q",
        ])
        .env(PROGRAM, cmd.get_program())
        .env(ARGS, serde_json::to_string(&args).expect("JSON"))
        .env(OUT, out.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => launcher.env(k, v),
            None => launcher.env_remove(k),
        };
    }
    let status = launcher.status().expect("start the launcher");
    assert!(status.success(), "the launcher failed: {status}");
    let read = |name: &str| std::fs::read_to_string(out.path().join(name)).expect(name);
    let result: serde_json::Value = serde_json::from_str(&read("result.json")).expect("JSON");
    let code = result["code"].as_i64().expect("code");
    let kib = result["max_rss_kib"].as_i64().expect("max_rss_kib");
    let run = Run {
        code: i32::try_from(code).expect("exit code"),
        stdout: read("stdout"),
        stderr: read("stderr"),
    };
    (run, u64::try_from(kib).expect("RSS") * 1024)
}

/// The bound of issue 16 on any run of an input under the caps (or refused by them).
pub const MAX_RSS: u64 = 500_000_000;

/// The figure is the child's: a program that touches 64 MiB and one that touches almost
/// nothing are told apart, and the small one does not carry this test binary's peak.
#[test]
fn the_launcher_measures_its_child_and_not_itself() {
    let (run, big) =
        measured(Command::new("dd").args(["if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"]));
    assert_eq!(run.code, 0, "{run:?}");
    assert!(big > 64 << 20, "dd with a 64 MiB buffer: {big} bytes");
    let (run, small) = measured(Command::new("true").env("X", "1"));
    assert_eq!(run.code, 0, "{run:?}");
    assert!(small < 32 << 20, "true: {small} bytes");
}
