//! Ledger checks: a number's ledger comes back whole, and the dealer-wide export pages
//! a period of one dealer.

use super::support::*;

/// A long ledger comes back whole, however many pages it takes.
pub async fn a_long_ledger_comes_back_whole<S: Store>(s: &S, ctx: &Ctx) {
    let p = phone("+12025550143");
    let mut state = ConsentState::default();
    for round in 0..3i64 {
        let version = round as u64;
        let entries: Vec<LedgerEntry> = (0..25)
            .map(|i| {
                let event = if i % 2 == 0 {
                    ConsentEvent::GrantedByCode
                } else {
                    ConsentEvent::RevokedByPortal
                };
                LedgerEntry::new(
                    &ctx.dealer,
                    &p,
                    Category::Accounting,
                    event,
                    Actor::Staff(StaffUserId::parse("staff-1").unwrap()),
                    t0() + Duration::minutes(round * 25 + i),
                )
            })
            .collect();
        for e in &entries {
            state.apply(e);
        }
        s.append(
            &ctx.dealer,
            &p,
            ConsentChange {
                expected_version: version,
                entries: &entries,
                new_state: &state,
                consumed: &[],
                acted: None,
            },
        )
        .await
        .unwrap();
    }
    assert_eq!(s.history(&ctx.dealer, &p).await.unwrap().len(), 75);
    // A stale version conflicts and writes nothing.
    assert!(matches!(
        s.append(
            &ctx.dealer,
            &p,
            ConsentChange {
                expected_version: 0,
                entries: &[],
                new_state: &state,
                consumed: &[],
                acted: None,
            },
        )
        .await,
        Err(StoreError::Conflict(_))
    ));
}

/// The dealer-wide export returns exactly `[from, to)` of one dealer, oldest first,
/// across pages, and refuses a cursor it did not hand out or handed to another dealer.
pub async fn the_ledger_export_pages_a_period_of_one_dealer<S: Store>(s: &S, ctx: &Ctx) {
    let other = DealerId::parse(format!("{}-other", ctx.dealer)).unwrap();
    let staff = || Actor::Staff(StaffUserId::parse("staff-1").unwrap());
    let (from, to) = (t0(), t0() + Duration::hours(10));
    let mut expected = Vec::new();
    for (i, number) in ["+12025550143", "+13055550144", "+14155550145"]
        .iter()
        .enumerate()
    {
        let p = phone(number);
        // Entries from an hour before `from` to exactly `to`, two at the same instant.
        let times: Vec<DateTime<Utc>> = [-60i64, 0, 0, 90, 300, 599, 600]
            .iter()
            .map(|m| from + Duration::minutes(*m + i as i64))
            .map(|t| t.min(to))
            .collect();
        let entries: Vec<LedgerEntry> = times
            .iter()
            .map(|at| {
                LedgerEntry::new(
                    &ctx.dealer,
                    &p,
                    Category::Service,
                    ConsentEvent::GrantedByCode,
                    staff(),
                    *at,
                )
            })
            .collect();
        let mut state = ConsentState::default();
        entries.iter().for_each(|e| state.apply(e));
        s.append(
            &ctx.dealer,
            &p,
            ConsentChange {
                expected_version: 0,
                entries: &entries,
                new_state: &state,
                consumed: &[],
                acted: None,
            },
        )
        .await
        .unwrap();
        let theirs: Vec<LedgerEntry> = times
            .iter()
            .map(|at| {
                LedgerEntry::new(
                    &other,
                    &p,
                    Category::Service,
                    ConsentEvent::GrantedByCode,
                    staff(),
                    *at,
                )
            })
            .collect();
        s.append(
            &other,
            &p,
            ConsentChange {
                expected_version: 0,
                entries: &theirs,
                new_state: &state,
                consumed: &[],
                acted: None,
            },
        )
        .await
        .unwrap();
        expected.extend(entries.into_iter().filter(|e| e.at >= from && e.at < to));
    }
    expected.sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
    eventually(
        || s.ledger_between(&ctx.dealer, from, to, 100, None),
        |p| p.as_ref().is_ok_and(|p| p.entries.len() == expected.len()),
    )
    .await
    .unwrap();

    let mut got = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = s
            .ledger_between(&ctx.dealer, from, to, 4, cursor.as_deref())
            .await
            .unwrap();
        assert!(page.entries.len() <= 4);
        got.extend(page.entries);
        pages += 1;
        assert!(pages <= 10, "the export does not end");
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let ids = |v: &[LedgerEntry]| v.iter().map(|e| e.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&got), ids(&expected));
    assert_eq!(got.len(), 13, "5 + 4 + 4 inside the period");

    // Another dealer's cursor, or a made-up one, is refused.
    let first = s
        .ledger_between(&ctx.dealer, from, to, 2, None)
        .await
        .unwrap();
    let theirs = first.next_cursor.expect("more than one page");
    for bad in [theirs.as_str(), "not-a-cursor", ""] {
        let dealer = if bad == theirs { &other } else { &ctx.dealer };
        let refused = s.ledger_between(dealer, from, to, 2, Some(bad)).await;
        assert!(
            matches!(&refused, Err(StoreError::Corrupt { key, .. }) if key == "cursor"),
            "{bad:?}: {refused:?}"
        );
    }
    // An empty period is an empty page.
    let none = s
        .ledger_between(&ctx.dealer, to, to, 10, None)
        .await
        .unwrap();
    assert!(none.entries.is_empty() && none.next_cursor.is_none());
}
