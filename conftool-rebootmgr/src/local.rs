//! The node's own side: the lock file that keeps one instance per node, the boot id, the
//! trigger file, and commands (tasks, checks, the reboot) run with a timeout.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};
use tokio::io::AsyncReadExt;

use crate::error::Error;

/// The local lock: held while this process runs (the kernel lets go of it when the process
/// ends, however it ends).
#[derive(Debug)]
pub struct LocalLock {
    _lock: Flock<File>,
    path: PathBuf,
}

impl LocalLock {
    /// Take `<state_dir>/rebootmgr.lock` without waiting; `None` if another instance holds
    /// it. The directory is created if missing.
    pub fn take(state_dir: &Path) -> Result<Option<LocalLock>, Error> {
        let local = |source| Error::Local {
            what: "state directory",
            path: state_dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(state_dir).map_err(local)?;
        let path = state_dir.join("rebootmgr.lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| Error::Local {
                what: "lock file",
                path: path.clone(),
                source,
            })?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => Ok(Some(LocalLock { _lock: lock, path })),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
            Err((_, errno)) => Err(Error::Local {
                what: "lock file",
                path,
                source: std::io::Error::from(errno),
            }),
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// This boot's id (the file's first line).
pub fn boot_id(path: &Path) -> Result<String, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Local {
        what: "boot id file",
        path: path.to_path_buf(),
        source,
    })?;
    let id = text.lines().next().unwrap_or_default().trim().to_string();
    if id.is_empty() {
        return Err(Error::Local {
            what: "boot id file",
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, "it is empty"),
        });
    }
    Ok(id)
}

