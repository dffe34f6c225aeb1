//! Evidence packs: a zip an auditor can verify offline, with nothing but the
//! `attest` binary and the workspace's public key.
//!
//! A pack holds ledger entries in their canonical bytes, each with a C2SP
//! tlog-proof against a signed checkpoint, the template versions the runs
//! were decided on, the evidence files, the verifier key and a readable
//! summary. [`write`] builds one from a workspace; [`verify`] checks one from
//! its bytes alone, down to re-deciding every command of every run through
//! the engine. The layout is documented in `docs/evidence-pack.md`.

pub mod consistency;
pub mod error;
pub mod layout;
pub mod read;
mod replay;
mod summary;
pub mod verify;
pub mod write;

pub use error::PackError;
pub use layout::{Manifest, PackKind};
pub use verify::{Failure, FailureKind, KeySource, Report, verify};
pub use write::{ExportOutcome, export_period, export_run, parse_period};
