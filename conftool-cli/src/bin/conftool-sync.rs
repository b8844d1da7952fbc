//! `conftool-sync`: see [`conftool_cli::commands::sync`].
use clap::Parser;
use conftool_cli::commands::sync::{run, SyncArgs};

fn main() -> std::process::ExitCode {
    let args = SyncArgs::parse();
    conftool_cli::exit::run("conftool-sync", run(args))
}
