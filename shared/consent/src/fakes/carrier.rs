//! The carrier in memory, with scripted failures.

use super::*;

/// How the fake carrier answers the next sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CarrierScript {
    Retryable,
    OptedOut,
    Permanent,
    /// The carrier takes the text (the phone gets it) but the answer never arrives.
    AcceptThenTimeout,
}

#[derive(Default)]
struct CarrierState {
    sent: Vec<CarrierSend>,
    script: VecDeque<CarrierScript>,
    counter: u64,
}

/// The carrier in memory: records every send; can fail the next ones.
#[derive(Clone, Default)]
pub struct FakeCarrier {
    inner: Arc<Mutex<CarrierState>>,
}

impl FakeCarrier {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn sent(&self) -> Vec<CarrierSend> {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .sent
            .clone()
    }

    /// Texts received by a number, oldest first.
    pub fn inbox(&self, to: &PhoneNumber) -> Vec<String> {
        self.sent()
            .into_iter()
            .filter(|s| &s.to == to)
            .map(|s| s.body)
            .collect()
    }

    pub fn fail_next(&self, n: usize, how: CarrierScript) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.script.extend(std::iter::repeat_n(how, n));
    }
}

#[async_trait]
impl Carrier for FakeCarrier {
    async fn send(&self, message: &CarrierSend) -> Result<CarrierReceipt, CarrierError> {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        match g.script.pop_front() {
            Some(CarrierScript::Retryable) => Err(CarrierError::Retryable {
                reason: "HTTP 500".into(),
                retry_after: None,
            }),
            Some(CarrierScript::OptedOut) => Err(CarrierError::OptedOut { code: 21610 }),
            Some(CarrierScript::Permanent) => Err(CarrierError::Permanent {
                code: Some(21211),
                reason: "HTTP 400".into(),
            }),
            Some(CarrierScript::AcceptThenTimeout) => {
                g.counter += 1;
                g.sent.push(message.clone());
                Err(CarrierError::Unknown {
                    reason: "timeout after the request was sent".into(),
                })
            }
            None => {
                g.counter += 1;
                let sid = format!("SM{:032x}", g.counter);
                g.sent.push(message.clone());
                Ok(CarrierReceipt {
                    carrier_message_id: sid,
                })
            }
        }
    }
}
