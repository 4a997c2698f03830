"""Replay the stream batches the publisher gave up on: PublishFailures, back through the publish function.

    python -m infra.replay_publish_failures --queue-url <PublishFailures URL> --function-name <publish function>
        [--lambda-endpoint URL] [--max-messages 100] [--dry-run] [--template infra/template.yaml]

When PublishFunction fails a batch of the table's stream MaximumRetryAttempts times, Lambda sends
PublishFailures where the batch was (DDBStreamBatchInfo: shard, first and last sequence number, how many
records), not the records, and the stream keeps records for 24 hours only. For each message (at most
--max-messages) this reads the shard from startSequenceNumber to endSequenceNumber, keeps the records the
function's FilterCriteria keep (read from the template), and invokes the function with them as Lambda
does ({"Records": [...]}, in stream order). A message is deleted only when that invocation answered with
no batchItemFailures; a failed invocation keeps it (run again once the cause is fixed).

A batch no longer in the stream (TrimmedDataAccessException, its shard or stream gone, or fewer records
than batchSize) is reported on stderr (how many records, which sequence range, when they were written)
and its message kept for a person: those events must be rebuilt from the table (the consent ledger
export, the messages). Kept messages become visible again when the command ends, so the
PublishFailuresAlarm stays raised until a person deletes them.

Uses the standard AWS credentials and region (and AWS_ENDPOINT_URL, so it works on the emulator). The
function is invoked with the Lambda API; with --lambda-endpoint (default AWS_ENDPOINT_URL_LAMBDA) through
that invoke API instead: locally the stack's Lambda service (LAMBDA_ENDPOINT in .local/<stack>.env; the
function is `publish`). `--dry-run` reads the queue and the stream and lists what it would replay, invoking
and deleting nothing. Prints a one-line summary; exits 1 if any message was kept, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from infra.local import template as tpl
from infra.local.bridge import InvokeError, invoke, stream_record

FAILURES_QUEUE = "PublishFailures"  # the template's logical id of the stream source's OnFailure queue
WAIT_SECONDS = 1  # ReceiveMessage long poll: an empty answer means the queue is drained
HIDE_SECONDS = 900  # a message being replayed stays hidden this long at most (Lambda's longest Timeout)
INVOKE_TIMEOUT = 900.0
READ_LIMIT = 1000  # GetRecords' maximum
EMPTY_READS = 10  # consecutive empty GetRecords pages before a read ends short of endSequenceNumber
EMPTY_READ_PAUSE = 0.2  # GetRecords allows 5 calls a second per shard
GONE_CODES = {"TrimmedDataAccessException", "ResourceNotFoundException"}
FIELDS = ("shardId", "startSequenceNumber", "endSequenceNumber", "batchSize", "streamArn")

Invoke = Callable[[Mapping[str, Any]], Any]


class Gone(Exception):
    """The batch's records are no longer (all) in the stream."""


@dataclass
class Summary:
    replayed: int = 0  # batches (would be) replayed
    records: int = 0
    gone: int = 0  # kept: no longer in the stream
    failed: int = 0  # kept: the invocation (or reading the stream) failed
    unreadable: int = 0  # kept: not a DynamoDB stream failure record
    release: list[str] = field(default_factory=list)  # receipt handles to make visible again

    @property
    def kept(self) -> int:
        return self.gone + self.failed + self.unreadable

    def line(self, dry_run: bool) -> str:
        verb = "would replay" if dry_run else "replayed"
        text = f"replay: {verb} {self.replayed} batches, {self.records} records, {self.kept} kept for a person"
        if self.kept:
            text += (f" ({self.gone} no longer in the stream, {self.failed} failed, "
                     f"{self.unreadable} not a stream failure record)")
        return text


