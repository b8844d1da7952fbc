//! The Python conftool's configuration, read as it is: `/etc/conftool/config.yaml` and the
//! python-etcd client files it points to, so that an installation switches without editing a
//! file.
//!
//! `config.yaml` (keys: `driver`, `hosts`, `namespace` (default `/conftool`), `api_version`,
//! `pools_path`, `services_path`, `driver_options` (`etcd_config_file`, default
//! `/etc/conftool/etcdrc`; `suppress_san_warnings`), `tcpircbot_host`, `tcpircbot_port`,
//! `cache_path`) is recognised by any key our own format does not have. The etcd client
//! settings come, as in the Python tool, from YAML files layered in this order, later keys
//! winning: `/etc/etcd/etcdrc`, the user's `~/.etcdrc`, then `etcd_config_file`. Their keys are
//! python-etcd's: `host` (a name, or a list of `[host, port]` pairs), `port` (python-etcd's
//! default 4001), `protocol`, `username`, `password`, `ca_cert`, `cert` (one PEM file with the
//! certificate and key, or a `[cert, key]` pair), `read_timeout`, and some that mean nothing
//! here (listed in [`Notes`]). When no file names a `host`, `config.yaml`'s `hosts` are used.
//!
//! Running as root through sudo, the caller's `~/.etcdrc` may only supply the caller's own
//! `username` and `password` (how the Python tool's users identify themselves to etcd); where
//! to connect and what to trust come from the system's files.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::config::{Config, TlsConfig, MAX_CONFIG_BYTES};
use crate::error::Error;
use conftool_trust::{read_file, Contents, Origin, Privilege, Quote, ReadError};

/// Keys only the Python tool's `config.yaml` has.
pub(crate) const PYTHON_KEYS: &[&str] = &[
    "driver",
    "hosts",
    "api_version",
    "pools_path",
    "services_path",
    "driver_options",
    "tcpircbot_host",
    "tcpircbot_port",
    "cache_path",
    "read_only",
    "conftool2git_address",
    "extensions_config",
];

/// The system-wide python-etcd file, read first.
const SYSTEM_RC: &str = "/etc/etcd/etcdrc";
/// The default of `driver_options.etcd_config_file`.
const DEFAULT_RC: &str = "/etc/conftool/etcdrc";

/// What was read and means nothing here, said once by the caller.
pub type Notes = Vec<String>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PythonConfig {
    driver: Option<String>,
    hosts: Option<Vec<String>>,
    namespace: Option<String>,
    api_version: Option<String>,
    pools_path: Option<String>,
    services_path: Option<String>,
    #[serde(default)]
    driver_options: DriverOptions,
    tcpircbot_host: Option<serde_yaml_any::Any>,
    tcpircbot_port: Option<serde_yaml_any::Any>,
    cache_path: Option<PathBuf>,
    #[serde(default)]
    read_only: bool,
    conftool2git_address: Option<serde_yaml_any::Any>,
    extensions_config: Option<serde_yaml_any::Any>,
    // Ours, accepted in the Python file too: the Python tool has no audit log.
    audit_log: Option<PathBuf>,
    #[serde(default, deserialize_with = "crate::config::de_opt_duration")]
    timeout: Option<Duration>,
    #[serde(default)]
    allow_insecure_auth: bool,
    #[serde(default)]
    load_balancers: crate::verify::LoadBalancers,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DriverOptions {
    etcd_config_file: Option<PathBuf>,
    suppress_san_warnings: Option<bool>,
}

/// Any YAML value (for keys that are read and ignored).
mod serde_yaml_any {
    /// A value of any shape.
    #[derive(Debug)]
    pub(crate) struct Any;
    impl<'de> serde::Deserialize<'de> for Any {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            serde::de::IgnoredAny::deserialize(d).map(|_| Any)
        }
    }
}

