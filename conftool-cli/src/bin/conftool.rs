//! `conftool`: see [`conftool_cli::commands::conftool`].
use conftool_cli::commands::conftool::{run, ConftoolArgs};

fn main() -> std::process::ExitCode {
    conftool_cli::exit::main::<ConftoolArgs, _, _>("conftool", run)
}
