//! XES reader behaviour on handmade documents: attributes, ordering, limits and errors.

use std::io::Read;
use std::path::Path;

use attest_mining::{AttributeValue, ReadLimits, XesErrorKind, read_xes, read_xes_file, summarize};

fn read(text: &str) -> Result<attest_mining::EventLog, attest_mining::XesError> {
    read_xes(text.as_bytes(), &ReadLimits::default())
}

const DOC: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<log xes.version="1.0" xmlns="http://www.xes-standard.org/">
  <extension name="Concept" prefix="concept" uri="http://www.xes-standard.org/concept.xesext"/>
  <global scope="event"><string key="concept:name" value="__INVALID__"/></global>
  <classifier name="Activity" keys="concept:name"/>
  <string key="source" value="handmade"/>
  <trace>
    <string key="concept:name" value="case &amp; 1"/>
    <int key="priority" value="3"/>
    <event>
      <string key="concept:name" value="b"/>
      <date key="time:timestamp" value="2024-01-01T10:00:00+00:00"/>
      <list key="tags"><values><string key="concept:name" value="NOT AN ACTIVITY"/></values></list>
      <float key="cost" value="2.5"><string key="currency" value="EUR"/></float>
      <boolean key="urgent" value="true"/>
      <id key="ref" value="f81d4fae-7dec-11d0-a765-00a0c91e6bf6"/>
    </event>
    <event>
      <string key="concept:name" value="a"/>
      <string key="org:resource" value="Ann"/>
      <string key="lifecycle:transition" value="complete"/>
      <date key="time:timestamp" value="2024-01-01T09:00:00+00:00"/>
    </event>
    <event>
      <string key="concept:name" value="c"/>
      <date key="time:timestamp" value="2024-01-01T10:00:00Z"/>
    </event>
    <event>
      <string key="concept:name" value="untimed"/>
    </event>
  </trace>
</log>
"#;

#[test]
fn reads_typed_attributes_and_orders_events_stably_by_time() {
    let log = read(DOC).expect("valid document");
    assert_eq!(log.attributes.len(), 1, "declarations are not attributes");
    let trace = &log.traces[0];
    assert_eq!(trace.case_id, "case & 1");
    assert_eq!(trace.attributes[0].value, AttributeValue::Int(3));
    let names: Vec<&str> = trace.events.iter().map(|event| log.activity_name(event.activity)).collect();
    // a (09:00), then b and c tie at 10:00 and keep their order, the untimed event last.
    assert_eq!(names, ["a", "b", "c", "untimed"]);
    assert_eq!(trace.events[0].resource.as_deref(), Some("Ann"));
    assert_eq!(trace.events[0].lifecycle.as_deref(), Some("complete"));
    let b = &trace.events[1];
    let values: Vec<&AttributeValue> = b.attributes.iter().map(|a| &a.value).collect();
    assert_eq!(
        values,
        [
            &AttributeValue::Float(2.5),
            &AttributeValue::Boolean(true),
            &AttributeValue::Id("f81d4fae-7dec-11d0-a765-00a0c91e6bf6".into()),
        ]
    );
    assert_eq!(summarize(&log).activities, 4);
}

