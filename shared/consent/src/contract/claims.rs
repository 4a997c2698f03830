//! Delivery-claim checks: a claim holds only for what is stored, and stops at an
//! opt-out, a deleted contact, or a dealer that changed its texting number.

use super::support::*;

/// A claim holds only for what is stored; a code text's sealed code goes once it went.
pub async fn claims_check_the_stored_message<S: Store>(s: &S, ctx: &Ctx) {
    own_number(s, ctx, &ctx.number(), None).await;
    let mut m = message(ctx, 1, MessageStatus::Queued, t0());
    m.kind = MessageKind::ApprovalCode;
    m.code = Some(SealedCode {
        sealed: "c2VhbGVk".into(),
        request_id: "r-1".into(),
        sends: Some(1),
    });
    s.create(&m, None).await.unwrap();
    let true_copy = m.snapshot();
    let forgeries = [
        crate::message::DeliverySnapshot {
            kind: MessageKind::Reply,
            ..true_copy.clone()
        },
        crate::message::DeliverySnapshot {
            to: phone("+13125550199"),
            ..true_copy.clone()
        },
        crate::message::DeliverySnapshot {
            body: "other".into(),
            ..true_copy.clone()
        },
        crate::message::DeliverySnapshot {
            code: None,
            ..true_copy.clone()
        },
    ];
    for forged in &forgeries {
        let expected = ClaimExpectation {
            dealer: &ctx.dealer,
            snapshot: forged,
            book: None,
        };
        assert_eq!(
            s.claim_for_delivery(&m.id, &expected, t0(), None)
                .await
                .unwrap(),
            DeliveryClaim::Mismatch
        );
    }
    let other_dealer = DealerId::parse("someone-else").unwrap();
    let foreign = ClaimExpectation {
        dealer: &other_dealer,
        snapshot: &true_copy,
        book: None,
    };
    assert_eq!(
        s.claim_for_delivery(&m.id, &foreign, t0(), None)
            .await
            .unwrap(),
        DeliveryClaim::Mismatch
    );
    let expected = ClaimExpectation {
        dealer: &ctx.dealer,
        snapshot: &true_copy,
        book: None,
    };
    let (a, b) = futures_join2(
        s.claim_for_delivery(&m.id, &expected, t0(), None),
        s.claim_for_delivery(&m.id, &expected, t0(), None),
    )
    .await;
    let wins = [a.unwrap(), b.unwrap()]
        .into_iter()
        .filter(|c| *c == DeliveryClaim::Claimed)
        .count();
    assert_eq!(wins, 1);
    let sent = DeliveryRecord {
        status: MessageStatus::Sent,
        at: t0(),
        reason: None,
        carrier_message_id: Some("SM-1".into()),
        send_at: None,
        attempted: true,
    };
    s.record_delivery(&m.id, MessageStatus::Sending, &sent)
        .await
        .unwrap();
    let stored = s.message(&m.id).await.unwrap().unwrap();
    assert_eq!(stored.status, MessageStatus::Sent);
    assert_eq!(stored.code, None);
    // The call was counted on the message.
    assert_eq!(stored.attempts, m.attempts + 1);
}

/// An opt-out belongs to the pair of numbers; a claim stops at it, except for answers
/// to the person's own texts; START (clearing it) lets texts through again.
pub async fn opt_outs_stop_claims_but_not_replies<S: Store>(s: &S, ctx: &Ctx) {
    own_number(s, ctx, &ctx.number(), None).await;
    let template = message(ctx, 1, MessageStatus::Queued, t0());
    let mut reply = message(ctx, 2, MessageStatus::Queued, t0());
    reply.kind = MessageKind::Reply;
    s.create(&template, None).await.unwrap();
    s.create(&reply, None).await.unwrap();
    // Another texting number of the same person is not blocked by it.
    let other_number = phone("+12025550199");
    s.set_opted_out(&template.from, &template.to, true, t0())
        .await
        .unwrap();
    assert!(s.opted_out(&template.from, &template.to).await.unwrap());
    assert!(!s.opted_out(&other_number, &template.to).await.unwrap());
    let (state, blocked) = s
        .consent_to_text(&ctx.dealer, &template.to, &template.from)
        .await
        .unwrap();
    assert_eq!((state.version, blocked), (0, true));
    let (_, blocked) = s
        .consent_to_text(&ctx.dealer, &template.to, &other_number)
        .await
        .unwrap();
    assert!(!blocked);
    assert_eq!(
        claim_as_stored(s, ctx, &template).await,
        DeliveryClaim::OptedOut
    );
    assert_eq!(
        claim_as_stored(s, ctx, &reply).await,
        DeliveryClaim::Claimed
    );
    s.set_opted_out(&template.from, &template.to, false, t0())
        .await
        .unwrap();
    assert!(!s.opted_out(&template.from, &template.to).await.unwrap());
    assert_eq!(
        claim_as_stored(s, ctx, &template).await,
        DeliveryClaim::Claimed
    );
}

