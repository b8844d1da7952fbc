use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use super::*;

const NOBODY: u32 = 65534;

fn nobody() -> Privilege {
    Privilege::Sudo {
        uid: NOBODY,
        gid: Some(NOBODY),
    }
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn chown(p: &Path, uid: u32) {
    nix::unistd::chown(p, Some(nix::unistd::Uid::from_raw(uid)), None).unwrap();
}

/// A link's own owner (not its target's).
fn lchown(p: &Path, uid: u32) {
    nix::unistd::fchownat(
        nix::fcntl::AT_FDCWD,
        p,
        Some(nix::unistd::Uid::from_raw(uid)),
        None,
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .unwrap();
}

fn write(p: &Path, text: &str, mode: u32) {
    std::fs::write(p, text).unwrap();
    chmod(p, mode);
}

/// A root-owned directory others may search, under the test's temp dir.
fn world() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    chmod(dir.path(), 0o755);
    dir
}

#[test]
fn who_the_process_runs_for() {
    let d = Privilege::decide;
    assert_eq!(d((0, 0), 0, (None, None)), Privilege::Root);
    assert_eq!(d((1000, 1000), 1000, (None, None)), Privilege::User);
    // sudo to root, and sudo to a service account: both run for the person.
    let alice = Privilege::Sudo {
        uid: 1000,
        gid: Some(1000),
    };
    assert_eq!(d((0, 0), 0, (Some(1000), Some(1000))), alice);
    assert_eq!(d((999, 999), 999, (Some(1000), Some(1000))), alice);
    // sudo -u oneself, or root's own SUDO_UID=0: for no one else.
    assert_eq!(d((1000, 1000), 1000, (Some(1000), None)), Privilege::User);
    assert_eq!(d((0, 0), 0, (Some(0), None)), Privilege::Root);
    // Real and effective users differ (a set-user-id run): the real user is the caller,
    // whatever the environment says.
    assert_eq!(
        d((1000, 50), 0, (Some(7), Some(7))),
        Privilege::Sudo {
            uid: 1000,
            gid: Some(50)
        }
    );
    assert!(alice.is_sudo() && !Privilege::Root.is_sudo());
    assert_eq!(Privilege::User.caller(), None);
}

#[test]
fn bounded_reads_refuse_big_and_special_files() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("pw");
    std::fs::write(&f, "secret\n").unwrap();
    assert_eq!(read_bounded(&f, 7, "password file").unwrap(), b"secret\n");
    let err = read_bounded(&f, 6, "password file").unwrap_err();
    assert_eq!(
        err.to_string(),
        "bigger than the 6 bytes a password file may be"
    );
    assert!(matches!(
        read_bounded(dir.path(), 10, "x"),
        Err(ReadError::NotAFile)
    ));
    let fifo = dir.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    assert!(matches!(
        read_bounded(&fifo, 10, "x"),
        Err(ReadError::NotAFile)
    ));
    assert!(matches!(
        read_bounded(Path::new("/dev/zero"), 10, "x"),
        Err(ReadError::NotAFile)
    ));
    assert_eq!(size(4096), "4 KiB");
    assert_eq!(size(1 << 20), "1 MiB");
    assert_eq!(size(1000), "1000 bytes");
}

#[test]
fn system_files_are_roots_alone() {
    if !nix::unistd::geteuid().is_root() {
        return; // ownership cannot be arranged without root
    }
    let dir = tempfile::tempdir().unwrap(); // root-owned 0700 under sticky /tmp
    let f = dir.path().join("config.yaml");
    write(&f, "timeout: 5s\n", 0o644);
    assert!(system_file(&f).is_ok());
    chmod(&f, 0o666);
    assert!(system_file(&f)
        .unwrap_err()
        .to_string()
        .contains("writable by group or others"));
    chmod(&f, 0o644);
    chown(&f, NOBODY);
    assert!(system_file(&f)
        .unwrap_err()
        .to_string()
        .contains("owned by uid 65534"));
    chown(&f, 0);
    // A directory others may write to (not sticky) above it.
    chmod(dir.path(), 0o777);
    assert!(system_file(&f)
        .unwrap_err()
        .to_string()
        .contains("writable by group or others"));
    chmod(dir.path(), 0o755);
    // Readable by the caller: by the bits that apply to them.
    assert!(caller_can_read(&f, NOBODY, None));
    chmod(&f, 0o600);
    assert!(!caller_can_read(&f, NOBODY, None));
    assert!(caller_can_read(&f, 0, None));
    chmod(&f, 0o640);
    assert!(!caller_can_read(&f, NOBODY, None));
    assert!(caller_can_read(&f, NOBODY, Some(0)));
    // A directory on the way the caller may not search.
    chmod(&f, 0o644);
    chmod(dir.path(), 0o700);
    assert!(!caller_can_read(&f, NOBODY, None));
}

