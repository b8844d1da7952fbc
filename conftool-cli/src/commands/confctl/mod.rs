//! `confctl`: select objects and get, set or delete them; pool/depool/drain/decommission a
//! host. Compatible with the Python confctl's syntax and output.

mod host;
mod select;

use clap::{Parser, Subcommand};

use crate::connection::ConnArgs;

/// Change pool state in etcd: select objects, show them, change them safely.
#[derive(Debug, Parser)]
#[command(
    name = "confctl",
    version,
    after_help = "Examples:\n  \
  confctl select 'dc=eqiad,cluster=appservers,name=mw10.*' get\n  \
  confctl select 'dc=eqiad,cluster=appservers,name=mw1018' set/pooled=no\n  \
  confctl select 'name=mw1018' set/pooled=yes:weight=10 --yes\n  \
  echo y | confctl select 'cluster=cache_text,service=nginx' set/weight=0\n  \
  confctl depool --hostname mw1018 --service apache\n  \
  confctl pool                          # every pool this host (its FQDN) is in\n\n\
Exit codes: 0 done, 1 runtime failure (etcd, permission, conflict, declined), 2 bad input\n\
(selector, action, flags; nothing written).\n\
Shell completions and a man page: confctl --completions bash|zsh|fish, confctl --man."
)]
pub struct ConfctlArgs {
    /// Print one JSON document for the whole result instead of the Python tool's lines.
    #[arg(long, global = true)]
    pub json: bool,

    /// Do not ask for confirmation when a write matches more than one object.
    #[arg(long, short = 'y', global = true)]
    pub yes: bool,

    /// Print less (no informational lines on stderr).
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,

    /// Connection settings.
    #[command(flatten)]
    pub conn: ConnArgs,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// confctl's subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Select objects with SELECTOR (tag=regex,...; tags dc, cluster, service, name; each
    /// regex anchored at both ends) and apply ACTION (get, set/field=value[:field=value],
    /// delete).
    #[command(after_help = "Examples:\n  \
  confctl select 'dc=eqiad,cluster=appservers,name=mw10.*' get\n  \
  confctl select 'name=mw1018,service=apache' set/pooled=no:weight=5\n  \
  confctl select 'dc=codfw,name=mw2003' delete --yes")]
    Select {
        /// The selector, e.g. 'dc=eqiad,cluster=appservers,name=mw10.*'.
        selector: String,
        /// The action: get | set/pooled=yes|no|inactive[:weight=N] | delete.
        action: String,
    },
    /// Set pooled=yes for a host in every pool it is in (or one service). Objects that are
    /// pooled=inactive stay inactive unless --include-inactive is given.
    #[command(
        after_help = "Examples:\n  confctl pool\n  confctl pool --hostname mw1018 --service apache"
    )]
    Pool(host::HostArgs),
    /// Set pooled=no for a host in every pool it is in (or one service); inactive objects
    /// are left alone.
    #[command(
        after_help = "Examples:\n  confctl depool\n  confctl depool --hostname cp1052 --service varnish-fe"
    )]
    Depool(host::HostArgs),
    /// Set weight=0 for a host in every pool it is in (or one service).
    #[command(after_help = "Examples:\n  confctl drain --hostname mw1018")]
    Drain(host::HostArgs),
    /// Set pooled=inactive for a host in every pool it is in (or one service).
    #[command(after_help = "Examples:\n  confctl decommission --hostname mw1018")]
    Decommission(host::HostArgs),
}

/// Run `confctl`.
pub async fn run(args: ConfctlArgs) -> anyhow::Result<u8> {
    let out = crate::output::Printer::new(args.quiet);
    let opts = Opts {
        json: args.json,
        yes: args.yes,
        out,
    };
    match &args.command {
        Command::Select { selector, action } => {
            select::run(&args.conn, &opts, selector, action).await
        }
        Command::Pool(h) => host::run(&args.conn, &opts, host::Verb::Pool, h).await,
        Command::Depool(h) => host::run(&args.conn, &opts, host::Verb::Depool, h).await,
        Command::Drain(h) => host::run(&args.conn, &opts, host::Verb::Drain, h).await,
        Command::Decommission(h) => host::run(&args.conn, &opts, host::Verb::Decommission, h).await,
    }
}

/// Output options.
pub(crate) struct Opts {
    pub json: bool,
    pub yes: bool,
    pub out: crate::output::Printer,
}
