//! `confctl`: see [`conftool_cli::commands::confctl`].
use clap::Parser;
use conftool_cli::commands::confctl::{run, ConfctlArgs};

fn main() -> std::process::ExitCode {
    if let Some(code) = conftool_cli::docs::maybe_generate::<ConfctlArgs>() {
        return std::process::ExitCode::from(code);
    }
    let args = ConfctlArgs::parse();
    conftool_cli::exit::run("confctl", run(args))
}
