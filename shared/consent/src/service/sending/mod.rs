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
pub mod ports;
pub mod send_time;

pub use accept::{
    request_send, request_text, SendAccepted, SendRequest, TextRequest, MAX_NOTES_CHARS,
    MAX_SCHEDULE_AHEAD_DAYS, PAST_TOLERANCE_SECONDS,
};
pub use automated::{automated_send, template_for_event};
pub use cancel::{cancel, message_of};
pub use compose::{preview, Content, Preview, MAX_TEXT_CHARS, OPT_OUT_WORDING};
pub use dispatch::{
    dispatch, DispatchPorts, DispatchReport, DISPATCH_HORIZON_SECONDS, MARKS_AT_ONCE,
    SHARDS_AT_ONCE,
};
pub use ports::SendPorts;
pub(in crate::service) use send_time::CLAIM_ATTEMPTS;
pub use send_time::{earliest_send, Recipient, SendTime};
