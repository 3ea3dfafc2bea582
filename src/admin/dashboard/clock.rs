//! Times on the dashboard, in the zone the alerts use (`templates.timezone`): an operator
//! comparing a Telegram message with its event reads the same clock. Every page says which zone
//! it is; the time filters are read in it too.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::config::Config;

/// The configured zone, for showing and reading times.
#[derive(Debug, Clone, Copy)]
pub(super) struct Clock(Tz);

impl Clock {
    pub(super) fn of(config: &Config) -> Self {
        Self(config.helpers().timezone)
    }

    /// The zone's name, as pages show it (`Europe/Moscow`, `UTC`).
    pub(super) fn zone(self) -> &'static str {
        self.0.name()
    }

    /// `2026-11-21 17:05:00`, in the zone.
    pub(super) fn time(self, at: DateTime<Utc>) -> String {
        at.with_timezone(&self.0).format("%Y-%m-%d %H:%M:%S").to_string()
    }

    /// `2026-11-21T14:05` (a `datetime-local` input) or `2026-11-21`, read in the zone. A time
    /// a clock change skips is taken an hour on; one it repeats, at its first occurrence.
    pub(super) fn parse(self, text: &str) -> Option<DateTime<Utc>> {
        let text = text.trim();
        let naive = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]
            .iter()
            .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
            .or_else(|| {
                chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0))
            })?;
        let local = self.0.from_local_datetime(&naive);
        local
            .earliest()
            .or_else(|| self.0.from_local_datetime(&(naive + chrono::TimeDelta::hours(1))).earliest())
            .map(|at| at.with_timezone(&Utc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_shown_and_read_in_the_configured_zone() {
        let moscow = Clock(chrono_tz::Europe::Moscow);
        let at = Utc.with_ymd_and_hms(2026, 11, 21, 14, 5, 0).unwrap();
        assert_eq!(moscow.time(at), "2026-11-21 17:05:00");
        assert_eq!(moscow.zone(), "Europe/Moscow");
        assert_eq!(moscow.parse("2026-11-21T17:05"), Some(at));
        assert_eq!(moscow.parse("2026-11-21").unwrap().to_rfc3339(), "2026-11-20T21:00:00+00:00");
        assert_eq!(Clock(chrono_tz::UTC).parse("2026-11-21T14:05"), Some(at));
        assert_eq!(moscow.parse("yesterday"), None);
    }
}
