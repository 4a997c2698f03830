//! Tests of the numbering plan, the state rules and the engine.

use chrono::{DateTime, NaiveDate, TimeDelta, TimeZone, Timelike, Utc};
use proptest::prelude::*;

use super::engine::*;
use super::numbering::*;
use super::rules::*;
use crate::zone::Zone;
use crate::{Category, PhoneNumber};

fn zone(name: &str) -> Zone {
    Zone::named(name).unwrap()
}

fn phone(area_code: u16) -> PhoneNumber {
    PhoneNumber::from_e164(&format!("+1{area_code}5550123")).unwrap()
}

fn local(tz: Zone, y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    tz.with_ymd_and_hms(y, mo, d, h, mi, 0)
        .earliest()
        .unwrap()
        .with_timezone(&Utc)
}

fn qh() -> &'static QuietHours {
    QuietHours::standard()
}

// ---- data ----------------------------------------------------------------

#[test]
fn every_row_of_both_tables_parses() {
    // GIVEN the embedded tables WHEN parsed THEN no error and every row is kept
    let areas = parse_area_codes(AREA_CODES_TSV).unwrap();
    let area_rows = AREA_CODES_TSV
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .count();
    assert_eq!(areas.iter().flatten().count(), area_rows);
    assert!(area_rows > 400);

    let rules = QuietHours::from_tsv(STATE_RULES_TSV).unwrap();
    let rule_rows = STATE_RULES_TSV
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .count();
    assert_eq!(rules.state_rules().len() + 1, rule_rows);
    for r in rules.state_rules() {
        assert!(!r.source.is_empty(), "{} keeps its source", r.region);
    }
    assert!(rules.federal().source.contains("64.1200"));
}

#[test]
fn every_state_dc_and_province_has_an_area_code() {
    let regions: std::collections::BTreeSet<(&str, &str)> = area_codes()
        .map(|a| (a.country, a.region.as_str()))
        .collect();
    let states = [
        "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "DC", "FL", "GA", "HI", "ID", "IL", "IN",
        "IA", "KS", "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH",
        "NJ", "NM", "NY", "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT",
        "VT", "VA", "WA", "WV", "WI", "WY",
    ];
    for s in states {
        assert!(regions.contains(&("US", s)), "no area code for {s}");
    }
    // PE shares 902/782 with NS; YT and NU share 867 with NT.
    for p in ["AB", "BC", "MB", "NB", "NL", "NS", "ON", "QC", "SK", "NT"] {
        assert!(regions.contains(&("CA", p)), "no area code for {p}");
    }
    // Every state with a rule row is reachable from some area code.
    for r in qh().state_rules() {
        assert!(regions.contains(&("US", r.region.as_str())), "{}", r.region);
    }
}

#[test]
fn lookups_match_the_table() {
    let a = area_info(208).unwrap();
    assert_eq!((a.country, a.region.as_str()), ("US", "ID"));
    assert_eq!(
        a.time_zones,
        vec![zone("America/Boise"), zone("America/Los_Angeles")]
    );
    assert_eq!(area_info(416).unwrap().region, "ON");
    assert_eq!(area_info(800), None);
    assert_eq!(area_info(0), None);
    assert_eq!(area_info(u16::MAX), None);
}

