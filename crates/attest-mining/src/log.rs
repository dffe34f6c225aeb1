//! The owned event-log model shared by the readers, the writer and the analyses.

use foldhash::{HashMap, HashSet};
use std::sync::Arc;

use serde::Serialize;

/// Index of an activity name in an [`ActivityTable`].
///
/// Analyses work on these small integers instead of strings, which keeps
/// hashing and comparisons cheap on large logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ActivityId(pub u32);

impl ActivityId {
    /// The position of the name in the table.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Interned activity names: each distinct name is stored once.
#[derive(Debug, Clone, Default)]
pub struct ActivityTable {
    names: Vec<Box<str>>,
    ids: HashMap<Box<str>, ActivityId>,
}

impl ActivityTable {
    /// Returns the id of `name`, adding it when it is new.
    pub fn intern(&mut self, name: &str) -> ActivityId {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        // The number of names is bounded by the number of events, which the
        // readers cap far below u32::MAX.
        let id = ActivityId(u32::try_from(self.names.len()).unwrap_or(u32::MAX));
        self.names.push(name.into());
        self.ids.insert(name.into(), id);
        id
    }

    /// The id of `name`, if some event uses it.
    pub fn get(&self, name: &str) -> Option<ActivityId> {
        self.ids.get(name).copied()
    }

    /// The name behind `id`; an id from another table yields an empty string.
    pub fn name(&self, id: ActivityId) -> &str {
        self.names.get(id.index()).map_or("", |name| name)
    }

    /// Number of distinct activities.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True when no activity was interned.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// All ids with their names, in interning order.
    pub fn iter(&self) -> impl Iterator<Item = (ActivityId, &str)> {
        self.names.iter().enumerate().map(|(index, name)| (ActivityId(index as u32), &**name))
    }
}

/// Strings longer than this are rarely repeated, so they are not pooled.
const MAX_POOLED_BYTES: usize = 64;

/// Shares one allocation among equal short strings (attribute keys,
/// resources, lifecycle values), which cuts memory and allocation time on
/// large logs where the same few values repeat on every event.
#[derive(Debug, Default)]
pub(crate) struct StringPool {
    strings: HashSet<Arc<str>>,
}

impl StringPool {
    /// The shared copy of `text`.
    pub(crate) fn get(&mut self, text: &str) -> Arc<str> {
        if text.len() > MAX_POOLED_BYTES {
            return text.into();
        }
        if let Some(shared) = self.strings.get(text) {
            return Arc::clone(shared);
        }
        let shared: Arc<str> = text.into();
        self.strings.insert(Arc::clone(&shared));
        shared
    }
}

/// A typed XES attribute value; text is shared among equal values.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", content = "value", rename_all = "lowercase")]
pub enum AttributeValue {
    /// `<string>`.
    String(Arc<str>),
    /// `<date>`, as microseconds since the Unix epoch (UTC).
    Date(i64),
    /// `<int>`.
    Int(i64),
    /// `<float>`.
    Float(f64),
    /// `<boolean>`.
    Boolean(bool),
    /// `<id>`.
    Id(Arc<str>),
}

/// One key/value attribute of a log, trace or event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attribute {
    /// The XES key, e.g. `cost:total`.
    pub key: Arc<str>,
    /// The typed value.
    pub value: AttributeValue,
}

/// One event: an activity that happened in a case.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The activity (XES `concept:name`, the classifier).
    pub activity: ActivityId,
    /// When it happened (XES `time:timestamp`), microseconds since the Unix epoch.
    pub timestamp_us: Option<i64>,
    /// XES `lifecycle:transition`, e.g. `start` or `complete`.
    pub lifecycle: Option<Arc<str>>,
    /// XES `org:resource`: who did it.
    pub resource: Option<Arc<str>>,
    /// All other attributes, in document order.
    pub attributes: Vec<Attribute>,
}

impl Event {
    /// An event with only an activity.
    pub fn new(activity: ActivityId) -> Self {
        Self { activity, timestamp_us: None, lifecycle: None, resource: None, attributes: Vec::new() }
    }

    /// The same event with a timestamp.
    pub fn at(mut self, timestamp_us: i64) -> Self {
        self.timestamp_us = Some(timestamp_us);
        self
    }
}

/// One case: its id and its events ordered by time.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    /// The case id (XES trace `concept:name`).
    pub case_id: String,
    /// All other trace attributes, in document order.
    pub attributes: Vec<Attribute>,
    /// The events, ordered by timestamp (stable, events without one last).
    pub events: Vec<Event>,
}

impl Trace {
    /// An empty case.
    pub fn new(case_id: impl Into<String>) -> Self {
        Self { case_id: case_id.into(), attributes: Vec::new(), events: Vec::new() }
    }

    /// Orders the events by timestamp the way pm4py does: a stable sort, so
    /// events with equal timestamps keep their recorded order, and events
    /// without a timestamp go last.
    pub fn sort_by_timestamp(&mut self) {
        let sorted = self.events.windows(2).all(|pair| timestamp_key(&pair[0]) <= timestamp_key(&pair[1]));
        if !sorted {
            self.events.sort_by_key(timestamp_key);
        }
    }
}

fn timestamp_key(event: &Event) -> (bool, i64) {
    match event.timestamp_us {
        Some(timestamp_us) => (false, timestamp_us),
        None => (true, 0),
    }
}

/// An event log: cases with their events, and the interned activity names.
///
/// Each trace is one case. Two traces with the same case id stay two cases,
/// as in the XES file; pm4py's data-frame view would merge them.
#[derive(Debug, Clone, Default)]
pub struct EventLog {
    /// Log-level attributes.
    pub attributes: Vec<Attribute>,
    /// The cases, in the order they were read.
    pub traces: Vec<Trace>,
    /// Names of the activities that the events refer to.
    pub activities: ActivityTable,
}

impl EventLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Total number of events over all cases.
    pub fn event_count(&self) -> usize {
        self.traces.iter().map(|trace| trace.events.len()).sum()
    }

    /// The name of an activity id of this log.
    pub fn activity_name(&self, id: ActivityId) -> &str {
        self.activities.name(id)
    }

    /// Appends a case whose events are given by activity name, interning the
    /// names; handy for building small logs in code and tests.
    pub fn push_case<'a>(&mut self, case_id: impl Into<String>, activities: impl IntoIterator<Item = &'a str>) {
        let mut trace = Trace::new(case_id);
        for name in activities {
            trace.events.push(Event::new(self.activities.intern(name)));
        }
        self.traces.push(trace);
    }
}
