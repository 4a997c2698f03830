//! The pending-authorization port: requests for consent waiting for their code or an
//! Agree, each try and resend a conditional write.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::approval::PendingAuthorization;
use crate::category::Category;
use crate::error::StoreResult;
use crate::ids::DealerId;
use crate::phone::PhoneNumber;

#[async_trait]
pub trait PendingStore: Send + Sync {
    async fn pending(
        &self,
        dealer: &DealerId,
        phone: &PhoneNumber,
        category: Category,
    ) -> StoreResult<Option<PendingAuthorization>>;
    async fn pending_for_number(
        &self,
        dealer: &DealerId,
        phone: &PhoneNumber,
    ) -> StoreResult<Vec<PendingAuthorization>>;
    /// Pending requests for many numbers at once (contact listings).
    async fn pending_for_numbers(
        &self,
        dealer: &DealerId,
        phones: &[PhoneNumber],
    ) -> StoreResult<Vec<PendingAuthorization>>;
    /// Creates the request for (dealer, phone, category) when none is live there: absent,
    /// expired by the new request's creation, or its tries used up (`Conflict` otherwise:
    /// two Authorize clicks at once make one request, and the code already texted stays
    /// the one that works).
    async fn put_pending(&self, pending: &PendingAuthorization) -> StoreResult<()>;
    /// Takes one try of the request, before its code is compared: adds one to the stored
    /// attempts only if it is still the same request (request id) with tries left, and
    /// answers the request as stored after the write (`None`: replaced, gone or used up).
    async fn take_attempt(
        &self,
        pending: &PendingAuthorization,
    ) -> StoreResult<Option<PendingAuthorization>>;
    /// A resend: stores the request's new code hash and send count (`pending.sends`), only
    /// if it is still the same request at the send count before it (`Conflict` otherwise:
    /// of two resends at once, one wins); its attempts are left as stored.
    async fn replace_code(&self, pending: &PendingAuthorization) -> StoreResult<()>;
    /// Voids the request if it is still `request_id` and, when `sends` is given, still
    /// holds the code of that send (its code text failed or was suppressed; a later
    /// resend's code stays live); nothing happens otherwise.
    async fn void(
        &self,
        dealer: &DealerId,
        phone: &PhoneNumber,
        category: Category,
        request_id: &str,
        sends: Option<u32>,
    ) -> StoreResult<()>;
    /// Requests created at or before `created_before` that are still stored (never
    /// completed) and not followed up yet.
    async fn overdue(
        &self,
        created_before: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<PendingAuthorization>>;
    /// Marks a request followed up, if it is still that request (`Conflict` otherwise).
    async fn mark_followed_up(&self, pending: &PendingAuthorization) -> StoreResult<()>;
}
