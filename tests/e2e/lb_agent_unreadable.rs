//! Keys and values under the agent's pool that it cannot read (issue 16): each is logged
//! once, named with its control characters escaped, and skipped; the agent goes on applying
//! the rest. Real etcd, real HAProxy.

use std::time::Duration;

use conftool_core::escape_controls;

use crate::lb_agent::{
    events, share, start_lb, sync_pool, until_all_serve, wait_for, AgentProc, BACKEND,
};
use crate::util::Ctx;

const POOL: &str = "/v1/pools/eqiad/web/http/";

#[test]
fn unreadable_keys_and_values_under_a_pool_are_logged_once_each_and_skipped() {
    let ctx = Ctx::new();
    sync_pool(&ctx);
    // Already there when the agent starts (its first snapshot): a node name that is not a
    // name, carrying a terminal escape sequence.
    let bad_name = format!("{POOL}mw 1\u{1b}]0;owned\u{7}");
    ctx.put(&bad_name, r#"{"pooled":"yes","weight":1}"#);
    let (_b, ha) = start_lb();
    let agent = AgentProc::start_with(&ctx, &ha, "");
    until_all_serve(&agent, &ha);
    let mw1003 = ha.server_state(BACKEND, "mw1003")["srv_admin_state"].clone();

    // Written while it runs (through the watch): a path below a node, a value that is not
    // a state (with a C1 control character in it).
    let deeper = format!("{POOL}mw1001/extra");
    ctx.put(&deeper, "{}");
    ctx.put(&format!("{POOL}mw1003"), "{\"pooled\":\"maybe\u{9b}31m\"}");
    wait_for(
        "three unreadable lines",
        Duration::from_secs(10),
        &agent,
        || events(&agent, "unreadable").len() >= 3,
    );

    // The agent goes on: a depool lands; the malformed node is left as HAProxy has it.
    ctx.put(&format!("{POOL}mw1002"), r#"{"pooled":"no","weight":10}"#);
    wait_for("mw1002 drained", Duration::from_secs(10), &agent, || {
        !share(&ha, 3).contains_key("mw1002")
    });
    assert_eq!(
        ha.server_state(BACKEND, "mw1003")["srv_admin_state"],
        mw1003
    );
    assert!(share(&ha, 6).contains_key("mw1003"), "still serving");

    // Every line once, though another watch event (the depool) came after them.
    let lines = events(&agent, "unreadable");
    let keys: Vec<&str> = lines.iter().filter_map(|l| l["key"].as_str()).collect();
    let escaped_name = escape_controls(&bad_name).into_owned();
    assert_eq!(
        keys,
        [
            escaped_name.as_str(),
            deeper.as_str(),
            &format!("{POOL}mw1003")
        ],
        "{}",
        agent.log()
    );
    assert_eq!(escaped_name, format!(r"{POOL}mw 1\x1b]0;owned\x07"));
    for l in &lines {
        assert_eq!(
            (l["backend"].as_str(), l["level"].as_str()),
            (Some(BACKEND), Some("warn"))
        );
    }
    let reasons: Vec<&str> = lines.iter().filter_map(|l| l["reason"].as_str()).collect();
    assert!(
        reasons[0].starts_with("not an object key: invalid node name"),
        "{reasons:?}"
    );
    assert!(
        reasons[1].contains("a path below a node name"),
        "{reasons:?}"
    );
    assert!(reasons[2].contains("malformed value"), "{reasons:?}");
    assert!(reasons[2].contains(r"maybe\u{9b}31m"), "{reasons:?}");
    // No control character reaches the log as itself.
    let log = agent.log();
    assert!(
        !log.chars()
            .any(|c| c == '\u{1b}' || c == '\u{7}' || c == '\u{9b}'),
        "{log}"
    );

    // Repaired, then broken again: said again (once).
    ctx.put(&format!("{POOL}mw1003"), r#"{"pooled":"yes","weight":10}"#);
    ctx.put(&format!("{POOL}mw1003"), "[]");
    wait_for(
        "the value broken again is said again",
        Duration::from_secs(10),
        &agent,
        || events(&agent, "unreadable").len() == 4,
    );
    let again = &events(&agent, "unreadable")[3];
    assert_eq!(again["key"], format!("{POOL}mw1003"));
}
