//! Running a measured process: wall time from spawn to reaped exit, and the child's own
//! peak resident set size as the kernel accounts it (`wait4`'s `ru_maxrss`).
//!
//! Linux folds the *spawning* process's memory high-water mark into the child's `ru_maxrss`
//! when the child calls `exec` (`exec_mmap` records the old address space's peak, and with
//! `posix_spawn`/`vfork` that is the parent's own). The bench holds whole keyspace dumps, so
//! it would inflate every figure; measured processes are therefore started by a small,
//! freshly exec'd launcher (`conftool-bench measure -- PROG ARGS`), whose own footprint
//! (a few MiB) is the only floor left under the figures.
//!
//! Output goes to files, not pipes, so a chatty child never blocks on a full pipe and
//! nothing is read while the clock runs.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use serde::{Deserialize, Serialize};

/// One finished process.
#[derive(Debug, Clone)]
pub(crate) struct Measured {
    /// From just before spawn to just after the child was reaped.
    pub wall: Duration,
    /// Peak RSS of the child itself, in bytes.
    pub max_rss: u64,
    /// Its standard output.
    pub stdout: String,
}

/// `conftool-bench measure --stdout F --stderr F -- PROG ARGS...` (internal).
#[derive(Debug, Args)]
pub(crate) struct MeasureArgs {
    /// File for the child's stdout.
    #[arg(long)]
    stdout: PathBuf,
    /// File for the child's stderr.
    #[arg(long)]
    stderr: PathBuf,
    /// The program and its arguments.
    #[arg(last = true, required = true)]
    command: Vec<OsString>,
}

/// What the launcher reports, as one JSON line.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Launched {
    wall_s: f64,
    max_rss_kib: u64,
    /// Exit code, or `None` when killed by a signal.
    code: Option<i32>,
    signal: Option<i32>,
}

/// Run `cmd` (through the launcher `bench`) to completion with stdout and stderr captured
/// in files under `scratch`; fail (with its stderr) unless it exits 0. The launcher
/// inherits `cmd`'s environment changes and passes them on.
pub(crate) fn run(bench: &Path, cmd: &Command, scratch: &Path) -> anyhow::Result<Measured> {
    let out_path = scratch.join("stdout");
    let err_path = scratch.join("stderr");
    let what = format!("{cmd:?}");
    let mut launcher = Command::new(bench);
    launcher
        .arg("measure")
        .arg("--stdout")
        .arg(&out_path)
        .arg("--stderr")
        .arg(&err_path)
        .arg("--")
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .stdin(Stdio::null());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => launcher.env(k, v),
            None => launcher.env_remove(k),
        };
    }
    let out = launcher
        .output()
        .with_context(|| format!("cannot start the launcher for {what}"))?;
    if !out.status.success() {
        bail!(
            "the launcher for {what} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim_end()
        );
    }
    let l: Launched = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("the launcher for {what} printed {:?}", out.stdout))?;
    if l.code != Some(0) {
        let how = match (l.code, l.signal) {
            (Some(c), _) => format!("exit code {c}"),
            (None, Some(s)) => format!("signal {s}"),
            (None, None) => "unknown status".into(),
        };
        let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
        bail!("{what} failed ({how}):\n{}", stderr.trim_end());
    }
    Ok(Measured {
        wall: Duration::from_secs_f64(l.wall_s),
        max_rss: l.max_rss_kib.saturating_mul(1024),
        stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
    })
}

/// The launcher: spawn, reap with `wait4`, print wall time, peak RSS and exit status.
pub(crate) fn measure_main(args: &MeasureArgs) -> anyhow::Result<()> {
    let (prog, rest) = args.command.split_first().context("no command")?;
    let out = std::fs::File::create(&args.stdout)
        .with_context(|| format!("creating {}", args.stdout.display()))?;
    let err = std::fs::File::create(&args.stderr)
        .with_context(|| format!("creating {}", args.stderr.display()))?;
    let mut cmd = Command::new(prog);
    cmd.args(rest).stdin(Stdio::null()).stdout(out).stderr(err);
    let start = Instant::now();
    let child = cmd
        .spawn()
        .with_context(|| format!("cannot start {}", prog.to_string_lossy()))?;
    let pid = libc::pid_t::try_from(child.id()).context("child pid out of range")?;
    let (status, max_rss_kib) = wait_with_rusage(pid)?;
    let wall_s = start.elapsed().as_secs_f64();
    // `child` was reaped by wait4 above; dropping the handle neither waits nor signals.
    drop(child);
    let launched = Launched {
        wall_s,
        max_rss_kib,
        code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
        signal: libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status)),
    };
    println!("{}", serde_json::to_string(&launched)?);
    Ok(())
}

/// Reap child `pid` and return its wait status and its peak RSS in KiB (Linux's unit for
/// `ru_maxrss`). std's `Child::wait` does not expose the resource usage, and
/// `getrusage(RUSAGE_CHILDREN)` would report the largest of all children ever reaped.
#[allow(unsafe_code)]
fn wait_with_rusage(pid: libc::pid_t) -> std::io::Result<(libc::c_int, u64)> {
    let mut status: libc::c_int = 0;
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    loop {
        // SAFETY: `pid` is a child this process spawned and has not reaped (std only waits
        // when asked, and we never ask), so wait4 cannot reap an unrelated process;
        // `status` and `usage` are valid, exclusively borrowed out-pointers for the call.
        let r = unsafe { libc::wait4(pid, &mut status, 0, usage.as_mut_ptr()) };
        if r == pid {
            break;
        }
        let e = std::io::Error::last_os_error();
        if r == -1 && e.kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        return Err(e);
    }
    // SAFETY: the buffer was zero-initialised, and an all-zero rusage (integers and
    // timevals) is a valid value; wait4 has since filled it in.
    let usage = unsafe { usage.assume_init() };
    Ok((status, u64::try_from(usage.ru_maxrss).unwrap_or(0)))
}
