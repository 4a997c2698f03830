//! The contact port: contacts, and the accounts, deals and numbers they are found by.

use async_trait::async_trait;

use crate::contact::Contact;
use crate::error::StoreResult;
use crate::ids::{AccountId, ContactId, DealId, DealerId};
use crate::phone::PhoneNumber;

#[async_trait]
pub trait ContactStore: Send + Sync {
    async fn contact(&self, dealer: &DealerId, id: &ContactId) -> StoreResult<Option<Contact>>;
    /// Upserts the contact and its account/deal links, only if what is stored is still
    /// `previous` (same `updated_at`; none stored when `None`): `Conflict` otherwise, so
    /// two edits from the same read cannot leave stale links.
    async fn put_contact(&self, contact: &Contact, previous: Option<&Contact>) -> StoreResult<()>;
    /// Deletes the contact and its account and deal links, if it is still as read
    /// (`Conflict` when it was edited or deleted since).
    async fn delete_contact(&self, contact: &Contact) -> StoreResult<()>;
    async fn contacts_by_account(
        &self,
        dealer: &DealerId,
        account: &AccountId,
    ) -> StoreResult<Vec<Contact>>;
    async fn contacts_by_deal(&self, dealer: &DealerId, deal: &DealId)
        -> StoreResult<Vec<Contact>>;
    async fn contacts_by_phone(
        &self,
        dealer: &DealerId,
        phone: &PhoneNumber,
    ) -> StoreResult<Vec<Contact>>;
    /// A page of the contacts linked to an account or a deal, in contact id order, after
    /// `after`; true when more follow. (Stores override this with one bounded Query.)
    async fn linked_contacts(
        &self,
        dealer: &DealerId,
        link: &ContactLink,
        limit: u32,
        after: Option<&ContactId>,
    ) -> StoreResult<(Vec<Contact>, bool)> {
        let mut all = match link {
            ContactLink::Account(a) => self.contacts_by_account(dealer, a).await?,
            ContactLink::Deal(d) => self.contacts_by_deal(dealer, d).await?,
        };
        all.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
        all.retain(|c| after.is_none_or(|a| c.id.as_str() > a.as_str()));
        let more = all.len() > limit as usize;
        all.truncate(limit as usize);
        Ok((all, more))
    }
}

/// What a contact list is of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContactLink {
    Account(AccountId),
    Deal(DealId),
}
