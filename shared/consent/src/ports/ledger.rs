//! Consent ports: reading a number's consent state and ledger, appending to the ledger
//! under optimistic concurrency, opt-outs by pair of numbers, and the dealer-wide
//! export for audits.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::category::Category;
use crate::error::StoreResult;
use crate::ids::DealerId;
use crate::ledger::{ConsentState, LedgerEntry};
use crate::phone::PhoneNumber;

use super::inbound::ActedMark;

/// Consent state with the version it was read at (optimistic concurrency).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Versioned<T> {
    pub value: T,
    pub version: u64,
}

/// Identifies a pending authorization to consume in the same write as a grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingKey {
    pub category: Category,
    pub request_id: String,
}

#[async_trait]
pub trait ConsentReader: Send + Sync {
    async fn consent(
        &self,
        dealer: &DealerId,
        phone: &PhoneNumber,
    ) -> StoreResult<Versioned<ConsentState>>;
    /// Many numbers at once (BatchGetItem): numbers never touched map to the default state.
    async fn consents(
        &self,
        dealer: &DealerId,
        phones: &[PhoneNumber],
    ) -> StoreResult<HashMap<PhoneNumber, ConsentState>>;
    /// The whole ledger of a number, oldest first.
    async fn history(
        &self,
        dealer: &DealerId,
        phone: &PhoneNumber,
    ) -> StoreResult<Vec<LedgerEntry>>;
    /// A page of the ledger of a number, oldest first, after the entry `after`; true when
    /// more follow. (Stores override this with one bounded Query.)
    async fn history_page(
        &self,
        dealer: &DealerId,
        phone: &PhoneNumber,
        limit: u32,
        after: Option<&str>,
    ) -> StoreResult<(Vec<LedgerEntry>, bool)> {
        let mut all = self.history(dealer, phone).await?;
        all.retain(|e| after.is_none_or(|a| e.id.as_str() > a));
        let more = all.len() > limit as usize;
        all.truncate(limit as usize);
        Ok((all, more))
    }
    /// Did the person at `to` opt out of texts from the texting number `from` (a STOP or
    /// a carrier block), whichever dealer held the number then? Carriers refuse such
    /// texts until the person texts START, so the block belongs to the pair of numbers
    /// and stays when the texting number changes owner.
    async fn opted_out(&self, from: &PhoneNumber, to: &PhoneNumber) -> StoreResult<bool>;
    /// What a send checks before it texts `phone` from `from`: the dealer's consent state
    /// and whether the person opted out of that number. Stores answer both in one request.
    async fn consent_to_text(
        &self,
        dealer: &DealerId,
        phone: &PhoneNumber,
        from: &PhoneNumber,
    ) -> StoreResult<(Versioned<ConsentState>, bool)> {
        Ok((
            self.consent(dealer, phone).await?,
            self.opted_out(from, phone).await?,
        ))
    }
}

/// One page of a dealer's ledger.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LedgerPage {
    pub entries: Vec<LedgerEntry>,
    /// Pass back to get the next page; None at the end.
    pub next_cursor: Option<String>,
}

/// The dealer-wide ledger by time, for audits (Query GSI2 `DEALER#d#LEDGER`).
#[async_trait]
pub trait LedgerExport: Send + Sync {
    /// The dealer's entries with `from <= at < to`, oldest first (ties by id), at most
    /// `limit` (1 or more) per page. `cursor` is a page's `next_cursor`; one that did
    /// not come from this dealer's export is `Corrupt` with key `cursor`.
    async fn ledger_between(
        &self,
        dealer: &DealerId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
        cursor: Option<&str>,
    ) -> StoreResult<LedgerPage>;
}

/// One consent change for [`ConsentWriter::append`].
#[derive(Debug, Clone, Copy)]
pub struct ConsentChange<'a> {
    /// The state's version the change was decided on (0: none stored yet).
    pub expected_version: u64,
    pub entries: &'a [LedgerEntry],
    /// The state the entries fold to.
    pub new_state: &'a ConsentState,
    /// Pending authorizations the change consumes (deleted with it, if still the same request).
    pub consumed: &'a [PendingKey],
    /// The reply whose effect this is, if a reply's, and what it changed.
    pub acted: Option<Acted<'a>>,
}

/// A reply's acted mark, written with the consent change it made.
#[derive(Debug, Clone, Copy)]
pub struct Acted<'a> {
    /// The reply's carrier message id.
    pub carrier_message_id: &'a str,
    /// What the person is told the reply changed (a repeated STOP is on the ledger but
    /// changes nothing).
    pub mark: &'a ActedMark,
}

#[async_trait]
pub trait ConsentWriter: Send + Sync {
    /// Appends ledger entries and stores the state they fold to, in one transaction,
    /// only if the stored version is still `expected_version` (else `Conflict`).
    /// Pending authorizations named in `consumed` are deleted in the same transaction.
    /// With `acted`, the reply's acted mark is written in the
    /// same transaction, only if it is not there yet (else `Conflict`): the effect and its
    /// mark exist together or not at all.
    async fn append(
        &self,
        dealer: &DealerId,
        phone: &PhoneNumber,
        change: ConsentChange<'_>,
    ) -> StoreResult<()>;
    /// Records (STOP, carrier block) or lifts (START) the opt-out of `to` from `from`.
    async fn set_opted_out(
        &self,
        from: &PhoneNumber,
        to: &PhoneNumber,
        opted_out: bool,
        at: DateTime<Utc>,
    ) -> StoreResult<()>;
}
