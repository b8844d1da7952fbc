//! `confctl`: select objects and get, set or delete them; pool/depool/drain/decommission a
//! host. Compatible with the Python confctl's syntax and output.

mod action_file;
mod coordination;
mod fleet_steps;
mod get;
mod group_report;
mod host;
mod maint;
mod namedef;
mod operation;
mod pipeline;
mod policy_run;
mod rolling;
mod run;
mod select;
mod tags;
mod typed;
mod upgrade;
mod verify;

use clap::{Parser, Subcommand};

use crate::connection::ConnArgs;
use crate::exit::BadInput;

/// Change pool state in etcd: select objects, show them, change them safely.
#[derive(Debug, Parser)]
#[command(
    name = "confctl",
    version,
    after_help = "Examples:\n  \
  confctl select 'dc=eqiad,cluster=appservers,name=mw10.*' get\n  \
  confctl select 'dc=eqiad,cluster=appservers,name=mw1018' set/pooled=no\n  \
  confctl select 'name=mw1018' set/pooled=yes:weight=10 --yes\n  \
  confctl --host select 'name=mw1018' set/pooled=no     # one host's objects: no question\n  \
  confctl --yaml select 'name=mw1018' get\n  \
  confctl tags dc=eqiad,cluster=appservers,service=apache --action get all\n  \
  echo y | confctl select 'cluster=cache_text,service=nginx' set/weight=0\n  \
  confctl depool --hostname mw1018 --service apache\n  \
  confctl pool                          # every pool this host (its FQDN) is in\n  \
  confctl --schema schema.yaml --object-type discovery select 'dnsdisc=api-rw' set/pooled=true\n  \
  confctl --object-type discovery tags dnsdisc=api-rw --action get all\n  \
  confctl --schema schema.yaml upgrade-schema --dry-run discovery\n\n\
Exit codes: 0 done, 1 runtime failure (etcd, permission, conflict, declined), 2 bad input\n\
(selector, action, flags; nothing written).\n\
Shell completions and a man page: confctl --completions bash|zsh|fish, confctl --man."
)]
pub struct ConfctlArgs {
    /// Print one JSON document for the whole result instead of the Python tool's lines.
    #[arg(long, global = true)]
    pub json: bool,

    /// Print `get` output as YAML (the Python tool's `--yaml`): for `tags ... get all` its
    /// exact dict, otherwise one document per object in the form of its JSON line.
    #[arg(long, global = true, conflicts_with = "json")]
    pub yaml: bool,

    /// The write is about one host: go ahead without asking when every selected object has
    /// the same name; refuse (exit 2, nothing written) when they do not.
    #[arg(long, global = true)]
    pub host: bool,

    /// Show on stderr what confctl reads: the etcd endpoints and namespace used, and for
    /// each selection the key prefix read, its revision and how many objects matched.
    #[arg(long, global = true)]
    pub debug: bool,

    /// With `select` and `tags`: do not ask for confirmation when a write matches more than one
    /// object (the other subcommands never ask). Also accepted after the subcommand.
    #[arg(long, short = 'y')]
    pub yes: bool,

    /// Quiet output.
    #[command(flatten)]
    pub quiet: crate::output::QuietArg,

    /// Why (for the audit trail).
    #[command(flatten)]
    pub reason: crate::commands::changes::ReasonArg,

    /// The object type to act on: `node` (pool objects, the default) or a type of the
    /// schema file (with `select`, `tags` and `upgrade-schema`).
    #[arg(long, global = true, value_name = "TYPE", default_value = "node")]
    pub object_type: String,

