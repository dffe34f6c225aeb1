//! Field values: coercion of what people type into typed JSON, and validation
//! against the field's rules. Forms and the CLI send strings; the API may send
//! typed JSON. Both end up as the same normalised value, so the events hold
//! one representation per type.

use attest_template::{
    DateBase, DateBound, DateRules, EmailRules, Field, FieldKind, FileRules, NumberRules, OptionRules, TableRules,
    TextRules,
};
use jiff::civil::Date;
use serde_json::{Map, Value};

use crate::compiled::CompiledTemplate;
use crate::event::{FileRef, Values};

/// Longest text any single value may hold, whatever the field says.
pub const MAX_VALUE_CHARS: usize = 100_000;
/// Most rows a table value may hold, whatever the field says.
pub const MAX_TABLE_ROWS: usize = 1_000;
/// Most entries a list value may hold.
pub const MAX_LIST_ITEMS: usize = 500;

/// What a date bound is compared with besides fixed dates.
#[derive(Debug)]
pub struct DateContext<'a> {
    /// When the run started; its UTC day is what `run_started` bounds count
    /// from, found only when a bound names it.
    pub run_started_at: jiff::Timestamp,
    pub values: &'a Values,
    /// Changes over `values` not applied yet; a `null` clears a field.
    pub pending: Option<&'a Values>,
}

impl DateContext<'_> {
    fn value(&self, key: &str) -> Option<&Value> {
        match self.pending.and_then(|p| p.get(key)) {
            Some(v) if v.is_null() => None,
            Some(v) => Some(v),
            None => self.values.get(key),
        }
    }
}

/// Turns a raw value into the field's normalised form, or says why it cannot.
/// `Null` (and an empty string) means "no value" and is returned as `Null`.
pub fn normalise(field: &Field, raw: &Value) -> Result<Value, String> {
    normalise_owned(field, raw.clone())
}

/// [`normalise`] of a value the caller owns: text and lists already in their
/// normalised form are kept rather than copied, since every value a command
/// sets is normalised.
pub fn normalise_owned(field: &Field, raw: Value) -> Result<Value, String> {
    if is_empty(&raw) {
        return Ok(Value::Null);
    }
    // A string has no more characters than bytes, so only a long one is counted.
    if let Value::String(s) = &raw
        && s.len() > MAX_VALUE_CHARS
        && s.chars().count() > MAX_VALUE_CHARS
    {
        return Err(format!("is longer than {MAX_VALUE_CHARS} characters"));
    }
    match &field.kind {
        FieldKind::Text(_) | FieldKind::Textarea(_) | FieldKind::Url | FieldKind::Hidden | FieldKind::Select(_) => {
            scalar_string(raw).map(Value::String)
        }
        FieldKind::Email(_) => scalar_string(raw).map(|s| Value::String(trimmed_lowercase(s))),
        FieldKind::Number(_) => number(&raw),
        FieldKind::Date(_) => {
            let s = scalar_string(raw)?;
            // A date in the form it is written in is kept as it is.
            if canonical_date(&s).is_some() {
                return Ok(Value::String(s));
            }
            let d: Date = s.trim().parse().map_err(|_| format!("'{s}' is not a date like 2025-01-31"))?;
            Ok(Value::String(d.to_string()))
        }
        FieldKind::Datetime(_) => {
            let s = scalar_string(raw)?;
            let t: jiff::Timestamp =
                s.trim().parse().map_err(|_| format!("'{s}' is not a date and time like 2025-01-31T09:30:00Z"))?;
            Ok(Value::String(t.to_string()))
        }
        FieldKind::MultiChoice(_) => list_of_strings(raw).map(Value::Array),
        FieldKind::Checkbox => checkbox(&raw),
        FieldKind::Members(m) => {
            let emails: Vec<Value> = list_of_strings(raw)?
                .into_iter()
                .filter_map(|v| match v {
                    Value::String(s) => Some(Value::String(trimmed_lowercase(s))),
                    _ => None,
                })
                .collect();
            if !m.multiple && emails.len() > 1 {
                return Err("takes one person".into());
            }
            Ok(Value::Array(emails))
        }
        FieldKind::File(_) => {
            let file: FileRef = serde_json::from_value(raw)
                .map_err(|_| "must be a stored file reference: attach the file instead".to_string())?;
            serde_json::to_value(file).map_err(|e| e.to_string())
        }
        FieldKind::Table(_) => match raw {
            Value::Array(_) => Ok(raw),
            Value::String(s) => serde_json::from_str::<Value>(&s)
                .ok()
                .filter(Value::is_array)
                .ok_or_else(|| "must be a JSON list of rows".to_string()),
            _ => Err("must be a list of rows".into()),
        },
    }
}

