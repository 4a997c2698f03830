//! The carrier's day for a dealer's brand: T-Mobile counts a 10DLC brand's messages from
//! midnight to midnight Pacific, whatever the dealer's or the person's time zone.

use std::sync::LazyLock;

use chrono::{DateTime, TimeZone, Utc};

use crate::ids::DealerId;
use crate::zone::Zone;

/// The length of the carrier's day, for the limiter's epoch-aligned window.
pub const CARRIER_DAY: std::time::Duration = std::time::Duration::from_secs(86_400);

static PACIFIC: LazyLock<Zone> = LazyLock::new(|| {
    Zone::named("America/Los_Angeles")
        .unwrap_or_else(|e| panic!("{e} in the bundled time zones (a build bug)"))
});

/// The counter of a dealer's brand segments.
pub fn brand_key(dealer: &DealerId) -> String {
    format!("BRAND#{dealer}")
}

/// The carrier's day containing `now`. Returns the clock the day's counter is kept on
/// (Pacific wall time read as UTC, so the limiter's epoch-aligned day is the Pacific
/// date) and when the next day starts.
pub fn carrier_day(now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let pacific = &*PACIFIC;
    let local = now.with_timezone(pacific);
    let next = local
        .date_naive()
        .succ_opt()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .and_then(|midnight| pacific.from_local_datetime(&midnight).earliest())
        .map_or(now + chrono::Duration::days(1), |m| m.with_timezone(&Utc));
    (local.naive_local().and_utc(), next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_carrier_day_is_pacific_across_daylight_saving() {
        let at = |m, d, h| Utc.with_ymd_and_hms(2026, m, d, h, 0, 0).unwrap();
        // 16:00 UTC on 10 June is 09:00 PDT: the day ends at 07:00 UTC on the 11th.
        let (clock, next) = carrier_day(at(6, 10, 16));
        assert_eq!(clock, at(6, 10, 9));
        assert_eq!(next, at(6, 11, 7));
        // 03:00 UTC on 1 November is still 31 October, 20:00 PDT; that night clocks fall
        // back, so the next Pacific midnight (1 November 00:00 PDT) is 07:00 UTC, and the
        // one after (2 November, PST) is 08:00 UTC.
        assert_eq!(carrier_day(at(11, 1, 3)).1, at(11, 1, 7));
        assert_eq!(carrier_day(at(11, 1, 12)).1, at(11, 2, 8));
    }
}
