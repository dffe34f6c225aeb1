//! Due dates. Calendar arithmetic happens in the workspace's time zone so that
//! "3 days" means three calendar days across a daylight-saving change, and
//! business days skip Saturdays and Sundays.

use attest_template::{DueAnchor, Duration, DurationUnit, Task};
use jiff::civil::Weekday;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan, Zoned};

use crate::state::RunState;

/// When a task falls due, or `None` while its anchor has not happened yet.
pub fn due_at(task: &Task, state: &RunState, tz: &TimeZone) -> Option<Timestamp> {
    let due = task.due.as_ref()?;
    let start = match &due.after {
        DueAnchor::RunStarted => state.started_at.to_zoned(tz.clone()),
        DueAnchor::Task(k) => state.task(k)?.completed_at?.to_zoned(tz.clone()),
        DueAnchor::Field(k) => {
            let text = state.values.get(k)?.as_str()?;
            match text.parse::<jiff::civil::Date>() {
                Ok(date) => date.to_zoned(tz.clone()).ok()?,
                Err(_) => text.parse::<Timestamp>().ok()?.to_zoned(tz.clone()),
            }
        }
    };
    add(&start, due.within, due.business_days).map(|z| z.timestamp())
}

/// Adds a template duration to a zoned time.
pub fn add(start: &Zoned, d: Duration, business_days: bool) -> Option<Zoned> {
    let amount = i64::from(d.amount);
    match (d.unit, business_days) {
        (DurationUnit::Days, true) => add_business_days(start, amount),
        (DurationUnit::Weeks, true) => add_business_days(start, amount * 5),
        (DurationUnit::Days, false) => start.checked_add(amount.days()).ok(),
        (DurationUnit::Weeks, false) => start.checked_add(amount.weeks()).ok(),
        (DurationUnit::Hours, _) => start.checked_add(amount.hours()).ok(),
        (DurationUnit::Minutes, _) => start.checked_add(amount.minutes()).ok(),
    }
}

fn is_weekend(z: &Zoned) -> bool {
    matches!(z.weekday(), Weekday::Saturday | Weekday::Sunday)
}

/// Moves forward one calendar day at a time, counting only weekdays. The loop
/// is bounded by the duration limit (100,000 units × 7/5 days each, at most).
fn add_business_days(start: &Zoned, count: i64) -> Option<Zoned> {
    let mut at = start.clone();
    let mut left = count;
    while left > 0 {
        at = at.checked_add(1.day()).ok()?;
        if !is_weekend(&at) {
            left -= 1;
        }
    }
    Some(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zoned(s: &str) -> Zoned {
        s.parse().expect("test timestamps are valid")
    }

    #[test]
    fn three_business_days_from_friday_is_wednesday() {
        let friday = zoned("2026-11-20T10:00:00[Europe/Berlin]");
        let due = add(&friday, Duration::parse("3d").expect("valid"), true).expect("in range");
        assert_eq!(due, zoned("2026-11-25T10:00:00[Europe/Berlin]"));
    }

    #[test]
    fn one_business_week_is_five_weekdays() {
        let monday = zoned("2026-11-23T09:00:00[UTC]");
        let due = add(&monday, Duration::parse("1w").expect("valid"), true).expect("in range");
        assert_eq!(due, zoned("2026-11-30T09:00:00[UTC]"));
    }

    #[test]
    fn calendar_days_keep_the_wall_clock_across_daylight_saving() {
        // Europe/Berlin leaves summer time on 2026-10-25.
        let before = zoned("2026-10-24T09:00:00[Europe/Berlin]");
        let due = add(&before, Duration::parse("2d").expect("valid"), false).expect("in range");
        assert_eq!(due, zoned("2026-10-26T09:00:00[Europe/Berlin]"));
        assert_eq!(due.timestamp().as_second() - before.timestamp().as_second(), 49 * 3600);
    }
}
