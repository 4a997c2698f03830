//! Inbound checks: conversations both ways, carrier message ids acted on once, a
//! reply's acted mark written with its consent change, and a pay request confirmed once.

use super::support::*;

/// The conversation of a number: outbound messages and inbound texts, newest first,
/// across pages; an inbound text is kept once however often its webhook is retried; a
/// cursor only continues its own conversation; inbound texts never pass for messages.
pub async fn conversations_interleave_both_directions<S: Store>(s: &S, ctx: &Ctx) {
    let p = phone("+12025550188");
    let other = phone("+12025550189");
    let mut expected = Vec::new();
    for i in 0..5u32 {
        let mut m = message(ctx, 100 + i, MessageStatus::Sent, t0());
        m.to = p.clone();
        s.create(&m, None).await.unwrap();
        expected.push(m.id.as_str().to_owned());
        let text = InboundText {
            id: crate::ids::new_ulid(),
            dealer_id: ctx.dealer.clone(),
            from: p.clone(),
            to: phone("+12025550100"),
            body: format!("reply {i}"),
            carrier_message_id: format!("SM-{}-{i}", ctx.dealer),
            received_at: t0(),
            read_as: "other".into(),
            language: "en".into(),
        };
        s.record_text(&text).await.unwrap();
        // The webhook retried: a second copy with a new id is not kept.
        s.record_text(&InboundText {
            id: crate::ids::new_ulid(),
            ..text.clone()
        })
        .await
        .unwrap();
        expected.push(text.id.clone());
    }
    let mut m = message(ctx, 200, MessageStatus::Sent, t0());
    m.to = other.clone();
    s.create(&m, None).await.unwrap();
    expected.sort();
    expected.reverse();
    eventually(
        || s.conversation(&ctx.dealer, &p, 100, None),
        |c| c.as_ref().is_ok_and(|c| c.entries.len() == expected.len()),
    )
    .await
    .unwrap();
    eventually(
        || s.by_recipient(&ctx.dealer, &other, &[MessageStatus::Sent]),
        |m| m.as_ref().is_ok_and(|m| m.len() == 1),
    )
    .await
    .unwrap();

    let mut got = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let page = s
            .conversation(&ctx.dealer, &p, 3, cursor.as_deref())
            .await
            .unwrap();
        assert!(page.entries.len() <= 3);
        got.extend(page.entries.iter().map(|e| e.id().to_owned()));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(got, expected, "newest first, both directions, each once");
    // A cursor of this conversation does not continue another number's.
    let first = s.conversation(&ctx.dealer, &p, 2, None).await.unwrap();
    let refused = s
        .conversation(&ctx.dealer, &other, 2, first.next_cursor.as_deref())
        .await;
    assert!(
        matches!(&refused, Err(StoreError::Corrupt { key, .. }) if key == "cursor"),
        "{refused:?}"
    );
    // Inbound texts are not messages.
    let messages = s
        .by_recipient(&ctx.dealer, &p, &[MessageStatus::Sent])
        .await
        .unwrap();
    assert_eq!(messages.len(), 5);
}

/// A carrier message id is acted on once, for as long as the ledger is kept.
pub async fn inbound_ids_never_expire<S: Store>(s: &S, ctx: &Ctx) {
    let sid = format!("SM-{}", ctx.dealer);
    assert!(!s.finished(&sid).await.unwrap());
    s.finish(&sid, t0()).await.unwrap();
    // A replay five years on is still finished (no expiry), and finishing again is harmless.
    s.finish(&sid, t0() + Duration::days(5 * 365))
        .await
        .unwrap();
    assert!(s.finished(&sid).await.unwrap());
    assert!(!s.finished(&format!("{sid}-other")).await.unwrap());
}

/// A reply's consent change and its acted mark are written together, once: a second
/// change under the same mark is refused whole, and the mark is the one the change gave
/// (what the reply changed, which the service decides: here less than its entries).
pub async fn a_replys_consent_change_carries_its_acted_mark_once<S: Store>(s: &S, ctx: &Ctx) {
    let p = phone("+12025550183");
    let sid = format!("SM-acted-{}", ctx.dealer);
    assert_eq!(s.acted(&sid).await.unwrap(), None);
    let revoke = |c| {
        LedgerEntry::new(
            &ctx.dealer,
            &p,
            c,
            ConsentEvent::RevokedByReply,
            Actor::Phone,
            t0(),
        )
        .with_evidence(sid.clone())
    };
    let entries = vec![revoke(Category::Service), revoke(Category::Sales)];
    let state = ConsentState::from_ledger(entries.iter());
    let mark = ActedMark {
        categories: vec![Category::Sales],
    };
    let acted = |carrier_message_id| Acted {
        carrier_message_id,
        mark: &mark,
    };
    s.append(
        &ctx.dealer,
        &p,
        ConsentChange {
            expected_version: 0,
            entries: &entries,
            new_state: &state,
            consumed: &[],
            acted: Some(acted(&sid)),
        },
    )
    .await
    .unwrap();
    assert_eq!(s.acted(&sid).await.unwrap(), Some(mark.clone()));
    // The same reply again, at the version it now reads: the mark refuses it, nothing written.
    let again = vec![revoke(Category::Marketing)];
    let mut next = state.clone();
    for e in &again {
        next.apply(e);
    }
    assert!(matches!(
        s.append(
            &ctx.dealer,
            &p,
            ConsentChange {
                expected_version: 1,
                entries: &again,
                new_state: &next,
                consumed: &[],
                acted: Some(acted(&sid)),
            },
        )
        .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.history(&ctx.dealer, &p).await.unwrap().len(), 2);
    assert_eq!(s.consent(&ctx.dealer, &p).await.unwrap().version, 1);
    // A change without a mark, or with another reply's, still goes through.
    s.append(
        &ctx.dealer,
        &p,
        ConsentChange {
            expected_version: 1,
            entries: &again,
            new_state: &next,
            consumed: &[],
            acted: Some(acted(&format!("{sid}-2"))),
        },
    )
    .await
    .unwrap();
    assert_eq!(s.history(&ctx.dealer, &p).await.unwrap().len(), 3);
}

/// One pay request is confirmed by one CONFIRM: the claim is kept for the first CONFIRM
/// (its redelivery holds it again), never for another, even when they race.
pub async fn a_pay_request_is_confirmed_once<S: Store>(s: &S, ctx: &Ctx) {
    let request = MessageId::generate();
    let racers: Vec<String> = (0..12)
        .map(|i| format!("SM-confirm-{}-{i}", ctx.dealer))
        .collect();
    let claims =
        futures::future::join_all(racers.iter().map(|sid| s.claim_confirmation(&request, sid)))
            .await;
    let winners: Vec<&String> = racers
        .iter()
        .zip(&claims)
        .filter(|(_, c)| matches!(c, Ok(true)))
        .map(|(sid, _)| sid)
        .collect();
    assert_eq!(winners.len(), 1, "{claims:?}");
    assert!(s.claim_confirmation(&request, winners[0]).await.unwrap());
    let loser = racers.iter().find(|r| *r != winners[0]).unwrap();
    assert!(!s.claim_confirmation(&request, loser).await.unwrap());
    // Another request is free.
    assert!(s
        .claim_confirmation(&MessageId::generate(), loser)
        .await
        .unwrap());
}
