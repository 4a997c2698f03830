//! Dealer checks: a dealer's automations and own templates.

use super::support::*;

/// A dealer's automations are theirs alone, one per event type.
pub async fn automations_are_per_dealer_and_event_type<S: Store>(s: &S, ctx: &Ctx) {
    let other = DealerId::parse(format!("{}-other", ctx.dealer)).unwrap();
    let setting = |event: &str, enabled| crate::automation::Automation {
        event_type: event.into(),
        template: "service-reminder".into(),
        enabled,
        updated_at: t0(),
        updated_by: "admin-1".into(),
    };
    s.put_automation(&ctx.dealer, &setting("ServiceDue", true))
        .await
        .unwrap();
    s.put_automation(&ctx.dealer, &setting("ServiceDue", false))
        .await
        .unwrap();
    s.put_automation(&ctx.dealer, &setting("VehicleSold", true))
        .await
        .unwrap();
    let mut all = s.automations(&ctx.dealer).await.unwrap();
    all.sort_by(|a, b| a.event_type.cmp(&b.event_type));
    assert_eq!(
        all,
        vec![setting("ServiceDue", false), setting("VehicleSold", true)]
    );
    assert_eq!(
        s.automation(&ctx.dealer, "ServiceDue").await.unwrap(),
        Some(setting("ServiceDue", false))
    );
    assert!(s.automations(&other).await.unwrap().is_empty());
    assert_eq!(s.automation(&other, "ServiceDue").await.unwrap(), None);
}

/// A dealer's template changes only from the version read, and is the dealer's alone.
pub async fn templates_change_from_the_version_read<S: Store>(s: &S, ctx: &Ctx) {
    let other = DealerId::parse(format!("{}-other", ctx.dealer)).unwrap();
    let v1 = crate::template::DealerTemplate {
        name: "recall".into(),
        title: "Recall".into(),
        category: Category::Service,
        body: "{dealerName}: recall for your {model}.".into(),
        placeholder_types: Default::default(),
        version: 1,
        updated_at: t0(),
        updated_by: "staff-1".into(),
    };
    s.put_template(&ctx.dealer, &v1, None).await.unwrap();
    assert!(matches!(
        s.put_template(&ctx.dealer, &v1, None).await,
        Err(StoreError::Conflict(_))
    ));
    let v2 = crate::template::DealerTemplate {
        version: 2,
        body: "{dealerName}: recall notice for your {model}.".into(),
        ..v1.clone()
    };
    s.put_template(&ctx.dealer, &v2, Some(1)).await.unwrap();
    assert!(matches!(
        s.put_template(&ctx.dealer, &v2, Some(1)).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        s.dealer_templates(&ctx.dealer).await.unwrap(),
        vec![v2.clone()]
    );
    assert_eq!(s.dealer_template(&other, "recall").await.unwrap(), None);
    assert!(!s.delete_template(&other, "recall").await.unwrap());
    assert!(s.delete_template(&ctx.dealer, "recall").await.unwrap());
    assert!(!s.delete_template(&ctx.dealer, "recall").await.unwrap());
    assert_eq!(
        s.dealer_template(&ctx.dealer, "recall").await.unwrap(),
        None
    );
}