#[test]
fn bad_rows_are_refused_with_their_line() {
    let err = parse_area_codes("# header\n201\tUS\tNJ\tNew Jersey\tMars/Olympus\n").unwrap_err();
    assert_eq!(err.line, 2);
    assert!(err.reason.contains("Mars/Olympus"));
    assert!(parse_area_codes("201\tUS\tNJ\n").is_err());
    assert!(parse_area_codes("101\tUS\tNJ\tx\tAmerica/New_York\n").is_err());
    assert!(parse_area_codes("201\tMX\tNJ\tx\tAmerica/New_York\n").is_err());
    let dup = "201\tUS\tNJ\tx\tAmerica/New_York\n201\tUS\tNJ\tx\tAmerica/New_York\n";
    assert!(parse_area_codes(dup).is_err());

    let fed = "# last-reviewed: 2026-12-01\n*\t08:00-21:00\t08:00-21:00\t08:00-21:00\t\t\tmarketing\t1992-12-20\tTCPA\n";
    assert!(QuietHours::from_tsv(fed).is_ok());
    assert!(QuietHours::from_tsv("").is_err(), "federal row required");
    for bad in [
        "FL\t08:00-25:00\t08:00-20:00\t08:00-20:00\t\t3\tmarketing\t2021-07-01\tx\n",
        "FL\t20:00-08:00\t08:00-20:00\t08:00-20:00\t\t3\tmarketing\t2021-07-01\tx\n",
        "FL\t08:00-20:00\t08:00-20:00\tshut\t\t3\tmarketing\t2021-07-01\tx\n",
        "FL\t08:00-20:00\t08:00-20:00\t08:00-20:00\t\tthree\tmarketing\t2021-07-01\tx\n",
        "FL\t08:00-20:00\t08:00-20:00\t08:00-20:00\t\t3\tbilling\t2021-07-01\tx\n",
        "FL\t08:00-20:00\t08:00-20:00\t08:00-20:00\t\t3\tmarketing\t2021-07-01\t\n",
        "FL\t08:00-20:00\t08:00-20:00\t08:00-20:00\tshut\t3\tmarketing\t2021-07-01\tx\n",
        "FL\t08:00-20:00\t08:00-20:00\t08:00-20:00\t\t3\tmarketing\tsoon\tx\n",
        "FL\t08:00-20:00\t08:00-20:00\t08:00-20:00\t\t3\tmarketing\t<=2021\tx\n",
        "FL\t08:00-20:00\t08:00-20:00\t08:00-20:00\t3\tmarketing\tx\n",
        "FL\t08:00-20:00\t08:00-20:00\n",
    ] {
        assert!(
            QuietHours::from_tsv(&format!("{fed}{bad}")).is_err(),
            "{bad}"
        );
    }
    let no_review = fed.lines().nth(1).unwrap();
    assert!(
        QuietHours::from_tsv(no_review).is_err(),
        "last-reviewed required"
    );
    // A state closed on holidays needs its calendar.
    let al = "AL\t08:00-20:00\t08:00-20:00\tclosed\tclosed\t\tmarketing\t<=2026-12-01\tx\n";
    let rules = QuietHours::from_tsv(&format!("{fed}{al}")).unwrap();
    assert!(rules.with_holidays(Default::default()).is_err());
    let closed_federal = "# last-reviewed: 2026-12-01\n*\t08:00-21:00\t08:00-21:00\tclosed\t\t\tmarketing\t1992-12-20\tTCPA\n";
    assert!(QuietHours::from_tsv(closed_federal).is_err());
}

// ---- windows ---------------------------------------------------------------

#[test]
fn federal_window_is_half_open() {
    // GIVEN a New York number (no state row) on a Wednesday
    let ny = phone(212);
    let at = |h, m, s| {
        zone("America/New_York")
            .with_ymd_and_hms(2026, 6, 10, h, m, s)
            .unwrap()
            .with_timezone(&Utc)
    };
    for c in Category::ALL {
        assert!(!qh().is_allowed(&ny, None, c, at(7, 59, 59)));
        assert!(qh().is_allowed(&ny, None, c, at(8, 0, 0)));
        assert!(qh().is_allowed(&ny, None, c, at(20, 59, 59)));
        assert!(!qh().is_allowed(&ny, None, c, at(21, 0, 0)));
    }
}

