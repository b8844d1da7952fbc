//! One module per binary / subcommand.
pub mod sync;
