//! Texting authorization from the portal: request a code, verify it, unsubscribe,
//! list contacts with their status, consent history.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::approval::{
    ApprovalCode, CodeHasher, PendingAuthorization, CODE_MASK, CODE_TTL, MAX_ATTEMPTS,
    MAX_CODES_PER_DEALER_PER_HOUR, MAX_CODES_PER_NUMBER_PER_DAY,
};
use crate::category::Category;
use crate::error::{DomainError, StoreError};
use crate::ids::{new_ulid, ContactId, DealerId, StaffUserId};
use crate::ledger::{Actor, ConsentEvent, ConsentState, ConsentStatus, LedgerEntry};
use crate::message::{MessageKind, SealedCode};
use crate::phone::PhoneNumber;
use crate::ports::{
    CodeKey, ConsentReader, ConsentWriter, Contact, ContactStore, DealerStore, MessageStore,
    OutboundQueue, PendingKey, PendingStore, RateDecision, RateLimiter,
};

use super::{require_dealer, store_and_queue, system_message, update_consent, Outbox};

/// The ports the authorization use cases need.
pub struct AuthorizationPorts<'a> {
    pub dealers: &'a dyn DealerStore,
    pub contacts: &'a dyn ContactStore,
    pub consent: &'a dyn ConsentReader,
    pub consent_writer: &'a dyn ConsentWriter,
    pub pending: &'a dyn PendingStore,
    pub limits: &'a dyn RateLimiter,
    pub messages: &'a dyn MessageStore,
    pub queue: &'a dyn OutboundQueue,
    /// The approval-code key; waited for only by the operations that need it.
    pub hasher: &'a dyn CodeKey,
    /// Texting numbers handed to dealers on first use (empty in production).
    pub number_pool: &'a [PhoneNumber],
}

/// The version of the consent disclosure shown in code texts and Agree requests.
pub fn disclosure_version(category: Category) -> String {
    format!("{category}-v1")
}

/// The code text as stored and shown to staff: the code itself is masked
/// ([`CODE_MASK`]); delivery puts the sealed code back for the carrier call only.
/// States the dealer, the category, the code, that AGREE works and how to stop.
pub fn code_text(dealer_name: &str, category: Category) -> String {
    let recurring = if category == Category::Marketing {
        " recurring automated marketing texts (consent not required to buy)"
    } else {
        ""
    };
    format!(
        "{dealer_name}: your approval code for {label} texts{recurring} is {code}. Give it to our staff or reply AGREE to accept. Expires in 10 min. Msg&data rates may apply. Reply HELP for help, STOP to opt out.",
        label = category.label(),
        code = CODE_MASK,
    )
}

/// What the portal sees for one category of one contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthorizationView {
    None,
    Pending,
    Authorized,
    Revoked,
}

/// A contact with its per-category authorization.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContactView {
    #[serde(flatten)]
    pub contact: Contact,
    pub authorizations: HashMap<Category, AuthorizationView>,
    /// When each pending category's approval code expires (only those pending).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub pending_expires_at: BTreeMap<Category, DateTime<Utc>>,
    /// The zone quiet hours and schedules are read in: the contact's own, else the
    /// first of its area code's (none for a non-geographic number).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_time_zone: Option<String>,
}

/// Combines contacts with their consent and live pending requests (two batched reads).
pub async fn contact_views(
    ports: &AuthorizationPorts<'_>,
    dealer: &DealerId,
    contacts: Vec<Contact>,
    now: DateTime<Utc>,
) -> Result<Vec<ContactView>, DomainError> {
    let mut phones: Vec<PhoneNumber> = contacts.iter().map(|c| c.phone.clone()).collect();
    phones.sort();
    phones.dedup();
    let states = ports.consent.consents(dealer, &phones).await?;
    let pending = ports.pending.pending_for_numbers(dealer, &phones).await?;
    Ok(contacts
        .into_iter()
        .map(|contact| {
            let state = states.get(&contact.phone).cloned().unwrap_or_default();
            let mut pending_expires_at = BTreeMap::new();
            let authorizations = Category::ALL
                .into_iter()
                .map(|c| {
                    let live = pending
                        .iter()
                        .filter(|p| p.phone == contact.phone && p.category == c && p.is_live(now))
                        .map(|p| p.expires_at)
                        .max();
                    let shown = view(&state, c, live.is_some());
                    if let (AuthorizationView::Pending, Some(at)) = (shown, live) {
                        pending_expires_at.insert(c, at);
                    }
                    (c, shown)
                })
                .collect();
            let local_time_zone = local_zone(&contact);
            ContactView {
                contact,
                authorizations,
                pending_expires_at,
                local_time_zone,
            }
        })
        .collect())
}

