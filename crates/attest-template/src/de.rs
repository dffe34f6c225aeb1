//! Hand-written deserialisers for the model types whose shape serde's derive
//! cannot check precisely.
//!
//! Serde's `untagged` and `flatten` buffer their input, which loses both
//! `deny_unknown_fields` and the line and column of errors. These visitors read
//! each key as it comes, so an unknown, misplaced or repeated key is reported
//! where it is written.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, de::Error as _};
use serde_json::{Map, Number, Value};

use crate::model::{
    Assignee, Condition, DateBound, DateRules, DueAnchor, Duration, EmailRules, Escalation, EscalationAction, Field,
    FieldKind, FileRules, MembersRules, NumberRules, Op, OptionRules, TableColumn, TableRules, TextRules,
};

/// Formats key names the way serde's own messages do: `a`, `b`, `c`.
fn key_list(keys: &[&str]) -> String {
    keys.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
}

/// Reads one mapping key, accepting only `allowed` keys not yet `seen`.
///
/// Failing here, rather than after the value, makes the parser report the
/// position of the offending key itself.
struct KeySeed<'a> {
    allowed: &'a [&'static str],
    seen: &'a [&'static str],
    /// For fields whose `type` has been read: its name, for the message.
    field_type: Option<&'static str>,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = &'static str;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_identifier(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = &'static str;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "one of {}", key_list(self.allowed))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        match self.allowed.iter().find(|k| **k == v) {
            Some(k) if self.seen.contains(k) => Err(E::duplicate_field(k)),
            Some(k) => Ok(k),
            None => match self.field_type {
                Some(t) => Err(E::custom(format_args!(
                    "unknown field `{v}` for a `{t}` field, expected one of {}",
                    key_list(self.allowed)
                ))),
                None => Err(E::custom(format_args!("unknown field `{v}`, expected one of {}", key_list(self.allowed)))),
            },
        }
    }
}

/// Reads a value written as text with its own parser. The error is raised
/// while the text is being read, so the parser reports the value's position.
struct TextVisitor<T> {
    parse: fn(&str) -> Result<T, String>,
    expecting: &'static str,
}

impl<T> Visitor<'_> for TextVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        (self.parse)(v).map_err(E::custom)
    }
}

impl<'de> Deserialize<'de> for Assignee {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(TextVisitor {
            parse: Assignee::parse,
            expecting: "an assignee: starter, role:KEY, user:EMAIL or field:KEY",
        })
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(TextVisitor { parse: Duration::parse, expecting: "a duration like 4h, 3d or 2w" })
    }
}

impl<'de> Deserialize<'de> for DueAnchor {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(TextVisitor {
            parse: |s| DueAnchor::try_from(s.to_owned()),
            expecting: "run_started, task:KEY or field:KEY",
        })
    }
}

impl<'de> Deserialize<'de> for DateBound {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(TextVisitor {
            parse: DateBound::parse,
            expecting: "a date bound like 2025-01-31, run_started+30d or field:start_date-1w",
        })
    }
}

/// A JSON value read from either format, refusing duplicate keys (which
/// `serde_json::Value` would silently overwrite) and non-finite numbers.
pub(crate) struct StrictValue;

impl<'de> DeserializeSeed<'de> for StrictValue {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v).map(Value::Number).ok_or_else(|| E::custom(format_args!("{v} is not a finite number")))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(StrictValue)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(A::Error::custom(format_args!("duplicate key `{key}`")));
            }
            let value = map.next_value_seed(StrictValue)?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// An optional strict value: an explicit `null` counts as absent, as it does
/// for every other optional key.
struct OptionalValue;

impl<'de> DeserializeSeed<'de> for OptionalValue {
    type Value = Option<Value>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        StrictValue.deserialize(d).map(|v| if v.is_null() { None } else { Some(v) })
    }
}

const CONDITION_KEYS: &[&str] = &["field", "op", "value", "all", "any", "not"];

impl<'de> Deserialize<'de> for Condition {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(ConditionVisitor)
    }
}

struct ConditionVisitor;

