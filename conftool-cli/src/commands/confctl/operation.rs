//! `confctl operation list|show|end`: the operations kept in etcd (a group depool, a
//! `depool-during`, a `--operation` write): who, why, since when, what they changed; ending
//! one restores what it changed where nobody changed it since, runs the policy's repool
//! commands, and closes it.

use clap::{Args, Subcommand};
use conftool_core::{OperationId, OperationRecord};
use conftool_core::{OperationState, OperationStep};
use serde_json::json;

use super::policy_run::run_command;
use super::Opts;
use crate::commands::changes::{failure, writer, Landed};
use crate::connection::ConnArgs;
use crate::exit::{BadInput, FAILURE, OK};
use crate::output::warn;

/// `confctl operation ...`.
#[derive(Debug, Clone, Args)]
pub struct OperationArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: OperationAction,
}

/// The operation subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum OperationAction {
    /// Open operations, oldest first: id, owner, age, kind, hosts, objects changed.
    List {
        /// Ended ones too.
        #[arg(long)]
        all: bool,
    },
    /// One operation's record: every object with its state before and after, its steps.
    Show {
        /// The operation id.
        id: String,
    },
    /// Restore each object the operation changed to its state before, where it is still
    /// as the operation left it (others are listed with why; inactive ones never touched),
    /// run the policy's repool commands, and close the operation.
    End {
        /// The operation id.
        id: String,
        /// Say what it would do; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Let the restores leave pools below their depool threshold (an operation that
        /// pooled hosts, undone).
        #[arg(long)]
        allow_below_threshold: bool,
    },
}

fn id(s: &str) -> anyhow::Result<OperationId> {
    s.parse::<OperationId>()
        .map_err(|e| BadInput::msg(format!("{e}; nothing written")))
}

/// `12s`, `5m`, `3h`, `2d` since an RFC 3339 time.
fn age(started: &str) -> String {
    let secs = parse_rfc3339(started)
        .and_then(|t| std::time::SystemTime::now().duration_since(t).ok())
        .map(|d| d.as_secs());
    match secs {
        None => "?".into(),
        Some(s) if s < 120 => format!("{s}s"),
        Some(s) if s < 7200 => format!("{}m", s / 60),
        Some(s) if s < 172_800 => format!("{}h", s / 3600),
        Some(s) => format!("{}d", s / 86_400),
    }
}

/// `2026-12-04T16:42:23Z` (what the audit module writes) as a time.
fn parse_rfc3339(s: &str) -> Option<std::time::SystemTime> {
    let b = s.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    // Days from civil (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + se;
    u64::try_from(secs)
        .ok()
        .map(|s| std::time::UNIX_EPOCH + std::time::Duration::from_secs(s))
}

fn summary(r: &OperationRecord) -> serde_json::Value {
    json!({
        "id": r.id.to_string(),
        "state": r.state,
        "kind": r.kind,
        "subject": r.subject,
        "user": r.user,
        "host": r.host,
        "reason": r.reason,
        "started": r.started,
        "ended": r.ended,
        "objects": r.objects.len(),
    })
}

pub(super) async fn run(conn: &ConnArgs, opts: &Opts, args: &OperationArgs) -> anyhow::Result<u8> {
    match &args.action {
        OperationAction::List { all } => {
            let (_, store) = conn.connect().await?;
            let (records, malformed) = store.operations().await?;
            for (key, why) in &malformed {
                warn("confctl", format!("{key}: {why}"));
            }
            let shown: Vec<&OperationRecord> = records
                .iter()
                .filter(|r| *all || r.state == OperationState::Open)
                .collect();
            if opts.json {
                let doc: Vec<serde_json::Value> = shown.iter().map(|r| summary(r)).collect();
                opts.out.line(serde_json::Value::from(doc).to_string());
                return Ok(OK);
            }
            if shown.is_empty() {
                opts.out.info(if *all {
                    "No operations."
                } else {
                    "No open operations."
                });
            }
            for r in shown {
                opts.out.line(format!(
                    "{}  {}  {}@{}  {}  {} {}  {} objects{}{}",
                    r.id,
                    match r.state {
                        OperationState::Open => "open",
                        OperationState::Ended => "ended",
                    },
                    r.user,
                    r.host,
                    age(&r.started),
                    r.kind,
                    r.subject.join(","),
                    r.objects.len(),
                    r.reason
                        .as_deref()
                        .map_or(String::new(), |why| format!("  reason: {why}")),
                    if r.steps.is_empty() {
                        String::new()
                    } else {
                        format!("  {} steps", r.steps.len())
                    }
                ));
            }
            Ok(OK)
        }
        OperationAction::Show { id: text } => {
            let id = id(text)?;
            let (_, store) = conn.connect().await?;
            let Some(r) = store.operation(&id).await? else {
                return Err(BadInput::msg(format!("no operation {id}")));
            };
            if opts.json {
                opts.out.line(serde_json::to_string(&r)?);
                return Ok(OK);
            }
            let mut doc = summary(&r);
            doc["objects"] = r.objects.len().into();
            opts.out.line(format!(
                "operation {} ({}), {} {} by {}@{} ({}, pid {}), started {}{}",
                r.id,
                match r.state {
                    OperationState::Open => "open".to_string(),
                    OperationState::Ended => format!("ended {}", r.ended.as_deref().unwrap_or("")),
                },
                r.kind,
                r.subject.join(","),
                r.user,
                r.host,
                r.tool,
                r.pid,
                r.started,
                r.reason
                    .as_deref()
                    .map_or(String::new(), |why| format!(", reason: {why}"))
            ));
            for o in &r.objects {
                let after = o.after.as_ref().map_or("deleted".to_string(), |a| {
                    format!("pooled={} weight={}", a.pooled, a.weight)
                });
                opts.out.line(format!(
                    "  {}: pooled={} weight={} -> {after}",
                    o.key, o.before.pooled, o.before.weight
                ));
            }
            for s in &r.steps {
                opts.out.line(format!("  {}: {}", s.host, step_line(s)));
            }
            Ok(OK)
        }
        OperationAction::End {
            id: text,
            dry_run,
            allow_below_threshold,
        } => {
            let id = id(text)?;
            let (cfg, store) = conn.connect().await?;
            let guard = conftool_core::Overrides {
                include_inactive: false,
                allow_below_threshold: *allow_below_threshold,
            };
            let mut w = writer("confctl", &cfg, &store, guard, &opts.reason)?;
            end(opts, &mut w, &id, *dry_run).await
        }
    }
}

