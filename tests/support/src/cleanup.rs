//! Test files never outlive the run that made them.
//!
//! Everything a test process creates (etcd data dirs, test directories) lives under a run
//! directory, `$TMPDIR/conftool-test-<pid>-XXXXXX/`, whose `lock` file the process holds an
//! exclusive `flock` on while anything lives in it; it is removed when the last thing in it
//! is dropped. Then:
//! - **interrupted** (SIGINT, SIGTERM, SIGHUP): a signal thread SIGKILLs the etcd members
//!   this process started (by PID, from the registry below), removes the run directory and
//!   exits with 128 + the signal;
//! - **killed** (SIGKILL, a crash): the kernel releases the lock, and the next run sweeps
//!   the directory on start: a run directory whose lock can be taken belongs to a dead run.
//!   (A lock, not a PID check, so a reused PID cannot keep garbage alive or get a live run's
//!   files removed.)

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

use nix::fcntl::{Flock, FlockArg};

/// The name prefix of run directories.
pub const RUN_PREFIX: &str = "conftool-test-";

/// One run directory, held by everything created in it; removed when the last holder is
/// dropped (a later user makes a new one).
pub struct RunDir {
    root: PathBuf,
    _lock: Flock<File>,
}

impl RunDir {
    /// The directory.
    pub fn path(&self) -> &Path {
        &self.root
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

struct State {
    current: Weak<RunDir>,
    pids: BTreeSet<u32>,
    swept: bool,
    signals: bool,
}

static STATE: Mutex<State> = Mutex::new(State {
    current: Weak::new(),
    pids: BTreeSet::new(),
    swept: false,
    signals: false,
});

fn state() -> std::sync::MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(|p| p.into_inner())
}

/// The current run directory, made (and, the first time, stale ones swept) if there is none.
pub fn run_dir() -> Arc<RunDir> {
    let mut st = state();
    if let Some(run) = st.current.upgrade() {
        return run;
    }
    if !st.swept {
        st.swept = true;
        // No run directory of ours is alive here (`current` is dead).
        sweep_except(&std::env::temp_dir(), None);
    }
    if !st.signals {
        st.signals = true;
        spawn_signal_thread();
    }
    let root = tempfile::Builder::new()
        .prefix(&format!("{RUN_PREFIX}{}-", std::process::id()))
        .tempdir()
        .expect("create the test run directory")
        .keep();
    let file = File::create(root.join("lock")).expect("create the run's lock file");
    let lock = Flock::lock(file, FlockArg::LockExclusiveNonblock)
        .map_err(|(_, e)| e)
        .expect("lock the run directory");
    let run = Arc::new(RunDir { root, _lock: lock });
    st.current = Arc::downgrade(&run);
    run
}

/// A fresh directory inside the run directory, removed when dropped (or when the run is
/// interrupted, or by the next run's sweep if it was killed).
pub struct TestDir {
    dir: Option<tempfile::TempDir>,
    _run: Arc<RunDir>,
}

impl TestDir {
    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir
            .as_ref()
            .map_or(Path::new("/nonexistent"), |d| d.path())
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        // The directory before the run directory that holds it.
        drop(self.dir.take());
    }
}

/// A fresh directory inside the run directory; see [`TestDir`].
pub fn temp_dir(prefix: &str) -> TestDir {
    let run = run_dir();
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(run.path())
        .expect("create a test directory");
    TestDir {
        dir: Some(dir),
        _run: run,
    }
}

/// Remember a child this harness started, to be killed if the run is interrupted.
pub(crate) fn register(pid: u32) {
    state().pids.insert(pid);
}

/// Forget a child that has been killed and reaped (its PID may be reused from now on).
pub(crate) fn unregister(pid: u32) {
    state().pids.remove(&pid);
}

fn spawn_signal_thread() {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
        return;
    };
    std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            let (pids, run) = {
                let st = state();
                (st.pids.clone(), st.current.upgrade())
            };
            for pid in pids {
                if let Ok(pid) = i32::try_from(pid) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
            if let Some(run) = run {
                // Members may still be writing for a moment after SIGKILL; try twice.
                for _ in 0..2 {
                    if std::fs::remove_dir_all(run.path()).is_ok() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            std::process::exit(128 + sig);
        }
    });
}

/// Remove the run directories of dead runs under `tmp`: those whose lock can be taken, and
/// those that never got a lock file and are over a minute old. Returns what was removed.
pub fn sweep(tmp: &Path) -> Vec<PathBuf> {
    let mine = state().current.upgrade();
    sweep_except(tmp, mine.as_ref().map(|r| r.path()))
}

fn sweep_except(tmp: &Path, mine: Option<&Path>) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return removed;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if !name.starts_with(RUN_PREFIX)
            || mine == Some(path.as_path())
            || !entry.file_type().is_ok_and(|t| t.is_dir())
        {
            continue;
        }
        let dead = match File::open(path.join("lock")) {
            Ok(f) => Flock::lock(f, FlockArg::LockExclusiveNonblock).is_ok(),
            Err(_) => entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .is_some_and(|age| age > Duration::from_secs(60)),
        };
        if dead && std::fs::remove_dir_all(&path).is_ok() {
            removed.push(path);
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweeps_dead_runs_and_keeps_live_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let mk = |name: &str| {
            let d = tmp.path().join(name);
            std::fs::create_dir(&d).unwrap();
            std::fs::write(d.join("data"), "x").unwrap();
            d
        };
        // A dead run: its lock file is there but nobody holds it.
        let dead = mk(&format!("{RUN_PREFIX}1-dead"));
        File::create(dead.join("lock")).unwrap();
        // A live run: we hold its lock.
        let live = mk(&format!("{RUN_PREFIX}2-live"));
        let held = Flock::lock(
            File::create(live.join("lock")).unwrap(),
            FlockArg::LockExclusiveNonblock,
        )
        .map_err(|(_, e)| e)
        .unwrap();
        // A run that is just starting (no lock file yet, brand new), and something else.
        let starting = mk(&format!("{RUN_PREFIX}3-starting"));
        let other = mk("someone-elses-dir");
        File::create(other.join("lock")).unwrap();
        let removed = sweep(tmp.path());
        assert_eq!(removed, vec![dead.clone()]);
        assert!(!dead.exists());
        assert!(live.exists() && starting.exists() && other.exists());
        drop(held);
        assert_eq!(sweep(tmp.path()), vec![live.clone()]);
    }
}
