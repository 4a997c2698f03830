//! Shared scenario steps: authorization ports, request a code, grant by code.

use chrono::{DateTime, Utc};

use super::queue::FakeQueue;
use super::store::InMemoryStore;
use crate::category::Category;
use crate::ids::ContactId;
use crate::ids::DealerId;
use crate::message::Message;
use crate::ports::*;

/// The authorization ports over one in-memory store and queue (no number pool), as the
/// authorize function wires them.
pub fn authorization_ports<'a>(
    store: &'a InMemoryStore,
    queue: &'a FakeQueue,
    hasher: &'a crate::approval::CodeHasher,
) -> crate::service::authorization::AuthorizationPorts<'a> {
    crate::service::authorization::AuthorizationPorts {
        dealers: store,
        contacts: store,
        consent: store,
        consent_writer: store,
        pending: store,
        limits: store,
        messages: store,
        queue,
        hasher,
        number_pool: &[],
    }
}

/// The six-digit code in a code text, as the person reads it off the phone.
pub fn code_in(body: &str) -> crate::approval::ApprovalCode {
    body.split(|c: char| !c.is_ascii_digit())
        .find(|t| t.len() == 6)
        .and_then(|c| crate::approval::ApprovalCode::parse(c).ok())
        .unwrap_or_else(|| panic!("no approval code in {body:?}"))
}

/// Staff click Authorize for `category` at `at`; returns the code text (the newest
/// queued message, as the person's phone shows it) and the code in it.
pub async fn request_code(
    ports: &crate::service::authorization::AuthorizationPorts<'_>,
    store: &InMemoryStore,
    queue: &FakeQueue,
    staff: (&DealerId, &crate::ids::StaffUserId),
    contact: &ContactId,
    category: Category,
    at: DateTime<Utc>,
) -> (Message, crate::approval::ApprovalCode) {
    crate::service::authorization::request(ports, staff.0, staff.1, contact, category, at)
        .await
        .unwrap_or_else(|e| panic!("authorization request: {e}"));
    let newest = queue.sent().pop().expect("a queued code text");
    let text = store
        .message(&newest.envelope.message_id)
        .await
        .ok()
        .flatten()
        .expect("the code text is stored");
    assert_eq!(text.kind, crate::message::MessageKind::ApprovalCode);
    let sealed = text
        .code
        .as_ref()
        .expect("a code text carries its sealed code");
    let code = ports
        .hasher
        .key()
        .await
        .expect("the code key is in hand")
        .open(&sealed.sealed, text.id.as_str())
        .expect("the sealed code opens with the code key");
    (text, code)
}

/// The person authorizes `category` by reading the texted code back to staff at `at`
/// (request and verify through the real authorization service). Returns the code text;
/// it stays on `queue` (callers that do not deliver it drain the queue).
pub async fn grant_by_code(
    store: &InMemoryStore,
    queue: &FakeQueue,
    staff: (&DealerId, &crate::ids::StaffUserId),
    contact: &ContactId,
    category: Category,
    at: DateTime<Utc>,
) -> Message {
    let hasher = crate::approval::CodeHasher::new("fakes-grant-by-code-key")
        .unwrap_or_else(|e| panic!("{e}"));
    let ports = authorization_ports(store, queue, &hasher);
    let (text, code) = request_code(&ports, store, queue, staff, contact, category, at).await;
    crate::service::authorization::verify(&ports, staff.0, staff.1, contact, category, &code, at)
        .await
        .unwrap_or_else(|e| panic!("authorization verify: {e}"));
    text
}
