//! The validated template model.
//!
//! The serde shape of these types is the file format itself (`attest/v1`), so a
//! stored version serialised as JSON is again a valid template file. Values of
//! these types only come out of [`crate::parse`] and have passed validation:
//! code downstream (the engine) relies on every reference being resolved.

use serde::{Deserialize, Serialize};

/// The only format tag version 1 files may carry.
pub const FORMAT_V1: &str = "attest/v1";

/// A whole template as written by a process owner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    pub format: String,
    pub key: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Who is accountable for the process: `role:KEY` or `user:EMAIL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Assignee>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicyRef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub controls: Vec<Control>,
    pub tasks: Vec<Task>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyRef {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clause: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Control {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub frameworks: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskType {
    #[default]
    Task,
    Approval,
    /// A service task: Attest calls an HTTP endpoint and fills the task's
    /// fields from the answer; its assignee can retry or take over by hand.
    Http,
}

impl TaskType {
    fn is_task(&self) -> bool {
        *self == TaskType::Task
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Task {
    pub key: String,
    pub name: String,
    #[serde(rename = "type", default, skip_serializing_if = "TaskType::is_task")]
    pub task_type: TaskType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    pub assignee: Assignee,
    /// Nothing after a stop task can be completed before it is.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stop: bool,
    /// For approval tasks: the earlier tasks this approval signs off.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approves: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub show_when: Option<Condition>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub controls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<Due>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remind: Vec<Reminder>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub escalate: Vec<Escalation>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<Field>,
    /// For `type: http`: the call to make.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpCall>,
}

/// The HTTP call of a service task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpCall {
    #[serde(default)]
    pub method: HttpMethod,
    /// An `http://` or `https://` URL; `{{field_key}}` is replaced by the
    /// field's value, percent-encoded.
    pub url: String,
    /// The JSON body. A string that is exactly `{{field_key}}` becomes the
    /// field's value; `{{field_key}}` inside a longer string its text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<serde_json::Value>,
    /// Fields of this task filled from the JSON response: field key to an
    /// RFC 6901 JSON pointer, like `/id`.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub response: std::collections::BTreeMap<String, String>,
    /// Attempts after the first when the failure is transient (no connection,
    /// a timeout, 429 or 5xx).
    #[serde(default = "HttpCall::default_retries")]
    pub retries: u32,
    /// Longest wait for one attempt, in seconds.
    #[serde(default = "HttpCall::default_timeout_seconds")]
    pub timeout_seconds: u32,
}

impl HttpCall {
    pub const MAX_RETRIES: u32 = 10;
    pub const MAX_TIMEOUT_SECONDS: u32 = 120;

    fn default_retries() -> u32 {
        3
    }

    fn default_timeout_seconds() -> u32 {
        10
    }

    /// The field keys named by `{{key}}` placeholders in the URL and the body.
    pub fn placeholders(&self) -> Vec<String> {
        let mut out = Vec::new();
        collect_placeholders(&self.url, &mut out);
        if let Some(body) = &self.body {
            placeholders_in(body, &mut out);
        }
        out
    }
}

fn placeholders_in(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) => collect_placeholders(s, out),
        serde_json::Value::Array(items) => items.iter().for_each(|i| placeholders_in(i, out)),
        serde_json::Value::Object(map) => map.values().for_each(|i| placeholders_in(i, out)),
        _ => {}
    }
}

fn collect_placeholders(s: &str, out: &mut Vec<String>) {
    let mut rest = s;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        let key = after[..end].trim().to_string();
        if !out.contains(&key) {
            out.push(key);
        }
        rest = &after[end + 2..];
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    Get,
    #[default]
    Post,
    Put,
    Patch,
    Delete,
}

impl HttpMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
            HttpMethod::Patch => "PATCH",
            HttpMethod::Delete => "DELETE",
        }
    }
}

/// Who may act on a task. Written as `starter`, `role:KEY`, `user:EMAIL` or
/// `field:KEY` (a `members` field of an earlier task).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
// Deserialised from text in `de.rs`, so errors point at the value itself.
#[serde(into = "String")]
pub enum Assignee {
    Starter,
    Role(String),
    User(String),
    Field(String),
}

impl std::fmt::Display for Assignee {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Assignee::Starter => f.write_str("starter"),
            Assignee::Role(r) => write!(f, "role:{r}"),
            Assignee::User(u) => write!(f, "user:{u}"),
            Assignee::Field(k) => write!(f, "field:{k}"),
        }
    }
}

impl From<Assignee> for String {
    fn from(a: Assignee) -> String {
        a.to_string()
    }
}

impl TryFrom<String> for Assignee {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Assignee::parse(&s)
    }
}

impl Assignee {
    /// Parses the written form; the message names what was expected.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s == "starter" {
            return Ok(Assignee::Starter);
        }
        let (kind, rest) = s
            .split_once(':')
            .ok_or_else(|| format!("assignee '{s}' must be 'starter', 'role:KEY', 'user:EMAIL' or 'field:KEY'"))?;
        if rest.is_empty() {
            return Err(format!("assignee '{s}' has nothing after '{kind}:'"));
        }
        match kind {
            "role" => Ok(Assignee::Role(rest.to_string())),
            "user" => Ok(Assignee::User(rest.to_ascii_lowercase())),
            "field" => Ok(Assignee::Field(rest.to_string())),
            _ => Err(format!("assignee '{s}' must be 'starter', 'role:KEY', 'user:EMAIL' or 'field:KEY'")),
        }
    }
}

