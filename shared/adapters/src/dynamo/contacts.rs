//! Contacts and their account and deal links.

use super::*;

impl DynamoStore {
    fn contact_from(item: &Item) -> Result<Contact, StoreError> {
        from_item(item).map_err(corrupt("contact"))
    }

    /// The Delete of a contact's copy in a link partition, for a transaction.
    fn delete_link(&self, pk: String, sk: &str) -> Result<TransactWriteItem, StoreError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .build()
            .map_err(unavailable("building Delete"))?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    async fn linked(&self, pk: String) -> StoreResult<Vec<Contact>> {
        self.query_all(None, "PK", pk, "SK", "CONTACT#")
            .await?
            .iter()
            .map(Self::contact_from)
            .collect()
    }
}

#[async_trait]
impl ContactStore for DynamoStore {
    async fn contact(&self, dealer: &DealerId, id: &ContactId) -> StoreResult<Option<Contact>> {
        self.get(format!("DEALER#{dealer}"), &format!("CONTACT#{id}"))
            .await?
            .map(|i| Self::contact_from(&i))
            .transpose()
    }

    async fn delete_contact(&self, contact: &Contact) -> StoreResult<()> {
        let d = &contact.dealer_id;
        let sk = format!("CONTACT#{}", contact.id);
        let seen = to_attr(&serde_json::to_value(contact.updated_at).map_err(corrupt("contact"))?);
        let main = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key(format!("DEALER#{d}"), sk.clone())))
            .condition_expression("#updated = :seen")
            .expression_attribute_names("#updated", "updatedAt")
            .expression_attribute_values(":seen", seen)
            .build()
            .map_err(unavailable("building Delete"))?;
        let mut items = vec![TransactWriteItem::builder().delete(main).build()];
        for pk in link_pks(contact) {
            items.push(self.delete_link(pk, &sk)?);
        }
        transact(&self.client, items, "contact changed").await
    }

    async fn put_contact(&self, contact: &Contact, previous: Option<&Contact>) -> StoreResult<()> {
        let d = &contact.dealer_id;
        let sk = format!("CONTACT#{}", contact.id);
        let body = to_item(contact).map_err(corrupt(contact.id.as_str()))?;
        let mut main = body.clone();
        main.extend(key(format!("DEALER#{d}"), sk.clone()));
        main.insert("GSI1PK".into(), s(phone_pk(d, &contact.phone)));
        main.insert("GSI1SK".into(), s(sk.clone()));
        // Only over what was read: a new contact must not exist, an edit must find the
        // version it was made from (else its link changes would be computed on stale data).
        let main = match previous {
            None => Put::builder().condition_expression("attribute_not_exists(PK)"),
            Some(prev) => Put::builder()
                .condition_expression("#updated = :previous")
                .expression_attribute_names("#updated", "updatedAt")
                .expression_attribute_values(
                    ":previous",
                    to_attr(&serde_json::to_value(prev.updated_at).map_err(corrupt("contact"))?),
                ),
        }
        .table_name(&self.table)
        .set_item(Some(main))
        .build()
        .map_err(unavailable("building Put"))?;
        let mut items = vec![TransactWriteItem::builder().put(main).build()];
        let links = link_pks(contact);
        for pk in &links {
            let mut link = body.clone();
            link.extend(key(pk.clone(), sk.clone()));
            items.push(put(&self.table, link, None)?);
        }
        if let Some(prev) = previous {
            for pk in link_pks(prev).into_iter().filter(|pk| !links.contains(pk)) {
                items.push(self.delete_link(pk, &sk)?);
            }
        }
        // `consent::contact::MAX_LINKS` keeps an edit within one transaction; a caller
        // that skipped it is refused here, not cut short.
        if items.len() > 100 {
            return Err(StoreError::Partial(format!(
                "a contact may be on at most {} accounts and deals",
                consent::contact::MAX_LINKS
            )));
        }
        transact(&self.client, items, "contact changed").await
    }

    async fn contacts_by_account(
        &self,
        dealer: &DealerId,
        account: &AccountId,
    ) -> StoreResult<Vec<Contact>> {
        self.linked(link_pk(dealer, &ContactLink::Account(account.clone())))
            .await
    }

    async fn contacts_by_deal(
        &self,
        dealer: &DealerId,
        deal: &DealId,
    ) -> StoreResult<Vec<Contact>> {
        self.linked(link_pk(dealer, &ContactLink::Deal(deal.clone())))
            .await
    }

    async fn linked_contacts(
        &self,
        dealer: &DealerId,
        link: &ContactLink,
        limit: u32,
        after: Option<&ContactId>,
    ) -> StoreResult<(Vec<Contact>, bool)> {
        let (items, more) = self
            .query_page(
                link_pk(dealer, link),
                "CONTACT#",
                limit,
                after.map(|a| format!("CONTACT#{a}")),
            )
            .await?;
        let contacts = items
            .iter()
            .map(Self::contact_from)
            .collect::<Result<Vec<Contact>, _>>()?;
        Ok((contacts, more))
    }

    async fn contacts_by_phone(
        &self,
        dealer: &DealerId,
        phone: &PhoneNumber,
    ) -> StoreResult<Vec<Contact>> {
        self.query_all(
            Some("GSI1"),
            "GSI1PK",
            phone_pk(dealer, phone),
            "GSI1SK",
            "CONTACT#",
        )
        .await?
        .iter()
        .map(Self::contact_from)
        .collect()
    }
}
