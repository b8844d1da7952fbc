//! The coordinator's configuration, `/etc/rebootmgr/config.yaml` (one per node):
//!
//! ```yaml
//! group: appservers-eqiad          # the nodes that share the reboot slots
//! node: mw1018.eqiad.wmnet         # as conftool knows it; default: this machine's host name
//! conftool_config: /etc/conftool/config.yaml   # etcd, namespace, load_balancers, audit_log
//! slot: {concurrency: 1, ttl: 1h}  # nodes rebooting at once; how long one may stay away
//! settle: 3m                       # after the pre-boot tasks, before the last check
//! rules: {never_only_member: true, min_members: 3}
//! checks:
//!   - {name: galera, command: /usr/local/bin/check-galera, max_failing: 0}
//!   - {name: dkms, command: "dkms status | grep -qv error"}   # this node's own
//! windows:
//!   - {days: [mon, tue, wed, thu], from: "08:00", to: "16:00"}   # UTC
//! reboot_command: systemctl reboot
//! ```
//!
//! Every field but `group` has a default. Unknown fields, duplicate keys, invalid names and
//! durations are errors naming the file and line.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use conftool_core::config::parse_duration;
use conftool_core::NodeName;
use serde::{Deserialize, Deserializer};

use crate::error::Error;
use crate::names::{CheckName, GroupName};
use crate::window::Window;

/// Where the configuration is read from by default.
pub const DEFAULT_PATH: &str = "/etc/rebootmgr/config.yaml";

/// The coordinator's configuration; see the [module](self).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RebootConfig {
    /// The reboot group.
    pub group: GroupName,
    /// This node's name as conftool's pools know it (default: this machine's host name).
    #[serde(default)]
    pub node: Option<NodeName>,
    /// The conftool connection settings (etcd, namespace, `load_balancers`, `audit_log`).
    #[serde(default = "default_conftool_config")]
    pub conftool_config: PathBuf,
    /// Where the local lock file lives (one instance per node at a time).
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// Where this boot's id is read (it changes with every boot).
    #[serde(default = "default_boot_id_file")]
    pub boot_id_file: PathBuf,
    /// A file whose presence asks for a reboot (Debian's package tools create it).
    #[serde(default = "default_trigger_file")]
    pub trigger_file: PathBuf,
    /// Holds `pre_boot_tasks/` and `post_boot_tasks/`: executables run in the order of
    /// their names.
    #[serde(default = "default_tasks_dir")]
    pub tasks_dir: PathBuf,
    /// How long one task may run (then it is killed, and counts as failed).
    #[serde(default = "default_task_timeout", deserialize_with = "de_duration")]
    pub task_timeout: Duration,
    /// What reboots the node (run with `sh -c`).
    #[serde(default = "default_reboot_command")]
    pub reboot_command: String,
    /// How long the reboot command may take to return.
    #[serde(default = "default_reboot_timeout", deserialize_with = "de_duration")]
    pub reboot_timeout: Duration,
    /// How long this process may go on running after the reboot command returned, before
    /// the reboot counts as not having happened.
    #[serde(default = "default_reboot_grace", deserialize_with = "de_duration")]
    pub reboot_grace: Duration,
    /// The group's semaphore.
    #[serde(default)]
    pub slot: SlotConfig,
    /// The wait after the pre-boot tasks, before everything is checked once more: longer
    /// than a check's timeout and interval, so that what the tasks changed shows.
    #[serde(default = "default_settle", deserialize_with = "de_duration")]
    pub settle: Duration,
    /// How often stop switches are looked at while waiting, and checks run again while
    /// waiting for the node to be healthy after boot.
    #[serde(default = "default_poll", deserialize_with = "de_duration")]
    pub poll_interval: Duration,
    /// After boot, how long the checks have to pass before the node needs a person.
    #[serde(default = "default_healthy_timeout", deserialize_with = "de_duration")]
    pub healthy_timeout: Duration,
    /// A member's report older than this counts as missing (the node is down or its timer
    /// stopped): not passing, not a member that is up.
    #[serde(default = "default_report_max_age", deserialize_with = "de_duration")]
    pub report_max_age: Duration,
    /// How long the load balancers have to show the node out of rotation (and back in).
    #[serde(default = "default_verify_timeout", deserialize_with = "de_duration")]
    pub verify_timeout: Duration,
    /// Rules about the group's members.
    #[serde(default)]
    pub rules: GroupRules,
    /// Health checks, run on every node at every run; their results are published to the
    /// group.
    #[serde(default)]
    pub checks: Vec<HealthCheck>,
    /// When reboots may start (UTC); none: any time.
    #[serde(default)]
    pub windows: Vec<Window>,
}

