//! Time windows in which reboots may start (pure). A window is a time of day range on some
//! days of the week, in UTC: a fleet spans time zones, and UTC needs no time zone database.
//!
//! ```yaml
//! windows:
//!   - {days: [mon, tue, wed, thu], from: "08:00", to: "16:00"}
//!   - {days: [sat], from: "22:00", to: "02:00"}   # past midnight: Sunday 00:00-02:00 too
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

/// A day of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Weekday {
    /// Monday.
    Mon,
    /// Tuesday.
    Tue,
    /// Wednesday.
    Wed,
    /// Thursday.
    Thu,
    /// Friday.
    Fri,
    /// Saturday.
    Sat,
    /// Sunday.
    Sun,
}

const DAYS: [Weekday; 7] = [
    Weekday::Mon,
    Weekday::Tue,
    Weekday::Wed,
    Weekday::Thu,
    Weekday::Fri,
    Weekday::Sat,
    Weekday::Sun,
];

impl Weekday {
    /// The day of a UNIX time (UTC). 1970-01-01 was a Thursday.
    pub fn of(unix_secs: u64) -> Weekday {
        DAYS[usize::try_from((unix_secs / 86_400 + 3) % 7).unwrap_or(0)]
    }

    fn before(self) -> Weekday {
        DAYS[(self as usize + 6) % 7]
    }
}

/// A time of day, to the minute (`HH:MM`, 00:00 to 23:59).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct TimeOfDay(u16);

impl TimeOfDay {
    /// Minutes since midnight.
    pub fn minutes(self) -> u16 {
        self.0
    }
}

/// A time of day that is not `HH:MM` from 00:00 to 23:59.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid time of day {0:?}: expected HH:MM, 00:00 to 23:59")]
pub struct BadTimeOfDay(pub String);

impl FromStr for TimeOfDay {
    type Err = BadTimeOfDay;
    /// ```
    /// use conftool_rebootmgr::window::TimeOfDay;
    /// assert_eq!("08:30".parse::<TimeOfDay>().unwrap().minutes(), 510);
    /// assert!("24:00".parse::<TimeOfDay>().is_err());
    /// assert!("8".parse::<TimeOfDay>().is_err());
    /// ```
    fn from_str(s: &str) -> Result<Self, BadTimeOfDay> {
        let bad = || BadTimeOfDay(s.to_string());
        let (h, m) = s.split_once(':').ok_or_else(bad)?;
        if h.len() != 2 || m.len() != 2 {
            return Err(bad());
        }
        let (h, m): (u16, u16) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        if h > 23 || m > 59 {
            return Err(bad());
        }
        Ok(TimeOfDay(h * 60 + m))
    }
}

impl<'de> Deserialize<'de> for TimeOfDay {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

/// One window: `from` (included) to `to` (excluded) on `days` (every day when empty). A
/// `to` at or before `from` runs past midnight into the next day; `from` equal to `to` is
/// the whole day.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// The days on which it opens.
    #[serde(default)]
    pub days: Vec<Weekday>,
    /// When it opens.
    pub from: TimeOfDay,
    /// When it closes.
    pub to: TimeOfDay,
}

impl Window {
    /// Whether the window is open at `unix_secs` (UTC).
    pub fn contains(&self, unix_secs: u64) -> bool {
        let day = Weekday::of(unix_secs);
        let minute = u16::try_from(unix_secs % 86_400 / 60).unwrap_or(0);
        let on = |d: Weekday| self.days.is_empty() || self.days.contains(&d);
        let (from, to) = (self.from.0, self.to.0);
        if from == to {
            return on(day);
        }
        if from < to {
            return on(day) && (from..to).contains(&minute);
        }
        (on(day) && minute >= from) || (on(day.before()) && minute < to)
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.days.is_empty() {
            f.write_str("every day")?;
        } else {
            let days: Vec<String> = self
                .days
                .iter()
                .map(|d| format!("{d:?}").to_lowercase())
                .collect();
            f.write_str(&days.join(","))?;
        }
        write!(f, " {}-{} UTC", self.from, self.to)
    }
}

/// Whether a reboot may start at `unix_secs`: no window configured, or one of them open.
pub fn open(windows: &[Window], unix_secs: u64) -> bool {
    windows.is_empty() || windows.iter().any(|w| w.contains(unix_secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(days: &[Weekday], from: &str, to: &str) -> Window {
        Window {
            days: days.to_vec(),
            from: from.parse().unwrap(),
            to: to.parse().unwrap(),
        }
    }

    // 2024-01-01 was a Monday.
    const MONDAY: u64 = 1_704_067_200;
    const fn at(day: u64, h: u64, m: u64) -> u64 {
        MONDAY + day * 86_400 + h * 3600 + m * 60
    }

    #[test]
    fn days_of_the_week_from_unix_time() {
        assert_eq!(Weekday::of(0), Weekday::Thu);
        assert_eq!(Weekday::of(MONDAY), Weekday::Mon);
        assert_eq!(Weekday::of(at(6, 23, 59)), Weekday::Sun);
        assert_eq!(Weekday::of(at(7, 0, 0)), Weekday::Mon);
    }

    #[test]
    fn a_window_opens_at_from_and_closes_at_to_on_its_days() {
        let office = w(&[Weekday::Mon, Weekday::Tue], "08:00", "16:00");
        assert!(!office.contains(at(0, 7, 59)));
        assert!(office.contains(at(0, 8, 0)));
        assert!(office.contains(at(1, 15, 59)));
        assert!(!office.contains(at(1, 16, 0)));
        assert!(
            !office.contains(at(2, 12, 0)),
            "Wednesday is not one of its days"
        );
        assert!(
            w(&[], "08:00", "16:00").contains(at(5, 9, 0)),
            "no days: every day"
        );
        assert!(w(&[Weekday::Thu], "10:00", "10:00").contains(at(3, 3, 0)));
        assert!(!w(&[Weekday::Thu], "10:00", "10:00").contains(at(4, 3, 0)));
    }

    #[test]
    fn a_window_past_midnight_belongs_to_the_day_it_opened() {
        let night = w(&[Weekday::Sat], "22:00", "02:00");
        assert!(night.contains(at(5, 22, 0)));
        assert!(
            night.contains(at(6, 1, 59)),
            "Sunday early belongs to Saturday's window"
        );
        assert!(!night.contains(at(6, 2, 0)));
        assert!(
            !night.contains(at(5, 1, 0)),
            "Saturday early belongs to Friday's, not open"
        );
        assert!(!night.contains(at(6, 22, 0)));
        assert_eq!(night.to_string(), "sat 22:00-02:00 UTC");
    }

    #[test]
    fn no_window_means_always_open() {
        assert!(open(&[], at(3, 3, 3)));
        let windows = [
            w(&[Weekday::Mon], "08:00", "09:00"),
            w(&[], "20:00", "21:00"),
        ];
        assert!(open(&windows, at(2, 20, 30)));
        assert!(!open(&windows, at(2, 8, 30)));
    }
}
