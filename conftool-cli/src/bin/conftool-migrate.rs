//! `conftool-migrate`: see [`conftool_cli::commands::migrate`].
use conftool_cli::commands::migrate::{run, MigrateArgs};

fn main() -> std::process::ExitCode {
    conftool_cli::exit::main::<MigrateArgs, _, _>("conftool-migrate", run)
}