    /// The Python conftool's schema file, which defines object types beyond `node`.
    /// Default: /etc/conftool/schema.yaml if it exists.
    #[arg(long, global = true, value_name = "FILE")]
    pub schema: Option<std::path::PathBuf>,

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
    Select(select::SelectArgs),
    /// The Python tool's older mode: pick objects of one pool, TAGS (every tag literal:
    /// dc=DC,cluster=CLUSTER,service=SERVICE), by NAMEDEF (a node name, re:REGEX matched at
    /// the start of names, or all), and apply ACTION. Also spelled `confctl --tags TAGS`.
    /// With --object-type TYPE, TAGS gives every tag of TYPE ('' if it has none).
    #[command(
        long_flag = "tags",
        after_help = "Examples:\n  \
  confctl tags dc=eqiad,cluster=appservers,service=apache --action get mw1018\n  \
  confctl tags dc=eqiad,cluster=appservers,service=apache --action get all\n  \
  confctl tags dc=eqiad,cluster=appservers,service=apache --action set/pooled=no 're:mw101'\n  \
  confctl --tags dc=codfw,cluster=api,service=nginx --action get re:mw2 --action delete mw2001\n  \
  confctl --object-type dbsection tags datacenter=eqiad,section=s1 --action set/readonly=true db1001\n  \
  confctl --object-type flat tags '' --action get all"
    )]
    Tags(tags::TagsArgs),
    /// Set pooled=yes for a host (or several) in every pool it is in (or one service).
    /// Objects that are pooled=inactive stay inactive unless --include-inactive is given.
    #[command(
        after_help = "Examples:\n  confctl pool\n  confctl pool --hostname mw1018 --service apache\n  \
  confctl pool --hostname mw1018 --hostname mw1019 --dry-run\n  \
  confctl pool --hostname mw1018 --verify --verify-timeout 1m   # until every load balancer has it back"
    )]
    Pool(host::PoolArgs),
    /// Set pooled=no for a host (or a group: --hostname repeated, --hosts-file) in every
    /// pool it is in (or one service); inactive objects are left alone. A group is one plan,
    /// checked once against every pool's depool threshold: all or nothing (or --partial),
    /// recorded as an operation that `confctl operation end ID` undoes.
    #[command(
        after_help = "Examples:\n  confctl depool\n  confctl depool --hostname cp1052 --service varnish-fe\n  \
  confctl depool --hosts-file rack-b4.txt --dry-run\n  \
  confctl depool --hosts-file rack-b4.txt --reason 'T123 switch upgrade'\n  \
  confctl depool --hostname mw1018 --operation        # prints the operation id\n  \
  confctl depool --hostname mw1018 --verify --wait-sessions   # until every load balancer has it out"
    )]
    Depool(host::GuardedArgs),
    /// Set weight=0 for a host in every pool it is in (or one service): it stays pooled and
    /// takes no new traffic. Refused if it would leave a pool with fewer serving nodes than
    /// its depool threshold allows (a node of weight 0 does not serve).
    #[command(after_help = "Examples:\n  confctl drain --hostname mw1018")]
    Drain(host::GuardedArgs),
    /// Set pooled=inactive for a host in every pool it is in (or one service). Refused if it
    /// would leave a pool below its depool threshold.
    #[command(after_help = "Examples:\n  confctl decommission --hostname mw1018")]
    Decommission(host::GuardedArgs),
    /// Operations kept in etcd (group depools, depool-during, --operation): list them,
    /// show one, end one (restore what it changed, where nobody changed it since).
    #[command(
        after_help = "Examples:\n  confctl operation list\n  confctl operation show op-20261204-164223-3fa9c1\n  \
  confctl operation end op-20261204-164223-3fa9c1 --dry-run\n  \
  confctl operation end op-20261204-164223-3fa9c1"
    )]
    Operation(operation::OperationArgs),
    /// Leased locks that runs take per host and per pool: acquire one by hand (for --ttl),
    /// release it, list who holds what.
    #[command(after_help = "Examples:\n  confctl lock list\n  \
  confctl lock acquire host:mw1018.eqiad.wmnet --ttl 2h --reason 'T123 disk swap'\n  \
  confctl lock release host:mw1018.eqiad.wmnet")]
    Lock(coordination::LockArgs),
    /// The maintenance daemon's repair events (conftool-maintd): list them, show one,
    /// cancel one, acknowledge a ready one (its node goes back once it no longer reports
    /// the problem), forget a failed or cancelled one (the flow starts over if the problem
    /// persists).
    #[command(after_help = "Examples:\n  confctl maint list\n  \
  confctl maint show ev-20261204-164223-3fa9c1\n  \
  confctl maint ack ev-20261204-164223-3fa9c1 --reason 'T123 disk replaced'\n  \
  confctl maint cancel ev-20261204-164223-3fa9c1\n  \
  confctl maint forget ev-20261204-164223-3fa9c1")]
    Maint(maint::MaintArgs),
    /// The safe action on a host: its lock and its pools' locks, the stop switch checked, an
    /// operation opened and what is pooled depooled into it, verified (--verify), the
    /// command run; on success exactly that put back (and verified). A failing command
    /// leaves the host depooled and the operation open (exit 4; 5 on a timeout).
    #[command(
        after_help = "Examples:\n  confctl run --hostname mw1018 -- ssh mw1018 sudo systemctl restart php-fpm\n  \
  confctl run --hostname mw1018 --service apache --verify --timeout 5m -- ./restart.sh mw1018\n\n\
Exit codes: 0 done, 1 runtime failure (etcd, a lock busy, the stop switch, verification),\n\
2 bad input or refused by a depool threshold (nothing written), 4 the command failed, 5 it\n\
timed out (the host stays depooled, the operation open, unless --repool-on-failure)."
    )]
    Run(run::RunArgs),
    /// `run`'s safe action over the hosts a selector selects, in batches, as one operation:
    /// a depool the threshold refuses waits for capacity; stops after --max-failed failed
    /// hosts, when the stop switch is set, or on Ctrl-C (after the batch); a summary of what
    /// is still depooled at the end. Run again, it resumes.
    #[command(after_help = "Examples:\n  \
  confctl rolling 'dc=eqiad,cluster=appservers' --batch 25% --verify -- ssh {host} sudo systemctl restart php-fpm\n  \
  confctl rolling 'dc=eqiad,cluster=api_appserver,name=mw12.*' --batch 2 --max-failed 2 --sleep 30s -- ./restart {host}")]
    Rolling(rolling::RollingArgs),
    /// The stop switch: while it is set, automated runs do not start, and running ones stop
    /// after their current step.
    #[command(
        after_help = "Examples:\n  confctl stop set --reason 'incident 4711: hands off'\n  \
  confctl stop set --cluster appservers --reason 'deploy freeze'\n  confctl stop status\n  \
  confctl stop clear"
    )]
    Stop(coordination::StopArgs),
    /// After a schema change (a field added), give every object of a schema type the
    /// fields it lacks, with their defaults. Every object is validated first: invalid ones
    /// are listed and nothing is written (exit 2), unless --force (then they are left
    /// untouched) or --dry-run (writes nothing, shows what would be added).
    #[command(
        name = "upgrade-schema",
        after_help = "Examples:\n  \
  confctl --schema schema.yaml upgrade-schema --dry-run discovery\n  \
  confctl --schema schema.yaml --object-type discovery upgrade-schema\n  \
  confctl upgrade-schema --force mwconfig     # upgrade the valid ones, leave invalid ones alone"
    )]
    UpgradeSchema(upgrade::UpgradeArgs),
}

