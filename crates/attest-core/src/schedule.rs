//! Schedules: recurring runs of a template, by a cron pattern or a
//! daily/weekly/monthly/quarterly rule read in an IANA time zone.
//!
//! Occurrences are wall-clock times in the schedule's zone, so "every day at
//! 09:00 Europe/Berlin" stays at 09:00 across daylight-saving changes; a
//! wall-clock time that does not exist (the spring gap) fires at the first
//! instant after the gap, and one that exists twice fires once, at the first.
//!
//! A schedule stores the next occurrence to fire. When the scheduler finds
//! it in the past (the server was down), it fires only the latest occurrence
//! that is due, once, and moves on to the first occurrence after now.

use std::str::FromStr as _;

use attest_engine::{Actor, WorkspaceEvent, WorkspaceEventBody};
use attest_store::{ScheduleRow, ScheduleStore};
use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan, Zoned};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::workspace::{Workspace, parse_email};

/// Longest run name pattern.
const MAX_PATTERN_CHARS: usize = 200;
/// How far ahead an occurrence is searched for (rules repeat at least quarterly).
const SEARCH_DAYS: i64 = 800;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Every {
    Daily,
    Weekly,
    Monthly,
    Quarterly,
}

/// When a schedule fires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum ScheduleRule {
    /// A five-field cron pattern (minute hour day-of-month month day-of-week).
    Cron { cron: String },
    /// `at` is `HH:MM`; `weekday` (weekly) is `monday`..`sunday`; `day` (monthly,
    /// quarterly: day of the quarter's first month) is 1–31, the month's last
    /// day when the month is shorter.
    Every {
        every: Every,
        at: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        weekday: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        day: Option<u8>,
    },
}

/// A rule checked and ready to compute occurrences.
#[derive(Debug, Clone)]
pub struct CompiledRule {
    kind: RuleKind,
    tz: TimeZone,
}

#[derive(Debug, Clone)]
enum RuleKind {
    Cron(Box<croner::Cron>),
    Every { every: Every, at: Time, weekday: Weekday, day: i8 },
}

fn parse_weekday(s: &str) -> Result<Weekday> {
    Ok(match s.trim().to_ascii_lowercase().as_str() {
        "monday" | "mon" => Weekday::Monday,
        "tuesday" | "tue" => Weekday::Tuesday,
        "wednesday" | "wed" => Weekday::Wednesday,
        "thursday" | "thu" => Weekday::Thursday,
        "friday" | "fri" => Weekday::Friday,
        "saturday" | "sat" => Weekday::Saturday,
        "sunday" | "sun" => Weekday::Sunday,
        other => return Err(Error::BadInput(format!("weekday '{other}' is not a day of the week"))),
    })
}

/// Parses an IANA time zone name.
pub fn parse_time_zone(name: &str) -> Result<TimeZone> {
    TimeZone::get(name.trim())
        .map_err(|_| Error::BadInput(format!("'{name}' is not an IANA time zone name (like Europe/Berlin)")))
}

impl CompiledRule {
    pub fn new(rule: &ScheduleRule, time_zone: &str) -> Result<Self> {
        let tz = parse_time_zone(time_zone)?;
        let kind = match rule {
            ScheduleRule::Cron { cron } => {
                if cron.len() > 200 {
                    return Err(Error::BadInput("a cron pattern is at most 200 characters".into()));
                }
                let parsed = croner::Cron::from_str(cron.trim())
                    .map_err(|e| Error::BadInput(format!("cron pattern '{cron}' is not valid: {e}")))?;
                RuleKind::Cron(Box::new(parsed))
            }
            ScheduleRule::Every { every, at, weekday, day } => {
                let at = Time::strptime("%H:%M", at.trim())
                    .map_err(|_| Error::BadInput(format!("'at: {at}' is not a time of day like 09:00")))?;
                let weekday = match (every, weekday) {
                    (Every::Weekly, Some(w)) => parse_weekday(w)?,
                    (Every::Weekly, None) => return Err(Error::BadInput("a weekly schedule needs a weekday".into())),
                    (_, Some(_)) => return Err(Error::BadInput("only a weekly schedule takes a weekday".into())),
                    (_, None) => Weekday::Monday,
                };
                let day = match (every, day) {
                    (Every::Monthly | Every::Quarterly, Some(d)) if (1..=31).contains(d) => *d as i8,
                    (Every::Monthly | Every::Quarterly, Some(d)) => {
                        return Err(Error::BadInput(format!("day {d} is not a day of a month (1-31)")));
                    }
                    (Every::Monthly | Every::Quarterly, None) => 1,
                    (_, Some(_)) => {
                        return Err(Error::BadInput("only a monthly or quarterly schedule takes a day".into()));
                    }
                    (_, None) => 1,
                };
                RuleKind::Every { every: *every, at, weekday, day }
            }
        };
        Ok(CompiledRule { kind, tz })
    }

