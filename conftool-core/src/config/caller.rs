//! The effective configuration: the file, then the caller's settings on top. Running for
//! another user (sudo), the caller may narrow but never redirect.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{normalized_endpoint, Config, Quote, MAX_CONFIG_BYTES};
use crate::error::{Error, Untrusted};

/// What the caller asks for on top of the configuration file (flags, environment).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallerSettings {
    /// A configuration file instead of the default one.
    pub config: Option<PathBuf>,
    /// Endpoints instead of the file's.
    pub endpoints: Vec<String>,
    /// A namespace instead of the file's.
    pub namespace: Option<String>,
    /// A timeout instead of the file's.
    pub timeout: Option<Duration>,
}

impl Config {
    /// The effective configuration: the file (`caller.config`, else `default_path` if it
    /// exists, else the defaults), then the caller's settings on top, then [`Config::validate`].
    ///
    /// Running for another user ([`conftool_trust::Privilege::Sudo`]), the caller may narrow
    /// but never redirect: the file must be a system file, opened once and judged on its
    /// descriptor ([`conftool_trust::Opened`]); one the caller names must be readable by the
    /// caller, and the system configuration's (`default_path`) `audit_log` and `read_only`
    /// apply whatever file the caller names; errors quote no file the caller could not read;
    /// endpoints may only be some of the file's, and the namespace is the file's.
    pub fn resolve(
        caller: &CallerSettings,
        default_path: &Path,
        privilege: &conftool_trust::Privilege,
    ) -> Result<Config, Error> {
        let path = caller.config.as_deref().or_else(|| {
            // A missing default file means the defaults; a missing explicit one is an error.
            default_path.exists().then_some(default_path)
        });
        let (mut cfg, label) = match path {
            None => (Config::default(), PathBuf::from("--endpoints")),
            Some(path) => {
                let named = caller.config.is_some();
                let cfg = match privilege.caller() {
                    Some(_) => Config::load_system(path, named, privilege)?,
                    None => Config::load_as(path, Quote::Content, privilege)?,
                };
                (cfg, path.to_path_buf())
            }
        };
        // Another file the caller names cannot drop what the system configuration imposes:
        // its audit log, and read-only mode; nor choose the load balancers a verification
        // asks (one of the caller's choosing could say "out of rotation" falsely).
        if let Some(named) = caller.config.as_deref().filter(|_| privilege.is_sudo()) {
            if named != default_path {
                let system = match default_path.exists() {
                    true => Config::load_system(default_path, false, privilege)?,
                    false => Config::default(),
                };
                if system.audit_log.is_some() {
                    cfg.audit_log = system.audit_log;
                }
                cfg.read_only |= system.read_only;
                if cfg.load_balancers != system.load_balancers {
                    cfg.notes.push(format!(
                        "load_balancers of {} not used: running for another user, only those \
                         of {} count",
                        named.display(),
                        default_path.display()
                    ));
                    cfg.load_balancers = system.load_balancers;
                }
            }
        }
        if !caller.endpoints.is_empty() {
            if privilege.is_sudo() && path.is_some() {
                let allowed: std::collections::BTreeSet<String> = cfg
                    .endpoints
                    .iter()
                    .map(|u| normalized_endpoint(u))
                    .collect();
                if let Some(i) = caller
                    .endpoints
                    .iter()
                    .position(|u| !allowed.contains(&normalized_endpoint(u)))
                {
                    return Err(Error::Untrusted(Untrusted::Endpoint {
                        config: label,
                        position: i + 1,
                    }));
                }
            }
            cfg.endpoints = caller.endpoints.clone();
        }
        if let Some(ns) = &caller.namespace {
            if privilege.is_sudo() && path.is_some() && *ns != cfg.namespace {
                return Err(Error::Untrusted(Untrusted::Namespace { config: label }));
            }
            cfg.namespace = ns.clone();
        }
        if let Some(t) = caller.timeout {
            cfg.timeout = t;
        }
        cfg.validate(&label)?;
        Ok(cfg)
    }
}

