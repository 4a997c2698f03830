"""Plays AWS's part for the template's triggers: SQS and DynamoDB-stream event source mappings, schedules.

    python -m infra.local.bridge --stack texting-dev [--endpoint http://127.0.0.1:4566]

For each SQS event source it long-polls the queue ({stack}-{QueueLogicalId}) with several pollers at
once, as Lambda's event source mapping does (BRIDGE_POLLERS, default 5, Lambda's initial number; the
event's ScalingConfig.MaximumConcurrency caps it), so several batches are in flight together. Each poller
invokes the consumer with a real SQS event through the invoke API ($LAMBDA_ENDPOINT, default
http://127.0.0.1:9000) and deletes only the records not listed in the answer's batchItemFailures (none
when the invocation fails or times out): the others become visible again after the visibility timeout,
and the queue's redrive policy moves poison messages to the DLQ. For each Schedule event it invokes the
function with an EventBridge "Scheduled Event" every SCHEDULE_PERIOD_SECONDS (default 60; the template's
rate is printed) without waiting for the previous run (EventBridge does not), at most two runs at once.
For each DynamoDB event source it reads the table's stream from LATEST, as the mapping does, keeps the
records its FilterCriteria let through, and invokes the function with real DynamoDB stream events in
order; on a failure (or the records from the first one reported in batchItemFailures) it retries the
rest, up to MaximumRetryAttempts, then sends the OnFailure queue what Lambda sends it (the batch's
place in the stream: shard, first and last sequence numbers, `on_failure_message`) and moves on.
Stops on SIGTERM/SIGINT. Environment: LAMBDA_ENDPOINT, SCHEDULE_PERIOD_SECONDS, BRIDGE_POLLERS,
BRIDGE_INVOKE_TIMEOUT_SECONDS (default 900; the Lambda service ends an invocation at its Timeout).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timezone
from typing import Any, Callable, Mapping

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from infra.local import template as tpl

DEFAULT_ENDPOINT = "http://127.0.0.1:4566"
DEFAULT_LAMBDA = "http://127.0.0.1:9000"
WAIT_SECONDS = 2
DEFAULT_POLLERS = 5  # Lambda starts an SQS event source with five concurrent pollers
SCHEDULE_OVERLAP = 2  # scheduled runs of one schedule in flight at most


class InvokeError(Exception):
    """The invocation failed: unreachable invoke API, HTTP error, or a function error payload.

    `status` is the invoke API's HTTP status (500 when it did not answer); `function_error` the
    X-Amz-Function-Error of a function error ("Unhandled"), else None."""

    def __init__(self, message: str, status: int = 500, function_error: str | None = None) -> None:
        super().__init__(message)
        self.status, self.function_error = status, function_error


def invoke(lambda_endpoint: str, function: str, event: Mapping[str, Any], timeout: float) -> Any:
    """POST `event` to the invoke API and return the decoded result."""
    req = urllib.request.Request(f"{lambda_endpoint}/2015-03-31/functions/{function}/invocations",
                                 data=json.dumps(event).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - local URL
            raw, status, function_error = resp.read(), resp.status, resp.headers.get("X-Amz-Function-Error")
    except urllib.error.HTTPError as e:
        raise InvokeError(f"HTTP {e.code}: {e.read()[:300]!r}", status=e.code) from e
    except (OSError, urllib.error.URLError) as e:
        raise InvokeError(str(e)) from e
    try:
        result = json.loads(raw) if raw.strip() else None
    except ValueError as e:
        raise InvokeError(f"not JSON: {raw[:200]!r}") from e
    if function_error or (isinstance(result, dict) and "errorType" in result):
        raise InvokeError(f"{(result or {}).get('errorType')}: {(result or {}).get('errorMessage')}",
                          status=status, function_error=function_error or "Unhandled")
    return result


def sqs_record(message: Mapping[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """An SQS ReceiveMessage result -> a Lambda SQS event record."""
    attributes = dict(message.get("Attributes") or {})
    attributes.setdefault("ApproximateReceiveCount", "1")
    attributes.setdefault("SentTimestamp", str(int(time.time() * 1000)))
    attributes.setdefault("SenderId", tpl.DEFAULT_ACCOUNT)
    attributes.setdefault("ApproximateFirstReceiveTimestamp", str(int(time.time() * 1000)))
    message_attributes = {}
    for name, attr in (message.get("MessageAttributes") or {}).items():
        message_attributes[name] = {
            "stringValue": attr.get("StringValue"),
            "binaryValue": _b64(attr["BinaryValue"]) if "BinaryValue" in attr else None,
            "stringListValues": attr.get("StringListValues", []),
            "binaryListValues": [_b64(b) for b in attr.get("BinaryListValues", [])],
            "dataType": attr.get("DataType", "String"),
        }
    body = message.get("Body", "")
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": body,
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "md5OfBody": message.get("MD5OfBody") or hashlib.md5(body.encode()).hexdigest(),  # noqa: S324
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def _b64(data: bytes | str) -> str:
    return base64.b64encode(data if isinstance(data, bytes) else data.encode()).decode()


def failed_ids(result: Any) -> set[str]:
    """Message ids listed in a partial batch response."""
    if not isinstance(result, dict):
        return set()
    return {str(f.get("itemIdentifier")) for f in result.get("batchItemFailures") or [] if isinstance(f, dict)}


def stream_record(record: Mapping[str, Any], stream_arn: str, region: str) -> dict[str, Any]:
    """A DynamoDB Streams record (GetRecords) as Lambda hands it to a function."""
    def plain(value: Any) -> Any:  # binary attribute values travel base64-encoded, as in Lambda's events
        if isinstance(value, (bytes, bytearray)):
            return _b64(bytes(value))
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value

    change = plain(dict(record["dynamodb"]))
    created = change.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        change["ApproximateCreationDateTime"] = created.timestamp()
    return {"eventID": record.get("eventID", uuid.uuid4().hex), "eventName": record["eventName"],
            "eventVersion": "1.1", "eventSource": "aws:dynamodb", "awsRegion": region,
            "dynamodb": change, "eventSourceARN": stream_arn}


def on_failure_message(records: list[Mapping[str, Any]], shard_id: str, function_arn: str, invocations: int,
                       status: int = 200, function_error: str | None = None,
                       now: datetime | None = None) -> dict[str, Any]:
    """What Lambda sends a DynamoDB stream source's OnFailure destination when it gives up on `records`
    (Lambda-shaped, in stream order): not the records, their place in the stream (DDBStreamBatchInfo),
    with the invocation's request and response context. Field names and layout as AWS documents them
    ("Retain discarded records for a DynamoDB event source in Lambda")."""
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)

    def arrival(record: Mapping[str, Any]) -> str:
        created = record["dynamodb"].get("ApproximateCreationDateTime")
        when = datetime.fromtimestamp(float(created), timezone.utc) if created is not None else now
        return when.strftime("%Y-%m-%dT%H:%M:%SZ")

    response: dict[str, Any] = {"statusCode": status, "executedVersion": "$LATEST"}
    if function_error:
        response["functionError"] = function_error
    return {
        "requestContext": {"requestId": str(uuid.uuid4()), "functionArn": function_arn,
                           "condition": "RetryAttemptsExhausted", "approximateInvokeCount": invocations},
        "responseContext": response,
        "version": "1.0",
        "timestamp": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
        "DDBStreamBatchInfo": {
            "shardId": shard_id,
            "startSequenceNumber": records[0]["dynamodb"]["SequenceNumber"],
            "endSequenceNumber": records[-1]["dynamodb"]["SequenceNumber"],
            "approximateArrivalOfFirstRecord": arrival(records[0]),
            "approximateArrivalOfLastRecord": arrival(records[-1]),
            "batchSize": len(records),
            "streamArn": records[0]["eventSourceARN"],
        },
    }


def scheduled_event(rule_arn: str, region: str) -> dict[str, Any]:
    """EventBridge's "Scheduled Event" payload."""
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
        "account": tpl.DEFAULT_ACCOUNT, "time": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region, "resources": [rule_arn], "detail": {},
    }


