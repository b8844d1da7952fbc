//! conftool-sync on a hostile checkout (CI syncs merge requests as root): links and special
//! files where data is read, files over the size limit, a directory that would delete every
//! service definition, stored values and file names that would forge output lines or reach
//! the terminal. Every refusal exits 2, names the path, shows nothing of a link's target, and
//! leaves etcd exactly as it was, revision included.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::util::*;

/// The safety limits lifted: what is refused here must be refused by itself.
const NO_LIMITS: &[&str] = &["--max-delete-share", "1", "--allow-delete-pooled"];
/// What a secret outside the checkout holds; it must never be printed.
const TOKEN: &str = "tok-7f3a9c1e5b2d4f60-SECRET";
/// How long a run may take before it is deemed stuck (a guard against hanging the suite,
/// not a timing assertion: a healthy run takes well under a second).
const STUCK: Duration = Duration::from_secs(60);

/// A synced example with dynamic state a mistake must not lose; returns the data directory
/// and the state.
fn synced(ctx: &Ctx) -> (PathBuf, (Keyspace, i64)) {
    let conf = ctx.copy_example("conf");
    ctx.sync(&conf, &[]).expect_code(0);
    ctx.put(
        "/v1/pools/eqiad/appservers/apache/mw1018",
        r#"{"pooled":"no","weight":3}"#,
    );
    (conf, ctx.state())
}

/// A file outside the checkout, holding the token as YAML that would otherwise be read (and
/// quoted in an error).
fn secret(ctx: &Ctx) -> PathBuf {
    ctx.write(
        "outside/secret.yaml",
        &format!("{TOKEN}:\n  x: {{services: [y]}}\n"),
    )
}

/// Replace `rel` under `dir` with a symbolic link to `target`.
fn link(dir: &Path, rel: &str, target: &Path) {
    let p = dir.join(rel);
    if p.exists() {
        std::fs::remove_file(&p).expect("rm");
    }
    std::os::unix::fs::symlink(target, &p).expect("symlink");
}

