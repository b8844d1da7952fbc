//! `conftool-lb-agent`: see [`conftool_cli::commands::lb_agent`].
use conftool_cli::commands::lb_agent::{run, LbAgentArgs};

fn main() -> std::process::ExitCode {
    conftool_cli::exit::main::<LbAgentArgs, _, _>("conftool-lb-agent", run)
}
