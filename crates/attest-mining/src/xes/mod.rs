//! XES (IEEE 1849) event logs: a streaming reader and a writer.

mod read;
mod write;

use std::fmt;

use serde::Serialize;

pub use read::{read_xes, read_xes_file};
pub use write::{XesWriteError, write_xes, write_xes_file};

/// Where in the input an error was found.
///
/// Byte offsets count bytes of the decompressed XML; trace and event indexes
/// are 0-based positions in the document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Location {
    /// 1-based line of the end of the offending tag (0 when nothing was read).
    pub line: u64,
    /// Byte offset just after the offending tag.
    pub byte_offset: u64,
    /// The trace being read, if any.
    pub trace_index: Option<usize>,
    /// The event being read within that trace, if any.
    pub event_index: Option<usize>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, byte {}", self.line, self.byte_offset)?;
        if let Some(trace) = self.trace_index {
            write!(f, ", trace index {trace}")?;
        }
        if let Some(event) = self.event_index {
            write!(f, ", event index {event}")?;
        }
        Ok(())
    }
}

/// A failure to read an XES document, with where it happened.
#[derive(Debug, thiserror::Error)]
#[error("{kind} (at {location})")]
pub struct XesError {
    /// What went wrong.
    #[source]
    pub kind: XesErrorKind,
    /// Where it went wrong.
    pub location: Location,
}

/// What went wrong while reading XES.
#[derive(Debug, thiserror::Error)]
pub enum XesErrorKind {
    /// The input could not be read.
    #[error("I/O error: {0}")]
    Io(#[source] std::io::Error),
    /// The gzip stream stopped before its end.
    #[error("the gzip stream ends early: the file is truncated")]
    TruncatedGzip,
    /// The gzip stream is damaged.
    #[error("corrupt gzip data: {0}")]
    CorruptGzip(String),
    /// The XML is not well-formed.
    #[error("malformed XML: {0}")]
    Xml(String),
    /// A tag (hence an attribute value) or a text run exceeds the limit.
    #[error(
        "a tag or text is longer than {limit_bytes} bytes, so an attribute value this long is refused (ReadLimits::max_value_bytes)"
    )]
    TokenTooLong {
        /// The limit in force.
        limit_bytes: usize,
    },
    /// The log has more events than allowed.
    #[error("more than {limit} events (ReadLimits::max_events)")]
    TooManyEvents {
        /// The limit in force.
        limit: usize,
    },
    /// The log has more traces than allowed.
    #[error("more than {limit} traces (ReadLimits::max_traces)")]
    TooManyTraces {
        /// The limit in force.
        limit: usize,
    },
    /// An element has more attributes than allowed.
    #[error("more than {limit} attributes on one element (ReadLimits::max_attributes_per_element)")]
    TooManyAttributes {
        /// The limit in force.
        limit: usize,
    },
    /// Elements are nested deeper than allowed.
    #[error("elements nested deeper than {limit} levels (ReadLimits::max_depth)")]
    TooDeep {
        /// The limit in force.
        limit: usize,
    },
    /// The root element is not `<log>`.
    #[error("the root element is <{root}>, not <log>: this is not an XES document")]
    NotXes {
        /// The root element found (empty when there is none).
        root: String,
    },
    /// The document ends before `</log>`.
    #[error("the document ends before </log>: the file is truncated")]
    UnexpectedEof,
    /// An event has no activity.
    #[error("the event has no concept:name attribute, which names its activity")]
    MissingActivity,
    /// A trace has no case id.
    #[error("the trace has no concept:name attribute, which is its case id")]
    MissingCaseId,
    /// An attribute element has no `key`.
    #[error("a <{element}> attribute has no key")]
    MissingKey {
        /// The element, e.g. `string`.
        element: String,
    },
    /// An attribute element has no `value`.
    #[error("attribute {key:?} has no value")]
    MissingValue {
        /// The attribute key.
        key: String,
    },
    /// A date is not an `xs:dateTime`.
    #[error(
        "attribute {key:?} has the invalid date {value:?}; expected xs:dateTime such as 2010-12-30T14:32:00.000+01:00"
    )]
    BadTimestamp {
        /// The attribute key.
        key: String,
        /// The offending text (shortened).
        value: String,
    },
    /// An int, float or boolean does not parse.
    #[error("attribute {key:?} is declared {type_name} but its value {value:?} is not one")]
    BadValue {
        /// `int`, `float` or `boolean`.
        type_name: &'static str,
        /// The attribute key.
        key: String,
        /// The offending text (shortened).
        value: String,
    },
    /// Text is not valid UTF-8.
    #[error("text is not valid UTF-8 (declare encoding=\"ISO-8859-1\" if the file is Latin-1)")]
    InvalidUtf8,
    /// The XML declaration names an encoding this reader does not decode.
    #[error("unsupported encoding {0:?}: only UTF-8 and ISO-8859-1 are read")]
    UnsupportedEncoding(String),
    /// A character or entity reference is invalid.
    #[error("invalid escape in a value: {0}")]
    BadEscape(String),
}