    pub fn time_zone(&self) -> &TimeZone {
        &self.tz
    }

    /// The first occurrence strictly after `after`.
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        let local = after.to_zoned(self.tz.clone());
        match &self.kind {
            RuleKind::Cron(cron) => cron.find_next_occurrence(&local, false).ok().map(|z| z.timestamp()),
            RuleKind::Every { every, at, weekday, day } => {
                let mut date = local.date();
                for _ in 0..SEARCH_DAYS {
                    if self.fires_on(date, *every, *weekday, *day) {
                        let at = date.to_datetime(*at).to_zoned(self.tz.clone()).ok()?.timestamp();
                        if at > after {
                            return Some(at);
                        }
                    }
                    date = date.checked_add(1.day()).ok()?;
                }
                None
            }
        }
    }

    fn fires_on(&self, date: Date, every: Every, weekday: Weekday, day: i8) -> bool {
        let day_in_month = day.min(date.days_in_month());
        match every {
            Every::Daily => true,
            Every::Weekly => date.weekday() == weekday,
            Every::Monthly => date.day() == day_in_month,
            Every::Quarterly => matches!(date.month(), 1 | 4 | 7 | 10) && date.day() == day_in_month,
        }
    }

    /// The latest occurrence at or before `now`, searching forward from
    /// `from` (an occurrence known to be at or before `now`).
    pub fn latest_until(&self, from: Timestamp, now: Timestamp) -> Timestamp {
        if let RuleKind::Cron(cron) = &self.kind
            && let Ok(previous) = cron.find_previous_occurrence(&now.to_zoned(self.tz.clone()), true)
        {
            return previous.timestamp().max(from);
        }
        let mut latest = from;
        while let Some(next) = self.next_after(latest).filter(|n| *n <= now) {
            latest = next;
        }
        latest
    }
}

/// Fills a run name pattern for an occurrence: `{year}`, `{quarter}` (Q1–Q4),
/// `{month}` (01–12), `{month_name}`, `{day}`, `{date}` (YYYY-MM-DD).
pub fn run_name(pattern: &str, at: &Zoned) -> String {
    let quarter = format!("Q{}", (at.month() - 1) / 3 + 1);
    pattern
        .replace("{year}", &at.year().to_string())
        .replace("{quarter}", &quarter)
        .replace("{month_name}", &at.strftime("%B").to_string())
        .replace("{month}", &format!("{:02}", at.month()))
        .replace("{day}", &format!("{:02}", at.day()))
        .replace("{date}", &at.strftime("%Y-%m-%d").to_string())
}

/// Checks a run name pattern: 1 to 200 printable characters, trimmed.
pub fn parse_name_pattern(pattern: &str) -> Result<String> {
    let pattern = pattern.trim();
    if pattern.is_empty() || pattern.chars().count() > MAX_PATTERN_CHARS || pattern.chars().any(char::is_control) {
        return Err(Error::BadInput(format!("a run name pattern is 1 to {MAX_PATTERN_CHARS} printable characters")));
    }
    Ok(pattern.to_string())
}

/// The rule in words, as pages show it: "weekly on friday at 09:00".
pub fn describe_rule(rule: &ScheduleRule) -> String {
    match rule {
        ScheduleRule::Cron { cron } => format!("cron {cron}"),
        ScheduleRule::Every { every: Every::Daily, at, .. } => format!("daily at {at}"),
        ScheduleRule::Every { every: Every::Weekly, at, weekday, .. } => {
            format!("weekly on {} at {at}", weekday.as_deref().unwrap_or("monday"))
        }
        ScheduleRule::Every { every: Every::Monthly, at, day, .. } => {
            format!("monthly on day {} at {at}", day.unwrap_or(1))
        }
        ScheduleRule::Every { every: Every::Quarterly, at, day, .. } => {
            format!("quarterly on day {} of the quarter's first month at {at}", day.unwrap_or(1))
        }
    }
}

/// What a caller gives to create a schedule.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSchedule {
    pub template: String,
    pub name_pattern: String,
    pub rule: ScheduleRule,
    pub time_zone: String,
    /// The person runs are started as; they are the runs' `starter`.
    pub starts_as: String,
    /// Each run is due this many days after its scheduled start (1 to 366).
    #[serde(default)]
    pub due_days: Option<u32>,
    /// Count `due_days` as business days (Monday to Friday, in the workspace's zone).
    #[serde(default)]
    pub due_business_days: bool,
}

