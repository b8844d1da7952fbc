//! Running a node's diagnose or repair command: arguments (no shell), an optional stdin,
//! a time limit, and what it printed (bounded). The command runs in a process group of its
//! own, so that a timeout (or the daemon dropping the run) kills what it started too.

use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// It exited with this code.
    Exited(i32),
    /// A signal ended it.
    Signalled,
    /// It ran out of time and was killed (with its process group).
    TimedOut(Duration),
    /// It could not be started.
    NotRun(String),
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ended::Exited(0) => f.write_str("succeeded"),
            Ended::Exited(c) => write!(f, "exited {c}"),
            Ended::Signalled => f.write_str("was killed by a signal"),
            Ended::TimedOut(t) => write!(f, "timed out after {}s (killed)", t.as_secs_f64()),
            Ended::NotRun(why) => write!(f, "could not be started ({why})"),
        }
    }
}

/// What a command did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// How it ended.
    pub ended: Ended,
    /// Its stdout, up to the limit.
    pub stdout: Vec<u8>,
    /// The end of its stderr (for messages).
    pub stderr: Vec<u8>,
}

impl Output {
    /// The last line of stderr, for a message (empty if none).
    pub fn stderr_line(&self) -> String {
        let text = String::from_utf8_lossy(&self.stderr);
        let line = text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        conftool_core::escape_controls(line.trim()).into_owned()
    }
}

/// Kills the process group when dropped before the command was waited for.
struct Group(Option<i32>);

impl Drop for Group {
    fn drop(&mut self) {
        if let Some(pid) = self.0.take() {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

/// Run `argv` with `stdin` (none: `/dev/null`) for at most `timeout`, keeping at most
/// `limit` bytes of stdout.
pub async fn run(
    argv: &[String],
    stdin: Option<Vec<u8>>,
    timeout: Duration,
    limit: usize,
) -> Output {
    let not_run = |why: String| Output {
        ended: Ended::NotRun(why),
        stdout: Vec::new(),
        stderr: Vec::new(),
    };
    let Some((prog, args)) = argv.split_first() else {
        return not_run("no command".into());
    };
    let mut cmd = tokio::process::Command::new(prog);
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return not_run(format!("{prog}: {e}")),
    };
    let mut group = Group(child.id().and_then(|p| i32::try_from(p).ok()));
    if let (Some(mut pipe), Some(input)) = (child.stdin.take(), stdin) {
        // A command that does not read its input (or exits first) is not an error here.
        tokio::spawn(async move {
            let _ = pipe.write_all(&input).await;
            let _ = pipe.shutdown().await;
        });
    }
    let out = tokio::spawn(read_bounded(child.stdout.take(), limit));
    let err = tokio::spawn(read_tail(child.stderr.take(), 4096));
    let ended = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(s)) => {
            group.0 = None;
            match s.code() {
                Some(c) => Ended::Exited(c),
                None => Ended::Signalled,
            }
        }
        Ok(Err(e)) => Ended::NotRun(format!("cannot wait for it: {e}")),
        Err(_) => {
            drop(group);
            let _ = child.wait().await;
            Ended::TimedOut(timeout)
        }
    };
    // The pipes close when every process holding them is gone; one that left the group
    // and keeps them open does not hold this up for long.
    let grace = Duration::from_secs(1);
    let stdout = match tokio::time::timeout(grace, out).await {
        Ok(Ok(v)) => v,
        _ => Vec::new(),
    };
    let stderr = match tokio::time::timeout(grace, err).await {
        Ok(Ok(v)) => v,
        _ => Vec::new(),
    };
    Output {
        ended,
        stdout,
        stderr,
    }
}

/// Read everything, keeping the first `limit` bytes (the rest is drained so the writer
/// never blocks).
async fn read_bounded(pipe: Option<impl AsyncRead + Unpin>, limit: usize) -> Vec<u8> {
    let mut kept = Vec::new();
    let Some(mut pipe) = pipe else { return kept };
    let mut buf = [0u8; 8192];
    while let Ok(n) = pipe.read(&mut buf).await {
        if n == 0 {
            break;
        }
        let room = limit.saturating_sub(kept.len());
        kept.extend_from_slice(&buf[..n.min(room)]);
    }
    kept
}

/// Read everything, keeping the last `keep` bytes.
async fn read_tail(pipe: Option<impl AsyncRead + Unpin>, keep: usize) -> Vec<u8> {
    let mut kept = Vec::new();
    let Some(mut pipe) = pipe else { return kept };
    let mut buf = [0u8; 8192];
    while let Ok(n) = pipe.read(&mut buf).await {
        if n == 0 {
            break;
        }
        kept.extend_from_slice(&buf[..n]);
        if kept.len() > keep {
            kept.drain(..kept.len() - keep);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Vec<String> {
        vec!["sh".into(), "-c".into(), script.into()]
    }

    #[tokio::test]
    async fn stdin_goes_in_and_stdout_comes_back_bounded() {
        let o = run(
            &sh("cat; echo oops >&2; exit 3"),
            Some(b"hello".to_vec()),
            Duration::from_secs(10),
            3,
        )
        .await;
        assert_eq!(o.ended, Ended::Exited(3));
        assert_eq!(o.stdout, b"hel");
        assert_eq!(o.stderr_line(), "oops");
        assert_eq!(o.ended.to_string(), "exited 3");
    }

    #[tokio::test]
    async fn a_timeout_kills_the_whole_group() {
        let dir = std::env::temp_dir().join(format!("maintd-cmd-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pidfile = dir.join("pid");
        // A grandchild that would sleep long after its parent is killed, unless the whole
        // group is.
        let script = format!("sleep 60 & echo $! > {}; wait", pidfile.display());
        let o = run(&sh(&script), None, Duration::from_millis(500), 1024).await;
        assert_eq!(o.ended, Ended::TimedOut(Duration::from_millis(500)));
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        // Gone: signal 0 finds no such process (it was killed, and reaped by init).
        while nix::sys::signal::kill(Pid::from_raw(pid), None).is_ok() {
            assert!(
                std::time::Instant::now() < deadline,
                "the grandchild {pid} outlived the timeout"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_missing_program_is_not_run() {
        let o = run(
            &["/nonexistent/diagnose".to_string()],
            None,
            Duration::from_secs(1),
            10,
        )
        .await;
        assert!(
            matches!(&o.ended, Ended::NotRun(why) if why.starts_with("/nonexistent/diagnose: ")),
            "{o:?}"
        );
        assert_eq!(
            run(&[], None, Duration::from_secs(1), 10).await.ended,
            Ended::NotRun("no command".into())
        );
    }
}
