//! `confctl maint list|show|cancel|ack|forget`: the maintenance daemon's repair events
//! (conftool-maintd). A thin front of the daemon's library: the life cycle, what each
//! state allows and the writes are `conftool_maintd`'s; this file parses and prints.

use clap::{Args, Subcommand};
use conftool_core::Classify as _;
use conftool_maintd::records;
use conftool_maintd::{EventId, EventRecord, OperatorAction, Verdict};
use serde_json::json;

use super::Opts;
use crate::commands::changes::writer;
use crate::connection::ConnArgs;
use crate::exit::{BadInput, OK};
use crate::output::warn;

/// `confctl maint ...`.
#[derive(Debug, Clone, Args)]
pub struct MaintArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: MaintAction,
}

/// The maint subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum MaintAction {
    /// Every event, oldest first: id, state, node, kind, why it waits.
    List,
    /// One event: what the node said, its operation, its history.
    Show {
        /// The event id (ev-...).
        id: String,
    },
    /// No further action for the event (a running action finishes; nothing after it).
    Cancel {
        /// The event id.
        id: String,
    },
    /// A ready event's repair is done: the daemon puts the node back once it no longer
    /// reports the problem.
    Ack {
        /// The event id.
        id: String,
    },
    /// Drop a failed or cancelled event at the daemon's next poll; a problem still
    /// reported starts over as a new event.
    Forget {
        /// The event id.
        id: String,
    },
}

fn id(s: &str) -> anyhow::Result<EventId> {
    s.parse::<EventId>()
        .map_err(|e| BadInput::msg(format!("{e}; nothing written")))
}

/// A library error, bad input where it says so (exit 2).
fn lib(e: conftool_maintd::Error) -> anyhow::Error {
    if e.is_bad_input() {
        BadInput::msg(e.to_string())
    } else {
        e.into()
    }
}

fn line(r: &EventRecord) -> String {
    let mut s = format!("{}  {}  {}  {}", r.id, r.state, r.node, r.kind);
    if let Some(c) = &r.command {
        s.push_str(&format!(" {c}"));
    }
    if let Some(m) = &r.mark {
        s.push_str(&format!("  ({} by {})", m.action, m.by));
    }
    if let Some(w) = &r.waiting {
        s.push_str(&format!("  waiting: {w}"));
    }
    s
}

pub(super) async fn run(conn: &ConnArgs, opts: &Opts, args: &MaintArgs) -> anyhow::Result<u8> {
    let (action, text) = match &args.action {
        MaintAction::List => {
            let (_, store) = conn.connect().await?;
            let (events, malformed) = records::list(&store).await.map_err(lib)?;
            for (key, why) in &malformed {
                warn("confctl", format!("{key}: {why}"));
            }
            if opts.json {
                let doc: Vec<&EventRecord> = events.iter().map(|s| &s.record).collect();
                opts.out.line(serde_json::to_string(&doc)?);
            } else if events.is_empty() {
                opts.out.info("No maintenance events.");
            }
            if !opts.json {
                for s in &events {
                    opts.out.line(line(&s.record));
                }
            }
            return Ok(OK);
        }
        MaintAction::Show { id: text } => {
            let id = id(text)?;
            let (_, store) = conn.connect().await?;
            let Some(s) = records::get(&store, &id).await.map_err(lib)? else {
                return Err(BadInput::msg(format!("no maintenance event {id}")));
            };
            let r = s.record;
            if opts.json {
                opts.out.line(serde_json::to_string(&r)?);
                return Ok(OK);
            }
            opts.out.line(line(&r));
            opts.out
                .line(format!("  observed {}; said {}", r.observed, r.output));
            if let Some(op) = &r.operation {
                opts.out.line(format!("  operation {op}"));
            }
            for h in &r.history {
                opts.out
                    .line(format!("  {} {} [{}] {}", h.at, h.by, h.state, h.what));
            }
            return Ok(OK);
        }
        MaintAction::Cancel { id } => (OperatorAction::Cancel, id),
        MaintAction::Ack { id } => (OperatorAction::Ack, id),
        MaintAction::Forget { id } => (OperatorAction::Forget, id),
    };
    let id = id(text)?;
    let (cfg, store) = conn.connect().await?;
    let actor = conftool_core::Actor::from_env("confctl", cfg.username.clone());
    let by = format!("{}@{}", actor.user, actor.host);
    let said = match &opts.reason.reason {
        Some(r) => format!("maint {action} {id}: {r}"),
        None => format!("maint {action} {id}"),
    };
    let mut w =
        writer("confctl", &cfg, &store, Default::default(), &opts.reason)?.with_reason(said);
    let done = records::operator(&mut w, &id, action, &by, opts.reason.reason.as_deref())
        .await
        .map_err(lib)?;
    if opts.json {
        opts.out.line(
            json!({
                "id": id.as_str(),
                "action": action.to_string(),
                "changed": done.verdict == Verdict::Done,
                "state": done.record.state,
            })
            .to_string(),
        );
    } else if done.verdict == Verdict::Already {
        opts.out.info(format!(
            "Event {id} is already so ({}); nothing written.",
            done.record.state
        ));
    } else {
        opts.out.info(format!(
            "Event {id}: {action} recorded ({}).",
            done.record.state
        ));
    }
    Ok(OK)
}