/// The group's semaphore of reboot slots.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlotConfig {
    /// How many nodes of the group may be rebooting at once.
    #[serde(default = "one")]
    pub concurrency: u32,
    /// How long a slot outlives its holder's last refresh: the longest a node may stay away
    /// (down, or not running this tool) while holding it. A node that never comes back
    /// frees its slot after this.
    #[serde(default = "default_slot_ttl", deserialize_with = "de_duration")]
    pub ttl: Duration,
}

impl Default for SlotConfig {
    fn default() -> Self {
        SlotConfig {
            concurrency: 1,
            ttl: default_slot_ttl(),
        }
    }
}

/// Rules about how many members the group must have up for one of them to reboot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupRules {
    /// Never reboot the only member that is up (a gateway, a load balancer).
    #[serde(default)]
    pub never_only_member: bool,
    /// Never reboot when fewer than this many members are up, this node included (a
    /// controller quorum: 3).
    #[serde(default)]
    pub min_members: u32,
}

/// One health check: a command (run with `sh -c`, exit 0 = passing) every node of the group
/// runs. With `min_passing` or `max_failing` it is judged across the members that report it
/// (a stale report, or one of a member rebooting, counts as failing); without, only this
/// node's own result counts.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheck {
    /// Its name, as the group's reports say it.
    pub name: CheckName,
    /// The command.
    pub command: String,
    /// How long it may run (then it is killed and counts as failing).
    #[serde(default = "default_check_timeout", deserialize_with = "de_duration")]
    pub timeout: Duration,
    /// At least this many members must pass it.
    #[serde(default)]
    pub min_passing: Option<u32>,
    /// At most this many members may fail it (or not report it).
    #[serde(default)]
    pub max_failing: Option<u32>,
}

impl HealthCheck {
    /// Whether it is judged across the group (else: this node's own result).
    pub fn is_group_check(&self) -> bool {
        self.min_passing.is_some() || self.max_failing.is_some()
    }
}

impl RebootConfig {
    /// Read and check a configuration file.
    pub fn load(path: &Path) -> Result<RebootConfig, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Config {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        RebootConfig::from_yaml(path, &text)
    }

    /// Parse and check configuration text (`path` only names it in errors).
    pub fn from_yaml(path: &Path, text: &str) -> Result<RebootConfig, Error> {
        let fail = |reason: String| Error::Config {
            path: path.to_path_buf(),
            reason,
        };
        // Straight into the structs: serde refuses a field given twice with its line (a
        // YAML value first would refuse it too, but without the line).
        let cfg: RebootConfig =
            yaml_serde::from_str(text).map_err(|e| fail(with_line(text, e.to_string())))?;
        cfg.check().map_err(fail)?;
        Ok(cfg)
    }

    /// What the types cannot say.
    fn check(&self) -> Result<(), String> {
        if self.slot.concurrency == 0 {
            return Err("slot.concurrency must be at least 1".into());
        }
        if self.slot.ttl < Duration::from_secs(1) {
            return Err("slot.ttl must be at least 1s".into());
        }
        if self.poll_interval.is_zero() {
            return Err("poll_interval must be more than 0s".into());
        }
        if self.reboot_command.trim().is_empty() {
            return Err("reboot_command is empty".into());
        }
        let mut names = BTreeSet::new();
        for c in &self.checks {
            if !names.insert(&c.name) {
                return Err(format!("checks: {} is listed twice", c.name));
            }
            if c.command.trim().is_empty() {
                return Err(format!("checks: {}: the command is empty", c.name));
            }
        }
        Ok(())
    }

