//! The hosts a depool policy gives to their owners' commands or to a person: commands run
//! one host at a time, each with its timeout (killed when it runs out), each result recorded
//! in the operation; hosts left to a person are listed at the end.

use std::time::Duration;

use conftool_core::policy::{command_for, Mechanism};
use conftool_core::OperationStep;
use conftool_core::{HostVerb, NodeName, Writer};

use crate::output::warn;

/// A host the policy does not leave to conftool.
#[derive(Debug, Clone)]
pub struct PolicyHost {
    /// The host.
    pub host: NodeName,
    /// How the policy says it is depooled.
    pub mechanism: Mechanism,
}

/// What happened to one such host.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The host.
    pub host: NodeName,
    /// The step as recorded in the operation.
    pub step: OperationStep,
}

impl Outcome {
    /// Whether a command ran and failed (or did not finish in time).
    pub fn failed(&self) -> bool {
        self.step.kind == "command" && self.step.exit_code != Some(0)
    }
}

/// The command a verb runs for a host under `mechanism`, and its undo: depool runs the
/// policy's command (undone by its `repool`), pool its `repool`; drain and decommission are
/// not the policy's (the host is left to its owners).
fn command(verb: HostVerb, mechanism: &Mechanism) -> Option<(String, Option<String>, Duration)> {
    match (verb, mechanism) {
        (
            HostVerb::Depool,
            Mechanism::Command {
                depool,
                repool,
                timeout,
            },
        ) => Some((depool.clone(), repool.clone(), *timeout)),
        (
            HostVerb::Pool,
            Mechanism::Command {
                repool: Some(r),
                timeout,
                ..
            },
        ) => Some((r.clone(), None, *timeout)),
        _ => None,
    }
}

/// Run `cmd` through `sh -c` within `timeout`: its exit code (`None`: killed or timed out)
/// and what happened, for people.
pub async fn run_command(cmd: &str, timeout: Duration) -> (Option<i32>, String) {
    let child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return (None, format!("cannot start: {e}")),
    };
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => match status.code() {
            Some(0) => (Some(0), "ok".into()),
            Some(c) => (Some(c), format!("exit {c}")),
            None => (None, "killed by a signal".into()),
        },
        Ok(Err(e)) => (None, format!("cannot wait for it: {e}")),
        Err(_) => {
            let _ = child.kill().await;
            (None, format!("timed out after {}s", timeout.as_secs_f64()))
        }
    }
}

/// Follow the policy for `hosts`: run their commands, note the ones left to a person, and
/// record every step in the writer's open operation (if any).
pub async fn run_all(
    writer: &mut Writer<'_>,
    verb: HostVerb,
    hosts: &[PolicyHost],
) -> Vec<Outcome> {
    let mut out = Vec::new();
    for h in hosts {
        let step = match (&h.mechanism, command(verb, &h.mechanism)) {
            (_, Some((template, undo, timeout))) => {
                let cmd = command_for(&template, &h.host);
                let (code, outcome) = run_command(&cmd, timeout).await;
                OperationStep {
                    host: h.host.to_string(),
                    kind: "command".into(),
                    detail: cmd,
                    exit_code: code,
                    outcome: Some(outcome),
                    undo: undo.map(|u| command_for(&u, &h.host)),
                }
            }
            (Mechanism::Manual(note), None) => OperationStep {
                host: h.host.to_string(),
                kind: "manual".into(),
                detail: note.clone(),
                exit_code: None,
                outcome: None,
                undo: None,
            },
            (m, None) => OperationStep {
                host: h.host.to_string(),
                kind: "left".into(),
                detail: format!("the policy says {m}: not {verb}ed by conftool"),
                exit_code: None,
                outcome: None,
                undo: None,
            },
        };
        out.push(Outcome {
            host: h.host.clone(),
            step,
        });
    }
    let steps: Vec<OperationStep> = out.iter().map(|o| o.step.clone()).collect();
    if !steps.is_empty() {
        if let Err(e) = writer.record_steps(steps).await {
            warn(
                "confctl",
                format!("recording the policy's steps in the operation: {e}"),
            );
        }
    }
    out
}
