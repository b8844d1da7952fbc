//! conftool-sync's memory on a checkout a merge request controls (issue 16, finding 7: a
//! 60 MiB `pools.yaml` took 1.7 GB before etcd was contacted). The data files' bytes are
//! capped before they are parsed and the objects while they are read; every run here,
//! refused or not, stays under 500 MB of peak RSS, measured on the process itself
//! ([`crate::measure`]). Refusals exit 2, name the cap and the flag that raises it, and
//! leave etcd as it was.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::measure::{measured, MAX_RSS};
use crate::util::*;

const SERVICES: &str = "appservers:\n  \
    apache: {port: 80, default_values: {pooled: 'yes', weight: 1}}\n  \
    nginx: {port: 443, default_values: {pooled: 'yes', weight: 1}}\n  \
    php-fpm: {port: 9000, default_values: {pooled: 'yes', weight: 1}}\n  \
    envoy: {port: 8080, default_values: {pooled: 'yes', weight: 1}}\n";

/// The default caps (conftool_sync::Caps::default()), as the messages show them.
const BYTES_CAP: &str = "3 MiB";
const OBJECTS_CAP: usize = conftool_sync::Caps::DEFAULT_MAX_OBJECTS;

/// A data directory of `services.yaml` and one pools file per (dc, size in bytes) of
/// realistic lines (`  mw0000001: {services: [apache, nginx, php-fpm]}`), written without
/// holding the file in memory. Returns the directory.
fn conf(ctx: &Ctx, name: &str, pools: &[(&str, u64)]) -> PathBuf {
    let dir = ctx.path(name);
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("services.yaml"), SERVICES).expect("services.yaml");
    for (dc, size) in pools {
        std::fs::create_dir_all(dir.join(dc)).expect("mkdir dc");
        let file = std::fs::File::create(dir.join(dc).join("pools.yaml")).expect("create");
        let mut w = std::io::BufWriter::new(file);
        let mut written = w.write(b"appservers:\n").expect("write") as u64;
        let mut n = 0u64;
        while written < *size {
            let line = format!("  mw{n:07}: {{services: [apache, nginx, php-fpm]}}\n");
            w.write_all(line.as_bytes()).expect("write");
            written += line.len() as u64;
            n += 1;
        }
        w.flush().expect("flush");
    }
    dir
}

/// `conftool-sync --directory DIR ARGS...`, measured.
fn sync_measured(ctx: &Ctx, dir: &Path, args: &[&str]) -> (Run, u64) {
    let mut cmd = ctx.cmd("conftool-sync");
    cmd.arg("--directory").arg(dir).args(args);
    measured(&cmd)
}

/// A refusal: exit 2, stderr says each of `says`, etcd as it was, under the memory bound.
#[track_caller]
fn refused(ctx: &Ctx, before: &(Keyspace, i64), (run, rss): (Run, u64), says: &[&str]) {
    assert_eq!(run.code, 2, "{run:?}");
    for s in says {
        assert!(run.stderr.contains(s), "stderr lacks {s:?}: {}", run.stderr);
    }
    assert_eq!(&ctx.state(), before, "etcd changed");
    assert!(rss < MAX_RSS, "peak RSS {rss} bytes: {run:?}");
}

const MIB: u64 = 1 << 20;

#[test]
fn a_60_mib_pools_file_is_refused_before_it_is_read() {
    let ctx = Ctx::new();
    let dir = conf(&ctx, "conf", &[("eqiad", 4096)]);
    ctx.sync(&dir, &[]).expect_code(0);
    let before = ctx.state();
    let dir = conf(&ctx, "conf", &[("eqiad", 60 * MIB)]);
    let (run, rss) = sync_measured(&ctx, &dir, &[]);
    let says = format!(
        "{}/eqiad/pools.yaml: the data files would add up to 60.0 MiB with this one, more than \
         the {BYTES_CAP} a sync reads; not read, nothing parsed (raise the cap with \
         --max-input-bytes if this is intended)",
        dir.display()
    );
    // Not even read: a run holding the file would be past 60 MiB.
    assert!(rss < 60 * MIB, "peak RSS {rss} bytes");
    refused(&ctx, &before, (run, rss), &[&says]);
}

#[test]
fn four_30_mib_files_are_refused_when_their_sum_passes_the_cap() {
    let ctx = Ctx::new();
    let dir = conf(&ctx, "conf", &[("dc1", 4096)]);
    ctx.sync(&dir, &[]).expect_code(0);
    let before = ctx.state();
    let dcs = [
        ("dc1", 30 * MIB),
        ("dc2", 30 * MIB),
        ("dc3", 30 * MIB),
        ("dc4", 30 * MIB),
    ];
    let dir = conf(&ctx, "conf", &dcs);
    // The default: the first one is already past the cap.
    let run = sync_measured(&ctx, &dir, &[]);
    let first = format!(
        "{}/dc1/pools.yaml: the data files would add up to 30.0",
        dir.display()
    );
    refused(&ctx, &before, run, &[&first, "--max-input-bytes"]);
    // With room for three, the fourth brings them past it: refused before it is read,
    // and none of them parsed.
    let run = sync_measured(&ctx, &dir, &["--max-input-bytes", "100MiB"]);
    let fourth = format!(
        "{}/dc4/pools.yaml: the data files would add up to 120.0 MiB with this one, more than \
         the 100 MiB a sync reads",
        dir.display()
    );
    refused(&ctx, &before, run, &[&fourth]);
}

