//! Turning source text into the typed model, and finding where a path of the
//! model is written in that text.

use std::fmt;
use std::sync::LazyLock;

use regex::Regex;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::{Diagnostic, SourceFormat, Template};

/// Reads the source into a template, or reports the first syntax or shape
/// error with its path, line and column.
pub(crate) fn read(source: &str, format: SourceFormat) -> Result<Template, Diagnostic> {
    match format {
        SourceFormat::Yaml => read_yaml(source),
        SourceFormat::Json => read_json(source),
    }
}

fn read_yaml(source: &str) -> Result<Template, Diagnostic> {
    let de = serde_yaml::Deserializer::from_str(source);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = render_path(e.path());
        let inner = e.into_inner();
        let message = clean_message(&inner.to_string(), &path);
        let mut d = Diagnostic::new(path, message);
        if let Some(location) = inner.location() {
            d.line = u32::try_from(location.line()).ok();
            d.column = u32::try_from(location.column()).ok();
        }
        d
    })
}

fn read_json(source: &str) -> Result<Template, Diagnostic> {
    let mut de = serde_json::Deserializer::from_str(source);
    let template = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = render_path(e.path());
        json_diagnostic(path, e.inner())
    })?;
    // Anything after the template (a second object, stray text) is an error.
    de.end().map_err(|e| json_diagnostic(String::new(), &e))?;
    Ok(template)
}

fn json_diagnostic(path: String, e: &serde_json::Error) -> Diagnostic {
    let message = clean_message(&e.to_string(), &path);
    let mut d = Diagnostic::new(path, message);
    if e.line() > 0 {
        d.line = u32::try_from(e.line()).ok();
        d.column = u32::try_from(e.column()).ok();
    }
    d
}

/// Renders a serde path as `tasks[2].fields[0]`; the root is the empty string.
fn render_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Enum { .. } | Segment::Unknown => {}
        }
    }
    out
}

/// Both parsers append positions (and serde_yaml the path) to their
/// messages; the diagnostic carries those separately, so they are taken out.
fn clean_message(message: &str, path: &str) -> String {
    static POSITION: LazyLock<Option<Regex>> =
        LazyLock::new(|| Regex::new(r" at (?:line \d+ column \d+|position \d+)").ok());
    let text = match &*POSITION {
        Some(re) => re.replace_all(message, "").into_owned(),
        None => message.to_owned(),
    };
    // serde_yaml prefixes the path of the node it was reading, which is the
    // error's path or one of its ancestors.
    match text.split_once(": ") {
        Some((head, rest)) if is_ancestor_or_self(head, path) => rest.to_owned(),
        _ => text,
    }
}

/// Whether `head` is `path` or a path that contains it, like `tasks[0]` for
/// `tasks[0].key`.
fn is_ancestor_or_self(head: &str, path: &str) -> bool {
    !head.is_empty() && path.strip_prefix(head).is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
}

/// One step of a diagnostic path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

/// Splits `tasks[2].fields[0].key` into its steps.
fn steps(path: &str) -> Option<Vec<Step>> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (name, mut rest) = match part.find('[') {
            Some(at) => part.split_at(at),
            None => (part, ""),
        };
        if !name.is_empty() {
            out.push(Step::Key(name.to_owned()));
        }
        while let Some(inner) = rest.strip_prefix('[') {
            let close = inner.find(']')?;
            out.push(Step::Index(inner[..close].parse().ok()?));
            rest = &inner[close + 1..];
        }
        if !rest.is_empty() {
            return None;
        }
    }
    Some(out)
}

/// Finds the line and column where the value at `path` is written.
///
/// The parser that built the model is run again with a visitor that walks
/// down the path and fails on purpose at its end; the parser then reports the
/// position of that node, so positions always agree with what was parsed.
/// A path that does not exist as written (a default filled in by the model)
/// falls back to its nearest written ancestor, short of the whole document.
pub(crate) fn locate(source: &str, format: SourceFormat, path: &str) -> Option<(u32, u32)> {
    let steps = steps(path)?;
    (1..=steps.len()).rev().find_map(|n| locate_exact(source, format, &steps[..n]))
}

/// The message of the deliberate failure, to tell it apart from real errors.
const HERE: &str = "\u{0}attest-locate-here";