/// The trigger file's modification time (ns since 1970) if it exists.
pub fn trigger_file(path: &Path) -> Result<Option<u128>, Error> {
    match std::fs::metadata(path) {
        Ok(m) => {
            let ns = i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec());
            Ok(Some(u128::try_from(ns).unwrap_or(0)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Local {
            what: "trigger file",
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Remove the trigger file if it is still the one seen (`mtime_ns`); whether it was removed.
/// A newer one (touched again after the reboot started) asks for another reboot: kept.
pub fn clear_trigger_file(path: &Path, mtime_ns: u128) -> Result<bool, Error> {
    if trigger_file(path)? != Some(mtime_ns) {
        return Ok(false);
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(Error::Local {
            what: "trigger file",
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// The tasks in `dir`, in the order of their names (a missing directory has none). Hidden
/// files and editors' leftovers (`~`, `.dpkg-*`) are not tasks.
pub fn tasks(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(Error::Local {
                what: "task directory",
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| Error::Local {
            what: "task directory",
            path: dir.to_path_buf(),
            source,
        })?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name.ends_with('~') || name.contains(".dpkg-") {
            continue;
        }
        out.push(entry.path());
    }
    out.sort();
    Ok(out)
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ran {
    /// Exit 0.
    Ok,
    /// Another exit code.
    Exit(i32),
    /// Killed by a signal (not ours).
    Signal,
    /// Killed (with what it started) after its timeout.
    TimedOut(Duration),
    /// It could not be started.
    NotStarted(String),
}

/// A command's outcome and the tail of what it wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// How it ended.
    pub ran: Ran,
    /// The last few hundred bytes of its stdout and stderr.
    pub output: String,
    /// How long it ran.
    pub elapsed: Duration,
}

impl Outcome {
    /// Exit 0.
    pub fn ok(&self) -> bool {
        self.ran == Ran::Ok
    }

    /// How it ended, in words: `exit 1: <output>`.
    pub fn describe(&self) -> String {
        let how = match &self.ran {
            Ran::Ok => "ok".to_string(),
            Ran::Exit(c) => format!("exit {c}"),
            Ran::Signal => "killed by a signal".to_string(),
            Ran::TimedOut(t) => format!("timed out after {}s (killed)", t.as_secs_f64()),
            Ran::NotStarted(why) => format!("could not be started: {why}"),
        };
        let out = self.output.trim();
        if out.is_empty() {
            how
        } else {
            format!("{how}: {}", conftool_core::escape_controls(out))
        }
    }
}

/// The most of a command's output kept.
const OUTPUT_TAIL: usize = 400;

/// Run `program` (an executable, or with `shell` a command line for `sh -c`) in a process
/// group of its own (a timeout kills what it started too), stdin closed, `env` added, its
/// output collected until it ends (a command that leaves a child holding its output open
/// runs until its timeout).
pub async fn run(program: &str, shell: bool, env: &[(&str, String)], timeout: Duration) -> Outcome {
    let start = Instant::now();
    let mut cmd = if shell {
        let mut c = tokio::process::Command::new("sh");
        c.arg("-c").arg(program);
        c
    } else {
        tokio::process::Command::new(program)
    };
    cmd.envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return Outcome {
                ran: Ran::NotStarted(format!("{program}: {e}")),
                output: String::new(),
                elapsed: start.elapsed(),
            }
        }
    };
    let (mut out, mut err) = (child.stdout.take(), child.stderr.take());
    // Both at once: a command filling one pipe while the other is read would never end.
    let collect = async {
        let read_out = async {
            let mut v = Vec::new();
            if let Some(o) = out.as_mut() {
                let _ = o.read_to_end(&mut v).await;
            }
            v
        };
        let read_err = async {
            let mut v = Vec::new();
            if let Some(e) = err.as_mut() {
                let _ = e.read_to_end(&mut v).await;
            }
            v
        };
        let (mut a, b) = tokio::join!(read_out, read_err);
        a.extend_from_slice(&b);
        a
    };
    let waited = tokio::time::timeout(timeout, async {
        let output = collect.await;
        (child.wait().await, output)
    })
    .await;
    let (ran, output) = match waited {
        Ok((Ok(status), output)) => (
            match status.code() {
                Some(0) => Ran::Ok,
                Some(c) => Ran::Exit(c),
                None => Ran::Signal,
            },
            output,
        ),
        Ok((Err(e), output)) => (Ran::NotStarted(format!("cannot wait for it: {e}")), output),
        Err(_) => {
            if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            let _ = child.wait().await;
            (Ran::TimedOut(timeout), Vec::new())
        }
    };
    let text = String::from_utf8_lossy(&output);
    let tail = match text.char_indices().rev().nth(OUTPUT_TAIL) {
        Some((i, _)) => format!("...{}", &text[i..]),
        None => text.into_owned(),
    };
    Outcome {
        ran,
        output: tail,
        elapsed: start.elapsed(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn commands_say_how_they_ended_and_a_timeout_kills_the_group() {
        let ok = run("echo fine", true, &[], Duration::from_secs(10)).await;
        assert_eq!((ok.ran.clone(), ok.output.trim()), (Ran::Ok, "fine"));
        let env = [("REBOOTMGR_NODE", "mw1".to_string())];
        let failed = run(
            "echo \"no $REBOOTMGR_NODE\" >&2; exit 3",
            true,
            &env,
            Duration::from_secs(10),
        )
        .await;
        assert_eq!(failed.describe(), "exit 3: no mw1");
        let slow = run("sleep 30 & sleep 30", true, &[], Duration::from_millis(200)).await;
        assert_eq!(slow.ran, Ran::TimedOut(Duration::from_millis(200)));
        assert!(slow.elapsed < Duration::from_secs(10), "{:?}", slow.elapsed);
        let missing = run("/nonexistent/task", false, &[], Duration::from_secs(1)).await;
        assert!(matches!(missing.ran, Ran::NotStarted(_)), "{missing:?}");
        let long = run(
            "head -c 5000 /dev/zero | tr '\\0' x",
            true,
            &[],
            Duration::from_secs(10),
        )
        .await;
        assert!(
            long.output.starts_with("...") && long.output.len() < 500,
            "{}",
            long.output.len()
        );
    }

    #[test]
    fn one_instance_per_state_directory() {
        let dir = std::env::temp_dir().join(format!("rebootmgr-lock-{}", std::process::id()));
        let first = LocalLock::take(&dir).unwrap().expect("free");
        assert!(
            LocalLock::take(&dir).unwrap().is_none(),
            "held by the first"
        );
        drop(first);
        assert!(LocalLock::take(&dir).unwrap().is_some(), "free again");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn tasks_come_in_the_order_of_their_names_leftovers_left_out() {
        let dir = std::env::temp_dir().join(format!("rebootmgr-tasks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for f in ["20-b", "10-a", ".hidden", "10-a~", "30.dpkg-old"] {
            std::fs::write(dir.join(f), "").unwrap();
        }
        let names: Vec<String> = tasks(&dir)
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["10-a", "20-b"]);
        assert!(tasks(&dir.join("missing")).unwrap().is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