#[test]
fn across_midnight_defers_to_eight_next_morning() {
    // GIVEN 23:00 in New York WHEN a service text is due
    let at = local(zone("America/New_York"), 2026, 6, 10, 23, 0);
    // THEN it waits until 08:00 the next day
    let next = qh().next_allowed(&phone(212), None, Category::Service, at);
    assert_eq!(next, local(zone("America/New_York"), 2026, 6, 11, 8, 0));
    // AND from 00:30 it waits until 08:00 the same day
    let at = local(zone("America/New_York"), 2026, 6, 11, 0, 30);
    assert_eq!(
        qh().next_allowed(&phone(212), None, Category::Service, at),
        local(zone("America/New_York"), 2026, 6, 11, 8, 0)
    );
}

#[test]
fn allowed_instant_is_returned_unchanged_even_mid_minute() {
    let at = local(zone("America/New_York"), 2026, 6, 10, 12, 0) + TimeDelta::seconds(17);
    assert_eq!(
        qh().next_allowed(&phone(212), None, Category::Sales, at),
        at
    );
    // A deferred time is a whole minute.
    let at = local(zone("America/New_York"), 2026, 6, 10, 7, 59) + TimeDelta::seconds(17);
    let next = qh().next_allowed(&phone(212), None, Category::Sales, at);
    assert_eq!(next, local(zone("America/New_York"), 2026, 6, 10, 8, 0));
    assert_eq!(next.second(), 0);
}

#[test]
fn spring_forward_day_in_new_york() {
    // GIVEN 2026-03-08, clocks jump 02:00 EST -> 03:00 EDT
    // WHEN a text is due at 01:30 EST (06:30 UTC)
    let at = Utc.with_ymd_and_hms(2026, 3, 8, 6, 30, 0).unwrap();
    // THEN it goes at 08:00 EDT = 12:00 UTC (not 13:00 UTC, 08:00 EST)
    let next = qh().next_allowed(&phone(212), None, Category::Accounting, at);
    assert_eq!(next, Utc.with_ymd_and_hms(2026, 3, 8, 12, 0, 0).unwrap());
    // AND 20:59 EDT is still allowed, 21:00 EDT (01:00 UTC next day) is not
    let before_close = Utc.with_ymd_and_hms(2026, 3, 9, 0, 59, 0).unwrap();
    assert!(qh().is_allowed(&phone(212), None, Category::Accounting, before_close));
    let close = Utc.with_ymd_and_hms(2026, 3, 9, 1, 0, 0).unwrap();
    assert!(!qh().is_allowed(&phone(212), None, Category::Accounting, close));
}

#[test]
fn fall_back_day_in_new_york() {
    // GIVEN 2026-11-01, clocks go back 02:00 EDT -> 01:00 EST
    // WHEN a text is due at 22:00 EDT the evening before (02:00 UTC)
    let at = Utc.with_ymd_and_hms(2026, 11, 1, 2, 0, 0).unwrap();
    // THEN it goes at 08:00 EST = 13:00 UTC
    let next = qh().next_allowed(&phone(212), None, Category::Service, at);
    assert_eq!(next, Utc.with_ymd_and_hms(2026, 11, 1, 13, 0, 0).unwrap());
    // AND the repeated 01:30 is refused both times
    for utc_hour in [5, 6] {
        let t = Utc.with_ymd_and_hms(2026, 11, 1, utc_hour, 30, 0).unwrap();
        assert!(!qh().is_allowed(&phone(212), None, Category::Service, t));
    }
}

#[test]
fn dst_gap_and_overlap_resolve_to_real_instants() {
    // GIVEN 02:30 on the spring-forward day, which does not exist in New York
    let gap = chrono::NaiveDate::from_ymd_opt(2026, 3, 8)
        .unwrap()
        .and_hms_opt(2, 30, 0)
        .unwrap();
    // THEN it resolves to the end of the gap, 03:00 EDT = 07:00 UTC
    assert_eq!(
        resolve_local(&zone("America/New_York"), gap),
        Some(Utc.with_ymd_and_hms(2026, 3, 8, 7, 0, 0).unwrap())
    );
    // GIVEN 01:30 on the fall-back day, which happens twice
    let twice = chrono::NaiveDate::from_ymd_opt(2026, 11, 1)
        .unwrap()
        .and_hms_opt(1, 30, 0)
        .unwrap();
    // THEN the earlier one, 01:30 EDT = 05:30 UTC
    assert_eq!(
        resolve_local(&zone("America/New_York"), twice),
        Some(Utc.with_ymd_and_hms(2026, 11, 1, 5, 30, 0).unwrap())
    );
}

