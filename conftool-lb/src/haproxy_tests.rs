use super::*;

// Captured from HAProxy 2.6 (`show servers state be_apache`), one server per state.
const STATE: &str = "1
# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port
3 be_apache 1 mw1001 127.0.0.1 2 0 10 10 5 1 0 0 0 0 0 0 - 8001 - 0 0 - - 0
3 be_apache 2 mw1002 127.0.0.1 2 8 1 1 5 1 0 0 0 0 0 0 - 8002 - 0 0 - - 0
3 be_apache 3 mw1003 127.0.0.1 0 5 1 1 5 1 0 0 0 0 0 0 - 8003 - 0 0 - - 0
";

#[test]
fn parses_by_column_names() {
    let s = parse_servers_state(STATE).expect("parses");
    assert_eq!(s.len(), 3);
    assert_eq!(
        (s[0].name.as_str(), s[0].weight, s[0].admin()),
        ("mw1001", 10, AdminState::Ready)
    );
    assert!(s[0].pooled() && s[0].up());
    assert_eq!(s[1].admin(), AdminState::Drain);
    assert!(!s[1].pooled());
    assert_eq!(s[2].admin(), AdminState::Maint);
    assert!(!s[2].up());
    // `disabled` in the configuration, then `state ready`: CMAINT alone is ready.
    let mut cfg_disabled = s[0].clone();
    cfg_disabled.admin_bits = 4;
    assert_eq!(cfg_disabled.admin(), AdminState::Ready);
}

#[test]
fn columns_in_another_order_are_found() {
    let text = "1\n# srv_uweight srv_name be_name srv_admin_state srv_op_state srv_addr\n7 mw1 be 0 2 10.0.0.1\n";
    let s = parse_servers_state(text).expect("parses");
    assert_eq!(
        (s[0].name.as_str(), s[0].backend.as_str(), s[0].weight),
        ("mw1", "be", 7)
    );
}

// Captured from HAProxy 2.6 (`show stat be_http 4 -1`), the columns past `status` cut.
const STAT: &str = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight
be_http,mw1001,0,0,2,3,,7,0,0,,0,,0,0,0,0,no check,10
be_http,mw1002,0,0,0,0,,0,0,0,,0,,0,0,0,0,MAINT,10

";

#[test]
fn sessions_come_from_show_stat_by_column_name() {
    let s = parse_stat_sessions(STAT).expect("parses");
    assert_eq!(
        s.into_iter().collect::<Vec<_>>(),
        [("mw1001".into(), 2), ("mw1002".into(), 0)]
    );
    let moved = "# svname,scur,pxname\nmw1,5,be\n";
    assert_eq!(parse_stat_sessions(moved).expect("parses")["mw1"], 5);
    let e = parse_stat_sessions("No such proxy.\n\n").expect_err("error");
    assert!(e.to_string().contains("No such proxy."), "{e}");
    assert!(parse_stat_sessions("# pxname,svname\n").is_err());
    assert!(parse_stat_sessions("# svname,scur\nmw1\n").is_err());
    assert!(parse_stat_sessions("# svname,scur\nmw1,x\n").is_err());
    assert!(parse_stat_sessions("").is_err());
}

#[test]
fn commands_render_as_haproxy_reads_them() {
    let c = Command::State {
        backend: "be".into(),
        server: "mw1".into(),
        state: AdminState::Drain,
    };
    assert_eq!(c.to_string(), "set server be/mw1 state drain");
    let c = Command::Weight {
        backend: "be".into(),
        server: "mw1".into(),
        weight: 256,
    };
    assert_eq!(c.to_string(), "set server be/mw1 weight 256");
    let c = Command::ShutdownSessions {
        backend: "be".into(),
        server: "mw1".into(),
    };
    assert_eq!(c.to_string(), "shutdown sessions server be/mw1");
}

fn with_bits(admin_bits: u32) -> ServerState {
    ServerState {
        backend: "be".into(),
        name: "mw1".into(),
        addr: "10.0.0.1".into(),
        op_state: OP_RUNNING,
        admin_bits,
        weight: 10,
    }
}

#[test]
fn every_maintenance_bit_is_maint_and_every_drain_bit_drain() {
    // Forced, inherited (from a tracked server), resolver and hostname-resolution
    // maintenance: each alone takes the server out, and wins over drain.
    for bits in [0x01, 0x02, 0x20, 0x40] {
        assert_eq!(with_bits(bits).admin(), AdminState::Maint, "{bits:#x}");
        assert_eq!(
            with_bits(bits | 0x08 | 0x10).admin(),
            AdminState::Maint,
            "{bits:#x}"
        );
        assert!(!with_bits(bits).pooled(), "{bits:#x}");
    }
    // Forced and inherited drain; the configuration's remembered `disabled` changes neither.
    for bits in [0x08, 0x10] {
        assert_eq!(with_bits(bits).admin(), AdminState::Drain, "{bits:#x}");
        assert_eq!(with_bits(bits | 0x04).admin(), AdminState::Drain);
        assert!(!with_bits(bits).pooled(), "{bits:#x}");
    }
    assert_eq!(with_bits(0).admin(), AdminState::Ready);
    assert_eq!(with_bits(0x04).admin(), AdminState::Ready);
    assert!(with_bits(0x04).pooled());
}

