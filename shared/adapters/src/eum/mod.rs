//! AWS End User Messaging SMS, the second carrier: sending through it (`send`), reading
//! what it publishes to the stack's SNS topics (`events`) and lifting its opt-out lists
//! on a START (`opt_outs`).

pub mod events;
mod opt_outs;
mod send;

pub use opt_outs::EumOptOutList;
pub use send::{EndUserMessagingCarrier, CONTEXT_MESSAGE_ID, OPTED_OUT_CODE};
