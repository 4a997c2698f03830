//! State holiday calendars, as data (`data/state-holidays.tsv`).
//!
//! Alabama and Louisiana allow no solicitation on state holidays, Rhode Island none on
//! holidays; [`crate::quiet_hours`] closes those days for marketing where a state row
//! says `holidays = closed`. A holiday is a fixed date (`07-04`), a floating one
//! (`4th-thu-nov`, `last-mon-may`) or a day relative to Western Easter (`easter-47`,
//! Mardi Gras). Its observed day (a Sunday holiday kept on Monday, a Saturday one on
//! Friday) is closed as well as the date itself: the conservative reading when a
//! statute says "holiday" without saying which.

use chrono::{Datelike, Days, NaiveDate, Weekday};

use crate::data::{self, DataError};

/// How a holiday's date is found in a year.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateRule {
    /// The same month and day every year.
    Fixed { month: u32, day: u32 },
    /// The nth (1-4) weekday of a month, or the last one (`nth = 0`).
    Floating {
        nth: u8,
        weekday: Weekday,
        month: u32,
    },
    /// Days after (or before, negative) Western Easter Sunday.
    Easter { offset: i64 },
}

/// Which other day is kept when the date falls on a weekend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    None,
    /// A Sunday holiday is also observed the Monday after.
    SundayToMonday,
    /// A Saturday holiday is also observed the Friday before, a Sunday one the Monday after.
    WeekendToNearest,
}

/// One row of the holiday table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holiday {
    pub region: String,
    pub name: String,
    pub rule: DateRule,
    pub observed: Observed,
    pub source: String,
}

impl Holiday {
    /// The holiday's date in a year (None only for a fixed date that year lacks).
    pub fn date_in(&self, year: i32) -> Option<NaiveDate> {
        match self.rule {
            DateRule::Fixed { month, day } => NaiveDate::from_ymd_opt(year, month, day),
            DateRule::Floating {
                nth: 0,
                weekday,
                month,
            } => {
                let next_month = if month == 12 {
                    NaiveDate::from_ymd_opt(year + 1, 1, 1)
                } else {
                    NaiveDate::from_ymd_opt(year, month + 1, 1)
                }?;
                let last = next_month.pred_opt()?;
                let back = (7 + last.weekday().num_days_from_monday()
                    - weekday.num_days_from_monday())
                    % 7;
                last.checked_sub_days(Days::new(u64::from(back)))
            }
            DateRule::Floating {
                nth,
                weekday,
                month,
            } => NaiveDate::from_weekday_of_month_opt(year, month, weekday, nth),
            DateRule::Easter { offset } => {
                let easter = easter_sunday(year)?;
                if offset >= 0 {
                    easter.checked_add_days(Days::new(offset.unsigned_abs()))
                } else {
                    easter.checked_sub_days(Days::new(offset.unsigned_abs()))
                }
            }
        }
    }

    /// The day kept instead of (as well as) the date, when it differs.
    pub fn observed_in(&self, year: i32) -> Option<NaiveDate> {
        let date = self.date_in(year)?;
        match (self.observed, date.weekday()) {
            (Observed::SundayToMonday | Observed::WeekendToNearest, Weekday::Sun) => {
                date.succ_opt()
            }
            (Observed::WeekendToNearest, Weekday::Sat) => date.pred_opt(),
            _ => None,
        }
    }
}

/// Western (Gregorian) Easter Sunday: the anonymous Gregorian algorithm
/// (Meeus/Jones/Butcher).
pub fn easter_sunday(year: i32) -> Option<NaiveDate> {
    let a = year.rem_euclid(19);
    let b = year.div_euclid(100);
    let c = year.rem_euclid(100);
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    NaiveDate::from_ymd_opt(year, u32::try_from(month).ok()?, u32::try_from(day).ok()?)
}

/// Every state's holidays.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Holidays {
    rows: Vec<Holiday>,
}

