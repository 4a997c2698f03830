//! In-memory implementations of every port, for tests of services and handlers
//! (enabled by the `test-util` feature). They keep the same conditional-write
//! semantics as the real adapters, so races and replays can be tested without AWS.
//!
//! One module per aggregate, lined up with the DynamoDB adapter's
//! (`shared/adapters/src/dynamo/`) and held to the same contract (`crate::contract`).

mod bus;
mod carrier;
mod contacts;
mod dealers;
mod inbound;
mod ledger;
mod limits;
mod messages;
mod pending;
mod queue;
mod scenario;
mod store;
mod work;
mod world;

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::approval::{PendingAuthorization, MAX_ATTEMPTS};
use crate::automation::Automation;
use crate::category::Category;
use crate::error::StoreError;
use crate::ids::{AccountId, ContactId, DealId, DealerId, MessageId};
use crate::ledger::{ConsentState, LedgerEntry};
use crate::message::{Message, MessageStatus};
use crate::phone::PhoneNumber;
use crate::ports::*;
use crate::template::DealerTemplate;

pub use bus::FakeBus;
pub use carrier::{CarrierScript, FakeCarrier, FakeOptOuts};
pub use queue::{FakeInbox, FakeQueue};
pub use scenario::{authorization_ports, code_in, grant_by_code, request_code};
pub use store::InMemoryStore;
use store::{foreign_cursor, hex_cursor, unhex_cursor};
pub use world::{
    late_evening, mins, noon, offer_vars, past_due_vars, phone, queued_alert, reminder_vars, vars,
    wrong, Seed, World, CUSTOMER, DEALER, DEALER_NAME, DEALER_NUMBER,
};
