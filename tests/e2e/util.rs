//! Test context: a throwaway etcd, a temp dir, and helpers to run the real binaries.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub use conftool_testkit::{Etcd, EtcdCluster};

/// The path of one of this package's binaries.
pub fn bin(name: &str) -> PathBuf {
    match name {
        "conftool-sync" => PathBuf::from(env!("CARGO_BIN_EXE_conftool-sync")),
        "confctl" => PathBuf::from(env!("CARGO_BIN_EXE_confctl")),
        "conftool" => PathBuf::from(env!("CARGO_BIN_EXE_conftool")),
        "conftool-migrate" => PathBuf::from(env!("CARGO_BIN_EXE_conftool-migrate")),
        other => panic!("unknown binary {other}"),
    }
}

/// The workspace's example data directory.
pub fn example_conf() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../conf")
}

/// One test's world: its own etcd and temp dir.
pub struct Ctx {
    pub etcd: Etcd,
    pub dir: conftool_testkit::TestDir,
}

/// What a binary did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// What a finished process printed and returned.
    pub fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Panic with the whole output unless the exit code is `code`.
    #[track_caller]
    pub fn expect_code(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "expected exit {code}, got {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }
}

impl Ctx {
    pub fn new() -> Ctx {
        Ctx {
            etcd: Etcd::start(),
            dir: conftool_testkit::temp_dir("test-"),
        }
    }

    /// A path inside the temp dir.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Write a file (creating parent directories) inside the temp dir.
    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, text).expect("write");
        p
    }

    /// Copy the example conf/ into the temp dir under `rel`.
    pub fn copy_example(&self, rel: &str) -> PathBuf {
        let dst = self.path(rel);
        copy_dir(&example_conf(), &dst);
        dst
    }

    /// A command for one of the binaries, pointed at this context's etcd, with no config
    /// file and no inherited CONFTOOL_* settings.
    pub fn cmd(&self, name: &str) -> Command {
        let mut c = Command::new(bin(name));
        c.env("CONFTOOL_ENDPOINTS", self.etcd.endpoints_arg())
            .env_remove("CONFTOOL_CONFIG")
            .env("USER", "tester")
            .env_remove("SUDO_USER")
            .env_remove("SUDO_UID")
            .env_remove("SUDO_GID")
            .stdin(Stdio::null());
        c
    }

    /// Run `bin` with each case's arguments: each must be bad input (exit 2) whose stderr
    /// says what it must, with nothing on stdout.
    #[track_caller]
    pub fn expect_bad_input(&self, bin: &str, cases: &[(&[&str], &str)]) {
        for (args, want) in cases {
            let run = self.run(bin, args);
            assert_eq!(run.code, 2, "{args:?}: {run:?}");
            assert!(
                run.stderr.contains(want),
                "{args:?}: stderr lacks {want:?}: {}",
                run.stderr
            );
            assert_eq!(run.stdout, "", "{args:?}");
        }
    }

    /// Run a binary with arguments and capture everything.
    pub fn run(&self, name: &str, args: &[&str]) -> Run {
        Run::from(self.cmd(name).args(args).output().expect("run binary"))
    }

    /// Run a binary with arguments, `stdin` written to its standard input.
    pub fn run_with_stdin(&self, name: &str, args: &[&str], stdin: &str) -> Run {
        use std::io::Write as _;
        let mut child = self
            .cmd(name)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write stdin");
        Run::from(child.wait_with_output().expect("wait"))
    }

    /// `conftool-sync --directory DIR ARGS...`
    pub fn sync(&self, dir: &Path, args: &[&str]) -> Run {
        let mut a = vec!["--directory", dir.to_str().expect("utf-8 path")];
        a.extend_from_slice(args);
        self.run("conftool-sync", &a)
    }

    /// The whole keyspace.
    pub fn dump(&self) -> BTreeMap<String, String> {
        block_on(self.etcd.dump())
    }

    /// etcd's revision.
    pub fn revision(&self) -> i64 {
        block_on(self.etcd.revision())
    }

    /// Put a raw value (as a concurrent writer would).
    pub fn put(&self, key: &str, value: &str) {
        block_on(async {
            let mut c = self.etcd.client().await;
            c.put(key, value, None).await.expect("put");
        })
    }
}

/// Where a binary's output goes, for the tests of closed and failing outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    /// stdout is a socket whose reader is already gone (every write: EPIPE); stderr is captured.
    ClosedStdout,
    /// stdout and stderr are both that closed socket (`2>&1 | head -0`).
    ClosedBoth,
    /// stdout is `/dev/full` (every write: ENOSPC); stderr is captured.
    FullStdout,
}