fn step_line(s: &OperationStep) -> String {
    match s.kind.as_str() {
        "command" | "undo" => format!(
            "{} `{}`: {}",
            s.kind,
            s.detail,
            s.outcome.as_deref().unwrap_or("not run")
        ),
        _ => format!("{}: {}", s.kind, s.detail),
    }
}

/// The policy commands that undo an operation's steps, not yet run successfully.
fn undo_commands(r: &OperationRecord) -> Vec<(String, String)> {
    let done = |host: &str, cmd: &str| {
        r.steps.iter().any(|s| {
            s.kind == "undo" && s.host == host && s.detail == cmd && s.exit_code == Some(0)
        })
    };
    r.steps
        .iter()
        .filter(|s| s.kind == "command")
        .filter_map(|s| s.undo.as_ref().map(|u| (s.host.clone(), u.clone())))
        .filter(|(h, u)| !done(h, u))
        .collect()
}

async fn end(
    opts: &Opts,
    w: &mut conftool_core::Writer<'_>,
    id: &OperationId,
    dry_run: bool,
) -> anyhow::Result<u8> {
    let ended = match w.restore_operation(id, dry_run).await {
        Ok(e) => e,
        Err(e) => return failure(e).report(&opts.out, None),
    };
    if ended.already_ended {
        opts.out.info(format!(
            "Operation {id} already ended{}; nothing written.",
            ended
                .record
                .ended
                .as_deref()
                .map_or(String::new(), |t| format!(" at {t}"))
        ));
        return Ok(OK);
    }
    for (key, why) in &ended.left {
        opts.out.info(format!("{key}: left as it is: {why}"));
    }
    let undo = undo_commands(&ended.record);
    let people: Vec<&OperationStep> = ended
        .record
        .steps
        .iter()
        .filter(|s| s.kind == "manual")
        .collect();
    if dry_run {
        opts.out
            .line(format!("Dry run: ending operation {id} (nothing written)"));
        for c in &ended.would_restore {
            if let Some(a) = &c.after {
                opts.out.line(format!(
                    "  {}: pooled={} weight={} -> pooled={} weight={}",
                    c.key, c.before.pooled, c.before.weight, a.pooled, a.weight
                ));
            }
        }
        for (host, cmd) in &undo {
            opts.out.line(format!("  {host}: would run `{cmd}`"));
        }
        for s in people {
            opts.out.line(format!(
                "  {}: needs a person to put it back ({})",
                s.host, s.detail
            ));
        }
        return Ok(OK);
    }
    Landed {
        applied: ended.restored.clone(),
        error: None,
    }
    .report(&opts.out, None)?;
    // The policy's repool commands, recorded in the operation; it closes only when all ran.
    let mut failed = Vec::new();
    if !undo.is_empty() {
        w.join_operation(id).await?;
        let mut steps = Vec::new();
        for (host, cmd) in &undo {
            let (code, outcome) =
                run_command(cmd, conftool_core::policy::DEFAULT_COMMAND_TIMEOUT).await;
            opts.out.line(format!("{host}: `{cmd}`: {outcome}"));
            if code != Some(0) {
                failed.push(host.clone());
            }
            steps.push(OperationStep {
                host: host.clone(),
                kind: "undo".into(),
                detail: cmd.clone(),
                exit_code: code,
                outcome: Some(outcome),
                undo: None,
            });
        }
        w.record_steps(steps).await?;
        w.leave_operation();
    }
    for s in people {
        opts.out.line(format!(
            "{}: needs a person to put it back ({})",
            s.host, s.detail
        ));
    }
    if !failed.is_empty() {
        warn(
            "confctl",
            format!(
                "operation {id} stays open: the repool command failed for {}; run \
                 `confctl operation end {id}` again once fixed",
                failed.join(", ")
            ),
        );
        return Ok(FAILURE);
    }
    w.close_operation(id).await?;
    opts.out.info(format!("Operation {id} ended."));
    Ok(OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_back_as_written() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_796_409_743);
        let text = conftool_core::audit::rfc3339(t);
        assert_eq!(parse_rfc3339(&text), Some(t));
        assert_eq!(parse_rfc3339("2026-12-04T16:42:23Z").map(|_| ()), Some(()));
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert_eq!(age("nonsense"), "?");
    }
}
