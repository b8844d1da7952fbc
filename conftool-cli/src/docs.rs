//! Shell completions and man pages, generated from the clap definitions:
//! `BINARY --completions bash|zsh|fish|elvish|powershell`, `BINARY --man` (the binary's
//! page), `BINARY --man SUBCOMMAND` or `BINARY SUBCOMMAND --man` (e.g. `confctl-select(1)`,
//! which the main page refers to), and `BINARY --man-dir DIR` (every page, as files).
//!
//! `--man-dir` is the one option that writes files. It is refused (exit 2) when the process
//! runs for another user (sudo), who could otherwise have root write, or create
//! directories, anywhere; and it never writes through a symbolic link or into anything but
//! a regular file of its own, whoever runs it (see [`write_page`]).

use std::path::Path;

use clap::CommandFactory;

use crate::exit::{BAD_INPUT, FAILURE, OK};
use crate::output::{stderr_line, Printer};

/// What the arguments ask for, if they ask for documentation.
#[derive(Debug, PartialEq, Eq)]
enum Request {
    Completions(Option<String>),
    Man(Option<String>),
    ManDir(Option<String>),
}

fn request(args: &[String]) -> Option<Request> {
    let rest = |i: usize| args.get(i).cloned();
    match args {
        [first, ..] if first == "--completions" => Some(Request::Completions(rest(1))),
        [first, ..] if first == "--man" => Some(Request::Man(rest(1))),
        [first, ..] if first == "--man-dir" => Some(Request::ManDir(rest(1))),
        [sub, flag] if flag == "--man" && !sub.starts_with('-') => {
            Some(Request::Man(Some(sub.clone())))
        }
        _ => None,
    }
}

/// If the arguments ask for completions or a man page, write it and return the exit code;
/// otherwise `None`. Checked before normal parsing, so required arguments do not get in
/// the way.
pub fn maybe_generate<T: CommandFactory>() -> Option<u8> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let req = request(&args)?;
    let mut cmd = T::command().disable_help_subcommand(true);
    cmd.build();
    let name = cmd.get_name().to_string();
    let fail = |msg: String| {
        stderr_line(&format!("{name}: {msg}"));
        Some(BAD_INPUT)
    };
    let out = Printer::new(false);
    match req {
        Request::Completions(shell) => {
            let Some(shell) = shell.and_then(|s| s.parse::<clap_complete::Shell>().ok()) else {
                return fail(
                    "--completions needs a shell: bash, zsh, fish, elvish or powershell".into(),
                );
            };
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut cmd, name.clone(), &mut buf);
            out.text(&String::from_utf8_lossy(&buf));
            Some(OK)
        }
        Request::Man(sub) => {
            let page = match &sub {
                None => cmd,
                Some(s) => match cmd.find_subcommand(s) {
                    Some(c) => c.clone(),
                    None => {
                        let known: Vec<&str> =
                            cmd.get_subcommands().map(|c| c.get_name()).collect();
                        return fail(if known.is_empty() {
                            format!("--man takes no subcommand ({name} has none), not {s:?}")
                        } else {
                            format!(
                                "no subcommand {s:?}; man pages exist for: {}",
                                known.join(", ")
                            )
                        });
                    }
                },
            };
            let mut buf = Vec::new();
            if let Err(e) = clap_mangen::Man::new(page).render(&mut buf) {
                stderr_line(&format!("{name}: cannot render the man page: {e}"));
                return Some(FAILURE);
            }
            out.text(&String::from_utf8_lossy(&buf));
            Some(OK)
        }
        Request::ManDir(dir) => {
            let Some(dir) = dir else {
                return fail("--man-dir needs a directory".into());
            };
            if conftool_trust::Privilege::current().is_sudo() {
                // It writes files where the caller says: as root, anywhere.
                return fail(format!(
                    "--man-dir writes files, which is refused when running for another user \
                     (through sudo); run `{name} --man-dir {dir}` as yourself; nothing written"
                ));
            }
            match write_pages(cmd, Path::new(&dir)) {
                Ok(()) => Some(OK),
                Err(e) => {
                    stderr_line(&format!("{name}: cannot write man pages to {dir}: {e}"));
                    Some(FAILURE)
                }
            }
        }
    }
}

