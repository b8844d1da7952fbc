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
    pub dir: tempfile::TempDir,
}

/// What a binary did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Run {
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
            dir: tempfile::tempdir().expect("temp dir"),
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
            .stdin(Stdio::null());
        c
    }

    /// Run a binary with arguments and capture everything.
    pub fn run(&self, name: &str, args: &[&str]) -> Run {
        Run::from(self.cmd(name).args(args).output().expect("run binary"))
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
