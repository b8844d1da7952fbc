//! The production-shaped installation of `tests/fixtures/production`, installed for a test:
//! the Python tool's `/etc/conftool` (its `config.yaml` and `etcdrc`, the schema and its JSON
//! Schema files) under a temp root, the data directory, and the live state the Python tool
//! left in etcd v2 (`reference/live-keyspace.txt`, its bytes), written through the v2 API as
//! the Python tool writes.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};

use crate::util::*;

/// The fixture's directory.
pub fn fixture() -> PathBuf {
    fixtures().join("production")
}

/// The object types of the fixture: `node` and the schema's, in the schema's order.
pub const TYPES: &[&str] = &[
    "node",
    "discovery",
    "geodns",
    "mwconfig",
    "dbconfig-instance",
    "dbconfig-section",
    "requestctl-action",
    "requestctl-pattern",
];

/// An installation under a temp root, pointed at an etcd that serves v2.
pub struct Install {
    pub ctx: Ctx,
    /// `<root>/etc/conftool/config.yaml`: the Python tool's kind of file.
    pub config: PathBuf,
    /// `<root>/etc/conftool/schema.yaml`, its `base_path` moved under the root.
    pub schema: PathBuf,
    /// `<root>/srv/conftool-data`.
    pub data: PathBuf,
    /// A home without `.etcdrc`.
    pub home: PathBuf,
}

impl Install {
    /// Install the fixture (nothing in etcd yet).
    pub fn new() -> Install {
        let ctx = Ctx {
            etcd: Etcd::start_v2(),
            dir: conftool_testkit::temp_dir("production-"),
        };
        let etc = ctx.path("etc/conftool");
        copy_dir(&fixture().join("etc/conftool"), &etc);
        let schema = etc.join("schema.yaml");
        let text = std::fs::read_to_string(&schema).expect("schema");
        let moved = text.replace("/etc/conftool/", &format!("{}/", etc.display()));
        assert_ne!(moved, text, "the schema names /etc/conftool/");
        std::fs::write(&schema, moved).expect("write schema");
        let endpoint = ctx.etcd.endpoint();
        let port = endpoint.rsplit(':').next().expect("port");
        // As a Python deployment has them: the hosts, the namespace, the rc file the client
        // settings come from, and settings that mean nothing here (said once, ignored).
        let config = ctx.write(
            "etc/conftool/config.yaml",
            &format!(
                "hosts:\n  - {endpoint}\nnamespace: /conftool\napi_version: v1\npools_path: pools\n\
                 driver_options:\n  etcd_config_file: {}\n  suppress_san_warnings: false\n\
                 tcpircbot_host: localhost\ntcpircbot_port: 9200\n",
                etc.join("etcdrc").display()
            ),
        );
        ctx.write(
            "etc/conftool/etcdrc",
            &format!("host: 127.0.0.1\nport: {port}\nprotocol: http\n"),
        );
        let data = ctx.path("srv/conftool-data");
        copy_dir(&fixture().join("data"), &data);
        let home = ctx.path("home/sre");
        std::fs::create_dir_all(&home).expect("home");
        Install {
            ctx,
            config,
            schema,
            data,
            home,
        }
    }

    /// A recorded file of the Python tool's (`reference/NAME`).
    pub fn reference(name: &str) -> String {
        let p = fixture().join("reference").join(name);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    /// Write the Python tool's live state into etcd v2.
    pub fn write_v2_state(&self) -> Keyspace {
        let live = read_keyspace(&fixture().join("reference/live-keyspace.txt"));
        v2_put_all(&self.ctx.etcd.endpoint(), &live);
        live
    }

    /// A command for one of the binaries, as an SRE runs it: this installation's
    /// configuration file and home, no CONFTOOL_* settings.
    pub fn cmd(&self, name: &str) -> std::process::Command {
        let mut c = std::process::Command::new(bin(name));
        self.env(&mut c);
        c.arg("--config").arg(&self.config);
        c
    }

    /// The environment of an SRE's shell on this installation.
    pub fn env(&self, c: &mut std::process::Command) {
        for (k, _) in std::env::vars() {
            if k.starts_with("CONFTOOL_") {
                c.env_remove(&k);
            }
        }
        c.env("HOME", &self.home)
            .env("USER", "sre")
            .env_remove("SUDO_USER")
            .env_remove("SUDO_UID")
            .stdin(std::process::Stdio::null());
    }

    /// `confctl --object-type TYPE select 'name=.*' get`, its lines sorted as `LC_ALL=C sort`.
    pub fn get_all(&self, ty: &str) -> String {
        let out = Run::from(
            self.cmd("confctl")
                .arg("--schema")
                .arg(&self.schema)
                .args(["--object-type", ty, "select", "name=.*", "get"])
                .output()
                .expect("confctl"),
        )
        .expect_code(0);
        let mut lines: Vec<&str> = out.stdout.lines().collect();
        lines.sort_unstable();
        lines.iter().map(|l| format!("{l}\n")).collect()
    }
}

/// Write `items` through etcd's v2 API as the Python tool does (`PUT /v2/keys<key>`, form
/// body `value=...`), over a few keep-alive connections in parallel.
pub fn v2_put_all(endpoint: &str, items: &Keyspace) {
    let items: Vec<(&String, &String)> = items.iter().collect();
    let addr = endpoint.trim_start_matches("http://").to_string();
    let per = items.len().div_ceil(8).max(1);
    std::thread::scope(|s| {
        for chunk in items.chunks(per) {
            let addr = addr.clone();
            s.spawn(move || {
                let conn = TcpStream::connect(&addr).expect("connect to v2");
                let mut reader = BufReader::new(conn.try_clone().expect("clone"));
                let mut w = conn;
                for (key, value) in chunk {
                    let body = format!("value={}", form_escape(value));
                    let req = format!(
                        "PUT /v2/keys{key} HTTP/1.1\r\nHost: {addr}\r\n\
                         Content-Type: application/x-www-form-urlencoded\r\n\
                         Content-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    w.write_all(req.as_bytes()).expect("send");
                    let status = read_status(&mut reader);
                    assert!(status == 200 || status == 201, "PUT {key}: {status}");
                }
            });
        }
    });
}

/// `application/x-www-form-urlencoded` escaping of a value.
fn form_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Read one HTTP/1.1 response with a Content-Length body (etcd's v2 answers to PUTs) and
/// return its status.
fn read_status(r: &mut impl BufRead) -> u16 {
    let mut line = String::new();
    r.read_line(&mut line).expect("status line");
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {line:?}"));
    let mut len = 0usize;
    loop {
        line.clear();
        r.read_line(&mut line).expect("header");
        let h = line.trim_end().to_ascii_lowercase();
        if h.is_empty() {
            break;
        }
        if let Some(v) = h.strip_prefix("content-length:") {
            len = v.trim().parse().expect("content-length");
        }
        assert!(
            h != "transfer-encoding: chunked",
            "a chunked answer to a PUT"
        );
    }
    r.read_exact(&mut vec![0; len]).expect("body");
    status
}

/// The paths of the installation as the runbook names them, for its commands.
pub fn site_settings(i: &Install, saved: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("CONFIG", i.config.display().to_string()),
        ("SCHEMA", i.schema.display().to_string()),
        ("DATA", i.data.display().to_string()),
        ("V2", i.ctx.etcd.endpoint()),
        ("V2_AUTH", String::new()),
        ("TYPES", TYPES.join(" ")),
        ("SAVED", saved.display().to_string()),
    ]
}
