//! When the nightly sync runs: the next occurrence of a local wall-clock
//! time in the line's time zone.
//!
//! Owns: the arithmetic (pure, DST included). Must not: sleep.

use jiff::civil::Time;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

/// The first instant after `now` at which the local clock in `tz` shows
/// `hour:minute`. On the spring-forward day a time inside the gap runs as
/// far after the gap's start as it was after the hour (02:30 runs at 03:30
/// summer time); on the fall-back day a repeated time runs once, at its
/// first occurrence.
pub fn next_nightly(now: Timestamp, tz: &TimeZone, hour: u8, minute: u8) -> Timestamp {
    let at = Time::constant(hour as i8, minute as i8, 0, 0);
    let today = now.to_zoned(tz.clone()).date();
    for days in 0..3 {
        let Ok(date) = today.checked_add(days.days()) else {
            break;
        };
        if let Ok(z) = date.to_datetime(at).to_zoned(tz.clone()) {
            if z.timestamp() > now {
                return z.timestamp();
            }
        }
    }
    // Unreachable for real time zones; a day from now is a safe answer.
    now.checked_add(24.hours()).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn berlin() -> TimeZone {
        TimeZone::get("Europe/Berlin").expect("tz")
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    #[test]
    fn later_today_or_tomorrow() {
        // 23:30 UTC = 00:30 CET on 2026-11-24: 02:00 CET is the same local day.
        assert_eq!(
            next_nightly(ts("2026-11-23T23:30:00Z"), &berlin(), 2, 0),
            ts("2026-11-24T01:00:00Z")
        );
        // 01:00 UTC = 02:00 CET exactly: the next one is tomorrow.
        assert_eq!(
            next_nightly(ts("2026-11-24T01:00:00Z"), &berlin(), 2, 0),
            ts("2026-11-25T01:00:00Z")
        );
    }

    #[test]
    fn spring_forward_gap_runs_an_hour_later_by_the_clock() {
        // 2026-03-29 02:00-03:00 does not exist in Berlin.
        let t = next_nightly(ts("2026-03-28T12:00:00Z"), &berlin(), 2, 30);
        assert_eq!(t, ts("2026-03-29T01:30:00Z"));
        assert_eq!(t.to_zoned(berlin()).offset().seconds(), 7200);
    }

    #[test]
    fn fall_back_runs_once_at_the_first_occurrence() {
        // 2026-10-25 02:30 happens twice in Berlin (CEST, then CET).
        let first = next_nightly(ts("2026-10-24T12:00:00Z"), &berlin(), 2, 30);
        assert_eq!(first, ts("2026-10-25T00:30:00Z"));
        let next = next_nightly(first, &berlin(), 2, 30);
        assert_eq!(next, ts("2026-10-26T01:30:00Z"));
    }
}
