//! Drill windows: days and hours in a time zone, checked when a plan is made.

use jiff::Timestamp;
use jiff::civil::{Time, Weekday as CivilWeekday};
use jiff::tz::TimeZone;

use super::diagnostic::Diagnostics;
use super::model::{Weekday, Window};
use super::path::YamlPath;

/// Parses `HH:MM-HH:MM`.
pub fn hours(text: &str) -> Result<(Time, Time), String> {
    let bad = || format!("invalid hours `{text}`: write them like `14:00-17:00`");
    let (from, to) = text.split_once('-').ok_or_else(bad)?;
    let parse = |t: &str| Time::strptime("%H:%M", t.trim()).map_err(|_| bad());
    let (from, to) = (parse(from)?, parse(to)?);
    if from >= to {
        return Err(format!(
            "invalid hours `{text}`: the window must end after it starts, on the same day"
        ));
    }
    Ok((from, to))
}

/// Reports problems of a window at `path`.
pub fn check(window: &Window, path: &YamlPath, diags: &mut Diagnostics<'_>) {
    if window.days.is_empty() {
        diags
            .error(&path.key("days"), "no days given")
            .help("list days like [tue, wed, thu]");
    }
    if let Err(message) = hours(&window.hours) {
        diags.error(&path.key("hours"), message);
    }
    if TimeZone::get(&window.tz).is_err() {
        diags
            .error(
                &path.key("tz"),
                format!("unknown time zone `{}`", window.tz),
            )
            .help("use an IANA name such as America/Los_Angeles or Europe/Dublin");
    }
}

fn same_day(a: Weekday, b: CivilWeekday) -> bool {
    matches!(
        (a, b),
        (Weekday::Mon, CivilWeekday::Monday)
            | (Weekday::Tue, CivilWeekday::Tuesday)
            | (Weekday::Wed, CivilWeekday::Wednesday)
            | (Weekday::Thu, CivilWeekday::Thursday)
            | (Weekday::Fri, CivilWeekday::Friday)
            | (Weekday::Sat, CivilWeekday::Saturday)
            | (Weekday::Sun, CivilWeekday::Sunday)
    )
}

/// Whether `now` is inside the window; `Err` describes the local time when it is not.
pub fn inside(window: &Window, now: Timestamp) -> Result<(), String> {
    let tz = TimeZone::get(&window.tz).map_err(|e| e.to_string())?;
    let (from, to) = hours(&window.hours)?;
    let local = now.to_zoned_datetime(tz);
    let day_ok = window.days.iter().any(|d| same_day(*d, local.weekday()));
    let time = local.time();
    if day_ok && time >= from && time < to {
        Ok(())
    } else {
        Err(local.strftime("%a %H:%M %Z").to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window() -> Window {
        Window {
            days: vec![Weekday::Tue, Weekday::Wed],
            hours: "14:00-17:00".into(),
            tz: "America/Los_Angeles".into(),
        }
    }

    #[test]
    fn inside_and_outside_the_window() {
        // Tuesday 2026-11-24 15:00 in Los Angeles is 23:00 UTC.
        let inside_ts: Timestamp = "2026-11-24T23:00:00Z".parse().expect("timestamp");
        assert_eq!(inside(&window(), inside_ts), Ok(()));
        // Monday 2026-11-23 15:00 local.
        let monday: Timestamp = "2026-11-23T23:00:00Z".parse().expect("timestamp");
        assert_eq!(inside(&window(), monday), Err("Mon 15:00 PST".to_owned()));
        // Tuesday 18:00 local.
        let late: Timestamp = "2026-11-25T02:00:00Z".parse().expect("timestamp");
        assert!(inside(&window(), late).is_err());
    }

    #[test]
    fn hours_must_be_a_same_day_range() {
        assert!(hours("14:00-17:00").is_ok());
        assert!(hours("17:00-14:00").is_err());
        assert!(hours("2pm-5pm").is_err());
    }
}