#[test]
fn links_are_followed_only_where_root_alone_controls_them() {
    if !nix::unistd::geteuid().is_root() {
        return;
    }
    let w = world();
    let etc = w.path().join("etc");
    std::fs::create_dir(&etc).unwrap();
    chmod(&etc, 0o755);
    let real = etc.join("real.yaml");
    write(&real, "ok\n", 0o644);
    // Root's link in root's directory, relative or absolute, through `..` too: followed.
    std::os::unix::fs::symlink("real.yaml", etc.join("rel")).unwrap();
    std::os::unix::fs::symlink(&real, etc.join("abs")).unwrap();
    std::os::unix::fs::symlink("../etc/./real.yaml", etc.join("up")).unwrap();
    for l in ["rel", "abs", "up"] {
        assert!(system_file(&etc.join(l)).is_ok(), "{l}");
        let c = read_file(&etc.join(l), &nobody(), Origin::Caller, 10, "x").unwrap();
        assert_eq!(c.bytes, b"ok\n", "{l}");
    }
    // A link someone else owns, even in root's directory: refused, named.
    let theirs = etc.join("theirs");
    std::os::unix::fs::symlink(&real, &theirs).unwrap();
    lchown(&theirs, NOBODY);
    let e = read_file(&theirs, &nobody(), Origin::Caller, 10, "x").unwrap_err();
    assert!(
        matches!(&e, ReadError::Link { at } if *at == theirs),
        "{e:?}"
    );
    assert!(e.to_string().contains("symbolic link"), "{e}");
    // Root's link in a directory the caller owns (they could replace it): refused.
    let home = w.path().join("home");
    std::fs::create_dir(&home).unwrap();
    chown(&home, NOBODY);
    std::os::unix::fs::symlink(&real, home.join("rc")).unwrap();
    assert!(matches!(
        read_file(&home.join("rc"), &nobody(), Origin::Caller, 10, "x"),
        Err(ReadError::Link { .. })
    ));
    // A directory link of the caller's on the way: refused too.
    std::os::unix::fs::symlink(&etc, home.join("d")).unwrap();
    lchown(&home.join("d"), NOBODY);
    assert!(matches!(
        read_file(
            &home.join("d/real.yaml"),
            &nobody(),
            Origin::Caller,
            10,
            "x"
        ),
        Err(ReadError::Link { .. })
    ));
    // Root's link in a sticky directory anyone may write to: others cannot replace it.
    let tmp = w.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    chmod(&tmp, 0o1777);
    std::os::unix::fs::symlink(&real, tmp.join("rootlink")).unwrap();
    assert!(system_file(&tmp.join("rootlink")).is_ok());
    // Running as oneself, links are one's own business.
    assert_eq!(
        read_file(&theirs, &Privilege::Root, Origin::Caller, 10, "x")
            .unwrap()
            .bytes,
        b"ok\n"
    );
}