fn local_zone(contact: &Contact) -> Option<String> {
    contact
        .time_zone
        .clone()
        .or_else(|| {
            crate::quiet_hours::area_info(contact.phone.area_code())
                .and_then(|a| a.time_zones.first().cloned())
        })
        .and_then(|tz| tz.name().map(str::to_owned))
}

fn view(state: &ConsentState, category: Category, pending: bool) -> AuthorizationView {
    match state.get(category).status {
        ConsentStatus::Authorized => AuthorizationView::Authorized,
        _ if pending => AuthorizationView::Pending,
        ConsentStatus::Revoked => AuthorizationView::Revoked,
        ConsentStatus::None => AuthorizationView::None,
    }
}

/// The dealer's contact, or `NotFound` (another dealer's contacts are not found either).
pub async fn contact(
    ports: &AuthorizationPorts<'_>,
    dealer: &DealerId,
    id: &ContactId,
) -> Result<Contact, DomainError> {
    ports
        .contacts
        .contact(dealer, id)
        .await?
        .ok_or(DomainError::NotFound { what: "contact" })
}

/// The answer to an authorization request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requested {
    pub expires_at: DateTime<Utc>,
    /// True when an existing live request was texted again instead of a new one.
    pub resent: bool,
}

/// Staff clicked Authorize: text the person a code (or resend the live request's
/// text with a fresh code), within the per-number and per-dealer limits.
pub async fn request(
    ports: &AuthorizationPorts<'_>,
    dealer_id: &DealerId,
    staff: &StaffUserId,
    contact_id: &ContactId,
    category: Category,
    now: DateTime<Utc>,
) -> Result<Requested, DomainError> {
    let dealer = require_dealer(ports.dealers, dealer_id, ports.number_pool).await?;
    let contact = contact(ports, dealer_id, contact_id).await?;
    let phone = &contact.phone;
    let (state, opted_out) = ports
        .consent
        .consent_to_text(dealer_id, phone, &dealer.texting_number)
        .await?;
    // The carrier would refuse the code text: say so now, text nothing.
    if opted_out {
        return Err(DomainError::OptedOut {
            from: dealer.texting_number.clone(),
        });
    }
    if state.value.get(category).status == ConsentStatus::Authorized {
        return Err(DomainError::Conflict(format!(
            "the person has already authorized {category} texts"
        )));
    }
    // The key before the rate counters: a key still on its way must not spend a send.
    let hasher = ports.hasher.key().await?;
    for (key, limit, window) in [
        (
            format!("code#{dealer_id}#{phone}"),
            MAX_CODES_PER_NUMBER_PER_DAY,
            Duration::from_secs(24 * 3600),
        ),
        (
            format!("code#{dealer_id}"),
            MAX_CODES_PER_DEALER_PER_HOUR,
            Duration::from_secs(3600),
        ),
    ] {
        if let RateDecision::Limited { retry_after } =
            ports.limits.acquire(&key, limit, window, now).await?
        {
            return Err(DomainError::RateLimited { retry_after });
        }
    }
    let existing = ports.pending.pending(dealer_id, phone, category).await?;
    let code = ApprovalCode::generate().map_err(|e| {
        DomainError::Store(StoreError::unavailable("operating system random source", e))
    })?;
    // A repeat inside the validity window keeps the same request (same expiry and
    // tries); its text carries a fresh code, since the old one is only stored hashed.
    let (request_id, created_at, expires_at, attempts, sends, resent) = match existing {
        Some(p) if p.is_live(now) => (
            p.request_id,
            p.created_at,
            p.expires_at,
            p.attempts,
            p.sends + 1,
            true,
        ),
        _ => (new_ulid(), now, now + CODE_TTL, 0, 1, false),
    };
    let pending = PendingAuthorization {
        dealer_id: dealer_id.clone(),
        phone: phone.clone(),
        category,
        code_hash: hasher.hash(dealer_id, phone, category, &request_id, &code),
        request_id,
        contact_id: contact.id.clone(),
        requested_by: staff.clone(),
        created_at,
        expires_at,
        attempts,
        sends,
        disclosure_version: disclosure_version(category),
        disclosure_text: Some(code_text(&dealer.name, category)),
    };
    if resent {
        // Only the code and the send count change: tries already counted stay counted.
        match ports.pending.replace_code(&pending).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => {
                return Err(DomainError::Conflict(
                    "the authorization request changed meanwhile; try again".into(),
                ))
            }
            Err(e) => return Err(e.into()),
        }
    } else {
        match ports.pending.put_pending(&pending).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => {
                return Err(DomainError::Conflict(
                    "another authorization request for this category was just made; its code is on the way"
                        .into(),
                ))
            }
            Err(e) => return Err(e.into()),
        }
    }
    let mut text = system_message(
        &dealer,
        phone,
        category,
        MessageKind::ApprovalCode,
        code_text(&dealer.name, category),
        now,
    );
    text.code = Some(SealedCode {
        sealed: hasher.seal(&code, text.id.as_str()).map_err(|e| {
            DomainError::Store(StoreError::unavailable("sealing the approval code", e))
        })?,
        request_id: pending.request_id.clone(),
        sends: Some(pending.sends),
    });
    store_and_queue(
        Outbox {
            messages: ports.messages,
            queue: ports.queue,
        },
        &text,
        now,
    )
    .await?;
    Ok(Requested { expires_at, resent })
}