/// One python-etcd client file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rc {
    host: Option<Host>,
    port: Option<u16>,
    protocol: Option<String>,
    username: Option<String>,
    password: Option<String>,
    ca_cert: Option<PathBuf>,
    cert: Option<Cert>,
    read_timeout: Option<f64>,
    srv_domain: Option<String>,
    // python-etcd settings without a meaning here.
    version_prefix: Option<serde_yaml_any::Any>,
    allow_redirect: Option<serde_yaml_any::Any>,
    allow_reconnect: Option<serde_yaml_any::Any>,
    use_proxies: Option<serde_yaml_any::Any>,
    expected_cluster_id: Option<serde_yaml_any::Any>,
    per_host_pool_size: Option<serde_yaml_any::Any>,
    lock_prefix: Option<serde_yaml_any::Any>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Host {
    One(String),
    Many(Vec<(String, u16)>),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Cert {
    Combined(PathBuf),
    Pair(PathBuf, PathBuf),
}

/// The merged client settings, each with the file it came from.
#[derive(Debug, Default)]
struct Merged {
    host: Option<Host>,
    port: Option<u16>,
    protocol: Option<String>,
    username: Option<String>,
    password: Option<String>,
    ca_cert: Option<PathBuf>,
    cert: Option<Cert>,
    read_timeout: Option<f64>,
    ignored: Vec<&'static str>,
}

impl Merged {
    fn layer(
        &mut self,
        rc: Rc,
        file: &Path,
        only_identity: bool,
        notes: &mut Notes,
    ) -> Result<(), Error> {
        if rc.srv_domain.is_some() {
            return Err(Error::Config {
                path: file.to_path_buf(),
                reason: "srv_domain (DNS discovery of etcd members) is not supported: name the \
                         members with host"
                    .into(),
            });
        }
        if only_identity {
            let other = rc.host.is_some()
                || rc.port.is_some()
                || rc.protocol.is_some()
                || rc.ca_cert.is_some()
                || rc.cert.is_some()
                || rc.read_timeout.is_some();
            if other {
                notes.push(format!(
                    "{}: only username and password are taken from the caller's file when \
                     running through sudo; where to connect and what to trust come from the \
                     system's files",
                    file.display()
                ));
            }
            if rc.username.is_some() != rc.password.is_some() {
                notes.push(format!(
                    "{}: username and password are taken together or not at all; ignored",
                    file.display()
                ));
            } else if rc.username.is_some() {
                self.username = rc.username;
                self.password = rc.password;
            }
            return Ok(());
        }
        macro_rules! take {
            ($($f:ident),*) => { $( if rc.$f.is_some() { self.$f = rc.$f; } )* };
        }
        take!(
            host,
            port,
            protocol,
            username,
            password,
            ca_cert,
            cert,
            read_timeout
        );
        for (name, set) in [
            ("version_prefix", rc.version_prefix.is_some()),
            ("allow_redirect", rc.allow_redirect.is_some()),
            ("allow_reconnect", rc.allow_reconnect.is_some()),
            ("use_proxies", rc.use_proxies.is_some()),
            ("expected_cluster_id", rc.expected_cluster_id.is_some()),
            ("per_host_pool_size", rc.per_host_pool_size.is_some()),
            ("lock_prefix", rc.lock_prefix.is_some()),
        ] {
            if set && !self.ignored.contains(&name) {
                self.ignored.push(name);
            }
        }
        Ok(())
    }
}

/// Read one python-etcd file if it exists (a missing one is skipped, as the Python tool
/// does), through [`conftool_trust::read_file`]: for another user, a file the system names
/// must be root's alone and is quoted only if the caller could read it; the caller's own
/// must be theirs.
fn read_rc(path: &Path, privilege: &Privilege, origin: Origin) -> Result<Option<Rc>, Error> {
    match read_file(
        path,
        privilege,
        origin,
        MAX_CONFIG_BYTES,
        "etcd client file",
    ) {
        Ok(c) => parse_rc(path, c).map(Some),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(Error::Config {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }),
    }
}

fn parse_rc(path: &Path, contents: Contents) -> Result<Rc, Error> {
    let fail = |reason: String| Error::Config {
        path: path.to_path_buf(),
        reason,
    };
    let text = String::from_utf8(contents.bytes).map_err(|_| fail("not valid UTF-8".into()))?;
    if text.trim().is_empty() {
        return Ok(Rc::default());
    }
    yaml_serde::from_str(&text).map_err(|e| match contents.quote {
        Quote::Content => fail(e.to_string()),
        Quote::PlaceOnly => fail(format!(
            "not a valid etcd client file{} (its content is not shown: the user who ran this \
             could not read the file)",
            e.location()
                .map(|l| format!(" at line {}, column {}", l.line(), l.column()))
                .unwrap_or_default()
        )),
    })
}

/// The home directory of `uid`, from the user database.
fn home_of(uid: u32) -> Option<PathBuf> {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.dir)
}

