//! Sending: a staff or automated request becomes a stored message, queued now or
//! waiting in the time index; dispatch moves due messages to the queue.
//!
//! One room each: what a send texts ([`compose`]), accepting a request ([`accept`]),
//! when a text may go ([`send_time`]), automated sends ([`automated`]), staff's cancel
//! ([`mod@cancel`]) and dispatch ([`mod@dispatch`]). Everything public is re-exported here, so
//! callers name `service::sending::...` whichever room holds it.

pub mod accept;
pub mod automated;
pub mod cancel;
pub mod compose;
pub mod dispatch;
pub mod send_time;

pub use accept::{
    request_send, request_text, SendRequest, TextRequest, MAX_NOTES_CHARS, MAX_SCHEDULE_AHEAD_DAYS,
    PAST_TOLERANCE_SECONDS,
};
pub use automated::{automated_send, template_for_event};
pub use cancel::{cancel, message_of};
pub use compose::{preview, Content, Preview, MAX_TEXT_CHARS, OPT_OUT_WORDING};
pub use dispatch::{
    dispatch, DispatchPorts, DispatchReport, DISPATCH_HORIZON_SECONDS, MARKS_AT_ONCE,
    SHARDS_AT_ONCE,
};
pub(in crate::service) use send_time::CLAIM_ATTEMPTS;
pub use send_time::{earliest_send, Recipient, SendTime};

use crate::message::Message;
use crate::phone::PhoneNumber;
use crate::ports::{
    ConsentReader, ContactStore, DealerStore, MessageStore, OutboundQueue, TemplateStore,
};

/// What accepting a send touches (automated sends and the preview take the same).
pub struct SendPorts<'a> {
    pub dealers: &'a dyn DealerStore,
    pub contacts: &'a dyn ContactStore,
    /// The dealer's own templates (beside the built-ins).
    pub templates: &'a dyn TemplateStore,
    pub consent: &'a dyn ConsentReader,
    pub messages: &'a dyn MessageStore,
    pub queue: &'a dyn OutboundQueue,
    /// Texting numbers handed to dealers on first use (empty in production).
    pub number_pool: &'a [PhoneNumber],
}

/// The confirmation staff see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendAccepted {
    pub message: Message,
    /// The same Idempotency-Key was seen before: this is the first answer again.
    pub replayed: bool,
}

use super::truncate;