impl Holidays {
    /// Parses a table in the format of `state-holidays.tsv`.
    pub fn from_tsv(text: &str) -> Result<Holidays, DataError> {
        let mut rows = Vec::new();
        for (line, cols) in data::rows(text) {
            let [region, name, date, observed, source] = cols[..] else {
                return Err(DataError::new(
                    line,
                    format!("expected 5 columns, found {}", cols.len()),
                ));
            };
            if region.len() != 2 || !region.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(DataError::new(line, format!("bad region {region:?}")));
            }
            if name.is_empty() || source.is_empty() {
                return Err(DataError::new(line, "a holiday needs its name and source"));
            }
            let rule = parse_rule(date)
                .ok_or_else(|| DataError::new(line, format!("bad date rule {date:?}")))?;
            let observed = match observed {
                "none" => Observed::None,
                "sun>mon" => Observed::SundayToMonday,
                "sat>fri,sun>mon" => Observed::WeekendToNearest,
                other => return Err(DataError::new(line, format!("bad observed rule {other:?}"))),
            };
            rows.push(Holiday {
                region: region.to_owned(),
                name: name.to_owned(),
                rule,
                observed,
                source: source.to_owned(),
            });
        }
        Ok(Holidays { rows })
    }

    /// Every row, in table order.
    pub fn rows(&self) -> &[Holiday] {
        &self.rows
    }

    /// Does the region have a calendar at all?
    pub fn has_region(&self, region: &str) -> bool {
        self.rows.iter().any(|h| h.region == region)
    }

    /// The holiday kept in `region` on `date` (the date itself or its observed day).
    pub fn holiday_on(&self, region: &str, date: NaiveDate) -> Option<&Holiday> {
        self.rows.iter().filter(|h| h.region == region).find(|h| {
            // An observed day can fall in the next or previous year (Sat 1 Jan -> Fri 31 Dec).
            [date.year() - 1, date.year(), date.year() + 1]
                .into_iter()
                .any(|y| h.date_in(y) == Some(date) || h.observed_in(y) == Some(date))
        })
    }

    /// Every closed day of a region in a year, sorted (dates and observed days).
    pub fn closed_days(&self, region: &str, year: i32) -> Vec<(NaiveDate, &str)> {
        let mut days: Vec<(NaiveDate, &str)> = self
            .rows
            .iter()
            .filter(|h| h.region == region)
            .flat_map(|h| {
                [year - 1, year, year + 1]
                    .into_iter()
                    .flat_map(|y| [h.date_in(y), h.observed_in(y)])
                    .flatten()
                    .filter(|d| d.year() == year)
                    .map(|d| (d, h.name.as_str()))
            })
            .collect();
        days.sort();
        days.dedup_by_key(|(d, _)| *d);
        days
    }
}

