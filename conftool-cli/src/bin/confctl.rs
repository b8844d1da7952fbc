//! `confctl`: see [`conftool_cli::commands::confctl`].
use conftool_cli::commands::confctl::{run, ConfctlArgs};

fn main() -> std::process::ExitCode {
    conftool_cli::exit::main::<ConfctlArgs, _, _>("confctl", run)
}