/// Staff typed the Approval #: right code -> authorized (ledger names the staff user);
/// wrong -> `WrongCode` with tries left; expired or used up -> `CodeExpired`.
pub async fn verify(
    ports: &AuthorizationPorts<'_>,
    dealer_id: &DealerId,
    staff: &StaffUserId,
    contact_id: &ContactId,
    category: Category,
    code: &ApprovalCode,
    now: DateTime<Utc>,
) -> Result<LedgerEntry, DomainError> {
    let contact = contact(ports, dealer_id, contact_id).await?;
    let phone = &contact.phone;
    let pending = ports
        .pending
        .pending(dealer_id, phone, category)
        .await?
        .ok_or(DomainError::NoPendingRequest)?;
    if !pending.is_live(now) {
        return Err(DomainError::CodeExpired);
    }
    // The key before the try is counted: a key still on its way must not spend a try.
    let hasher = ports.hasher.key().await?;
    // The try is counted before the code is compared, in one conditional write: however
    // many guesses arrive in parallel, at most MAX_ATTEMPTS of them are ever compared.
    let Some(pending) = ports.pending.take_attempt(&pending).await? else {
        return Err(DomainError::CodeExpired);
    };
    let verify = |key: &CodeHasher| {
        key.verify(
            dealer_id,
            phone,
            category,
            &pending.request_id,
            code,
            &pending.code_hash,
        )
    };
    let mut ok = verify(&hasher);
    if !ok {
        // Hashed under a key rotated in after ours was read (another instance, newer): the
        // key once more (bounded by the adapter); the try is counted once whatever happens.
        if let Some(newer) = ports.hasher.reread(&hasher).await {
            ok = verify(&newer);
        }
    }
    if !ok {
        let left = MAX_ATTEMPTS.saturating_sub(pending.attempts);
        return Err(if left == 0 {
            DomainError::CodeExpired
        } else {
            DomainError::WrongCode {
                attempts_left: left,
            }
        });
    }
    let consumed = [PendingKey {
        category,
        request_id: pending.request_id.clone(),
    }];
    let (entries, _) = update_consent(
        ports.consent,
        ports.consent_writer,
        dealer_id,
        phone,
        &consumed,
        |_| {
            vec![LedgerEntry::new(
                dealer_id,
                phone,
                category,
                ConsentEvent::GrantedByCode,
                Actor::Staff(staff.clone()),
                now,
            )
            .with_evidence(pending.request_id.clone())
            .with_disclosure(pending.disclosure_version.clone())
            .with_disclosure_text(pending.disclosure_text.as_deref())]
        },
    )
    .await?;
    entries
        .into_iter()
        .next()
        .ok_or(DomainError::Conflict("nothing was recorded".into()))
}

