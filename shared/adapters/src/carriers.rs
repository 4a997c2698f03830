//! The carrier per texting number: a text goes through the carrier its `from` number is
//! on, as the operator provisioned it ([`CarrierKind`]), and a START lifts the opt-out
//! list of the carrier the number is on. A number the directory does not hold (a local
//! stack's pool) is on Twilio, as every number was before there were two.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use consent::ports::{
    Carrier, CarrierError, CarrierKind, CarrierOptOuts, CarrierReceipt, CarrierSend,
    NumberDirectory, ProvisionedNumber,
};
use consent::PhoneNumber;

/// How long a number's carrier is taken from the cache: moving a number between carriers
/// takes effect within this (docs/decisions.md).
pub const CARRIER_TTL: Duration = Duration::from_secs(300);

pub struct Carriers {
    twilio: Arc<dyn Carrier>,
    /// None: this stack has no End User Messaging configuration set.
    end_user_messaging: Option<Arc<dyn Carrier>>,
    numbers: Arc<dyn NumberDirectory>,
    known: Mutex<HashMap<PhoneNumber, (CarrierKind, Instant)>>,
}

impl Carriers {
    pub fn new(
        twilio: Arc<dyn Carrier>,
        end_user_messaging: Option<Arc<dyn Carrier>>,
        numbers: Arc<dyn NumberDirectory>,
    ) -> Self {
        Self {
            twilio,
            end_user_messaging,
            numbers,
            known: Mutex::new(HashMap::new()),
        }
    }

    /// The carrier `from` is on (cached for [`CARRIER_TTL`]); a directory that cannot be
    /// read is a retry: nothing was sent.
    async fn carrier_of(&self, from: &PhoneNumber) -> Result<&dyn Carrier, CarrierError> {
        let cached = self
            .known
            .lock()
            .ok()
            .and_then(|k| k.get(from).copied())
            .filter(|(_, at)| at.elapsed() < CARRIER_TTL)
            .map(|(kind, _)| kind);
        let kind = match cached {
            Some(kind) => kind,
            None => {
                let kind = provisioned(self.numbers.as_ref(), from)
                    .await?
                    .map_or(CarrierKind::Twilio, |p| p.carrier);
                if let Ok(mut known) = self.known.lock() {
                    known.insert(from.clone(), (kind, Instant::now()));
                }
                kind
            }
        };
        match kind {
            CarrierKind::Twilio => Ok(self.twilio.as_ref()),
            CarrierKind::EndUserMessaging => {
                self.end_user_messaging
                    .as_deref()
                    .ok_or_else(|| CarrierError::Permanent {
                        code: None,
                        reason: "the number is on End User Messaging and this stack has no configuration set for it".into(),
                    })
            }
        }
    }
}

#[async_trait]
impl Carrier for Carriers {
    async fn send(&self, message: &CarrierSend) -> Result<CarrierReceipt, CarrierError> {
        self.carrier_of(&message.from).await?.send(message).await
    }

    async fn find_sent(
        &self,
        message: &CarrierSend,
        since: DateTime<Utc>,
    ) -> Result<Option<CarrierReceipt>, CarrierError> {
        // A directory that cannot be read leaves the outcome unknown (never a guess).
        let carrier = self
            .carrier_of(&message.from)
            .await
            .map_err(|e| CarrierError::Unknown {
                reason: e.to_string(),
            })?;
        carrier.find_sent(message, since).await
    }
}

/// How `number` was provisioned; a directory that cannot be read is a retry (nothing was
/// done at any carrier).
async fn provisioned(
    numbers: &dyn NumberDirectory,
    number: &PhoneNumber,
) -> Result<Option<ProvisionedNumber>, CarrierError> {
    numbers
        .provisioned(number)
        .await
        .map_err(|e| CarrierError::Retryable {
            reason: format!("the number's carrier could not be read: {e}"),
            retry_after: None,
        })
}

/// A carrier's opt-out list, by name (End User Messaging's `DeleteOptedOutNumber`).
#[async_trait]
pub trait OptOutList: Send + Sync {
    /// Takes `person` off the list `list` (not on it: done already).
    async fn delete(&self, list: &str, person: &PhoneNumber) -> Result<(), CarrierError>;
}

/// The list End User Messaging puts a number on unless the operator chose another.
pub const DEFAULT_OPT_OUT_LIST: &str = "Default";

/// The carriers' opt-out lists, by the number a START was texted to: a number on End User
/// Messaging has its list lifted; Twilio lifts its own block when the person texts START,
/// so there is nothing to do for a number on it.
pub struct OptOutLists {
    end_user_messaging: Option<Arc<dyn OptOutList>>,
    numbers: Arc<dyn NumberDirectory>,
}

impl OptOutLists {
    pub fn new(
        end_user_messaging: Option<Arc<dyn OptOutList>>,
        numbers: Arc<dyn NumberDirectory>,
    ) -> Self {
        Self {
            end_user_messaging,
            numbers,
        }
    }
}