/// Every page of `cmd` (its subcommands', then its own), one file each in `dir` (created if
/// missing), never through a link: see [`write_page`].
fn write_pages(cmd: clap::Command, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub.clone(), dir)?;
    }
    let man = clap_mangen::Man::new(cmd);
    let mut page = Vec::new();
    man.render(&mut page)?;
    write_page(&dir.join(man.get_filename()), &page)
}

/// Write `text` to `path`: created if missing (`0644`), or replaced if it is a regular file
/// with one name; opened without following a link and without blocking, so a link, FIFO or
/// device planted under the page's name is refused and what it points to left alone.
fn write_page(path: &Path, text: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let refuse =
        |why: &str| std::io::Error::other(format!("{}: {why}; not written", path.display()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| {
            // (Creating over someone else's link in a sticky directory is EACCES, not ELOOP:
            // looked at again only to say what it is.)
            let link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
            match e.raw_os_error() {
                _ if link => refuse("a symbolic link, which is not followed"),
                Some(libc::ELOOP) => refuse("a symbolic link, which is not followed"),
                Some(libc::ENXIO) => refuse("not a regular file"),
                _ => e,
            }
        })?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(refuse("not a regular file"));
    }
    if meta.nlink() > 1 {
        return Err(refuse("a file with more than one name (hard links)"));
    }
    // Truncated only once it is known to be a plain file of its own.
    file.set_len(0)?;
    file.write_all(text)?;
    file.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn pages_are_never_written_through_a_link_or_into_a_special_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let precious = dir.path().join("precious");
        std::fs::write(&precious, "keep\n").expect("write");
        let why = |p: &Path| {
            write_page(p, b".TH X 1\n")
                .expect_err("refused")
                .to_string()
        };
        let link = dir.path().join("confctl-select.1");
        std::os::unix::fs::symlink(&precious, &link).expect("symlink");
        assert!(why(&link).contains("symbolic link"), "{}", why(&link));
        let dangling = dir.path().join("confctl-tags.1");
        std::os::unix::fs::symlink(dir.path().join("new"), &dangling).expect("symlink");
        assert!(why(&dangling).contains("symbolic link"));
        assert!(
            !dir.path().join("new").exists(),
            "no file created through a link"
        );
        let hard = dir.path().join("confctl-pool.1");
        std::fs::hard_link(&precious, &hard).expect("link");
        assert!(why(&hard).contains("more than one name"));
        let fifo = dir.path().join("confctl-drain.1");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
        assert!(why(&fifo).contains("not a regular file"), "{}", why(&fifo));
        assert_eq!(std::fs::read_to_string(&precious).expect("read"), "keep\n");
        // The control: a regular file of its own is replaced, a missing one created.
        let page = dir.path().join("confctl.1");
        std::fs::write(&page, "an older, longer page\n").expect("write");
        write_page(&page, b".TH X 1\n").expect("written");
        assert_eq!(std::fs::read_to_string(&page).expect("read"), ".TH X 1\n");
        write_page(&dir.path().join("confctl-depool.1"), b"x").expect("created");
    }

    #[test]
    fn recognises_every_documentation_form_and_nothing_else() {
        assert_eq!(request(&args(&["--man"])), Some(Request::Man(None)));
        assert_eq!(
            request(&args(&["--man", "select"])),
            Some(Request::Man(Some("select".into())))
        );
        assert_eq!(
            request(&args(&["select", "--man"])),
            Some(Request::Man(Some("select".into())))
        );
        assert_eq!(
            request(&args(&["--completions", "bash"])),
            Some(Request::Completions(Some("bash".into())))
        );
        assert_eq!(
            request(&args(&["--man-dir", "/tmp/x"])),
            Some(Request::ManDir(Some("/tmp/x".into())))
        );
        assert_eq!(request(&args(&["select", "name=x", "get"])), None);
        assert_eq!(request(&args(&["--json", "--man"])), None);
        assert_eq!(request(&args(&[])), None);
    }
}