#[test]
fn multi_zone_area_code_needs_every_zone_inside() {
    // GIVEN 208 (Idaho: zone("America/Boise") Mountain and Los Angeles Pacific), a Wednesday
    let idaho = phone(208);
    // WHEN it is 08:30 in zone("America/Boise") (07:30 in the Pacific part) THEN refused
    let at = local(zone("America/Boise"), 2026, 6, 10, 8, 30);
    assert!(!qh().is_allowed(&idaho, None, Category::Service, at));
    // AND deferred to 08:00 Pacific = 09:00 zone("America/Boise")
    let next = qh().next_allowed(&idaho, None, Category::Service, at);
    assert_eq!(next, local(zone("America/Los_Angeles"), 2026, 6, 10, 8, 0));
    assert_eq!(next, local(zone("America/Boise"), 2026, 6, 10, 9, 0));
    // WHEN it is 20:30 zone("America/Boise") / 19:30 Pacific THEN both are inside
    assert!(qh().is_allowed(
        &idaho,
        None,
        Category::Service,
        local(zone("America/Boise"), 2026, 6, 10, 20, 30)
    ));
    // WHEN 21:30 zone("America/Boise") / 20:30 Pacific THEN refused (zone("America/Boise") is closed)
    assert!(!qh().is_allowed(
        &idaho,
        None,
        Category::Service,
        local(zone("America/Boise"), 2026, 6, 10, 21, 30)
    ));
    // WHEN the contact's own zone is known to be zone("America/Boise") THEN 08:30 zone("America/Boise") is fine
    assert!(qh().is_allowed(&idaho, Some(&zone("America/Boise")), Category::Service, at));
}

#[test]
fn contact_zone_overrides_the_area_code() {
    // GIVEN a 212 number whose owner lives in Los Angeles
    // WHEN it is 06:00 there (09:00 in New York) THEN refused, deferred to 08:00 LA
    let at = local(zone("America/Los_Angeles"), 2026, 6, 10, 6, 0);
    assert!(qh().is_allowed(&phone(212), None, Category::Service, at));
    assert!(!qh().is_allowed(
        &phone(212),
        Some(&zone("America/Los_Angeles")),
        Category::Service,
        at
    ));
    assert_eq!(
        qh().next_allowed(
            &phone(212),
            Some(&zone("America/Los_Angeles")),
            Category::Service,
            at
        ),
        local(zone("America/Los_Angeles"), 2026, 6, 10, 8, 0)
    );
}

#[test]
fn florida_window_applies_to_every_category_by_default() {
    // GIVEN a Miami number at 20:30 local on a Wednesday, the standard policy
    let miami = phone(305);
    let at = local(zone("America/New_York"), 2026, 6, 10, 20, 30);
    assert_eq!(qh().state_window_scope(), StateWindowScope::EveryCategory);
    // THEN marketing is refused (FL 08:00-20:00) and so is accounting
    assert!(!qh().is_allowed(&miami, None, Category::Marketing, at));
    assert!(!qh().is_allowed(&miami, None, Category::Accounting, at));
    // AND 19:59 is fine for both
    let earlier = local(zone("America/New_York"), 2026, 6, 10, 19, 59);
    assert!(qh().is_allowed(&miami, None, Category::Marketing, earlier));
    assert!(qh().is_allowed(&miami, None, Category::Accounting, earlier));
    // AND marketing goes at 08:00 next morning
    assert_eq!(
        qh().next_allowed(&miami, None, Category::Marketing, at),
        local(zone("America/New_York"), 2026, 6, 11, 8, 0)
    );
    // AND the cap is 3 per 24h for marketing only
    assert_eq!(qh().cap_per_24h(&miami, Category::Marketing), Some(3));
    assert_eq!(qh().cap_per_24h(&miami, Category::Accounting), None);
}

