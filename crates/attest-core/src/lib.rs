//! The application layer: a workspace's use cases over the engine, the store
//! and the ledger. The CLI and the server both call this and nothing below it
//! directly, so every path to a state change goes through the same checks.
//!
//! It knows the data directory layout and the clock's caller-side rules, but no
//! SQL (that is the store's) and no HTTP or JSON shapes (the server's).

pub mod audit;
pub mod auth;
pub mod clock;
pub mod datadir;
pub mod drafts;
pub mod error;
pub mod hooks;
pub mod html;
pub mod mail;
pub mod metrics;
pub mod mining;
mod retire;
mod run_cache;
pub mod schedule;
pub mod scheduler;
pub mod seed;
pub mod service;
pub mod workspace;

pub use clock::Clock;
pub use datadir::DataDir;
pub use error::{Error, Result};
pub use workspace::{BatchItem, PublishOutcome, Workspace};
