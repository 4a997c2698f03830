//! What delivering one record touches.

use crate::ports::{
    Carrier, CodeKey, ConsentReader, ConsentWriter, DealerStore, MessageStore, PendingStore,
    WorkQueue,
};

use super::gate::SendGate;

/// What delivering one record touches.
pub struct DeliverPorts<'a> {
    /// The dealer's texting number now (a text queued before it changed goes from the
    /// new one).
    pub dealers: &'a dyn DealerStore,
    pub consent: &'a dyn ConsentReader,
    pub consent_writer: &'a dyn ConsentWriter,
    pub messages: &'a dyn MessageStore,
    pub carrier: &'a dyn Carrier,
    pub work: &'a dyn WorkQueue,
    /// Approval requests whose code text failed are voided here.
    pub pending: &'a dyn PendingStore,
    /// Opens the sealed code of an approval code text (the code key).
    pub codes: &'a dyn CodeKey,
    /// The carrier's limits, asked after the claim (none: no limits).
    pub gate: Option<&'a dyn SendGate>,
}
