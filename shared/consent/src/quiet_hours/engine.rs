//! The engine: whether a text to a number may go at a time, and the next time it may,
//! across every zone the number may be in and the rule of its state.

use std::sync::LazyLock;

use chrono::{
    DateTime, Datelike, Days, NaiveDate, NaiveDateTime, TimeDelta, TimeZone, Timelike, Utc,
};

use super::numbering::{area_info, AreaInfo};
use super::rules::STATE_RULES_TSV;
use super::rules::{DayWindow, RulesTable, StateRule, StateWindowScope, Window};
use crate::data::DataError;
use crate::holidays::Holidays;
use crate::zone::Zone;
use crate::{Category, PhoneNumber};

pub(super) static STATE_HOLIDAYS_TSV: &str = include_str!("../../data/state-holidays.tsv");

static STANDARD: LazyLock<QuietHours> = LazyLock::new(|| {
    let holidays = Holidays::from_tsv(STATE_HOLIDAYS_TSV)
        .unwrap_or_else(|e| panic!("embedded state-holidays.tsv is invalid (a build bug): {e}"));
    QuietHours::from_tsv(STATE_RULES_TSV)
        .and_then(|q| q.with_holidays(holidays))
        .unwrap_or_else(|e| {
            panic!("embedded state-texting-rules.tsv is invalid (a build bug): {e}")
        })
});

/// How far ahead [`QuietHours::next_allowed`] searches.
const MAX_DEFERRAL: TimeDelta = TimeDelta::days(14);

/// Zones that must all be inside the window when the area code is unknown.
static FALLBACK_ZONES: LazyLock<[Zone; 3]> = LazyLock::new(|| {
    [
        "America/Puerto_Rico",
        "America/New_York",
        "America/Los_Angeles",
    ]
    .map(|name| {
        Zone::named(name).unwrap_or_else(|e| panic!("{e} in the bundled time zones (a build bug)"))
    })
});

/// The quiet-hours policy: the federal window plus state rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuietHours {
    pub(super) federal: StateRule,
    pub(super) states: Vec<StateRule>,
    pub(super) scope: StateWindowScope,
    pub(super) holidays: Holidays,
    pub(super) last_reviewed: NaiveDate,
}

impl QuietHours {
    /// Parses a rules table in the format of `state-texting-rules.tsv`. It must have
    /// exactly one federal (`*`) row, open every day, and a `# last-reviewed:` date.
    /// Holidays are added with [`QuietHours::with_holidays`].
    pub fn from_tsv(text: &str) -> Result<QuietHours, DataError> {
        let table = RulesTable::parse(text)?;
        Ok(QuietHours {
            federal: table.federal,
            states: table.states,
            scope: StateWindowScope::default(),
            holidays: Holidays::default(),
            last_reviewed: table.last_reviewed,
        })
    }

