//! Consent: an append-only ledger of events per (dealer, number, category), and the
//! state derived from it.
//!
//! The current state is a fold of the ledger ([`ConsentState::from_ledger`]); the
//! stored state is only a cache of that fold, written in the same transaction as
//! the entries it folds (see the store adapter). `may_send` is the one decision
//! every send goes through.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::category::Category;
use crate::ids::{DealerId, StaffUserId};
use crate::phone::PhoneNumber;

/// What happened to consent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConsentEvent {
    /// Staff verified the approval code the person read back.
    GrantedByCode,
    /// The person replied "Agree" to a pending request.
    GrantedByReply,
    /// Staff unsubscribed the category in the portal.
    RevokedByPortal,
    /// The person replied STOP (or a plain-language revocation).
    RevokedByReply,
    /// The carrier reported the number blocked us (e.g. Twilio 21610).
    RevokedByCarrier,
    /// The person replied START/UNSTOP/YES after a STOP.
    RestoredByStart,
}

impl ConsentEvent {
    /// The channel the change came through.
    pub fn channel(self) -> Channel {
        match self {
            ConsentEvent::GrantedByCode | ConsentEvent::RevokedByPortal => Channel::Portal,
            ConsentEvent::GrantedByReply
            | ConsentEvent::RevokedByReply
            | ConsentEvent::RestoredByStart => Channel::Sms,
            ConsentEvent::RevokedByCarrier => Channel::Carrier,
        }
    }

    pub fn is_grant(self) -> bool {
        matches!(
            self,
            ConsentEvent::GrantedByCode
                | ConsentEvent::GrantedByReply
                | ConsentEvent::RestoredByStart
        )
    }
}

/// Who made the change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "id", rename_all = "kebab-case")]
pub enum Actor {
    /// A staff user of the portal.
    Staff(StaffUserId),
    /// The phone itself (a reply).
    Phone,
    /// The carrier (a block report).
    Carrier,
}

/// One append-only ledger entry. Entries are never updated or deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LedgerEntry {
    /// Unique and time-ordered (ULID).
    pub id: String,
    pub dealer_id: DealerId,
    pub phone: PhoneNumber,
    pub category: Category,
    pub event: ConsentEvent,
    pub actor: Actor,
    pub at: DateTime<Utc>,
    /// The carrier message id of the reply, or the approval request id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
    /// Version of the disclosure text the person agreed to (grants).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disclosure_version: Option<String>,
    /// The disclosure exactly as the person was shown it (a code text with its code
    /// masked), and its SHA-256: what a dealer shows when consent is disputed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disclosure: Option<Disclosure>,
    /// The person's own words, for a change made by their reply ("STOP", "Agree",
    /// "please stop texting me"), as received (at most [`MAX_WORDS_CHARS`] characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub words: Option<String>,
    /// Where this entry stands in the number's ledger with this dealer: strictly increasing
    /// with every change (the state's version after the change, times [`SEQUENCE_STRIDE`],
    /// plus the entry's place in it), so a consumer of `ConsentChanged` (EventBridge keeps
    /// no order) can order them. Set when the entry is appended; absent on entries written
    /// before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<u64>,
}

/// Room for the entries of one change in a [`LedgerEntry::sequence`] (a change writes at
/// most one entry per category).
pub const SEQUENCE_STRIDE: u64 = 16;

/// How much of a reply a ledger entry keeps (a long SMS is 10 segments of 160).
pub const MAX_WORDS_CHARS: usize = 1600;

/// How a consent change reached the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Channel {
    /// A text message from the person.
    Sms,
    /// Staff in the dealer portal (a verified code, an unsubscribe).
    Portal,
    /// The carrier's report that the number blocks the sender.
    Carrier,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Sms => "sms",
            Channel::Portal => "portal",
            Channel::Carrier => "carrier",
        }
    }
}

/// A disclosure as sent, with its fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Disclosure {
    pub text: String,
    pub sha256: String,
}

impl Disclosure {
    pub fn of(text: impl Into<String>) -> Self {
        use sha2::Digest;
        let text = text.into();
        let sha256 = crate::approval::hex(&sha2::Sha256::digest(text.as_bytes()));
        Self { text, sha256 }
    }
}

