//! What accepting a send touches.

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
