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

/// AWS requests of one status report's queue hop, by carrier (counted from the path, not
/// measured here: one each): Twilio's callback is stored by `inbound` (SQS SendMessage) after
/// an HTTP API request; End User Messaging publishes its event to SNS (a publish), which
/// delivers to the queue for free. Either way the mapping receives and deletes it, as it does
/// an outbound record (measured).
fn queue_hop(carrier: &str) -> (f64, f64, f64) {
    // (SQS sends, SNS publishes, HTTP API requests) per report
    match carrier {
        "twilio" => (1.0, 0.0, 1.0),
        _ => (0.0, 1.0, 0.0),
    }
}

/// Requests and AWS cost per 1,000 immediate texts on each carrier: the texts' own requests
/// (measured), each carrier's two status reports acted on by the webhooks function (measured
/// per carrier) with their queue hop, End User Messaging's `SendTextMessage` (one a text, an
/// AWS request with no fee of its own), and the carrier's price.
fn by_carrier(requests: &Value, immediate_usd: f64) -> Value {
    use stack_tests::prices::*;
    let imm = &requests["immediate"];
    let own = imm["total"].as_f64().unwrap_or(f64::NAN);
    let mapping_per_record = imm["event_source_mapping"]["total"].as_f64().unwrap_or(0.0);
    let mut out = serde_json::Map::new();
    for (carrier, price) in [
        ("twilio", CARRIER_USD_PER_SEGMENT),
        ("end-user-messaging", EUM_USD_PER_SEGMENT),
    ] {
        let status = &requests["status_path_per_text"][carrier];
        let mut dynamodb = 0.0;
        for (op, count) in status["by_operation"]
            .as_object()
            .cloned()
            .unwrap_or_default()
        {
            if let Some(("DynamoDB", name)) = op.split_once('.') {
                let (w, r) = dynamodb_units(name);
                dynamodb += count.as_f64().unwrap_or(0.0)
                    * (w * DYNAMODB_USD_PER_WRU + r * DYNAMODB_USD_PER_RRU);
            }
        }
        let reports = 2.0;
        let (sqs_sends, publishes, http) = queue_hop(carrier);
        let send_call = if carrier == "twilio" { 0.0 } else { 1.0 };
        let aws_requests = own
            + mapping_per_record
            + status["total"].as_f64().unwrap_or(0.0)
            + reports * (sqs_sends + publishes + mapping_per_record)
            + send_call;
        let status_usd = dynamodb
            + reports
                * ((sqs_sends + mapping_per_record) * SQS_USD_PER_REQUEST
                    + publishes * SNS_USD_PER_PUBLISH
                    + http * HTTP_API_USD_PER_REQUEST);
        // The immediate model already prices Twilio's callbacks on the HTTP API and the
        // functions' time; End User Messaging's events take no HTTP API request.
        let twilio_http = if carrier == "twilio" {
            0.0
        } else {
            -reports * HTTP_API_USD_PER_REQUEST
        };
        let aws = immediate_usd / 1000.0 + status_usd + twilio_http;
        out.insert(carrier.into(), json!({
            "aws_requests_per_text": round(aws_requests, 2),
            "status_path_requests_per_report": round(status["total"].as_f64().unwrap_or(0.0) / reports, 2),
            "aws_usd_per_1000_texts": round(aws * 1000.0, 5),
            "carrier_usd_per_1000_texts": round(price * 1000.0, 2),
            "total_usd_per_1000_texts": round((aws + price) * 1000.0, 3),
            "aws_share_of_total": round(aws / (aws + price), 5),
        }));
    }
    Value::Object(out)
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
        "by_carrier": by_carrier(requests, imm),
        "by_carrier_method": "immediate texts: their own AWS requests and the mapping's receive/delete per record (measured), each carrier's two status reports acted on by the webhooks function with the real adapters (measured per carrier), one queue hop per report (Twilio: the HTTP API and inbound's SQS send; End User Messaging: an SNS publish, delivered to SQS for free), End User Messaging's SendTextMessage (one a text); carrier prices in tests/src/prices.rs (End User Messaging's is an assumption to check)",
        "goal": "below 2% of the carrier's price",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_carrier_adds_its_status_hops_and_end_user_messaging_its_send_call() {
        let status = json!({"by_operation": {"DynamoDB.GetItem": 3.0, "DynamoDB.PutItem": 1.0}, "total": 4.0});
        let requests = json!({
            "immediate": {"total": 6.0, "event_source_mapping": {"total": 0.2}},
            "status_path_per_text": {"twilio": status, "end-user-messaging": status},
        });
        let got = by_carrier(&requests, 0.03);
        // 6 + 0.2 (the text's own) + 4 (status) + 2 x (1 hop + 0.2 mapping) [+ 1 SendTextMessage]
        assert_eq!(got["twilio"]["aws_requests_per_text"], 12.6);
        assert_eq!(got["end-user-messaging"]["aws_requests_per_text"], 13.6);
        assert_eq!(got["twilio"]["carrier_usd_per_1000_texts"], 8.3);
        let aws = |c: &str| got[c]["aws_usd_per_1000_texts"].as_f64().unwrap();
        assert!(
            aws("twilio") > 0.03 && aws("end-user-messaging") > 0.0,
            "{got}"
        );
        // No HTTP API request for End User Messaging's events, an SNS publish instead.
        assert!(aws("end-user-messaging") < aws("twilio"), "{got}");
    }
}