/// Staff unsubscribed a category in the portal. Idempotent: unsubscribing a category
/// that is already revoked records nothing new (a never-authorized one is recorded, so
/// the person's wish is on the ledger before any later request).
pub async fn unsubscribe(
    ports: &AuthorizationPorts<'_>,
    dealer_id: &DealerId,
    staff: &StaffUserId,
    contact_id: &ContactId,
    category: Category,
    now: DateTime<Utc>,
) -> Result<(), DomainError> {
    let contact = contact(ports, dealer_id, contact_id).await?;
    let phone = &contact.phone;
    let consumed: Vec<PendingKey> = ports
        .pending
        .pending(dealer_id, phone, category)
        .await?
        .map(|p| PendingKey {
            category,
            request_id: p.request_id,
        })
        .into_iter()
        .collect();
    update_consent(
        ports.consent,
        ports.consent_writer,
        dealer_id,
        phone,
        &consumed,
        |state| {
            if state.get(category).status == ConsentStatus::Revoked {
                return Vec::new();
            }
            vec![LedgerEntry::new(
                dealer_id,
                phone,
                category,
                ConsentEvent::RevokedByPortal,
                Actor::Staff(staff.clone()),
                now,
            )]
        },
    )
    .await?;
    Ok(())
}

/// The ledger of the contact's number (consent belongs to the number).
pub async fn history(
    ports: &AuthorizationPorts<'_>,
    dealer_id: &DealerId,
    contact_id: &ContactId,
) -> Result<(Contact, Vec<LedgerEntry>), DomainError> {
    let contact = contact(ports, dealer_id, contact_id).await?;
    let entries = ports.consent.history(dealer_id, &contact.phone).await?;
    Ok((contact, entries))
}

/// How long an authorization request may stay incomplete before staff follow up.
pub const FOLLOW_UP_AFTER: chrono::Duration = chrono::Duration::hours(24);

/// Requests made more than a day ago and never completed (neither verified nor agreed)
/// become items on the authorizations queue, once each.
pub async fn follow_up_pending(
    pending: &dyn PendingStore,
    work: &dyn crate::ports::WorkQueue,
    now: DateTime<Utc>,
    limit: u32,
) -> Result<usize, DomainError> {
    let mut raised = 0;
    for p in pending.overdue(now - FOLLOW_UP_AFTER, limit).await? {
        match pending.mark_followed_up(&p).await {
            Ok(()) => {}
            // Completed, replaced or followed up by another run meanwhile.
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
        work.add_item(&crate::ports::WorkItem {
            id: new_ulid(),
            dealer_id: p.dealer_id.clone(),
            queue: crate::ports::WorkQueueName::Authorizations,
            kind: "authorization-pending-too-long".into(),
            contact_id: Some(p.contact_id.clone()),
            phone: Some(p.phone.clone()),
            account_id: None,
            deal_id: None,
            message_id: None,
            text: Some(format!(
                "{} authorization requested by {} on {} was never completed",
                p.category,
                p.requested_by,
                p.created_at.format("%Y-%m-%d %H:%M UTC")
            )),
            created_at: now,
            status: crate::ports::WorkItemStatus::Open,
            handling: Default::default(),
        })
        .await?;
        raised += 1;
    }
    Ok(raised)
}
