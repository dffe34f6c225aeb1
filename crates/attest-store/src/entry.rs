//! Ledger entries: the one encoding of every event, as stored and as hashed.
//!
//! An entry is RFC 8785 canonical JSON of `{seq, run?, run_seq?, event}`. The
//! sequence number is part of the hashed bytes, so an entry cannot be moved
//! to another position without its leaf hash changing.

use attest_engine::{Event, WorkspaceEvent};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// Position in the workspace's ledger, from 0.
    pub seq: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// Position within the run, from 0: the run's version before this event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_seq: Option<u64>,
    pub event: EntryEvent,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EntryEvent {
    Run(Event),
    Workspace(WorkspaceEvent),
}

/// A run event's entry by reference: it encodes to the bytes of the
/// [`LedgerEntry`] with the same values, without copying the event.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RunEntry<'a> {
    pub seq: u64,
    pub run: &'a str,
    pub run_seq: u64,
    pub event: &'a Event,
}

impl RunEntry<'_> {
    /// The canonical bytes, as [`LedgerEntry::encode`] gives them.
    pub fn encode(&self) -> Result<Vec<u8>, anyhow::Error> {
        Ok(attest_ledger::canonical::to_canonical_json(self)?)
    }
}

impl LedgerEntry {
    /// The canonical bytes: what the ledger hashes and what the store keeps.
    pub fn encode(&self) -> Result<Vec<u8>, anyhow::Error> {
        Ok(attest_ledger::canonical::to_canonical_json(self)?)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    pub fn type_name(&self) -> &'static str {
        match &self.event {
            EntryEvent::Run(e) => e.body.type_name(),
            EntryEvent::Workspace(e) => e.body.type_name(),
        }
    }
}