/// A date parsed as the general parser does, with the `YYYY-MM-DD` form that
/// normalised dates hold read directly.
fn parse_date(text: &str) -> Option<Date> {
    canonical_date(text).or_else(|| text.parse().ok())
}

/// The date a text holds in the form dates are written in, `YYYY-MM-DD` with
/// a year from 1000, or `None` for any other text. Such a text is what the
/// date prints as.
fn canonical_date(text: &str) -> Option<Date> {
    let bytes = text.as_bytes();
    let [y1, y2, y3, y4, b'-', m1, m2, b'-', d1, d2] = *bytes else {
        return None;
    };
    let digits = |ds: &[u8]| ds.iter().try_fold(0i16, |n, d| d.is_ascii_digit().then(|| n * 10 + i16::from(d - b'0')));
    let year = digits(&[y1, y2, y3, y4]).filter(|y| *y >= 1000)?;
    let month = i8::try_from(digits(&[m1, m2])?).ok()?;
    let day = i8::try_from(digits(&[d1, d2])?).ok()?;
    Date::new(year, month, day).ok()
}

/// The text trimmed and in ASCII lowercase, lowercased in place when there is
/// nothing to trim.
fn trimmed_lowercase(mut s: String) -> String {
    if s.trim().len() == s.len() {
        s.make_ascii_lowercase();
        s
    } else {
        s.trim().to_ascii_lowercase()
    }
}

/// Checks a normalised, non-empty value against the field's rules.
pub fn validate(
    compiled: &CompiledTemplate,
    field: &Field,
    value: &Value,
    ctx: &DateContext<'_>,
) -> Result<(), String> {
    match &field.kind {
        FieldKind::Text(rules) | FieldKind::Textarea(rules) => {
            text(compiled, field, rules, value.as_str().unwrap_or_default())
        }
        FieldKind::Number(rules) => number_rules(rules, value),
        FieldKind::Email(rules) => email(rules, value.as_str().unwrap_or_default()),
        FieldKind::Url => url(value.as_str().unwrap_or_default()),
        FieldKind::Date(rules) => {
            let d = parse_date(value.as_str().unwrap_or_default()).ok_or("is not a date")?;
            date_bounds(rules, d, ctx)
        }
        FieldKind::Datetime(rules) => {
            let t: jiff::Timestamp =
                value.as_str().unwrap_or_default().parse().map_err(|_| "is not a timestamp".to_string())?;
            date_bounds(rules, utc_date(t), ctx)
        }
        FieldKind::Select(rules) => option(rules, value.as_str().unwrap_or_default()),
        FieldKind::MultiChoice(rules) => {
            let items = value.as_array().map(Vec::as_slice).unwrap_or_default();
            items.iter().try_for_each(|v| option(rules, v.as_str().unwrap_or_default()))
        }
        FieldKind::Checkbox | FieldKind::Hidden => Ok(()),
        FieldKind::Members(_) => {
            let items = value.as_array().map(Vec::as_slice).unwrap_or_default();
            items.iter().try_for_each(|v| email_syntax(v.as_str().unwrap_or_default()))
        }
        FieldKind::File(rules) => file(rules, value),
        FieldKind::Table(rules) => table(rules, value),
    }
}

/// Whether a value counts as "no value" for required-field checks.
pub fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => is_blank(s),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

