//! Route schedules: weekdays and hour ranges in a named time zone.

use chrono::{DateTime, Datelike, NaiveTime, Timelike, Utc, Weekday};
use chrono_tz::Tz;

/// When a route applies (or, with `outside`, when it does not).
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    timezone: Tz,
    days: Vec<Weekday>,
    /// Half-open `[start, end)` ranges; a range whose end is before its start spans midnight.
    hours: Vec<(NaiveTime, NaiveTime)>,
    outside: bool,
}

/// What is wrong with a route's `schedule`, and the form it takes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("unknown time zone `{0}`; expected a name such as Europe/Moscow")]
    TimeZone(String),
    #[error("unknown day `{0}`; expected mon, tue, wed, thu, fri, sat or sun")]
    Day(String),
    #[error("invalid hours `{0}`; expected HH:MM-HH:MM such as 09:00-18:00")]
    Hours(String),
    #[error("hours `{0}` are empty; write 00:00-24:00 for the whole day")]
    EmptyHours(String),
}

impl Schedule {
    /// Builds a schedule from its config values. `days` empty means every day, `hours` empty
    /// means all day.
    ///
    /// # Errors
    /// An unknown zone, day or malformed range, with the accepted form in the message.
    pub fn new(timezone: &str, days: &[String], hours: &[String], outside: bool) -> Result<Self, ScheduleError> {
        let timezone: Tz = timezone.parse().map_err(|_| ScheduleError::TimeZone(timezone.to_owned()))?;
        let days = days
            .iter()
            .map(|day| day.parse::<Weekday>().map_err(|_| ScheduleError::Day(day.clone())))
            .collect::<Result<_, _>>()?;
        let hours = hours.iter().map(|range| parse_range(range)).collect::<Result<_, _>>()?;
        Ok(Self { timezone, days, hours, outside })
    }

    /// Whether the route applies at `at`.
    pub fn applies(&self, at: DateTime<Utc>) -> bool {
        let local = at.with_timezone(&self.timezone);
        let time = NaiveTime::from_hms_opt(local.hour(), local.minute(), local.second()).unwrap_or_default();
        let in_hours = self.hours.is_empty()
            || self.hours.iter().any(|(start, end)| {
                if start <= end { *start <= time && time < *end } else { time >= *start || time < *end }
            });
        // A range spanning midnight belongs to the day it started on.
        let day = if self.hours.iter().any(|(start, end)| start > end && time < *end) {
            local.weekday().pred()
        } else {
            local.weekday()
        };
        let within = in_hours && (self.days.is_empty() || self.days.contains(&day));
        within != self.outside
    }

    /// A short description for `switchboard test`.
    pub fn describe(&self) -> String {
        let days = if self.days.is_empty() {
            "every day".to_owned()
        } else {
            self.days.iter().map(|d| d.to_string().to_lowercase()).collect::<Vec<_>>().join(",")
        };
        let hours = if self.hours.is_empty() {
            "all day".to_owned()
        } else {
            self.hours
                .iter()
                .map(|(s, e)| format!("{}-{}", s.format("%H:%M"), e.format("%H:%M")))
                .collect::<Vec<_>>()
                .join(",")
        };
        let within = format!("{days} {hours} {}", self.timezone);
        if self.outside { format!("outside {within}") } else { within }
    }
}

fn parse_range(range: &str) -> Result<(NaiveTime, NaiveTime), ScheduleError> {
    let error = || ScheduleError::Hours(range.to_owned());
    let (start, end) = range.split_once('-').ok_or_else(error)?;
    let parse = |t: &str| {
        let t = t.trim();
        if t == "24:00" {
            return NaiveTime::from_hms_opt(23, 59, 59).ok_or_else(error);
        }
        NaiveTime::parse_from_str(t, "%H:%M").map_err(|_| error())
    };
    let (start, end) = (parse(start)?, parse(end)?);
    if start == end {
        return Err(ScheduleError::EmptyHours(range.to_owned()));
    }
    Ok((start, end))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn moscow(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        chrono_tz::Europe::Moscow.with_ymd_and_hms(y, m, d, h, min, 0).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn office_hours_on_weekdays() {
        let days: Vec<String> = ["mon", "tue", "wed", "thu", "fri"].map(String::from).to_vec();
        let office = Schedule::new("Europe/Moscow", &days, &["09:00-18:00".into()], false).unwrap();
        // 2026-11-23 is a Monday.
        assert!(office.applies(moscow(2026, 11, 23, 9, 0)));
        assert!(office.applies(moscow(2026, 11, 23, 17, 59)));
        assert!(!office.applies(moscow(2026, 11, 23, 18, 0)));
        assert!(!office.applies(moscow(2026, 11, 23, 8, 59)));
        assert!(!office.applies(moscow(2026, 11, 22, 12, 0)), "Sunday");
        let after_hours = Schedule::new("Europe/Moscow", &days, &["09:00-18:00".into()], true).unwrap();
        assert!(after_hours.applies(moscow(2026, 11, 22, 12, 0)));
        assert!(after_hours.applies(moscow(2026, 11, 23, 20, 0)));
    }

    #[test]
    fn night_ranges_span_midnight_and_belong_to_their_start_day() {
        let night = Schedule::new("Europe/Moscow", &["fri".into()], &["22:00-06:00".into()], false).unwrap();
        // Friday 2026-11-27 23:00 and Saturday 03:00 are Friday night; Saturday 23:00 is not.
        assert!(night.applies(moscow(2026, 11, 27, 23, 0)));
        assert!(night.applies(moscow(2026, 11, 28, 3, 0)));
        assert!(!night.applies(moscow(2026, 11, 28, 23, 0)));
        assert!(!night.applies(moscow(2026, 11, 27, 12, 0)));
    }

    #[test]
    fn bad_values_are_explained() {
        assert!(Schedule::new("Mars/Olympus", &[], &[], false).unwrap_err().to_string().contains("unknown time zone"));
        assert!(
            Schedule::new("UTC", &["funday".into()], &[], false)
                .unwrap_err()
                .to_string()
                .contains("unknown day `funday`")
        );
        assert!(
            Schedule::new("UTC", &[], &["9-18".into()], false)
                .unwrap_err()
                .to_string()
                .contains("expected HH:MM-HH:MM")
        );
        assert!(Schedule::new("UTC", &[], &["09:00-09:00".into()], false).unwrap_err().to_string().contains("empty"));
    }
}