#[test]
fn pooled_means_ready_running_and_a_weight() {
    assert!(with_bits(0).pooled());
    let weightless = ServerState {
        weight: 0,
        ..with_bits(0)
    };
    assert!(!weightless.pooled() && weightless.up());
    // Stopped, starting, stopping: not up, not pooled.
    for op_state in [0, 1, 3] {
        let s = ServerState {
            op_state,
            ..with_bits(0)
        };
        assert!(!s.up() && !s.pooled(), "{op_state}");
    }
}

/// The error's message, for an answer that must not parse.
fn servers_error(text: &str) -> String {
    parse_servers_state(text).expect_err(text).to_string()
}

#[test]
fn each_unreadable_servers_state_answer_says_what_is_wrong() {
    const HEADER: &str =
        "1\n# be_name srv_name srv_addr srv_op_state srv_admin_state srv_uweight\n";
    let cases = [
        ("", "empty answer"),
        ("\n  \n", "empty answer"),
        ("Can't find backend.\n", "Can't find backend."),
        ("1\n", "no `# be_id be_name ...` header line"),
        (
            "1\nbe_name srv_name\n",
            "no `# be_id be_name ...` header line",
        ),
        (
            "1\n# be_name srv_name\n",
            "no column srv_addr in the header",
        ),
        (
            &format!("{HEADER}be mw1 10.0.0.1 2 0\n"),
            "short line: be mw1 10.0.0.1 2 0",
        ),
        (
            &format!("{HEADER}be mw1 10.0.0.1 2 x 10\n"),
            "not a number in column 4: be mw1 10.0.0.1 2 x 10",
        ),
        (
            &format!("{HEADER}be mw1 10.0.0.1 2 0 65536\n"),
            "weight out of range: be mw1 10.0.0.1 2 0 65536",
        ),
    ];
    for (text, reason) in cases {
        assert_eq!(
            servers_error(text),
            format!("HAProxy: show servers state: {reason}"),
            "{text:?}"
        );
    }
    // Around the version and between lines: blank lines and comments are skipped.
    let text = format!(
        " 1 \n{}\n# a comment\nbe mw1 10.0.0.1 2 0 65535\n",
        &HEADER[2..]
    );
    let s = parse_servers_state(&text).expect("parses");
    assert_eq!(
        s,
        [ServerState {
            backend: "be".into(),
            name: "mw1".into(),
            addr: "10.0.0.1".into(),
            op_state: 2,
            admin_bits: 0,
            weight: 65535,
        }]
    );
}

#[test]
fn each_unreadable_stat_answer_says_what_is_wrong() {
    let cases = [
        ("", "empty answer"),
        ("No such proxy.\n", "No such proxy."),
        ("# pxname,svname\n", "no column scur in the header"),
        ("# scur\n", "no column svname in the header"),
        ("# svname,scur\nmw1\n", "short line: mw1"),
        ("# svname,scur\nmw1,x\n", "scur is not a number: mw1,x"),
    ];
    for (text, reason) in cases {
        assert_eq!(
            parse_stat_sessions(text).expect_err(text).to_string(),
            format!("HAProxy: show stat: {reason}"),
            "{text:?}"
        );
    }
    // A header with spaces around it, no servers.
    assert_eq!(
        parse_stat_sessions("#  svname,scur \n").expect("parses"),
        BTreeMap::new()
    );
}

#[test]
fn each_command_names_its_server_and_each_state_its_word() {
    let (backend, server) = (BackendName::from("be"), ServerName::from("mw7"));
    let commands = [
        Command::State {
            backend: backend.clone(),
            server: server.clone(),
            state: AdminState::Maint,
        },
        Command::Weight {
            backend: backend.clone(),
            server: server.clone(),
            weight: 0,
        },
        Command::ShutdownSessions { backend, server },
    ];
    for c in &commands {
        assert_eq!(c.server(), "mw7", "{c}");
    }
    assert_eq!(commands[0].to_string(), "set server be/mw7 state maint");
    let words: Vec<String> = [AdminState::Ready, AdminState::Drain, AdminState::Maint]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(words, ["ready", "drain", "maint"]);
}