    /// The policy from the embedded `state-texting-rules.tsv`.
    pub fn standard() -> &'static QuietHours {
        &STANDARD
    }

    /// The same policy with these holiday calendars. Every row closed on holidays
    /// needs a calendar for its state.
    pub fn with_holidays(mut self, holidays: Holidays) -> Result<QuietHours, DataError> {
        if let Some(r) = self
            .states
            .iter()
            .find(|r| r.closed_on_holidays && !holidays.has_region(&r.region))
        {
            return Err(DataError::new(
                0,
                format!(
                    "{} is closed on holidays but has no holiday calendar",
                    r.region
                ),
            ));
        }
        self.holidays = holidays;
        Ok(self)
    }

    /// The state holiday calendars.
    pub fn holidays(&self) -> &Holidays {
        &self.holidays
    }

    /// When the table was last reviewed against the law.
    pub fn last_reviewed(&self) -> NaiveDate {
        self.last_reviewed
    }

    /// The same policy with state windows restricting the given categories.
    pub fn with_state_window_scope(mut self, scope: StateWindowScope) -> QuietHours {
        self.scope = scope;
        self
    }

    pub fn state_window_scope(&self) -> StateWindowScope {
        self.scope
    }

    /// The federal (`*`) row.
    pub fn federal(&self) -> &StateRule {
        &self.federal
    }

    /// The state row for a region, if it has one.
    pub fn state_rule(&self, region: &str) -> Option<&StateRule> {
        self.states.iter().find(|r| r.region == region)
    }

    /// Every state row, in table order.
    pub fn state_rules(&self) -> &[StateRule] {
        &self.states
    }

    /// true if a text of `category` may be sent to `phone` at `at`.
    pub fn is_allowed(
        &self,
        phone: &PhoneNumber,
        contact_tz: Option<&Zone>,
        category: Category,
        at: DateTime<Utc>,
    ) -> bool {
        let area = area_info(phone.area_code());
        let rule = self.rule_for(area);
        let zones = zones_for(contact_tz, area);
        self.allowed_in_all(zones, rule, category, at)
    }

    /// `at` itself if allowed, else the first allowed whole minute after it. Always
    /// returns a time for which [`QuietHours::is_allowed`] is true (the embedded
    /// policy opens every day for every category and zone set, which a test checks);
    /// searches at most 14 days ahead, and returns `at + 14 days` if a policy ever
    /// allowed nothing in that span.
    pub fn next_allowed(
        &self,
        phone: &PhoneNumber,
        contact_tz: Option<&Zone>,
        category: Category,
        at: DateTime<Utc>,
    ) -> DateTime<Utc> {
        let area = area_info(phone.area_code());
        let rule = self.rule_for(area);
        let zones = zones_for(contact_tz, area);
        if self.allowed_in_all(zones, rule, category, at) {
            return at;
        }
        let Some(limit) = at.checked_add_signed(MAX_DEFERRAL) else {
            return at;
        };

        // The allowed set is an intersection (over zones) of unions of windows, so
        // the first allowed instant after a disallowed `at` is the start of some
        // zone's window: try those in time order.
        const DAYS_BEFORE: u64 = 1;
        const DAYS_AFTER: u64 = 16;
        let mut candidates =
            [DateTime::<Utc>::MIN_UTC; 4 * (DAYS_BEFORE + DAYS_AFTER + 1) as usize];
        let mut n = 0;
        for tz in zones.iter().take(4) {
            let Some(first) = local_date(&at.with_timezone(tz))
                .and_then(|today| today.checked_sub_days(Days::new(DAYS_BEFORE)))
            else {
                continue;
            };
            for offset in 0..=DAYS_BEFORE + DAYS_AFTER {
                let Some(day) = first.checked_add_days(Days::new(offset)) else {
                    break;
                };
                let Some(window) = self.window_for(rule, category, day) else {
                    continue;
                };
                let Some(start) = day.and_hms_opt(
                    u32::from(window.start / 60),
                    u32::from(window.start % 60),
                    0,
                ) else {
                    continue;
                };
                if let Some(t) = resolve_local(tz, start) {
                    if t > at && t <= limit {
                        candidates[n] = t;
                        n += 1;
                    }
                }
            }
        }
        let candidates = &mut candidates[..n];
        candidates.sort_unstable();
        if let Some(t) = candidates
            .iter()
            .find(|t| self.allowed_in_all(zones, rule, category, **t))
        {
            return *t;
        }

        // Not reachable with the embedded data; kept so a policy change can never
        // turn this into a wrong answer or an endless loop.
        let mut t = ceil_minute(at);
        while t <= limit {
            if self.allowed_in_all(zones, rule, category, t) {
                return t;
            }
            t += TimeDelta::minutes(1);
        }
        limit
    }

    /// The per-24h cap on texts of this category to this number (Some(3) for FL,
    /// OK and MD marketing), else None.
    pub fn cap_per_24h(&self, phone: &PhoneNumber, category: Category) -> Option<u32> {
        self.rule_for(area_info(phone.area_code()))
            .filter(|r| r.applies_to == category)
            .and_then(|r| r.max_per_24h)
    }

    fn rule_for(&self, area: Option<&AreaInfo>) -> Option<&StateRule> {
        area.and_then(|a| self.state_rule(&a.region))
    }

    /// The window a category has on a local date, or `None` when closed.
    fn window_for(
        &self,
        rule: Option<&StateRule>,
        category: Category,
        date: NaiveDate,
    ) -> Option<Window> {
        let weekday = date.weekday();
        let DayWindow::Open(federal) = self.federal.day(weekday) else {
            return None; // from_tsv refuses such a federal row
        };
        let day = |r: &StateRule| {
            let holiday =
                r.closed_on_holidays && self.holidays.holiday_on(&r.region, date).is_some();
            if holiday {
                DayWindow::Closed
            } else {
                r.day(weekday)
            }
        };
        match rule.map(|r| (r, day(r))) {
            None => Some(federal),
            Some((r, DayWindow::Closed)) if r.applies_to == category => None,
            Some((_, DayWindow::Closed)) => Some(federal),
            Some((r, DayWindow::Open(state)))
                if self.scope == StateWindowScope::EveryCategory || r.applies_to == category =>
            {
                federal.intersect(state)
            }
            Some((_, DayWindow::Open(_))) => Some(federal),
        }
    }

    fn allowed_in_all(
        &self,
        zones: &[Zone],
        rule: Option<&StateRule>,
        category: Category,
        at: DateTime<Utc>,
    ) -> bool {
        zones.iter().all(|tz| {
            let local = at.with_timezone(tz);
            let minute = (local.hour() * 60 + local.minute()) as u16;
            local_date(&local)
                .and_then(|date| self.window_for(rule, category, date))
                .is_some_and(|w| w.contains(minute))
        })
    }
}

/// The local date, from the Datelike fields (`date_naive` panics at the edges of time).
fn local_date(local: &DateTime<Zone>) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(local.year(), local.month(), local.day())
}

/// The zones whose local time must be inside the window.
fn zones_for<'a>(contact_tz: Option<&'a Zone>, area: Option<&'static AreaInfo>) -> &'a [Zone] {
    match (contact_tz, area) {
        (Some(tz), _) => std::slice::from_ref(tz),
        (None, Some(a)) if !a.time_zones.is_empty() => &a.time_zones,
        _ => &FALLBACK_ZONES[..],
    }
}

/// The instant a local wall-clock time happens: the earlier one when it happens
/// twice (fall-back), the end of the gap when it does not happen (spring-forward).
pub(super) fn resolve_local(tz: &Zone, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    if let Some(t) = tz.from_local_datetime(&local).earliest() {
        return Some(t.with_timezone(&Utc));
    }
    // In a gap: the first local minute that exists is the transition instant.
    (1..=24 * 60).find_map(|m| {
        let later = local.checked_add_signed(TimeDelta::minutes(m))?;
        tz.from_local_datetime(&later)
            .earliest()
            .map(|t| t.with_timezone(&Utc))
    })
}

/// `at` rounded up to a whole minute.
pub(super) fn ceil_minute(at: DateTime<Utc>) -> DateTime<Utc> {
    let floor = at.timestamp().div_euclid(60) * 60;
    let exact = at.timestamp() == floor && at.timestamp_subsec_nanos() == 0;
    let secs = if exact { floor } else { floor + 60 };
    DateTime::from_timestamp(secs, 0).unwrap_or(at)
}