impl LedgerEntry {
    /// A new entry (fresh ULID) without evidence or disclosure.
    pub fn new(
        dealer_id: &DealerId,
        phone: &PhoneNumber,
        category: Category,
        event: ConsentEvent,
        actor: Actor,
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            id: crate::ids::new_ulid(),
            dealer_id: dealer_id.clone(),
            phone: phone.clone(),
            category,
            event,
            actor,
            at,
            evidence: None,
            disclosure_version: None,
            disclosure: None,
            words: None,
            sequence: None,
        }
    }

    /// The carrier message id or approval request id behind the change.
    pub fn with_evidence(mut self, evidence: impl Into<String>) -> Self {
        self.evidence = Some(evidence.into());
        self
    }

    /// The disclosure version the person agreed to.
    pub fn with_disclosure(mut self, version: impl Into<String>) -> Self {
        self.disclosure_version = Some(version.into());
        self
    }

    /// The disclosure text the person was shown (None: not recorded, e.g. older requests).
    pub fn with_disclosure_text(mut self, text: Option<&str>) -> Self {
        self.disclosure = text.map(Disclosure::of);
        self
    }

    /// The person's words that made the change (kept to [`MAX_WORDS_CHARS`]).
    pub fn with_words(mut self, words: &str) -> Self {
        self.words = Some(words.chars().take(MAX_WORDS_CHARS).collect());
        self
    }
}

/// The state of one category for one number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct CategoryConsent {
    pub status: ConsentStatus,
    /// The event that set the status (None while never touched).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_event: Option<ConsentEvent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
    /// A STOP or carrier block took away an authorization here, so START may give it
    /// back. False when the category was revoked without ever being authorized (a
    /// STOP revokes every category): START must not grant what was never given.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub restorable: bool,
}

/// Ledger-derived status. `pending` is not here: it comes from a live approval request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ConsentStatus {
    #[default]
    None,
    Authorized,
    Revoked,
}

/// Consent of one number with one dealer, all categories.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ConsentState {
    categories: [CategoryConsent; 4],
}

/// Why a send was refused, or that it may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    NeverAuthorized,
    Revoked {
        by: ConsentEvent,
        since: DateTime<Utc>,
    },
}

impl Decision {
    pub fn is_allowed(self) -> bool {
        self == Decision::Allowed
    }
}

/// The position of a category's state in the stored form (`categories[i]`), for
/// stores that check consent inside a conditional write.
pub fn slot(c: Category) -> usize {
    index(c)
}

fn index(c: Category) -> usize {
    match c {
        Category::Accounting => 0,
        Category::Service => 1,
        Category::Sales => 2,
        Category::Marketing => 3,
    }
}