/// Run `confctl`.
pub async fn run(args: ConfctlArgs) -> anyhow::Result<u8> {
    let out = crate::output::Printer::new(args.quiet.quiet);
    if args.yes && !matches!(args.command, Command::Select(_) | Command::Tags(_)) {
        return Err(BadInput::msg(
            "--yes only applies to `select` and `tags` (pool, depool, drain and decommission \
             never ask); nothing written",
        ));
    }
    let opts = Opts {
        json: args.json,
        yaml: args.yaml,
        host: args.host,
        debug: args.debug,
        yes: args.yes
            || matches!(&args.command, Command::Select(s) if s.yes)
            || matches!(&args.command, Command::Tags(t) if t.yes),
        out,
        reason: args.reason.clone(),
        started: std::time::Instant::now(),
    };
    if let Command::UpgradeSchema(u) = &args.command {
        let name = u.type_name(&args.object_type)?;
        let schema = typed::load_schema(args.schema.as_deref())?;
        let ty = typed::object_type(schema.as_ref(), name)?;
        return upgrade::run(&args.conn, &opts, &ty, u).await;
    }
    if args.object_type != conftool_core::schema::NODE_TYPE {
        let schema = typed::load_schema(args.schema.as_deref())?;
        let ty = typed::object_type(schema.as_ref(), &args.object_type)?;
        return match &args.command {
            Command::Select(s) => pipeline::select(&typed::Typed(&ty), &args.conn, &opts, s).await,
            Command::Tags(t) => tags::run(&args.conn, &opts, t, Some(&ty)).await,
            _ => Err(BadInput::msg(format!(
                "only `select` and `tags` act on {} objects (pool, depool, drain and \
                 decommission act on node objects); nothing written",
                ty.name
            ))),
        };
    }
    use conftool_core::HostVerb as Verb;
    use host::Guard;
    match &args.command {
        Command::Select(s) => pipeline::select(&select::Nodes, &args.conn, &opts, s).await,
        Command::Tags(t) => tags::run(&args.conn, &opts, t, None).await,
        Command::Pool(p) => {
            let guard = Guard {
                include_inactive: p.include_inactive,
                allow_below_threshold: false,
            };
            host::run(&args.conn, &opts, Verb::Pool, &p.host, guard).await
        }
        Command::Depool(g) => host::run(&args.conn, &opts, Verb::Depool, &g.host, g.guard()).await,
        Command::Drain(g) => host::run(&args.conn, &opts, Verb::Drain, &g.host, g.guard()).await,
        Command::Decommission(g) => {
            host::run(&args.conn, &opts, Verb::Decommission, &g.host, g.guard()).await
        }
        Command::Operation(o) => operation::run(&args.conn, &opts, o).await,
        Command::Lock(l) => coordination::lock(&args.conn, &opts, l).await,
        Command::Maint(m) => maint::run(&args.conn, &opts, m).await,
        Command::Run(r) => run::run(&args.conn, &opts, r).await,
        Command::Rolling(r) => rolling::run(&args.conn, &opts, r).await,
        Command::Stop(s) => coordination::stop(&args.conn, &opts, s).await,
        Command::UpgradeSchema(_) => Err(BadInput::msg(
            "upgrade-schema needs a schema type; nothing written",
        )),
    }
}