/// A dealer that changed its texting number sends nothing from the old one: the claim
/// stops (`NumberMoved`, nothing written), the message is moved to the new number once
/// (only while it is queued and still from the old one), and claims from there.
pub async fn claims_stop_when_the_dealer_changed_its_number<S: Store>(s: &S, ctx: &Ctx) {
    let old = ctx.number();
    own_number(s, ctx, &old, None).await;
    let m = message(ctx, 1, MessageStatus::Queued, t0());
    let sent_before = message(ctx, 2, MessageStatus::Queued, t0());
    for m in [&m, &sent_before] {
        s.create(m, None).await.unwrap();
    }
    assert_eq!(
        claim_as_stored(s, ctx, &sent_before).await,
        DeliveryClaim::Claimed
    );
    // The dealer moves to another number.
    let new = phone(&format!(
        "+1202555{:04}",
        (old.as_str()[8..].parse::<u32>().unwrap() + 1) % 10_000
    ));
    own_number(s, ctx, &new, Some(&old)).await;
    assert_eq!(
        claim_as_stored(s, ctx, &m).await,
        DeliveryClaim::NumberMoved
    );
    assert_eq!(
        s.message(&m.id).await.unwrap().unwrap().status,
        MessageStatus::Queued
    );
    // Moved once; a second move from the old number finds nothing to move.
    assert!(s.repoint(&m.id, &old, &new).await.unwrap());
    assert!(!s.repoint(&m.id, &old, &new).await.unwrap());
    // A message no longer queued is not moved.
    assert!(!s.repoint(&sent_before.id, &old, &new).await.unwrap());
    let moved = s.message(&m.id).await.unwrap().unwrap();
    assert_eq!(moved.from, new);
    assert_eq!(
        claim_as_stored(s, ctx, &moved).await,
        DeliveryClaim::Claimed
    );
}

/// A deleted contact's texts are not claimed (answers to the person's own texts are).
pub async fn claims_stop_at_a_deleted_contact<S: Store>(s: &S, ctx: &Ctx) {
    own_number(s, ctx, &ctx.number(), None).await;
    let contact = Contact {
        id: ContactId::parse("c-gone").unwrap(),
        dealer_id: ctx.dealer.clone(),
        name: "Gale".into(),
        phone: phone("+12025550143"),
        account_ids: vec![],
        deal_ids: vec![],
        time_zone: None,
        updated_at: t0(),
    };
    s.put_contact(&contact, None).await.unwrap();
    let for_contact = |n| Message {
        contact_id: Some(contact.id.clone()),
        ..message(ctx, n, MessageStatus::Queued, t0())
    };
    let (first, second) = (for_contact(1), for_contact(2));
    let reply = Message {
        kind: MessageKind::Reply,
        ..for_contact(3)
    };
    for m in [&first, &second, &reply] {
        s.create(m, None).await.unwrap();
    }
    assert_eq!(
        claim_as_stored(s, ctx, &first).await,
        DeliveryClaim::Claimed
    );
    s.delete_contact(&contact).await.unwrap();
    assert_eq!(
        claim_as_stored(s, ctx, &second).await,
        DeliveryClaim::ContactGone
    );
    assert_eq!(
        s.message(&second.id).await.unwrap().unwrap().status,
        MessageStatus::Queued
    );
    assert_eq!(
        claim_as_stored(s, ctx, &reply).await,
        DeliveryClaim::Claimed
    );
}

/// Claims `m` expecting what it says.
async fn claim_as_stored<S: Store>(s: &S, ctx: &Ctx, m: &Message) -> DeliveryClaim {
    let snapshot = m.snapshot();
    let expected = ClaimExpectation {
        dealer: &ctx.dealer,
        snapshot: &snapshot,
        book: None,
    };
    s.claim_for_delivery(&m.id, &expected, t0(), None)
        .await
        .unwrap()
}
