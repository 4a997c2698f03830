//! Inbound texts from people and delivery reports from the carrier.
//!
//! One room each: routing a reply to what it asks ([`route`]), the one answer to a
//! reply ([`answer`]), consent replies: STOP, START, Agree ([`consent`]), Text to Pay
//! ([`pay`]), the hand-off to staff ([`staff`]) and carrier status callbacks
//! ([`status`]). Everything public is re-exported here, so callers name
//! `service::replies::...` whichever room holds it.

pub mod answer;
pub mod consent;
pub mod inbound;
pub mod pay;
pub mod route;
pub mod staff;
pub mod status;

pub use answer::help_text;
pub use consent::suppress_waiting;
pub use inbound::{InboundPorts, InboundSms, ReplyOutcome, EVENT_SOURCE};
pub use pay::{
    confirmation_event_id, PAY_CONFIRM_MARKER, TEXT_TO_PAY_CONFIRMED, TEXT_TO_PAY_TEMPLATE,
};
pub use route::handle_inbound;
pub use status::{
    handle_status, revoke_by_carrier, StatusPorts, StatusReport, CARRIER_OPT_OUT_CODES,
};