#[test]
fn reads_latin1_documents() {
    let mut bytes = br#"<?xml version="1.0" encoding="ISO-8859-1"?><log><trace><string key="concept:name" value="1"/><event><string key="concept:name" value="caf"#.to_vec();
    bytes.push(0xe9);
    bytes.extend_from_slice(br#""/></event></trace></log>"#);
    let log = read_xes(bytes.as_slice(), &ReadLimits::default()).expect("latin-1");
    assert_eq!(log.activities.name(log.traces[0].events[0].activity), "café");
}

fn error_of(text: &str) -> attest_mining::XesError {
    read(text).expect_err("invalid document")
}

#[test]
fn bad_timestamp_names_line_trace_and_event() {
    let text = DOC.replace("2024-01-01T10:00:00Z", "2024-13-01T10:00:00Z");
    let error = error_of(&text);
    assert!(matches!(error.kind, XesErrorKind::BadTimestamp { .. }), "{error}");
    assert_eq!(error.location.line, 26);
    assert_eq!(error.location.trace_index, Some(0));
    assert_eq!(error.location.event_index, Some(2));
    let message = error.to_string();
    assert!(message.contains("2024-13-01T10:00:00Z") && message.contains("line 26"), "{message}");
}

#[test]
fn missing_activity_and_case_id_are_errors() {
    let text = DOC.replace(r#"<string key="concept:name" value="untimed"/>"#, "");
    let error = error_of(&text);
    assert!(matches!(error.kind, XesErrorKind::MissingActivity), "{error}");
    assert_eq!((error.location.trace_index, error.location.event_index), (Some(0), Some(3)));

    let text = DOC.replace(r#"<string key="concept:name" value="case &amp; 1"/>"#, "");
    let error = error_of(&text);
    assert!(matches!(error.kind, XesErrorKind::MissingCaseId), "{error}");
}

#[test]
fn malformed_values_and_documents_are_errors() {
    let error = error_of(&DOC.replace(r#"value="3""#, r#"value="three""#));
    assert!(matches!(error.kind, XesErrorKind::BadValue { type_name: "int", .. }), "{error}");
    let error = error_of("<html><body/></html>");
    assert!(matches!(error.kind, XesErrorKind::NotXes { ref root } if root == "html"), "{error}");
    let error = error_of(&DOC[..DOC.len() / 2]);
    assert!(matches!(error.kind, XesErrorKind::UnexpectedEof), "{error}");
    let error = error_of(&DOC.replace("</event>\n    <event>", "</trace>\n    <event>"));
    assert!(matches!(error.kind, XesErrorKind::Xml(_)), "{error}");
    let error = error_of("");
    assert!(matches!(error.kind, XesErrorKind::NotXes { .. }), "{error}");
}

#[test]
fn event_and_depth_limits_are_enforced() {
    let limits = ReadLimits { max_events: 3, ..ReadLimits::default() };
    let error = read_xes(DOC.as_bytes(), &limits).expect_err("four events");
    assert!(matches!(error.kind, XesErrorKind::TooManyEvents { limit: 3 }), "{error}");

    let deep = format!(
        "<log><trace><string key=\"concept:name\" value=\"1\"/><event><string key=\"concept:name\" value=\"a\">{}",
        "<string key=\"x\" value=\"y\">".repeat(100)
    );
    let error = error_of(&deep);
    assert!(matches!(error.kind, XesErrorKind::TooDeep { limit: 64 }), "{error}");
}

/// Serves an XES prefix and then an attribute value of `total` bytes, counting what was read.
struct HugeValue {
    prefix: &'static [u8],
    served: u64,
    total: u64,
}

impl Read for HugeValue {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let mut written = 0;
        while written < out.len() && self.served < self.total {
            let index = self.served as usize;
            out[written] = self.prefix.get(index).copied().unwrap_or(b'a');
            written += 1;
            self.served += 1;
        }
        Ok(written)
    }
}

#[test]
fn a_gigabyte_attribute_value_is_refused_after_reading_about_a_mebibyte() {
    let mut input = HugeValue {
        prefix: br#"<log><trace><string key="concept:name" value="1"/><event><string key="concept:name" value=""#,
        served: 0,
        total: 1 << 30,
    };
    let error = read_xes(&mut input, &ReadLimits::default()).expect_err("too long");
    assert!(matches!(error.kind, XesErrorKind::TokenTooLong { limit_bytes: 1_048_576 }), "{error}");
    assert_eq!(error.location.event_index, Some(0));
    // Only the limit plus one buffer was read, so nothing near 1 GiB was allocated.
    assert!(input.served < 2 << 20, "read {} bytes", input.served);
}

#[test]
fn truncated_gzip_is_reported_as_such() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/logs/03_repairExample.xes.gz");
    let bytes = std::fs::read(&path).expect("shared log");
    let error = read_xes(&bytes[..bytes.len() / 2], &ReadLimits::default()).expect_err("truncated");
    assert!(matches!(error.kind, XesErrorKind::TruncatedGzip), "{error}");
    assert!(error.location.line > 1000, "{error}");

    // The same through a file, and with only the gzip trailer missing.
    let dir = tempfile::tempdir().expect("temp dir");
    let truncated = dir.path().join("truncated.xes.gz");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).expect("write");
    let error = read_xes_file(&truncated, &ReadLimits::default()).expect_err("truncated file");
    assert!(matches!(error.kind, XesErrorKind::TruncatedGzip), "{error}");
    let trailer_cut = dir.path().join("trailer.xes.gz");
    std::fs::write(&trailer_cut, &bytes[..bytes.len() - 4]).expect("write");
    let error = read_xes_file(&trailer_cut, &ReadLimits::default()).expect_err("no gzip trailer");
    assert!(matches!(error.kind, XesErrorKind::TruncatedGzip), "{error}");

    let mut corrupt = bytes.clone();
    for byte in &mut corrupt[200..400] {
        *byte ^= 0x5a;
    }
    let error = read_xes(corrupt.as_slice(), &ReadLimits::default()).expect_err("corrupt");
    assert!(
        matches!(
            error.kind,
            XesErrorKind::CorruptGzip(_)
                | XesErrorKind::Xml(_)
                | XesErrorKind::InvalidUtf8
                | XesErrorKind::TokenTooLong { .. }
        ),
        "{error}"
    );
}

#[test]
fn missing_file_is_an_io_error() {
    let error = read_xes_file(Path::new("/nonexistent/log.xes"), &ReadLimits::default()).expect_err("no file");
    assert!(matches!(error.kind, XesErrorKind::Io(_)), "{error}");
}