#[test]
fn florida_marketing_stops_at_eight_but_accounting_runs_to_nine_when_scoped() {
    // GIVEN state windows limited to their rule's category (marketing)
    let scoped = QuietHours::standard()
        .clone()
        .with_state_window_scope(StateWindowScope::RuleCategoryOnly);
    let miami = phone(305);
    let at = local(zone("America/New_York"), 2026, 6, 10, 20, 30);
    // THEN marketing at 20:30 is refused but accounting is allowed (federal 21:00)
    assert!(!scoped.is_allowed(&miami, None, Category::Marketing, at));
    assert!(scoped.is_allowed(&miami, None, Category::Accounting, at));
    assert!(!scoped.is_allowed(
        &miami,
        None,
        Category::Accounting,
        local(zone("America/New_York"), 2026, 6, 10, 21, 0)
    ));
    // AND a Texas weekday accounting text may go at 08:30 (state opens at 09:00)
    let tx = local(zone("America/Chicago"), 2026, 6, 15, 8, 30);
    assert!(scoped.is_allowed(&phone(214), None, Category::Accounting, tx));
    assert!(!scoped.is_allowed(&phone(214), None, Category::Marketing, tx));
}

#[test]
fn caps_only_where_the_table_says() {
    for (ac, cap) in [
        (405, Some(3)),
        (410, Some(3)),
        (305, Some(3)),
        (212, None),
        (206, None),
        (416, None),
        (800, None),
    ] {
        assert_eq!(
            qh().cap_per_24h(&phone(ac), Category::Marketing),
            cap,
            "{ac}"
        );
        for c in [Category::Accounting, Category::Service, Category::Sales] {
            assert_eq!(qh().cap_per_24h(&phone(ac), c), None, "{ac} {c}");
        }
    }
}

#[test]
fn alabama_sunday_marketing_waits_for_monday_but_service_does_not() {
    // GIVEN Birmingham (205) on Sunday 2026-06-14 at 10:00 Central
    let al = phone(205);
    let at = local(zone("America/Chicago"), 2026, 6, 14, 10, 0);
    // THEN marketing is refused and deferred to Monday 08:00
    assert!(!qh().is_allowed(&al, None, Category::Marketing, at));
    assert_eq!(
        qh().next_allowed(&al, None, Category::Marketing, at),
        local(zone("America/Chicago"), 2026, 6, 15, 8, 0)
    );
    // AND a Saturday 20:30 marketing text also waits for Monday
    assert_eq!(
        qh().next_allowed(
            &al,
            None,
            Category::Marketing,
            local(zone("America/Chicago"), 2026, 6, 13, 20, 30)
        ),
        local(zone("America/Chicago"), 2026, 6, 15, 8, 0)
    );
    // AND a service text on Sunday uses the federal window
    assert!(qh().is_allowed(&al, None, Category::Service, at));
    assert!(qh().is_allowed(
        &al,
        None,
        Category::Service,
        local(zone("America/Chicago"), 2026, 6, 14, 20, 30)
    ));
}

#[test]
fn texas_sunday_opens_at_noon() {
    // GIVEN Dallas (214) on Sunday 10:00 Central
    let tx = phone(214);
    let at = local(zone("America/Chicago"), 2026, 6, 14, 10, 0);
    // THEN deferred to 12:00 the same day
    assert_eq!(
        qh().next_allowed(&tx, None, Category::Marketing, at),
        local(zone("America/Chicago"), 2026, 6, 14, 12, 0)
    );
    // AND on a weekday the state's 09:00 start applies to every category
    let weekday = local(zone("America/Chicago"), 2026, 6, 15, 8, 30);
    assert_eq!(
        qh().next_allowed(&tx, None, Category::Accounting, weekday),
        local(zone("America/Chicago"), 2026, 6, 15, 9, 0)
    );
}

