//! Process mining for Attest.
//!
//! The crate stands alone: it reads event logs (XES, plain or gzipped, and CSV),
//! writes XES, computes the directly-follows graph, variants and timing
//! statistics, replays logs on Petri nets (PNML) with token-based replay, checks
//! cases against an ordered checklist and drafts such a checklist from a log.
//! Figures follow pm4py's definitions, and the tests compare them with pm4py's.

pub mod analysis;
pub mod cli;
pub mod csv;
mod input;
pub mod log;
pub mod petri;
pub mod sequence;
pub mod svg;
pub mod timestamp;
pub mod xes;

pub use analysis::{
    CaseDurationStats, Dfg, DfgEdge, LogSummary, Variant, activity_counts, case_duration_stats, discover_dfg,
    summarize, variants,
};
pub use csv::{CsvError, CsvOptions, read_csv, read_csv_file};
pub use input::ReadLimits;
pub use log::{ActivityId, ActivityTable, Attribute, AttributeValue, Event, EventLog, Trace};
pub use petri::{PetriNet, PnmlError, ReplayResult, TraceReplay, read_pnml, read_pnml_file, token_replay};
pub use sequence::{
    CaseConformance, Deviation, DraftStep, SequenceConformance, SequenceModel, SequenceModelError, SequenceStep,
    conform_sequence, draft_sequence,
};
pub use svg::render_dfg;
pub use xes::{Location, XesError, XesErrorKind, XesWriteError, read_xes, read_xes_file, write_xes, write_xes_file};