    /// This node's name: the configured one, else this machine's host name.
    pub fn node_name(&self) -> Result<NodeName, Error> {
        match &self.node {
            Some(n) => Ok(n.clone()),
            None => Ok(conftool_core::audit::hostname().parse()?),
        }
    }

    /// The pre-boot tasks' directory.
    pub fn pre_boot_dir(&self) -> PathBuf {
        self.tasks_dir.join("pre_boot_tasks")
    }

    /// The post-boot tasks' directory.
    pub fn post_boot_dir(&self) -> PathBuf {
        self.tasks_dir.join("post_boot_tasks")
    }
}

/// serde names a field given twice without its line: add the line of its second mention
/// (or of the one line that mentions it twice, in a flow mapping).
fn with_line(text: &str, reason: String) -> String {
    if reason.contains(" line ") {
        return reason;
    }
    let Some(field) = reason
        .strip_prefix("duplicate field `")
        .and_then(|r| r.split('`').next())
    else {
        // A value refused at the top level comes without its place: the first line that
        // holds it (quoted in the reason).
        let quoted = reason.split('"').nth(1).filter(|v| !v.is_empty());
        let line = quoted.and_then(|v| text.lines().position(|l| l.contains(v)));
        return match line {
            Some(n) => format!("{reason} at line {}", n + 1),
            None => reason,
        };
    };
    let mentions = |line: &str| {
        line.match_indices(field)
            .filter(|(i, _)| {
                let before = line[..*i].trim_end();
                let after = line[i + field.len()..].trim_start();
                after.starts_with(':') && (before.is_empty() || before.ends_with(['{', ',', '-']))
            })
            .count()
    };
    let mut seen = 0;
    for (n, line) in text.lines().enumerate() {
        seen += mentions(line);
        if seen >= 2 {
            return format!("{reason} at line {}", n + 1);
        }
    }
    reason
}

/// conftool's durations (`500ms`, `5s`, `2m`), and hours (`1h`, `1.5h`): a slot's time to
/// live and the time a node may take to come back are counted in hours, which conftool's
/// own settings (timeouts of seconds) refuse on purpose.
fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    let hours = s.trim().strip_suffix('h').map(str::parse::<f64>);
    match hours {
        Some(Ok(h)) if h.is_finite() && h > 0.0 && h <= 48.0 => {
            Ok(Duration::from_secs_f64(h * 3600.0))
        }
        Some(_) => Err(serde::de::Error::custom(format!(
            "invalid duration {s:?}: hours must be positive and at most 48"
        ))),
        None => parse_duration(&s).map_err(serde::de::Error::custom),
    }
}

fn one() -> u32 {
    1
}
fn default_conftool_config() -> PathBuf {
    PathBuf::from(conftool_core::config::DEFAULT_CONFIG_PATH)
}
fn default_state_dir() -> PathBuf {
    PathBuf::from("/var/lib/rebootmgr")
}
fn default_boot_id_file() -> PathBuf {
    PathBuf::from("/proc/sys/kernel/random/boot_id")
}
fn default_trigger_file() -> PathBuf {
    PathBuf::from("/var/run/reboot-required")
}
fn default_tasks_dir() -> PathBuf {
    PathBuf::from("/etc/rebootmgr")
}
fn default_task_timeout() -> Duration {
    Duration::from_secs(600)
}
fn default_reboot_command() -> String {
    "systemctl reboot".into()
}
fn default_reboot_timeout() -> Duration {
    Duration::from_secs(60)
}
fn default_reboot_grace() -> Duration {
    Duration::from_secs(300)
}
fn default_slot_ttl() -> Duration {
    Duration::from_secs(3600)
}
fn default_settle() -> Duration {
    Duration::from_secs(180)
}
fn default_poll() -> Duration {
    Duration::from_secs(5)
}
fn default_healthy_timeout() -> Duration {
    Duration::from_secs(900)
}
fn default_report_max_age() -> Duration {
    Duration::from_secs(900)
}
fn default_verify_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_check_timeout() -> Duration {
    Duration::from_secs(120)
}