#[test]
fn rhode_island_saturday_window_and_closed_sunday() {
    let ri = phone(401);
    // GIVEN Saturday 09:30: the state's 10:00-17:00 applies to every category
    let sat = local(zone("America/New_York"), 2026, 6, 13, 9, 30);
    assert!(!qh().is_allowed(&ri, None, Category::Service, sat));
    assert_eq!(
        qh().next_allowed(&ri, None, Category::Service, sat),
        local(zone("America/New_York"), 2026, 6, 13, 10, 0)
    );
    // GIVEN Saturday 17:30 marketing THEN it waits for Monday 09:00
    assert_eq!(
        qh().next_allowed(
            &ri,
            None,
            Category::Marketing,
            local(zone("America/New_York"), 2026, 6, 13, 17, 30)
        ),
        local(zone("America/New_York"), 2026, 6, 15, 9, 0)
    );
    // GIVEN Sunday 08:30 service THEN the federal window applies
    assert!(qh().is_allowed(
        &ri,
        None,
        Category::Service,
        local(zone("America/New_York"), 2026, 6, 14, 8, 30)
    ));
}

#[test]
fn state_holidays_close_marketing_until_the_next_allowed_day() {
    // GIVEN Mobile (251) on Tuesday 2026-02-17, Mardi Gras, at 10:00 Central
    let al = phone(251);
    let mardi_gras = local(zone("America/Chicago"), 2026, 2, 17, 10, 0);
    // THEN marketing waits for Wednesday 08:00, service goes now
    assert_eq!(
        qh().next_allowed(&al, None, Category::Marketing, mardi_gras),
        local(zone("America/Chicago"), 2026, 2, 18, 8, 0)
    );
    assert!(qh().is_allowed(&al, None, Category::Service, mardi_gras));
    // GIVEN New Orleans (504) on Good Friday 2027-03-26 THEN Saturday 08:00
    assert_eq!(
        qh().next_allowed(
            &phone(504),
            None,
            Category::Marketing,
            local(zone("America/Chicago"), 2027, 3, 26, 12, 0)
        ),
        local(zone("America/Chicago"), 2027, 3, 27, 8, 0)
    );
    // GIVEN Providence (401) on Saturday 2027-12-25, Christmas, THEN not Sunday
    // (closed) but Monday 09:00 (RI keeps Saturday holidays on the Saturday only)
    assert_eq!(
        qh().next_allowed(
            &phone(401),
            None,
            Category::Marketing,
            local(zone("America/New_York"), 2027, 12, 25, 11, 0)
        ),
        local(zone("America/New_York"), 2027, 12, 27, 9, 0)
    );
    // GIVEN Birmingham (205) on Friday 2026-07-03, Independence Day observed (the
    // 4th is a Saturday), THEN Monday 2026-07-06 08:00: Friday, Saturday and
    // Sunday are all closed
    assert_eq!(
        qh().next_allowed(
            &phone(205),
            None,
            Category::Marketing,
            local(zone("America/Chicago"), 2026, 7, 3, 9, 0)
        ),
        local(zone("America/Chicago"), 2026, 7, 6, 8, 0)
    );
    // AND a state without a holiday rule texts on the holiday (Miami, Mardi Gras)
    assert!(qh().is_allowed(
        &phone(305),
        None,
        Category::Marketing,
        local(zone("America/New_York"), 2026, 2, 17, 10, 0)
    ));
}

