//! A run's events as JSON lines on stdout (`{"ts", "level", "node", "group", "event", ...}`),
//! one per line, flushed as they happen: what journald keeps and what tests read.

use std::io::Write as _;
use std::time::SystemTime;

use conftool_rebootmgr::local::LocalLock;
use conftool_rebootmgr::{Event, Node, Outcome, RebootConfig, RunOptions};
use serde_json::{json, Map, Value};

/// Where a run's lines go.
pub struct Log {
    node: String,
    group: String,
}

impl Log {
    pub fn new(cfg: &RebootConfig) -> Log {
        Log {
            node: cfg
                .node
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            group: cfg.group.to_string(),
        }
    }

    fn line(&self, level: &str, fields: Value) {
        let mut m = Map::new();
        m.insert(
            "ts".into(),
            json!(conftool_core::audit::rfc3339(SystemTime::now())),
        );
        m.insert("level".into(), json!(level));
        m.insert("node".into(), json!(self.node));
        m.insert("group".into(), json!(self.group));
        m.insert("pid".into(), json!(std::process::id()));
        if let Value::Object(f) = fields {
            m.extend(f);
        }
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", Value::Object(m));
        let _ = out.flush();
    }

    fn event(&self, e: &Event) {
        let level = serde_json::to_value(e.level()).unwrap_or_default();
        self.line(
            level.as_str().unwrap_or("info"),
            serde_json::to_value(e).unwrap_or_default(),
        );
    }

    /// One run, under the node's local lock; its exit code.
    pub async fn run(&mut self, cfg: RebootConfig, opts: RunOptions) -> i32 {
        let lock = if opts.dry_run {
            None
        } else {
            match LocalLock::take(&cfg.state_dir) {
                Ok(Some(l)) => Some(l),
                Ok(None) => {
                    self.line(
                        "warn",
                        json!({"event": "busy", "why": "another instance runs on this node"}),
                    );
                    return super::BUSY;
                }
                Err(e) => return self.failed(&anyhow::Error::new(e)),
            }
        };
        let node = match Node::connect(cfg).await {
            Ok(n) => n,
            Err(e) => return self.failed(&anyhow::Error::new(e)),
        };
        self.node = node.name().to_string();
        let this = &*self;
        let mut emit = |e: Event| this.event(&e);
        let result = node.run(opts, &mut emit).await;
        drop(lock);
        match result {
            Ok(outcome) => {
                let code = outcome.exit_code();
                let (level, what) = match &outcome {
                    Outcome::NothingToDo => ("info", "nothing_to_do".to_string()),
                    Outcome::Done => ("info", "done".to_string()),
                    Outcome::WouldReboot => ("info", "would_reboot".to_string()),
                    Outcome::HeldBack(_) => ("warn", "held_back".to_string()),
                    Outcome::NeedsPerson(_) => ("error", "needs_person".to_string()),
                    _ => ("info", "other".to_string()),
                };
                self.line(
                    level,
                    json!({"event": "exit", "outcome": what, "code": code, "dry_run": opts.dry_run}),
                );
                code
            }
            Err(e) => self.failed(&anyhow::Error::new(e)),
        }
    }

    fn failed(&self, e: &anyhow::Error) -> i32 {
        let code = super::exit_code(e);
        self.line(
            "error",
            json!({"event": "exit", "outcome": "failed", "error": format!("{e:#}"), "code": code}),
        );
        code
    }
}
