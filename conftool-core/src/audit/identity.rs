//! Who acts: the person behind a write, the account the process runs as, and the host.

use conftool_trust::Privilege;
use serde::Serialize;

/// Who is acting, from where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Actor {
    /// The person: the caller when the process runs for another user (sudo's `SUDO_USER`,
    /// to root or to a service account alike), else the account of the process's user id.
    pub user: String,
    /// The account the process runs as, when it runs for another user (`root`, or the
    /// service account `sudo -u` switched to); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The etcd user the tool authenticated as, if any.
    pub etcd_user: Option<String>,
    /// This machine's host name.
    pub host: String,
    /// The tool (`confctl`, `conftool`, ...).
    pub tool: String,
}

impl Actor {
    /// The actor of this process ([`Actor::for_privilege`] of [`Privilege::current`]).
    pub fn from_env(tool: &str, etcd_user: Option<String>) -> Actor {
        Actor::for_privilege(tool, etcd_user, &Privilege::current())
    }

    /// The actor of a process running under `privilege`. Running for another user, the
    /// person is that user (the account of the real user id when it differs from the
    /// effective one, else `SUDO_USER`, else the account of `SUDO_UID`) and `account` the
    /// effective user's. Otherwise the person is `SUDO_USER` when the process runs as root
    /// (root's word for who it acts for), else the account of the real user id (from the
    /// system's user database, so cron jobs, systemd units and `env -i` are named too), else
    /// `USER`/`LOGNAME`, else `uid <n>`.
    ///
    /// A line is only as trustworthy as the account that wrote it (the log file is that
    /// account's): `account` says which one it was.
    pub fn for_privilege(tool: &str, etcd_user: Option<String>, privilege: &Privilege) -> Actor {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let name_of = |uid: nix::unistd::Uid| {
            nix::unistd::User::from_uid(uid)
                .ok()
                .flatten()
                .map(|u| u.name)
                .filter(|n| !n.is_empty())
        };
        let (ruid, euid) = (nix::unistd::getuid(), nix::unistd::geteuid());
        let (user, account) = match privilege {
            Privilege::Sudo { uid, .. } => {
                let caller = nix::unistd::Uid::from_raw(*uid);
                let person = if ruid != euid {
                    name_of(ruid)
                } else {
                    var("SUDO_USER").or_else(|| name_of(caller))
                };
                (
                    person.unwrap_or_else(|| format!("uid {uid}")),
                    Some(name_of(euid).unwrap_or_else(|| format!("uid {euid}"))),
                )
            }
            _ => {
                let sudo = var("SUDO_USER").filter(|_| ruid.is_root());
                let user = sudo
                    .or_else(|| name_of(ruid))
                    .or_else(|| var("USER"))
                    .or_else(|| var("LOGNAME"))
                    .unwrap_or_else(|| format!("uid {ruid}"));
                (user, None)
            }
        };
        Actor {
            user,
            account,
            etcd_user,
            host: hostname(),
            tool: tool.to_string(),
        }
    }
}

/// This machine's host name (`/proc/sys/kernel/hostname`, else `$HOSTNAME`).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}