fn scalar_string(raw: Value) -> Result<String, String> {
    match raw {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err("must be a single value, not a list or object".into()),
    }
}

fn number(raw: &Value) -> Result<Value, String> {
    let parsed = match raw {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().replace('_', "").parse::<f64>().ok(),
        _ => None,
    };
    let x = parsed.filter(|x| x.is_finite()).ok_or_else(|| format!("'{}' is not a number", display(raw)))?;
    // Whole numbers stay integers so that `5` and `5.0` are one value in the events.
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        Ok(Value::from(x as i64))
    } else {
        serde_json::Number::from_f64(x).map(Value::Number).ok_or_else(|| "is not a number".into())
    }
}

fn checkbox(raw: &Value) -> Result<Value, String> {
    match raw {
        Value::Bool(b) => Ok(Value::Bool(*b)),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => Ok(Value::Bool(true)),
            "false" | "no" | "off" | "0" => Ok(Value::Bool(false)),
            _ => Err(format!("'{s}' is not yes or no")),
        },
        _ => Err(format!("'{}' is not yes or no", display(raw))),
    }
}

fn list_of_strings(raw: Value) -> Result<Vec<Value>, String> {
    let items: Vec<Value> = match raw {
        Value::Array(items) => {
            items.into_iter().map(|v| scalar_string(v).map(Value::String)).collect::<Result<_, _>>()?
        }
        Value::String(s) => {
            s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| Value::String(s.to_string())).collect()
        }
        _ => return Err("must be a list".into()),
    };
    if items.len() > MAX_LIST_ITEMS {
        return Err(format!("has more than {MAX_LIST_ITEMS} entries"));
    }
    Ok(items)
}

fn text(compiled: &CompiledTemplate, field: &Field, rules: &TextRules, s: &str) -> Result<(), String> {
    let chars = s.chars().count();
    if let Some(min) = rules.min_length
        && chars < min as usize
    {
        return Err(format!("must be at least {min} characters"));
    }
    if let Some(max) = rules.max_length
        && chars > max as usize
    {
        return Err(format!("must be at most {max} characters"));
    }
    if let Some(re) = compiled.pattern(&field.key)
        && !re.is_match(s)
    {
        let pattern = rules.pattern.as_deref().unwrap_or_default();
        return Err(format!("must match the pattern {pattern}"));
    }
    Ok(())
}

fn number_rules(rules: &NumberRules, v: &Value) -> Result<(), String> {
    let x = v.as_f64().ok_or("is not a number")?;
    if let Some(min) = rules.min
        && x < min
    {
        return Err(format!("must be at least {min}"));
    }
    if let Some(max) = rules.max
        && x > max
    {
        return Err(format!("must be at most {max}"));
    }
    if let Some(decimals) = rules.decimals
        && decimal_places(&v.to_string()) > decimals as usize
    {
        return Err(match decimals {
            0 => "must be a whole number".into(),
            n => format!("must have at most {n} decimals"),
        });
    }
    Ok(())
}

/// Digits after the decimal point of a number as JSON prints it, also in
/// exponent form: `1e-6` has six, `1.5e16` and `9000000000000000.0` none.
fn decimal_places(text: &str) -> usize {
    let (mantissa, exponent) = text.split_once(['e', 'E']).unwrap_or((text, "0"));
    let fraction = mantissa.split_once('.').map_or("", |(_, f)| f).trim_end_matches('0');
    let places = fraction.len() as i64 - exponent.parse::<i64>().unwrap_or(0);
    usize::try_from(places).unwrap_or(0)
}

/// Light syntax check: one `@`, a non-empty local part, a dotted domain.
pub fn email_syntax(s: &str) -> Result<(), String> {
    if s.len() <= 254 && is_email(s) { Ok(()) } else { Err(format!("'{s}' is not an email address")) }
}

