//! Delivery: the moment of sending. Re-check, claim, call the carrier once, record.
//!
//! One room each: the claim ([`claim`]), the carrier call ([`send`]), the carrier's
//! limits ([`gate`]), what became of a text ([`outcome`]) and texts stuck mid-delivery
//! ([`stale`]). Everything public is re-exported here, so callers name
//! `service::delivery::...` whichever room holds it.

pub mod claim;
pub mod gate;
pub mod outcome;
pub mod ports;
pub mod request;
pub mod send;
pub mod stale;

pub use gate::{Admission, CarrierLimits, SendGate, WaitReason};
pub use outcome::{hold_until, DeliverOutcome};
pub use ports::DeliverPorts;
pub use request::{status_callback, LIST_CLOCK_SKEW};
pub use send::{deliver_envelope, LIMITS_RETRY, MAX_CARRIER_ATTEMPTS};
pub use stale::{dead_lettered, STALE_CLAIM};
