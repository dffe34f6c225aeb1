//! Streaming XES (IEEE 1849) reader.

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufRead, Read};
use std::path::Path;

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event as XmlEvent};

use super::{Location, XesError, XesErrorKind};
use crate::input::{ReadLimits, TokenLimiter, excerpt, open_maybe_gzip};
use crate::log::{Attribute, AttributeValue, Event, EventLog, StringPool, Trace};
use crate::timestamp::parse_timestamp_us;

/// Reads an XES file, plain or gzipped (detected by its magic bytes).
pub fn read_xes_file(path: &Path, limits: &ReadLimits) -> Result<EventLog, XesError> {
    read_xes(File::open(path).map_err(io_error)?, limits)
}

fn io_error(error: std::io::Error) -> XesError {
    XesError { kind: XesErrorKind::Io(error), location: Location::default() }
}

/// Reads an XES document, plain or gzipped, from any byte stream.
///
/// The document is parsed as a stream; only the resulting log is kept in memory.
/// Each event's activity is its `concept:name`; events are ordered by
/// `time:timestamp` within each trace with a stable sort, as pm4py does.
/// Nested attributes, lists and containers are skipped.
pub fn read_xes<R: Read>(input: R, limits: &ReadLimits) -> Result<EventLog, XesError> {
    let (source, gzip) = open_maybe_gzip(input).map_err(io_error)?;
    parse(source, gzip, limits)
}

fn parse<R: Read>(source: R, gzip: bool, limits: &ReadLimits) -> Result<EventLog, XesError> {
    let mut reader = Reader::from_reader(TokenLimiter::new(source, limits.max_value_bytes));
    reader.config_mut().trim_text(true);
    let mut parser = Parser {
        reader,
        limits,
        gzip,
        latin1: false,
        depth: 0,
        trace_index: None,
        event_index: None,
        event_count: 0,
        log: EventLog::new(),
        buffers: Vec::new(),
        pool: StringPool::default(),
    };
    parser.document()?;
    if gzip {
        parser.finish_gzip()?;
    }
    Ok(parser.log)
}

/// An attribute element's type, key and decoded value text.
type RawAttribute<'s> = (AttributeType, Cow<'s, str>, Cow<'s, str>);

/// The kinds of XES attribute elements.
#[derive(Clone, Copy, PartialEq, Eq)]
enum AttributeType {
    String,
    Date,
    Int,
    Float,
    Boolean,
    Id,
    /// Lists and containers hold nested attributes, which are skipped.
    Composite,
}

impl AttributeType {
    fn from_tag(name: &[u8]) -> Option<Self> {
        Some(match name {
            b"string" => Self::String,
            b"date" => Self::Date,
            b"int" => Self::Int,
            b"float" => Self::Float,
            b"boolean" => Self::Boolean,
            b"id" => Self::Id,
            b"list" | b"container" => Self::Composite,
            _ => return None,
        })
    }
}

struct Parser<'l, R> {
    reader: Reader<TokenLimiter<R>>,
    limits: &'l ReadLimits,
    gzip: bool,
    latin1: bool,
    depth: usize,
    trace_index: Option<usize>,
    event_index: Option<usize>,
    event_count: usize,
    log: EventLog,
    /// Reusable event buffers, one per nesting level in use, to avoid an
    /// allocation per element.
    buffers: Vec<Vec<u8>>,
    pool: StringPool,
}