/// Whether the text is one `@` after a non-empty local part and before a
/// domain with a dot, not at either end, all without whitespace; read in one
/// pass over its bytes, as every email and member value is checked. `@`, `.`
/// and ASCII whitespace are single bytes that no other character contains;
/// only text with other characters is searched for whitespace among them.
fn is_email(s: &str) -> bool {
    let mut at = None;
    let mut dotted_domain = false;
    let mut ascii = true;
    for (i, &b) in s.as_bytes().iter().enumerate() {
        match b {
            b'@' if at.is_some() => return false,
            b'@' => at = Some(i),
            b'.' => dotted_domain |= at.is_some(),
            _ if is_ascii_whitespace_char(b) => return false,
            _ => ascii &= b.is_ascii(),
        }
    }
    let Some(at) = at else { return false };
    let domain = &s.as_bytes()[at + 1..];
    at > 0
        && dotted_domain
        && domain.first() != Some(&b'.')
        && domain.last() != Some(&b'.')
        && (ascii || !s.chars().any(char::is_whitespace))
}

/// Whether the text is empty or only whitespace, settled by its first byte
/// when that is ASCII and no whitespace, as it mostly is.
fn is_blank(s: &str) -> bool {
    match s.as_bytes().first() {
        None => true,
        Some(&b) if b.is_ascii() && !is_ascii_whitespace_char(b) => false,
        Some(_) => s.trim().is_empty(),
    }
}

/// Whether an ASCII byte is a character `char::is_whitespace` holds for:
/// space and tab to carriage return.
fn is_ascii_whitespace_char(b: u8) -> bool {
    matches!(b, b' ' | b'\t'..=b'\r')
}

fn email(rules: &EmailRules, s: &str) -> Result<(), String> {
    email_syntax(s)?;
    let domain = s.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
    let matches =
        |d: &String| domain == d.as_str() || domain.strip_suffix(d.as_str()).is_some_and(|rest| rest.ends_with('.'));
    if !rules.allow_domains.is_empty() && !rules.allow_domains.iter().any(matches) {
        return Err(format!("must be an address at {}", rules.allow_domains.join(" or ")));
    }
    if rules.block_domains.iter().any(matches) {
        return Err(format!("addresses at {domain} are not allowed"));
    }
    Ok(())
}

fn url(s: &str) -> Result<(), String> {
    let rest = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://"));
    match rest {
        Some(r) if !r.is_empty() && !r.starts_with('/') && !s.chars().any(char::is_whitespace) => Ok(()),
        _ => Err(format!("'{s}' is not an http or https address")),
    }
}

fn date_bounds(rules: &DateRules, d: Date, ctx: &DateContext<'_>) -> Result<(), String> {
    if let Some(bound) = &rules.not_before
        && let Some(limit) = resolve_bound(bound, ctx)
        && d < limit
    {
        return Err(format!("must not be before {limit} ({})", String::from(bound.clone())));
    }
    if let Some(bound) = &rules.not_after
        && let Some(limit) = resolve_bound(bound, ctx)
        && d > limit
    {
        return Err(format!("must not be after {limit} ({})", String::from(bound.clone())));
    }
    Ok(())
}

/// The date a bound stands for; `None` when it refers to a field with no value yet.
fn resolve_bound(bound: &DateBound, ctx: &DateContext<'_>) -> Option<Date> {
    let base = match &bound.base {
        DateBase::Date(d) => *d,
        DateBase::RunStarted => utc_date(ctx.run_started_at),
        DateBase::Field(k) => {
            let text = ctx.value(k)?.as_str()?;
            parse_date(text).or_else(|| text.parse::<jiff::Timestamp>().ok().map(utc_date))?
        }
    };
    base.checked_add(jiff::Span::new().days(i64::from(bound.offset_days))).ok()
}

fn utc_date(t: jiff::Timestamp) -> Date {
    jiff::tz::Offset::UTC.to_datetime(t).date()
}

fn option(rules: &OptionRules, s: &str) -> Result<(), String> {
    if rules.options.iter().any(|o| o == s) {
        Ok(())
    } else {
        Err(format!("'{s}' is not one of: {}", rules.options.join(", ")))
    }
}