def batch_info(body: str) -> dict[str, Any]:
    """The DDBStreamBatchInfo of a PublishFailures message; ValueError if it has none."""
    try:
        doc = json.loads(body)
    except ValueError as e:
        raise ValueError("not JSON") from e
    info = doc.get("DDBStreamBatchInfo") if isinstance(doc, dict) else None
    if not isinstance(info, dict):
        raise ValueError("no DDBStreamBatchInfo")
    missing = [f for f in FIELDS if f not in info]
    if missing:
        raise ValueError(f"DDBStreamBatchInfo lacks {', '.join(missing)}")
    for name in ("startSequenceNumber", "endSequenceNumber", "batchSize"):
        if not str(info[name]).isdigit():
            raise ValueError(f"{name} is not a number: {info[name]!r}")
    return info


def region_of(arn: str) -> str:
    return arn.split(":")[3]


def read_range(streams: Any, info: Mapping[str, Any], patterns: list[Any]) -> list[dict[str, Any]]:
    """The records of the batch's range that the filters keep, in Lambda's shape and stream order.
    Raises Gone when the stream no longer has the range's start (trimmed, or the shard or stream deleted)."""
    arn, start, end = info["streamArn"], int(info["startSequenceNumber"]), int(info["endSequenceNumber"])
    kept: list[dict[str, Any]] = []
    try:
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=info["shardId"],
                                              ShardIteratorType="AT_SEQUENCE_NUMBER",
                                              SequenceNumber=str(info["startSequenceNumber"]))["ShardIterator"]
        empty = 0
        while iterator and empty < EMPTY_READS:
            page = streams.get_records(ShardIterator=iterator, Limit=READ_LIMIT)
            iterator = page.get("NextShardIterator")  # none: the shard is closed and read to its end
            records = page.get("Records") or []
            empty = 0 if records else empty + 1
            for raw in records:
                sequence = int(raw["dynamodb"]["SequenceNumber"])
                if sequence > end:
                    return kept
                if sequence < start:
                    continue
                record = stream_record(raw, arn, region_of(arn))
                if not patterns or any(tpl.matches(p, record) for p in patterns):
                    kept.append(record)
                if sequence == end:
                    return kept
            if not records and iterator:
                time.sleep(EMPTY_READ_PAUSE)
    except ClientError as e:
        code = e.response.get("Error", {}).get("Code", "")
        if code in GONE_CODES:
            raise Gone(f"{code}: {e.response.get('Error', {}).get('Message', '')}") from e
        raise
    return kept


def failures_of(result: Any) -> list[Any]:
    """The batchItemFailures of the function's answer (none: the whole batch was published)."""
    if not isinstance(result, dict):
        return []
    return list(result.get("batchItemFailures") or [])


def http_invoker(endpoint: str, function: str, timeout: float = INVOKE_TIMEOUT) -> Invoke:
    """Through an invoke API without signing, as the local bridge calls the local Lambda service."""
    return lambda event: invoke(endpoint.rstrip("/"), function, event, timeout)


def lambda_invoker(function: str, region: str | None = None, timeout: float = INVOKE_TIMEOUT) -> Invoke:
    """boto3's Lambda Invoke (RequestResponse), its function errors raised as InvokeError."""
    client = boto3.client("lambda", region_name=region,
                          config=Config(read_timeout=int(timeout) + 10, connect_timeout=10))

    def call(event: Mapping[str, Any]) -> Any:
        try:
            resp = client.invoke(FunctionName=function, InvocationType="RequestResponse",
                                 Payload=json.dumps(event).encode())
            raw = resp["Payload"].read()
        except (ClientError, BotoCoreError) as e:
            raise InvokeError(str(e)) from e
        try:
            result = json.loads(raw) if raw.strip() else None
        except ValueError as e:
            raise InvokeError(f"not JSON: {raw[:200]!r}") from e
        if resp.get("FunctionError"):
            error = result if isinstance(result, dict) else {}
            raise InvokeError(f"{error.get('errorType')}: {error.get('errorMessage')}",
                              status=resp.get("StatusCode", 200), function_error=resp["FunctionError"])
        return result

    return call


