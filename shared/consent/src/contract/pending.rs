//! Pending-authorization checks: a request is made once, its tries are counted
//! however many race, and a resend or a void takes only the same request.

use super::support::*;

fn pending(ctx: &Ctx, request_id: &str) -> PendingAuthorization {
    PendingAuthorization {
        dealer_id: ctx.dealer.clone(),
        phone: phone("+12025550143"),
        category: Category::Accounting,
        request_id: request_id.into(),
        code_hash: "hash-1".into(),
        contact_id: ContactId::parse("c-1").unwrap(),
        requested_by: StaffUserId::parse("staff-1").unwrap(),
        created_at: t0(),
        expires_at: t0() + Duration::minutes(10),
        attempts: 0,
        sends: 1,
        disclosure_version: "accounting-v1".into(),
        disclosure_text: None,
    }
}

/// A request is made once however many Authorize clicks race; a live one is never
/// replaced (an expired or used-up one is); of two resends at once one wins; a failed
/// code text voids its request only while the request still holds that text's code.
pub async fn pending_requests_are_made_once_and_a_stale_code_voids_nothing<S: Store>(
    s: &S,
    ctx: &Ctx,
) {
    let racers: Vec<PendingAuthorization> =
        (0..6).map(|k| pending(ctx, &format!("r-{k}"))).collect();
    let made = futures_join_all(racers.iter().map(|p| s.put_pending(p))).await;
    assert_eq!(made.iter().filter(|r| r.is_ok()).count(), 1, "{made:?}");
    assert!(made
        .iter()
        .all(|r| r.is_ok() || matches!(r, Err(StoreError::Conflict(_)))));
    let live = s
        .pending(&ctx.dealer, &racers[0].phone, Category::Accounting)
        .await
        .unwrap()
        .unwrap();
    // Two resends of it at once (both read send 1): one wins
    let resends: Vec<PendingAuthorization> = ["hash-a", "hash-b"]
        .iter()
        .map(|h| PendingAuthorization {
            code_hash: (*h).into(),
            sends: 2,
            ..live.clone()
        })
        .collect();
    let resent = futures_join_all(resends.iter().map(|p| s.replace_code(p))).await;
    assert_eq!(resent.iter().filter(|r| r.is_ok()).count(), 1, "{resent:?}");
    // The first code's text failed: the request now holds send 2's code, so it stays
    s.void(
        &ctx.dealer,
        &live.phone,
        live.category,
        &live.request_id,
        Some(1),
    )
    .await
    .unwrap();
    let after = s
        .pending(&ctx.dealer, &live.phone, live.category)
        .await
        .unwrap()
        .expect("a later resend's code stays live");
    assert_eq!(after.sends, 2);
    // ... and send 2's text failing voids it
    s.void(
        &ctx.dealer,
        &live.phone,
        live.category,
        &live.request_id,
        Some(2),
    )
    .await
    .unwrap();
    assert!(s
        .pending(&ctx.dealer, &live.phone, live.category)
        .await
        .unwrap()
        .is_none());
    // An expired request is replaced by a new one
    let old = PendingAuthorization {
        request_id: "r-old".into(),
        category: Category::Service,
        ..pending(ctx, "r-old")
    };
    s.put_pending(&old).await.unwrap();
    let later = PendingAuthorization {
        request_id: "r-later".into(),
        category: Category::Service,
        created_at: old.expires_at + Duration::seconds(1),
        expires_at: old.expires_at + Duration::minutes(11),
        ..pending(ctx, "r-later")
    };
    s.put_pending(&later).await.unwrap();
    let early = PendingAuthorization {
        request_id: "r-early".into(),
        created_at: later.created_at + Duration::seconds(5),
        ..later.clone()
    };
    assert!(matches!(
        s.put_pending(&early).await,
        Err(StoreError::Conflict(_))
    ));
}

/// However many guesses race, at most MAX_ATTEMPTS tries are taken.
pub async fn tries_are_taken_at_most_five_times_in_parallel<S: Store>(s: &S, ctx: &Ctx) {
    let p = pending(ctx, "r-1");
    s.put_pending(&p).await.unwrap();
    let guesses = (0..30).map(|_| s.take_attempt(&p));
    let taken = futures_join_all(guesses).await;
    let granted = taken
        .into_iter()
        .map(|r| r.unwrap())
        .filter(Option::is_some)
        .count();
    assert_eq!(granted, MAX_ATTEMPTS as usize);
    let stored = s
        .pending(&ctx.dealer, &p.phone, p.category)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.attempts, MAX_ATTEMPTS);
}

/// A resend changes the code and the send count, never the tries counted; only the
/// same request can be resent or voided.
pub async fn resends_keep_tries_and_void_takes_the_same_request<S: Store>(s: &S, ctx: &Ctx) {
    let p = pending(ctx, "r-1");
    s.put_pending(&p).await.unwrap();
    s.take_attempt(&p).await.unwrap().unwrap();
    s.take_attempt(&p).await.unwrap().unwrap();
    let resent = PendingAuthorization {
        code_hash: "hash-2".into(),
        sends: 2,
        ..p.clone()
    };
    s.replace_code(&resent).await.unwrap();
    let stored = s
        .pending(&ctx.dealer, &p.phone, p.category)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (stored.attempts, stored.code_hash.as_str(), stored.sends),
        (2, "hash-2", 2)
    );
    let other = pending(ctx, "r-0");
    assert!(matches!(
        s.replace_code(&other).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.take_attempt(&other).await.unwrap(), None);
    s.void(&ctx.dealer, &p.phone, p.category, "r-0", None)
        .await
        .unwrap();
    assert!(s
        .pending(&ctx.dealer, &p.phone, p.category)
        .await
        .unwrap()
        .is_some());
    s.void(&ctx.dealer, &p.phone, p.category, "r-1", None)
        .await
        .unwrap();
    assert!(s
        .pending(&ctx.dealer, &p.phone, p.category)
        .await
        .unwrap()
        .is_none());
}
