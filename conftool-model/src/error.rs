//! The error type of conftool-model.

/// An invalid datacenter, cluster, service or node name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} name {}: {reason}", shown(name))]
pub struct NameError {
    /// What the name was for: "datacenter", "cluster", "service" or "node".
    pub kind: &'static str,
    /// The rejected input.
    pub name: String,
    /// Why it was rejected.
    pub reason: &'static str,
}

/// A name quoted for a message, cut short if it is huge.
pub(crate) fn shown(name: &str) -> String {
    if name.chars().count() <= 80 {
        return format!("{name:?}");
    }
    let head: String = name.chars().take(60).collect();
    format!("{head:?}… ({} characters)", name.chars().count())
}

/// Everything the model refuses: bad input (a name, a state, a selector, an action), a
/// stored value that does not fit the schema, or a change a rule refuses.
///
/// [`Error::is_bad_input`] tells input errors (exit code 2, nothing was written) from a
/// malformed stored value (a runtime failure).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An invalid name.
    #[error(transparent)]
    Name(#[from] NameError),
    /// A `pooled` value other than yes/no/inactive.
    #[error("invalid pooled value {0:?}: expected yes, no or inactive")]
    Pooled(String),
    /// A weight outside 0..=65535 or not a number.
    #[error("invalid weight {0:?}: expected an integer from 0 to 65535")]
    Weight(String),
    /// A selector that does not parse.
    #[error("invalid selector {input:?}: {reason}")]
    Selector {
        /// The selector as given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An action that does not parse.
    #[error("invalid action {input:?}: {reason}")]
    Action {
        /// The action as given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A value stored in etcd that is not what the schema says.
    #[error("etcd key {key}: malformed value: {reason}")]
    MalformedValue {
        /// The key.
        key: String,
        /// What is wrong with the value.
        reason: String,
    },
    /// An operation id that is not a path-safe name.
    #[error(
        "invalid operation id {}: letters, digits, '.', '_', '-', at most 64",
        shown(&crate::text::escape_controls(.0))
    )]
    OperationId(String),
    /// A lock name that is not a path-safe name.
    #[error(
        "invalid lock name {}: letters, digits, '.', '_', '-', ':', at most 200",
        shown(&crate::text::escape_controls(.0))
    )]
    LockName(String),
    /// An operation record larger than one etcd write may carry.
    #[error(
        "operation {id} would record {objects} objects ({bytes} bytes), more than one record \
         holds ({limit} bytes); split the change into several operations"
    )]
    OperationTooLarge {
        /// The operation.
        id: String,
        /// Objects it would record.
        objects: usize,
        /// The record's size.
        bytes: usize,
        /// The largest record.
        limit: usize,
    },
    /// An invalid label name or value ([`crate::labels`]).
    #[error(transparent)]
    Label(#[from] crate::labels::LabelError),
    /// A change refused by a rule ([`crate::rules`]); nothing was written.
    #[error("refusing to write: {0}")]
    Refused(#[from] crate::rules::Refusal),
}

/// How a tool should treat an error: the one classification every library error of the
/// workspace gives ([`Classify`]), which the binaries map to exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Bad input (a name, a selector, a file, a flag) or a refusal by a rule: nothing was
    /// written, and running it again unchanged fails the same way (exit code 2).
    BadInput,
    /// A runtime failure: etcd unreachable, a conflict not resolved, permission denied, or
    /// something written before it stopped (exit code 1).
    Failure,
}

/// An error that says how to treat it.
pub trait Classify {
    /// Its class.
    fn class(&self) -> ErrorClass;

    /// Whether it is bad input or a refusal, nothing written (exit code 2).
    fn is_bad_input(&self) -> bool {
        self.class() == ErrorClass::BadInput
    }
}

impl Classify for Error {
    fn class(&self) -> ErrorClass {
        match self {
            // Stored data, not the caller's input.
            Error::MalformedValue { .. } => ErrorClass::Failure,
            _ => ErrorClass::BadInput,
        }
    }
}

impl Classify for NameError {
    fn class(&self) -> ErrorClass {
        ErrorClass::BadInput
    }
}

impl Classify for crate::labels::LabelError {
    fn class(&self) -> ErrorClass {
        ErrorClass::BadInput
    }
}

/// A schema file that cannot be used.
impl Classify for crate::schema::SchemaError {
    fn class(&self) -> ErrorClass {
        ErrorClass::BadInput
    }
}

/// Result with conftool-model's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
