//! The in-memory store: one state behind a lock, the write budget that simulates a crash,
//! and the fakes' cursors. The aggregates' modules implement the ports over it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};

use crate::approval::PendingAuthorization;
use crate::automation::Automation;
use crate::category::Category;
use crate::error::StoreError;
use crate::ids::{ContactId, DealerId, MessageId};
use crate::ledger::{ConsentState, LedgerEntry};
use crate::message::Message;
use crate::phone::PhoneNumber;
use crate::ports::*;
use crate::template::DealerTemplate;

#[derive(Default)]
pub(super) struct State {
    pub(super) dealers: HashMap<DealerId, Dealer>,
    pub(super) numbers: HashMap<PhoneNumber, DealerId>,
    pub(super) contacts: BTreeMap<(DealerId, ContactId), Contact>,
    pub(super) consent: HashMap<(DealerId, PhoneNumber), Versioned<ConsentState>>,
    pub(super) ledger: HashMap<(DealerId, PhoneNumber), Vec<LedgerEntry>>,
    pub(super) pending: HashMap<(DealerId, PhoneNumber, Category), PendingAuthorization>,
    pub(super) rates: HashMap<(String, i64), u32>,
    pub(super) messages: BTreeMap<MessageId, Message>,
    pub(super) idempotency: HashMap<(DealerId, String), IdempotencyRecord>,
    /// Carrier message ids acted on in full.
    pub(super) inbound: HashMap<String, DateTime<Utc>>,
    /// Replies' acted marks, written with their consent change.
    pub(super) acted: HashMap<String, ActedMark>,
    /// Pay requests confirmed, with the CONFIRM's carrier message id.
    pub(super) confirmations: HashMap<MessageId, String>,
    /// Writes left before the store "crashes" (every later write fails), when set.
    pub(super) writes_left: Option<usize>,
    /// Dealers' own templates by (dealer, name).
    pub(super) templates: BTreeMap<(DealerId, String), DealerTemplate>,
    /// Dealers' automations by (dealer, event type).
    pub(super) automations: BTreeMap<(DealerId, String), Automation>,
    /// Inbound texts by carrier message id.
    pub(super) texts: HashMap<String, InboundText>,
    pub(super) work: Vec<WorkItem>,
    pub(super) followed_up: HashSet<String>,
    /// The operator's texting numbers.
    pub(super) provisioned: HashMap<PhoneNumber, ProvisionedNumber>,
    /// (texting number, person) pairs the person opted out of.
    pub(super) opted_out: HashSet<(PhoneNumber, PhoneNumber)>,
    /// The newest message of a kind noted for each (dealer, number, kind).
    pub(super) latest: HashMap<(DealerId, PhoneNumber, String), MessageId>,
    /// Cap books: (version, listed message ids) by dealer, number and category.
    pub(super) cap_books: HashMap<(DealerId, PhoneNumber, Category), (u64, Vec<MessageId>)>,
}

impl State {
    /// The book's version is still the one `write` read (then it moves on), or
    /// `Conflict`.
    pub(super) fn book_version(&self, write: &CapBookWrite) -> u64 {
        let key = (write.dealer.clone(), write.phone.clone(), write.category);
        self.cap_books.get(&key).map_or(0, |(v, _)| *v)
    }

    pub(super) fn move_book(&mut self, write: &CapBookWrite) -> StoreResult<()> {
        let key = (write.dealer.clone(), write.phone.clone(), write.category);
        let version = self.book_version(write);
        if version != write.read {
            return Err(StoreError::Conflict("cap book moved on"));
        }
        self.cap_books.insert(key, (version + 1, write.ids.clone()));
        Ok(())
    }

    /// A new message and its idempotency key (`Conflict` when either exists).
    pub(super) fn insert_message(
        &mut self,
        message: &Message,
        idempotency: Option<&IdempotencyRecord>,
    ) -> StoreResult<()> {
        if self.messages.contains_key(&message.id) {
            return Err(StoreError::Conflict("message exists"));
        }
        if let Some(r) = idempotency {
            let k = (r.dealer_id.clone(), r.key.clone());
            if self
                .idempotency
                .get(&k)
                .is_some_and(|old| r.created_at <= old.created_at + IDEMPOTENCY_TTL)
            {
                return Err(StoreError::Conflict("idempotency key exists"));
            }
            self.idempotency.insert(k, r.clone());
        }
        self.messages.insert(message.id.clone(), message.clone());
        Ok(())
    }
}

impl State {
    pub(super) fn take_write(&mut self) -> StoreResult<()> {
        match &mut self.writes_left {
            None => Ok(()),
            Some(0) => Err(StoreError::unavailable(
                "in-memory store: crashed",
                std::io::Error::other("the instance was killed"),
            )),
            Some(n) => {
                *n -= 1;
                Ok(())
            }
        }
    }
}

/// Every storage port in one in-memory store.
#[derive(Clone, Default)]
pub struct InMemoryStore {
    state: Arc<Mutex<State>>,
}

impl InMemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic in another test thread must not hide this test's result.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// All messages, oldest id first.
    pub fn messages(&self) -> Vec<Message> {
        self.lock().messages.values().cloned().collect()
    }

    pub fn work_items(&self) -> Vec<WorkItem> {
        self.lock().work.clone()
    }

    pub fn ledger(&self, dealer: &DealerId, phone: &PhoneNumber) -> Vec<LedgerEntry> {
        self.lock()
            .ledger
            .get(&(dealer.clone(), phone.clone()))
            .cloned()
            .unwrap_or_default()
    }

    /// From now on the store takes `n` more writes, then fails every write as an
    /// instance killed mid-invocation would leave its work: tests of redelivery after a
    /// crash at each point.
    pub fn crash_after_writes(&self, n: usize) {
        self.lock().writes_left = Some(n);
    }

    /// Writes work again (the next delivery runs on a live instance).
    pub fn recover(&self) {
        self.lock().writes_left = None;
    }

    /// Spends one write of the crash budget (other fakes in a test's port set call this to
    /// crash with the store): `Unavailable` once it is spent.
    pub fn take_write(&self) -> StoreResult<()> {
        self.lock().take_write()
    }

    /// Changes a stored message behind the services' back (tests of races).
    pub fn put_message_raw(&self, message: Message) {
        self.lock().messages.insert(message.id.clone(), message);
    }
}

/// The fakes' cursors: `|`-joined parts in hex, so a tampered or foreign cursor is refused
/// as DynamoDB's are (`Corrupt` with key `cursor`).
pub(super) fn hex_cursor(parts: &[&str]) -> String {
    parts
        .join("|")
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub(super) fn unhex_cursor(cursor: &str) -> StoreResult<Vec<String>> {
    let bad = || StoreError::Corrupt {
        key: "cursor".into(),
        reason: "not a cursor of this list".into(),
    };
    let bytes = (0..cursor.len())
        .step_by(2)
        .map(|i| {
            cursor
                .get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(bad)?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    Ok(text.split('|').map(str::to_owned).collect())
}

pub(super) fn foreign_cursor() -> StoreError {
    StoreError::Corrupt {
        key: "cursor".into(),
        reason: "not a cursor of this list".into(),
    }
}
