//! Access: a real etcd with TLS (client certificates required) and authentication enabled.
//! A read-only user can get but not set; wrong passwords, missing TLS settings and
//! unreachable or silent servers fail clearly, within the timeout, with exit 1.

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use conftool_testkit::{dump_with, tls, EtcdCluster, TlsFiles};
use etcd_client::Permission;

use crate::util::*;

struct Secure {
    etcd: EtcdCluster,
    tls: TlsFiles,
    dir: conftool_testkit::TestDir,
}

/// TLS-only etcd with users: root, `reader` (read /v1/), `writer` (read-write /v1/).
fn secure_etcd() -> Secure {
    let dir = conftool_testkit::temp_dir("test-");
    let tls = tls::generate(&dir.path().join("tls"));
    let etcd = EtcdCluster::start_tls(&tls, &[]);
    block_on(async {
        let mut c = etcd.client().await;
        for (user, pw) in [
            ("root", "rootpw"),
            ("reader", "readpw"),
            ("writer", "writepw"),
        ] {
            c.user_add(user, pw, None).await.expect("user_add");
        }
        c.user_grant_role("root", "root").await.expect("grant root");
        for (role, prefix, rw) in [
            ("ro", "/v1/", false),
            ("rw", "/v1/", true),
            ("ro", "/conftool/v1/", false),
            ("rw", "/conftool/v1/", true),
        ] {
            if c.role_get(role).await.is_err() {
                c.role_add(role).await.expect("role_add");
            }
            let perm = if rw {
                Permission::read_write(prefix)
            } else {
                Permission::read(prefix)
            };
            c.role_grant_permission(role, perm.with_prefix())
                .await
                .expect("grant");
        }
        c.user_grant_role("reader", "ro").await.expect("grant ro");
        c.user_grant_role("writer", "rw").await.expect("grant rw");
        c.auth_enable().await.expect("auth_enable");
    });
    Secure { etcd, tls, dir }
}

impl Secure {
    /// A config file for `user` (password file beside it), with TLS.
    fn config(&self, user: &str, password: &str) -> std::path::PathBuf {
        let pw = self.dir.path().join(format!("{user}.password"));
        std::fs::write(&pw, format!("{password}\n")).expect("password file");
        let cfg = self.dir.path().join(format!("{user}-{password}.yaml"));
        std::fs::write(
            &cfg,
            format!(
                "endpoints: [{}]\nusername: {user}\npassword_file: {}\ntimeout: 3s\n\
                 tls: {{ca: {}, cert: {}, key: {}}}\n",
                self.etcd.endpoint(),
                pw.display(),
                self.tls.ca.display(),
                self.tls.client_cert.display(),
                self.tls.client_key.display()
            ),
        )
        .expect("config");
        cfg
    }

    fn run(&self, bin_name: &str, config: &Path, args: &[&str]) -> Run {
        let out = Command::new(bin(bin_name))
            .env_remove("CONFTOOL_ENDPOINTS")
            .arg("--config")
            .arg(config)
            .args(args)
            .output()
            .expect("run");
        Run::from(out)
    }

    fn dump(&self) -> std::collections::BTreeMap<String, String> {
        block_on(async { dump_with(&mut self.etcd.client_as("root", "rootpw").await).await })
    }
}

#[test]
fn tls_and_roles_are_enforced() {
    let s = secure_etcd();
    let writer = s.config("writer", "writepw");
    let conf = example_conf();
    s.run(
        "conftool-sync",
        &writer,
        &["--directory", conf.to_str().expect("utf-8"), "--quiet"],
    )
    .expect_code(0);
    let reader = s.config("reader", "readpw");
    let run = s
        .run(
            "confctl",
            &reader,
            &["select", "dc=eqiad,name=mw1018", "get"],
        )
        .expect_code(0);
    assert_eq!(run.stdout.lines().count(), 2, "{}", run.stdout);

    let before = s.dump();
    assert!(!before.is_empty());
    let run = s.run(
        "confctl",
        &reader,
        &[
            "select",
            "dc=eqiad,name=mw1018,service=apache",
            "set/pooled=no",
        ],
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("permission denied"), "{}", run.stderr);
    let run = s.run(
        "conftool",
        &reader,
        &[
            "-d",
            "eqiad",
            "-c",
            "appservers",
            "-s",
            "apache",
            "mw1018 pool=no",
        ],
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("permission denied"), "{}", run.stderr);
    assert_eq!(s.dump(), before, "a refused write changes nothing");

    // The writer can.
    s.run(
        "confctl",
        &writer,
        &[
            "select",
            "dc=eqiad,name=mw1018,service=apache",
            "set/pooled=no",
        ],
    )
    .expect_code(0);
    assert_eq!(
        s.dump()["/v1/pools/eqiad/appservers/apache/mw1018"],
        r#"{"pooled":"no","weight":1}"#
    );
}

