//! The haproxy harness against Debian's real haproxy: traffic follows the runtime API's
//! `set server ... state` and `weight`, initial maintenance comes from the config, and a
//! restart resets state to the config's.

use std::collections::BTreeMap;
use std::time::Instant;

use conftool_testkit::haproxy::{send, BackendSpec, Backends, HaProxy, ServerSpec};

const NAMES: [&str; 3] = ["mw1001", "mw1002", "mw1003"];

fn spec(b: &Backends, backend: &str, maint: &[&str]) -> BackendSpec {
    BackendSpec {
        name: backend.to_string(),
        servers: NAMES
            .iter()
            .map(|n| ServerSpec {
                name: n.to_string(),
                addr: b.addr(n),
                weight: 10,
                maint: maint.contains(n),
            })
            .collect(),
    }
}

fn tally(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// Send `n` requests through `backend`'s frontend and check who answered (and that the
/// backends counted the same), showing haproxy's view of its servers if not.
fn expect(ha: &HaProxy, b: &Backends, backend: &str, n: usize, want: &[(&str, usize)]) {
    b.reset();
    let got = send(ha.frontend(backend), n);
    let state = || ha.command("show servers state");
    assert_eq!(got, tally(want), "show servers state:\n{}", state());
    for n in NAMES {
        let want_hits = want.iter().find(|(k, _)| *k == n).map_or(0, |(_, v)| *v);
        assert_eq!(
            b.hits(n),
            want_hits as u64,
            "{n}'s hits; show servers state:\n{}",
            state()
        );
    }
}

fn ok(out: &str) {
    // Successful `set server` commands answer with an empty line.
    assert!(out.trim().is_empty(), "runtime API said: {out:?}");
}

#[test]
fn traffic_follows_runtime_state_and_weight() {
    let t0 = Instant::now();
    let b = Backends::start(&NAMES);
    let ha = HaProxy::start(&[spec(&b, "be", &[])]);
    assert!(ha.pid().is_some());
    assert!(ha.command("show info").contains("Name: HAProxy"));

    expect(
        &ha,
        &b,
        "be",
        30,
        &[("mw1001", 10), ("mw1002", 10), ("mw1003", 10)],
    );

    ok(&ha.command("set server be/mw1002 state maint"));
    let st = ha.servers_state();
    let mw1002 = st.iter().find(|r| r["srv_name"] == "mw1002").unwrap();
    // srv_admin_state 1 = SRV_ADMF_FMAINT (forced maintenance); op_state 0 = stopped.
    assert_eq!(mw1002["srv_admin_state"], "1", "{st:?}");
    assert_eq!(mw1002["srv_op_state"], "0", "{st:?}");
    expect(&ha, &b, "be", 20, &[("mw1001", 10), ("mw1003", 10)]);

    ok(&ha.command("set server be/mw1002 state ready"));
    expect(
        &ha,
        &b,
        "be",
        30,
        &[("mw1001", 10), ("mw1002", 10), ("mw1003", 10)],
    );

    // Drain: no new traffic either (bit 8 in srv_admin_state).
    ok(&ha.command("set server be/mw1002 state drain"));
    assert_eq!(ha.server_state("be", "mw1002")["srv_admin_state"], "8");
    expect(&ha, &b, "be", 20, &[("mw1001", 10), ("mw1003", 10)]);
    ok(&ha.command("set server be/mw1002 state ready"));

    // Errors are text.
    let err = ha.command("set server be/nope state maint");
    assert!(err.contains("No such server"), "{err:?}");

    ok(&ha.command("set server be/mw1001 weight 30"));
    let st = ha.servers_state();
    let mw1001 = st.iter().find(|r| r["srv_name"] == "mw1001").unwrap();
    assert_eq!(mw1001["srv_uweight"], "30", "{st:?}");
    assert_eq!(mw1001["srv_iweight"], "10", "{st:?}");
    expect(
        &ha,
        &b,
        "be",
        50,
        &[("mw1001", 30), ("mw1002", 10), ("mw1003", 10)],
    );

    // Every server in maintenance: haproxy answers 503 itself.
    for n in NAMES {
        ok(&ha.command(&format!("set server be/{n} state maint")));
    }
    expect(&ha, &b, "be", 3, &[("error:http-503", 3)]);
    eprintln!("haproxy traffic test took {:?}", t0.elapsed());
}

#[test]
fn initial_maint_from_config_and_restart_resets_state() {
    let t0 = Instant::now();
    let b = Backends::start(&NAMES);
    let mut ha = HaProxy::start(&[spec(&b, "be", &["mw1003"]), spec(&b, "other", &[])]);
    expect(&ha, &b, "be", 20, &[("mw1001", 10), ("mw1002", 10)]);
    expect(
        &ha,
        &b,
        "other",
        30,
        &[("mw1001", 10), ("mw1002", 10), ("mw1003", 10)],
    );
    let st = ha.servers_state();
    let row = |be: &str, srv: &str| {
        st.iter()
            .find(|r| r["be_name"] == be && r["srv_name"] == srv)
            .unwrap_or_else(|| panic!("no {be}/{srv} in {st:?}"))
            .clone()
    };
    // `disabled` in the config: SRV_ADMF_CMAINT (4, "maintenance from the config") and
    // SRV_ADMF_FMAINT (1); a server put in maintenance at runtime has only FMAINT.
    assert_eq!(row("be", "mw1003")["srv_admin_state"], "5");
    assert_eq!(row("be", "mw1001")["srv_admin_state"], "0");

    // Runtime changes...
    ok(&ha.command("set server be/mw1003 state ready"));
    // The config's maintenance bit stays, but the server takes traffic.
    assert_eq!(ha.server_state("be", "mw1003")["srv_admin_state"], "4");
    ok(&ha.command("set server be/mw1001 state maint"));
    expect(&ha, &b, "be", 20, &[("mw1002", 10), ("mw1003", 10)]);
    // ... are gone after a restart (same ports, same config).
    let (pid, fe) = (ha.pid(), ha.frontend("be"));
    ha.restart();
    assert_ne!(pid, ha.pid());
    assert_eq!(fe, ha.frontend("be"));
    expect(&ha, &b, "be", 20, &[("mw1001", 10), ("mw1002", 10)]);

    // A backend that stops listening: haproxy (no health checks) tries it and fails.
    b.stop("mw1002");
    let got = send(ha.frontend("be"), 4);
    assert_eq!(got.get("mw1001"), Some(&2), "{got:?}");
    assert_eq!(got.get("error:http-503"), Some(&2), "{got:?}");
    b.start_again("mw1002");
    expect(&ha, &b, "be", 20, &[("mw1001", 10), ("mw1002", 10)]);
    eprintln!("haproxy restart test took {:?}", t0.elapsed());
}