/// Output options.
pub(crate) struct Opts {
    pub json: bool,
    /// `--yaml`: `get` prints YAML.
    pub yaml: bool,
    /// `--host`: a write is about one host's objects (see `pipeline::one_host`).
    pub host: bool,
    /// `--debug`: say on stderr what is read and done, and when.
    pub debug: bool,
    pub yes: bool,
    pub out: crate::output::Printer,
    pub reason: crate::commands::changes::ReasonArg,
    /// When confctl started: `--debug` lines say how long after.
    pub started: std::time::Instant,
}

impl Opts {
    /// `--debug`: a line on stderr (shown even with `--quiet`: it was asked for).
    pub(crate) fn debug(&self, msg: impl FnOnce() -> String) {
        if self.debug {
            crate::output::stderr_line(&format!(
                "confctl: debug: {} (+{:.1} ms)",
                msg(),
                self.started.elapsed().as_secs_f64() * 1000.0
            ));
        }
    }

    /// `--debug`: where confctl is connected, as whom, and where it audits.
    pub(crate) fn debug_connection(
        &self,
        cfg: &conftool_core::Config,
        store: &conftool_core::Store,
    ) {
        self.debug(|| {
            format!(
                "etcd {}, namespace {:?}, user {}, audit log {}",
                store.endpoints(),
                cfg.namespace,
                cfg.username.as_deref().unwrap_or("(none)"),
                cfg.audit_log
                    .as_deref()
                    .map_or("(none)".into(), |p| p.display().to_string())
            )
        });
    }
}