impl ConsentState {
    /// The fold of a ledger, in order.
    pub fn from_ledger<'a>(entries: impl IntoIterator<Item = &'a LedgerEntry>) -> Self {
        let mut state = Self::default();
        for e in entries {
            state.apply(e);
        }
        state
    }

    /// Applies one entry. Applying an entry that changes nothing is harmless.
    pub fn apply(&mut self, entry: &LedgerEntry) {
        let slot = &mut self.categories[index(entry.category)];
        let status = match entry.event {
            ConsentEvent::GrantedByCode | ConsentEvent::GrantedByReply => ConsentStatus::Authorized,
            ConsentEvent::RestoredByStart => {
                // START restores only what a STOP (or carrier block) removed: a portal
                // unsubscribe or a never-given consent stays as it is.
                if !Self::restorable(*slot) {
                    return;
                }
                ConsentStatus::Authorized
            }
            ConsentEvent::RevokedByPortal
            | ConsentEvent::RevokedByReply
            | ConsentEvent::RevokedByCarrier => ConsentStatus::Revoked,
        };
        let restorable = match entry.event {
            ConsentEvent::RevokedByReply | ConsentEvent::RevokedByCarrier => {
                slot.status == ConsentStatus::Authorized || Self::restorable(*slot)
            }
            _ => false,
        };
        *slot = CategoryConsent {
            status,
            last_event: Some(entry.event),
            since: Some(entry.at),
            restorable,
        };
    }

    fn restorable(c: CategoryConsent) -> bool {
        c.status == ConsentStatus::Revoked
            && c.restorable
            && matches!(
                c.last_event,
                Some(ConsentEvent::RevokedByReply | ConsentEvent::RevokedByCarrier)
            )
    }

    pub fn get(&self, category: Category) -> CategoryConsent {
        self.categories[index(category)]
    }

    /// May a text of `category` go to this number now? Only an authorization that no
    /// later revocation undid says yes.
    pub fn may_send(&self, category: Category) -> Decision {
        let c = self.get(category);
        match (c.status, c.last_event, c.since) {
            (ConsentStatus::Authorized, _, _) => Decision::Allowed,
            (ConsentStatus::Revoked, Some(by), Some(since)) => Decision::Revoked { by, since },
            _ => Decision::NeverAuthorized,
        }
    }

    /// Categories a carrier block (`by`) records an entry for: every category whose
    /// latest event is not already that revocation; a repeated block records nothing.
    pub fn categories_to_revoke(&self, by: ConsentEvent) -> Vec<Category> {
        Category::ALL
            .into_iter()
            .filter(|c| self.get(*c).last_event != Some(by))
            .collect()
    }

    /// Categories a STOP the person texted at `at` records an entry for: every category
    /// but those a STOP texted at or after it already revoked. A STOP after a portal
    /// unsubscribe is recorded (it is the person's own word); a STOP from a number that
    /// never consented gets an entry per category, so a later grant needs a new, explicit
    /// consent. A second STOP is recorded too: a carrier that keeps no order may still
    /// deliver a START the person texted between the two, and that START must find the
    /// later STOP on the ledger. A STOP delivered after a later one (or delivered again)
    /// records nothing: the later word stands.
    pub fn categories_a_stop_revokes(&self, at: DateTime<Utc>) -> Vec<Category> {
        Category::ALL
            .into_iter()
            .filter(|c| {
                let c = self.get(*c);
                !(c.last_event == Some(ConsentEvent::RevokedByReply)
                    && c.since.is_some_and(|since| since >= at))
            })
            .collect()
    }

    /// Whether `entry` only repeats the revocation its category already has (a second
    /// STOP, a second carrier block): on the ledger, but no change the person is told of.
    pub fn repeats(&self, entry: &LedgerEntry) -> bool {
        matches!(
            entry.event,
            ConsentEvent::RevokedByReply | ConsentEvent::RevokedByCarrier
        ) && self.get(entry.category).last_event == Some(entry.event)
    }

    /// Whether the person texted a STOP after `at`.
    pub fn stopped_after(&self, at: DateTime<Utc>) -> bool {
        self.categories.iter().any(|c| {
            c.last_event == Some(ConsentEvent::RevokedByReply) && c.since.is_some_and(|s| s > at)
        })
    }

    /// Categories a START would restore.
    pub fn categories_to_restore(&self) -> Vec<Category> {
        Category::ALL
            .into_iter()
            .filter(|c| Self::restorable(self.get(*c)))
            .collect()
    }

    /// Categories currently authorized.
    pub fn authorized(&self) -> Vec<Category> {
        Category::ALL
            .into_iter()
            .filter(|c| self.get(*c).status == ConsentStatus::Authorized)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::StatusReason;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
            + chrono::Duration::minutes(minute.into())
    }

    fn entry(category: Category, event: ConsentEvent, minute: u32) -> LedgerEntry {
        LedgerEntry {
            id: format!("e{minute:05}"),
            dealer_id: DealerId::parse("d1").unwrap(),
            phone: PhoneNumber::from_e164("+14155552671").unwrap(),
            category,
            event,
            actor: Actor::Phone,
            at: at(minute),
            evidence: None,
            disclosure_version: None,
            disclosure: None,
            words: None,
            sequence: None,
        }
    }

    #[test]
    fn nothing_is_allowed_before_a_grant() {
        let s = ConsentState::default();
        for c in Category::ALL {
            assert_eq!(s.may_send(c), Decision::NeverAuthorized);
        }
    }

    #[test]
    fn a_grant_allows_only_its_category() {
        let s = ConsentState::from_ledger(&[entry(
            Category::Accounting,
            ConsentEvent::GrantedByCode,
            1,
        )]);
        assert!(s.may_send(Category::Accounting).is_allowed());
        assert_eq!(s.may_send(Category::Marketing), Decision::NeverAuthorized);
    }

    #[test]
    fn stop_then_start_restores_but_portal_unsubscribe_stays() {
        let ledger = [
            entry(Category::Accounting, ConsentEvent::GrantedByCode, 1),
            entry(Category::Service, ConsentEvent::GrantedByCode, 2),
            entry(Category::Service, ConsentEvent::RevokedByPortal, 3),
            entry(Category::Accounting, ConsentEvent::RevokedByReply, 4),
        ];
        let s = ConsentState::from_ledger(&ledger);
        assert_eq!(s.categories_to_restore(), vec![Category::Accounting]);
        assert_eq!(
            StatusReason::refusing(s.may_send(Category::Accounting)),
            Some(StatusReason::RevokedByReply)
        );
        let mut s2 = s.clone();
        s2.apply(&entry(
            Category::Accounting,
            ConsentEvent::RestoredByStart,
            5,
        ));
        s2.apply(&entry(Category::Service, ConsentEvent::RestoredByStart, 5));
        assert!(s2.may_send(Category::Accounting).is_allowed());
        assert!(!s2.may_send(Category::Service).is_allowed());
    }

    #[test]
    fn start_does_not_grant_what_a_stop_revoked_without_a_prior_authorization() {
        // GIVEN accounting authorized, then a STOP (which revokes every category)
        let s = ConsentState::from_ledger(&[
            entry(Category::Accounting, ConsentEvent::GrantedByCode, 1),
            entry(Category::Accounting, ConsentEvent::RevokedByReply, 2),
            entry(Category::Marketing, ConsentEvent::RevokedByReply, 2),
        ]);
        // THEN START would restore accounting only
        assert_eq!(s.categories_to_restore(), vec![Category::Accounting]);
        // AND a START entry for marketing changes nothing
        let mut s2 = s.clone();
        s2.apply(&entry(
            Category::Marketing,
            ConsentEvent::RestoredByStart,
            3,
        ));
        assert_eq!(
            StatusReason::refusing(s2.may_send(Category::Marketing)),
            Some(StatusReason::RevokedByReply)
        );
        // AND a carrier block after the STOP keeps accounting restorable
        let mut s3 = s.clone();
        s3.apply(&entry(
            Category::Accounting,
            ConsentEvent::RevokedByCarrier,
            3,
        ));
        assert_eq!(s3.categories_to_restore(), vec![Category::Accounting]);
    }

    #[test]
    fn a_stop_records_every_category_it_does_not_already_cover() {
        // GIVEN sales granted, marketing unsubscribed in the portal, service stopped at minute 3
        let s = ConsentState::from_ledger(&[
            entry(Category::Sales, ConsentEvent::GrantedByReply, 1),
            entry(Category::Marketing, ConsentEvent::RevokedByPortal, 2),
            entry(Category::Service, ConsentEvent::RevokedByReply, 3),
        ]);
        // THEN a STOP texted at minute 2 (delivered late) records the person's word for
        // every category but the one a later STOP covers
        assert_eq!(
            s.categories_a_stop_revokes(at(2)),
            vec![Category::Accounting, Category::Sales, Category::Marketing]
        );
        // AND after a STOP at minute 4, the same STOP again records nothing
        let mut after = s.clone();
        for c in s.categories_a_stop_revokes(at(4)) {
            after.apply(&entry(c, ConsentEvent::RevokedByReply, 4));
        }
        assert!(after.categories_a_stop_revokes(at(4)).is_empty());
        assert!(after.categories_a_stop_revokes(at(3)).is_empty());
        // AND START restores only sales, the one the STOP took away
        assert_eq!(after.categories_to_restore(), vec![Category::Sales]);
    }

    #[test]
    fn a_second_stop_is_recorded_so_a_start_texted_between_finds_it() {
        // GIVEN sales granted, then a STOP at minute 2 (every category)
        let mut s =
            ConsentState::from_ledger(&[entry(Category::Sales, ConsentEvent::GrantedByReply, 1)]);
        for c in s.categories_a_stop_revokes(at(2)) {
            s.apply(&entry(c, ConsentEvent::RevokedByReply, 2));
        }
        // WHEN the person's second STOP (minute 5) comes before their START (minute 4)
        let second: Vec<_> = s
            .categories_a_stop_revokes(at(5))
            .into_iter()
            .map(|c| entry(c, ConsentEvent::RevokedByReply, 5))
            .collect();
        // THEN it is recorded for every category, though it changes no status
        assert_eq!(second.len(), Category::ALL.len());
        assert!(second.iter().all(|e| s.repeats(e)));
        for e in &second {
            s.apply(e);
        }
        // AND sales is still START's to restore, but the START texted before it finds it
        assert_eq!(s.categories_to_restore(), vec![Category::Sales]);
        assert_eq!(s.get(Category::Sales).since, Some(at(5)));
        assert!(!s.may_send(Category::Sales).is_allowed());
    }

    #[test]
    fn only_a_revocation_over_the_same_revocation_repeats() {
        let s = ConsentState::from_ledger(&[
            entry(Category::Sales, ConsentEvent::GrantedByReply, 1),
            entry(Category::Service, ConsentEvent::RevokedByReply, 2),
            entry(Category::Marketing, ConsentEvent::RevokedByPortal, 3),
        ]);
        assert!(s.repeats(&entry(Category::Service, ConsentEvent::RevokedByReply, 4)));
        assert!(!s.repeats(&entry(Category::Marketing, ConsentEvent::RevokedByReply, 4)));
        assert!(!s.repeats(&entry(Category::Service, ConsentEvent::RevokedByCarrier, 4)));
        assert!(!s.repeats(&entry(Category::Sales, ConsentEvent::GrantedByReply, 4)));
    }

    fn arb_event() -> impl Strategy<Value = ConsentEvent> {
        prop_oneof![
            Just(ConsentEvent::GrantedByCode),
            Just(ConsentEvent::GrantedByReply),
            Just(ConsentEvent::RevokedByPortal),
            Just(ConsentEvent::RevokedByReply),
            Just(ConsentEvent::RevokedByCarrier),
            Just(ConsentEvent::RestoredByStart),
        ]
    }

    fn arb_category() -> impl Strategy<Value = Category> {
        prop_oneof![
            Just(Category::Accounting),
            Just(Category::Service),
            Just(Category::Sales),
            Just(Category::Marketing),
        ]
    }

    fn arb_ledger() -> impl Strategy<Value = Vec<LedgerEntry>> {
        prop::collection::vec((arb_category(), arb_event()), 0..40).prop_map(|v| {
            v.into_iter()
                .enumerate()
                .map(|(i, (c, e))| entry(c, e, i as u32))
                .collect()
        })
    }

    proptest! {
        /// Replaying the whole ledger equals applying entries one at a time onto a
        /// state restored from any prefix (the cached state agrees with the ledger).
        #[test]
        fn replay_equals_incremental(ledger in arb_ledger(), split in 0usize..40) {
            let split = split.min(ledger.len());
            let mut incremental = ConsentState::from_ledger(&ledger[..split]);
            let json = serde_json::to_string(&incremental).unwrap();
            incremental = serde_json::from_str(&json).unwrap();
            for e in &ledger[split..] {
                incremental.apply(e);
            }
            prop_assert_eq!(incremental, ConsentState::from_ledger(&ledger));
        }

        /// No sequence lets may_send say yes after the latest revocation of a
        /// category unless a later grant (code, Agree, or START after a STOP) exists.
        #[test]
        fn no_yes_after_revocation_without_later_grant(ledger in arb_ledger()) {
            let state = ConsentState::from_ledger(&ledger);
            for c in Category::ALL {
                let allowed = state.may_send(c).is_allowed();
                let mine: Vec<&LedgerEntry> = ledger.iter().filter(|e| e.category == c).collect();
                let last_revocation = mine.iter().rposition(|e| !e.event.is_grant());
                let grant_after = |from: usize| mine[from..].iter().any(|e| e.event.is_grant());
                match last_revocation {
                    Some(i) => {
                        if allowed {
                            prop_assert!(grant_after(i + 1), "allowed after revocation with no later grant");
                            // A START only counts after a STOP or carrier block, never after a portal unsubscribe.
                            if mine[i].event == ConsentEvent::RevokedByPortal {
                                prop_assert!(mine[i + 1..].iter().any(|e| matches!(e.event, ConsentEvent::GrantedByCode | ConsentEvent::GrantedByReply)));
                            }
                        }
                    }
                    None => {
                        if allowed {
                            prop_assert!(mine.iter().any(|e| matches!(e.event, ConsentEvent::GrantedByCode | ConsentEvent::GrantedByReply)));
                        }
                    }
                }
            }
        }
    }
}