/// `conftool-sync --directory DIR ARGS...`, killed (and the test failed) if it has not
/// finished after [`STUCK`].
fn sync_bounded(ctx: &Ctx, dir: &Path, args: &[&str]) -> Run {
    let mut child = ctx
        .cmd("conftool-sync")
        .arg("--directory")
        .arg(dir)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn conftool-sync");
    let deadline = Instant::now() + STUCK;
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("reap");
            panic!(
                "conftool-sync {args:?} was still running after {STUCK:?} (blocked, or reading \
                 without end); stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Run::from(child.wait_with_output().expect("output"))
}

/// Check a refused run: exit 2, every `says` in stderr, no token or link target anywhere,
/// etcd unchanged. Returns what is wrong.
fn refused(ctx: &Ctx, run: &Run, before: &(Keyspace, i64), says: &[String]) -> Vec<String> {
    let mut wrong = Vec::new();
    if run.code != 2 {
        wrong.push(format!("exit {}", run.code));
    }
    for s in says {
        if !run.stderr.contains(s.as_str()) {
            wrong.push(format!("stderr lacks {s:?}"));
        }
    }
    for out in [&run.stdout, &run.stderr] {
        if out.contains(TOKEN) || out.contains("secret.yaml") || out.contains("/dev/zero") {
            wrong.push("a link's target or its content is shown".into());
        }
    }
    if &ctx.state() != before {
        wrong.push("etcd changed".into());
    }
    if !wrong.is_empty() {
        wrong.push(format!("stdout: {}\nstderr: {}", run.stdout, run.stderr));
    }
    wrong
}

const LINK: &str = "a symbolic link where a data file is expected: symbolic links are not \
                    followed; not read (make it a regular file)";
const SPECIAL: &str = "not a regular file (a FIFO, socket, device or git submodule) where a \
                       data file is expected; not read";

#[test]
fn links_and_special_files_in_the_work_tree_are_refused_without_reading_them() {
    let ctx = Ctx::new();
    let (conf, before) = synced(&ctx);
    let secret = secret(&ctx);
    let fifo_outside = ctx.path("outside/fifo");
    nix::unistd::mkfifo(&fifo_outside, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
    type Setup<'a> = Box<dyn Fn(&Path) + 'a>;
    let cases: Vec<(&str, Setup, Vec<String>)> = vec![
        (
            "eqiad/pools.yaml -> a secret",
            Box::new(|d: &Path| link(d, "eqiad/pools.yaml", &secret)),
            vec![format!(
                "error: {}/eqiad/pools.yaml: {LINK}",
                conf.display()
            )],
        ),
        (
            "services.yaml -> /dev/zero",
            Box::new(|d: &Path| link(d, "services.yaml", Path::new("/dev/zero"))),
            vec![format!("error: {}/services.yaml: {LINK}", conf.display())],
        ),
        (
            "codfw/pools.yaml -> a FIFO outside",
            Box::new(|d: &Path| link(d, "codfw/pools.yaml", &fifo_outside)),
            vec![format!(
                "error: {}/codfw/pools.yaml: {LINK}",
                conf.display()
            )],
        ),
        (
            "a FIFO in place of eqiad/pools.yaml",
            Box::new(|d: &Path| {
                std::fs::remove_file(d.join("eqiad/pools.yaml")).expect("rm");
                nix::unistd::mkfifo(&d.join("eqiad/pools.yaml"), nix::sys::stat::Mode::S_IRWXU)
                    .expect("mkfifo");
            }),
            vec![format!(
                "error: {}/eqiad/pools.yaml: {SPECIAL}",
                conf.display()
            )],
        ),
        (
            "all at once",
            Box::new(|d: &Path| {
                link(d, "eqiad/pools.yaml", &secret);
                link(d, "codfw/pools.yaml", Path::new("/dev/zero"));
            }),
            vec![
                format!("error: {}: 2 entries would not be read:\n", conf.display()),
                format!("  {}/codfw/pools.yaml: {LINK}\n", conf.display()),
                format!("  {}/eqiad/pools.yaml: {LINK}", conf.display()),
            ],
        ),
    ];
    let mut failures = Vec::new();
    for (name, setup, says) in &cases {
        // Each case on a fresh copy, at the same path (so messages are predictable).
        std::fs::remove_dir_all(&conf).expect("rm -r");
        copy_dir(&example_conf(), &conf);
        setup(&conf);
        for args in [&[][..], NO_LIMITS, &["--dry-run"][..]] {
            let run = sync_bounded(&ctx, &conf, args);
            for w in refused(&ctx, &run, &before, says) {
                failures.push(format!("[{name} {args:?}] {w}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A repository whose `conf/` is the example, committed.
fn repo(ctx: &Ctx) -> PathBuf {
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
fn git_rev_refuses_committed_links_and_never_parses_their_target() {
    let ctx = Ctx::new();
    let repo = repo(&ctx);
    let conf = repo.join("conf");
    ctx.sync(&conf, &["--git-rev", "HEAD"]).expect_code(0);
    let before = ctx.state();
    let secret = secret(&ctx);
    // Committed links: one to the secret, one whose target text is valid YAML for "no
    // objects" (read as data, it would delete codfw's objects).
    link(&conf, "eqiad/pools.yaml", &secret);
    link(&conf, "codfw/pools.yaml", Path::new("{}"));
    git(&repo, &["add", "-A", "conf"]);
    git(&repo, &["commit", "-q", "-m", "links"]);
    // The work tree repaired, so only the commit can be the source of the errors.
    git(
        &repo,
        &[
            "rm",
            "-q",
            "--cached",
            "conf/eqiad/pools.yaml",
            "conf/codfw/pools.yaml",
        ],
    );
    for dc in ["eqiad", "codfw"] {
        std::fs::remove_file(conf.join(dc).join("pools.yaml")).expect("rm");
        std::fs::copy(
            example_conf().join(dc).join("pools.yaml"),
            conf.join(dc).join("pools.yaml"),
        )
        .expect("copy");
    }
    let says = [
        format!("error: {}: 2 entries would not be read:\n", conf.display()),
        format!("  {}/codfw/pools.yaml: {LINK}\n", conf.display()),
        format!("  {}/eqiad/pools.yaml: {LINK}", conf.display()),
    ];
    let mut failures = Vec::new();
    for args in [&[][..], NO_LIMITS, &["--dry-run"][..]] {
        let args = [&["--git-rev", "HEAD"][..], args].concat();
        let run = sync_bounded(&ctx, &conf, &args);
        failures.extend(refused(&ctx, &run, &before, &says));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_data_file_over_the_size_limit_is_refused_in_both_modes() {
    let ctx = Ctx::new();
    let repo = repo(&ctx);
    let conf = repo.join("conf");
    ctx.sync(&conf, &["--git-rev", "HEAD"]).expect_code(0);
    let before = ctx.state();
    // One byte over 64 MiB, sparse: nothing is written to disk but the size.
    let limit = conftool_sync::MAX_FILE_SIZE;
    assert_eq!(limit, 64 << 20);
    let big = std::fs::File::create(conf.join("eqiad/pools.yaml")).expect("create");
    big.set_len(limit + 1).expect("set_len");
    drop(big);
    let says = [format!(
        "error: {}/eqiad/pools.yaml: 64.0 MiB (67108865 bytes) is more than the 64 MiB a data \
         file may be",
        conf.display()
    )];
    let mut failures = Vec::new();
    for args in [&[][..], NO_LIMITS] {
        let run = sync_bounded(&ctx, &conf, args);
        failures.extend(refused(&ctx, &run, &before, &says));
    }
    // The same file committed (zeros compress to almost nothing): refused by the blob's
    // header, before it is inflated.
    git(&repo, &["commit", "-q", "-am", "big"]);
    std::fs::copy(
        example_conf().join("eqiad/pools.yaml"),
        conf.join("eqiad/pools.yaml"),
    )
    .expect("copy");
    let run = sync_bounded(&ctx, &conf, &["--git-rev", "HEAD"]);
    failures.extend(refused(&ctx, &run, &before, &says));
    // Exactly at the limit is not refused for its size (it is not YAML, though), once the
    // cap on all files together leaves room for it.
    let at = std::fs::File::create(conf.join("eqiad/pools.yaml")).expect("create");
    at.set_len(limit).expect("set_len");
    drop(at);
    let run = sync_bounded(&ctx, &conf, &["--max-input-bytes", "65MiB"]);
    if run.code != 2
        || !run
            .stderr
            .contains("eqiad/pools.yaml:1:1: control characters")
    {
        failures.push(format!("at the limit: {}", run.stderr));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `/v1/services/<cluster>/<service>` with a definition.
fn service_key(ctx: &Ctx, cluster: &str, service: &str) {
    ctx.put(
        &format!("/v1/services/{cluster}/{service}"),
        r#"{"port":80,"default_values":{"pooled":"no","weight":1}}"#,
    );
}

#[test]
fn python_layout_without_services_yaml_deletes_no_service_definition() {
    let ctx = Ctx::new();
    for (c, s) in [
        ("cache_text", "nginx"),
        ("cache_text", "varnish-fe"),
        ("appservers", "apache"),
    ] {
        service_key(&ctx, c, s);
    }
    let services = ctx.dump();
    let dir = ctx.path("py");
    ctx.write(
        "py/node/eqiad.yaml",
        "eqiad:\n  cache_text:\n    cp1052: [nginx]\n",
    );
    for args in [&["--dry-run"][..], &[], NO_LIMITS] {
        let run = ctx.sync(&dir, args).expect_code(0);
        assert!(
            !run.stdout.contains("/v1/services/"),
            "{args:?}: {}",
            run.stdout
        );
        assert!(
            run.stderr
                .contains("0 service definitions to write or delete")
                || run.stderr.contains("Nothing to do"),
            "{args:?}: {}",
            run.stderr
        );
    }
    let mut expected = services.clone();
    expected.insert(
        "/v1/pools/eqiad/cache_text/nginx/cp1052".into(),
        r#"{"pooled":"inactive","weight":0}"#.into(),
    );
    expected.insert(
        "/v1/meta/sync".into(),
        r#"{"datacenters":["eqiad"],"git_rev":null}"#.into(),
    );
    assert_keyspace(&ctx.dump(), &expected);

    // With a services.yaml that defines nothing, the directory does manage them, and a
    // definition its objects still use is not deleted, whatever the limits.
    ctx.write("py/services.yaml", "{}\n");
    let before = ctx.state();
    let run = ctx.sync(&dir, NO_LIMITS).expect_code(2);
    assert!(
        run.stderr.contains(
            "error: refusing to sync: it would delete 1 service definition that objects \
             declared in the directory still use: cache_text/nginx (1 object); define it in \
             services.yaml, or remove those objects"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(ctx.state(), before);
}

#[test]
fn deleting_many_service_definitions_is_refused_unless_the_share_is_raised() {
    let ctx = Ctx::new();
    let (conf, _) = synced(&ctx);
    // Four definitions services.yaml does not declare (9 declared): 4 of 13 is 31%.
    for i in 1..=4 {
        service_key(&ctx, "retired", &format!("svc{i}"));
    }
    let before = ctx.state();
    for args in [&[][..], &["--allow-delete-pooled"], &["--dry-run"]] {
        let run = ctx.sync(&conf, args).expect_code(2);
        assert!(
            run.stderr.contains(
                "error: refusing to sync: it would delete 4 of 13 service definitions (31%), \
                 more than the allowed 25%: retired/svc1, retired/svc2, retired/svc3, \
                 retired/svc4; check services.yaml, or raise --max-delete-share if this is \
                 intended"
            ),
            "{args:?}: {}",
            run.stderr
        );
        assert_eq!(ctx.state(), before, "{args:?}");
    }
    ctx.sync(&conf, &["--max-delete-share", "0.3"])
        .expect_code(2);
    assert_eq!(ctx.state(), before);
    let run = ctx
        .sync(&conf, &["--max-delete-share", "0.5"])
        .expect_code(0);
    assert!(
        run.stderr
            .contains(": created 0 objects, deleted 0 objects, wrote 4 service definitions"),
        "{}",
        run.stderr
    );
    assert_eq!(ctx.count("/v1/services/retired/"), 0);
    assert_eq!(ctx.count("/v1/services/"), 9);
}

#[test]
fn stored_values_and_file_names_are_shown_with_control_characters_escaped() {
    let ctx = Ctx::new();
    let (conf, _) = synced(&ctx);
    // A hand-made object the directory does not declare (so the diff shows it as a
    // deletion), and a service definition it rewrites, both with hostile values.
    let hostile = "{\"pooled\":\"no\",\"weight\":1}\n+forged line\u{1b}]0;title\u{7}";
    ctx.put("/v1/pools/eqiad/appservers/apache/mw9999", hostile);
    ctx.put(
        "/v1/services/appservers/nginx",
        "{\"port\":443}\r\u{1b}[2J\u{9b}",
    );
    // A file name with an escape sequence: a warning.
    std::fs::write(conf.join("notes\u{1b}]0;x\u{7}.txt"), "x\n").expect("write");
    let before = ctx.state();
    let raw_controls = |run: &Run| {
        let out = format!("{}{}", run.stdout, run.stderr);
        out.chars().any(|c| c.is_control() && c != '\n')
    };
    // The unreadable value counts as pooled: allowed, to get to the diff.
    for args in [
        &["--dry-run", "--allow-delete-pooled"][..],
        &["--check", "--allow-delete-pooled"],
    ] {
        let run = ctx.sync(&conf, args);
        assert!(run.code == 0 || run.code == 3, "{args:?}: {run:?}");
        for want in [
            "\n-/v1/pools/eqiad/appservers/apache/mw9999 {\"pooled\":\"no\",\"weight\":1}\\n+forged \
             line\\x1b]0;title\\x07\n",
            "\n-/v1/services/appservers/nginx {\"port\":443}\\r\\x1b[2J\\u{9b}\n",
        ] {
            assert!(run.stdout.contains(want), "{args:?}: {want}\n{}", run.stdout);
        }
        assert!(
            !run.stdout.lines().any(|l| l.starts_with("+forged")),
            "{}",
            run.stdout
        );
        assert!(
            run.stderr.contains(&format!(
                "conftool-sync: warning: {}/notes\\x1b]0;x\\x07.txt: not a data file; not read",
                conf.display()
            )),
            "{}",
            run.stderr
        );
        assert!(!raw_controls(&run), "{run:?}");
        assert_eq!(ctx.state(), before);
    }
    // A file name in an error, which would forge a line of it.
    std::fs::write(conf.join("eqiad/x\n+forged.yaml"), "a: 1\n").expect("write");
    let run = ctx.sync(&conf, &[]).expect_code(2);
    assert!(
        run.stderr.contains(&format!(
            "error: {}/eqiad/x\\n+forged.yaml: YAML file not read",
            conf.display()
        )),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.lines().any(|l| l.starts_with("+forged")),
        "{}",
        run.stderr
    );
    assert!(!raw_controls(&run), "{run:?}");
    assert_eq!(ctx.state(), before);
}

/// Keys that are not well-formed object or service keys (a `..` or empty segment, a
/// lookalike letter, a control character, one segment too many) are never touched, shown or
/// counted, even by a run that deletes every object.
#[test]
fn malformed_keys_are_never_touched_even_when_everything_else_goes() {
    let ctx = Ctx::new();
    let (conf, _) = synced(&ctx);
    let foreign = [
        "/v1/pools/eqiad/appservers/apache/..",
        "/v1/pools/eqiad/appservers/../mw1018",
        "/v1/pools/eqiad//apache/mw1018",
        "/v1/pools/eqiad/appservers/apache/",
        "/v1/pools/eqiad/appservers/apache/mw1\u{41e}18",
        "/v1/pools/eqiad/appservers/apache/mw1018\u{1b}]0;x\u{7}",
        "/v1/pools/eqiad/appservers/apache/mw1018/extra",
        "/v1/services/appservers/..",
        "/v1/services/appservers/",
        "/v1/services/appservers/apache/extra",
        "/v1/services/appservers/ap\u{430}che",
    ];
    for k in foreign {
        ctx.put(k, "{\"pooled\":\"yes\",\"weight\":1}\n+forged\u{1b}[2J");
    }
    ctx.write("conf/eqiad/pools.yaml", "{}\n");
    ctx.write("conf/codfw/pools.yaml", "{}\n");
    let run = ctx.sync(&conf, NO_LIMITS).expect_code(0);
    assert!(
        run.stderr
            .contains("Plan: 0 objects to create, 53 objects to delete, 0 service definitions"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stdout.contains("forged") && !run.stderr.contains("forged"),
        "{run:?}"
    );
    let left = ctx.dump();
    for k in foreign {
        assert!(left.contains_key(k), "{k:?} was deleted");
    }
    assert_eq!(ctx.count("/v1/pools/"), 7);
    assert_eq!(ctx.count("/v1/services/"), 9 + 4);
}

/// libgit2 refuses a repository owned by another user (as git does): a checkout someone
/// else prepared is not read as root. Needs root to give the repository away.
#[test]
fn git_rev_refuses_a_repository_owned_by_another_user() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("not root: cannot give a repository to another user; nothing tested");
        return;
    }
    let ctx = Ctx::new();
    let repo = repo(&ctx);
    let conf = repo.join("conf");
    fn give_away(p: &Path) {
        std::os::unix::fs::lchown(p, Some(65534), Some(65534)).expect("chown");
        if p.is_dir() && !p.is_symlink() {
            for e in std::fs::read_dir(p).expect("read_dir") {
                give_away(&e.expect("entry").path());
            }
        }
    }
    give_away(&repo);
    let before = ctx.state();
    let run = ctx.sync(&conf, &["--git-rev", "HEAD"]).expect_code(2);
    assert!(
        run.stderr.contains(&format!(
            "error: git: {}: no git repository: repository path '{}' is not owned by current \
             user",
            conf.display(),
            repo.display()
        )),
        "{}",
        run.stderr
    );
    assert_eq!(ctx.state(), before);
}
