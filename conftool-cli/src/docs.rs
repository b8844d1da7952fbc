//! Shell completions and man pages, generated from the clap definitions:
//! `BINARY --completions bash|zsh|fish|elvish|powershell` and `BINARY --man`.

use std::io::Write;

use clap::CommandFactory;

/// If the arguments ask for completions or a man page, write it to stdout and return the
/// exit code; otherwise `None`. Checked before normal parsing, so required arguments do not
/// get in the way.
pub fn maybe_generate<T: CommandFactory>() -> Option<u8> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut cmd = T::command();
    let name = cmd.get_name().to_string();
    match args.first().map(String::as_str) {
        Some("--completions") => {
            let Some(shell) = args
                .get(1)
                .and_then(|s| s.parse::<clap_complete::Shell>().ok())
            else {
                eprintln!(
                    "{name}: --completions needs a shell: bash, zsh, fish, elvish or powershell"
                );
                return Some(crate::exit::BAD_INPUT);
            };
            clap_complete::generate(shell, &mut cmd, name, &mut std::io::stdout());
            Some(crate::exit::OK)
        }
        Some("--man") => {
            let mut buf = Vec::new();
            if clap_mangen::Man::new(cmd).render(&mut buf).is_err() {
                return Some(crate::exit::FAILURE);
            }
            let _ = std::io::stdout().write_all(&buf);
            Some(crate::exit::OK)
        }
        _ => None,
    }
}
