//! `conftool-sync`: see [`conftool_cli::commands::sync`].
use clap::Parser;
use conftool_cli::commands::sync::{run, SyncArgs};

fn main() -> std::process::ExitCode {
    if let Some(code) = conftool_cli::docs::maybe_generate::<SyncArgs>() {
        return std::process::ExitCode::from(code);
    }
    let args = SyncArgs::parse();
    conftool_cli::exit::run("conftool-sync", run(args))
}
