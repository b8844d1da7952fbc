//! `conftool-sync`: see [`conftool_cli::commands::sync`].
use conftool_cli::commands::sync::{run, SyncArgs};

fn main() -> std::process::ExitCode {
    conftool_cli::exit::main::<SyncArgs, _, _>("conftool-sync", run)
}
