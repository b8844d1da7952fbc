//! `conftool`: see [`conftool_cli::commands::conftool`].
use clap::Parser;
use conftool_cli::commands::conftool::{run, ConftoolArgs};

fn main() -> std::process::ExitCode {
    if let Some(code) = conftool_cli::docs::maybe_generate::<ConftoolArgs>() {
        return std::process::ExitCode::from(code);
    }
    let args = ConftoolArgs::parse();
    conftool_cli::exit::run("conftool", run(args))
}