impl Config {
    /// Read a configuration file for another user: a system file, opened once and judged on
    /// its descriptor; one the caller `named` must also be readable by them. Errors quote it
    /// only if the caller could read it.
    fn load_system(
        path: &Path,
        named: bool,
        privilege: &conftool_trust::Privilege,
    ) -> Result<Config, Error> {
        use conftool_trust::{Opened, ReadError};
        let not_system = |why: String| {
            Error::Untrusted(Untrusted::NotSystem {
                path: path.to_path_buf(),
                why,
            })
        };
        let Some(caller) = privilege.caller() else {
            return Config::load_as(path, Quote::Content, privilege);
        };
        let opened = Opened::open(path, caller).map_err(|e| match e {
            ReadError::Link { .. } => not_system(e.to_string()),
            e => Error::Config {
                path: path.to_path_buf(),
                reason: e.to_string(),
            },
        })?;
        if let Some(why) = opened.not_system() {
            return Err(not_system(why));
        }
        let readable = opened.caller_cannot_read().is_none();
        if named && !readable {
            return Err(Error::Untrusted(Untrusted::ConfigNotReadable {
                path: path.to_path_buf(),
            }));
        }
        let quote = if readable {
            Quote::Content
        } else {
            Quote::PlaceOnly
        };
        let bytes = opened
            .read(MAX_CONFIG_BYTES, "configuration file")
            .map_err(|e| Error::Config {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        Config::from_bytes(path, bytes, quote, privilege)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Classify as _;

    /// A root-owned directory under sticky /tmp, with a file in it of `mode`.
    fn file(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    #[test]
    fn under_sudo_the_caller_narrows_but_never_redirects() {
        use conftool_trust::Privilege;
        use std::os::unix::fs::PermissionsExt;
        if !nix::unistd::geteuid().is_root() {
            return; // ownership cannot be arranged without root
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let system = file(
            dir.path(),
            "config.yaml",
            "endpoints: [http://10.0.0.1:2379, http://10.0.0.2:2379]\nnamespace: /conftool\n",
            0o644,
        );
        let sudo = Privilege::Sudo {
            uid: 65534,
            gid: Some(65534),
        };
        let caller = |f: fn(&mut CallerSettings)| {
            let mut c = CallerSettings::default();
            f(&mut c);
            c
        };
        let resolve = |c: &CallerSettings, p: &Privilege| Config::resolve(c, &system, p);
        // Narrowing is fine, and so is a timeout.
        let c = caller(|c| {
            c.endpoints = vec!["http://10.0.0.2:2379/".into()];
            c.timeout = Some(Duration::from_secs(9));
        });
        let cfg = resolve(&c, &sudo).unwrap();
        assert_eq!(cfg.endpoints, ["http://10.0.0.2:2379/"]);
        assert_eq!(cfg.timeout, Duration::from_secs(9));
        // Redirecting is not, nor is another namespace; as a plain user both are.
        let away = caller(|c| {
            c.endpoints = vec!["http://10.0.0.1:2379".into(), "http://6.6.6.6:1".into()]
        });
        let e = resolve(&away, &sudo).unwrap_err();
        assert!(matches!(e, Error::Untrusted(_)) && e.is_bad_input(), "{e}");
        assert!(
            e.to_string().contains("endpoint 2 is not one of them"),
            "{e}"
        );
        assert!(resolve(&away, &Privilege::User).is_ok());
        assert!(resolve(&away, &Privilege::Root).is_ok());
        let ns = caller(|c| c.namespace = Some("/other".into()));
        assert!(resolve(&ns, &sudo)
            .unwrap_err()
            .to_string()
            .contains("--namespace"));
        let same_ns = caller(|c| c.namespace = Some("/conftool".into()));
        assert!(resolve(&same_ns, &sudo).is_ok());
        // A configuration the caller owns is not a system file.
        let mine = file(
            dir.path(),
            "mine.yaml",
            "endpoints: [http://6.6.6.6:1]\n",
            0o644,
        );
        nix::unistd::chown(&mine, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
        let c = CallerSettings {
            config: Some(mine.clone()),
            ..CallerSettings::default()
        };
        let e = resolve(&c, &sudo).unwrap_err().to_string();
        assert!(
            e.contains("must be a system file") && e.contains("owned by uid 65534"),
            "{e}"
        );
        assert!(resolve(&c, &Privilege::User).is_ok());
        // A root-only file the caller names is refused without a word of its content.
        let secret = file(dir.path(), "shadow", "root:$6$secrethash:1::::::\n", 0o600);
        let c = CallerSettings {
            config: Some(secret.clone()),
            ..CallerSettings::default()
        };
        let e = resolve(&c, &sudo).unwrap_err().to_string();
        assert!(
            e.contains("--config may only name a file the caller can read"),
            "{e}"
        );
        assert!(!e.contains("secrethash"), "{e}");
        // The system's own file, unreadable to the caller and broken: its place, not its text.
        std::fs::write(
            &system,
            "endpoints: [http://10.0.0.1:2379]\npassword_fle: /x/secretname\n",
        )
        .unwrap();
        std::fs::set_permissions(&system, std::fs::Permissions::from_mode(0o600)).unwrap();
        let e = resolve(&CallerSettings::default(), &sudo)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 2") && !e.contains("secretname") && !e.contains("password_fle"),
            "{e}"
        );
        let e = resolve(&CallerSettings::default(), &Privilege::Root)
            .unwrap_err()
            .to_string();
        assert!(e.contains("password_fle"), "root may see its own file: {e}");
        // No configuration file at all: nothing to protect, the caller's endpoints are used.
        let none = CallerSettings {
            endpoints: vec!["http://6.6.6.6:1".into()],
            ..CallerSettings::default()
        };
        let cfg = Config::resolve(&none, &dir.path().join("absent.yaml"), &sudo).unwrap();
        assert_eq!(cfg.endpoints, ["http://6.6.6.6:1"]);
    }

    /// Finding 8 of issue 16: an empty root-owned file the caller could read, named with
    /// `--config`, dropped the system configuration's audit log and read-only mode.
    #[test]
    fn under_sudo_another_config_keeps_the_systems_audit_log_and_read_only() {
        use conftool_trust::Privilege;
        use std::os::unix::fs::PermissionsExt;
        if !nix::unistd::geteuid().is_root() {
            return; // ownership cannot be arranged without root
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let system = file(
            dir.path(),
            "config.yaml",
            // The Python tool's format (where read_only comes from), with our audit_log.
            "hosts: [http://10.0.0.1:2379]\naudit_log: /var/log/conftool/audit.jsonl\n\
             read_only: true\n",
            0o644,
        );
        let empty = file(dir.path(), "empty.yaml", "", 0o644);
        let other = file(
            dir.path(),
            "codfw.yaml",
            "endpoints: [http://10.0.0.9:2379]\naudit_log: /tmp/elsewhere.jsonl\n",
            0o644,
        );
        let named = |p: &Path| CallerSettings {
            config: Some(p.to_path_buf()),
            ..CallerSettings::default()
        };
        let sudo = Privilege::Sudo {
            uid: 65534,
            gid: Some(65534),
        };
        for f in [&empty, &other] {
            let cfg = Config::resolve(&named(f), &system, &sudo).unwrap();
            assert_eq!(
                cfg.audit_log.as_deref(),
                Some(Path::new("/var/log/conftool/audit.jsonl")),
                "{f:?}"
            );
            assert!(cfg.read_only, "{f:?}");
        }
        // The other file's own settings still count (another cluster's endpoints), but not
        // its load balancers: a verification asks the system's only.
        let cfg = Config::resolve(&named(&other), &system, &sudo).unwrap();
        assert_eq!(cfg.endpoints, ["http://10.0.0.9:2379"]);
        std::fs::write(
            &other,
            "endpoints: [http://10.0.0.9:2379]\nload_balancers: {eqiad/a/b: [http://6.6.6.6/p]}\n",
        )
        .unwrap();
        let cfg = Config::resolve(&named(&other), &system, &sudo).unwrap();
        assert!(cfg.load_balancers.is_empty(), "{:?}", cfg.load_balancers);
        assert!(
            cfg.notes.iter().any(|n| n.contains("load_balancers of")),
            "{:?}",
            cfg.notes
        );
        let own = Config::resolve(&named(&other), &system, &Privilege::Root).unwrap();
        assert!(!own.load_balancers.is_empty());
        std::fs::write(
            &system,
            "hosts: [http://10.0.0.1:2379]\nload_balancers: {eqiad/a/b: [http://lb1/p]}\n",
        )
        .unwrap();
        let cfg = Config::resolve(&named(&other), &system, &sudo).unwrap();
        let pool = "eqiad/a/b".parse().unwrap();
        assert_eq!(
            cfg.load_balancers.for_pool(&pool)[0].as_str(),
            "http://lb1/p"
        );
        // Root itself chooses freely: the empty file means the defaults.
        let cfg = Config::resolve(&named(&empty), &system, &Privilege::Root).unwrap();
        assert_eq!((cfg.audit_log, cfg.read_only), (None, false));
        // A system configuration that cannot be read stops the run rather than be skipped.
        std::fs::write(&system, "endpoints: [\n").unwrap();
        let e = Config::resolve(&named(&empty), &system, &sudo).unwrap_err();
        assert!(e.to_string().contains("config.yaml"), "{e}");
    }
}
