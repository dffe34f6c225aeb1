//! XES writer producing documents that ProM, pm4py and this crate's reader accept.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;

use crate::log::{Attribute, AttributeValue, EventLog};
use crate::timestamp::format_timestamp_us;

/// A failure to write XES.
#[derive(Debug, thiserror::Error)]
pub enum XesWriteError {
    /// The output could not be written.
    #[error("cannot write XES: {0}")]
    Io(#[from] io::Error),
    /// A value holds a character that XML 1.0 cannot represent at all.
    #[error("{context} contains the character U+{code:04X}, which XML 1.0 cannot represent")]
    InvalidXmlChar {
        /// Which value: the key or the case id it belongs to.
        context: String,
        /// The offending code point.
        code: u32,
    },
}

const HEADER: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<log xes.version="1849-2016" xes.features="nested-attributes" xmlns="http://www.xes-standard.org/">
  <extension name="Concept" prefix="concept" uri="http://www.xes-standard.org/concept.xesext"/>
  <extension name="Time" prefix="time" uri="http://www.xes-standard.org/time.xesext"/>
  <extension name="Lifecycle" prefix="lifecycle" uri="http://www.xes-standard.org/lifecycle.xesext"/>
  <extension name="Organizational" prefix="org" uri="http://www.xes-standard.org/org.xesext"/>
  <classifier name="Activity" keys="concept:name"/>
"#;

/// Writes `log` as an XES document; gzipped when `path` ends in `.gz`.
pub fn write_xes_file(log: &EventLog, path: &Path) -> Result<(), XesWriteError> {
    let file = File::create(path)?;
    let gzip = path.extension().is_some_and(|extension| extension.eq_ignore_ascii_case("gz"));
    if gzip {
        let mut encoder = GzEncoder::new(BufWriter::new(file), Compression::default());
        write_xes(log, &mut encoder)?;
        encoder.finish()?.flush()?;
    } else {
        let mut out = BufWriter::new(file);
        write_xes(log, &mut out)?;
        out.flush()?;
    }
    Ok(())
}

/// Writes `log` as a plain XES document.
///
/// The activity, timestamp, lifecycle and resource are written with the
/// standard `concept`, `time`, `lifecycle` and `org` keys; dates are in UTC.
pub fn write_xes<W: Write>(log: &EventLog, out: W) -> Result<(), XesWriteError> {
    let mut out = BufWriter::new(out);
    out.write_all(HEADER.as_bytes())?;
    for attribute in &log.attributes {
        write_attribute(&mut out, "  ", attribute)?;
    }
    for trace in &log.traces {
        out.write_all(b"  <trace>\n")?;
        write_string(&mut out, "    ", "string", "concept:name", &trace.case_id)?;
        for attribute in &trace.attributes {
            write_attribute(&mut out, "    ", attribute)?;
        }
        for event in &trace.events {
            out.write_all(b"    <event>\n")?;
            let indent = "      ";
            let activity = log.activity_name(event.activity);
            write_string(&mut out, indent, "string", "concept:name", activity)?;
            if let Some(timestamp_us) = event.timestamp_us {
                let value = format_timestamp_us(timestamp_us);
                write_string(&mut out, indent, "date", "time:timestamp", &value)?;
            }
            if let Some(lifecycle) = &event.lifecycle {
                write_string(&mut out, indent, "string", "lifecycle:transition", lifecycle)?;
            }
            if let Some(resource) = &event.resource {
                write_string(&mut out, indent, "string", "org:resource", resource)?;
            }
            for attribute in &event.attributes {
                write_attribute(&mut out, indent, attribute)?;
            }
            out.write_all(b"    </event>\n")?;
        }
        out.write_all(b"  </trace>\n")?;
    }
    out.write_all(b"</log>\n")?;
    out.flush()?;
    Ok(())
}

fn write_attribute<W: Write>(out: &mut W, indent: &str, attribute: &Attribute) -> Result<(), XesWriteError> {
    let key = &attribute.key;
    match &attribute.value {
        AttributeValue::String(text) => write_string(out, indent, "string", key, text),
        AttributeValue::Id(text) => write_string(out, indent, "id", key, text),
        AttributeValue::Date(timestamp_us) => {
            write_string(out, indent, "date", key, &format_timestamp_us(*timestamp_us))
        }
        AttributeValue::Int(number) => write_string(out, indent, "int", key, &number.to_string()),
        AttributeValue::Float(number) => {
            let text = if number.is_nan() {
                "NaN".to_owned()
            } else if number.is_infinite() {
                if *number > 0.0 { "INF" } else { "-INF" }.to_owned()
            } else {
                format!("{number:?}")
            };
            write_string(out, indent, "float", key, &text)
        }
        AttributeValue::Boolean(flag) => write_string(out, indent, "boolean", key, &flag.to_string()),
    }
}

fn write_string<W: Write>(
    out: &mut W,
    indent: &str,
    element: &str,
    key: &str,
    value: &str,
) -> Result<(), XesWriteError> {
    write!(out, "{indent}<{element} key=\"")?;
    write_escaped(out, key, key)?;
    out.write_all(b"\" value=\"")?;
    write_escaped(out, value, key)?;
    out.write_all(b"\"/>\n")?;
    Ok(())
}

/// Escapes for a double-quoted XML attribute; tabs and line breaks become
/// character references so that XML attribute normalisation keeps them.
fn write_escaped<W: Write>(out: &mut W, text: &str, context: &str) -> Result<(), XesWriteError> {
    let mut plain_start = 0;
    for (index, ch) in text.char_indices() {
        let replacement = match ch {
            '&' => "&amp;",
            '<' => "&lt;",
            '>' => "&gt;",
            '"' => "&quot;",
            '\t' => "&#9;",
            '\n' => "&#10;",
            '\r' => "&#13;",
            '\u{0}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}' => {
                return Err(XesWriteError::InvalidXmlChar {
                    context: format!("the value of {context:?}"),
                    code: u32::from(ch),
                });
            }
            _ => continue,
        };
        out.write_all(&text.as_bytes()[plain_start..index])?;
        out.write_all(replacement.as_bytes())?;
        plain_start = index + ch.len_utf8();
    }
    out.write_all(&text.as_bytes()[plain_start..])?;
    Ok(())
}
