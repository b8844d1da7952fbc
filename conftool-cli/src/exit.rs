//! Exit codes (a contract): 0 success; 1 runtime failure; 2 bad input, nothing written;
//! 3 changes pending (`--check`).

use std::future::Future;
use std::process::ExitCode;

use conftool_core::{Classify, ErrorClass};

/// Success.
pub const OK: u8 = 0;
/// A runtime failure: etcd unreachable, conflict not resolved, permission denied.
pub const FAILURE: u8 = 1;
/// Bad input (usage, YAML, selector, action); nothing was written.
pub const BAD_INPUT: u8 = 2;
/// `--check`: changes are pending.
pub const PENDING: u8 = 3;

/// Marks an error as bad input (exit code 2).
#[derive(Debug)]
pub struct BadInput(pub String);

impl std::fmt::Display for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadInput {}

impl BadInput {
    /// An input error with this message.
    pub fn msg(m: impl Into<String>) -> anyhow::Error {
        anyhow::Error::new(BadInput(m.into()))
    }
}

impl Classify for BadInput {
    fn class(&self) -> ErrorClass {
        ErrorClass::BadInput
    }
}

/// The class of one error of a chain, if it is one of the workspace's: each library error
/// says its own ([`Classify`]); this table only finds which type it is.
fn class_of(e: &(dyn std::error::Error + 'static)) -> Option<ErrorClass> {
    fn of<T: Classify + std::error::Error + 'static>(
        e: &(dyn std::error::Error + 'static),
    ) -> Option<ErrorClass> {
        e.downcast_ref::<T>().map(Classify::class)
    }
    let known: [fn(&(dyn std::error::Error + 'static)) -> Option<ErrorClass>; 13] = [
        of::<BadInput>,
        of::<crate::commands::changes::NothingWritten>,
        of::<conftool_core::Error>,
        of::<conftool_core::ModelError>,
        of::<conftool_core::NameError>,
        of::<conftool_core::VerifyError>,
        of::<conftool_sync::Error>,
        of::<conftool_lb::Error>,
        of::<conftool_maintd::Error>,
        of::<conftool_migrate::v2::Error>,
        of::<conftool_migrate::migrate::Error>,
        of::<conftool_core::LabelError>,
        of::<conftool_core::schema::SchemaError>,
    ];
    known.iter().find_map(|f| f(e))
}

/// The exit code an error deserves: 2 if any error in its chain is bad input. The one
/// place errors become exit codes; the libraries' typed errors say what they are.
pub fn code_for(err: &anyhow::Error) -> u8 {
    let bad = err
        .chain()
        .any(|e| class_of(e) == Some(ErrorClass::BadInput));
    if bad {
        BAD_INPUT
    } else {
        FAILURE
    }
}

/// A binary's `main`: generate completions or man pages if asked, parse the arguments,
/// run the async body, print the error chain on failure, and pick the exit code (see
/// [`crate::output::finish`] for what a failed stdout does to it).
pub fn main<A, F, Fut>(prog: &str, body: F) -> ExitCode
where
    A: clap::Parser,
    F: FnOnce(A) -> Fut,
    Fut: Future<Output = anyhow::Result<u8>>,
{
    let code = match crate::docs::maybe_generate::<A>() {
        Some(code) => code,
        None => match A::try_parse() {
            Ok(args) => run(prog, body(args)),
            Err(e) => clap_exit(e),
        },
    };
    ExitCode::from(crate::output::finish(prog, code))
}

/// Show a clap error (usage: stderr, exit 2) or its help/version text (stdout, exit 0),
/// without clap's own printing, which ignores a failed stdout.
fn clap_exit(e: clap::Error) -> u8 {
    if e.use_stderr() {
        let _ = e.print();
        return BAD_INPUT;
    }
    let text = e.render().to_string();
    crate::output::Printer::new(false).text(&text);
    u8::try_from(e.exit_code()).unwrap_or(FAILURE)
}

/// Run a binary's async body: print the error chain on failure and pick the exit code.
///
/// On one thread: the body, the etcd connection's tasks and the I/O driver take turns on the
/// thread that waits for the answer, so a response streamed in many frames is not handed
/// from a worker thread to the waiting one frame by frame (a 2,500-object pool read took
/// about 2 ms longer on two workers). Nothing here blocks that thread for long: the one
/// blocking read, the confirmation prompt, happens with no request in flight.
pub fn run(prog: &str, body: impl Future<Output = anyhow::Result<u8>>) -> u8 {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            crate::output::stderr_line(&format!("{prog}: cannot start runtime: {e}"));
            return FAILURE;
        }
    };
    match rt.block_on(body) {
        Ok(code) => code,
        Err(err) => {
            crate::output::stderr_line(&format!("{prog}: error: {err:#}"));
            code_for(&err)
        }
    }
}