impl Ctx {
    /// Run a binary with its output going to `sink`; the returned stdout is empty (it went
    /// nowhere), stderr is what could be captured.
    pub fn run_to(&self, sink: Sink, name: &str, args: &[&str]) -> Run {
        use std::os::fd::OwnedFd;
        use std::os::unix::net::UnixStream;
        let closed = || -> OwnedFd {
            let (keep, reader) = UnixStream::pair().expect("socket pair");
            drop(reader);
            OwnedFd::from(keep)
        };
        let mut cmd = self.cmd(name);
        cmd.args(args);
        match sink {
            Sink::ClosedStdout => {
                cmd.stdout(Stdio::from(closed())).stderr(Stdio::piped());
            }
            Sink::ClosedBoth => {
                let fd = closed();
                let dup = fd.try_clone().expect("dup");
                cmd.stdout(Stdio::from(fd)).stderr(Stdio::from(dup));
            }
            Sink::FullStdout => {
                let full = std::fs::OpenOptions::new()
                    .write(true)
                    .open("/dev/full")
                    .expect("/dev/full");
                cmd.stdout(Stdio::from(full)).stderr(Stdio::piped());
            }
        }
        Run::from(cmd.output().expect("run binary"))
    }
}

/// Run a future on a fresh current-thread runtime.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// Recursively copy a directory.
pub fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).expect("mkdir");
    for e in std::fs::read_dir(src).expect("read_dir") {
        let e = e.expect("entry");
        let to = dst.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_dir(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), &to).expect("copy");
        }
    }
}

/// A keyspace dump: key -> value.
pub type Keyspace = BTreeMap<String, String>;

/// The workspace's `tests/fixtures` directory.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

