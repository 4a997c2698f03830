//! Contact checks: lists page in order, a deleted contact leaves its ledger, and edits
//! from one read conflict.

use super::support::*;

/// Contact lists and a number's ledger page in order, one bounded read per page.
pub async fn lists_page_in_order<S: Store>(s: &S, ctx: &Ctx) {
    let account = AccountId::parse("A-P").unwrap();
    let link = ContactLink::Account(account.clone());
    for i in (1..=7).rev() {
        let c = Contact {
            id: ContactId::parse(format!("c-p{i}")).unwrap(),
            dealer_id: ctx.dealer.clone(),
            name: "P".into(),
            phone: phone(&format!("+1202555016{i}")),
            account_ids: vec![account.clone()],
            deal_ids: vec![],
            time_zone: None,
            updated_at: t0(),
        };
        s.put_contact(&c, None).await.unwrap();
    }
    let mut pages = Vec::new();
    let mut after: Option<ContactId> = None;
    loop {
        let (page, more) = s
            .linked_contacts(&ctx.dealer, &link, 3, after.as_ref())
            .await
            .unwrap();
        pages.push(
            page.iter()
                .map(|c| c.id.as_str().to_owned())
                .collect::<Vec<_>>(),
        );
        after = page.last().map(|c| c.id.clone());
        if !more {
            break;
        }
        assert!(pages.len() < 5, "the list ends");
    }
    assert_eq!(
        pages,
        [
            vec!["c-p1", "c-p2", "c-p3"],
            vec!["c-p4", "c-p5", "c-p6"],
            vec!["c-p7"]
        ]
    );
    let p = phone("+12025550199");
    let entries: Vec<LedgerEntry> = (0..5)
        .map(|i| {
            LedgerEntry::new(
                &ctx.dealer,
                &p,
                Category::Sales,
                ConsentEvent::RevokedByPortal,
                Actor::Staff(StaffUserId::parse("staff-1").unwrap()),
                t0() + Duration::minutes(i),
            )
        })
        .collect();
    let state = ConsentState::from_ledger(&entries);
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
    let (first, more) = s.history_page(&ctx.dealer, &p, 2, None).await.unwrap();
    assert!(more);
    let (rest, more) = s
        .history_page(&ctx.dealer, &p, 10, Some(&first[1].id))
        .await
        .unwrap();
    assert!(!more);
    let ids: Vec<_> = first.iter().chain(&rest).map(|e| e.id.clone()).collect();
    assert_eq!(
        ids,
        entries.iter().map(|e| e.id.clone()).collect::<Vec<_>>()
    );
}

/// Deleting a contact removes it and its links, only from the version read; the
/// number's consent ledger stays.
pub async fn a_deleted_contact_leaves_its_ledger<S: Store>(s: &S, ctx: &Ctx) {
    let account = AccountId::parse("A-9").unwrap();
    let deal = crate::ids::DealId::parse("D-9").unwrap();
    let p = phone("+12025550177");
    let contact = Contact {
        id: ContactId::parse("c-9").unwrap(),
        dealer_id: ctx.dealer.clone(),
        name: "Dana".into(),
        phone: p.clone(),
        account_ids: vec![account.clone()],
        deal_ids: vec![deal.clone()],
        time_zone: None,
        updated_at: t0(),
    };
    s.put_contact(&contact, None).await.unwrap();
    let grant = LedgerEntry::new(
        &ctx.dealer,
        &p,
        Category::Service,
        ConsentEvent::GrantedByCode,
        Actor::Staff(StaffUserId::parse("staff-1").unwrap()),
        t0(),
    );
    let state = ConsentState::from_ledger([&grant]);
    s.append(
        &ctx.dealer,
        &p,
        ConsentChange {
            expected_version: 0,
            entries: std::slice::from_ref(&grant),
            new_state: &state,
            consumed: &[],
            acted: None,
        },
    )
    .await
    .unwrap();
    // An edit made after the read: the delete from the old read conflicts.
    let edited = Contact {
        name: "Dana R.".into(),
        updated_at: t0() + Duration::minutes(1),
        ..contact.clone()
    };
    s.put_contact(&edited, Some(&contact)).await.unwrap();
    assert!(matches!(
        s.delete_contact(&contact).await,
        Err(StoreError::Conflict(_))
    ));
    s.delete_contact(&edited).await.unwrap();
    assert_eq!(s.contact(&ctx.dealer, &contact.id).await.unwrap(), None);
    assert!(s
        .contacts_by_account(&ctx.dealer, &account)
        .await
        .unwrap()
        .is_empty());
    assert!(s
        .contacts_by_deal(&ctx.dealer, &deal)
        .await
        .unwrap()
        .is_empty());
    assert!(eventually(
        || s.contacts_by_phone(&ctx.dealer, &p),
        |c| c.as_ref().is_ok_and(|c| c.is_empty())
    )
    .await
    .unwrap()
    .is_empty());
    // Deleting it again finds nothing to delete.
    assert!(matches!(
        s.delete_contact(&edited).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.history(&ctx.dealer, &p).await.unwrap(), vec![grant]);
}

/// Two edits made from the same read: the second conflicts, so no stale link stays.
pub async fn contact_edits_from_one_read_conflict<S: Store>(s: &S, ctx: &Ctx) {
    let a1 = AccountId::parse("A-1").unwrap();
    let a2 = AccountId::parse("A-2").unwrap();
    let a3 = AccountId::parse("A-3").unwrap();
    let first = Contact {
        id: ContactId::parse("c-1").unwrap(),
        dealer_id: ctx.dealer.clone(),
        name: "Alex".into(),
        phone: phone("+12025550143"),
        account_ids: vec![a1.clone()],
        deal_ids: vec![],
        time_zone: None,
        updated_at: t0(),
    };
    s.put_contact(&first, None).await.unwrap();
    // Creating it again as if new conflicts.
    assert!(matches!(
        s.put_contact(&first, None).await,
        Err(StoreError::Conflict(_))
    ));
    let edit = |account: &AccountId, minute| Contact {
        account_ids: vec![account.clone()],
        updated_at: t0() + Duration::minutes(minute),
        ..first.clone()
    };
    s.put_contact(&edit(&a2, 1), Some(&first)).await.unwrap();
    assert!(matches!(
        s.put_contact(&edit(&a3, 2), Some(&first)).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(s
        .contacts_by_account(&ctx.dealer, &a1)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        s.contacts_by_account(&ctx.dealer, &a2).await.unwrap().len(),
        1
    );
    assert!(s
        .contacts_by_account(&ctx.dealer, &a3)
        .await
        .unwrap()
        .is_empty());
}
