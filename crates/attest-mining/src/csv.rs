//! CSV event logs: one event per row, with case, activity and timestamp columns chosen by name.

use foldhash::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::input::{ReadLimits, TokenLimiter, excerpt, open_maybe_gzip};
use crate::log::{Attribute, AttributeValue, Event, EventLog, StringPool, Trace};
use crate::timestamp::parse_timestamp_us;

/// Which columns hold what, and the CSV dialect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvOptions {
    /// The case id column.
    pub case_column: String,
    /// The activity column.
    pub activity_column: String,
    /// The timestamp column, if any.
    pub timestamp_column: Option<String>,
    /// When true, a missing timestamp column means "no timestamps" instead of an error.
    pub timestamp_optional: bool,
    /// The field delimiter.
    pub delimiter: u8,
    /// Input limits.
    pub limits: ReadLimits,
}

impl Default for CsvOptions {
    /// pm4py's column names, which its CSV exports use.
    fn default() -> Self {
        Self {
            case_column: "case:concept:name".to_owned(),
            activity_column: "concept:name".to_owned(),
            timestamp_column: Some("time:timestamp".to_owned()),
            timestamp_optional: false,
            delimiter: b',',
            limits: ReadLimits::default(),
        }
    }
}

/// A failure to read a CSV log. Lines are 1-based and count the header.
#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    /// The input could not be read.
    #[error("cannot read CSV: {0}")]
    Io(#[from] std::io::Error),
    /// The CSV itself is broken (e.g. a row with a different number of fields).
    #[error("line {line}: malformed CSV: {message}")]
    Malformed {
        /// Where.
        line: u64,
        /// What the CSV parser reported.
        message: String,
    },
    /// A named column is not in the header.
    #[error("no column named {name:?}; the header has: {available}")]
    MissingColumn {
        /// The requested column.
        name: String,
        /// The columns present, comma-separated.
        available: String,
    },
    /// A row has an empty case id.
    #[error("line {line}: the case id (column {column:?}) is empty")]
    MissingCaseId {
        /// Where.
        line: u64,
        /// The case column.
        column: String,
    },
    /// A row has an empty activity.
    #[error("line {line}: the activity (column {column:?}) is empty")]
    MissingActivity {
        /// Where.
        line: u64,
        /// The activity column.
        column: String,
    },
    /// A timestamp does not parse.
    #[error(
        "line {line}: invalid timestamp {value:?} in column {column:?}; expected RFC 3339 (2024-05-01T12:00:00Z) or YYYY-MM-DD HH:MM:SS"
    )]
    BadTimestamp {
        /// Where.
        line: u64,
        /// The timestamp column.
        column: String,
        /// The offending text (shortened).
        value: String,
    },
    /// A record exceeds the size limit.
    #[error("line {line}: a record is longer than {limit_bytes} bytes (ReadLimits::max_value_bytes)")]
    RecordTooLong {
        /// The line where the record starts.
        line: u64,
        /// The limit in force.
        limit_bytes: usize,
    },
    /// The log has more events than allowed.
    #[error("more than {limit} events (ReadLimits::max_events)")]
    TooManyEvents {
        /// The limit in force.
        limit: usize,
    },
    /// The log has more cases than allowed.
    #[error("more than {limit} cases (ReadLimits::max_traces)")]
    TooManyTraces {
        /// The limit in force.
        limit: usize,
    },
}

/// Reads a CSV file (gzipped CSV is detected by its magic bytes).
pub fn read_csv_file(path: &Path, options: &CsvOptions) -> Result<EventLog, CsvError> {
    read_csv(File::open(path)?, options)
}