/// Read a keyspace fixture: one `<key> <value>` per line (split at the first space); blank
/// lines and lines starting with `#` are skipped.
pub fn read_keyspace(path: &Path) -> Keyspace {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l
                .split_once(' ')
                .unwrap_or_else(|| panic!("{}: no value on line {l:?}", path.display()));
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// Panic with a short, readable list of the differences (not two whole dumps) unless the
/// keyspaces are equal.
#[track_caller]
pub fn assert_keyspace(actual: &Keyspace, expected: &Keyspace) {
    if actual == expected {
        return;
    }
    let mut diffs = Vec::new();
    for (k, v) in expected {
        match actual.get(k) {
            None => diffs.push(format!("missing   {k} {v}")),
            Some(a) if a != v => diffs.push(format!("differs   {k}\n  want {v}\n  got  {a}")),
            _ => {}
        }
    }
    for (k, v) in actual {
        if !expected.contains_key(k) {
            diffs.push(format!("unexpected {k} {v}"));
        }
    }
    let n = diffs.len();
    diffs.truncate(30);
    panic!(
        "keyspace differs in {n} keys ({} present, {} expected):\n{}",
        actual.len(),
        expected.len(),
        diffs.join("\n")
    );
}

impl Ctx {
    /// The whole keyspace and the revision, for before/after comparisons.
    pub fn state(&self) -> (Keyspace, i64) {
        (self.dump(), self.revision())
    }

    /// A store connected to this context's etcd (paged reads without the gRPC client's 4 MiB
    /// answer limit, for big fleets).
    pub async fn store(&self) -> conftool_core::Store {
        let cfg = conftool_core::Config {
            endpoints: self.etcd.endpoints(),
            ..conftool_core::Config::default()
        };
        conftool_core::Store::connect(&cfg).await.expect("connect")
    }

    /// Every key under `prefix` with its value, read in pages at one revision.
    pub fn dump_prefix(&self, prefix: &str) -> Keyspace {
        block_on(async {
            let snap = self.store().await.read_prefix(prefix).await.expect("read");
            snap.kvs
                .into_iter()
                .map(|kv| (kv.key, String::from_utf8_lossy(&kv.value).into_owned()))
                .collect()
        })
    }

    /// How many keys start with `prefix`.
    pub fn count(&self, prefix: &str) -> usize {
        self.dump_prefix(prefix).len()
    }

    /// Delete a key (as a concurrent writer would).
    pub fn delete(&self, key: &str) {
        block_on(async {
            let mut c = self.etcd.client().await;
            c.delete(key, None).await.expect("delete");
        })
    }

    /// Start `conftool-sync --directory DIR ARGS...` as a child, output discarded except
    /// stderr, which goes to `<tempdir>/<log>`.
    pub fn spawn_sync(&self, dir: &Path, args: &[&str], log: &str) -> std::process::Child {
        let err = std::fs::File::create(self.path(log)).expect("log file");
        self.cmd("conftool-sync")
            .arg("--directory")
            .arg(dir)
            .args(args)
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("spawn conftool-sync")
    }
}

/// Run `git ARGS...` in `dir` (no user or system configuration), panicking on failure;
/// returns stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_DATE", "2024-01-01T00:00:00Z")
        .env("GIT_COMMITTER_DATE", "2024-01-01T00:00:00Z")
        .stdin(Stdio::null())
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A generated fleet, written as a conftool-rs data directory, with its expected keyspace
/// computed independently of the code under test.
pub struct Fleet {
    /// Datacenters.
    pub dcs: Vec<String>,
    /// Nodes per cluster per datacenter.
    pub nodes: usize,
}

/// A generated service: (name, port, default pooled, default weight).
type FleetService = (&'static str, u16, &'static str, u16);

/// Clusters of a generated fleet and their services.
const FLEET_CLUSTERS: &[(&str, &[FleetService])] = &[
    (
        "cache_text",
        &[("varnish-fe", 80, "no", 10), ("nginx", 443, "no", 10)],
    ),
    (
        "appservers",
        &[("apache", 80, "yes", 1), ("nginx", 443, "yes", 1)],
    ),
    ("jobrunner", &[("jobrunner", 9005, "inactive", 0)]),
];

impl Fleet {
    /// Objects in the fleet.
    pub fn objects(&self) -> usize {
        let per_node: usize = FLEET_CLUSTERS.iter().map(|(_, s)| s.len()).sum();
        self.dcs.len() * self.nodes * per_node
    }

    fn node(dc: &str, cluster: &str, i: usize) -> String {
        format!("{}-{dc}-{i:05}", &cluster[..2])
    }

    /// Write `services.yaml` and `<dc>/pools.yaml` under `dir`.
    pub fn write(&self, dir: &Path) {
        std::fs::create_dir_all(dir).expect("mkdir");
        let mut svc = String::new();
        for (cluster, services) in FLEET_CLUSTERS {
            svc.push_str(&format!("{cluster}:\n"));
            for (s, port, pooled, weight) in *services {
                svc.push_str(&format!(
                    "  {s}:\n    port: {port}\n    default_values: {{pooled: \"{pooled}\", weight: {weight}}}\n"
                ));
            }
        }
        std::fs::write(dir.join("services.yaml"), svc).expect("write services.yaml");
        for dc in &self.dcs {
            let mut pools = String::new();
            for (cluster, services) in FLEET_CLUSTERS {
                pools.push_str(&format!("{cluster}:\n"));
                let names: Vec<&str> = services.iter().map(|s| s.0).collect();
                for i in 0..self.nodes {
                    pools.push_str(&format!(
                        "  {}: {{services: [{}]}}\n",
                        Self::node(dc, cluster, i),
                        names.join(", ")
                    ));
                }
            }
            std::fs::create_dir_all(dir.join(dc)).expect("mkdir dc");
            std::fs::write(dir.join(dc).join("pools.yaml"), pools).expect("write pools.yaml");
        }
    }

    /// The keyspace a sync of this fleet into an empty etcd must produce.
    pub fn expected(&self) -> Keyspace {
        let mut ks = Keyspace::new();
        for (cluster, services) in FLEET_CLUSTERS {
            for (s, port, pooled, weight) in *services {
                ks.insert(
                    format!("/v1/services/{cluster}/{s}"),
                    format!(
                        r#"{{"port":{port},"default_values":{{"pooled":"{pooled}","weight":{weight}}}}}"#
                    ),
                );
                for dc in &self.dcs {
                    for i in 0..self.nodes {
                        ks.insert(
                            format!(
                                "/v1/pools/{dc}/{cluster}/{s}/{}",
                                Self::node(dc, cluster, i)
                            ),
                            format!(r#"{{"pooled":"{pooled}","weight":{weight}}}"#),
                        );
                    }
                }
            }
        }
        // The sync record: the datacenters, and no git revision (a working-tree sync).
        let dcs: std::collections::BTreeSet<&String> = self.dcs.iter().collect();
        ks.insert(
            "/v1/meta/sync".into(),
            serde_json::json!({ "datacenters": dcs, "git_rev": null }).to_string(),
        );
        ks
    }
}
