//! Guard rails on fleet-wide writes: depool thresholds (from the static config, synced with
//! the service definitions), inactive objects put back into service only on request, and
//! flags offered only where they act.

use crate::util::*;

/// The example conf/ synced: eqiad appservers/apache has mw1018..mw1022, all pooled (default
/// threshold 0.5: at least 3 of 5); api_appserver/apache has mw1221..mw1223 with
/// depool_threshold 0.66 (at least 2 of 3); jobrunner objects are inactive.
fn example() -> Ctx {
    let ctx = Ctx::new();
    let conf = ctx.copy_example("conf");
    ctx.sync(&conf, &[]).expect_code(0);
    ctx
}

fn pooled(ctx: &Ctx, obj: &str) -> String {
    let v: serde_json::Value =
        serde_json::from_str(&ctx.dump()[&format!("/v1/pools/{obj}")]).expect("JSON");
    v["pooled"].as_str().expect("pooled").to_string()
}

#[test]
fn a_fleet_wide_depool_is_refused_naming_the_pools_and_numbers() {
    let ctx = example();
    let before = ctx.state();
    for run in [
        ctx.run_with_stdin("confctl", &["select", "name=.*", "set/pooled=no"], "y\n"),
        ctx.run("confctl", &["--yes", "select", "name=.*", "set/pooled=no"]),
        ctx.run("confctl", &["select", "name=.*", "delete", "--yes"]),
    ] {
        assert_eq!(run.code, 2, "{run:?}");
        for pool in [
            "eqiad/appservers/apache: 0 of 5 nodes would stay serving (now 5), below its depool threshold 0.5 (at least 3)",
            "eqiad/api_appserver/apache: 0 of 3 nodes would stay serving (now 3), below its depool threshold 0.66 (at least 2)",
        ] {
            assert!(run.stderr.contains(pool), "{pool}\n{}", run.stderr);
        }
        assert!(
            run.stderr.contains("--allow-below-threshold"),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains("nothing written"), "{}", run.stderr);
        assert_eq!(ctx.state(), before);
    }
    // Pools whose nodes are all depooled already (cache_text) are not in the refusal.
    let run = ctx.run("confctl", &["--yes", "select", "name=.*", "set/pooled=no"]);
    assert!(!run.stderr.contains("cache_text"), "{}", run.stderr);
    // Explicitly overridden, it is written.
    ctx.run(
        "confctl",
        &[
            "--yes",
            "select",
            "--allow-below-threshold",
            "name=.*",
            "set/pooled=no",
        ],
    )
    .expect_code(0);
    assert_eq!(pooled(&ctx, "eqiad/appservers/apache/mw1022"), "no");
}

