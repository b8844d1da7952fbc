//! conftool: the original design document's syntax, its messages, and atomicity.

use crate::util::*;

fn fleet() -> Ctx {
    let ctx = Ctx::new();
    ctx.write(
        "conf/services.yaml",
        "cache_text:\n  varnish-fe: {port: 80, default_values: {pooled: \"no\", weight: 10}}\n",
    );
    ctx.write(
        "conf/eqiad/pools.yaml",
        "cache_text:\n  cp1052: {services: [varnish-fe]}\n  cp1053: {services: [varnish-fe]}\n  cp1054: {services: [varnish-fe]}\n",
    );
    ctx.sync(&ctx.path("conf"), &["--quiet"]).expect_code(0);
    ctx
}

const POOL: [&str; 6] = [
    "--datacenter",
    "eqiad",
    "--cluster",
    "cache_text",
    "--service",
    "varnish-fe",
];

fn conftool(ctx: &Ctx, commands: &str) -> Run {
    let mut args = POOL.to_vec();
    args.push(commands);
    ctx.run("conftool", &args)
}

#[test]
fn seed_syntax_and_messages() {
    let ctx = fleet();
    conftool(&ctx, "cp1052 pool=yes").expect_code(0);
    let run = conftool(&ctx, "cp1052 pool=no; cp1053 pool=yes:weight=20000").expect_code(0);
    assert_eq!(
        run.stdout,
        "Node cp1052 depooled from service varnish-fe\n\
         Node cp1053 pooled in service varnish-fe with weight 20000\n"
    );
    let dump = ctx.dump();
    let get = |n: &str| dump[&format!("/v1/pools/eqiad/cache_text/varnish-fe/{n}")].clone();
    assert_eq!(get("cp1052"), r#"{"pooled":"no","weight":10}"#);
    assert_eq!(get("cp1053"), r#"{"pooled":"yes","weight":20000}"#);
    assert_eq!(get("cp1054"), r#"{"pooled":"no","weight":10}"#);
}

#[test]
fn a_node_already_in_the_state_is_said_to_be_so_and_not_rewritten() {
    let ctx = fleet();
    let rev = ctx.revision();
    // cp1052 starts depooled (the service's default).
    let run = conftool(&ctx, "cp1052 pool=no; cp1053 pool=yes").expect_code(0);
    assert_eq!(
        run.stdout,
        "Node cp1052 already depooled from service varnish-fe\n\
         Node cp1053 pooled in service varnish-fe with weight 10\n"
    );
    assert_eq!(ctx.revision(), rev + 1, "only cp1053 was written");
    let run = conftool(&ctx, "cp1053 pool=yes; cp1054 pool=inactive").expect_code(0);
    assert_eq!(
        run.stdout,
        "Node cp1053 already pooled in service varnish-fe with weight 10\n\
         Node cp1054 set inactive in service varnish-fe\n"
    );
    let rev = ctx.revision();
    let run = conftool(&ctx, "cp1054 pool=inactive; cp1052 weight=10").expect_code(0);
    assert_eq!(
        run.stdout,
        "Node cp1054 already inactive in service varnish-fe\n\
         Node cp1052 weight already set to 10 in service varnish-fe\n"
    );
    assert_eq!(ctx.revision(), rev, "nothing to write, nothing written");
}

#[test]
fn all_changes_land_in_one_transaction() {
    let ctx = fleet();
    let rev = ctx.revision();
    conftool(&ctx, "cp1052 pool=yes; cp1053 pool=yes; cp1054 weight=3").expect_code(0);
    assert_eq!(ctx.revision(), rev + 1, "one invocation, one etcd revision");
}

#[test]
fn one_bad_part_writes_nothing() {
    let ctx = fleet();
    let before = (ctx.dump(), ctx.revision());
    for (commands, want) in [
        (
            "cp1052 pool=no; cp9999 pool=yes",
            "not in pool eqiad/cache_text/varnish-fe: cp9999",
        ),
        ("cp1052 pool=no; cp1053 pool=maybe", "pooled must be"),
        ("cp1052 pool=no; cp1053 weight=70000", "weight must be"),
        ("cp1052 pool=no; cp1053", "expected `NODE field=value"),
        ("cp1052 pool=no; cp1052 pool=yes", "more than once"),
        ("cp1052 pool=no; cp/1053 pool=yes", "invalid node name"),
        ("cp1052 colour=red", "unknown field"),
        (" ; ", "no commands"),
    ] {
        let run = conftool(&ctx, commands);
        assert_eq!(run.code, 2, "{commands}: {run:?}");
        assert!(run.stderr.contains(want), "{commands}: {}", run.stderr);
    }
    let run = ctx.run(
        "conftool",
        &[
            "--datacenter",
            "eq/iad",
            "--cluster",
            "c",
            "--service",
            "s",
            "x pool=no",
        ],
    );
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!((ctx.dump(), ctx.revision()), before);
}
