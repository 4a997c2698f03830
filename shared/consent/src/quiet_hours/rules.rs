//! The state rules: the federal and state texting windows per day of the week, closed
//! days and caps, each row with its legal source (`data/state-texting-rules.tsv`).

use chrono::{NaiveDate, Weekday};

use crate::data::{rows, DataError};
use crate::Category;

pub(super) static STATE_RULES_TSV: &str = include_str!("../../data/state-texting-rules.tsv");

/// A local time-of-day window, `[start, end)`, in minutes after midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub(super) start: u16,
    pub(super) end: u16,
}

impl Window {
    /// Minutes after local midnight when the window opens.
    pub fn start_minute(self) -> u16 {
        self.start
    }

    /// Minutes after local midnight when the window closes (exclusive).
    pub fn end_minute(self) -> u16 {
        self.end
    }

    pub(super) fn contains(self, minute: u16) -> bool {
        self.start <= minute && minute < self.end
    }

    pub(super) fn intersect(self, other: Window) -> Option<Window> {
        let w = Window {
            start: self.start.max(other.start),
            end: self.end.min(other.end),
        };
        (w.start < w.end).then_some(w)
    }

    pub(super) fn parse(s: &str) -> Option<Window> {
        let (a, b) = s.split_once('-')?;
        let w = Window {
            start: parse_hhmm(a)?,
            end: parse_hhmm(b)?,
        };
        (w.start < w.end).then_some(w)
    }
}

fn parse_hhmm(s: &str) -> Option<u16> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    (m < 60 && (h < 24 || (h == 24 && m == 0))).then_some(h * 60 + m)
}

/// A day's rule: a window, or no texts of the row's category at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayWindow {
    Open(Window),
    Closed,
}

impl DayWindow {
    fn parse(s: &str) -> Option<DayWindow> {
        if s == "closed" {
            Some(DayWindow::Closed)
        } else {
            Window::parse(s).map(DayWindow::Open)
        }
    }
}

/// One row of the state rules table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateRule {
    /// Two-letter state code, or `*` for the federal row.
    pub region: String,
    pub weekdays: DayWindow,
    pub saturday: DayWindow,
    pub sunday: DayWindow,
    /// No `applies_to` text on the state's holidays either.
    pub closed_on_holidays: bool,
    /// At most this many texts of `applies_to` per 24 hours on the same subject.
    pub max_per_24h: Option<u32>,
    /// The category that closed days and the cap restrict.
    pub applies_to: Category,
    /// When the row's rule took effect.
    pub effective: Effective,
    /// Where the row comes from (statute or vendor table).
    pub source: String,
}

/// When a rule took effect: a known date, or only a date by which it was in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effective {
    On(NaiveDate),
    InForceBy(NaiveDate),
}

impl Effective {
    fn parse(s: &str) -> Option<Effective> {
        match s.strip_prefix("<=") {
            Some(d) => d.parse().ok().map(Effective::InForceBy),
            None => s.parse().ok().map(Effective::On),
        }
    }
}

impl std::fmt::Display for Effective {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Effective::On(d) => write!(f, "{d}"),
            Effective::InForceBy(d) => write!(f, "in force by {d}"),
        }
    }
}

impl StateRule {
    /// The rule for a day of the week.
    pub fn day(&self, weekday: Weekday) -> DayWindow {
        match weekday {
            Weekday::Sat => self.saturday,
            Weekday::Sun => self.sunday,
            _ => self.weekdays,
        }
    }
}

/// Which categories a state row's time windows restrict. Closed days and caps
/// always restrict only the row's `applies_to` category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StateWindowScope {
    /// Every category (the conservative product default).
    #[default]
    EveryCategory,
    /// Only the row's `applies_to` category; the others get the federal window.
    RuleCategoryOnly,
}

/// The rules table as read: the federal row, the states' rows, and when it was last
/// reviewed. The engine (`engine.rs`) answers from it.
pub(super) struct RulesTable {
    pub(super) federal: StateRule,
    pub(super) states: Vec<StateRule>,
    pub(super) last_reviewed: NaiveDate,
}

impl RulesTable {
    /// Reads a rules table in the format of `state-texting-rules.tsv`. It must have
    /// exactly one federal (`*`) row, open every day, and a `# last-reviewed:` date.
    pub(super) fn parse(text: &str) -> Result<RulesTable, DataError> {
        let mut federal = None;
        let mut states: Vec<StateRule> = Vec::new();
        let last_reviewed = text
            .lines()
            .find_map(|l| l.strip_prefix("# last-reviewed:"))
            .and_then(|d| d.trim().parse::<NaiveDate>().ok())
            .ok_or_else(|| DataError::new(0, "no `# last-reviewed: YYYY-MM-DD` line"))?;
        for (line, cols) in rows(text) {
            let [region, weekdays, saturday, sunday, holidays, max, applies_to, effective, source] =
                cols[..]
            else {
                return Err(DataError::new(
                    line,
                    format!("expected 9 columns, found {}", cols.len()),
                ));
            };
            let day = |s: &str| {
                DayWindow::parse(s).ok_or_else(|| {
                    DataError::new(
                        line,
                        format!("bad window {s:?}: expected HH:MM-HH:MM or closed"),
                    )
                })
            };
            let max_per_24h = match max {
                "" => None,
                n => Some(
                    n.parse::<u32>()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| DataError::new(line, format!("bad cap {n:?}")))?,
                ),
            };
            let closed_on_holidays = match holidays {
                "" => false,
                "closed" => true,
                other => {
                    return Err(DataError::new(
                        line,
                        format!("bad holidays {other:?}: expected closed or nothing"),
                    ))
                }
            };
            let rule = StateRule {
                region: region.to_owned(),
                weekdays: day(weekdays)?,
                saturday: day(saturday)?,
                sunday: day(sunday)?,
                closed_on_holidays,
                max_per_24h,
                applies_to: applies_to
                    .parse()
                    .map_err(|e| DataError::new(line, format!("{e}")))?,
                effective: Effective::parse(effective).ok_or_else(|| {
                    DataError::new(
                        line,
                        format!(
                            "bad effective date {effective:?}: expected YYYY-MM-DD or <=YYYY-MM-DD"
                        ),
                    )
                })?,
                source: source.to_owned(),
            };
            if rule.source.is_empty() {
                return Err(DataError::new(line, "a rule needs its source"));
            }
            if region == "*" {
                let all_open = [Weekday::Mon, Weekday::Sat, Weekday::Sun]
                    .into_iter()
                    .all(|d| matches!(rule.day(d), DayWindow::Open(_)));
                if !all_open || closed_on_holidays || federal.is_some() {
                    return Err(DataError::new(
                        line,
                        "exactly one federal row, open every day",
                    ));
                }
                federal = Some(rule);
            } else if region.len() != 2 || !region.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(DataError::new(line, format!("bad region {region:?}")));
            } else if states.iter().any(|r| r.region == region) {
                return Err(DataError::new(line, format!("duplicate region {region}")));
            } else {
                states.push(rule);
            }
        }
        let federal = federal.ok_or_else(|| DataError::new(0, "no federal (*) row"))?;
        Ok(RulesTable {
            federal,
            states,
            last_reviewed,
        })
    }
}
