//! What the functions did during a stretch of the local stack's log: invocations and their
//! durations (REPORT lines), the SQS records deliver got, the events publish sent.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Map, Value};

use crate::round;

/// What the functions did in a stretch of the stack's log: invocations and their
/// durations, the SQS records deliver got, the events publish sent.
#[derive(Default)]
pub(crate) struct FunctionWork {
    /// function -> (invocations, total duration in ms)
    invocations: BTreeMap<String, (u64, f64)>,
    deliver_records: u64,
    deliver_batches: u64,
    events: u64,
}

impl FunctionWork {
    pub(crate) fn read(log: &Path, from: u64) -> FunctionWork {
        let text = std::fs::read(log).unwrap_or_default();
        let text = String::from_utf8_lossy(text.get(from as usize..).unwrap_or_default());
        let mut work = FunctionWork::default();
        for line in text.lines() {
            if let Some(rest) = line.split("REPORT ").nth(1) {
                let name = rest.split('[').next().unwrap_or("").to_owned();
                let ms = rest
                    .split("Duration: ")
                    .nth(1)
                    .and_then(|d| d.split_whitespace().next())
                    .and_then(|d| d.parse::<f64>().ok());
                if let Some(ms) = ms {
                    let e = work.invocations.entry(name).or_default();
                    e.0 += 1;
                    e.1 += ms;
                }
            } else if let Some(rest) = line.split("bridge: deliver records=").nth(1) {
                if let Some(n) = rest
                    .split_whitespace()
                    .next()
                    .and_then(|n| n.parse::<u64>().ok())
                {
                    work.deliver_records += n;
                    work.deliver_batches += 1;
                }
            } else if line.contains("\"message\":\"published\"") {
                if let Some(n) = line
                    .split("\"events\":")
                    .nth(1)
                    .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
                    .and_then(|n| n.parse::<u64>().ok())
                {
                    work.events += n;
                }
            }
        }
        work
    }

    pub(crate) fn per_text(&self, texts: usize) -> Value {
        let n = texts as f64;
        let by_function: Map<String, Value> = self
            .invocations
            .iter()
            .map(|(f, (count, ms))| {
                (
                    f.clone(),
                    json!({"invocations_per_text": round(*count as f64 / n, 4), "ms_per_text": round(ms / n, 3), "ms_per_invocation": round(ms / *count as f64, 1)}),
                )
            })
            .collect();
        json!({
            "texts": texts,
            "by_function": by_function,
            "deliver_records_per_invocation": round(self.deliver_records as f64 / self.deliver_batches.max(1) as f64, 2),
            "events_per_text": round(self.events as f64 / n, 3),
        })
    }
}
