//! Shell completions and man pages, generated from the clap definitions:
//! `BINARY --completions bash|zsh|fish|elvish|powershell`, `BINARY --man` (the binary's
//! page), `BINARY --man SUBCOMMAND` or `BINARY SUBCOMMAND --man` (e.g. `confctl-select(1)`,
//! which the main page refers to), and `BINARY --man-dir DIR` (every page, as files).

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
            let written = std::fs::create_dir_all(&dir)
                .and_then(|()| clap_mangen::generate_to(T::command(), &dir));
            match written {
                Ok(()) => Some(OK),
                Err(e) => {
                    stderr_line(&format!("{name}: cannot write man pages to {dir}: {e}"));
                    Some(FAILURE)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
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