/// Longest due period of a scheduled run, in days.
pub const MAX_DUE_DAYS: u32 = 366;

/// Checks a due period.
pub fn check_due_days(days: Option<u32>) -> Result<()> {
    match days {
        Some(d) if !(1..=MAX_DUE_DAYS).contains(&d) => {
            Err(Error::BadInput(format!("a run's due period is 1 to {MAX_DUE_DAYS} days, not {d}")))
        }
        _ => Ok(()),
    }
}

/// When a run the schedule starts for `occurrence` is due, counted in `tz`
/// (business days skip weekends there).
pub fn run_due_at(row: &ScheduleRow, occurrence: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
    let days = row.due_days?;
    let span = attest_template::Duration { amount: days, unit: attest_template::DurationUnit::Days };
    attest_engine::due::add(&occurrence.to_zoned(tz.clone()), span, row.due_business_days).map(|z| z.timestamp())
}

/// Creates a schedule after checking the template, the starter, the rule and
/// the pattern, and records it in the ledger.
pub fn create(
    ws: &Workspace,
    store: &dyn ScheduleStore,
    by: &Actor,
    new: NewSchedule,
    now: Timestamp,
) -> Result<ScheduleRow> {
    ws.template_row(&new.template, None)?;
    let starts_as = parse_email(&new.starts_as)?;
    ws.person(&starts_as)?;
    let pattern = parse_name_pattern(&new.name_pattern)?;
    let compiled = CompiledRule::new(&new.rule, &new.time_zone)?;
    check_due_days(new.due_days)?;
    let next_at = compiled.next_after(now);
    let row = ScheduleRow {
        id: uuid::Uuid::now_v7().to_string(),
        template: new.template,
        name_pattern: pattern,
        rule: serde_json::to_string(&new.rule).map_err(|e| Error::Other(e.into()))?,
        time_zone: compiled.time_zone().iana_name().unwrap_or("UTC").to_string(),
        starts_as,
        paused: false,
        next_at,
        last_fired_at: None,
        created_by: by.to_string(),
        created_at: now,
        due_days: new.due_days,
        due_business_days: new.due_business_days && new.due_days.is_some(),
    };
    let body = WorkspaceEventBody::ScheduleCreated {
        id: row.id.clone(),
        template: row.template.clone(),
        name_pattern: row.name_pattern.clone(),
        rule: serde_json::to_value(&new.rule).map_err(|e| Error::Other(e.into()))?,
        time_zone: row.time_zone.clone(),
        starts_as: row.starts_as.clone(),
        due_days: row.due_days,
        due_business_days: row.due_business_days,
    };
    store.put_schedule(&WorkspaceEvent { at: now, by: by.clone(), body }, &row)?;
    Ok(row)
}

/// The rule of a stored schedule.
pub fn compiled_rule(row: &ScheduleRow) -> Result<CompiledRule> {
    let rule: ScheduleRule = serde_json::from_str(&row.rule)
        .map_err(|e| Error::Other(anyhow::anyhow!("schedule {} has an unreadable rule: {e}", row.id)))?;
    CompiledRule::new(&rule, &row.time_zone)
}

fn event(by: &Actor, now: Timestamp, body: WorkspaceEventBody) -> WorkspaceEvent {
    WorkspaceEvent { at: now, by: by.clone(), body }
}

/// Pauses a schedule: nothing fires until it is resumed.
pub fn pause(store: &dyn ScheduleStore, by: &Actor, id: &str, now: Timestamp) -> Result<ScheduleRow> {
    let row = store.schedule(id)?.ok_or_else(|| Error::NotFound(format!("no schedule with id {id}")))?;
    let paused = event(by, now, WorkspaceEventBody::SchedulePaused { id: id.to_string() });
    store.set_schedule_paused(&paused, id, true, row.next_at)?;
    store.schedule(id)?.ok_or_else(|| Error::NotFound(format!("no schedule with id {id}")))
}

/// Resumes a schedule from the first occurrence after `now`: occurrences
/// missed while paused do not fire.
pub fn resume(store: &dyn ScheduleStore, by: &Actor, id: &str, now: Timestamp) -> Result<ScheduleRow> {
    let row = store.schedule(id)?.ok_or_else(|| Error::NotFound(format!("no schedule with id {id}")))?;
    let next = compiled_rule(&row)?.next_after(now);
    let resumed = event(by, now, WorkspaceEventBody::ScheduleResumed { id: id.to_string() });
    store.set_schedule_paused(&resumed, id, false, next)?;
    store.schedule(id)?.ok_or_else(|| Error::NotFound(format!("no schedule with id {id}")))
}

