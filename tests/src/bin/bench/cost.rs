//! AWS cost per 1,000 texts from the measured requests and function time.

use serde_json::{json, Value};

use crate::round;

/// What the carrier's API takes to answer one send in AWS (assumed, not measured here:
/// the fake carrier answers in about a millisecond). deliver waits for it, ten at once.
const CARRIER_LATENCY_MS: f64 = 250.0;
/// The functions' memory as the template sizes them (arm64): 128 MB (Globals), deliver 1,024 MB
/// and dispatch 1,769 MB (their own MemorySize, chosen for CPU: infra/template.yaml).
const FUNCTION_GB: f64 = 128.0 / 1024.0;
const DELIVER_GB: f64 = 1.0; // 1,024 MB
const DISPATCH_GB: f64 = 1769.0 / 1024.0;

/// DynamoDB request units one operation costs in the model: writes of items up to 2 KB
/// (a message with its snapshot is about 1.5 KB) are 2 WRU; a transaction writes two
/// such items at twice the price; reads are strongly consistent items up to 4 KB (1 RRU),
/// a BatchGetItem two of them (the consent and the number's opt-out).
fn dynamodb_units(op: &str) -> (f64, f64) {
    match op {
        "PutItem" | "UpdateItem" => (2.0, 0.0),
        "DeleteItem" => (1.0, 0.0),
        "TransactWriteItems" => (8.0, 0.0),
        "GetItem" | "Query" => (0.0, 1.0),
        "BatchGetItem" => (0.0, 2.0),
        _ => (0.0, 0.0),
    }
}

/// AWS cost of one text from the requests it makes (measured), the functions' time
/// (measured, plus the carrier's assumed latency) and the events it publishes.
fn cost_per_text(requests: &Value, work: &Value, dispatch_ms_per_text: f64) -> Value {
    use stack_tests::prices::*;
    let mut dynamodb = 0.0;
    let mut sqs = 0.0;
    let mut ops = requests["by_operation"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    ops.extend(
        requests["event_source_mapping"]["by_operation"]
            .as_object()
            .cloned()
            .unwrap_or_default(),
    );
    for (op, count) in &ops {
        let count = count.as_f64().unwrap_or(0.0);
        match op.split_once('.') {
            Some(("DynamoDB", name)) => {
                let (w, r) = dynamodb_units(name);
                dynamodb += count * (w * DYNAMODB_USD_PER_WRU + r * DYNAMODB_USD_PER_RRU);
            }
            Some(("SQS", _)) => sqs += count * SQS_USD_PER_REQUEST,
            _ => {}
        }
    }
    let f = &work["by_function"];
    let records = work["deliver_records_per_invocation"]
        .as_f64()
        .unwrap_or(1.0)
        .max(1.0);
    let ms = |name: &str| f[name]["ms_per_text"].as_f64().unwrap_or(0.0);
    let calls = |name: &str| f[name]["invocations_per_text"].as_f64().unwrap_or(0.0);
    // deliver's records wait on the carrier together: its latency once per invocation.
    let deliver_ms = ms("deliver") + CARRIER_LATENCY_MS / records;
    // A status callback is stored by inbound and acted on by webhooks.
    let small_ms = ms("send") + ms("publish") + ms("inbound") + ms("webhooks");
    let lambda_ms = small_ms + deliver_ms + dispatch_ms_per_text;
    let lambda_gb_s =
        (small_ms * FUNCTION_GB + deliver_ms * DELIVER_GB + dispatch_ms_per_text * DISPATCH_GB)
            / 1000.0;
    let invocations =
        calls("send") + calls("deliver") + calls("publish") + calls("inbound") + calls("webhooks");
    let lambda = lambda_gb_s * LAMBDA_ARM_USD_PER_GB_SECOND + invocations * LAMBDA_USD_PER_REQUEST;
    // The portal's POST, and the carrier's status callbacks (sent, delivered) on the API.
    let http = (1.0 + calls("inbound")) * HTTP_API_USD_PER_REQUEST;
    let events = work["events_per_text"].as_f64().unwrap_or(0.0) * EVENTBRIDGE_USD_PER_EVENT;
    let total = dynamodb + sqs + lambda + http + events;
    json!({
        "usd_per_1000_texts": round(total * 1000.0, 5),
        "by_service_usd_per_1000_texts": {
            "dynamodb": round(dynamodb * 1000.0, 5),
            "sqs": round(sqs * 1000.0, 5),
            "lambda": round(lambda * 1000.0, 5),
            "http_api": round(http * 1000.0, 5),
            "eventbridge": round(events * 1000.0, 5),
        },
        "lambda_ms_per_text": round(lambda_ms, 2),
    })
}

pub(crate) fn cost(requests: &Value, throughput: &Value, burst: Option<&Value>) -> Value {
    use stack_tests::prices::*;
    let work = &throughput["function_work"];
    // dispatch's time per scheduled text: the burst's pass time, as the function spends it.
    let dispatch_ms = burst
        .and_then(|b| {
            b["seconds_until_all_queued"]
                .as_f64()
                .zip(b["messages"].as_f64())
        })
        .map(|(s, n)| s * 1000.0 / n)
        .unwrap_or(0.0);
    let immediate = cost_per_text(&requests["immediate"], work, 0.0);
    let scheduled = cost_per_text(&requests["scheduled"], work, dispatch_ms);
    let carrier = CARRIER_USD_PER_SEGMENT * 1000.0;
    let imm = immediate["usd_per_1000_texts"].as_f64().unwrap_or(f64::NAN);
    let sch = scheduled["usd_per_1000_texts"].as_f64().unwrap_or(f64::NAN);
    json!({
        "method": format!("requests per text (requests_per_message, measured on the emulator) priced per operation; the functions' time per text from the throughput run's REPORT lines (release builds) plus an assumed {CARRIER_LATENCY_MS} ms carrier answer shared by the records deliver works at once; dispatch's time per scheduled text from the 10,000 burst; status callbacks and published events as counted in the same run. Prices: {REGION} on-demand list prices read {PRICES_DATE} (tests/src/prices.rs), Lambda arm64 at the template's memory sizes (128 MB; deliver 1,024, dispatch 1,769 MB), the local time per text taken as is"),
        "usd_per_1000_texts": {"immediate": imm, "scheduled": sch},
        "immediate": immediate,
        "scheduled": scheduled,
        "reference": {"carrier_usd_per_1000_texts": round(carrier, 2), "carrier": "Twilio US SMS list price per segment, one segment a text, before carrier fees"},
        "ratio_to_carrier": {"immediate": round(imm / carrier, 5), "scheduled": round(sch / carrier, 5)},
        "goal": "below 2% of the carrier's price",
    })
}
