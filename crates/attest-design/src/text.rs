//! Text helpers shared by the diagram and the diff: XML escaping, shortening
//! to a width, and conditions in words.

use attest_template::{Condition, Op};
use serde_json::Value;

/// Escapes text for XML/HTML element content and attribute values.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters are not allowed in XML 1.0; they carry no meaning here.
            c if c.is_control() && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

/// At most `max_chars` characters, ending in an ellipsis when shortened.
pub(crate) fn shorten(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max_chars.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// A condition in words, like `annual_spend > 10000 or risk is high`.
pub fn condition_text(c: &Condition) -> String {
    match c {
        Condition::Compare { field, op, value } => {
            let op_text = match op {
                Op::Is => "is",
                Op::IsNot => "is not",
                Op::HasValue => "has a value",
                Op::HasNoValue => "has no value",
                Op::Gt => ">",
                Op::Gte => "≥",
                Op::Lt => "<",
                Op::Lte => "≤",
                Op::Contains => "contains",
            };
            match value {
                Some(v) if op.takes_value() => format!("{field} {op_text} {}", value_text(v)),
                _ => format!("{field} {op_text}"),
            }
        }
        Condition::All { all } => join(all, " and "),
        Condition::Any { any } => join(any, " or "),
        Condition::Not { not } => format!("not ({})", condition_text(not)),
    }
}

fn join(parts: &[Condition], sep: &str) -> String {
    let texts: Vec<String> = parts
        .iter()
        .map(|p| match p {
            Condition::Compare { .. } | Condition::Not { .. } => condition_text(p),
            _ => format!("({})", condition_text(p)),
        })
        .collect();
    texts.join(sep)
}

/// A JSON value as a reader would write it: text without quotes.
pub(crate) fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "nothing".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(escape(r#"<a href="x">&'"#), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
        assert_eq!(escape("bell\u{7}"), "bell");
    }

    #[test]
    fn shorten_keeps_short_text_and_marks_cuts() {
        assert_eq!(shorten("short", 10), "short");
        assert_eq!(shorten("a long task name", 6), "a lon…");
    }

    #[test]
    fn conditions_read_as_words() {
        let c: Condition = attest_template::parse(
            "format: attest/v1\nkey: k\nname: n\ntasks:\n  - key: a\n    name: A\n    assignee: starter\n    fields:\n      - { key: spend, label: S, type: number }\n      - { key: pd, label: P, type: checkbox }\n  - key: b\n    name: B\n    assignee: starter\n    show_when: { any: [ { field: spend, op: gt, value: 10000 }, { not: { field: pd, op: is, value: true } }, { all: [ { field: pd, op: has_value }, { field: spend, op: lte, value: 5 } ] } ] }\n",
            attest_template::SourceFormat::Yaml,
            None,
        )
        .map(|t| t.tasks[1].show_when.clone())
        .ok()
        .flatten()
        .expect("the test template parses");
        assert_eq!(condition_text(&c), "spend > 10000 or not (pd is true) or (pd has a value and spend ≤ 5)");
    }
}