/// `show_when` conditions on tasks and fields.
///
/// Deserialised by hand (see `de.rs`) so that a condition is either exactly
/// `field`/`op`/`value` or exactly one of `all`, `any`, `not`, with precise errors.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Condition {
    Compare {
        field: String,
        op: Op,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<serde_json::Value>,
    },
    All {
        all: Vec<Condition>,
    },
    Any {
        any: Vec<Condition>,
    },
    Not {
        not: Box<Condition>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Is,
    IsNot,
    HasValue,
    HasNoValue,
    Gt,
    Gte,
    Lt,
    Lte,
    Contains,
}

impl Op {
    /// Whether the operator compares against a `value`.
    pub fn takes_value(self) -> bool {
        !matches!(self, Op::HasValue | Op::HasNoValue)
    }
}

/// A length of time as written in templates: `30m`, `4h`, `3d`, `2w`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
// Deserialised from text in `de.rs`, so errors point at the value itself.
#[serde(into = "String")]
pub struct Duration {
    pub amount: u32,
    pub unit: DurationUnit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DurationUnit {
    Minutes,
    Hours,
    Days,
    Weeks,
}

impl Duration {
    /// Largest amount accepted, so that due-date arithmetic cannot overflow.
    pub const MAX_AMOUNT: u32 = 100_000;

    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let unit = match s.chars().last() {
            Some('m') => DurationUnit::Minutes,
            Some('h') => DurationUnit::Hours,
            Some('d') => DurationUnit::Days,
            Some('w') => DurationUnit::Weeks,
            _ => {
                return Err(format!("duration '{s}' must end in m, h, d or w (like 4h, 3d, 2w)"));
            }
        };
        let digits = &s[..s.len() - 1];
        // Only plain digits: `u32::from_str` would also take a leading '+'.
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("duration '{s}' must be a whole number followed by m, h, d or w"));
        }
        let amount: u32 =
            digits.parse().map_err(|_| format!("duration '{s}' is longer than {} units", Self::MAX_AMOUNT))?;
        if amount > Self::MAX_AMOUNT {
            return Err(format!("duration '{s}' is longer than {} units", Self::MAX_AMOUNT));
        }
        Ok(Duration { amount, unit })
    }

    /// The length in minutes, counting a day as 24 hours and a week as 7 days.
    pub fn minutes(&self) -> i64 {
        let per_unit = match self.unit {
            DurationUnit::Minutes => 1,
            DurationUnit::Hours => 60,
            DurationUnit::Days => 60 * 24,
            DurationUnit::Weeks => 60 * 24 * 7,
        };
        i64::from(self.amount) * per_unit
    }
}

impl std::fmt::Display for Duration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let unit = match self.unit {
            DurationUnit::Minutes => 'm',
            DurationUnit::Hours => 'h',
            DurationUnit::Days => 'd',
            DurationUnit::Weeks => 'w',
        };
        write!(f, "{}{}", self.amount, unit)
    }
}

impl From<Duration> for String {
    fn from(d: Duration) -> String {
        d.to_string()
    }
}

impl TryFrom<String> for Duration {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Duration::parse(&s)
    }
}

/// What a due date counts from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
// Deserialised from text in `de.rs`, so errors point at the value itself.
#[serde(into = "String")]
pub enum DueAnchor {
    RunStarted,
    /// When the named task was (last) completed.
    Task(String),
    /// The date or datetime held in the named field.
    Field(String),
}

impl From<DueAnchor> for String {
    fn from(a: DueAnchor) -> String {
        match a {
            DueAnchor::RunStarted => "run_started".into(),
            DueAnchor::Task(k) => format!("task:{k}"),
            DueAnchor::Field(k) => format!("field:{k}"),
        }
    }
}