#[test]
fn depools_are_allowed_down_to_the_threshold_and_repairs_always() {
    let ctx = example();
    let apache = |n: &str| format!("eqiad/appservers/apache/{n}");
    // 5 pooled, at least 3: two depools are fine.
    ctx.run(
        "confctl",
        &[
            "--yes",
            "select",
            "dc=eqiad,cluster=appservers,service=apache,name=mw10(18|19)",
            "set/pooled=no",
        ],
    )
    .expect_code(0);
    assert_eq!(pooled(&ctx, &apache("mw1019")), "no");
    // A third is not, through any tool.
    let before = ctx.state();
    let refused = [
        ctx.run(
            "confctl",
            &[
                "select",
                "dc=eqiad,cluster=appservers,service=apache,name=mw1020",
                "set/pooled=no",
            ],
        ),
        ctx.run(
            "confctl",
            &["depool", "--hostname", "mw1020", "--service", "apache"],
        ),
        ctx.run(
            "confctl",
            &[
                "decommission",
                "--hostname",
                "mw1020",
                "--service",
                "apache",
            ],
        ),
        ctx.run(
            "conftool",
            &[
                "-d",
                "eqiad",
                "-c",
                "appservers",
                "-s",
                "apache",
                "mw1020 pool=no",
            ],
        ),
    ];
    for run in refused {
        assert_eq!(run.code, 2, "{run:?}");
        assert!(
            run.stderr
                .contains("eqiad/appservers/apache: 2 of 5 nodes would stay serving (now 3)"),
            "{}",
            run.stderr
        );
        assert_eq!(ctx.state(), before);
    }
    // Weights above 0 and repools never lower the count: fine even at the threshold; a
    // drain (weight 0) takes the node out of traffic, so it is refused like a depool.
    ctx.run(
        "confctl",
        &[
            "select",
            "dc=eqiad,service=apache,name=mw1020",
            "set/weight=5",
        ],
    )
    .expect_code(0);
    let before = ctx.state();
    ctx.run("confctl", &["drain", "--hostname", "mw1020"])
        .expect_code(2);
    assert_eq!(ctx.state(), before);
    // With the override, below it; then the pool is below and still accepts repairs.
    ctx.run(
        "confctl",
        &[
            "depool",
            "--hostname",
            "mw1020",
            "--service",
            "apache",
            "--allow-below-threshold",
        ],
    )
    .expect_code(0);
    assert_eq!(pooled(&ctx, &apache("mw1020")), "no");
    ctx.run(
        "conftool",
        &[
            "-d",
            "eqiad",
            "-c",
            "appservers",
            "-s",
            "apache",
            "mw1018 pool=yes",
        ],
    )
    .expect_code(0);
    assert_eq!(pooled(&ctx, &apache("mw1018")), "yes");
}

#[test]
fn the_threshold_comes_from_the_synced_service_definition() {
    let ctx = Ctx::new();
    let conf = ctx.copy_example("conf");
    let services = std::fs::read_to_string(conf.join("services.yaml")).expect("read");
    // appservers/apache: no depooled node allowed at all; appservers/nginx: any.
    let services = services
        .replace(
            "    default_values: {pooled: \"yes\", weight: 1}\n  nginx:",
            "    default_values: {pooled: \"yes\", weight: 1}\n    depool_threshold: 1.0\n  nginx:",
        )
        .replace(
            "    port: 443\n    default_values: {pooled: \"yes\", weight: 1}\n",
            "    port: 443\n    default_values: {pooled: \"yes\", weight: 1}\n    depool_threshold: 0\n",
        );
    std::fs::write(conf.join("services.yaml"), &services).expect("write");
    ctx.sync(&conf, &[]).expect_code(0);
    assert!(ctx.dump()["/v1/services/appservers/apache"].contains("\"depool_threshold\":1.0"));
    let run = ctx.run(
        "confctl",
        &[
            "select",
            "dc=eqiad,service=apache,name=mw1018",
            "set/pooled=no",
        ],
    );
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains("below its depool threshold 1 (at least 5)"),
        "{}",
        run.stderr
    );
    ctx.run(
        "confctl",
        &[
            "--yes",
            "select",
            "dc=eqiad,cluster=appservers,service=nginx",
            "set/pooled=no",
        ],
    )
    .expect_code(0);
    // A threshold that is not a share is bad input, with its place.
    let bad = services.replace("depool_threshold: 1.0", "depool_threshold: 1.5");
    std::fs::write(conf.join("services.yaml"), bad).expect("write");
    let before = ctx.state();
    let run = ctx.sync(&conf, &[]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("services.yaml:") && run.stderr.contains("depool_threshold 1.5"),
        "{}",
        run.stderr
    );
    assert_eq!(ctx.state(), before);
}