_LOG_LOCK = threading.Lock()


def _log_line(line: str) -> None:
    """One whole line per write, so lines from the poller threads never interleave."""
    with _LOG_LOCK:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


class Bridge:
    """Poller threads per SQS source, one thread per schedule; `stop` ends them within about WAIT_SECONDS."""

    def __init__(self, template: Mapping[str, Any], stack: str, endpoint: str = DEFAULT_ENDPOINT,
                 lambda_endpoint: str = DEFAULT_LAMBDA, region: str = tpl.DEFAULT_REGION,
                 schedule_period: float = 60.0, invoke_timeout: float = 900.0,
                 log: Callable[[str], None] | None = None, pollers: int = DEFAULT_POLLERS) -> None:
        self.template, self.stack, self.region = template, stack, region
        self.lambda_endpoint = lambda_endpoint.rstrip("/")
        self.schedule_period, self.invoke_timeout = schedule_period, invoke_timeout
        self.pollers = max(1, pollers)
        self.log = log or _log_line
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        credentials = {"aws_access_key_id": os.environ.get("AWS_ACCESS_KEY_ID", "test"),
                       "aws_secret_access_key": os.environ.get("AWS_SECRET_ACCESS_KEY", "test")}
        self.sqs = boto3.client("sqs", endpoint_url=endpoint, region_name=region, **credentials)
        self.ddb = boto3.client("dynamodb", endpoint_url=endpoint, region_name=region, **credentials)
        self.streams = boto3.client("dynamodbstreams", endpoint_url=endpoint, region_name=region, **credentials)

    def start(self) -> None:
        for source in tpl.sqs_sources(self.template):
            pollers = min(self.pollers, source.max_concurrency or self.pollers)
            self.log(f"bridge: {self.stack}-{source.queue} -> {source.function} "
                     f"(batch {source.batch_size}, {pollers} pollers)")
            for _ in range(pollers):
                self._spawn(self.poll_queue, source)
        for stream in tpl.stream_sources(self.template):
            self.log(f"bridge: {self.stack}-{stream.table} stream -> {stream.function} (batch {stream.batch_size})")
            self._spawn(self.poll_stream, stream)
        for schedule in tpl.schedules(self.template):
            self.log(f"bridge: {schedule.function} on {schedule.rate} -> every {self.schedule_period:g} s locally")
            self._spawn(self.fire_schedule, schedule)

    def _spawn(self, target: Callable[[Any], None], arg: Any) -> None:
        thread = threading.Thread(target=target, args=(arg,), daemon=True)
        thread.start()
        self.threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        self.stopping.set()
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def poll_queue(self, source: tpl.SqsSource) -> None:
        name = tpl.queue_name(self.template, self.stack, source.queue)
        url = arn = None
        while not self.stopping.is_set():
            try:
                if url is None:
                    url = self.sqs.get_queue_url(QueueName=name)["QueueUrl"]
                    arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
                        "Attributes"]["QueueArn"]
                self.poll_once(source, url, arn)  # type: ignore[arg-type]
            except (ClientError, BotoCoreError) as e:
                self.log(f"bridge: {name}: {e}")
                self.stopping.wait(WAIT_SECONDS)

    def poll_once(self, source: tpl.SqsSource, url: str, arn: str) -> None:
        """One ReceiveMessage, one invocation, one DeleteMessageBatch of the records that succeeded."""
        messages = self.sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=min(source.batch_size, 10), WaitTimeSeconds=WAIT_SECONDS,
            AttributeNames=["All"], MessageAttributeNames=["All"]).get("Messages", [])
        if not messages:
            return
        records = [sqs_record(m, arn, self.region) for m in messages]
        started = time.monotonic()
        try:
            result = invoke(self.lambda_endpoint, source.function, {"Records": records}, self.invoke_timeout)
            failed = failed_ids(result) if source.report_batch_item_failures else set()
            if not failed <= {r["messageId"] for r in records}:  # Lambda: an unknown id fails the batch
                failed = {r["messageId"] for r in records}
            error = ""
        except InvokeError as e:
            failed, error = {r["messageId"] for r in records}, f" error: {e}"
        done = [r for r in records if r["messageId"] not in failed]
        if done:
            entries = [{"Id": str(i), "ReceiptHandle": r["receiptHandle"]} for i, r in enumerate(done)]
            self.sqs.delete_message_batch(QueueUrl=url, Entries=entries)
        self.log(f"bridge: {source.function} records={len(records)} failures={len(failed)} "
                 f"{(time.monotonic() - started) * 1000:.0f} ms{error}")

    def poll_stream(self, source: tpl.StreamSource) -> None:
        """Reads every shard of the table's stream from where it is now (LATEST) and hands the records
        the filters keep to the function, in order, one batch at a time."""
        table = f"{self.stack}-{source.table}"
        patterns = [json.loads(p) for p in source.filters]
        iterators: dict[str, str] = {}
        arn = ""
        while not self.stopping.is_set():
            try:
                if not arn:
                    arn = self.ddb.describe_table(TableName=table)["Table"].get("LatestStreamArn", "")
                    if not arn:
                        raise RuntimeError(f"{table} has no stream")
                for shard in self.streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
                    if shard["ShardId"] not in iterators:
                        iterators[shard["ShardId"]] = self.streams.get_shard_iterator(
                            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="LATEST")["ShardIterator"]
                busy = False
                for shard_id, iterator in list(iterators.items()):
                    out = self.streams.get_records(ShardIterator=iterator, Limit=source.batch_size)
                    iterators[shard_id] = out.get("NextShardIterator") or iterator
                    records = [stream_record(r, arn, self.region) for r in out.get("Records", [])]
                    kept = [r for r in records if not patterns or any(tpl.matches(p, r) for p in patterns)]
                    busy |= bool(records)
                    if kept:
                        self.deliver_stream(source, kept, shard_id)
                if not busy:
                    self.stopping.wait(0.5)
            except (ClientError, BotoCoreError, RuntimeError) as e:
                self.log(f"bridge: {table} stream: {e}")
                arn = ""
                iterators.clear()
                self.stopping.wait(WAIT_SECONDS)

    def deliver_stream(self, source: tpl.StreamSource, records: list[dict[str, Any]], shard_id: str) -> None:
        """Invokes with the records (of shard `shard_id`) in order; retries from the first failure, then
        gives up to the OnFailure queue (as MaximumRetryAttempts and DestinationConfig do)."""
        attempt = 0
        while records and not self.stopping.is_set():
            started = time.monotonic()
            status, function_error = 200, None
            try:
                result = invoke(self.lambda_endpoint, source.function, {"Records": records}, self.invoke_timeout)
                failed = failed_ids(result) if source.report_batch_item_failures else set()
                error = ""
            except InvokeError as e:
                failed, error = {records[0]["dynamodb"]["SequenceNumber"]}, f" error: {e}"
                status, function_error = e.status, e.function_error
            sequence = [r["dynamodb"]["SequenceNumber"] for r in records]
            first = min((sequence.index(f) for f in failed if f in sequence), default=None)
            if failed and first is None:  # an unknown id fails the whole batch, as Lambda does
                first = 0
            self.log(f"bridge: {source.function} stream records={len(records)} "
                     f"failed-from={first} {(time.monotonic() - started) * 1000:.0f} ms{error}")
            if first is None:
                return
            records = records[first:]
            attempt += 1
            if 0 <= source.max_retries < attempt:
                self.give_up(source, records, shard_id, attempt, status, function_error)
                return
            self.stopping.wait(min(2 ** attempt * 0.1, 5))

    def give_up(self, source: tpl.StreamSource, records: list[dict[str, Any]], shard_id: str, invocations: int,
                status: int = 200, function_error: str | None = None) -> None:
        """Sends the OnFailure queue Lambda's record of the batch (without one, Lambda just drops it)."""
        if source.on_failure:
            name = tpl.queue_name(self.template, self.stack, source.on_failure)
            function_arn = f"arn:aws:lambda:{self.region}:{tpl.DEFAULT_ACCOUNT}:function:{source.function}"
            body = on_failure_message(records, shard_id, function_arn, invocations, status, function_error)
            try:
                url = self.sqs.get_queue_url(QueueName=name)["QueueUrl"]
                self.sqs.send_message(QueueUrl=url, MessageBody=json.dumps(body))
            except (ClientError, BotoCoreError) as e:
                self.log(f"bridge: {source.function}: could not record the failed batch: {e}")
        self.log(f"bridge: {source.function} gave up on {len(records)} stream records "
                 f"({records[0]['dynamodb']['SequenceNumber']}..{records[-1]['dynamodb']['SequenceNumber']})")

    def fire_schedule(self, schedule: tpl.ScheduleSource) -> None:
        """Every period, one run in its own thread (a slow run does not delay the next tick)."""
        rule_arn = f"arn:aws:events:{self.region}:{tpl.DEFAULT_ACCOUNT}:rule/{self.stack}-{schedule.name}"
        in_flight = threading.Semaphore(SCHEDULE_OVERLAP)
        while not self.stopping.wait(self.schedule_period):
            if not in_flight.acquire(blocking=False):
                self.log(f"bridge: {schedule.function} scheduled run skipped: {SCHEDULE_OVERLAP} still running")
                continue
            threading.Thread(target=self.run_scheduled, args=(schedule, rule_arn, in_flight), daemon=True).start()

    def run_scheduled(self, schedule: tpl.ScheduleSource, rule_arn: str, in_flight: threading.Semaphore) -> None:
        started = time.monotonic()
        try:
            invoke(self.lambda_endpoint, schedule.function, scheduled_event(rule_arn, self.region),
                   self.invoke_timeout)
            error = ""
        except InvokeError as e:
            error = f" error: {e}"
        finally:
            in_flight.release()
        self.log(f"bridge: {schedule.function} scheduled {(time.monotonic() - started) * 1000:.0f} ms{error}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.local.bridge", description=__doc__.split("\n")[0])
    parser.add_argument("--stack", required=True)
    parser.add_argument("--endpoint", default=os.environ.get("AWS_ENDPOINT_URL", DEFAULT_ENDPOINT))
    parser.add_argument("--template", default=str(tpl.TEMPLATE_PATH))
    args = parser.parse_args(argv)
    bridge = Bridge(tpl.load(args.template), args.stack, endpoint=args.endpoint,
                    lambda_endpoint=os.environ.get("LAMBDA_ENDPOINT", DEFAULT_LAMBDA),
                    region=os.environ.get("AWS_REGION", tpl.DEFAULT_REGION),
                    schedule_period=float(os.environ.get("SCHEDULE_PERIOD_SECONDS", 60)),
                    invoke_timeout=float(os.environ.get("BRIDGE_INVOKE_TIMEOUT_SECONDS", 900)),
                    pollers=int(os.environ.get("BRIDGE_POLLERS", DEFAULT_POLLERS)))
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    bridge.start()
    stop.wait()
    print("bridge: stopping", flush=True)
    bridge.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