/// Deletes a schedule; the runs it started stay.
pub fn delete(store: &dyn ScheduleStore, by: &Actor, id: &str, now: Timestamp) -> Result<()> {
    let deleted = event(by, now, WorkspaceEventBody::ScheduleDeleted { id: id.to_string() });
    Ok(store.delete_schedule(&deleted, id)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("valid")
    }

    fn daily(at: &str) -> ScheduleRule {
        ScheduleRule::Every { every: Every::Daily, at: at.into(), weekday: None, day: None }
    }

    #[test]
    fn a_daily_rule_keeps_its_wall_clock_time_across_the_autumn_change() {
        // Europe/Berlin leaves summer time on 2026-10-25 (UTC+2 -> UTC+1).
        let rule = CompiledRule::new(&daily("09:00"), "Europe/Berlin").expect("valid");
        let first = rule.next_after(ts("2026-10-24T12:00:00Z")).expect("next");
        assert_eq!(first, ts("2026-10-25T08:00:00Z"));
        assert_eq!(rule.next_after(ts("2026-10-23T12:00:00Z")), Some(ts("2026-10-24T07:00:00Z")));
    }

    #[test]
    fn a_time_in_the_spring_gap_fires_once_just_after_it() {
        // 2026-03-29 02:30 does not exist in Europe/Berlin.
        let rule = CompiledRule::new(&daily("02:30"), "Europe/Berlin").expect("valid");
        assert_eq!(rule.next_after(ts("2026-03-28T12:00:00Z")), Some(ts("2026-03-29T01:30:00Z")));
        assert_eq!(rule.next_after(ts("2026-03-29T01:30:00Z")), Some(ts("2026-03-30T00:30:00Z")));
    }

    #[test]
    fn quarterly_and_monthly_rules_clamp_to_short_months() {
        let q = ScheduleRule::Every { every: Every::Quarterly, at: "08:00".into(), weekday: None, day: Some(1) };
        let rule = CompiledRule::new(&q, "UTC").expect("valid");
        assert_eq!(rule.next_after(ts("2026-02-10T00:00:00Z")), Some(ts("2026-04-01T08:00:00Z")));
        let m = ScheduleRule::Every { every: Every::Monthly, at: "08:00".into(), weekday: None, day: Some(31) };
        let rule = CompiledRule::new(&m, "UTC").expect("valid");
        assert_eq!(rule.next_after(ts("2026-02-01T00:00:00Z")), Some(ts("2026-02-28T08:00:00Z")));
    }

    #[test]
    fn cron_rules_read_in_the_schedule_zone() {
        let rule =
            CompiledRule::new(&ScheduleRule::Cron { cron: "0 9 * * 1".into() }, "America/New_York").expect("valid");
        // Monday 2026-11-02 09:00 EST is 14:00 UTC (DST ended 2026-11-01).
        assert_eq!(rule.next_after(ts("2026-10-31T00:00:00Z")), Some(ts("2026-11-02T14:00:00Z")));
        assert!(CompiledRule::new(&ScheduleRule::Cron { cron: "61 * * * *".into() }, "UTC").is_err());
    }

    #[test]
    fn the_latest_missed_occurrence_is_found_after_a_long_gap() {
        let rule = CompiledRule::new(&daily("09:00"), "UTC").expect("valid");
        let latest = rule.latest_until(ts("2026-03-01T09:00:00Z"), ts("2026-03-05T10:00:00Z"));
        assert_eq!(latest, ts("2026-03-05T09:00:00Z"));
    }

    #[test]
    fn rules_with_unknown_or_mixed_keys_are_refused() {
        for bad in [
            r#"{"every": "daily", "at": "09:00", "minute": 5}"#,
            r#"{"cron": "0 9 * * *", "every": "daily"}"#,
            r#"{"every": "hourly", "at": "09:00"}"#,
        ] {
            assert!(serde_json::from_str::<ScheduleRule>(bad).is_err(), "{bad}");
        }
        let ok: ScheduleRule =
            serde_json::from_str(r#"{"every": "weekly", "at": "09:00", "weekday": "friday"}"#).expect("a weekly rule");
        assert!(CompiledRule::new(&ok, "UTC").is_ok());
    }

    #[test]
    fn run_names_fill_the_quarter_and_year() {
        let at: Zoned = "2026-04-01T08:00:00[Europe/Berlin]".parse().expect("valid");
        assert_eq!(run_name("Access review {quarter} {year}", &at), "Access review Q2 2026");
        assert_eq!(run_name("{month_name} {date}", &at), "April 2026-04-01");
    }
}