fn file(rules: &FileRules, v: &Value) -> Result<(), String> {
    // A stored reference is an object with these members; reading them in place
    // spares a copy. Any other shape goes through serde, which decides as before.
    let stored = v.as_object().and_then(|o| {
        let (mut name, mut size, mut media_type, mut sha256) = (None, None, false, false);
        for (key, member) in o {
            match key.as_str() {
                "name" => name = Some(member.as_str()?),
                "size" => size = Some(member.as_u64()?),
                "media_type" => media_type = member.is_string(),
                "sha256" => sha256 = member.is_string(),
                _ => {}
            }
        }
        (media_type && sha256).then_some((name?, size?))
    });
    let parsed: FileRef;
    let (name, size) = match stored {
        Some(found) => found,
        None => {
            parsed = serde_json::from_value(v.clone()).map_err(|_| "is not a stored file reference".to_string())?;
            (&*parsed.name, parsed.size)
        }
    };
    file_name_and_size(rules, name, size)
}

/// Checks a file being attached against its field's rules: what [`validate`]
/// decides for the file's value, without building that value.
pub(crate) fn validate_file(rules: &FileRules, file: &FileRef) -> Result<(), String> {
    file_name_and_size(rules, &file.name, file.size)
}

fn file_name_and_size(rules: &FileRules, name: &str, size: u64) -> Result<(), String> {
    if !rules.accept.is_empty() {
        let ext = name.rsplit_once('.').map_or("", |(_, e)| e);
        // The extension in lower case equals an accepted one, compared without a lowercased copy.
        let accepted =
            |a: &String| a.len() == ext.len() && a.bytes().zip(ext.bytes()).all(|(a, e)| a == e.to_ascii_lowercase());
        if !rules.accept.iter().any(accepted) {
            return Err(format!("'{name}' must be one of: {}", rules.accept.join(", ")));
        }
    }
    if let Some(max) = rules.max_size_mb
        && size > u64::from(max) * 1024 * 1024
    {
        return Err(format!("'{name}' is larger than {max} MB"));
    }
    Ok(())
}

fn table(rules: &TableRules, v: &Value) -> Result<(), String> {
    let rows = v.as_array().ok_or("must be a list of rows")?;
    let max_rows = rules.max_rows.map_or(MAX_TABLE_ROWS, |m| (m as usize).min(MAX_TABLE_ROWS));
    if rows.len() > max_rows {
        return Err(format!("has more than {max_rows} rows"));
    }
    for (i, row) in rows.iter().enumerate() {
        let row: &Map<String, Value> = row.as_object().ok_or_else(|| format!("row {} is not an object", i + 1))?;
        if let Some(extra) = row.keys().find(|k| !rules.columns.iter().any(|c| &c.key == *k)) {
            return Err(format!("row {} has an unknown column '{extra}'", i + 1));
        }
        for col in &rules.columns {
            let cell = row.get(&col.key).unwrap_or(&Value::Null);
            if is_empty(cell) {
                if col.required {
                    return Err(format!("row {}: column '{}' is required", i + 1, col.key));
                }
                continue;
            }
            let ok = match col.column_type.as_str() {
                "number" => cell.is_number(),
                "checkbox" => cell.is_boolean(),
                "date" => cell.as_str().is_some_and(|s| s.parse::<Date>().is_ok()),
                _ => cell.is_string(),
            };
            if !ok {
                return Err(format!("row {}: column '{}' must be a {}", i + 1, col.key, col.column_type));
            }
        }
    }
    Ok(())
}

