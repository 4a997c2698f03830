//! What every check shares: the [`Store`] they run against, [`Ctx`], fixtures and
//! helpers. Its imports are the checks' common vocabulary (`use super::support::*`).

pub(super) use chrono::{DateTime, Duration, TimeZone, Utc};

pub(super) use crate::approval::{PendingAuthorization, MAX_ATTEMPTS};
pub(super) use crate::category::Category;
pub(super) use crate::error::StoreError;
pub(super) use crate::ids::{AccountId, ContactId, DealerId, MessageId, StaffUserId};
pub(super) use crate::ledger::{Actor, ConsentEvent, ConsentState, LedgerEntry};
pub(super) use crate::message::{
    Message, MessageKind, MessageStatus, NewMessage, Origin, SealedCode, REQUEUE_AFTER,
};
pub(super) use crate::phone::PhoneNumber;
pub(super) use crate::ports::*;

/// Every storage port, as one store implements them.
pub trait Store:
    DealerStore
    + ContactStore
    + ConsentReader
    + ConsentWriter
    + LedgerExport
    + PendingStore
    + MessageStore
    + InboundLog
    + Conversations
    + TemplateStore
    + AutomationStore
    + WorkQueue
    + WorkQueueDesk
    + RateLimiter
{
}

impl<T> Store for T where
    T: DealerStore
        + ContactStore
        + ConsentReader
        + ConsentWriter
        + LedgerExport
        + PendingStore
        + MessageStore
        + InboundLog
        + Conversations
        + TemplateStore
        + AutomationStore
        + WorkQueue
        + WorkQueueDesk
        + RateLimiter
{
}

/// What a check needs besides the store.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// A dealer no other check uses.
    pub dealer: DealerId,
    /// Shards of the due index the store spreads messages over.
    pub shards: u32,
}

impl Ctx {
    pub fn new(name: &str, shards: u32) -> Self {
        let dealer = DealerId::parse(format!("contract-{name}").replace('_', "-"))
            .unwrap_or_else(|e| panic!("{e}"));
        Self { dealer, shards }
    }

    /// This check's texting number (one per check, so checks that own their number do not
    /// take each other's on a shared table).
    pub fn number(&self) -> PhoneNumber {
        let h = self
            .dealer
            .as_str()
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_0000_01b3)
            });
        phone(&format!("+1202555{:04}", h % 10_000))
    }

    pub(super) fn id(&self, n: u32) -> MessageId {
        // ULID-shaped, unique per dealer and n.
        let tag: u32 = self
            .dealer
            .as_str()
            .bytes()
            .fold(2166136261u32, |h, b| (h ^ b as u32).wrapping_mul(16777619));
        MessageId::parse(format!("01K{tag:010}{n:013}")).unwrap_or_else(|e| panic!("{e}"))
    }
}

/// GSIs are eventually consistent (DynamoDB's, and the local emulator's, which lag behind
/// the table as DynamoDB's do): what a check reads back from an index it reads until
/// `holds`, for at most 5 s, and returns the last read. A store must never need this for
/// a rule; a check of an index's contents may.
pub async fn eventually<T, F, Fut>(mut read: F, holds: impl Fn(&T) -> bool) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let value = read().await;
        if holds(&value) || std::time::Instant::now() >= deadline {
            return value;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

pub(super) fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 10, 16, 0, 0).unwrap()
}

pub(super) fn phone(s: &str) -> PhoneNumber {
    PhoneNumber::parse(s).unwrap_or_else(|e| panic!("{e}"))
}

/// A queued template message of a contract dealer (for tests elsewhere in the crate).
#[cfg(test)]
pub(crate) fn sample_message() -> Message {
    message(&Ctx::new("sample", 4), 1, MessageStatus::Queued, t0())
}

pub(super) fn message(ctx: &Ctx, n: u32, status: MessageStatus, at: DateTime<Utc>) -> Message {
    let parts = NewMessage {
        dealer_id: ctx.dealer.clone(),
        kind: MessageKind::Template,
        to: phone("+12025550143"),
        from: ctx.number(),
        category: Category::Accounting,
        body: "Your payment is past due.".into(),
        origin: Origin::System,
    };
    Message {
        id: ctx.id(n),
        template: Some("past-due-alert".into()),
        template_version: Some(1),
        ..Message::new(parts, status, None, at)
    }
}

/// The check's dealer takes `number` as its texting number (releasing `previous`).
pub(super) async fn own_number<S: Store>(
    s: &S,
    ctx: &Ctx,
    number: &PhoneNumber,
    previous: Option<&PhoneNumber>,
) {
    let dealer = Dealer {
        id: ctx.dealer.clone(),
        name: "Contract Motors".into(),
        texting_number: number.clone(),
        help_contact: None,
        time_zone: None,
    };
    s.put_dealer(&dealer, previous).await.unwrap();
}

/// Polls futures together (no runtime dependency in this crate): each is driven to
/// completion, interleaved at every await, as a runtime would.
pub(super) async fn futures_join_all<F: std::future::Future>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futures.map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, slot) in pinned.iter_mut().zip(out.iter_mut()) {
            if slot.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *slot = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter()
        .map(|o| o.expect("every future finished"))
        .collect()
}

pub(super) async fn futures_join2<A: std::future::Future, B: std::future::Future>(
    a: A,
    b: B,
) -> (A::Output, B::Output) {
    let mut a = Box::pin(a);
    let mut b = Box::pin(b);
    let (mut ra, mut rb) = (None, None);
    std::future::poll_fn(|cx| {
        if ra.is_none() {
            if let std::task::Poll::Ready(v) = a.as_mut().poll(cx) {
                ra = Some(v);
            }
        }
        if rb.is_none() {
            if let std::task::Poll::Ready(v) = b.as_mut().poll(cx) {
                rb = Some(v);
            }
        }
        if ra.is_some() && rb.is_some() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    (ra.expect("finished"), rb.expect("finished"))
}