/// The costliest YAML per byte (`{a,a,a,...}`: two parse events per two bytes, ~115 bytes
/// of memory per byte while the YAML library holds them) just under the byte cap: parsed
/// whole (the library reads every event before the typed read refuses the first key, an
/// undefined cluster), and still under the bound.
#[test]
fn the_costliest_yaml_under_the_byte_cap_stays_under_the_memory_bound() {
    let ctx = Ctx::new();
    let dir = conf(&ctx, "conf", &[]);
    std::fs::create_dir_all(dir.join("eqiad")).expect("mkdir");
    let room = conftool_sync::Caps::DEFAULT_MAX_BYTES as usize - SERVICES.len() - 16;
    let body = "a,".repeat(room / 2);
    std::fs::write(dir.join("eqiad/pools.yaml"), format!("x: {{{body}a}}\n")).expect("write");
    let before = ctx.state();
    let run = sync_measured(&ctx, &dir, &[]);
    eprintln!("{} bytes of {{a,a,...}}: peak RSS {} bytes", room, run.1);
    refused(
        &ctx,
        &before,
        run,
        &["eqiad/pools.yaml:1:1: cluster x is not defined in services.yaml"],
    );
}

/// Objects are counted as they are read: the first one past the cap stops the read, with
/// its place.
#[test]
fn objects_past_the_cap_are_refused_where_they_are() {
    let ctx = Ctx::new();
    let before = ctx.state();
    // Dense (four services a node) and under the byte cap: the object cap is what stops it.
    let dir = ctx.path("dense");
    std::fs::create_dir_all(dir.join("eqiad")).expect("mkdir");
    std::fs::write(dir.join("services.yaml"), SERVICES).expect("services.yaml");
    let nodes = OBJECTS_CAP / 4 + 10;
    let mut text = String::from("appservers:\n");
    for n in 0..nodes {
        text.push_str(&format!(
            "  mw{n:06}: {{services: [apache, nginx, php-fpm, envoy]}}\n"
        ));
    }
    assert!((text.len() as u64) < conftool_sync::Caps::DEFAULT_MAX_BYTES);
    std::fs::write(dir.join("eqiad/pools.yaml"), text).expect("write");
    let run = sync_measured(&ctx, &dir, &[]);
    // Object OBJECTS_CAP + 1 is the first service of node OBJECTS_CAP / 4, on its line.
    let place = format!(
        "{}/eqiad/pools.yaml:{}:",
        dir.display(),
        OBJECTS_CAP / 4 + 2
    );
    let says = format!(
        "more than the {OBJECTS_CAP} objects a sync holds; read no further (raise the cap with \
         --max-objects if this is intended)"
    );
    refused(&ctx, &before, run, &[&place, &says]);
}

/// The positive control: what a cap refuses goes through once it is raised.
#[test]
fn raising_the_caps_lets_a_larger_input_through() {
    let ctx = Ctx::new();
    let dir = conf(&ctx, "conf", &[("eqiad", 40 << 10)]);
    let before = ctx.state();
    let run = sync_measured(&ctx, &dir, &["--max-input-bytes", "16KiB"]);
    refused(
        &ctx,
        &before,
        run,
        &["more than the 16 KiB a sync reads", "--max-input-bytes"],
    );
    let run = sync_measured(&ctx, &dir, &["--max-objects", "1000"]);
    refused(
        &ctx,
        &before,
        run,
        &["more than the 1000 objects", "--max-objects"],
    );
    let (run, rss) = sync_measured(
        &ctx,
        &dir,
        &["--max-input-bytes", "64KiB", "--max-objects", "3000"],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(rss < MAX_RSS, "peak RSS {rss} bytes");
    let objects = ctx.count("/v1/pools/");
    assert!(
        objects > 1000 && objects <= 3000,
        "{objects} objects synced"
    );
    // The default caps hold this much too.
    ctx.sync(&dir, &[]).expect_code(0);
    // And bad values of the flags are usage errors.
    ctx.expect_bad_input(
        "conftool-sync",
        &[
            (
                &["--directory", "x", "--max-input-bytes", "0"],
                "not a size in bytes",
            ),
            (
                &["--directory", "x", "--max-input-bytes", "1.5MiB"],
                "not a size in bytes",
            ),
            (&["--directory", "x", "--max-objects", "0"], "--max-objects"),
        ],
    );
}