def _report(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class Replay:
    """Works through the queue: one message at a time, at most `max_messages`."""

    def __init__(self, sqs: Any, streams_for: Callable[[str], Any], invoker: Invoke | None, patterns: list[Any],
                 queue_url: str, dry_run: bool = False, log: Callable[[str], None] = print,
                 report: Callable[[str], None] = _report) -> None:
        self.sqs, self.streams_for, self.invoker = sqs, streams_for, invoker
        self.patterns, self.queue_url, self.dry_run = patterns, queue_url, dry_run
        self.log, self.report = log, report

    def run(self, max_messages: int) -> Summary:
        summary = Summary()
        seen: set[str] = set()
        try:
            while len(seen) < max_messages:
                messages = self.sqs.receive_message(
                    QueueUrl=self.queue_url, MaxNumberOfMessages=max(1, min(10, max_messages - len(seen))),
                    WaitTimeSeconds=WAIT_SECONDS, VisibilityTimeout=HIDE_SECONDS,
                    AttributeNames=["All"]).get("Messages", [])
                if not messages:
                    break
                for message in messages:
                    if message["MessageId"] in seen:  # a second copy (standard queue): the next run sees it
                        summary.release.append(message["ReceiptHandle"])
                        continue
                    seen.add(message["MessageId"])
                    self.one(message, summary)
        finally:
            self.make_visible(summary.release)
        return summary

    def one(self, message: Mapping[str, Any], summary: Summary) -> None:
        mid, receipt = message["MessageId"], message["ReceiptHandle"]
        try:
            info = batch_info(message.get("Body", ""))
        except ValueError as e:
            self.report(f"replay: message {mid}: not a DynamoDB stream failure record ({e}); kept for a person")
            summary.unreadable += 1
            summary.release.append(receipt)
            return
        start, end, size = info["startSequenceNumber"], info["endSequenceNumber"], int(info["batchSize"])
        where = f"shard {info['shardId']} sequence {start}..{end}"
        written = (f"written {info.get('approximateArrivalOfFirstRecord', '?')}"
                   f"..{info.get('approximateArrivalOfLastRecord', '?')}")
        try:
            records = read_range(self.streams_for(region_of(info["streamArn"])), info, self.patterns)
        except Gone as e:
            records, gone = [], str(e)
        except (ClientError, BotoCoreError) as e:
            self.report(f"replay: message {mid}: could not read {where}: {e}; kept (run again)")
            summary.failed += 1
            summary.release.append(receipt)
            return
        else:
            gone = "" if len(records) >= size else "fewer records in the stream than the batch had"
        if gone:
            still = (f"; still there: {len(records)}, {records[0]['dynamodb']['SequenceNumber']}.."
                     f"{records[-1]['dynamodb']['SequenceNumber']}") if records else ""
            self.report(f"replay: NOT IN THE STREAM: {size - len(records)} of {size} records of {where} "
                        f"({written}; stream {info['streamArn']}) are no longer in the stream ({gone}{still}). "
                        f"Message {mid} kept for a person: rebuild these events from the table "
                        f"(the consent ledger export, the messages), then delete the message.")
            summary.gone += 1
            summary.release.append(receipt)
            return
        label = f"{len(records)} records of {where} ({written})"
        if len(records) > size:
            self.log(f"replay: message {mid}: the filters keep {len(records)} records, the batch had {size}")
        if self.dry_run:
            self.log(f"replay: would replay {label}")
            summary.replayed += 1
            summary.records += len(records)
            summary.release.append(receipt)
            return
        assert self.invoker is not None
        try:
            failures = failures_of(self.invoker({"Records": records}))
            error = f"{len(failures)} batchItemFailures (first {failures[0]})" if failures else ""
        except InvokeError as e:
            error = f"the invocation failed: {e}"
        if error:
            self.report(f"replay: message {mid}: {label}: {error}; kept (run again once the cause is fixed)")
            summary.failed += 1
            summary.release.append(receipt)
            return
        self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=receipt)
        self.log(f"replay: replayed {label}")
        summary.replayed += 1
        summary.records += len(records)

    def make_visible(self, receipts: list[str]) -> None:
        """Kept (and dry-run) messages back in the queue at once, for a person and the alarm."""
        for i in range(0, len(receipts), 10):
            entries = [{"Id": str(n), "ReceiptHandle": r, "VisibilityTimeout": 0}
                       for n, r in enumerate(receipts[i:i + 10])]
            try:
                self.sqs.change_message_visibility_batch(QueueUrl=self.queue_url, Entries=entries)
            except (ClientError, BotoCoreError) as e:
                self.report(f"replay: could not make {len(entries)} kept messages visible again "
                            f"(they will be after {HIDE_SECONDS} s): {e}")