#[test]
fn oregon_and_texas_rows_are_in_force() {
    // Oregon HB 3865 (2026-01-01): 08:00-20:00 and 3 per 24 hours, from the area code.
    let portland = phone(503);
    let or = qh().state_rule("OR").unwrap();
    assert_eq!(
        or.effective,
        Effective::On(NaiveDate::from_ymd_opt(2026, 1, 1).unwrap())
    );
    assert!(or.source.contains("HB 3865"));
    assert_eq!(qh().cap_per_24h(&portland, Category::Marketing), Some(3));
    assert_eq!(
        qh().next_allowed(
            &portland,
            None,
            Category::Marketing,
            local(zone("America/Los_Angeles"), 2026, 6, 15, 20, 0)
        ),
        local(zone("America/Los_Angeles"), 2026, 6, 16, 8, 0)
    );
    // Texas SB 140 (2025-09-01): marketing texts are solicitations under 301.051.
    let tx = qh().state_rule("TX").unwrap();
    assert_eq!(
        tx.effective,
        Effective::On(NaiveDate::from_ymd_opt(2025, 9, 1).unwrap())
    );
    assert!(tx.source.contains("SB 140") && tx.source.contains("301.051"));
}

#[test]
fn every_row_names_its_source_and_effective_date_and_the_table_its_review() {
    assert_eq!(
        qh().last_reviewed(),
        NaiveDate::from_ymd_opt(2026, 12, 1).unwrap()
    );
    let holidays_reviewed = STATE_HOLIDAYS_TSV
        .lines()
        .find_map(|l| l.strip_prefix("# last-reviewed:"))
        .map(str::trim);
    assert_eq!(holidays_reviewed, Some("2026-12-01"));
    let today = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
    for r in std::iter::once(qh().federal()).chain(qh().state_rules()) {
        assert!(!r.source.is_empty(), "{}", r.region);
        let (Effective::On(d) | Effective::InForceBy(d)) = r.effective;
        assert!(d <= today, "{} takes effect after the review", r.region);
    }
    let closed: Vec<_> = qh()
        .state_rules()
        .iter()
        .filter(|r| r.closed_on_holidays)
        .map(|r| r.region.as_str())
        .collect();
    assert_eq!(closed, ["RI", "AL", "LA"]);
    let capped: Vec<_> = qh()
        .state_rules()
        .iter()
        .filter(|r| r.max_per_24h == Some(3))
        .map(|r| r.region.as_str())
        .collect();
    assert_eq!(capped, ["FL", "OK", "MD", "OR"]);
}

#[test]
fn canadian_numbers_use_the_federal_window() {
    let toronto = phone(416);
    assert!(qh().is_allowed(
        &toronto,
        None,
        Category::Marketing,
        local(zone("America/Toronto"), 2026, 6, 14, 8, 0)
    ));
    assert!(qh().is_allowed(
        &toronto,
        None,
        Category::Marketing,
        local(zone("America/Toronto"), 2026, 6, 14, 20, 59)
    ));
    assert!(!qh().is_allowed(
        &toronto,
        None,
        Category::Marketing,
        local(zone("America/Toronto"), 2026, 6, 14, 21, 0)
    ));
}

#[test]
fn unknown_area_code_must_fit_atlantic_to_pacific() {
    // GIVEN 800 (not geographic) in summer: Atlantic = Eastern, Pacific 3h behind
    let tollfree = phone(800);
    assert!(area_info(800).is_none());
    // WHEN 10:30 Eastern (07:30 Pacific) THEN refused, deferred to 11:00 Eastern
    let at = local(zone("America/New_York"), 2026, 6, 10, 10, 30);
    assert!(!qh().is_allowed(&tollfree, None, Category::Service, at));
    assert_eq!(
        qh().next_allowed(&tollfree, None, Category::Service, at),
        local(zone("America/New_York"), 2026, 6, 10, 11, 0)
    );
    // GIVEN winter: 20:30 EST is 21:30 in Puerto Rico THEN refused
    assert!(!qh().is_allowed(
        &tollfree,
        None,
        Category::Service,
        local(zone("America/New_York"), 2026, 1, 14, 20, 30)
    ));
    assert!(qh().is_allowed(
        &tollfree,
        None,
        Category::Service,
        local(zone("America/New_York"), 2026, 1, 14, 19, 30)
    ));
}