/// Where the layered client files are looked for.
struct Sources {
    system_rc: PathBuf,
    /// The home whose `.etcdrc` counts (`None`: none).
    home: Option<PathBuf>,
}

impl Sources {
    /// The Python tool's: `/etc/etcd/etcdrc`, and the home of the user (of the caller, when
    /// running through sudo).
    fn real(privilege: &Privilege) -> Sources {
        Sources {
            system_rc: PathBuf::from(SYSTEM_RC),
            home: match privilege {
                Privilege::Sudo { uid, .. } => home_of(*uid),
                _ => std::env::var_os("HOME").map(PathBuf::from),
            },
        }
    }
}

/// Parse a Python-format `config.yaml` (`text`, read from `path`) and the client files it
/// leads to; `privilege` decides whose `~/.etcdrc` counts, and how.
pub(crate) fn load(
    path: &Path,
    text: &str,
    privilege: &Privilege,
) -> Result<(Config, Notes), Error> {
    load_from(path, text, privilege, &Sources::real(privilege))
}

fn load_from(
    path: &Path,
    text: &str,
    privilege: &Privilege,
    sources: &Sources,
) -> Result<(Config, Notes), Error> {
    let fail = |reason: String| Error::Config {
        path: path.to_path_buf(),
        reason,
    };
    let py: PythonConfig = yaml_serde::from_str(text).map_err(|e| fail(e.to_string()))?;
    let mut notes = Notes::new();
    for (key, value, only) in [
        ("driver", py.driver.as_deref(), "etcd"),
        ("api_version", py.api_version.as_deref(), "v1"),
        ("pools_path", py.pools_path.as_deref(), "pools"),
        ("services_path", py.services_path.as_deref(), "services"),
    ] {
        if let Some(v) = value {
            if v != only {
                return Err(fail(format!(
                    "{key}: {v:?} is not supported (only {only:?}, the keyspace these tools share \
                     with the Python tool)"
                )));
            }
        }
    }
    if py.tcpircbot_host.is_some() || py.tcpircbot_port.is_some() {
        notes.push(
            "tcpircbot_host/tcpircbot_port: the IRC relay of changes is not supported; every \
             change is recorded in the audit log (audit_log) instead"
                .into(),
        );
    }
    if py.cache_path.is_some() {
        notes.push("cache_path: ignored (these tools keep no cache)".into());
    }
    if py.conftool2git_address.is_some() {
        notes.push(
            "conftool2git_address: ignored (changes are not sent to conftool2git; every change \
             is recorded in the audit log (audit_log) instead)"
                .into(),
        );
    }
    if py.extensions_config.is_some() {
        notes.push(
            "extensions_config: ignored (the dbctl and requestctl extensions are not part of \
             these tools)"
                .into(),
        );
    }
    if py.driver_options.suppress_san_warnings.is_some() {
        notes.push(
            "driver_options.suppress_san_warnings: ignored (certificates are always checked \
             against their subject alternative names)"
                .into(),
        );
    }
    let rc_file = py
        .driver_options
        .etcd_config_file
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_RC));
    let mut merged = Merged::default();
    // The system's, the user's, then the configured file, as the Python tool reads them.
    if let Some(rc) = read_rc(&sources.system_rc, privilege, Origin::System)? {
        merged.layer(rc, &sources.system_rc, false, &mut notes)?;
    }
    let identity_only = privilege.is_sudo();
    if let Some(user_rc) = sources.home.as_ref().map(|h| h.join(".etcdrc")) {
        // For another user, their file must be theirs (judged on the descriptor it is read
        // from, never through a link they control); one that is not is skipped, and said.
        let read = read_file(
            &user_rc,
            privilege,
            Origin::CallersOwn,
            MAX_CONFIG_BYTES,
            "etcd client file",
        );
        match read {
            Ok(c) => {
                let rc = parse_rc(&user_rc, c)?;
                merged.layer(rc, &user_rc, identity_only, &mut notes)?;
            }
            Err(e) if e.is_not_found() => {}
            Err(e @ (ReadError::NotForCaller(_) | ReadError::Link { .. })) => {
                notes.push(format!("{}: not read: {e}", user_rc.display()));
            }
            Err(e) => {
                return Err(Error::Config {
                    path: user_rc.clone(),
                    reason: e.to_string(),
                })
            }
        }
    }
    if let Some(rc) = read_rc(&rc_file, privilege, Origin::System)? {
        merged.layer(rc, &rc_file, false, &mut notes)?;
    }
    if !merged.ignored.is_empty() {
        notes.push(format!(
            "{}: python-etcd settings without a meaning here, ignored",
            merged.ignored.join(", ")
        ));
    }

    let protocol = merged.protocol.clone().unwrap_or_else(|| "http".into());
    let endpoints = match &merged.host {
        Some(Host::One(h)) => vec![format!("{protocol}://{h}:{}", merged.port.unwrap_or(4001))],
        Some(Host::Many(hosts)) => hosts
            .iter()
            .map(|(h, p)| format!("{protocol}://{h}:{p}"))
            .collect(),
        None => py
            .hosts
            .clone()
            .unwrap_or_else(|| vec!["http://localhost:2379".to_string()]),
    };
    let tls = match (&merged.ca_cert, &merged.cert) {
        (None, None) => None,
        (ca, cert) => {
            let (cert, key) = match cert {
                Some(Cert::Combined(p)) => (Some(p.clone()), Some(p.clone())),
                Some(Cert::Pair(c, k)) => (Some(c.clone()), Some(k.clone())),
                None => (None, None),
            };
            Some(TlsConfig {
                ca: ca.clone(),
                cert,
                key,
            })
        }
    };
    let timeout = match (py.timeout, merged.read_timeout) {
        (Some(t), _) => t,
        (None, Some(secs)) if secs.is_finite() && secs > 0.0 && secs < 86_400.0 => {
            Duration::from_secs_f64(secs)
        }
        (None, Some(_)) => {
            return Err(fail(
                "read_timeout must be a positive number of seconds".into(),
            ))
        }
        (None, None) => Config::default().timeout,
    };
    let cfg = Config {
        endpoints,
        namespace: py.namespace.unwrap_or_else(|| "/conftool".to_string()),
        username: merged.username,
        password_file: None,
        tls,
        timeout,
        audit_log: py.audit_log,
        allow_insecure_auth: py.allow_insecure_auth,
        read_only: py.read_only,
        load_balancers: py.load_balancers,
        inline_password: merged.password.map(crate::config::Secret),
        notes: Vec::new(),
    };
    Ok((cfg, notes))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct World {
        dir: tempfile::TempDir,
    }

    impl World {
        fn new() -> World {
            World {
                dir: tempfile::tempdir().unwrap(),
            }
        }
        fn file(&self, name: &str, text: &str) -> PathBuf {
            let p = self.dir.path().join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, text).unwrap();
            p
        }
        fn sources(&self) -> Sources {
            Sources {
                system_rc: self.dir.path().join("etc/etcd/etcdrc"),
                home: Some(self.dir.path().join("home")),
            }
        }
        fn load(&self, config: &str, privilege: &Privilege) -> Result<(Config, Notes), Error> {
            let path = self.file("conftool/config.yaml", config);
            load_from(&path, config, privilege, &self.sources())
        }
    }

    #[test]
    fn the_python_files_become_one_configuration() {
        let w = World::new();
        let rc = w.file(
            "conftool/etcdrc",
            "host: etcd.example\nport: 2379\nprotocol: https\nusername: conftool\n\
             password: s3cret\nca_cert: /etc/ssl/ca.pem\ncert: [/c.pem, /k.pem]\n\
             allow_reconnect: true\n",
        );
        let config = format!(
            "driver: etcd\nhosts: ['http://ignored:2379']\napi_version: v1\n\
             driver_options: {{etcd_config_file: {}, suppress_san_warnings: false}}\n\
             tcpircbot_host: irc.example\ntcpircbot_port: 9200\n",
            rc.display()
        );
        let (cfg, notes) = w.load(&config, &Privilege::User).unwrap();
        assert_eq!(cfg.endpoints, ["https://etcd.example:2379"]);
        assert_eq!(cfg.namespace, "/conftool");
        assert_eq!(cfg.keyspace().pools_prefix(), "/conftool/v1/pools/");
        assert_eq!(cfg.username.as_deref(), Some("conftool"));
        assert_eq!(cfg.password().unwrap().as_deref(), Some("s3cret"));
        assert!(
            !format!("{cfg:?}").contains("s3cret"),
            "Debug shows no password"
        );
        let tls = cfg.tls.clone().unwrap();
        assert_eq!(
            (tls.ca, tls.cert, tls.key),
            (
                Some("/etc/ssl/ca.pem".into()),
                Some("/c.pem".into()),
                Some("/k.pem".into())
            )
        );
        cfg.validate(Path::new("c")).unwrap();
        let all = notes.join("\n");
        assert!(
            all.contains("IRC relay") && all.contains("allow_reconnect"),
            "{all}"
        );
        assert!(all.contains("suppress_san_warnings"), "{all}");
    }

    #[test]
    fn files_are_layered_later_winning_and_hosts_is_the_fallback() {
        let w = World::new();
        w.file(
            "etc/etcd/etcdrc",
            "host: [[m1, 2379], [m2, 2379]]\nusername: sys\npassword: a\n",
        );
        w.file("home/.etcdrc", "username: alice\npassword: b\n");
        let rc = w.file("conftool/etcdrc", "protocol: https\n");
        let config = format!("driver_options: {{etcd_config_file: {}}}\n", rc.display());
        let (cfg, _) = w.load(&config, &Privilege::User).unwrap();
        assert_eq!(cfg.endpoints, ["https://m1:2379", "https://m2:2379"]);
        assert_eq!(cfg.username.as_deref(), Some("alice"));
        // No host anywhere: config.yaml's hosts; a host without a port: python-etcd's 4001.
        let w = World::new();
        let (cfg, _) = w
            .load(
                "hosts: ['https://a:2379', 'https://b:2379']\nnamespace: /x\n",
                &Privilege::User,
            )
            .unwrap();
        assert_eq!(cfg.endpoints, ["https://a:2379", "https://b:2379"]);
        assert_eq!(cfg.namespace, "/x");
        w.file("etc/etcd/etcdrc", "host: etcd1\n");
        let (cfg, _) = w
            .load("hosts: ['https://a:2379']\n", &Privilege::User)
            .unwrap();
        assert_eq!(cfg.endpoints, ["http://etcd1:4001"]);
    }

    #[test]
    fn under_sudo_the_callers_file_only_says_who_they_are() {
        let w = World::new();
        w.file(
            "etc/etcd/etcdrc",
            "host: etcd.example\nport: 2379\nprotocol: https\n",
        );
        w.file(
            "home/.etcdrc",
            "host: evil.example\nusername: alice\npassword: pw\n",
        );
        let sudo = Privilege::Sudo {
            uid: nix::unistd::getuid().as_raw(),
            gid: None,
        };
        let (cfg, notes) = w.load("driver: etcd\n", &sudo).unwrap();
        assert_eq!(cfg.endpoints, ["https://etcd.example:2379"]);
        assert_eq!(cfg.username.as_deref(), Some("alice"));
        assert!(
            notes
                .iter()
                .any(|n| n.contains("only username and password")),
            "{notes:?}"
        );
    }

    /// Finding 3 of issue 16: the owner check of `~/.etcdrc` looked at the path, then read
    /// it again, following links; swapping the file for a link to a root-only file in
    /// between leaked that file in the parse error. Now the file is opened once, judged on
    /// its descriptor, and a link the caller controls is never followed. A thread keeps
    /// swapping while the configuration is loaded thousands of times for the caller.
    #[test]
    fn a_callers_rc_swapped_for_a_link_never_leaks_what_it_points_to() {
        use std::os::unix::fs::PermissionsExt;
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        use std::sync::Arc;
        if !nix::unistd::geteuid().is_root() {
            return; // ownership cannot be arranged without root
        }
        let nobody = nix::unistd::Uid::from_raw(65534);
        let w = World::new();
        let mode = |p: &Path, m: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
        };
        mode(w.dir.path(), 0o755);
        let secret = w.file("shadow", "root:ROOT-ONLY-HASH:19000:0:99999:7:::\n");
        mode(&secret, 0o600);
        let home = w.dir.path().join("home");
        std::fs::create_dir(&home).unwrap();
        nix::unistd::chown(&home, Some(nobody), None).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let swaps = Arc::new(AtomicUsize::new(0));
        let swapper = {
            let (stop, swaps, home, secret) =
                (stop.clone(), swaps.clone(), home.clone(), secret.clone());
            std::thread::spawn(move || {
                let (rc, file, link) = (home.join(".etcdrc"), home.join("f"), home.join("l"));
                let lchown = |p: &Path| {
                    nix::unistd::fchownat(
                        nix::fcntl::AT_FDCWD,
                        p,
                        Some(nobody),
                        None,
                        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
                    )
                    .unwrap()
                };
                while !stop.load(Ordering::Relaxed) {
                    // A scalar, not a mapping: its parse error quotes it.
                    std::fs::write(&file, "CALLER-TOKEN\n").unwrap();
                    lchown(&file);
                    std::fs::rename(&file, &rc).unwrap();
                    std::os::unix::fs::symlink(&secret, &link).unwrap();
                    lchown(&link);
                    std::fs::rename(&link, &rc).unwrap();
                    swaps.fetch_add(2, Ordering::Relaxed);
                }
            })
        };
        let sudo = Privilege::Sudo {
            uid: 65534,
            gid: Some(65534),
        };
        let path = w.file("conftool/config.yaml", "driver: etcd\n");
        let (mut quoted_own, mut link_refused, mut loads) = (0, 0, 0);
        while loads < 2_000 || swaps.load(Ordering::Relaxed) < 2_000 {
            loads += 1;
            let said = match load_from(&path, "driver: etcd\n", &sudo, &w.sources()) {
                Ok((_, notes)) => notes.join("\n"),
                Err(e) => e.to_string(),
            };
            assert!(!said.contains("ROOT-ONLY"), "leaked after {loads}: {said}");
            quoted_own += usize::from(said.contains("CALLER-TOKEN"));
            link_refused += usize::from(said.contains("symbolic link"));
        }
        stop.store(true, Ordering::Relaxed);
        swapper.join().unwrap();
        assert!(
            quoted_own > 0 && link_refused > 0,
            "both sides of the swap must be met: {quoted_own} files, {link_refused} links in \
             {loads} loads"
        );
    }

    #[test]
    fn what_cannot_work_here_is_an_error_naming_it() {
        let w = World::new();
        for (config, want) in [
            (
                "driver: zookeeper\n",
                "driver: \"zookeeper\" is not supported",
            ),
            ("api_version: v2\n", "api_version: \"v2\" is not supported"),
            (
                "pools_path: nodes\n",
                "pools_path: \"nodes\" is not supported",
            ),
            ("driver: etcd\nendpoint: [x]\n", "unknown field `endpoint`"),
        ] {
            let e = w.load(config, &Privilege::User).unwrap_err().to_string();
            assert!(e.contains(want), "{config:?}: {e}");
        }
        let rc = w.file("conftool/etcdrc", "srv_domain: example.org\n");
        let e = w
            .load(
                &format!("driver_options: {{etcd_config_file: {}}}\n", rc.display()),
                &Privilege::User,
            )
            .unwrap_err()
            .to_string();
        assert!(e.contains("srv_domain") && e.contains("etcdrc"), "{e}");
        let rc = w.file("conftool/etcdrc", "hots: x\n");
        let e = w
            .load(
                &format!("driver_options: {{etcd_config_file: {}}}\n", rc.display()),
                &Privilege::User,
            )
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `hots`"), "{e}");
    }
}