impl<R: Read> Parser<'_, R> {
    fn location(&self) -> Location {
        Location {
            line: self.reader.get_ref().line(),
            byte_offset: self.reader.buffer_position(),
            trace_index: self.trace_index,
            event_index: self.event_index,
        }
    }

    fn error(&self, kind: XesErrorKind) -> XesError {
        XesError { kind, location: self.location() }
    }

    fn take_buffer(&mut self) -> Vec<u8> {
        self.buffers.pop().unwrap_or_default()
    }

    /// Reads the next XML event, tracking depth and mapping errors.
    fn next<'b>(&mut self, buf: &'b mut Vec<u8>) -> Result<XmlEvent<'b>, XesError> {
        buf.clear();
        self.reader.get_mut().reset();
        let event = match self.reader.read_event_into(buf) {
            Ok(event) => event,
            Err(error) => return Err(self.xml_error(error)),
        };
        match &event {
            XmlEvent::Start(_) => {
                self.depth += 1;
                if self.depth > self.limits.max_depth {
                    return Err(self.error(XesErrorKind::TooDeep { limit: self.limits.max_depth }));
                }
            }
            XmlEvent::End(_) => self.depth = self.depth.saturating_sub(1),
            _ => {}
        }
        Ok(event)
    }

    fn xml_error(&self, error: quick_xml::Error) -> XesError {
        let kind = match error {
            quick_xml::Error::Io(io) => {
                if self.reader.get_ref().exceeded {
                    XesErrorKind::TokenTooLong { limit_bytes: self.limits.max_value_bytes }
                } else if self.gzip && io.kind() == std::io::ErrorKind::UnexpectedEof {
                    XesErrorKind::TruncatedGzip
                } else if self.gzip
                    && matches!(io.kind(), std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData)
                {
                    XesErrorKind::CorruptGzip(io.to_string())
                } else {
                    XesErrorKind::Io(std::io::Error::new(io.kind(), io.to_string()))
                }
            }
            // Input that ends inside a tag, comment or CDATA is a truncated file.
            quick_xml::Error::Syntax(syntax) if syntax != quick_xml::errors::SyntaxError::InvalidBangMarkup => {
                XesErrorKind::UnexpectedEof
            }
            other => XesErrorKind::Xml(other.to_string()),
        };
        self.error(kind)
    }

    /// Reads the rest of a gzip stream after `</log>` so that its checksum and
    /// length are verified and a truncated file is reported.
    fn finish_gzip(&mut self) -> Result<(), XesError> {
        loop {
            let limiter = self.reader.get_mut();
            limiter.reset();
            let available = match limiter.fill_buf() {
                Ok(buffer) => buffer.len(),
                Err(error) => {
                    return Err(self.xml_error(quick_xml::Error::Io(error.into())));
                }
            };
            if available == 0 {
                return Ok(());
            }
            limiter.consume(available);
        }
    }

    fn document(&mut self) -> Result<(), XesError> {
        let mut buf = Vec::new();
        loop {
            match self.next(&mut buf)? {
                XmlEvent::Decl(declaration) => {
                    if let Some(Ok(encoding)) = declaration.encoding() {
                        let encoding = String::from_utf8_lossy(&encoding).to_ascii_lowercase();
                        self.latin1 = match encoding.as_str() {
                            "utf-8" | "utf8" => false,
                            "iso-8859-1" | "latin1" | "latin-1" | "us-ascii" | "ascii" => true,
                            _ => {
                                return Err(self.error(XesErrorKind::UnsupportedEncoding(encoding)));
                            }
                        };
                    }
                }
                XmlEvent::Start(start) => {
                    let is_log = start.local_name().as_ref() == b"log";
                    if !is_log {
                        let root = String::from_utf8_lossy(start.local_name().as_ref()).into();
                        return Err(self.error(XesErrorKind::NotXes { root }));
                    }
                    return self.log_body();
                }
                XmlEvent::Empty(start) => {
                    if start.local_name().as_ref() == b"log" {
                        return Ok(());
                    }
                    let root = String::from_utf8_lossy(start.local_name().as_ref()).into();
                    return Err(self.error(XesErrorKind::NotXes { root }));
                }
                XmlEvent::Eof => {
                    return Err(self.error(XesErrorKind::NotXes { root: String::new() }));
                }
                _ => {}
            }
        }
    }

    fn log_body(&mut self) -> Result<(), XesError> {
        let mut buf = Vec::new();
        let mut attribute_count = 0usize;
        loop {
            match self.next(&mut buf)? {
                XmlEvent::Start(start) => {
                    if start.local_name().as_ref() == b"trace" {
                        self.trace(false)?;
                    } else {
                        let attribute = self.attribute(&start, true)?;
                        self.skip_children()?;
                        self.push_log_attribute(attribute, &mut attribute_count)?;
                    }
                }
                XmlEvent::Empty(start) => {
                    if start.local_name().as_ref() == b"trace" {
                        self.trace(true)?;
                    } else {
                        let attribute = self.attribute(&start, true)?;
                        self.push_log_attribute(attribute, &mut attribute_count)?;
                    }
                }
                XmlEvent::End(_) => return Ok(()),
                XmlEvent::Eof => return Err(self.error(XesErrorKind::UnexpectedEof)),
                _ => {}
            }
        }
    }

    fn push_log_attribute(&mut self, attribute: Option<Attribute>, count: &mut usize) -> Result<(), XesError> {
        if let Some(attribute) = attribute {
            *count += 1;
            if *count > self.limits.max_attributes_per_element {
                return Err(
                    self.error(XesErrorKind::TooManyAttributes { limit: self.limits.max_attributes_per_element })
                );
            }
            self.log.attributes.push(attribute);
        }
        Ok(())
    }

    /// Skips the content of the element just opened, up to its end tag.
    fn skip_children(&mut self) -> Result<(), XesError> {
        let target = self.depth - 1;
        let mut buf = self.take_buffer();
        while self.depth > target {
            if let XmlEvent::Eof = self.next(&mut buf)? {
                return Err(self.error(XesErrorKind::UnexpectedEof));
            }
        }
        self.buffers.push(buf);
        Ok(())
    }

    fn trace(&mut self, empty: bool) -> Result<(), XesError> {
        let index = self.log.traces.len();
        if index >= self.limits.max_traces {
            return Err(self.error(XesErrorKind::TooManyTraces { limit: self.limits.max_traces }));
        }
        self.trace_index = Some(index);
        self.event_index = None;
        let mut case_id = None;
        let mut attributes = Vec::new();
        let mut events = Vec::new();
        let mut buf = self.take_buffer();
        loop {
            if empty {
                break;
            }
            let (start, is_empty) = match self.next(&mut buf)? {
                XmlEvent::Start(start) => (start, false),
                XmlEvent::Empty(start) => (start, true),
                XmlEvent::End(_) => break,
                XmlEvent::Eof => return Err(self.error(XesErrorKind::UnexpectedEof)),
                _ => continue,
            };
            if start.local_name().as_ref() == b"event" {
                events.push(self.event(events.len(), is_empty)?);
                continue;
            }
            let attribute = self.attribute(&start, false)?;
            if !is_empty {
                self.skip_children()?;
            }
            let Some(attribute) = attribute else { continue };
            if &*attribute.key == "concept:name" {
                case_id = Some(scalar_text(attribute.value));
            } else {
                if attributes.len() >= self.limits.max_attributes_per_element {
                    return Err(
                        self.error(XesErrorKind::TooManyAttributes { limit: self.limits.max_attributes_per_element })
                    );
                }
                attributes.push(attribute);
            }
        }
        self.buffers.push(buf);
        self.event_index = None;
        let Some(case_id) = case_id else {
            return Err(self.error(XesErrorKind::MissingCaseId));
        };
        let mut trace = Trace { case_id, attributes, events };
        trace.sort_by_timestamp();
        self.log.traces.push(trace);
        self.trace_index = None;
        Ok(())
    }

    fn event(&mut self, index: usize, empty: bool) -> Result<Event, XesError> {
        if self.event_count >= self.limits.max_events {
            return Err(self.error(XesErrorKind::TooManyEvents { limit: self.limits.max_events }));
        }
        self.event_count += 1;
        self.event_index = Some(index);
        let mut activity = None;
        let mut timestamp_us = None;
        let mut lifecycle = None;
        let mut resource = None;
        let mut attributes = Vec::new();
        let mut buf = self.take_buffer();
        loop {
            if empty {
                break;
            }
            let (start, is_empty) = match self.next(&mut buf)? {
                XmlEvent::Start(start) => (start, false),
                XmlEvent::Empty(start) => (start, true),
                XmlEvent::End(_) => break,
                XmlEvent::Eof => return Err(self.error(XesErrorKind::UnexpectedEof)),
                _ => continue,
            };
            let Some((kind, key, value)) = self.raw_attribute(&start)? else {
                if !is_empty {
                    self.skip_children()?;
                }
                continue;
            };
            // The classifier and the standard extensions get dedicated fields;
            // the activity is interned straight from the buffer, without a copy.
            match (key.as_ref(), kind) {
                ("concept:name", _) => activity = Some(self.log.activities.intern(&value)),
                ("time:timestamp", AttributeType::Date) => {
                    timestamp_us = Some(self.timestamp(&key, &value)?);
                }
                ("lifecycle:transition", _) => lifecycle = Some(self.pool.get(&value)),
                ("org:resource", _) => resource = Some(self.pool.get(&value)),
                _ => {
                    let value = self.typed_value(kind, &key, value)?;
                    if attributes.len() >= self.limits.max_attributes_per_element {
                        return Err(self
                            .error(XesErrorKind::TooManyAttributes { limit: self.limits.max_attributes_per_element }));
                    }
                    attributes.push(Attribute { key: self.pool.get(&key), value });
                }
            }
            if !is_empty {
                self.skip_children()?;
            }
        }
        self.buffers.push(buf);
        let Some(activity) = activity else {
            return Err(self.error(XesErrorKind::MissingActivity));
        };
        Ok(Event { activity, timestamp_us, lifecycle, resource, attributes })
    }

    /// Parses an attribute element of a log or trace into an owned attribute;
    /// `None` for lists, containers and unknown elements.
    fn attribute(&mut self, start: &BytesStart<'_>, log_level: bool) -> Result<Option<Attribute>, XesError> {
        // Log-level declarations are not attributes.
        if log_level && matches!(start.local_name().as_ref(), b"extension" | b"global" | b"classifier") {
            return Ok(None);
        }
        let Some((kind, key, value)) = self.raw_attribute(start)? else {
            return Ok(None);
        };
        let value = self.typed_value(kind, &key, value)?;
        Ok(Some(Attribute { key: self.pool.get(&key), value }))
    }

    /// Reads the key and the decoded value text of a scalar attribute element.
    fn raw_attribute<'s>(&self, start: &'s BytesStart<'_>) -> Result<Option<RawAttribute<'s>>, XesError> {
        let element = start.local_name();
        let Some(kind) = AttributeType::from_tag(element.as_ref()) else {
            return Ok(None);
        };
        if kind == AttributeType::Composite {
            return Ok(None);
        }
        let mut key = None;
        let mut value = None;
        for attribute in start.attributes().with_checks(false) {
            let attribute = attribute.map_err(|error| self.error(XesErrorKind::Xml(error.to_string())))?;
            match attribute.key.as_ref() {
                b"key" => key = Some(self.decode_key(attribute.value)?),
                b"value" => value = Some(self.decode(attribute.value)?),
                _ => {}
            }
        }
        let Some(key) = key else {
            let element = String::from_utf8_lossy(element.as_ref()).into_owned();
            return Err(self.error(XesErrorKind::MissingKey { element }));
        };
        let Some(value) = value else {
            return Err(self.error(XesErrorKind::MissingValue { key: excerpt(&key) }));
        };
        Ok(Some((kind, key, value)))
    }

    /// Decodes a key, skipping the work for the standard keys every event has.
    fn decode_key<'s>(&self, raw: Cow<'s, [u8]>) -> Result<Cow<'s, str>, XesError> {
        const STANDARD_KEYS: [&str; 4] = ["concept:name", "time:timestamp", "lifecycle:transition", "org:resource"];
        match STANDARD_KEYS.iter().find(|key| key.as_bytes() == raw.as_ref()) {
            Some(key) => Ok(Cow::Borrowed(key)),
            None => self.decode(raw),
        }
    }

    /// Decodes and unescapes an XML attribute value.
    fn decode<'s>(&self, raw: Cow<'s, [u8]>) -> Result<Cow<'s, str>, XesError> {
        let text: Cow<'s, str> = if self.latin1 {
            Cow::Owned(raw.iter().map(|&byte| char::from(byte)).collect())
        } else {
            match raw {
                Cow::Borrowed(bytes) => {
                    Cow::Borrowed(std::str::from_utf8(bytes).map_err(|_| self.error(XesErrorKind::InvalidUtf8))?)
                }
                Cow::Owned(bytes) => {
                    Cow::Owned(String::from_utf8(bytes).map_err(|_| self.error(XesErrorKind::InvalidUtf8))?)
                }
            }
        };
        if !text.contains('&') {
            return Ok(text);
        }
        let unescaped = quick_xml::escape::unescape(&text)
            .map_err(|error| self.error(XesErrorKind::BadEscape(error.to_string())))?;
        Ok(Cow::Owned(unescaped.into_owned()))
    }

    fn timestamp(&self, key: &str, value: &str) -> Result<i64, XesError> {
        parse_timestamp_us(value)
            .ok_or_else(|| self.error(XesErrorKind::BadTimestamp { key: excerpt(key), value: excerpt(value) }))
    }

    fn typed_value(&mut self, kind: AttributeType, key: &str, value: Cow<'_, str>) -> Result<AttributeValue, XesError> {
        Ok(match kind {
            AttributeType::String | AttributeType::Composite => AttributeValue::String(self.pool.get(&value)),
            AttributeType::Id => AttributeValue::Id(self.pool.get(&value)),
            AttributeType::Date => AttributeValue::Date(self.timestamp(key, &value)?),
            AttributeType::Int => {
                AttributeValue::Int(value.trim().parse().map_err(|_| self.bad_value("int", key, &value))?)
            }
            AttributeType::Float => {
                AttributeValue::Float(value.trim().parse().map_err(|_| self.bad_value("float", key, &value))?)
            }
            AttributeType::Boolean => AttributeValue::Boolean(match value.trim().to_ascii_lowercase().as_str() {
                "true" | "1" => true,
                "false" | "0" => false,
                _ => return Err(self.bad_value("boolean", key, &value)),
            }),
        })
    }

    fn bad_value(&self, type_name: &'static str, key: &str, value: &str) -> XesError {
        self.error(XesErrorKind::BadValue { type_name, key: excerpt(key), value: excerpt(value) })
    }
}

/// The text of a scalar value, used for ids such as the case id.
fn scalar_text(value: AttributeValue) -> String {
    match value {
        AttributeValue::String(text) | AttributeValue::Id(text) => text.to_string(),
        AttributeValue::Date(timestamp_us) => crate::timestamp::format_timestamp_us(timestamp_us),
        AttributeValue::Int(number) => number.to_string(),
        AttributeValue::Float(number) => number.to_string(),
        AttributeValue::Boolean(flag) => flag.to_string(),
    }
}
