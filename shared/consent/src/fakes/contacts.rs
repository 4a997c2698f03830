//! Contacts and their account and deal links.

use super::*;

#[async_trait]
impl ContactStore for InMemoryStore {
    async fn contact(&self, dealer: &DealerId, id: &ContactId) -> StoreResult<Option<Contact>> {
        Ok(self
            .lock()
            .contacts
            .get(&(dealer.clone(), id.clone()))
            .cloned())
    }

    async fn put_contact(&self, contact: &Contact, previous: Option<&Contact>) -> StoreResult<()> {
        let mut s = self.lock();
        let stored = s
            .contacts
            .get(&(contact.dealer_id.clone(), contact.id.clone()))
            .map(|c| c.updated_at);
        if stored != previous.map(|p| p.updated_at) {
            return Err(StoreError::Conflict("contact changed"));
        }
        s.contacts.insert(
            (contact.dealer_id.clone(), contact.id.clone()),
            contact.clone(),
        );
        Ok(())
    }

    async fn delete_contact(&self, contact: &Contact) -> StoreResult<()> {
        let mut s = self.lock();
        let k = (contact.dealer_id.clone(), contact.id.clone());
        if s.contacts.get(&k).map(|c| c.updated_at) != Some(contact.updated_at) {
            return Err(StoreError::Conflict("contact changed"));
        }
        s.contacts.remove(&k);
        Ok(())
    }

    async fn contacts_by_account(
        &self,
        dealer: &DealerId,
        account: &AccountId,
    ) -> StoreResult<Vec<Contact>> {
        Ok(self
            .lock()
            .contacts
            .values()
            .filter(|c| &c.dealer_id == dealer && c.account_ids.contains(account))
            .cloned()
            .collect())
    }

    async fn contacts_by_deal(
        &self,
        dealer: &DealerId,
        deal: &DealId,
    ) -> StoreResult<Vec<Contact>> {
        Ok(self
            .lock()
            .contacts
            .values()
            .filter(|c| &c.dealer_id == dealer && c.deal_ids.contains(deal))
            .cloned()
            .collect())
    }

    async fn contacts_by_phone(
        &self,
        dealer: &DealerId,
        phone: &PhoneNumber,
    ) -> StoreResult<Vec<Contact>> {
        Ok(self
            .lock()
            .contacts
            .values()
            .filter(|c| &c.dealer_id == dealer && &c.phone == phone)
            .cloned()
            .collect())
    }
}
