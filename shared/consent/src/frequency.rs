//! Frequency caps: Florida, Oklahoma, Maryland and Oregon allow at most 3 marketing
//! texts to one person from one sender in any 24 hours ([`crate::quiet_hours`] reads
//! the cap from the state table).
//!
//! "Any 24 hours" is a sliding window: a text at `t` fits when no 24-hour period
//! holding `t` would hold more than `cap` texts, counting texts already sent and texts
//! already scheduled (a text scheduled for tomorrow morning can make tonight's the
//! fourth). Two texts exactly 24 hours apart are in different periods.
//!
//! A text that does not fit is deferred, never dropped: [`next_fitting`] finds the
//! first instant that both the cap and quiet hours allow. The earliest instant the cap
//! allows is either the wanted time or 24 hours after one of the other texts, so the
//! search only tries those, each moved to quiet hours' next allowed minute.

use chrono::{DateTime, TimeDelta, Utc};

use crate::message::{Message, MessageStatus};
use crate::Category;

/// The period a cap counts over.
pub const CAP_PERIOD: TimeDelta = TimeDelta::hours(24);

/// true if a text at `at` keeps every 24-hour period at or under `cap` texts, given
/// the other texts' times (in any order).
pub fn fits(cap: u32, others: &[DateTime<Utc>], at: DateTime<Utc>) -> bool {
    let cap = cap as usize;
    if others.len() < cap {
        return true;
    }
    let mut sorted = others.to_vec();
    sorted.sort_unstable();
    // The tightest `cap` others around `at` are consecutive in time: if any `cap`
    // consecutive others together with `at` span less than 24 hours, some 24-hour
    // period would hold `cap + 1` texts.
    sorted.windows(cap).all(|group| {
        let first = group[0].min(at);
        let last = group[cap - 1].max(at);
        last - first >= CAP_PERIOD
    })
}

/// The first instant at or after `wanted` when a text fits under `cap` and
/// `allowed` (quiet hours' next allowed instant, which must return a time at or after
/// its argument) lets it go.
pub fn next_fitting(
    cap: u32,
    others: &[DateTime<Utc>],
    wanted: DateTime<Utc>,
    allowed: impl Fn(DateTime<Utc>) -> DateTime<Utc>,
) -> DateTime<Utc> {
    let mut candidates: Vec<DateTime<Utc>> = std::iter::once(wanted)
        .chain(
            others
                .iter()
                .map(|t| *t + CAP_PERIOD)
                .filter(|t| *t > wanted),
        )
        .map(&allowed)
        .collect();
    candidates.sort_unstable();
    candidates
        .into_iter()
        .find(|t| fits(cap, others, *t))
        // 24 hours after the latest other text always fits; kept for a broken `allowed`.
        .unwrap_or_else(|| {
            let latest = others.iter().max().copied().unwrap_or(wanted);
            allowed((latest + CAP_PERIOD).max(wanted))
        })
}

/// When a stored message counts against a cap of its category, or `None` when it
/// does not count: another category, not a template text (an approval code text or a
/// required answer to the person's own message is no solicitation), canceled,
/// suppressed, or failed before the carrier took it. A text
/// that went out counts at the moment it went to the carrier; one still waiting, at
/// its send time.
pub fn counted_at(message: &Message, category: Category) -> Option<DateTime<Utc>> {
    if message.category != category || !message.kind.is_under_consent() {
        return None;
    }
    let went_at = || {
        message
            .history
            .iter()
            .rev()
            .find(|c| c.status == MessageStatus::Sending)
            .map(|c| c.at)
    };
    match message.status {
        MessageStatus::Scheduled | MessageStatus::Deferred | MessageStatus::Queued => {
            Some(message.send_at)
        }
        MessageStatus::Sending | MessageStatus::Sent | MessageStatus::Delivered => {
            Some(went_at().unwrap_or(message.send_at))
        }
        MessageStatus::Failed if message.carrier_message_id.is_some() => {
            Some(went_at().unwrap_or(message.send_at))
        }
        MessageStatus::Failed | MessageStatus::Suppressed | MessageStatus::Canceled => None,
    }
}