fn locate_exact(source: &str, format: SourceFormat, steps: &[Step]) -> Option<(u32, u32)> {
    let probe = Probe { steps };
    let (message, line, column) = match format {
        SourceFormat::Yaml => {
            let err = probe.deserialize(serde_yaml::Deserializer::from_str(source)).err()?;
            let location = err.location()?;
            (err.to_string(), location.line(), location.column())
        }
        SourceFormat::Json => {
            let err = probe.deserialize(&mut serde_json::Deserializer::from_str(source)).err()?;
            (err.to_string(), err.line(), err.column())
        }
    };
    if !message.contains(HERE) || line == 0 {
        return None;
    }
    Some((u32::try_from(line).ok()?, u32::try_from(column).ok()?))
}

/// Walks the document along `steps` and fails at the node they lead to.
struct Probe<'a> {
    steps: &'a [Step],
}

impl<'de> DeserializeSeed<'de> for Probe<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl Probe<'_> {
    /// At the end of the path every node fails; elsewhere a scalar is a dead end.
    fn arrive<E: de::Error>(&self) -> Result<(), E> {
        if self.steps.is_empty() { Err(E::custom(HERE)) } else { Ok(()) }
    }
}

impl<'de> Visitor<'de> for Probe<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.arrive()
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.arrive()
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.arrive()
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.arrive()
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.arrive()
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.arrive()
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.arrive()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Some((first, rest)) = self.steps.split_first() else {
            return Err(de::Error::custom(HERE));
        };
        let Step::Index(index) = first else {
            return Ok(());
        };
        for _ in 0..*index {
            if seq.next_element::<IgnoredAny>()?.is_none() {
                return Ok(());
            }
        }
        seq.next_element_seed(Probe { steps: rest })?;
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some((first, rest)) = self.steps.split_first() else {
            return Err(de::Error::custom(HERE));
        };
        let Step::Key(wanted) = first else {
            return Ok(());
        };
        while let Some(key) = map.next_key::<KeyText>()? {
            if key.0 == *wanted {
                return map.next_value_seed(Probe { steps: rest });
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }
}

/// A mapping key of any scalar kind, as text.
struct KeyText(String);

impl<'de> de::Deserialize<'de> for KeyText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(KeyTextVisitor)
    }
}

struct KeyTextVisitor;

impl<'de> Visitor<'de> for KeyTextVisitor {
    type Value = KeyText;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<KeyText, E> {
        Ok(KeyText(v.to_owned()))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<KeyText, E> {
        Ok(KeyText(v.to_string()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<KeyText, E> {
        Ok(KeyText(v.to_string()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<KeyText, E> {
        Ok(KeyText(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<KeyText, E> {
        Ok(KeyText(v.to_string()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<KeyText, E> {
        Ok(KeyText(String::new()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_split_keys_and_indexes() {
        assert_eq!(
            steps("tasks[2].fields[0].key"),
            Some(vec![
                Step::Key("tasks".into()),
                Step::Index(2),
                Step::Key("fields".into()),
                Step::Index(0),
                Step::Key("key".into()),
            ])
        );
        assert_eq!(steps(""), Some(vec![]));
        assert_eq!(steps("tasks[x]"), None);
        assert_eq!(steps("tasks[1"), None);
    }

    #[test]
    fn messages_lose_positions_and_yaml_paths() {
        assert_eq!(
            clean_message(
                "tasks[0].fields[1]: unknown field `x`, expected `y` at line 3 column 7",
                "tasks[0].fields[1]"
            ),
            "unknown field `x`, expected `y`"
        );
        assert_eq!(
            clean_message(
                "did not find expected key at line 4 column 1, while parsing a block mapping at line 2 column 1",
                ""
            ),
            "did not find expected key, while parsing a block mapping"
        );
        assert_eq!(clean_message("tasks[0]: duplicate field `key`", "tasks[0].key"), "duplicate field `key`");
        assert_eq!(
            clean_message("invalid type: string \"a\", expected u32", "name"),
            "invalid type: string \"a\", expected u32"
        );
    }

    #[test]
    fn locate_finds_yaml_and_json_nodes() {
        let yaml = "a: 1\nlist:\n  - x\n  - { k: v, m: [1, 2] }\n";
        assert_eq!(locate(yaml, SourceFormat::Yaml, "list[1].m[1]"), Some((4, 20)));
        assert_eq!(locate(yaml, SourceFormat::Yaml, "list[1]"), Some((4, 5)));
        // A missing key falls back to the nearest ancestor that is written.
        assert_eq!(locate(yaml, SourceFormat::Yaml, "list[1].zz"), Some((4, 5)));
        let json = "{\n  \"a\": 1,\n  \"list\": [\"x\", {\"k\": \"v\"}]\n}";
        assert_eq!(locate(json, SourceFormat::Json, "list[1].k").map(|p| p.0), Some(3));
    }
}
