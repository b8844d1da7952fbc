//! `conftool-sync --git-rev`: the committed tree is synced, never the working tree.

use crate::util::*;

const META: &str = "/v1/meta/sync";
const MW1023: &str = "/v1/pools/eqiad/appservers/apache/mw1023";

fn meta(sha: &str) -> String {
    format!(r#"{{"datacenters":["codfw","eqiad"],"git_rev":"{sha}"}}"#)
}

/// A repository with a first commit that has no conf/ and a second that adds the example.
fn repo(ctx: &Ctx) -> std::path::PathBuf {
    let repo = ctx.path("repo");
    std::fs::create_dir_all(&repo).expect("mkdir");
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["config", "user.name", "Test"]);
    git(&repo, &["config", "user.email", "test@example.invalid"]);
    ctx.write("repo/README", "data\n");
    git(&repo, &["add", "README"]);
    git(&repo, &["commit", "-q", "-m", "readme"]);
    copy_dir(&example_conf(), &repo.join("conf"));
    git(&repo, &["add", "conf"]);
    git(&repo, &["commit", "-q", "-m", "conf"]);
    repo
}

#[test]
fn git_rev_syncs_the_commit_not_the_working_tree() {
    let ctx = Ctx::new();
    let repo = repo(&ctx);
    let conf = repo.join("conf");
    let head = git(&repo, &["rev-parse", "HEAD"]).trim().to_string();
    assert_eq!(head.len(), 40);

    // Uncommitted edits: a new node, and a broken services.yaml.
    let pools = std::fs::read_to_string(conf.join("eqiad/pools.yaml")).unwrap();
    let with_mw1023 = pools.replace(
        "  mw1022: {services: [apache], labels: {rack: A2, row: A}}\n",
        "  mw1022: {services: [apache], labels: {rack: A2, row: A}}\n  mw1023: {services: [apache]}\n",
    );
    assert_ne!(pools, with_mw1023);
    std::fs::write(conf.join("eqiad/pools.yaml"), &with_mw1023).unwrap();
    let services = std::fs::read_to_string(conf.join("services.yaml")).unwrap();
    std::fs::write(conf.join("services.yaml"), "this: [is: not valid\n").unwrap();

    ctx.sync(&conf, &["--git-rev", "HEAD"]).expect_code(0);
    let mut expected = read_keyspace(&fixtures().join("example-keyspace.txt"));
    expected.insert(META.into(), meta(&head));
    assert_keyspace(&ctx.dump(), &expected);

    // The same revision again: nothing written, not even the record.
    let synced = ctx.state();
    let run = ctx.sync(&conf, &["--git-rev", "HEAD"]).expect_code(0);
    assert!(run.stderr.contains("Nothing to do"), "{}", run.stderr);
    assert_eq!(ctx.state(), synced);
    // A relative --directory, from the repository's root and from inside it.
    for (cwd, dir) in [(repo.clone(), "conf"), (conf.join("eqiad"), "..")] {
        let out = ctx
            .cmd("conftool-sync")
            .current_dir(&cwd)
            .args(["--directory", dir, "--git-rev", "HEAD", "--check"])
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(0), "{dir}: {out:?}");
    }
    // A full sha and a branch name are the same revision.
    ctx.sync(&conf, &["--git-rev", &head]).expect_code(0);
    ctx.sync(&conf, &["--git-rev", "main"]).expect_code(0);
    assert_eq!(ctx.state(), synced);

    // Revisions that do not resolve, or predate the directory: bad input, nothing written.
    for (rev, why) in [
        ("no-such-branch", "no-such-branch"),
        (
            "0123456789abcdef0123456789abcdef01234567",
            "0123456789abcdef",
        ),
        ("HEAD~1", "does not exist at HEAD~1"),
    ] {
        let run = ctx.sync(&conf, &["--git-rev", rev]).expect_code(2);
        assert!(run.stderr.contains(why), "{rev}: {}", run.stderr);
        assert_eq!(ctx.state(), synced, "{rev}");
    }

    // The working tree (services.yaml repaired): the new node, and the record now says
    // that what is live matches no commit.
    std::fs::write(conf.join("services.yaml"), &services).unwrap();
    ctx.sync(&conf, &[]).expect_code(0);
    expected.insert(MW1023.into(), r#"{"pooled":"yes","weight":1}"#.into());
    expected.insert(
        META.into(),
        r#"{"datacenters":["codfw","eqiad"],"git_rev":null}"#.into(),
    );
    assert_keyspace(&ctx.dump(), &expected);

    // Committing the edit and syncing that commit only updates the record.
    git(&repo, &["commit", "-q", "-am", "add mw1023"]);
    let head2 = git(&repo, &["rev-parse", "HEAD"]).trim().to_string();
    let rev = ctx.revision();
    ctx.sync(&conf, &["--git-rev", "HEAD"]).expect_code(0);
    expected.insert(META.into(), meta(&head2));
    assert_keyspace(&ctx.dump(), &expected);
    assert_eq!(ctx.revision(), rev + 1);

    // Going back to the first commit removes mw1023 (pooled=yes, so it must be allowed).
    ctx.sync(&conf, &["--git-rev", &head]).expect_code(2);
    ctx.sync(&conf, &["--git-rev", &head, "--allow-delete-pooled"])
        .expect_code(0);
    expected.remove(MW1023);
    expected.insert(META.into(), meta(&head));
    assert_keyspace(&ctx.dump(), &expected);
}

#[test]
fn git_rev_errors_name_the_file_and_line() {
    let ctx = Ctx::new();
    let repo = repo(&ctx);
    let conf = repo.join("conf");
    ctx.sync(&conf, &["--git-rev", "HEAD"]).expect_code(0);
    let synced = ctx.state();

    // A committed mistake (the working tree is fine): reported from the commit.
    let good = std::fs::read_to_string(conf.join("eqiad/pools.yaml")).unwrap();
    std::fs::write(
        conf.join("eqiad/pools.yaml"),
        good.replace(
            "mw1019: {services: [apache, nginx],",
            "mw1019: {services: [apache, ngnix],",
        ),
    )
    .unwrap();
    git(&repo, &["commit", "-q", "-am", "typo"]);
    std::fs::write(conf.join("eqiad/pools.yaml"), &good).unwrap();
    let run = ctx.sync(&conf, &["--git-rev", "HEAD"]).expect_code(2);
    let want = format!("{}:13:", conf.join("eqiad/pools.yaml").display());
    assert!(
        run.stderr.contains(&want) && run.stderr.contains("service ngnix is not defined"),
        "want {want}: {}",
        run.stderr
    );
    assert_eq!(ctx.state(), synced);
    // The working tree is fine and equal to what is synced: nothing pending, and the
    // record still names the commit that matches what is live.
    ctx.sync(&conf, &["--check"]).expect_code(0);
    assert_eq!(ctx.state(), synced);
}

/// What held up when attacked, kept: libgit2 refuses a repository owned by another user,
/// as git does (a merge request's checkout cannot configure what root runs).
#[test]
fn a_repository_owned_by_another_user_is_refused() {
    let ctx = Ctx::new();
    let repo = repo(&ctx);
    let before = ctx.state();
    let chown = std::process::Command::new("chown")
        .args(["-R", "nobody"])
        .arg(&repo)
        .status()
        .expect("chown");
    assert!(chown.success());
    let run = ctx.sync(&repo.join("conf"), &["--git-rev", "HEAD"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("not owned by current user"), "{run:?}");
    assert_eq!(ctx.state(), before);
}