impl TryFrom<String> for DueAnchor {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match s.trim() {
            "run_started" => Ok(DueAnchor::RunStarted),
            t => match t.split_once(':') {
                Some(("task", k)) if !k.is_empty() => Ok(DueAnchor::Task(k.into())),
                Some(("field", k)) if !k.is_empty() => Ok(DueAnchor::Field(k.into())),
                _ => Err(format!("due 'after' is '{t}'; it must be 'run_started', 'task:KEY' or 'field:KEY'")),
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Due {
    pub after: DueAnchor,
    #[serde(rename = "in")]
    pub within: Duration,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub business_days: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reminder {
    pub before_due: Duration,
}

/// Deserialised by hand (see `de.rs`): `overdue_by` plus exactly one of
/// `notify` or `reassign`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Escalation {
    pub overdue_by: Duration,
    #[serde(flatten)]
    pub action: EscalationAction,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EscalationAction {
    Notify(Assignee),
    Reassign(Assignee),
}

/// A form field on a task.
///
/// Deserialised by hand (see `de.rs`) so that each type accepts only its own
/// validation keys and errors keep their line and column.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Field {
    pub key: String,
    pub label: String,
    #[serde(flatten)]
    pub kind: FieldKind,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub required: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub show_when: Option<Condition>,
}

/// The field's type with the validation keys that type allows.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FieldKind {
    Text(TextRules),
    Textarea(TextRules),
    Number(NumberRules),
    Email(EmailRules),
    Url,
    Date(DateRules),
    Datetime(DateRules),
    Select(OptionRules),
    MultiChoice(OptionRules),
    Checkbox,
    /// People of the workspace, by email; `multiple` allows more than one.
    Members(MembersRules),
    File(FileRules),
    /// Rows of simple columns; the value is a list of objects keyed by column.
    Table(TableRules),
    /// A value set by integrations, never shown on the form.
    Hidden,
}

impl FieldKind {
    /// The written name of the type.
    pub fn type_name(&self) -> &'static str {
        match self {
            FieldKind::Text(_) => "text",
            FieldKind::Textarea(_) => "textarea",
            FieldKind::Number(_) => "number",
            FieldKind::Email(_) => "email",
            FieldKind::Url => "url",
            FieldKind::Date(_) => "date",
            FieldKind::Datetime(_) => "datetime",
            FieldKind::Select(_) => "select",
            FieldKind::MultiChoice(_) => "multi_choice",
            FieldKind::Checkbox => "checkbox",
            FieldKind::Members(_) => "members",
            FieldKind::File(_) => "file",
            FieldKind::Table(_) => "table",
            FieldKind::Hidden => "hidden",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextRules {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u32>,
    /// A regular expression the whole value must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumberRules {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Most digits allowed after the decimal point; 0 means whole numbers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decimals: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailRules {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_domains: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub block_domains: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DateRules {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<DateBound>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<DateBound>,
}

/// A bound on a date field: a fixed date, the run's start, or another field,
/// optionally shifted, written like `2025-01-01`, `run_started+30d` or `field:start_date-1w`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
// Deserialised from text in `de.rs`, so errors point at the value itself.
#[serde(into = "String")]
pub struct DateBound {
    pub base: DateBase,
    /// Signed shift in days (weeks are stored as 7 days).
    pub offset_days: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DateBase {
    Date(jiff::civil::Date),
    RunStarted,
    Field(String),
}

impl From<DateBound> for String {
    fn from(b: DateBound) -> String {
        let base = match &b.base {
            DateBase::Date(d) => d.to_string(),
            DateBase::RunStarted => "run_started".into(),
            DateBase::Field(k) => format!("field:{k}"),
        };
        match b.offset_days {
            0 => base,
            n if n > 0 => format!("{base}+{n}d"),
            n => format!("{base}{n}d"),
        }
    }
}

impl TryFrom<String> for DateBound {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        DateBound::parse(&s)
    }
}

impl DateBound {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Ok(date) = s.parse::<jiff::civil::Date>() {
            return Ok(DateBound { base: DateBase::Date(date), offset_days: 0 });
        }
        let (base_text, offset_days) = match s.find(['+', '-']) {
            Some(at) => {
                let (b, off) = s.split_at(at);
                let sign = if off.starts_with('-') { -1 } else { 1 };
                let d = Duration::parse(&off[1..])?;
                let days = match d.unit {
                    DurationUnit::Days => d.amount as i32,
                    DurationUnit::Weeks => d.amount as i32 * 7,
                    _ => return Err(format!("date offset in '{s}' must be in days or weeks")),
                };
                (b.trim(), sign * days)
            }
            None => (s, 0),
        };
        let base = match base_text {
            "run_started" => DateBase::RunStarted,
            t => match t.strip_prefix("field:") {
                Some(k) if !k.is_empty() => DateBase::Field(k.to_string()),
                _ => {
                    return Err(format!(
                        "date bound '{s}' must be a date (2025-01-31), 'run_started' or 'field:KEY', with an optional offset like +30d"
                    ));
                }
            },
        };
        Ok(DateBound { base, offset_days })
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptionRules {
    pub options: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MembersRules {
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub multiple: bool,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRules {
    /// Allowed file extensions, without the dot, lowercase.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accept: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size_mb: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableRules {
    pub columns: Vec<TableColumn>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rows: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableColumn {
    pub key: String,
    pub label: String,
    /// One of text, number, date, checkbox.
    #[serde(rename = "type")]
    pub column_type: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub required: bool,
}

impl Template {
    pub fn task(&self, key: &str) -> Option<&Task> {
        self.tasks.iter().find(|t| t.key == key)
    }

    pub fn task_index(&self, key: &str) -> Option<usize> {
        self.tasks.iter().position(|t| t.key == key)
    }

    /// Every field of every task, with the index of its task.
    pub fn fields(&self) -> impl Iterator<Item = (usize, &Field)> {
        self.tasks.iter().enumerate().flat_map(|(i, t)| t.fields.iter().map(move |f| (i, f)))
    }

    pub fn field(&self, key: &str) -> Option<(usize, &Field)> {
        self.fields().find(|(_, f)| f.key == key)
    }
}
