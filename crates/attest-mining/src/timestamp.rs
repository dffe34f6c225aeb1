//! Parsing and formatting of XES/CSV timestamps as microseconds since the Unix epoch.
//!
//! A small hand-written parser is used because it is several times faster than a
//! general date library on the millions of timestamps a log can hold, and it accepts
//! exactly the forms found in event logs: `xs:dateTime` / RFC 3339
//! (`2010-12-30T14:32:00.000+01:00`), the same with a space instead of `T`, and
//! values without an offset, which are taken as UTC (as pandas does).

const MICROS_PER_SECOND: i64 = 1_000_000;
const SECONDS_PER_DAY: i64 = 86_400;

/// Parses a timestamp; `None` when it is not one of the accepted forms or not a real date.
pub fn parse_timestamp_us(text: &str) -> Option<i64> {
    let bytes = text.trim().as_bytes();
    let mut cursor = Cursor { bytes, pos: 0 };
    let year = cursor.year()?;
    cursor.expect(b'-')?;
    let month = cursor.digits(2)?;
    cursor.expect(b'-')?;
    let day = cursor.digits(2)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let (mut hour, mut minute, mut second, mut micros) = (0, 0, 0, 0);
    if let Some(&separator) = cursor.peek()
        && matches!(separator, b'T' | b't' | b' ')
    {
        cursor.pos += 1;
        hour = cursor.digits(2)?;
        cursor.expect(b':')?;
        minute = cursor.digits(2)?;
        if cursor.peek() == Some(&b':') {
            cursor.pos += 1;
            second = cursor.digits(2)?;
            if cursor.peek() == Some(&b'.') || cursor.peek() == Some(&b',') {
                cursor.pos += 1;
                micros = cursor.fraction_micros()?;
            }
        }
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let offset_seconds = cursor.offset_seconds()?;
    if cursor.pos != bytes.len() {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let seconds = days * SECONDS_PER_DAY + hour * 3600 + minute * 60 + second - offset_seconds;
    // Wide arithmetic, then a range check: years up to six digits can leave i64.
    i64::try_from(i128::from(seconds) * i128::from(MICROS_PER_SECOND) + i128::from(micros)).ok()
}

/// Formats as RFC 3339 in UTC with milliseconds, or microseconds when they are not zero.
pub fn format_timestamp_us(timestamp_us: i64) -> String {
    let seconds = timestamp_us.div_euclid(MICROS_PER_SECOND);
    let micros = timestamp_us.rem_euclid(MICROS_PER_SECOND);
    let days = seconds.div_euclid(SECONDS_PER_DAY);
    let second_of_day = seconds.rem_euclid(SECONDS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    let (hour, minute, second) = (second_of_day / 3600, second_of_day % 3600 / 60, second_of_day % 60);
    let fraction = if micros % 1000 == 0 { format!("{:03}", micros / 1000) } else { format!("{micros:06}") };
    let sign = if year < 0 { "-" } else { "" };
    let year = year.abs();
    format!("{sign}{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{fraction}+00:00")
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<&u8> {
        self.bytes.get(self.pos)
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.peek() == Some(&byte)).then(|| self.pos += 1)
    }

    /// An `xs:dateTime` year: optionally negative, four to six digits.
    fn year(&mut self) -> Option<i64> {
        let negative = self.peek() == Some(&b'-');
        if negative {
            self.pos += 1;
        }
        let count = self.bytes[self.pos..].iter().take_while(|byte| byte.is_ascii_digit()).count();
        if !(4..=6).contains(&count) {
            return None;
        }
        let year = self.digits(count)?;
        Some(if negative { -year } else { year })
    }

    fn digits(&mut self, count: usize) -> Option<i64> {
        let slice = self.bytes.get(self.pos..self.pos + count)?;
        let mut value = 0i64;
        for &byte in slice {
            if !byte.is_ascii_digit() {
                return None;
            }
            value = value * 10 + i64::from(byte - b'0');
        }
        self.pos += count;
        Some(value)
    }

    /// Reads fractional-second digits, keeping microsecond precision (truncating the rest).
    fn fraction_micros(&mut self) -> Option<i64> {
        let start = self.pos;
        let mut micros = 0i64;
        while let Some(&byte) = self.peek() {
            if !byte.is_ascii_digit() {
                break;
            }
            if self.pos - start < 6 {
                micros = micros * 10 + i64::from(byte - b'0');
            }
            self.pos += 1;
        }
        let count = self.pos - start;
        if count == 0 {
            return None;
        }
        for _ in count..6 {
            micros *= 10;
        }
        Some(micros)
    }

    fn offset_seconds(&mut self) -> Option<i64> {
        let sign = match self.peek() {
            None => return Some(0),
            Some(b'Z' | b'z') => {
                self.pos += 1;
                return Some(0);
            }
            Some(b'+') => 1,
            Some(b'-') => -1,
            Some(_) => return None,
        };
        self.pos += 1;
        let hours = self.digits(2)?;
        if self.peek() == Some(&b':') {
            self.pos += 1;
        }
        let minutes = if self.peek().is_some() { self.digits(2)? } else { 0 };
        if hours > 23 || minutes > 59 {
            return None;
        }
        Some(sign * (hours * 3600 + minutes * 60))
    }
}

fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_xes_dates_with_offsets() {
        // 2010-12-30T13:32:00Z is 1293715920 seconds after the epoch.
        assert_eq!(parse_timestamp_us("2010-12-30T14:32:00.000+01:00"), Some(1_293_715_920_000_000));
        assert_eq!(parse_timestamp_us("2010-12-30 13:32:00"), Some(1_293_715_920_000_000));
        assert_eq!(parse_timestamp_us("2010-12-30T13:32:00.5Z"), Some(1_293_715_920_500_000));
        assert_eq!(parse_timestamp_us("1970-01-01T01:00:00.000+01:00"), Some(0));
        assert_eq!(parse_timestamp_us("1969-12-31T23:59:59.999999Z"), Some(-1));
        assert_eq!(parse_timestamp_us("2020-02-29"), Some(1_582_934_400_000_000));
        assert_eq!(parse_timestamp_us("2020-02-29T00:00:00-0130"), Some(1_582_934_400_000_000 + 5_400_000_000));
    }

    #[test]
    fn rejects_impossible_or_malformed_dates() {
        for bad in [
            "",
            "2019-02-29T00:00:00",
            "2010-13-01T00:00:00",
            "2010-12-30T24:00:00",
            "2010-12-30T10:00:00+",
            "2010-12-30T10:00:00.Z",
            "2010-12-30X10:00:00",
            "30/12/2010",
            "2010-12-30T10:00:00 junk",
        ] {
            assert_eq!(parse_timestamp_us(bad), None, "{bad}");
        }
    }

    #[test]
    fn formats_and_parses_back() {
        for value in [
            0,
            -1,
            1_293_715_920_000_000,
            1_293_715_920_123_456,
            253_402_300_799_000_000,
            // Years 10000 and -1 need xs:dateTime's extended and negative years.
            253_402_300_800_000_000,
            -62_198_755_200_000_000,
            i64::MIN,
            i64::MAX,
        ] {
            let text = format_timestamp_us(value);
            assert_eq!(parse_timestamp_us(&text), Some(value), "{text}");
        }
        assert_eq!(format_timestamp_us(0), "1970-01-01T00:00:00.000+00:00");
        assert_eq!(format_timestamp_us(-62_198_755_200_000_000), "-0001-01-01T00:00:00.000+00:00");
        assert_eq!(parse_timestamp_us("999999-01-01T00:00:00Z"), None, "beyond i64 microseconds");
    }
}
