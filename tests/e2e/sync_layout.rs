//! conftool-sync and the entries of its data directory: every one is read or reported. What
//! looks like data but would not be read stops the sync (exit 2, every offending path named,
//! etcd untouched, revision included), even with the safety limits lifted; anything else is a
//! warning with its path, and the sync goes on. The same from a work tree and through
//! `--git-rev`. Also: the diff and the summary lines tell every write, the sync record's too.

use std::path::Path;

use crate::util::*;

const META: &str = "/v1/meta/sync";
/// The safety limits lifted: a layout mistake must stop the sync by itself.
const NO_LIMITS: &[&str] = &["--max-delete-share", "1", "--allow-delete-pooled"];

fn example_keyspace() -> Keyspace {
    read_keyspace(&fixtures().join("example-keyspace.txt"))
}

fn mv(dir: &Path, from: &str, to: &str) {
    std::fs::rename(dir.join(from), dir.join(to)).expect("rename");
}

fn put_file(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(p, text).expect("write");
}

/// A synced example, with dynamic state a mistake must not lose; returns the state.
fn synced(ctx: &Ctx) -> (Keyspace, i64) {
    let good = ctx.copy_example("good");
    ctx.sync(&good, &[]).expect_code(0);
    ctx.put(
        "/v1/pools/eqiad/appservers/apache/mw1018",
        r#"{"pooled":"no","weight":3}"#,
    );
    ctx.state()
}