fn parse_rule(s: &str) -> Option<DateRule> {
    if let Some(offset) = s.strip_prefix("easter") {
        let offset: i64 = match offset {
            "" => 0,
            o => o.strip_prefix('+').unwrap_or(o).parse().ok()?,
        };
        return (offset.abs() <= 100).then_some(DateRule::Easter { offset });
    }
    if let [nth, weekday, month] = s.split('-').collect::<Vec<_>>()[..] {
        let nth = match nth {
            "1st" => 1,
            "2nd" => 2,
            "3rd" => 3,
            "4th" => 4,
            "last" => 0,
            _ => return None,
        };
        const MONTHS: [&str; 12] = [
            "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
        ];
        let month = MONTHS.iter().position(|m| *m == month)? as u32 + 1;
        return Some(DateRule::Floating {
            nth,
            weekday: weekday.parse().ok()?,
            month,
        });
    }
    let (month, day) = s.split_once('-')?;
    let (month, day) = (month.parse().ok()?, day.parse().ok()?);
    // Checked against a leap year so 02-29 parses; every other year skips it.
    NaiveDate::from_ymd_opt(2028, month, day)?;
    Some(DateRule::Fixed { month, day })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn standard() -> &'static Holidays {
        crate::quiet_hours::QuietHours::standard().holidays()
    }

    #[test]
    fn easter_matches_the_published_dates() {
        for (year, easter) in [
            (2024, "2024-03-31"),
            (2025, "2025-04-20"),
            (2026, "2026-04-05"),
            (2027, "2027-03-28"),
            (2028, "2028-04-16"),
            (2029, "2029-04-01"),
            (2030, "2030-04-21"),
            (2038, "2038-04-25"),
        ] {
            assert_eq!(easter_sunday(year), Some(d(easter)), "{year}");
        }
    }

    #[test]
    fn louisiana_movable_feasts_2026_to_2030() {
        // Mardi Gras is Easter - 47 days, Good Friday Easter - 2.
        for (year, mardi_gras, good_friday) in [
            (2026, "2026-02-17", "2026-04-03"),
            (2027, "2027-02-09", "2027-03-26"),
            (2028, "2028-02-29", "2028-04-14"),
            (2029, "2029-02-13", "2029-03-30"),
            (2030, "2030-03-05", "2030-04-19"),
        ] {
            let days = standard().closed_days("LA", year);
            for (date, name) in [(mardi_gras, "Mardi Gras"), (good_friday, "Good Friday")] {
                assert!(days.contains(&(d(date), name)), "{year} {name}: {days:?}");
            }
        }
    }

    #[test]
    fn floating_holidays_2026_to_2030() {
        // Thanksgiving (4th Thursday of November), Memorial Day (last Monday of May),
        // Victory Day (RI, 2nd Monday of August), Labor Day (1st Monday of September).
        let expected = [
            (2026, "2026-11-26", "2026-05-25", "2026-08-10", "2026-09-07"),
            (2027, "2027-11-25", "2027-05-31", "2027-08-09", "2027-09-06"),
            (2028, "2028-11-23", "2028-05-29", "2028-08-14", "2028-09-04"),
            (2029, "2029-11-22", "2029-05-28", "2029-08-13", "2029-09-03"),
            (2030, "2030-11-28", "2030-05-27", "2030-08-12", "2030-09-02"),
        ];
        for (year, thanksgiving, memorial, victory, labor) in expected {
            let ri = standard().closed_days("RI", year);
            for date in [thanksgiving, memorial, victory, labor] {
                assert!(ri.iter().any(|(x, _)| *x == d(date)), "RI {date}");
            }
            let al = standard().closed_days("AL", year);
            for date in [thanksgiving, memorial, labor] {
                assert!(al.iter().any(|(x, _)| *x == d(date)), "AL {date}");
            }
            assert!(
                !al.iter().any(|(x, _)| *x == d(victory)),
                "AL has no Victory Day"
            );
        }
    }

    #[test]
    fn observed_days_follow_each_states_rule() {
        // 2026-07-04 is a Saturday: Alabama also closes Friday 07-03; Rhode Island
        // and Louisiana keep only the Saturday.
        assert!(standard().holiday_on("AL", d("2026-07-03")).is_some());
        assert!(standard().holiday_on("RI", d("2026-07-03")).is_none());
        assert!(standard().holiday_on("LA", d("2026-07-03")).is_none());
        // 2027-07-04 is a Sunday: all three also close Monday 07-05.
        for region in ["AL", "LA", "RI"] {
            assert_eq!(
                standard()
                    .holiday_on(region, d("2027-07-05"))
                    .map(|h| h.name.as_str()),
                Some("Independence Day"),
                "{region}"
            );
        }
        // 2028-01-01 is a Saturday: Alabama also closes Friday 2027-12-31 (a year back).
        assert!(standard()
            .closed_days("AL", 2027)
            .contains(&(d("2027-12-31"), "New Year's Day")));
        // 2029-11-11 is a Sunday: Veterans Day is kept Monday 11-12.
        for region in ["AL", "LA", "RI"] {
            assert!(
                standard().holiday_on(region, d("2029-11-12")).is_some(),
                "{region}"
            );
        }
        // An ordinary Tuesday is no holiday anywhere.
        for region in ["AL", "LA", "RI"] {
            assert!(standard().holiday_on(region, d("2026-06-16")).is_none());
        }
    }

    #[test]
    fn every_year_2026_to_2030_has_each_states_full_calendar() {
        for (region, count) in [("AL", 14), ("LA", 17), ("RI", 11)] {
            let rows: Vec<_> = standard()
                .rows()
                .iter()
                .filter(|h| h.region == region)
                .collect();
            assert_eq!(rows.len(), count, "{region}");
            for year in 2026..=2030 {
                let days = standard().closed_days(region, year);
                for h in &rows {
                    let date = h.date_in(year).unwrap();
                    assert!(
                        days.iter().any(|(x, _)| *x == date),
                        "{region} {year} {}",
                        h.name
                    );
                }
                assert!(days.iter().all(|(x, _)| x.year() == year));
            }
        }
    }

    #[test]
    fn bad_rows_are_refused_with_their_line() {
        for bad in [
            "AL\tX\t13-01\tnone\tsrc\n",
            "AL\tX\t5th-mon-jan\tnone\tsrc\n",
            "AL\tX\t1st-mon-foo\tnone\tsrc\n",
            "AL\tX\teaster-400\tnone\tsrc\n",
            "AL\tX\t01-01\tsat>mon\tsrc\n",
            "Al\tX\t01-01\tnone\tsrc\n",
            "AL\tX\t01-01\tnone\t\n",
            "AL\tX\t01-01\tnone\n",
        ] {
            let e = Holidays::from_tsv(bad).unwrap_err();
            assert_eq!(e.line, 1, "{bad:?}");
        }
        let leap = Holidays::from_tsv("AL\tLeap\t02-29\tnone\tsrc\n").unwrap();
        assert_eq!(leap.closed_days("AL", 2027), vec![]);
        assert_eq!(
            leap.closed_days("AL", 2028),
            vec![(d("2028-02-29"), "Leap")]
        );
    }
}
