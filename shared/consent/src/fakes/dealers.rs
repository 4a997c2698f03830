//! Dealers, texting number owners, the operator's provisioned numbers, and dealers' templates.

use super::*;

#[async_trait]
impl DealerStore for InMemoryStore {
    async fn dealer(&self, id: &DealerId) -> StoreResult<Option<Dealer>> {
        Ok(self.lock().dealers.get(id).cloned())
    }

    async fn put_dealer(
        &self,
        dealer: &Dealer,
        previous_number: Option<&PhoneNumber>,
    ) -> StoreResult<()> {
        let mut s = self.lock();
        if let Some(owner) = s.numbers.get(&dealer.texting_number) {
            if owner != &dealer.id {
                return Err(StoreError::Conflict(
                    "texting number belongs to another dealer",
                ));
            }
        }
        if let Some(prev) = previous_number.filter(|p| **p != dealer.texting_number) {
            s.numbers.remove(prev);
        }
        s.numbers
            .insert(dealer.texting_number.clone(), dealer.id.clone());
        s.dealers.insert(dealer.id.clone(), dealer.clone());
        Ok(())
    }

    async fn dealer_by_number(&self, number: &PhoneNumber) -> StoreResult<Option<DealerId>> {
        Ok(self.lock().numbers.get(number).cloned())
    }
}

impl InMemoryStore {
    /// The operator provisions a texting number for a dealer (as `infra/provision.py`
    /// does).
    pub fn provision(&self, number: &PhoneNumber, carrier_account: &str, dealer: &DealerId) {
        self.provision_on(CarrierKind::Twilio, number, carrier_account, dealer);
    }

    /// The operator provisions a texting number on `carrier` for a dealer.
    pub fn provision_on(
        &self,
        carrier: CarrierKind,
        number: &PhoneNumber,
        carrier_account: &str,
        dealer: &DealerId,
    ) {
        self.lock().provisioned.insert(
            number.clone(),
            ProvisionedNumber {
                number: number.clone(),
                carrier,
                carrier_account: carrier_account.to_owned(),
                dealer: Some(dealer.clone()),
                opt_out_list: None,
            },
        );
    }
}

#[async_trait]
impl NumberDirectory for InMemoryStore {
    async fn provisioned(&self, number: &PhoneNumber) -> StoreResult<Option<ProvisionedNumber>> {
        Ok(self.lock().provisioned.get(number).cloned())
    }
}

#[async_trait]
impl TemplateStore for InMemoryStore {
    async fn dealer_templates(&self, dealer: &DealerId) -> StoreResult<Vec<DealerTemplate>> {
        Ok(self
            .lock()
            .templates
            .iter()
            .filter(|((d, _), _)| d == dealer)
            .map(|(_, t)| t.clone())
            .collect())
    }

    async fn dealer_template(
        &self,
        dealer: &DealerId,
        name: &str,
    ) -> StoreResult<Option<DealerTemplate>> {
        Ok(self
            .lock()
            .templates
            .get(&(dealer.clone(), name.to_owned()))
            .cloned())
    }

    async fn put_template(
        &self,
        dealer: &DealerId,
        template: &DealerTemplate,
        previous: Option<u32>,
    ) -> StoreResult<()> {
        let mut s = self.lock();
        let k = (dealer.clone(), template.name.clone());
        if s.templates.get(&k).map(|t| t.version) != previous {
            return Err(StoreError::Conflict("template changed"));
        }
        s.templates.insert(k, template.clone());
        Ok(())
    }

    async fn delete_template(&self, dealer: &DealerId, name: &str) -> StoreResult<bool> {
        Ok(self
            .lock()
            .templates
            .remove(&(dealer.clone(), name.to_owned()))
            .is_some())
    }
}

#[async_trait]
impl AutomationStore for InMemoryStore {
    async fn automations(&self, dealer: &DealerId) -> StoreResult<Vec<Automation>> {
        Ok(self
            .lock()
            .automations
            .iter()
            .filter(|((d, _), _)| d == dealer)
            .map(|(_, a)| a.clone())
            .collect())
    }

    async fn automation(
        &self,
        dealer: &DealerId,
        event_type: &str,
    ) -> StoreResult<Option<Automation>> {
        Ok(self
            .lock()
            .automations
            .get(&(dealer.clone(), event_type.to_owned()))
            .cloned())
    }

    async fn put_automation(&self, dealer: &DealerId, automation: &Automation) -> StoreResult<()> {
        self.lock().automations.insert(
            (dealer.clone(), automation.event_type.clone()),
            automation.clone(),
        );
        Ok(())
    }
}