#[test]
fn every_area_code_and_category_opens_within_a_few_days() {
    // GIVEN every area code, every category, starts every 5 hours over a week
    let start = Utc.with_ymd_and_hms(2026, 3, 2, 0, 7, 0).unwrap();
    let mut codes: Vec<u16> = area_codes().map(|a| a.area_code).collect();
    codes.push(800);
    for ac in codes {
        let p = phone(ac);
        for c in Category::ALL {
            for k in 0..34 {
                let at = start + TimeDelta::hours(5 * k);
                let next = qh().next_allowed(&p, None, c, at);
                // THEN the answer is allowed and at most 3 days away
                assert!(qh().is_allowed(&p, None, c, next), "{ac} {c} {at}");
                assert!(
                    next >= at && next - at <= TimeDelta::days(3),
                    "{ac} {c} {at} -> {next}"
                );
            }
        }
    }
}

#[test]
fn extreme_instants_do_not_panic() {
    for at in [DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC] {
        let _ = qh().is_allowed(&phone(212), None, Category::Service, at);
        let _ = qh().next_allowed(&phone(212), None, Category::Service, at);
        let _ = qh().next_allowed(
            &phone(800),
            Some(&zone("America/New_York")),
            Category::Marketing,
            at,
        );
    }
}

// ---- properties ------------------------------------------------------------

fn table_codes() -> Vec<u16> {
    let mut codes: Vec<u16> = area_codes().map(|a| a.area_code).collect();
    codes.extend([800, 787, 671]); // not in the table
    codes
}

const OTHER_ZONES: [&str; 8] = [
    "America/New_York",
    "America/St_Johns",
    "Pacific/Honolulu",
    "America/Adak",
    "Europe/London",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "Pacific/Chatham",
];

fn arb_case() -> impl Strategy<Value = (u16, Option<Zone>, Category, DateTime<Utc>)> {
    let codes = table_codes();
    (
        prop::sample::select(codes),
        prop::option::weighted(
            0.3,
            prop::sample::select(OTHER_ZONES.to_vec()).prop_map(zone),
        ),
        prop::sample::select(Category::ALL.to_vec()),
        // 2024-01-01 .. 2031-01-01, any second
        1_704_067_200i64..1_924_992_000i64,
    )
        .prop_map(|(ac, tz, c, secs)| (ac, tz, c, DateTime::from_timestamp(secs, 0).unwrap()))
}

proptest! {
    #[test]
    fn next_allowed_is_allowed_soon_and_not_before(case in arb_case()) {
        let (ac, tz, c, at) = case;
        let p = phone(ac);
        let next = qh().next_allowed(&p, tz.as_ref(), c, at);
        prop_assert!(next >= at);
        prop_assert!(next - at <= TimeDelta::days(14));
        prop_assert!(qh().is_allowed(&p, tz.as_ref(), c, next));
        if qh().is_allowed(&p, tz.as_ref(), c, at) {
            prop_assert_eq!(next, at);
        } else {
            prop_assert_eq!(next.second(), 0);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]
    #[test]
    fn next_allowed_matches_a_minute_by_minute_scan(case in arb_case()) {
        let (ac, tz, c, at) = case;
        let p = phone(ac);
        let mut expected = at;
        if !qh().is_allowed(&p, tz.as_ref(), c, at) {
            expected = ceil_minute(at);
            while !qh().is_allowed(&p, tz.as_ref(), c, expected) {
                expected += TimeDelta::minutes(1);
            }
        }
        prop_assert_eq!(qh().next_allowed(&p, tz.as_ref(), c, at), expected);
    }
}