#[cfg(test)]
mod tests {
    use super::*;
    use conftool_core::Classify as _;

    fn parse(text: &str) -> Result<RebootConfig, Error> {
        RebootConfig::from_yaml(Path::new("/etc/rebootmgr/config.yaml"), text)
    }

    #[test]
    fn a_group_is_all_it_takes_and_the_defaults_are_the_seeds() {
        let c = parse("group: web\n").unwrap();
        assert_eq!(c.group.as_str(), "web");
        assert_eq!(
            c.slot,
            SlotConfig {
                concurrency: 1,
                ttl: Duration::from_secs(3600)
            }
        );
        assert_eq!(c.trigger_file, PathBuf::from("/var/run/reboot-required"));
        assert_eq!(
            c.pre_boot_dir(),
            PathBuf::from("/etc/rebootmgr/pre_boot_tasks")
        );
        assert_eq!(
            c.settle,
            Duration::from_secs(180),
            "a check's 2m timeout and 1m interval"
        );
        assert!(c.checks.is_empty() && c.windows.is_empty());
    }

    #[test]
    fn checks_rules_and_windows_are_read() {
        let c = parse(
            "group: controllers\nrules: {never_only_member: true, min_members: 3}\n\
             checks:\n  - {name: galera, command: check-galera, max_failing: 0}\n  \
             - {name: dkms, command: dkms status, timeout: 30s}\n\
             windows:\n  - {days: [mon], from: \"08:00\", to: \"16:00\"}\n",
        )
        .unwrap();
        assert_eq!(
            c.rules,
            GroupRules {
                never_only_member: true,
                min_members: 3
            }
        );
        assert!(c.checks[0].is_group_check());
        assert_eq!(c.checks[0].timeout, Duration::from_secs(120));
        assert!(!c.checks[1].is_group_check());
        assert_eq!(c.checks[1].timeout, Duration::from_secs(30));
        assert_eq!(c.windows[0].to_string(), "mon 08:00-16:00 UTC");
        let c = parse("group: web\nslot: {ttl: 1.5h}\nsettle: 90s\n").unwrap();
        assert_eq!(
            (c.slot.ttl, c.settle),
            (Duration::from_secs(5400), Duration::from_secs(90))
        );
    }

    #[test]
    fn bad_input_names_the_file_and_line() {
        let cases = [
            ("group: web\nslot: {concurency: 2}\n", "line 2"),
            (
                "group: web\ngroup: db\n",
                "duplicate field `group` at line 2",
            ),
            (
                "group: web\n\nslot: {ttl: 1h, ttl: 2h}\n",
                "duplicate field `ttl` at line 3",
            ),
            ("group: web\nsettle: soon\n", "line 2"),
            ("group: web\nslot: {ttl: 49h}\n", "at most 48 at line 2"),
            ("group: a/b\n", "invalid group name"),
            (
                "group: web\nchecks:\n  - {name: x, command: a}\n  - {name: x, command: b}\n",
                "x is listed twice",
            ),
            (
                "group: web\nwindows:\n  - {from: \"8\", to: \"16:00\"}\n",
                "line 3",
            ),
            (
                "group: web\nslot: {concurrency: 0}\n",
                "slot.concurrency must be at least 1",
            ),
            ("node: mw1\n", "missing field `group`"),
        ];
        for (text, want) in cases {
            let e = parse(text).unwrap_err();
            assert!(e.is_bad_input(), "{text}: {e}");
            let msg = e.to_string();
            assert!(
                msg.starts_with("configuration file /etc/rebootmgr/config.yaml: ")
                    && msg.contains(want),
                "{text}: {msg}"
            );
        }
    }
}
