//! Ledger entries: the one encoding of every event, as stored and as hashed.
//!
//! An entry is RFC 8785 canonical JSON of `{seq, run?, run_seq?, event}`. The
//! sequence number is part of the hashed bytes, so an entry cannot be moved
//! to another position without its leaf hash changing.

use std::io::Write as _;

use attest_engine::{Event, WorkspaceEvent};
use attest_ledger::canonical::to_canonical_json;
use serde::{Deserialize, Serialize};

/// Largest integer whose canonical form is its plain decimal digits.
const EXACT_INTEGER_MAX: u64 = 1 << 53;

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
        Ok(to_canonical_json(self)?)
    }
}

/// A run event's canonical bytes, encoded before its place in the ledger is
/// known, so that a caller can encode it on another thread while earlier
/// entries are written. JCS orders an entry's members `event`, `run`,
/// `run_seq`, `seq`: the event's bytes open the entry whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventBytes(Vec<u8>);

impl EventBytes {
    pub fn new(event: &Event) -> Result<Self, anyhow::Error> {
        Ok(EventBytes(to_canonical_json(event)?))
    }

    /// The bytes of the event's entry, as [`RunEntry::encode`] gives them.
    pub fn entry(&self, seq: u64, run: &str, run_seq: u64) -> Result<Vec<u8>, anyhow::Error> {
        let mut out = Vec::with_capacity(self.0.len() + run.len() + 64);
        out.extend_from_slice(b"{\"event\":");
        out.extend_from_slice(&self.0);
        out.extend_from_slice(b",\"run\":");
        // Printable ASCII other than a quote or a backslash is never escaped;
        // anything else is left to the encoder.
        if run.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\') {
            out.push(b'"');
            out.extend_from_slice(run.as_bytes());
            out.push(b'"');
        } else {
            out.extend(to_canonical_json(&run)?);
        }
        out.extend_from_slice(b",\"run_seq\":");
        push_integer(&mut out, run_seq)?;
        out.extend_from_slice(b",\"seq\":");
        push_integer(&mut out, seq)?;
        out.push(b'}');
        Ok(out)
    }
}

/// Writes an integer in canonical form: its digits while a double holds it
/// exactly, else whatever the encoder makes of it.
fn push_integer(out: &mut Vec<u8>, n: u64) -> Result<(), anyhow::Error> {
    if n <= EXACT_INTEGER_MAX {
        write!(out, "{n}")?;
    } else {
        out.extend(to_canonical_json(&n)?);
    }
    Ok(())
}

impl LedgerEntry {
    /// The canonical bytes: what the ledger hashes and what the store keeps.
    pub fn encode(&self) -> Result<Vec<u8>, anyhow::Error> {
        Ok(to_canonical_json(self)?)
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
