//! `depool-during`: depool a host from every pool it is in, run a command, then put back
//! exactly what it changed. Written against `conftool_core`'s public API alone, as a restart
//! script or a reboot manager would be.
//!
//! ```text
//! $ depool-during --endpoints http://127.0.0.1:2379 --hostname mw1018 -- systemctl restart php-fpm
//! depooled eqiad/appservers/apache/mw1018 (was pooled=yes)
//! ... the command runs ...
//! restored eqiad/appservers/apache/mw1018 pooled=yes
//! ```
//!
//! - Depooling is the library's host verb: the depool threshold refuses it when the pools
//!   would be left too thin (nothing changed, the command is not run, exit 2); `inactive`
//!   objects are left alone; every write is in the audit log (`--config` names it).
//! - Restoring puts back only what this run changed, and only where nobody changed it
//!   meanwhile: an object whose state is no longer what this run wrote is left as it is,
//!   and said so (someone depooled it on purpose, or it was deleted).
//! - The command's exit code is this program's (1 if restoring failed; 2 for bad arguments
//!   or a refusal, when the command is not run; 127 if it cannot be started). A depool that
//!   fails runs nothing.

use std::process::ExitCode;

use conftool_core::{
    Actor, Atomicity, AuditLog, Config, Edit, HostVerb, NodeName, ObjectKey, Pooled, Selected,
    Service, SetFields, Store,
};

const USAGE: &str = "usage: depool-during [--config FILE] [--endpoints URL[,URL...]] \
                     --hostname HOST [--service SERVICE] -- COMMAND [ARGS...]";

/// What the command line asked for.
struct Args {
    config: Config,
    host: NodeName,
    service: Option<Service>,
    command: Vec<String>,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let (mut file, mut endpoints, mut host, mut service) = (None, None, None, None);
    let mut command = Vec::new();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--config" => file = Some(value("--config")?),
            "--endpoints" => endpoints = Some(value("--endpoints")?),
            "--hostname" => host = Some(value("--hostname")?),
            "--service" => service = Some(value("--service")?),
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
        command,
    })
}

/// What this run wrote: each object with the state it replaced.
struct Depooled {
    key: ObjectKey,
    was: Pooled,
}

async fn run(args: Args) -> Result<u8, (u8, String)> {
    let fail = |code: u8| move |e: conftool_core::Error| (code, e.to_string());
    let store = Store::connect(&args.config).await.map_err(fail(1))?;
    let actor = Actor::from_env("depool-during", args.config.username.clone());
    let audit = AuditLog::from_config(args.config.audit_log.as_deref());
    let mut writer = store.writer(&actor, &audit).map_err(fail(1))?;

    let done = writer
        .host(
            HostVerb::Depool,
            std::slice::from_ref(&args.host),
            args.service.as_ref(),
        )
        .await
        .map_err(|e| {
            let code = if e.error.is_bad_input() { 2 } else { 1 };
            (code, e.to_string())
        })?;
    let depooled: Vec<Depooled> = done
        .applied
        .iter()
        .map(|a| Depooled {
            key: a.change.key.clone(),
            was: a.change.before.pooled,
        })
        .collect();
    for d in &depooled {
        println!("depooled {} (was pooled={})", d.key, d.was);
    }

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

    // Put back what this run changed, where it is still as this run left it.
    let edit = |o: &Selected| {
        let mine = depooled.iter().find(|d| d.key == o.key)?;
        (o.state.pooled == Pooled::No).then_some(Edit::Set(SetFields {
            pooled: Some(mine.was),
            weight: None,
        }))
    };
    let fresh = store.select(&done.selector).await.map_err(fail(1))?;
    for d in &depooled {
        match fresh.objects.iter().find(|o| o.key == d.key) {
            None => println!("left {}: it is gone", d.key),
            Some(o) if o.state.pooled != Pooled::No => {
                println!(
                    "left {}: changed meanwhile (pooled={})",
                    d.key, o.state.pooled
                )
            }
            Some(_) => {}
        }
    }
    let changes = fresh.changes(edit);
    let restored = writer
        .apply(&done.selector, changes, edit, Atomicity::All)
        .await
        .map_err(|e| (1, format!("restoring failed: {e}")))?;
    for a in &restored {
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