#[test]
fn what_looks_like_data_but_is_not_read_stops_the_sync() {
    let ctx = Ctx::new();
    let before = synced(&ctx);
    type Setup = fn(&Path);
    let cases: &[(&str, Setup, &[&str])] = &[
        (
            "a typo of codfw/pools.yaml",
            |d| mv(d, "codfw/pools.yaml", "codfw/pools.yml"),
            &["/codfw/pools.yml: YAML file not read: did you mean pools.yaml?"],
        ),
        (
            "eqiad/notes.yaml",
            |d| put_file(d, "eqiad/notes.yaml", "todo: [mw1023]\n"),
            &["/eqiad/notes.yaml: YAML file not read: only pools.yaml is read in a datacenter's directory"],
        ),
        (
            "an empty datacenter directory",
            |d| std::fs::create_dir(d.join("esams")).expect("mkdir"),
            &["/esams: empty directory without pools.yaml: as a datacenter, all of its objects would be deleted"],
        ),
        (
            "eqiad's pools moved one level down",
            |d| {
                std::fs::create_dir(d.join("eqiad/old")).expect("mkdir");
                mv(d, "eqiad/pools.yaml", "eqiad/old/pools.yaml");
            },
            // eqiad itself then holds no pools.yaml, but its YAML file is the one to name.
            &["/eqiad/old/pools.yaml: YAML file not read: only <dc>/pools.yaml is read"],
        ),
        (
            "a typo of services.yaml",
            |d| mv(d, "services.yaml", "services.yml"),
            &["/services.yml: YAML file not read: did you mean services.yaml?"],
        ),
        (
            "all of them at once",
            |d| {
                mv(d, "codfw/pools.yaml", "codfw/pools.yml");
                put_file(d, "eqiad/notes.yaml", "todo: [mw1023]\n");
                std::fs::create_dir(d.join("esams")).expect("mkdir");
                put_file(d, "README.md", "# not data\n");
            },
            &[
                ": 3 entries would not be read:\n",
                "/codfw/pools.yml: YAML file not read: did you mean pools.yaml?\n",
                "/eqiad/notes.yaml: YAML file not read",
                "/esams: empty directory without pools.yaml",
            ],
        ),
    ];
    let mut failures = Vec::new();
    for (n, (name, setup, says)) in cases.iter().enumerate() {
        let dir = ctx.copy_example(&format!("bad{n}"));
        setup(&dir);
        for args in [&[][..], NO_LIMITS, &["--dry-run"][..]] {
            let run = ctx.sync(&dir, args);
            let mut wrong = Vec::new();
            if run.code != 2 {
                wrong.push(format!("exit {}", run.code));
            }
            for s in *says {
                let want = if s.starts_with('/') {
                    format!("{}{s}", dir.display())
                } else {
                    format!("error: {}{s}", dir.display())
                };
                if !run.stderr.contains(&want) {
                    wrong.push(format!("stderr lacks {want:?}"));
                }
            }
            if run.stderr.contains("warning") || !run.stdout.is_empty() {
                wrong.push("a warning or a diff beside the error".into());
            }
            if ctx.state() != before {
                wrong.push("etcd changed".into());
            }
            if !wrong.is_empty() {
                failures.push(format!("[{name} {args:?}] {wrong:?}\n{}", run.stderr));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn anything_else_is_a_warning_with_its_path_and_the_sync_goes_on() {
    let ctx = Ctx::new();
    let conf = ctx.copy_example("conf");
    put_file(&conf, "README.md", "# pool data\n");
    put_file(&conf, "docs/layout.txt", "...\n");
    put_file(&conf, "eqiad/NOTES", "...\n");
    // Hidden entries say nothing: VCS, CI and editor files.
    put_file(&conf, ".gitignore", "*.swp\n");
    put_file(&conf, ".gitlab-ci.yml", "test: {script: [make]}\n");
    put_file(&conf, ".git/config", "[core]\n");
    put_file(&conf, "eqiad/.pools.yaml.swp", "\0\0");
    let warnings = |run: &Run| -> Vec<String> {
        run.stderr
            .lines()
            .filter(|l| l.contains("warning"))
            .map(str::to_string)
            .collect()
    };
    let d = conf.display();
    let want = [
        format!("conftool-sync: warning: {d}/README.md: not a data file; not read"),
        format!(
            "conftool-sync: warning: {d}/docs: directory without pools.yaml or any YAML file, \
             so not a datacenter; not read"
        ),
        format!("conftool-sync: warning: {d}/eqiad/NOTES: not a data file; not read"),
    ];
    let run = ctx.sync(&conf, &[]).expect_code(0);
    assert_eq!(warnings(&run), want, "{}", run.stderr);
    assert_keyspace(&ctx.dump(), &example_keyspace());
    // Also with --quiet, and on a run with nothing to do.
    let run = ctx.sync(&conf, &["--quiet"]).expect_code(0);
    assert_eq!(warnings(&run), want, "{}", run.stderr);
}

#[test]
fn python_layout_skips_other_object_types_with_a_warning() {
    let ctx = Ctx::new();
    let dir = ctx.path("py");
    ctx.write(
        "py/node/eqiad.yaml",
        "eqiad:\n  cache_text:\n    cp1052: [nginx]\n",
    );
    ctx.write("py/discovery/dnsdisc.yaml", "recdns: {}\n");
    ctx.write("py/mwconfig/x.yaml", "a: 1\n");
    let run = ctx.sync(&dir, &[]).expect_code(0);
    for t in ["discovery", "mwconfig"] {
        let want = format!(
            "conftool-sync: warning: {}/{t}: not read: another object type of the Python \
             conftool layout (the types its schema defines are not supported yet)\n",
            dir.display()
        );
        assert!(run.stderr.contains(&want), "{want}: {}", run.stderr);
    }
    assert_eq!(
        ctx.dump()["/v1/pools/eqiad/cache_text/nginx/cp1052"],
        r#"{"pooled":"inactive","weight":0}"#
    );
    // A typo in node/ is still an error.
    ctx.write(
        "py/node/codfw.yml",
        "codfw:\n  cache_text:\n    cp2001: [nginx]\n",
    );
    let before = ctx.state();
    let run = ctx.sync(&dir, &[]).expect_code(2);
    let want = format!(
        "{}/node/codfw.yml: YAML file not read: did you mean codfw.yaml?",
        dir.display()
    );
    assert!(run.stderr.contains(&want), "{}", run.stderr);
    assert_eq!(ctx.state(), before);
}

/// A repository whose `conf/` is the example, committed.
fn repo(ctx: &Ctx) -> std::path::PathBuf {
    let repo = ctx.path("repo");
    std::fs::create_dir_all(&repo).expect("mkdir");
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["config", "user.name", "Test"]);
    git(&repo, &["config", "user.email", "test@example.invalid"]);
    copy_dir(&example_conf(), &repo.join("conf"));
    git(&repo, &["add", "conf"]);
    git(&repo, &["commit", "-q", "-m", "conf"]);
    repo
}

#[test]
fn git_rev_judges_the_commit_alike() {
    let ctx = Ctx::new();
    let repo = repo(&ctx);
    let conf = repo.join("conf");
    let d = conf.display().to_string();
    ctx.sync(&conf, &["--git-rev", "HEAD"]).expect_code(0);
    let synced = ctx.state();

    // Committed mistakes (an empty directory is a placeholder in git); the work tree is
    // repaired before the sync, so only the commit can be the source of the errors.
    git(
        &repo,
        &["mv", "conf/codfw/pools.yaml", "conf/codfw/pools.yml"],
    );
    put_file(&conf, "eqiad/notes.yaml", "todo: [mw1023]\n");
    put_file(&conf, "esams/.gitkeep", "");
    git(&repo, &["add", "conf"]);
    git(&repo, &["commit", "-q", "-m", "mistakes"]);
    mv(&conf, "codfw/pools.yml", "codfw/pools.yaml");
    std::fs::remove_file(conf.join("eqiad/notes.yaml")).expect("rm");
    std::fs::remove_dir_all(conf.join("esams")).expect("rm -r");
    let run = ctx
        .sync(&conf, &[&["--git-rev", "HEAD"][..], NO_LIMITS].concat())
        .expect_code(2);
    for want in [
        format!("error: {d}: 3 entries would not be read:\n"),
        format!("  {d}/codfw/pools.yml: YAML file not read: did you mean pools.yaml?\n"),
        format!("  {d}/eqiad/notes.yaml: YAML file not read: only pools.yaml is read"),
        format!("  {d}/esams: empty directory without pools.yaml"),
    ] {
        assert!(run.stderr.contains(&want), "{want}: {}", run.stderr);
    }
    assert_eq!(ctx.state(), synced);
    // The work tree is fine: nothing pending from it.
    ctx.sync(&conf, &["--check"]).expect_code(0);

    // A committed README: a warning from the commit, and the sync goes on. An untracked file
    // in the work tree is not the commit's, so it says nothing.
    put_file(&conf, "README.md", "# pool data\n");
    git(&repo, &["add", "-A", "conf"]);
    git(&repo, &["commit", "-q", "-m", "fixed, with a README"]);
    put_file(&conf, "untracked.txt", "scratch\n");
    let run = ctx.sync(&conf, &["--git-rev", "HEAD"]).expect_code(0);
    let warnings: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("warning"))
        .collect();
    assert_eq!(
        warnings,
        [format!(
            "conftool-sync: warning: {d}/README.md: not a data file; not read"
        )],
        "{}",
        run.stderr
    );
    let head = git(&repo, &["rev-parse", "HEAD"]).trim().to_string();
    let mut expected = example_keyspace();
    expected.insert(
        META.into(),
        format!(r#"{{"datacenters":["codfw","eqiad"],"git_rev":"{head}"}}"#),
    );
    assert_keyspace(&ctx.dump(), &expected);
}

#[test]
fn the_diff_and_the_summaries_tell_every_write() {
    let ctx = Ctx::new();
    let repo = repo(&ctx);
    let conf = repo.join("conf");
    let first = git(&repo, &["rev-parse", "HEAD"]).trim().to_string();
    let record = |sha: &str| format!(r#"{{"datacenters":["codfw","eqiad"],"git_rev":"{sha}"}}"#);

    let run = ctx.sync(&conf, &["--git-rev", "HEAD"]).expect_code(0);
    assert!(
        run.stderr.contains(
            "Plan: 53 objects to create, 0 objects to delete, 9 service definitions to write \
             or delete, the labels of 27 nodes to write or delete, the sync record to create \
             (90 writes).\n"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(
            ": created 53 objects, deleted 0 objects, wrote 9 service definitions, the labels \
             of 27 nodes and the sync record; etcd revision"
        ),
        "{}",
        run.stderr
    );

    // A commit that changes nothing under conf/: only the record, old and new both shown.
    ctx.write("repo/README", "data\n");
    git(&repo, &["add", "README"]);
    git(&repo, &["commit", "-q", "-m", "readme"]);
    let second = git(&repo, &["rev-parse", "HEAD"]).trim().to_string();
    let before = ctx.state();
    let run = ctx
        .sync(&conf, &["--git-rev", "HEAD", "--dry-run"])
        .expect_code(0);
    let rev = before.1;
    let etcd = format!("etcd {} (revision {rev})", ctx.etcd.endpoints_arg());
    assert_eq!(
        run.stdout,
        format!(
            "--- {etcd}\n+++ {} at {second}\n@@ -1 +1 @@\n-{META} {}\n+{META} {}\n",
            conf.display(),
            record(&first),
            record(&second)
        )
    );
    assert!(
        run.stderr.contains(
            "Plan: 0 objects to create, 0 objects to delete, 0 service definitions to write or \
             delete, the sync record to update (1 write).\n"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(ctx.state(), before);
    let run = ctx.sync(&conf, &["--git-rev", "HEAD"]).expect_code(0);
    assert!(
        run.stderr.contains(&format!(
            ": created 0 objects, deleted 0 objects, wrote 0 service definitions and the sync \
             record; etcd revision {} (1 round).\n",
            rev + 1
        )),
        "{}",
        run.stderr
    );
    assert_eq!(ctx.dump()[META], record(&second));

    // One node removed: its deletion beside the record's change, which no longer reads like
    // a rename, and both counted.
    let pools = std::fs::read_to_string(conf.join("eqiad/pools.yaml")).expect("read");
    std::fs::write(
        conf.join("eqiad/pools.yaml"),
        pools
            .replace(
                "  cp1055: {services: [nginx, varnish-fe, varnish-be], labels: {rack: D3, row: D}}\n",
                "",
            )
            .replace(
                "  mw1022: {services: [apache],",
                "  mw1022: {services: [],",
            ),
    )
    .expect("write");
    git(&repo, &["commit", "-q", "-am", "cp1055 and mw1022 out"]);
    let third = git(&repo, &["rev-parse", "HEAD"]).trim().to_string();
    let run = ctx
        .sync(
            &conf,
            &["--git-rev", "HEAD", "--allow-delete-pooled", "--check"],
        )
        .expect_code(3);
    let cp1055: Vec<String> = ["nginx", "varnish-be", "varnish-fe"]
        .iter()
        .map(|s| {
            format!("-/v1/pools/eqiad/cache_text/{s}/cp1055 {{\"pooled\":\"no\",\"weight\":10}}\n")
        })
        .collect();
    for want in [
        format!("\n-{META} {}\n", record(&second)),
        format!("\n+{META} {}\n", record(&third)),
        "-/v1/pools/eqiad/appservers/apache/mw1022 {\"pooled\":\"yes\",\"weight\":1}\n".into(),
        // cp1055's labels go with it; mw1022 stays declared, with its labels.
        "-/v1/labels/eqiad/cp1055 {\"rack\":\"D3\",\"row\":\"D\"}\n".into(),
    ]
    .iter()
    .chain(&cp1055)
    {
        assert!(run.stdout.contains(want.as_str()), "{want}: {}", run.stdout);
    }
    assert!(
        run.stderr.contains(
            "Plan: 0 objects to create, 4 objects to delete, 0 service definitions to write or \
             delete, the labels of 1 node to write or delete, the sync record to update (6 \
             writes).\n"
        ),
        "{}",
        run.stderr
    );
    let run = ctx
        .sync(&conf, &["--git-rev", "HEAD", "--allow-delete-pooled"])
        .expect_code(0);
    assert!(
        run.stderr.contains(
            ": created 0 objects, deleted 4 objects, wrote 0 service definitions, the labels of \
             1 node and the sync record;"
        ),
        "{}",
        run.stderr
    );
}
