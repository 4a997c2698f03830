//! Dealers and their texting numbers: settings, number owners, the operator's allow-list;
//! and the dealers' own templates and automations.

use super::*;

#[async_trait]
impl NumberDirectory for DynamoStore {
    async fn provisioned(&self, number: &PhoneNumber) -> StoreResult<Option<ProvisionedNumber>> {
        let Some(item) = self.get(format!("NUMBER#{number}"), "PROVISIONED").await? else {
            return Ok(None);
        };
        let carrier = match item.get("carrier").and_then(|c| c.as_s().ok()) {
            None => CarrierKind::Twilio,
            Some(name) => CarrierKind::parse(name).ok_or_else(|| StoreError::Corrupt {
                key: format!("NUMBER#{}", number.redacted()),
                reason: format!(
                    "unknown carrier {:?}",
                    name.chars().take(40).collect::<String>()
                ),
            })?,
        };
        Ok(Some(ProvisionedNumber {
            number: number.clone(),
            carrier,
            carrier_account: item
                .get("carrierAccount")
                .and_then(|a| a.as_s().ok())
                .cloned()
                .unwrap_or_default(),
            dealer: item
                .get("dealerId")
                .and_then(|d| d.as_s().ok())
                .and_then(|d| DealerId::parse(d).ok()),
            opt_out_list: item.get("optOutList").and_then(|l| l.as_s().ok()).cloned(),
        }))
    }
}

#[async_trait]
impl DealerStore for DynamoStore {
    async fn dealer(&self, id: &DealerId) -> StoreResult<Option<Dealer>> {
        self.get(format!("DEALER#{id}"), "PROFILE")
            .await?
            .map(|i| from_item(&i).map_err(corrupt(id.as_str())))
            .transpose()
    }

    async fn put_dealer(
        &self,
        dealer: &Dealer,
        previous_number: Option<&PhoneNumber>,
    ) -> StoreResult<()> {
        let mut profile = to_item(dealer).map_err(corrupt(dealer.id.as_str()))?;
        profile.extend(key(format!("DEALER#{}", dealer.id), "PROFILE"));
        let mut owner = key(format!("NUMBER#{}", dealer.texting_number), "OWNER");
        owner.insert("dealerId".into(), s(dealer.id.as_str()));
        let owner_put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(owner))
            .condition_expression("attribute_not_exists(PK) OR dealerId = :me")
            .expression_attribute_values(":me", s(dealer.id.as_str()));
        let mut items = vec![
            put(&self.table, profile, None)?,
            TransactWriteItem::builder()
                .put(owner_put.build().map_err(unavailable("building Put"))?)
                .build(),
        ];
        if let Some(prev) = previous_number.filter(|p| *p != &dealer.texting_number) {
            let delete = Delete::builder()
                .table_name(&self.table)
                .set_key(Some(key(format!("NUMBER#{prev}"), "OWNER")))
                .condition_expression("attribute_not_exists(PK) OR dealerId = :me")
                .expression_attribute_values(":me", s(dealer.id.as_str()))
                .build()
                .map_err(unavailable("building Delete"))?;
            items.push(TransactWriteItem::builder().delete(delete).build());
        }
        transact(
            &self.client,
            items,
            "texting number belongs to another dealer",
        )
        .await
    }

    async fn dealer_by_number(&self, number: &PhoneNumber) -> StoreResult<Option<DealerId>> {
        let Some(item) = self.get(format!("NUMBER#{number}"), "OWNER").await? else {
            return Ok(None);
        };
        crate::attr::get_s(&item, "dealerId")
            .map(DealerId::parse)
            .transpose()
            .map_err(|e| StoreError::Corrupt {
                key: format!("NUMBER#{}", number.redacted()),
                reason: e.to_string(),
            })
    }
}

#[async_trait]
impl TemplateStore for DynamoStore {
    async fn dealer_templates(&self, dealer: &DealerId) -> StoreResult<Vec<DealerTemplate>> {
        self.query_all(None, "PK", format!("DEALER#{dealer}"), "SK", "TEMPLATE#")
            .await?
            .iter()
            .map(|i| from_item(i).map_err(corrupt("template")))
            .collect()
    }

    async fn dealer_template(
        &self,
        dealer: &DealerId,
        name: &str,
    ) -> StoreResult<Option<DealerTemplate>> {
        self.get(format!("DEALER#{dealer}"), &format!("TEMPLATE#{name}"))
            .await?
            .map(|i| from_item(&i).map_err(corrupt("template")))
            .transpose()
    }

    async fn put_template(
        &self,
        dealer: &DealerId,
        template: &DealerTemplate,
        previous: Option<u32>,
    ) -> StoreResult<()> {
        let mut item = to_item(template).map_err(corrupt("template"))?;
        item.extend(key(
            format!("DEALER#{dealer}"),
            format!("TEMPLATE#{}", template.name),
        ));
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item));
        let put = match previous {
            None => put.condition_expression("attribute_not_exists(PK)"),
            Some(v) => put
                .condition_expression("version = :v")
                .expression_attribute_values(":v", n(v)),
        };
        conditional_write(
            put.send().await,
            "template changed",
            "DynamoDB PutItem (template)",
        )
    }

    async fn delete_template(&self, dealer: &DealerId, name: &str) -> StoreResult<bool> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(
                format!("DEALER#{dealer}"),
                format!("TEMPLATE#{name}"),
            )))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(unavailable("DynamoDB DeleteItem (template)"))?;
        Ok(out.attributes.is_some_and(|a| !a.is_empty()))
    }
}

#[async_trait]
impl AutomationStore for DynamoStore {
    async fn automations(&self, dealer: &DealerId) -> StoreResult<Vec<Automation>> {
        self.query_all(None, "PK", format!("DEALER#{dealer}"), "SK", "AUTOMATION#")
            .await?
            .iter()
            .map(|i| from_item(i).map_err(corrupt("automation")))
            .collect()
    }

    async fn automation(
        &self,
        dealer: &DealerId,
        event_type: &str,
    ) -> StoreResult<Option<Automation>> {
        self.get(
            format!("DEALER#{dealer}"),
            &format!("AUTOMATION#{event_type}"),
        )
        .await?
        .map(|i| from_item(&i).map_err(corrupt("automation")))
        .transpose()
    }

    async fn put_automation(&self, dealer: &DealerId, automation: &Automation) -> StoreResult<()> {
        let mut item = to_item(automation).map_err(corrupt("automation"))?;
        item.extend(key(
            format!("DEALER#{dealer}"),
            format!("AUTOMATION#{}", automation.event_type),
        ));
        self.put_item(item, "DynamoDB PutItem (automation)").await
    }
}
