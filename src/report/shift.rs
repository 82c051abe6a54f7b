//! Shifts in local time: which UTC instants a named shift on a date covers.
//!
//! Owns: the arithmetic (pure, with jiff's time-zone database): a shift
//! whose end is not after its start crosses midnight; on daylight-saving
//! days a shift is as long as the wall clock says (an 8-hour night shift is
//! 7 hours when clocks go forward and 9 when they go back).
//! Must not: read the journal or a clock.

use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

use crate::config::Shift;

/// One shift on one date: `[start, end)` in UTC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub name: String,
    /// The local date the shift starts on.
    pub date: Date,
    pub start: Timestamp,
    pub end: Timestamp,
}

impl Window {
    pub fn hours(&self) -> f64 {
        self.end.duration_since(self.start).as_secs_f64() / 3600.0
    }
}

/// The shifts of a config; none configured means the whole local day is
/// one shift called `day`.
pub fn shifts_or_day(configured: &[Shift]) -> Vec<Shift> {
    if configured.is_empty() {
        vec![Shift {
            name: "day".into(),
            start: (0, 0),
            end: (0, 0),
        }]
    } else {
        configured.to_vec()
    }
}

fn local(date: Date, hm: (u8, u8), tz: &TimeZone) -> Option<Timestamp> {
    let t = Time::new(hm.0 as i8, hm.1 as i8, 0, 0).ok()?;
    date.to_datetime(t)
        .to_zoned(tz.clone())
        .ok()
        .map(|z| z.timestamp())
}

/// The window of `shift` starting on local `date`.
pub fn window(shift: &Shift, date: Date, tz: &TimeZone) -> Option<Window> {
    let start = local(date, shift.start, tz)?;
    let end_date = if shift.end <= shift.start {
        date.checked_add(1.day()).ok()?
    } else {
        date
    };
    let end = local(end_date, shift.end, tz)?;
    Some(Window {
        name: shift.name.clone(),
        date,
        start,
        end,
    })
}

/// The shift that ended last at or before `now`.
pub fn last_finished(shifts: &[Shift], now: Timestamp, tz: &TimeZone) -> Option<Window> {
    let today = now.to_zoned(tz.clone()).date();
    let mut best: Option<Window> = None;
    for back in 0..3 {
        let Ok(date) = today.checked_sub(back.days()) else {
            continue;
        };
        for s in shifts {
            if let Some(w) = window(s, date, tz) {
                if w.end <= now && best.as_ref().is_none_or(|b| w.end > b.end) {
                    best = Some(w);
                }
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn berlin() -> TimeZone {
        TimeZone::get("Europe/Berlin").expect("tz")
    }

    fn shift(name: &str, start: (u8, u8), end: (u8, u8)) -> Shift {
        Shift {
            name: name.into(),
            start,
            end,
        }
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("ts")
    }

    #[test]
    fn a_day_shift_is_inside_its_date() {
        let w = window(
            &shift("A", (6, 0), (14, 0)),
            Date::constant(2026, 11, 23),
            &berlin(),
        )
        .expect("window");
        assert_eq!(w.start, ts("2026-11-23T05:00:00Z"));
        assert_eq!(w.end, ts("2026-11-23T13:00:00Z"));
        assert_eq!(w.hours(), 8.0);
    }

    #[test]
    fn a_night_shift_crosses_midnight() {
        let w = window(
            &shift("C", (22, 0), (6, 0)),
            Date::constant(2026, 11, 23),
            &berlin(),
        )
        .expect("window");
        assert_eq!(w.start, ts("2026-11-23T21:00:00Z"));
        assert_eq!(w.end, ts("2026-11-24T05:00:00Z"));
    }

    #[test]
    fn the_night_clocks_go_forward_is_an_hour_shorter() {
        let w = window(
            &shift("C", (22, 0), (6, 0)),
            Date::constant(2026, 3, 28),
            &berlin(),
        )
        .expect("window");
        assert_eq!(w.start, ts("2026-03-28T21:00:00Z"));
        assert_eq!(w.end, ts("2026-03-29T04:00:00Z"));
        assert_eq!(w.hours(), 7.0);
    }

    #[test]
    fn the_night_clocks_go_back_is_an_hour_longer() {
        let w = window(
            &shift("C", (22, 0), (6, 0)),
            Date::constant(2026, 10, 24),
            &berlin(),
        )
        .expect("window");
        assert_eq!(w.start, ts("2026-10-24T20:00:00Z"));
        assert_eq!(w.end, ts("2026-10-25T05:00:00Z"));
        assert_eq!(w.hours(), 9.0);
    }

    #[test]
    fn no_shifts_means_the_whole_local_day() {
        let s = shifts_or_day(&[]);
        let w = window(&s[0], Date::constant(2026, 10, 25), &berlin()).expect("window");
        assert_eq!(w.name, "day");
        assert_eq!(w.hours(), 25.0, "the day clocks go back has 25 hours");
    }

    #[test]
    fn the_last_finished_shift_may_be_yesterdays_night_shift() {
        let s = vec![
            shift("A", (6, 0), (14, 0)),
            shift("B", (14, 0), (22, 0)),
            shift("C", (22, 0), (6, 0)),
        ];
        // 07:00 local on the 24th: C of the 23rd ended at 06:00.
        let w = last_finished(&s, ts("2026-11-24T06:00:00Z"), &berlin()).expect("shift");
        assert_eq!(
            (w.name.as_str(), w.date),
            ("C", Date::constant(2026, 11, 23))
        );
        // 15:00 local: A of the 24th.
        let w = last_finished(&s, ts("2026-11-24T14:00:00Z"), &berlin()).expect("shift");
        assert_eq!(
            (w.name.as_str(), w.date),
            ("A", Date::constant(2026, 11, 24))
        );
    }
}
