//! AWS End User Messaging SMS, the second carrier: sending through it (`send`) and reading
//! what it publishes to the stack's SNS topics (`events`).

pub mod events;
mod send;

pub use send::{EndUserMessagingCarrier, CONTEXT_MESSAGE_ID, OPTED_OUT_CODE};