#[test]
fn a_pattern_write_leaves_inactive_objects_alone_whatever_it_sets() {
    let ctx = example();
    let before = ctx.state();
    // Pooling, depooling (which would put them back into load-balancer configuration, and a
    // later pattern pool into service) and weights: all leave inactive objects alone.
    for args in [
        vec!["--yes", "select", "cluster=jobrunner", "set/pooled=yes"],
        vec!["--yes", "select", "name=mw116.", "set/pooled=no"],
        vec!["--yes", "select", "cluster=jobrunner", "set/weight=5"],
    ] {
        let run = ctx.run("confctl", &args).expect_code(0);
        assert!(
            run.stderr.contains(
                "eqiad/jobrunner/jobrunner/mw1161: left alone (pooled=inactive; name the host \
                 exactly or pass --include-inactive to change it)"
            ) && run
                .stderr
                .contains("eqiad/jobrunner/jobrunner/mw1162: left alone")
                && run
                    .stderr
                    .contains("Nothing written: of 2 selected objects, 2 are pooled=inactive"),
            "{args:?}: {}",
            run.stderr
        );
        assert_eq!(run.stdout, "", "{args:?}");
        assert_eq!(ctx.state(), before, "{args:?}");
    }
    // One host named exactly: as people pool a new host.
    ctx.run(
        "confctl",
        &["select", "dc=eqiad,name=mw1161", "set/pooled=yes"],
    )
    .expect_code(0);
    assert_eq!(pooled(&ctx, "eqiad/jobrunner/jobrunner/mw1161"), "yes");
    assert_eq!(pooled(&ctx, "eqiad/jobrunner/jobrunner/mw1162"), "inactive");
    // A pattern that selects both changes the active one only.
    let run = ctx
        .run(
            "confctl",
            &["--yes", "select", "name=mw116.", "set/weight=7"],
        )
        .expect_code(0);
    assert_eq!(
        run.stdout,
        "eqiad/jobrunner/jobrunner/mw1161: weight changed 0 => 7\n"
    );
    // Setting pooled=inactive itself reaches them (a decommission by pattern; mw1161 is the
    // pool's only serving node, so the threshold has to be lifted for it).
    ctx.run(
        "confctl",
        &[
            "--yes",
            "select",
            "name=mw116.",
            "set/pooled=inactive:weight=0",
            "--allow-below-threshold",
        ],
    )
    .expect_code(0);
    assert_eq!(
        ctx.dump()["/v1/pools/eqiad/jobrunner/jobrunner/mw1162"],
        r#"{"pooled":"inactive","weight":0}"#
    );
    ctx.run(
        "confctl",
        &[
            "--yes",
            "select",
            "--include-inactive",
            "cluster=jobrunner",
            "set/pooled=yes",
        ],
    )
    .expect_code(0);
    assert_eq!(pooled(&ctx, "eqiad/jobrunner/jobrunner/mw1162"), "yes");
}

#[test]
fn flags_are_offered_only_where_they_act() {
    let ctx = example();
    let before = ctx.state();
    for args in [
        vec!["--yes", "depool", "--hostname", "mw1018"],
        vec!["depool", "--hostname", "mw1018", "--include-inactive"],
        vec!["pool", "--hostname", "mw1018", "--allow-below-threshold"],
        vec!["-y", "pool", "--hostname", "mw1018"],
    ] {
        let run = ctx.run("confctl", &args);
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
        assert_eq!(ctx.state(), before, "{args:?}");
    }
    // -q means the same everywhere: no informational lines; results still printed.
    let run = ctx
        .run(
            "conftool",
            &[
                "-q",
                "-d",
                "eqiad",
                "-c",
                "appservers",
                "-s",
                "apache",
                "mw1018 weight=3",
            ],
        )
        .expect_code(0);
    assert_eq!(
        run.stdout,
        "Node mw1018 weight set to 3 in service apache\n"
    );
    let run = ctx
        .run(
            "confctl",
            &[
                "-q",
                "select",
                "dc=eqiad,service=apache,name=mw1018",
                "set/weight=3",
            ],
        )
        .expect_code(0);
    assert_eq!(run.stderr, "", "nothing to change, and quiet");
    ctx.delete("/v1/pools/eqiad/appservers/apache/mw1018");
    let conf = ctx.path("conf");
    let run = ctx.sync(&conf, &["-q"]).expect_code(0);
    assert!(
        run.stdout
            .contains("+/v1/pools/eqiad/appservers/apache/mw1018 "),
        "{}",
        run.stdout
    );
    assert_eq!(run.stderr, "");
}