/// The statuses [`counted_at`] may count (what a store is asked for).
pub const COUNTED_STATUSES: [MessageStatus; 7] = [
    MessageStatus::Scheduled,
    MessageStatus::Deferred,
    MessageStatus::Queued,
    MessageStatus::Sending,
    MessageStatus::Sent,
    MessageStatus::Delivered,
    MessageStatus::Failed,
];

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t(h: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_790_000_000, 0).unwrap() + TimeDelta::hours(h)
    }

    fn always(at: DateTime<Utc>) -> DateTime<Utc> {
        at
    }

    #[test]
    fn a_fourth_text_in_24_hours_waits_for_the_first_to_age_out() {
        // GIVEN three texts at 0h, 2h, 4h
        let others = [t(0), t(2), t(4)];
        // THEN a fourth at 5h does not fit, and fits 24 hours after the first
        assert!(!fits(3, &others, t(5)));
        assert_eq!(next_fitting(3, &others, t(5), always), t(24));
        // AND exactly 24 hours apart counts as a different period
        assert!(fits(3, &others, t(24)));
        assert!(!fits(3, &others, t(24) - TimeDelta::seconds(1)));
    }

    #[test]
    fn texts_scheduled_later_count_too() {
        // GIVEN texts scheduled at 10h, 12h and 20h THEN one at 8h would be the fourth
        // in the period 8h-32h
        let others = [t(10), t(12), t(20)];
        assert!(!fits(3, &others, t(8)));
        // AND one 24 hours before the first of them fits
        assert!(fits(3, &others, t(-14)));
        // AND the first fitting time after 8h is 24 hours after 10h
        assert_eq!(next_fitting(3, &others, t(8), always), t(34));
    }

    #[test]
    fn under_the_cap_nothing_moves() {
        assert!(fits(3, &[t(0), t(1)], t(2)));
        assert_eq!(next_fitting(3, &[t(0), t(1)], t(2), always), t(2));
        assert_eq!(next_fitting(3, &[], t(2), always), t(2));
    }

    #[test]
    fn quiet_hours_and_the_cap_both_hold() {
        // GIVEN the cap frees up at 24h, but quiet hours only open at each multiple of 10h
        let others = [t(0), t(1), t(2)];
        let tens = |at: DateTime<Utc>| {
            let h = (at - t(0)).num_hours();
            let exact = at == t(h);
            t(if exact && h % 10 == 0 {
                h
            } else {
                (h / 10 + 1) * 10
            })
        };
        assert_eq!(next_fitting(3, &others, t(3), tens), t(30));
    }

    fn count_in_any_period(times: &[DateTime<Utc>]) -> usize {
        times
            .iter()
            .map(|start| {
                times
                    .iter()
                    .filter(|x| **x >= *start && **x - *start < CAP_PERIOD)
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    proptest! {
        #[test]
        fn next_fitting_is_the_first_minute_that_fits(
            others in proptest::collection::vec(0i64..(72 * 60), 0..7),
            wanted in 0i64..(72 * 60),
        ) {
            let at = |m: i64| t(0) + TimeDelta::minutes(m);
            let others: Vec<_> = others.into_iter().map(at).collect();
            let wanted = at(wanted);
            let found = next_fitting(3, &others, wanted, always);
            prop_assert!(found >= wanted);
            prop_assert!(fits(3, &others, found));
            // No earlier whole minute fits (the scan is the definition).
            let mut m = wanted;
            while m < found {
                prop_assert!(!fits(3, &others, m), "{m} fits before {found}");
                m += TimeDelta::minutes(1);
            }
            // And `fits` agrees with counting every period directly, whenever the
            // others were themselves within the cap.
            if count_in_any_period(&others) <= 3 {
                let mut all = others.clone();
                all.push(found);
                prop_assert!(count_in_any_period(&all) <= 3);
            }
        }
    }
}