/// Reads a CSV log: a header row, then one event per row.
///
/// Cases appear in the order of their first row; events within a case are
/// ordered by timestamp with a stable sort. Columns other than case, activity
/// and timestamp become string attributes (`org:resource` and
/// `lifecycle:transition` fill the event's resource and lifecycle), empty cells
/// are left out.
pub fn read_csv<R: Read>(input: R, options: &CsvOptions) -> Result<EventLog, CsvError> {
    let limits = &options.limits;
    let (source, _) = open_maybe_gzip(input)?;
    let mut reader = ::csv::ReaderBuilder::new()
        .delimiter(options.delimiter)
        .from_reader(TokenLimiter::new(source, limits.max_value_bytes));
    let header = match reader.headers() {
        Ok(header) => header.clone(),
        Err(error) => return Err(csv_error(&reader, error, limits)),
    };
    let column = |name: &str| {
        header.iter().position(|field| field.trim_start_matches('\u{feff}') == name).ok_or_else(|| {
            CsvError::MissingColumn { name: name.to_owned(), available: header.iter().collect::<Vec<_>>().join(", ") }
        })
    };
    let case_index = column(&options.case_column)?;
    let activity_index = column(&options.activity_column)?;
    let timestamp_index = match &options.timestamp_column {
        Some(name) => match column(name) {
            Ok(index) => Some(index),
            Err(_) if options.timestamp_optional => None,
            Err(error) => return Err(error),
        },
        None => None,
    };
    let resource_index = header.iter().position(|field| field == "org:resource");
    let lifecycle_index = header.iter().position(|field| field == "lifecycle:transition");
    let special = [Some(case_index), Some(activity_index), timestamp_index, resource_index, lifecycle_index];

    let mut log = EventLog::new();
    let mut case_indexes: HashMap<String, usize> = HashMap::default();
    let mut event_count = 0usize;
    let mut pool = StringPool::default();
    let mut record = ::csv::StringRecord::new();
    loop {
        reader.get_mut().reset();
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(error) => return Err(csv_error(&reader, error, limits)),
        }
        let line = record.position().map_or(0, |position| position.line());
        if event_count >= limits.max_events {
            return Err(CsvError::TooManyEvents { limit: limits.max_events });
        }
        event_count += 1;
        let case_id = record.get(case_index).unwrap_or("");
        if case_id.is_empty() {
            return Err(CsvError::MissingCaseId { line, column: options.case_column.clone() });
        }
        let activity = record.get(activity_index).unwrap_or("");
        if activity.is_empty() {
            return Err(CsvError::MissingActivity { line, column: options.activity_column.clone() });
        }
        let mut event = Event::new(log.activities.intern(activity));
        if let Some(index) = timestamp_index {
            let text = record.get(index).unwrap_or("").trim();
            if !text.is_empty() {
                let timestamp_us = parse_timestamp_us(text).ok_or_else(|| CsvError::BadTimestamp {
                    line,
                    column: options.timestamp_column.clone().unwrap_or_default(),
                    value: excerpt(text),
                })?;
                event.timestamp_us = Some(timestamp_us);
            }
        }
        let mut cell = |index: Option<usize>| {
            index.and_then(|index| record.get(index)).filter(|text| !text.is_empty()).map(|text| pool.get(text))
        };
        event.resource = cell(resource_index);
        event.lifecycle = cell(lifecycle_index);
        for (index, (key, value)) in header.iter().zip(record.iter()).enumerate() {
            if !value.is_empty() && !special.contains(&Some(index)) {
                event.attributes.push(Attribute { key: pool.get(key), value: AttributeValue::String(pool.get(value)) });
            }
        }
        let trace_index = match case_indexes.get(case_id) {
            Some(&index) => index,
            None => {
                if log.traces.len() >= limits.max_traces {
                    return Err(CsvError::TooManyTraces { limit: limits.max_traces });
                }
                log.traces.push(Trace::new(case_id));
                case_indexes.insert(case_id.to_owned(), log.traces.len() - 1);
                log.traces.len() - 1
            }
        };
        log.traces[trace_index].events.push(event);
    }
    for trace in &mut log.traces {
        trace.sort_by_timestamp();
    }
    Ok(log)
}

fn csv_error<R: Read>(reader: &::csv::Reader<TokenLimiter<R>>, error: ::csv::Error, limits: &ReadLimits) -> CsvError {
    let line = error.position().map_or_else(|| reader.position().line() + 1, |position| position.line());
    if reader.get_ref().exceeded {
        return CsvError::RecordTooLong { line: reader.position().line() + 1, limit_bytes: limits.max_value_bytes };
    }
    let message = error.to_string();
    match error.into_kind() {
        ::csv::ErrorKind::Io(io) => CsvError::Io(io),
        _ => CsvError::Malformed { line, message },
    }
}
