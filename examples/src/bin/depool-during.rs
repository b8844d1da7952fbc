//! `depool-during`: depool a host from every pool it is in, run a command, then put back
//! exactly what it changed. Written against `conftool_core`'s public API alone, as a restart
//! script or a reboot manager would be.
//!
//! ```text
//! $ depool-during --endpoints http://127.0.0.1:2379 --hostname mw1018 -- systemctl restart php-fpm
//! operation op-20261204-164223-3fa9c1
//! depooled eqiad/appservers/apache/mw1018 (was pooled=yes)
//! ... the command runs ...
//! restored eqiad/appservers/apache/mw1018 pooled=yes
//! ```
//!
//! - It opens an **operation** in etcd before depooling, and every depool is recorded in it
//!   in the same transaction: killed at any point (SIGKILL included), the host can always be
//!   put back with `confctl operation end ID`, or by running the same command again, which
//!   resumes the open operation of this host instead of seeing it "already depooled".
//! - Depooling is the library's host verb: the depool threshold refuses it when the pools
//!   would be left too thin (nothing changed, the command is not run, exit 2); `inactive`
//!   objects are left alone; every write is in the audit log (`--config` names it).
//! - Restoring (ending the operation) puts back only what was depooled, and only where
//!   nobody changed it meanwhile: an object whose state is no longer what was written is
//!   left as it is, and said so (someone depooled it on purpose, or it was deleted).
//! - A command that fails leaves the host depooled and the operation open (exit code the
//!   command's), unless `--repool-on-failure`: a failed restart is not put back into traffic.
//!   Exit codes: the command's (1 if restoring failed; 2 for bad arguments or a refusal, when
//!   the command is not run; 127 if it cannot be started).

use conftool_core::Classify as _;
use std::process::ExitCode;

use conftool_core::{Actor, AuditLog, Config, HostVerb, NodeName, Service, Store};

const USAGE: &str = "usage: depool-during [--config FILE] [--endpoints URL[,URL...]] \
                     --hostname HOST [--service SERVICE] [--repool-on-failure] \
                     -- COMMAND [ARGS...]";

/// The operation kind, with the host as its subject: how a re-run finds what to resume.
const KIND: &str = "depool-during";

/// For the crash tests: with `DEPOOL_DURING_PAUSE_AT=<step>` (`start`, `opened`,
/// `depooled`, `restoring`) the program stops at that step, says so by creating the file
/// `DEPOOL_DURING_PAUSE_FILE`, and waits to be killed. Unset, nothing happens.
fn pause_at(step: &str) {
    if std::env::var("DEPOOL_DURING_PAUSE_AT").ok().as_deref() != Some(step) {
        return;
    }
    if let Some(f) = std::env::var_os("DEPOOL_DURING_PAUSE_FILE") {
        let _ = std::fs::write(f, step);
    }
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}

/// What the command line asked for.
struct Args {
    config: Config,
    host: NodeName,
    service: Option<Service>,
    repool_on_failure: bool,
    command: Vec<String>,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let (mut file, mut endpoints, mut host, mut service) = (None, None, None, None);
    let mut repool_on_failure = false;
    let mut command = Vec::new();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        let once = |slot: &Option<String>, name: &str| match slot {
            Some(_) => Err(format!("{name} given twice")),
            None => Ok(()),
        };
        match arg.as_str() {
            "--config" => file = Some(value("--config")?),
            "--endpoints" => endpoints = Some(value("--endpoints")?),
            "--hostname" => {
                once(&host, "--hostname")?;
                host = Some(value("--hostname")?);
            }
            "--service" => {
                once(&service, "--service")?;
                service = Some(value("--service")?);
            }
            "--repool-on-failure" => repool_on_failure = true,
            "--" => {
                command = args.by_ref().collect();
                break;
            }
            other => return Err(format!("unexpected argument {other:?}")),
        }
    }
    let mut config = match file {
        Some(f) => Config::load(f.as_ref()).map_err(|e| e.to_string())?,
        None => Config::default(),
    };
    if let Some(e) = endpoints.or_else(|| std::env::var("CONFTOOL_ENDPOINTS").ok()) {
        config.endpoints = e.split(',').map(str::to_string).collect();
    }
    let host = host.ok_or("--hostname is required")?;
    if command.is_empty() {
        return Err("no command given after --".into());
    }
    Ok(Args {
        config,
        host: host
            .parse()
            .map_err(|e: conftool_core::NameError| e.to_string())?,
        service: service
            .map(|s| s.parse())
            .transpose()
            .map_err(|e: conftool_core::NameError| e.to_string())?,
        repool_on_failure,
        command,
    })
}

async fn run(args: Args) -> Result<u8, (u8, String)> {
    let fail = |code: u8| move |e: conftool_core::Error| (code, e.to_string());
    let store = Store::connect(&args.config).await.map_err(fail(1))?;
    let actor = Actor::from_env("depool-during", args.config.username.clone());
    let audit = AuditLog::from_config(args.config.audit_log.as_deref());
    let mut writer = store.writer(&actor, &audit).map_err(fail(1))?;

    pause_at("start");
    // The operation first: from here on, whatever happens, it says what to put back.
    let mut subject = vec![args.host.to_string()];
    if let Some(s) = &args.service {
        subject.push(format!("service={s}"));
    }
    let (id, resumed) = writer
        .resume_or_open(KIND, subject)
        .await
        .map_err(fail(1))?;
    println!("operation {id}{}", if resumed { " (resumed)" } else { "" });
    pause_at("opened");
    let done = writer
        .host(
            HostVerb::Depool,
            std::slice::from_ref(&args.host),
            args.service.as_ref(),
        )
        .await;
    let done = match done {
        Ok(d) => d,
        Err(e) => {
            let code = if e.error.is_bad_input() { 2 } else { 1 };
            // Nothing was depooled by this run: a new operation has nothing to keep open.
            if !resumed {
                let _ = writer.end_operation(&id, false).await;
            }
            return Err((code, e.to_string()));
        }
    };
    for a in &done.applied {
        println!(
            "depooled {} (was pooled={})",
            a.change.key, a.change.before.pooled
        );
    }

    pause_at("depooled");
    let status = std::process::Command::new(&args.command[0])
        .args(&args.command[1..])
        .status();
    let code = match &status {
        Ok(s) => s.code().and_then(|c| u8::try_from(c).ok()).unwrap_or(1),
        Err(e) => {
            eprintln!("depool-during: cannot run {}: {e}", args.command[0]);
            127
        }
    };
    if code != 0 && !args.repool_on_failure {
        eprintln!(
            "depool-during: the command failed (exit {code}): the host stays depooled; put it \
             back with `confctl operation end {id}`, or run this again"
        );
        return Ok(code);
    }

    pause_at("restoring");
    // Put back what the operation changed, where it is still as it was left.
    let ended = writer.end_operation(&id, false).await.map_err(|e| {
        (
            1,
            format!("restoring failed: {e}; operation {id} stays open"),
        )
    })?;
    for (key, why) in &ended.left {
        println!("left {key}: {why}");
    }
    for a in &ended.restored {
        if let Some(after) = &a.change.after {
            println!("restored {} pooled={}", a.change.key, after.pooled);
        }
    }
    Ok(code)
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("depool-during: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("depool-during: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(run(args)) {
        Ok(code) => ExitCode::from(code),
        Err((code, msg)) => {
            eprintln!("depool-during: {msg}");
            ExitCode::from(code)
        }
    }
}
