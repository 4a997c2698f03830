//! The consent library: everything the texting service decides, as pure Rust.
//!
//! No AWS, Lambda or HTTP dependency and no clock of its own: every rule takes the
//! time it is asked about. Adapters implement the [`ports`]; the [`service`] layer
//! composes the rules over those ports; functions only wire.

pub mod answers;
pub mod approval;
pub mod automation;
pub mod brand;
pub mod category;
pub mod contact;
pub mod conversation;
pub mod data;
pub mod dealer;
pub mod error;
pub mod frequency;
pub mod holidays;
pub mod ids;
pub mod ledger;
pub mod message;
pub mod opt_out_wording;
pub mod phone;
pub mod ports;
pub mod quiet_hours;
pub mod reply;
pub mod service;
pub mod sms;
pub mod template;
pub mod webhook;
pub mod work;
pub mod zone;

#[cfg(any(test, feature = "test-util"))]
pub mod contract;
#[cfg(any(test, feature = "test-util"))]
pub mod fakes;

pub use category::Category;
pub use error::{DomainError, StoreError};
pub use ids::{AccountId, ContactId, DealId, DealerId, MessageId, StaffUserId};
pub use phone::PhoneNumber;
pub use zone::Zone;
