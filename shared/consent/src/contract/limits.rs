//! Rate-limit checks: units within the window, never past it in parallel.

use super::support::*;

/// Units are taken whole or not at all, a window never holds more than its limit however
/// many ask at once, and the next window starts from nothing.
pub async fn rate_limits_take_units_within_the_window_and_never_pass_it_in_parallel<S: Store>(
    s: &S,
    ctx: &Ctx,
) {
    use std::time::Duration as Std;
    let key = format!("contract#{}", ctx.dealer);
    let day = Std::from_secs(86_400);
    let at = t0();
    let allowed = |d: StoreResult<RateDecision>| matches!(d.unwrap(), RateDecision::Allowed);
    assert!(allowed(s.acquire_units(&key, 3, 5, day, at).await));
    let refused = s.acquire_units(&key, 3, 5, day, at).await.unwrap();
    assert_eq!(
        refused,
        RateDecision::Limited {
            retry_after: window_left(day, at)
        },
        "3 more would pass 5: nothing taken"
    );
    assert!(
        allowed(s.acquire_units(&key, 2, 5, day, at).await),
        "exactly 5"
    );
    assert!(!allowed(s.acquire(&key, 5, day, at).await));
    assert!(!allowed(
        s.acquire_units(&key, 6, 5, day, at + chrono::Duration::days(1))
            .await
    ));
    assert!(allowed(
        s.acquire_units(&key, 5, 5, day, at + chrono::Duration::days(1))
            .await
    ));
    // 20 at once for a limit of 7, one unit each: exactly 7 taken.
    let second = format!("contract-race#{}", ctx.dealer);
    let racing = (0..20).map(|_| s.acquire(&second, 7, Std::from_secs(60), at));
    let granted = futures_join_all(racing)
        .await
        .into_iter()
        .filter(|d| matches!(d, Ok(RateDecision::Allowed)))
        .count();
    assert_eq!(granted, 7);
}