fn display(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn field(spec: &str) -> Field {
        let source = format!(
            "format: attest/v1\nkey: t\nname: T\ntasks:\n  - key: a\n    name: A\n    assignee: starter\n    fields:\n      - {{ key: f, label: F, {spec} }}\n"
        );
        let t = attest_template::parse(&source, attest_template::SourceFormat::Yaml, None).expect("parses");
        t.tasks[0].fields[0].clone()
    }

    #[test]
    fn a_date_in_its_written_form_is_read_as_the_parser_reads_it_and_prints_as_it_is() {
        let texts = [
            "2026-12-04",
            "2026-02-29",
            "2024-02-29",
            "2026-13-01",
            "2026-00-10",
            "2026-01-00",
            "2026-01-32",
            "0999-01-01",
            "1000-01-01",
            "9999-12-31",
            "0000-01-01",
            "2026-1-04",
            "2026-01-4",
            "20261204",
            " 2026-12-04",
            "2026-12-04 ",
            "2026/12/04",
            "2026-12-0x",
            "+2026-12-04",
            "2026-12-04T00:00:00",
        ];
        for text in texts {
            let parsed = text.parse::<Date>().ok();
            assert_eq!(parse_date(text), parsed, "{text}");
            if let Some(d) = canonical_date(text) {
                assert_eq!(d.to_string(), text, "{text}");
                assert_eq!(Some(d), parsed, "{text}");
            }
        }
        assert!(canonical_date("2026-12-04").is_some());
        assert!(canonical_date("0999-01-01").is_none());
    }

    #[test]
    fn blank_text_is_told_in_ascii_text_as_in_any_text() {
        for b in 0..=127u8 {
            let c = char::from(b);
            assert!(!is_blank(&format!("{c}x")), "{b:#x}");
            assert_eq!(is_blank(&format!("{c}")), c.is_whitespace(), "{b:#x}");
        }
        for text in ["", " ", "\t\n", "a", " a", "\u{2003}", "\u{2003}x", "\u{e9}", "x "] {
            assert_eq!(is_blank(text), text.trim().is_empty(), "{text:?}");
        }
    }

    #[test]
    fn an_email_address_is_told_in_one_pass_as_by_splitting_it_at_its_first_at() {
        let split = |s: &str| {
            s.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !s.chars().any(char::is_whitespace)
            })
        };
        let mut texts: Vec<String> = [
            "jo@example.com",
            "jo@example",
            "@example.com",
            "jo@",
            "jo@.example.com",
            "jo@example.com.",
            "jo.doe@example",
            "jo@ex@ample.com",
            "jo@@example.com",
            "j.o@e.x",
            "",
            "@",
            ".",
            "jo@exa mple.com",
            "caf\u{e9}@example.com",
            "jo@caf\u{e9}.fr",
            "jo@ex\u{2003}ample.com",
            "\u{e9}@\u{e9}.\u{e9}",
        ]
        .map(String::from)
        .to_vec();
        texts.extend((0..=127u8).map(|b| format!("a{}b@x.org", char::from(b))));
        texts.extend((0..=127u8).map(|b| format!("ab@x.o{}rg", char::from(b))));
        for text in &texts {
            assert_eq!(is_email(text), split(text), "{text:?}");
        }
    }

    #[test]
    fn emails_are_trimmed_and_lowercased_whether_or_not_they_have_spaces() {
        let email = field("type: email");
        assert_eq!(normalise(&email, &json!("Jo@Example.COM")), Ok(json!("jo@example.com")));
        assert_eq!(normalise(&email, &json!("  Jo@Example.COM ")), Ok(json!("jo@example.com")));
        let members = field("type: members, multiple: true");
        assert_eq!(normalise(&members, &json!(["A@x.org", " B@Y.org"])), Ok(json!(["a@x.org", "b@y.org"])));
        assert_eq!(normalise(&members, &json!("A@x.org, b@y.org ")), Ok(json!(["a@x.org", "b@y.org"])));
    }

    #[test]
    fn a_list_of_strings_keeps_its_text_and_refuses_nested_values() {
        let choice = field("type: multi_choice, options: [a, b]");
        assert_eq!(normalise_owned(&choice, json!(["a", 1, true])), Ok(json!(["a", "1", "true"])));
        assert_eq!(
            normalise_owned(&choice, json!(["a", ["b"]])),
            Err("must be a single value, not a list or object".to_string())
        );
        assert_eq!(normalise_owned(&choice, json!({"a": 1})), Err("must be a list".to_string()));
    }
}