#[test]
fn what_each_origin_requires_for_another_user() {
    if !nix::unistd::geteuid().is_root() {
        return;
    }
    let w = world();
    let secret = w.path().join("shadow");
    write(&secret, "root:SECRET\n", 0o600);
    let open = w.path().join("open.yaml");
    write(&open, "mine\n", 0o644);
    let read = |p: &Path, o: Origin| read_file(p, &nobody(), o, 100, "file");
    // The caller names a file they could not read: refused before a byte is read.
    let e = read(&secret, Origin::Caller).unwrap_err();
    assert!(
        matches!(&e, ReadError::NotForCaller(why) if why == "no permission to read it"),
        "{e:?}"
    );
    assert_eq!(read(&open, Origin::Caller).unwrap().quote, Quote::Content);
    // The system names it: read, but never quoted to them.
    let c = read(&secret, Origin::System).unwrap();
    assert_eq!(
        (c.bytes.as_slice(), c.quote),
        (&b"root:SECRET\n"[..], Quote::PlaceOnly)
    );
    // ... and only if it is root's alone.
    chown(&open, NOBODY);
    assert!(matches!(
        read(&open, Origin::System),
        Err(ReadError::NotSystem(why)) if why.contains("owned by uid 65534")
    ));
    // The caller's own file: theirs, whatever its mode.
    chmod(&open, 0o600);
    assert_eq!(
        read(&open, Origin::CallersOwn).unwrap().quote,
        Quote::Content
    );
    assert!(matches!(
        read(&secret, Origin::CallersOwn),
        Err(ReadError::NotForCaller(why)) if why.contains("owned by uid 0")
    ));
    // FIFOs and devices are refused at once (not opened, not read).
    let fifo = w.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o666)).unwrap();
    for p in [fifo.as_path(), Path::new("/dev/zero")] {
        for o in [Origin::Caller, Origin::System] {
            assert!(
                matches!(read(p, o), Err(ReadError::NotAFile)),
                "{p:?} {o:?}"
            );
        }
    }
    assert!(read(&w.path().join("absent"), Origin::Caller)
        .unwrap_err()
        .is_not_found());
    assert!(matches!(
        read(&open.join("x"), Origin::Caller),
        Err(ReadError::NotADirectory { .. })
    ));
    // Directories, however the path ends, are listed for a caller who may, and are no
    // files to read.
    let sub = w.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    let caller = nobody().caller().unwrap();
    for p in [
        sub.clone(),
        sub.join("."),
        sub.join("../sub"),
        w.path().join("sub/.."),
    ] {
        assert!(open_dir_for(&p, caller).is_ok(), "{p:?}");
        assert!(
            matches!(read(&p, Origin::Caller), Err(ReadError::NotAFile)),
            "{p:?}"
        );
    }
    chmod(&sub, 0o700);
    assert!(matches!(
        open_dir_for(&sub, caller),
        Err(ReadError::NotForCaller(why)) if why == "no permission to list the directory"
    ));
    let big = w.path().join("big");
    write(&big, &"x".repeat(101), 0o644);
    assert!(matches!(
        read(&big, Origin::Caller),
        Err(ReadError::TooBig { limit: 100, .. })
    ));
}

/// The check-then-open race of finding 3: a thread keeps swapping a file the caller may
/// read for a link to a root-only file (and back) while the reader reads it for the
/// caller, thousands of times. Whatever the interleaving, the root-only content is never
/// returned, and both sides of the swap were seen (so the race was really run).
#[test]
fn a_file_swapped_for_a_link_never_yields_what_it_points_to() {
    if !nix::unistd::geteuid().is_root() {
        return;
    }
    let w = world();
    let secret = w.path().join("shadow");
    write(&secret, "root:ROOT-ONLY-HASH:19000\n", 0o600);
    let home = w.path().join("home");
    std::fs::create_dir(&home).unwrap();
    chown(&home, NOBODY);
    let target = home.join("values.yaml");
    let stop = Arc::new(AtomicBool::new(false));
    let swaps = Arc::new(AtomicUsize::new(0));
    let swapper = {
        let (stop, swaps, home, target, secret) = (
            stop.clone(),
            swaps.clone(),
            home.clone(),
            target.clone(),
            secret.clone(),
        );
        std::thread::spawn(move || {
            let (file, link) = (home.join(".file"), home.join(".link"));
            while !stop.load(Ordering::Relaxed) {
                std::fs::write(&file, "CALLER-VALUE\n").unwrap();
                chown(&file, NOBODY);
                std::fs::rename(&file, &target).unwrap();
                std::os::unix::fs::symlink(&secret, &link).unwrap();
                lchown(&link, NOBODY);
                std::fs::rename(&link, &target).unwrap();
                swaps.fetch_add(2, Ordering::Relaxed);
            }
        })
    };
    let (mut read_file_ok, mut refused_link, mut reads) = (0, 0, 0);
    while reads < 2_000 || swaps.load(Ordering::Relaxed) < 2_000 {
        reads += 1;
        match read_file(&target, &nobody(), Origin::Caller, 1 << 10, "file") {
            Ok(c) => {
                assert_eq!(c.bytes, b"CALLER-VALUE\n");
                read_file_ok += 1;
            }
            Err(ReadError::Link { .. }) => refused_link += 1,
            Err(e) if e.is_not_found() => {}
            Err(e) => panic!("unexpected: {e}"),
        }
    }
    stop.store(true, Ordering::Relaxed);
    swapper.join().unwrap();
    assert!(
        read_file_ok > 0 && refused_link > 0,
        "both sides of the swap must be met: {read_file_ok} files, {refused_link} links in \
         {reads} reads"
    );
}