impl<'de> Visitor<'de> for ConditionVisitor {
    type Value = Condition;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a condition: a map with `field`, `op` and `value`, or with one of `all`, `any`, `not`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Condition, A::Error> {
        let mut seen: Vec<&'static str> = Vec::new();
        let mut field: Option<String> = None;
        let mut op: Option<Op> = None;
        let mut value: Option<Value> = None;
        let mut all: Option<Vec<Condition>> = None;
        let mut any: Option<Vec<Condition>> = None;
        let mut not: Option<Box<Condition>> = None;
        while let Some(key) = map.next_key_seed(KeySeed { allowed: CONDITION_KEYS, seen: &seen, field_type: None })? {
            seen.push(key);
            match key {
                "field" => field = Some(map.next_value()?),
                "op" => op = Some(map.next_value()?),
                "value" => value = map.next_value_seed(OptionalValue)?,
                "all" => all = Some(map.next_value()?),
                "any" => any = Some(map.next_value()?),
                "not" => not = Some(map.next_value()?),
                other => return Err(A::Error::unknown_field(other, CONDITION_KEYS)),
            }
        }
        let compare = ["field", "op", "value"];
        let groups = ["all", "any", "not"];
        let written_groups: Vec<&str> = seen.iter().copied().filter(|k| groups.contains(k)).collect();
        let written_compare: Vec<&str> = seen.iter().copied().filter(|k| compare.contains(k)).collect();
        if written_groups.len() > 1 || (!written_groups.is_empty() && !written_compare.is_empty()) {
            return Err(A::Error::custom(format_args!(
                "a condition is either `field`, `op` and `value`, or exactly one of `all`, `any` or `not`; this one has {}",
                key_list(&seen)
            )));
        }
        if let Some(all) = all {
            return Ok(Condition::All { all });
        }
        if let Some(any) = any {
            return Ok(Condition::Any { any });
        }
        if let Some(not) = not {
            return Ok(Condition::Not { not });
        }
        if seen.is_empty() {
            return Err(A::Error::custom(
                "a condition needs `field` and `op` (and `value` for most ops), or one of `all`, `any` or `not`",
            ));
        }
        Ok(Condition::Compare {
            field: field.ok_or_else(|| A::Error::missing_field("field"))?,
            op: op.ok_or_else(|| A::Error::missing_field("op"))?,
            value,
        })
    }
}

const ESCALATION_KEYS: &[&str] = &["overdue_by", "notify", "reassign"];

impl<'de> Deserialize<'de> for Escalation {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(EscalationVisitor)
    }
}

struct EscalationVisitor;

impl<'de> Visitor<'de> for EscalationVisitor {
    type Value = Escalation;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an escalation step: a map with `overdue_by` and one of `notify` or `reassign`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Escalation, A::Error> {
        let mut seen: Vec<&'static str> = Vec::new();
        let mut overdue_by: Option<Duration> = None;
        let mut action: Option<EscalationAction> = None;
        while let Some(key) = map.next_key_seed(KeySeed { allowed: ESCALATION_KEYS, seen: &seen, field_type: None })? {
            if action.is_some() && key != "overdue_by" {
                return Err(A::Error::custom("an escalation step takes either `notify` or `reassign`, not both"));
            }
            seen.push(key);
            match key {
                "overdue_by" => overdue_by = Some(map.next_value()?),
                "notify" => action = Some(EscalationAction::Notify(map.next_value::<Assignee>()?)),
                "reassign" => action = Some(EscalationAction::Reassign(map.next_value::<Assignee>()?)),
                other => return Err(A::Error::unknown_field(other, ESCALATION_KEYS)),
            }
        }
        Ok(Escalation {
            overdue_by: overdue_by.ok_or_else(|| A::Error::missing_field("overdue_by"))?,
            action: action.ok_or_else(|| A::Error::custom("an escalation step needs `notify` or `reassign`"))?,
        })
    }
}

/// The written field types; each allows its own validation keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum FieldType {
    Text,
    Textarea,
    Number,
    Email,
    Url,
    Date,
    Datetime,
    Select,
    MultiChoice,
    Checkbox,
    Members,
    File,
    Table,
    Hidden,
}

