//! `watch-pools`: print the objects a selector matches, then one line per change, as they
//! happen. Written against `conftool_core`'s public API alone, as a load-balancer agent or
//! a "wait until depooled" tool would be.
//!
//! ```text
//! $ watch-pools --endpoints http://127.0.0.1:2379 'dc=eqiad,cluster=appservers'
//! 12 snapshot objects=2 malformed=0
//! 12 object eqiad/appservers/apache/mw1018 pooled=yes weight=10
//! 12 object eqiad/appservers/apache/mw1019 pooled=yes weight=10
//! 13 put eqiad/appservers/apache/mw1018 pooled=no weight=10
//! 14 delete eqiad/appservers/apache/mw1019
//! 15 malformed eqiad/appservers/apache/mw1019 <why>
//! ```
//!
//! Every line starts with the etcd revision it describes. A `snapshot` line (and the
//! `object` and `malformed` lines after it) replaces everything before it: it comes first,
//! and again only when etcd compacted the history the watch needed. Lines are flushed one
//! event at a time. Exit codes: 0 on SIGTERM, SIGINT or when stdout is closed; 1 when the
//! watch ends with an error; 2 for bad arguments. Trouble the watch rides out (etcd
//! unreachable for a while) is reported on stderr.

use std::io::Write;
use std::process::ExitCode;

use conftool_core::watch::{ObjectChange, WatchEvent};
use conftool_core::{escape_controls, Config, Keyspace, Selection, Selector, Store};
use tokio::signal::unix::{signal, SignalKind};

const USAGE: &str = "usage: watch-pools [--config FILE] [--endpoints URL[,URL...]] \
                     [--namespace NS] [--timeout DURATION] SELECTOR";

/// What the command line asked for.
struct Args {
    config: Config,
    selector: Selector,
}

/// Parse the command line (`CONFTOOL_ENDPOINTS` when there is no `--endpoints`).
fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let (mut file, mut endpoints, mut namespace, mut timeout, mut selector) =
        (None, None, None, None, None);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or(format!("{name} needs a value"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Err(String::new()),
            "--config" => file = Some(value("--config")?),
            "--endpoints" => endpoints = Some(value("--endpoints")?),
            "--namespace" => namespace = Some(value("--namespace")?),
            "--timeout" => timeout = Some(value("--timeout")?),
            s if s.starts_with('-') => return Err(format!("unknown option {s}")),
            _ if selector.is_some() => return Err("one selector only".into()),
            _ => selector = Some(arg),
        }
    }
    let mut config = match file {
        Some(path) => Config::load(std::path::Path::new(&path)).map_err(|e| e.to_string())?,
        None => Config::default(),
    };
    let endpoints = endpoints.or_else(|| std::env::var("CONFTOOL_ENDPOINTS").ok());
    if let Some(list) = endpoints {
        config.endpoints = list.split(',').map(str::to_string).collect();
    }
    if let Some(ns) = namespace {
        config.namespace = ns;
    }
    if let Some(t) = timeout {
        config.timeout = conftool_core::config::parse_duration(&t).map_err(|e| e.to_string())?;
    }
    let selector = selector
        .ok_or("a selector is required, e.g. 'dc=eqiad,cluster=appservers'")?
        .parse::<Selector>()
        .map_err(|e| e.to_string())?;
    Ok(Args { config, selector })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(why) if why.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(why) => {
            eprintln!("watch-pools: {why}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("watch-pools: {why}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    let mut closed = stdout_closed();
    let store = Store::connect(&args.config)
        .await
        .map_err(|e| e.to_string())?;
    let mut watch = store
        .watch(&args.selector)
        .await
        .map_err(|e| e.to_string())?;
    let ks = store.keyspace();
    loop {
        tokio::select! {
            _ = term.recv() => return Ok(()),
            _ = int.recv() => return Ok(()),
            Ok(()) = &mut closed => return Ok(()),
            item = watch.next() => match item {
                Some(Ok(event)) => match print(ks, &event) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
                    Err(e) => return Err(format!("writing to stdout: {e}")),
                },
                // The watch goes on after this (a final error is followed by the end).
                Some(Err(e)) => eprintln!("watch-pools: {e}"),
                None => return Err("the watch ended".into()),
            },
        }
    }
}

/// One event as lines on stdout, flushed together.
fn print(ks: &Keyspace, event: &WatchEvent) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match event {
        WatchEvent::Snapshot(s) => snapshot(ks, s, &mut out)?,
        WatchEvent::Changes { revision, changes } => {
            for change in changes {
                match change {
                    ObjectChange::Put(o) => writeln!(
                        out,
                        "{revision} put {} pooled={} weight={}",
                        o.key, o.state.pooled, o.state.weight
                    )?,
                    ObjectChange::Deleted(key) => writeln!(out, "{revision} delete {key}")?,
                    ObjectChange::Malformed { key, reason } => writeln!(
                        out,
                        "{revision} malformed {key} {}",
                        escape_controls(reason)
                    )?,
                    ObjectChange::Unreadable(key) => {
                        writeln!(out, "{revision} unreadable {}", escape_controls(key))?
                    }
                    other => writeln!(
                        out,
                        "{revision} other {}",
                        escape_controls(&format!("{other:?}"))
                    )?,
                }
            }
        }
        other => writeln!(out, "? {}", escape_controls(&format!("{other:?}")))?,
    }
    out.flush()
}

fn snapshot(ks: &Keyspace, s: &Selection, out: &mut impl Write) -> std::io::Result<()> {
    let rev = s.revision;
    writeln!(
        out,
        "{rev} snapshot objects={} malformed={}",
        s.objects.len(),
        s.malformed.len()
    )?;
    for o in &s.objects {
        let st = &o.state;
        writeln!(
            out,
            "{rev} object {} pooled={} weight={}",
            o.key, st.pooled, st.weight
        )?;
    }
    for (key, reason) in &s.malformed {
        // The object's name, as in the other lines (the etcd key if it is not one).
        let name = ks
            .parse_object_key(key)
            .map_or_else(|| escape_controls(key).into_owned(), |k| k.to_string());
        writeln!(out, "{rev} malformed {name} {}", escape_controls(reason))?;
    }
    Ok(())
}

/// Resolves when stdout is a pipe (or terminal) that nobody reads any more, even while no
/// event comes to write: a thread waits for the error condition `poll(2)` reports then.
fn stdout_closed() -> tokio::sync::oneshot::Receiver<()> {
    use std::os::fd::AsFd;

    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let stdout = std::io::stdout();
        loop {
            // No events asked for: only errors and hang-ups are reported.
            let mut fds = [PollFd::new(stdout.as_fd(), PollFlags::empty())];
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(n) if n > 0 => {
                    let _ = tx.send(());
                    return;
                }
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                // Cannot tell: leave it to the next write.
                Err(_) => return,
            }
        }
    });
    rx
}