#[async_trait]
impl CarrierOptOuts for OptOutLists {
    async fn lift(&self, number: &PhoneNumber, person: &PhoneNumber) -> Result<(), CarrierError> {
        let provisioned = provisioned(self.numbers.as_ref(), number).await?;
        let Some(provisioned) = provisioned.filter(|p| p.carrier == CarrierKind::EndUserMessaging)
        else {
            return Ok(());
        };
        let Some(lists) = &self.end_user_messaging else {
            // deliver refuses this number too: nothing is sent from it here.
            tracing::warn!(number = %number.redacted(), "a START to a number on End User Messaging, which this stack does not reach; its opt-out list is left");
            return Ok(());
        };
        let list = provisioned
            .opt_out_list
            .as_deref()
            .unwrap_or(DEFAULT_OPT_OUT_LIST);
        lists.delete(list, person).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use consent::fakes::{FakeCarrier, InMemoryStore};
    use consent::{DealerId, MessageId};

    fn text(from: &str) -> CarrierSend {
        CarrierSend {
            message_id: MessageId::parse("01J00000000000000000000000").unwrap(),
            promotional: false,
            from: PhoneNumber::parse(from).unwrap(),
            to: PhoneNumber::parse("+12025550143").unwrap(),
            body: "Your payment is due".into(),
            status_callback: None,
        }
    }

    #[tokio::test]
    async fn each_text_goes_through_the_carrier_its_number_is_on() {
        let store = InMemoryStore::new();
        let dealer = DealerId::parse("demo-dealer").unwrap();
        let on_eum = PhoneNumber::parse("+12025550101").unwrap();
        store.provision_on(
            CarrierKind::EndUserMessaging,
            &on_eum,
            "123456789012",
            &dealer,
        );
        let on_twilio = PhoneNumber::parse("+12025550100").unwrap();
        store.provision(&on_twilio, "AC1", &dealer);
        let (twilio, eum) = (FakeCarrier::new(), FakeCarrier::new());
        let carriers = Carriers::new(
            Arc::new(twilio.clone()),
            Some(Arc::new(eum.clone())),
            Arc::new(store),
        );

        carriers.send(&text("+12025550101")).await.unwrap();
        carriers.send(&text("+12025550100")).await.unwrap();
        // A number the directory does not hold (a local pool's) is on Twilio.
        carriers.send(&text("+12025550199")).await.unwrap();

        assert_eq!(eum.sent().len(), 1);
        assert_eq!(eum.sent()[0].from, on_eum);
        assert_eq!(twilio.sent().len(), 2);
    }

    #[tokio::test]
    async fn a_number_on_a_carrier_this_stack_cannot_reach_is_refused_not_sent_elsewhere() {
        let store = InMemoryStore::new();
        let dealer = DealerId::parse("demo-dealer").unwrap();
        let on_eum = PhoneNumber::parse("+12025550101").unwrap();
        store.provision_on(
            CarrierKind::EndUserMessaging,
            &on_eum,
            "123456789012",
            &dealer,
        );
        let twilio = FakeCarrier::new();
        let carriers = Carriers::new(Arc::new(twilio.clone()), None, Arc::new(store));

        let got = carriers.send(&text("+12025550101")).await;

        assert!(
            matches!(got, Err(CarrierError::Permanent { .. })),
            "{got:?}"
        );
        assert!(twilio.sent().is_empty(), "never through another carrier");
    }

    #[derive(Default)]
    struct Lists(std::sync::Mutex<Vec<(String, PhoneNumber)>>);

    #[async_trait]
    impl OptOutList for Lists {
        async fn delete(&self, list: &str, person: &PhoneNumber) -> Result<(), CarrierError> {
            self.0
                .lock()
                .unwrap()
                .push((list.to_owned(), person.clone()));
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_start_lifts_the_list_of_the_carrier_its_number_is_on_only() {
        let store = InMemoryStore::new();
        let dealer = DealerId::parse("demo-dealer").unwrap();
        let on_eum = PhoneNumber::parse("+12025550101").unwrap();
        store.provision_on(
            CarrierKind::EndUserMessaging,
            &on_eum,
            "123456789012",
            &dealer,
        );
        let on_twilio = PhoneNumber::parse("+12025550100").unwrap();
        store.provision(&on_twilio, "AC1", &dealer);
        let lists = Arc::new(Lists::default());
        let opt_outs = OptOutLists::new(Some(lists.clone()), Arc::new(store));
        let person = PhoneNumber::parse("+12025550143").unwrap();

        for number in [
            &on_eum,
            &on_twilio,
            &PhoneNumber::parse("+12025550199").unwrap(),
        ] {
            opt_outs.lift(number, &person).await.unwrap();
        }

        // Only End User Messaging keeps a list to lift; Twilio lifts its own block.
        assert_eq!(
            *lists.0.lock().unwrap(),
            vec![(DEFAULT_OPT_OUT_LIST.to_owned(), person)]
        );
    }
}
