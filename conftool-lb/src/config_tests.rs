use super::*;

const GOOD: &str = "
etcd: {endpoints: ['http://127.0.0.1:2379'], namespace: /conftool}
haproxy_socket: /run/haproxy/admin.sock
status_listen: 127.0.0.1:9090
pools:
  - {dc: eqiad, cluster: appservers, service: apache, backend: be_apache}
";

#[test]
fn reads_a_config() {
    let c = AgentConfig::from_yaml(Path::new("a.yaml"), GOOD).expect("valid");
    assert_eq!(c.etcd.namespace, "/conftool");
    assert_eq!(c.recheck_interval, Duration::from_secs(5));
    assert_eq!(c.drain_timeout, Duration::from_secs(60));
    assert_eq!(c.status_limits, StatusLimits::default());
    assert_eq!(c.pools[0].backend, "be_apache");
    assert_eq!(c.pools[0].pool().to_string(), "eqiad/appservers/apache");
    let sel = c.pools[0].selector().expect("selector");
    assert!(sel.to_string().contains("cluster=appservers"));
}

#[test]
fn the_readme_example_is_valid() {
    let readme = include_str!("../../README.md");
    let (_, rest) = readme
        .split_once("`/etc/conftool/lb-agent.yaml`:\n```yaml\n")
        .expect("the README has the example");
    let (example, _) = rest.split_once("```").expect("closed");
    let c = AgentConfig::from_yaml(Path::new("README.md"), example).expect("valid");
    assert_eq!(c.pools[0].backend, "appservers_apache");
    assert_eq!(c.etcd.endpoints.len(), 2);
}

#[test]
fn refuses_bad_configs() {
    let err = |text: &str| {
        AgentConfig::from_yaml(Path::new("a.yaml"), text)
            .expect_err(text)
            .to_string()
    };
    assert!(err(&GOOD.replace("127.0.0.1:9090", "0.0.0.0:9090")).contains("loopback"));
    assert!(err(&GOOD.replace("backend: be_apache", "backend: 'a b'")).contains("backend"));
    assert!(err(&format!(
        "{GOOD}  - {{dc: eqiad, cluster: appservers, service: apache, backend: x}}\n"
    ))
    .contains("twice"));
    assert!(err(&GOOD.replace("service: apache", "service: 'a/b'")).contains("a.yaml"));
    assert!(err(&format!("{GOOD}bogus: 1\n")).contains("bogus"));
    assert!(err("haproxy_socket: /s\npools: []\n").contains("no pools"));
    assert!(err(&format!(
        "{GOOD}  - {{dc: codfw, cluster: appservers, service: apache, backend: be_apache}}\n"
    ))
    .contains("serves two pools"));
    assert!(
        err(&format!("{GOOD}status_limits: {{max_connections: 0}}\n"))
            .contains("status_limits.max_connections 0 is not between 1 and 65536")
    );
    assert!(
        err(&format!("{GOOD}status_limits: {{header_timeout: 1ms}}\n"))
            .contains("status_limits.header_timeout 1ms")
    );
    assert!(err(&format!("{GOOD}status_limits: {{idle_timeout: soon}}\n")).contains("a.yaml"));
    assert!(err(&format!("{GOOD}status_limits: {{max_conns: 5}}\n")).contains("max_conns"));
}

#[test]
fn a_file_is_read_up_to_one_mib_and_a_larger_one_refused() {
    let dir = std::env::temp_dir().join(format!("conftool-lb-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("agent.yaml");
    // Exactly at the cap (padded with a comment): read.
    let pad = MAX_BYTES as usize - GOOD.len() - 2;
    std::fs::write(&path, format!("{GOOD}#{}\n", "x".repeat(pad))).expect("write");
    let c = AgentConfig::load(&path).expect("at the cap");
    assert_eq!(c.pools[0].backend, "be_apache");
    // One byte over: refused, not cut where the comment would still parse.
    std::fs::write(&path, format!("{GOOD}#{}\n", "x".repeat(pad + 1))).expect("write");
    let e = AgentConfig::load(&path).expect_err("over the cap");
    assert_eq!(
        e.to_string(),
        format!("{}: larger than 1048576 bytes", path.display())
    );
    assert!(matches!(e, Error::BadConfig { .. }), "{e:?}");
    let missing = dir.join("missing.yaml");
    let e = AgentConfig::load(&missing).expect_err("missing");
    assert!(
        matches!(&e, Error::ReadConfig { path, .. } if *path == missing),
        "{e:?}"
    );
    std::fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn recheck_interval_is_at_least_100ms() {
    let with = |every: &str| {
        AgentConfig::from_yaml(
            Path::new("a.yaml"),
            &format!("{GOOD}recheck_interval: {every}\ndrain_timeout: 1s\n"),
        )
    };
    let c = with("100ms").expect("the least");
    assert_eq!(
        (c.recheck_interval, c.drain_timeout),
        (Duration::from_millis(100), Duration::from_secs(1))
    );
    assert_eq!(
        with("99ms").expect_err("99ms").to_string(),
        "a.yaml: recheck_interval must be at least 100ms"
    );
    // 0s is no duration at all (the same rule as every duration in the configuration).
    let zero = with("0s").expect_err("0s").to_string();
    assert!(
        zero.starts_with("a.yaml: ")
            && zero.contains(r#"invalid duration "0s": must be positive and under a day"#),
        "{zero}"
    );
}

#[test]
fn backend_names_are_one_word_without_slashes() {
    for bad in ["''", "'a b'", "'a\tb'", "a/b"] {
        assert_eq!(
            AgentConfig::from_yaml(
                Path::new("a.yaml"),
                &GOOD.replace("backend: be_apache", &format!("backend: {bad}"))
            )
            .expect_err(bad)
            .to_string()
            .split_once(": bad backend name")
            .map(|(before, _)| before),
            Some("a.yaml: pool eqiad/appservers/apache"),
            "{bad}"
        );
    }
}

#[test]
fn a_pools_selector_matches_its_names_literally() {
    let c = AgentConfig::from_yaml(
        Path::new("a.yaml"),
        &GOOD.replace("cluster: appservers", "cluster: app.servers"),
    )
    .expect("valid");
    assert_eq!(
        c.pools[0].selector().expect("selector").to_string(),
        r"dc=eqiad,cluster=app\.servers,service=apache"
    );
}

#[test]
fn status_limits_are_read_with_their_defaults() {
    let c = AgentConfig::from_yaml(
        Path::new("a.yaml"),
        &format!("{GOOD}status_limits: {{max_connections: 64, idle_timeout: 2s}}\n"),
    )
    .expect("valid");
    assert_eq!(
        c.status_limits,
        StatusLimits {
            max_connections: 64,
            header_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(2),
        }
    );
}
