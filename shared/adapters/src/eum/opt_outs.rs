//! End User Messaging's opt-out lists: a person who texted START is taken off the list
//! of the number they texted (`DeleteOptedOutNumber`). Not on it: nothing to do. The
//! service lifts a number once in 30 days; a refusal is the carrier's, and the START is
//! recorded on the ledger all the same (`consent::service::replies`).

use async_trait::async_trait;
use aws_sdk_pinpointsmsvoicev2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_pinpointsmsvoicev2::operation::delete_opted_out_number::DeleteOptedOutNumberError;
use aws_sdk_pinpointsmsvoicev2::Client;

use consent::ports::CarrierError;
use consent::PhoneNumber;

use crate::carriers::OptOutList;

#[derive(Debug, Clone)]
pub struct EumOptOutList {
    client: Client,
}

impl EumOptOutList {
    /// Over the function's SDK configuration, with the SDK's retries: taking a number off a
    /// list twice finds it gone the second time, which is done.
    pub fn new(aws: &aws_config::SdkConfig) -> Self {
        Self {
            client: Client::new(aws),
        }
    }
}

#[async_trait]
impl OptOutList for EumOptOutList {
    async fn delete(&self, list: &str, person: &PhoneNumber) -> Result<(), CarrierError> {
        let result = self
            .client
            .delete_opted_out_number()
            .opt_out_list_name(list)
            .opted_out_number(person.as_str())
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(se)) => {
                let status = se.raw().status().as_u16();
                let code = se.err().code().unwrap_or("unknown").to_owned();
                match se.err() {
                    // Not on the list (or lifted by an earlier try): done.
                    DeleteOptedOutNumberError::ResourceNotFoundException(_) => Ok(()),
                    DeleteOptedOutNumberError::ThrottlingException(_) => {
                        Err(CarrierError::Throttled { retry_after: None })
                    }
                    _ if status >= 500 => Err(CarrierError::Retryable {
                        reason: format!("DeleteOptedOutNumber: HTTP {status} {code}"),
                        retry_after: None,
                    }),
                    // Refused (the 30-day rule, a list the number is not on): the service's
                    // code, never its words.
                    _ => Err(CarrierError::Permanent {
                        code: None,
                        reason: format!("DeleteOptedOutNumber: HTTP {status} {code}"),
                    }),
                }
            }
            Err(e) => Err(CarrierError::Retryable {
                reason: format!("DeleteOptedOutNumber: {e}"),
                retry_after: None,
            }),
        }
    }
}