#[test]
fn wrong_password_and_missing_tls_fail_clearly() {
    let s = secure_etcd();
    let bad = s.config("writer", "not-the-password");
    let t = Instant::now();
    let run = s.run("confctl", &bad, &["select", "name=.*", "get"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("authentication failed"),
        "{}",
        run.stderr
    );
    assert!(t.elapsed() < Duration::from_secs(3 + 5));

    // Plain http against a TLS-only server, and https without the client certificate.
    let plain = s.dir.path().join("plain.yaml");
    let http = s.etcd.endpoint().replace("https://", "http://");
    std::fs::write(&plain, format!("endpoints: [{http}]\ntimeout: 2s\n")).expect("cfg");
    let run = s.run("confctl", &plain, &["select", "name=.*", "get"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("does it need https://"),
        "{}",
        run.stderr
    );

    let no_cert = s.dir.path().join("nocert.yaml");
    std::fs::write(
        &no_cert,
        format!(
            "endpoints: [{}]\ntimeout: 2s\nusername: reader\npassword_file: {}\ntls: {{ca: {}}}\n",
            s.etcd.endpoint(),
            s.dir.path().join("reader.password").display(),
            s.tls.ca.display()
        ),
    )
    .expect("cfg");
    std::fs::write(s.dir.path().join("reader.password"), "readpw\n").expect("pw");
    let run = s.run("confctl", &no_cert, &["select", "name=.*", "get"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("client certificate"), "{}", run.stderr);
}

#[test]
fn unreachable_and_silent_servers_fail_within_the_timeout() {
    let ctx = Ctx::new();
    // Nothing listens: refused at once.
    let closed = format!("http://127.0.0.1:{}", conftool_testkit::free_port());
    let t = Instant::now();
    let run = ctx.run(
        "confctl",
        &[
            "--endpoints",
            &closed,
            "--timeout",
            "1s",
            "select",
            "name=.*",
            "get",
        ],
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("unreachable"), "{}", run.stderr);
    assert!(t.elapsed() < Duration::from_secs(6), "{:?}", t.elapsed());

    // Something accepts connections but never answers: the timeout ends it.
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", silent.local_addr().expect("addr"));
    for (bin_name, args) in [
        ("confctl", vec!["select", "name=.*", "get"]),
        ("conftool-sync", vec!["--directory", "conf", "--quiet"]),
    ] {
        let t = Instant::now();
        let mut full = vec!["--endpoints", url.as_str(), "--timeout", "1s"];
        full.extend(args.iter().copied());
        let mut cmd = ctx.cmd(bin_name);
        cmd.current_dir(example_conf().join(".."));
        let out = cmd.args(&full).output().expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{bin_name}: {stderr}");
        assert!(
            stderr.contains("no answer within") || stderr.contains("unreachable"),
            "{bin_name}: {stderr}"
        );
        assert!(
            t.elapsed() < Duration::from_secs(8),
            "{bin_name}: {:?}",
            t.elapsed()
        );
    }
}

/// What held up when attacked, kept: the server's certificate is verified (there is no
/// option to skip it), and the password appears in no output and no audit line.
#[test]
fn a_server_with_another_ca_is_refused_and_the_password_stays_secret() {
    let s = secure_etcd();
    let other = tls::generate(&s.dir.path().join("other-ca"));
    let cfg = s.dir.path().join("other-ca.yaml");
    let pw = s.dir.path().join("writer.password");
    std::fs::write(&pw, "writepw\n").expect("pw");
    std::fs::write(
        &cfg,
        format!(
            "endpoints: [{}]\nusername: writer\npassword_file: {}\ntimeout: 3s\n\
             tls: {{ca: {}, cert: {}, key: {}}}\n",
            s.etcd.endpoint(),
            pw.display(),
            other.ca.display(),
            s.tls.client_cert.display(),
            s.tls.client_key.display()
        ),
    )
    .expect("config");
    let run = s.run("confctl", &cfg, &["select", "name=.*", "get"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("not trusted"), "{}", run.stderr);
    assert!(!run.stderr.contains("writepw"), "{}", run.stderr);

    // A write with an audit log: the password is nowhere in what the tools print or log.
    let writer = s.config("writer", "writepw");
    let log = s.dir.path().join("audit.jsonl");
    let text = std::fs::read_to_string(&writer).expect("read");
    std::fs::write(&writer, format!("{text}audit_log: {}\n", log.display())).expect("write");
    let conf = example_conf();
    for (bin_name, args) in [
        (
            "conftool-sync",
            vec!["--directory", conf.to_str().expect("utf-8")],
        ),
        (
            "confctl",
            vec![
                "--json",
                "select",
                "dc=eqiad,name=mw1018,service=apache",
                "set/weight=2",
            ],
        ),
    ] {
        let run = s.run(bin_name, &writer, &args).expect_code(0);
        assert!(!run.stdout.contains("writepw") && !run.stderr.contains("writepw"));
    }
    let audit = std::fs::read_to_string(&log).expect("audit log");
    assert!(audit.lines().count() > 60, "{audit}");
    assert!(!audit.contains("writepw"));
    assert!(audit.contains("\"etcd_user\":\"writer\""));
}

/// The Python conftool's own files, unchanged: its config.yaml pointing at a python-etcd
/// client file with TLS and a password. The tools talk to the TLS, auth-enabled etcd under
/// the Python tool's namespace, and say once what they ignore.
#[test]
fn the_python_tools_configuration_files_work_as_they_are() {
    let s = secure_etcd();
    let port = s
        .etcd
        .endpoint()
        .rsplit(':')
        .next()
        .expect("port")
        .to_string();
    let home = s.dir.path().join("home");
    std::fs::create_dir_all(&home).expect("home");
    let rc = s.dir.path().join("etcdrc");
    std::fs::write(
        &rc,
        format!(
            "host: 127.0.0.1\nport: {port}\nprotocol: https\nusername: writer\n\
             password: writepw\nca_cert: {}\ncert: [{}, {}]\nallow_reconnect: true\n",
            s.tls.ca.display(),
            s.tls.client_cert.display(),
            s.tls.client_key.display()
        ),
    )
    .expect("etcdrc");
    let config = s.dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "driver: etcd\nhosts: ['https://unused.example:2379']\nnamespace: /conftool\n\
             api_version: v1\ndriver_options:\n  etcd_config_file: {}\n  \
             suppress_san_warnings: true\ntcpircbot_host: irc.example\ntcpircbot_port: 9200\n",
            rc.display()
        ),
    )
    .expect("config.yaml");
    let run = |bin_name: &str, args: &[&str]| {
        Run::from(
            Command::new(bin(bin_name))
                .env_remove("CONFTOOL_ENDPOINTS")
                .env("HOME", &home)
                .arg("--config")
                .arg(&config)
                .args(args)
                .output()
                .expect("run"),
        )
    };
    let conf = example_conf();
    let r = run(
        "conftool-sync",
        &["--directory", conf.to_str().expect("utf-8")],
    )
    .expect_code(0);
    assert!(r.stderr.contains("IRC relay"), "said once: {}", r.stderr);
    assert_eq!(r.stderr.matches("IRC relay").count(), 1);
    let dump = s.dump();
    assert!(
        dump.contains_key("/conftool/v1/pools/eqiad/appservers/apache/mw1018"),
        "under the Python tool's namespace"
    );
    let r = run(
        "confctl",
        &[
            "select",
            "dc=eqiad,name=mw1018,service=apache",
            "set/weight=7",
        ],
    )
    .expect_code(0);
    assert_eq!(
        r.stdout,
        "eqiad/appservers/apache/mw1018: weight changed 1 => 7\n"
    );
    assert!(!r.stdout.contains("writepw") && !r.stderr.contains("writepw"));
    // The same files with plain http: the password is not sent in clear.
    std::fs::write(
        &rc,
        format!(
            "host: 127.0.0.1\nport: {port}\nprotocol: http\nusername: writer\npassword: writepw\n"
        ),
    )
    .expect("etcdrc");
    let r = run("confctl", &["select", "name=.*", "get"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("over plain http://"), "{}", r.stderr);

    // conftool 6's other keys: `read_only` refuses writes (reads and dry runs work), the
    // extensions and conftool2git are said to be ignored.
    std::fs::write(
        &rc,
        format!(
            "host: 127.0.0.1\nport: {port}\nprotocol: https\nusername: writer\n\
             password: writepw\nca_cert: {}\ncert: [{}, {}]\n",
            s.tls.ca.display(),
            s.tls.client_cert.display(),
            s.tls.client_key.display()
        ),
    )
    .expect("etcdrc");
    std::fs::write(
        &config,
        format!(
            "namespace: /conftool\nread_only: true\nconftool2git_address: http://c2g:1234\n\
             extensions_config: {{dbctlconfig: {{parsercache_min_pooled_sections: 2}}}}\n\
             driver_options: {{etcd_config_file: {}}}\n",
            rc.display()
        ),
    )
    .expect("config.yaml");
    let before = s.dump();
    let r = run("confctl", &["select", "name=mw1018,service=apache", "get"]).expect_code(0);
    assert!(r.stdout.contains("\"weight\": 7"), "{}", r.stdout);
    assert!(
        r.stderr.contains("conftool2git_address: ignored")
            && r.stderr.contains("extensions_config: ignored"),
        "{}",
        r.stderr
    );
    let r = run(
        "confctl",
        &[
            "select",
            "dc=eqiad,name=mw1018,service=apache",
            "set/weight=9",
        ],
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("read-only"), "{}", r.stderr);
    let r = run("confctl", &["depool", "--hostname", "mw1018"]);
    assert_eq!(r.code, 1, "{r:?}");
    let r = run(
        "conftool-sync",
        &["--directory", conf.to_str().expect("utf-8"), "--dry-run"],
    );
    assert_eq!(r.code, 0, "a dry run reads only: {r:?}");
    assert_eq!(s.dump(), before, "nothing written while read-only");
}