/// Keys every field type takes.
const COMMON_FIELD_KEYS: &[&str] = &["key", "label", "type", "required", "help", "default", "show_when"];

/// Every key any field type takes, for messages written before `type` is known.
const ALL_FIELD_KEYS: &[&str] = &[
    "key",
    "label",
    "type",
    "required",
    "help",
    "default",
    "show_when",
    "min_length",
    "max_length",
    "pattern",
    "min",
    "max",
    "decimals",
    "allow_domains",
    "block_domains",
    "options",
    "not_before",
    "not_after",
    "multiple",
    "accept",
    "max_size_mb",
    "columns",
    "max_rows",
];

impl FieldType {
    fn name(self) -> &'static str {
        match self {
            FieldType::Text => "text",
            FieldType::Textarea => "textarea",
            FieldType::Number => "number",
            FieldType::Email => "email",
            FieldType::Url => "url",
            FieldType::Date => "date",
            FieldType::Datetime => "datetime",
            FieldType::Select => "select",
            FieldType::MultiChoice => "multi_choice",
            FieldType::Checkbox => "checkbox",
            FieldType::Members => "members",
            FieldType::File => "file",
            FieldType::Table => "table",
            FieldType::Hidden => "hidden",
        }
    }

    /// The common keys followed by this type's validation keys.
    fn keys(self) -> &'static [&'static str] {
        match self {
            FieldType::Text | FieldType::Textarea => &[
                "key",
                "label",
                "type",
                "required",
                "help",
                "default",
                "show_when",
                "min_length",
                "max_length",
                "pattern",
            ],
            FieldType::Number => {
                &["key", "label", "type", "required", "help", "default", "show_when", "min", "max", "decimals"]
            }
            FieldType::Email => {
                &["key", "label", "type", "required", "help", "default", "show_when", "allow_domains", "block_domains"]
            }
            FieldType::Date | FieldType::Datetime => {
                &["key", "label", "type", "required", "help", "default", "show_when", "not_before", "not_after"]
            }
            FieldType::Select | FieldType::MultiChoice => {
                &["key", "label", "type", "required", "help", "default", "show_when", "options"]
            }
            FieldType::Members => &["key", "label", "type", "required", "help", "default", "show_when", "multiple"],
            FieldType::File => {
                &["key", "label", "type", "required", "help", "default", "show_when", "accept", "max_size_mb"]
            }
            FieldType::Table => {
                &["key", "label", "type", "required", "help", "default", "show_when", "columns", "max_rows"]
            }
            FieldType::Url | FieldType::Checkbox | FieldType::Hidden => COMMON_FIELD_KEYS,
        }
    }
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(FieldVisitor)
    }
}

/// Every key a field may carry, filled while reading and checked against the
/// type at the end.
#[derive(Default)]
struct FieldSlots {
    key: Option<String>,
    label: Option<String>,
    field_type: Option<FieldType>,
    required: Option<bool>,
    help: Option<String>,
    default: Option<Value>,
    show_when: Option<Condition>,
    min_length: Option<u32>,
    max_length: Option<u32>,
    pattern: Option<String>,
    min: Option<f64>,
    max: Option<f64>,
    decimals: Option<u32>,
    allow_domains: Option<Vec<String>>,
    block_domains: Option<Vec<String>>,
    options: Option<Vec<String>>,
    not_before: Option<DateBound>,
    not_after: Option<DateBound>,
    multiple: Option<bool>,
    accept: Option<Vec<String>>,
    max_size_mb: Option<u32>,
    columns: Option<Vec<TableColumn>>,
    max_rows: Option<u32>,
}

struct FieldVisitor;