def stream_filters(template: Mapping[str, Any]) -> list[Any]:
    """The FilterCriteria patterns of the stream source whose OnFailure queue is PublishFailures."""
    sources = [s for s in tpl.stream_sources(template) if s.on_failure == FAILURES_QUEUE]
    if len(sources) != 1:
        raise tpl.TemplateError(f"expected one DynamoDB stream source with OnFailure {FAILURES_QUEUE}, "
                                f"found {len(sources)}")
    return [json.loads(p) for p in sources[0].filters]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.replay_publish_failures", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queue-url", required=True, help="the PublishFailures queue's URL")
    parser.add_argument("--function-name", required=True,
                        help="the publish function (its name or ARN in AWS; `publish` on the local stack)")
    parser.add_argument("--lambda-endpoint", default=os.environ.get("AWS_ENDPOINT_URL_LAMBDA"),
                        help="invoke API to call instead of AWS Lambda (default AWS_ENDPOINT_URL_LAMBDA; "
                             "locally the stack's LAMBDA_ENDPOINT)")
    parser.add_argument("--endpoint", default=os.environ.get("AWS_ENDPOINT_URL"),
                        help="SQS and DynamoDB Streams endpoint (default AWS_ENDPOINT_URL; unset: AWS)")
    parser.add_argument("--max-messages", type=int, default=100, help="messages to work through at most (100)")
    parser.add_argument("--dry-run", action="store_true", help="list what would be replayed; invoke and delete nothing")
    parser.add_argument("--template", default=str(tpl.TEMPLATE_PATH), help="the template to read the filters from")
    args = parser.parse_args(argv)
    if args.max_messages < 1:
        parser.error("--max-messages must be at least 1")
    if args.endpoint and not args.lambda_endpoint and not args.dry_run:
        print("replay: with an emulator endpoint, give --lambda-endpoint (the local stack's LAMBDA_ENDPOINT): "
              "the emulator's own Lambda does not run the functions", file=sys.stderr)
        return 2
    try:
        patterns = stream_filters(tpl.load(args.template))
    except (OSError, tpl.TemplateError) as e:
        print(f"replay: {args.template}: {e}", file=sys.stderr)
        return 2
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None
    sqs = boto3.client("sqs", endpoint_url=args.endpoint, region_name=region)
    streams: dict[str, Any] = {}

    def streams_for(stream_region: str) -> Any:
        if stream_region not in streams:
            streams[stream_region] = boto3.client("dynamodbstreams", endpoint_url=args.endpoint,
                                                  region_name=stream_region)
        return streams[stream_region]

    invoker = None if args.dry_run else (
        http_invoker(args.lambda_endpoint, args.function_name) if args.lambda_endpoint
        else lambda_invoker(args.function_name, region))
    try:
        summary = Replay(sqs, streams_for, invoker, patterns, args.queue_url, dry_run=args.dry_run).run(
            args.max_messages)
    except (ClientError, BotoCoreError) as e:
        print(f"replay: {args.queue_url}: {e}", file=sys.stderr)
        return 1
    print(summary.line(args.dry_run), flush=True)
    return 1 if summary.kept else 0


if __name__ == "__main__":
    raise SystemExit(main())