impl<'de> Visitor<'de> for FieldVisitor {
    type Value = Field;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field: a map with `key`, `label` and `type`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Field, A::Error> {
        let mut seen: Vec<&'static str> = Vec::new();
        let mut s = FieldSlots::default();
        loop {
            let seed = KeySeed {
                allowed: s.field_type.map_or(ALL_FIELD_KEYS, FieldType::keys),
                seen: &seen,
                field_type: s.field_type.map(FieldType::name),
            };
            let Some(key) = map.next_key_seed(seed)? else {
                break;
            };
            seen.push(key);
            match key {
                "key" => s.key = Some(map.next_value()?),
                "label" => s.label = Some(map.next_value()?),
                "type" => s.field_type = Some(map.next_value()?),
                "required" => s.required = map.next_value()?,
                "help" => s.help = map.next_value()?,
                "default" => s.default = map.next_value_seed(OptionalValue)?,
                "show_when" => s.show_when = map.next_value()?,
                "min_length" => s.min_length = map.next_value()?,
                "max_length" => s.max_length = map.next_value()?,
                "pattern" => s.pattern = map.next_value()?,
                "min" => s.min = map.next_value()?,
                "max" => s.max = map.next_value()?,
                "decimals" => s.decimals = map.next_value()?,
                "allow_domains" => s.allow_domains = map.next_value()?,
                "block_domains" => s.block_domains = map.next_value()?,
                "options" => s.options = map.next_value()?,
                "not_before" => s.not_before = map.next_value()?,
                "not_after" => s.not_after = map.next_value()?,
                "multiple" => s.multiple = map.next_value()?,
                "accept" => s.accept = map.next_value()?,
                "max_size_mb" => s.max_size_mb = map.next_value()?,
                "columns" => s.columns = map.next_value()?,
                "max_rows" => s.max_rows = map.next_value()?,
                other => return Err(A::Error::unknown_field(other, ALL_FIELD_KEYS)),
            }
        }
        let key = s.key.ok_or_else(|| A::Error::missing_field("key"))?;
        let label = s.label.ok_or_else(|| A::Error::missing_field("label"))?;
        let field_type = s.field_type.ok_or_else(|| A::Error::missing_field("type"))?;
        // Keys written before `type` were only checked against all field keys.
        if let Some(bad) = seen.iter().find(|k| !field_type.keys().contains(k)) {
            return Err(A::Error::custom(format_args!(
                "unknown field `{bad}` for a `{}` field, expected one of {}",
                field_type.name(),
                key_list(field_type.keys())
            )));
        }
        let kind = match field_type {
            FieldType::Text => {
                FieldKind::Text(TextRules { min_length: s.min_length, max_length: s.max_length, pattern: s.pattern })
            }
            FieldType::Textarea => FieldKind::Textarea(TextRules {
                min_length: s.min_length,
                max_length: s.max_length,
                pattern: s.pattern,
            }),
            FieldType::Number => FieldKind::Number(NumberRules { min: s.min, max: s.max, decimals: s.decimals }),
            FieldType::Email => FieldKind::Email(EmailRules {
                allow_domains: s.allow_domains.unwrap_or_default(),
                block_domains: s.block_domains.unwrap_or_default(),
            }),
            FieldType::Url => FieldKind::Url,
            FieldType::Date => FieldKind::Date(DateRules { not_before: s.not_before, not_after: s.not_after }),
            FieldType::Datetime => FieldKind::Datetime(DateRules { not_before: s.not_before, not_after: s.not_after }),
            FieldType::Select => {
                FieldKind::Select(OptionRules { options: s.options.ok_or_else(|| A::Error::missing_field("options"))? })
            }
            FieldType::MultiChoice => FieldKind::MultiChoice(OptionRules {
                options: s.options.ok_or_else(|| A::Error::missing_field("options"))?,
            }),
            FieldType::Checkbox => FieldKind::Checkbox,
            FieldType::Members => FieldKind::Members(MembersRules { multiple: s.multiple.unwrap_or_default() }),
            FieldType::File => {
                FieldKind::File(FileRules { accept: s.accept.unwrap_or_default(), max_size_mb: s.max_size_mb })
            }
            FieldType::Table => FieldKind::Table(TableRules {
                columns: s.columns.ok_or_else(|| A::Error::missing_field("columns"))?,
                max_rows: s.max_rows,
            }),
            FieldType::Hidden => FieldKind::Hidden,
        };
        Ok(Field {
            key,
            label,
            kind,
            required: s.required.unwrap_or_default(),
            help: s.help,
            default: s.default,
            show_when: s.show_when,
        })
    }
}
