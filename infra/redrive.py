"""Redrive a dead-letter queue: its messages back to the queue they were dead-lettered from.

    python -m infra.redrive <queue> [--stack <stack name>] [--to <queue URL>] [--rate N] [--dry-run]
        [--max N] [--method auto|move-task|copy] [--wait SECONDS] [--endpoint URL] [--template FILE]

<queue> is the dead-letter queue as infra/template.yaml names it (OutboundDLQ, AutomationDLQ, InboundDLQ,
StatusDLQ) with --stack, or its URL, or its name. With a logical id, CloudFormation's DescribeStackResource
gives the queue of that stack; a stack CloudFormation does not know is taken for a local stack (`make dev`,
infra.local.bootstrap), whose queues are named {stack}-{LogicalId}. PublishFailures is no queue's dead-letter
queue: it holds stream positions, replayed by `make replay-publish-failures`. A queue that is no
dead-letter queue, or that does not exist, is an error naming it (exit 2).

The destination is the queue whose RedrivePolicy names the dead-letter queue (ListDeadLetterSourceQueues),
or --to. Two ways to move the messages, and the output says which one it takes:

- move-task (AWS): SQS's own redrive, StartMessageMoveTask to the source queue (at --rate messages a
  second, else as fast as SQS chooses), then ListMessageMoveTasks every 2 s for up to --wait seconds,
  printing its progress. A task already running on the queue is watched, not started twice. A task
  still running after --wait goes on in AWS; the command says how to watch or cancel it.
- copy: receive -> send to the source -> delete, at most --max messages (default 1000), ten at a time.
  A message is deleted from the dead-letter queue only once the source queue took it; one it did not take
  is kept (and made visible again). The body and message attributes are kept; on a FIFO queue the
  message group too, with the dead-letter copy's MessageId as the de-duplication id: that differs from
  the original's (which the source queue may still remember for 5 minutes, so the original's id would
  drop the redriven message silently) and is the same for the same dead-letter copy (a run stopped
  between the send and the delete, run again within 5 minutes, does not queue it twice). This is what
  AWS does itself: a message moved to a FIFO dead-letter queue gets its MessageId as its de-duplication
  id. On a standard queue such a re-run may deliver a message twice; its consumers are idempotent.

--method auto (the default) uses the move task where the endpoint implements it and copy where it does not
(moto 5.2.5 does not: the emulator), and copy when --max is given (a move task moves everything).
--dry-run moves nothing: it says which way it would take and, for copy, lists the messages (ids, groups,
receive counts, when they were first sent; never their bodies), making them visible again at once.

Uses the standard AWS credentials and region (and AWS_ENDPOINT_URL, so it works on the emulator). Needs
cloudformation:DescribeStackResource (with a logical id), sqs:GetQueueUrl, GetQueueAttributes,
ListDeadLetterSourceQueues, and StartMessageMoveTask, ListMessageMoveTasks with ReceiveMessage,
DeleteMessage on the dead-letter queue and SendMessage on the source (move-task), or ReceiveMessage,
DeleteMessage, ChangeMessageVisibility on the dead-letter queue and SendMessage on the source (copy).
Exits 0 when everything asked was moved (or a move task is still running), 1 when messages were kept or the
task failed, 2 on a usage error or a queue that cannot be redriven.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from infra.local import template as tpl

REPLAY_ONLY = "PublishFailures"  # the stream source's OnFailure queue: replayed, not redriven
WAIT_SECONDS = 1  # ReceiveMessage long poll: an empty answer means the queue is drained
HIDE_SECONDS = 120  # a message being moved stays hidden this long at most
DEFAULT_MAX = 1000
POLL_SECONDS = 2.0
DEFAULT_WAIT = 60.0
MAX_RATE = 500  # StartMessageMoveTask's MaxNumberOfMessagesPerSecond
FINISHED = {"COMPLETED", "CANCELLED", "FAILED"}
# What an endpoint answers for an action it does not implement (moto: HTTP 500 with an HTML page).
UNIMPLEMENTED = {"500", "501", "NotImplemented", "InvalidAction", "UnknownOperationException"}
REPLAY_HINT = (f"{REPLAY_ONLY} is not a dead-letter queue of a queue: it holds the stream batches the publisher "
               "gave up on. Replay them: make replay-publish-failures QUEUE_URL=<its URL> FUNCTION=<publish function>")


class RedriveError(Exception):
    """Why the queue cannot be redriven, in one line (exit 2)."""


@dataclass(frozen=True)
class Queues:
    """The dead-letter queue and where its messages go."""

    dlq_url: str
    dlq_arn: str
    fifo: bool
    destinations: list[str]  # queue URLs: the sources, or --to

    @property
    def destination(self) -> str | None:
        return self.destinations[0] if len(self.destinations) == 1 else None


@dataclass
class Summary:
    moved: int = 0
    kept: int = 0  # the source queue did not take them: still in the dead-letter queue
    undeleted: int = 0  # taken by the source, but their delete failed: still in the dead-letter queue too
    release: list[str] = field(default_factory=list)  # receipt handles to make visible again


def _report(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def dead_letter_sources(template: Mapping[str, Any]) -> dict[str, str]:
    """{dead-letter queue: the queue whose RedrivePolicy names it}, by logical id, as the template says."""
    out = {}
    for lid, res in template["Resources"].items():
        policy = (res.get("Properties") or {}).get("RedrivePolicy") if res.get("Type") == "AWS::SQS::Queue" else None
        for dlq in tpl.references((policy or {}).get("deadLetterTargetArn")):
            out[dlq] = lid
    return out


def error_code(e: ClientError) -> str:
    return str(e.response.get("Error", {}).get("Code", ""))


def queue_url_by_name(sqs: Any, name: str) -> str | None:
    try:
        return sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except ClientError as e:
        if "NonExistentQueue" in error_code(e) or error_code(e) == "QueueDoesNotExist":
            return None
        raise


def resolve(sqs: Any, cfn: Any, queue: str, stack: str | None, template: Mapping[str, Any],
            log: Callable[[str], None] = print) -> str:
    """The URL of the queue the operator named (a logical id with a stack, a URL, or a name); RedriveError if
    there is none or it is one redrive does not apply to."""
    dlqs = dead_letter_sources(template)
    known = ", ".join(sorted(dlqs))
    if queue.startswith(("https://", "http://")):
        return queue
    resources = template["Resources"]
    if queue in resources:
        if queue == REPLAY_ONLY:
            raise RedriveError(REPLAY_HINT)
        if resources[queue].get("Type") != "AWS::SQS::Queue":
            raise RedriveError(f"{queue} is a {resources[queue].get('Type')}, not a queue; the template's dead-letter "
                               f"queues: {known}")
        if queue not in dlqs:
            own = [d for d, source in dlqs.items() if source == queue]
            raise RedriveError(f"{queue} is not a dead-letter queue" + (
                f"; its dead-letter queue is {own[0]}: make redrive QUEUE={own[0]}" if own else
                f"; the template's dead-letter queues: {known}"))
        if not stack:
            raise RedriveError(f"QUEUE={queue} is the template's logical id: give the stack too (STACK=<stack name>, "
                               "--stack), or the queue's URL")
        try:
            return cfn.describe_stack_resource(StackName=stack, LogicalResourceId=queue)[
                "StackResourceDetail"]["PhysicalResourceId"]
        except ClientError as e:
            message = str(e.response.get("Error", {}).get("Message", ""))
            if error_code(e) != "ValidationError" or "Stack" not in message or "does not exist" not in message:
                raise RedriveError(f"CloudFormation has no {queue} in stack {stack}: {message or e}") from None
        name = tpl.queue_name(template, stack, queue)
        url = queue_url_by_name(sqs, name)
        if url is None:
            raise RedriveError(f"no stack {stack}: CloudFormation does not know it, and there is no local stack's "
                               f"queue {name}")
        log(f"redrive: CloudFormation does not know stack {stack}: using the local stack's queue {name}")
        return url
    url = queue_url_by_name(sqs, queue)
    if url is None:
        hint = f"; give a dead-letter queue's logical id ({known}) with STACK=, or its URL or name"
        raise RedriveError(f"there is no queue {queue!r}" + (REPLAY_HINT if REPLAY_ONLY in queue else hint))
    return url


def queues(sqs: Any, dlq_url: str, to: str | None) -> Queues:
    """The dead-letter queue's ARN and kind and its destinations; RedriveError if it is no queue's DLQ."""
    try:
        attrs = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn", "FifoQueue"])["Attributes"]
    except ClientError as e:
        if "NonExistentQueue" in error_code(e) or error_code(e) == "QueueDoesNotExist":
            raise RedriveError(f"there is no queue {dlq_url}") from None
        raise
    fifo = attrs.get("FifoQueue") == "true"
    sources = sqs.list_dead_letter_source_queues(QueueUrl=dlq_url).get("queueUrls") or []
    if to:
        destination_fifo = sqs.get_queue_attributes(QueueUrl=to, AttributeNames=["FifoQueue"])["Attributes"].get(
            "FifoQueue") == "true"
        if destination_fifo != fifo:
            raise RedriveError(f"{to} and {dlq_url} are not the same kind of queue (FIFO and standard)")
        return Queues(dlq_url, attrs["QueueArn"], fifo, [to])
    if not sources:
        raise RedriveError(REPLAY_HINT if REPLAY_ONLY in dlq_url else
                           f"{dlq_url} is not the dead-letter queue of any queue (no RedrivePolicy names it); "
                           "give --to <queue URL> to move its messages anyway")
    return Queues(dlq_url, attrs["QueueArn"], fifo, sorted(sources))


def counts(sqs: Any, url: str) -> tuple[int, int]:
    """(visible, in flight) messages of the queue, approximately."""
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attrs.get("ApproximateNumberOfMessages", 0)), int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0))


def move_tasks_supported(probe: Any, dlq_arn: str) -> tuple[bool, list[dict[str, Any]]]:
    """(whether the endpoint implements message move tasks, the queue's recent tasks)."""
    try:
        return True, probe.list_message_move_tasks(SourceArn=dlq_arn, MaxResults=10).get("Results") or []
    except ClientError as e:
        if error_code(e) in UNIMPLEMENTED:
            return False, []
        raise


def when(millis: str | int | None) -> str:
    if not millis:
        return "?"
    return dt.datetime.fromtimestamp(int(millis) / 1000, dt.timezone.utc).isoformat(timespec="seconds")


class Redrive:
    def __init__(self, sqs: Any, q: Queues, dry_run: bool = False, log: Callable[[str], None] = print,
                 report: Callable[[str], None] = _report) -> None:
        self.sqs, self.q, self.dry_run, self.log, self.report = sqs, q, dry_run, log, report

    # --- move task (AWS) ---

    def move_task(self, running: list[dict[str, Any]], rate: int | None, wait: float,
                  sleep: Callable[[float], None] = time.sleep) -> int:
        where = self.q.destination or "each message's original source queue"
        visible, in_flight = counts(self.sqs, self.q.dlq_url)
        active = next((t for t in running if t.get("Status") == "RUNNING"), None)
        if self.dry_run:
            self.log(f"redrive: would start a message move task (StartMessageMoveTask) from {self.q.dlq_url} to "
                     f"{where}{f' at {rate}/s' if rate else ''}: {visible} messages visible, {in_flight} in flight"
                     + ("; one is already running" if active else ""))
            return 0
        if active:
            self.log(f"redrive: a message move task is already running on {self.q.dlq_url} (started "
                     f"{when(active.get('StartedTimestamp'))}): watching it")
        else:
            args: dict[str, Any] = {"SourceArn": self.q.dlq_arn}
            if self.q.destination:
                args["DestinationArn"] = self.sqs.get_queue_attributes(
                    QueueUrl=self.q.destination, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            if rate:
                args["MaxNumberOfMessagesPerSecond"] = rate
            handle = self.sqs.start_message_move_task(**args)["TaskHandle"]
            self.log(f"redrive: started a message move task (StartMessageMoveTask) from {self.q.dlq_url} to {where}"
                     f"{f' at {rate}/s' if rate else ''}: {visible} messages visible (task {handle})")
        deadline = time.monotonic() + wait
        last: tuple[Any, ...] = ()
        while True:
            tasks = self.sqs.list_message_move_tasks(SourceArn=self.q.dlq_arn, MaxResults=1).get("Results") or []
            task = tasks[0] if tasks else {}
            status = task.get("Status", "?")
            progress = (status, task.get("ApproximateNumberOfMessagesMoved"), task.get("ApproximateNumberOfMessagesToMove"))
            if progress != last:
                self.log(f"redrive: {status}: {progress[1] or 0} of {progress[2] if progress[2] is not None else '?'} "
                         "messages moved")
                last = progress
            if status in FINISHED:
                if status == "COMPLETED":
                    return 0
                self.report(f"redrive: the move task ended {status}: {task.get('FailureReason', 'no reason given')}; "
                            "the messages not moved are still in the dead-letter queue")
                return 1
            if time.monotonic() >= deadline:
                self.log(f"redrive: the move task is still running after {wait:g} s and goes on in AWS: "
                         f"`aws sqs list-message-move-tasks --source-arn {self.q.dlq_arn}` shows its progress; "
                         f"`aws sqs cancel-message-move-task --task-handle {task.get('TaskHandle', '<handle>')}` "
                         "stops it")
                return 0
            sleep(POLL_SECONDS)

    # --- copy: receive -> send -> delete ---

    def copy(self, max_messages: int) -> Summary:
        summary = Summary()
        seen: set[str] = set()
        destination = self.q.destination
        if destination is None:
            raise RedriveError(f"{self.q.dlq_url} is the dead-letter queue of several queues "
                               f"({', '.join(self.q.destinations)}): give --to <queue URL>")
        try:
            while len(seen) < max_messages:
                messages = self.sqs.receive_message(
                    QueueUrl=self.q.dlq_url, MaxNumberOfMessages=max(1, min(10, max_messages - len(seen))),
                    WaitTimeSeconds=WAIT_SECONDS, VisibilityTimeout=HIDE_SECONDS, AttributeNames=["All"],
                    MessageAttributeNames=["All"]).get("Messages", [])
                fresh = []
                for message in messages:
                    if message["MessageId"] in seen:  # a second copy (standard queue): the next run sees it
                        summary.release.append(message["ReceiptHandle"])
                    else:
                        seen.add(message["MessageId"])
                        fresh.append(message)
                if not fresh:
                    break
                if self.dry_run:
                    for message in fresh:
                        self.log(f"redrive: would move {self.describe(message)}")
                        summary.release.append(message["ReceiptHandle"])
                    summary.moved += len(fresh)
                else:
                    self.move(fresh, destination, summary)
        finally:
            self.make_visible(summary.release)
        return summary

    def describe(self, message: Mapping[str, Any]) -> str:
        attrs = message.get("Attributes") or {}
        group = f", group {attrs['MessageGroupId']}" if self.q.fifo and attrs.get("MessageGroupId") else ""
        return (f"message {message['MessageId']}{group} (receive count {attrs.get('ApproximateReceiveCount', '?')}, "
                f"first sent {when(attrs.get('SentTimestamp'))})")

    def entry(self, n: int, message: Mapping[str, Any]) -> dict[str, Any]:
        """The SendMessageBatch entry that puts `message` back: its body and attributes; on a FIFO queue its group,
        de-duplicated by its dead-letter copy's MessageId (see the module's doc)."""
        attrs = message.get("Attributes") or {}
        entry: dict[str, Any] = {"Id": str(n), "MessageBody": message["Body"]}
        if message.get("MessageAttributes"):
            entry["MessageAttributes"] = message["MessageAttributes"]
        if attrs.get("AWSTraceHeader"):
            entry["MessageSystemAttributes"] = {"AWSTraceHeader": {"DataType": "String",
                                                                   "StringValue": attrs["AWSTraceHeader"]}}
        if self.q.fifo:
            entry["MessageGroupId"] = attrs["MessageGroupId"]
            entry["MessageDeduplicationId"] = message["MessageId"]
        return entry

    def move(self, messages: list[dict[str, Any]], destination: str, summary: Summary) -> None:
        """Send a batch to the destination, then delete from the dead-letter queue what it took."""
        entries = [self.entry(n, m) for n, m in enumerate(messages)]
        try:
            sent = self.sqs.send_message_batch(QueueUrl=destination, Entries=entries)
        except (ClientError, BotoCoreError) as e:
            self.report(f"redrive: {destination} refused {len(messages)} messages: {e}; kept")
            summary.kept += len(messages)
            summary.release += [m["ReceiptHandle"] for m in messages]
            return
        for failed in sent.get("Failed") or []:
            message = messages[int(failed["Id"])]
            self.report(f"redrive: {destination} refused message {message['MessageId']}: {failed.get('Code')} "
                        f"{failed.get('Message', '')}; kept")
            summary.kept += 1
            summary.release.append(message["ReceiptHandle"])
        taken = [messages[int(ok["Id"])] for ok in sent.get("Successful") or []]
        if not taken:
            return
        deletes = [{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(taken)]
        try:
            undeleted = self.sqs.delete_message_batch(QueueUrl=self.q.dlq_url, Entries=deletes).get("Failed") or []
        except (ClientError, BotoCoreError) as e:
            undeleted = [{"Id": d["Id"], "Message": str(e)} for d in deletes]
        for failed in undeleted:
            message = taken[int(failed["Id"])]
            summary.release.append(message["ReceiptHandle"])  # visible again, for a re-run (and the alarm)
            self.report(f"redrive: message {message['MessageId']} is in {destination} but its delete from the "
                        f"dead-letter queue failed ({failed.get('Message', '')}): a run within 5 minutes does not "
                        "queue it again on a FIFO queue; on a standard queue it would come twice")
        summary.undeleted += len(undeleted)
        summary.moved += len(taken)

    def make_visible(self, receipts: list[str]) -> None:
        for i in range(0, len(receipts), 10):
            entries = [{"Id": str(n), "ReceiptHandle": r, "VisibilityTimeout": 0}
                       for n, r in enumerate(receipts[i:i + 10])]
            try:
                self.sqs.change_message_visibility_batch(QueueUrl=self.q.dlq_url, Entries=entries)
            except (ClientError, BotoCoreError) as e:
                self.report(f"redrive: could not make {len(entries)} kept messages visible again "
                            f"(they will be after {HIDE_SECONDS} s): {e}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.redrive", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("queue", help="the dead-letter queue: its logical id (with --stack), URL or name")
    parser.add_argument("--stack", help="the stack whose queue the logical id names")
    parser.add_argument("--to", help="the queue to move the messages to (default: the queue they came from)")
    parser.add_argument("--rate", type=int, help=f"move task: messages a second (1..{MAX_RATE}; default: SQS chooses)")
    parser.add_argument("--max", type=int, dest="max_messages",
                        help=f"move at most this many messages (copy; default {DEFAULT_MAX}); implies --method copy")
    parser.add_argument("--method", choices=["auto", "move-task", "copy"], default="auto",
                        help="move-task (StartMessageMoveTask), copy (receive, send, delete), or auto (default): "
                             "move-task where the endpoint implements it")
    parser.add_argument("--wait", type=float, default=DEFAULT_WAIT,
                        help=f"move task: seconds to watch it (default {DEFAULT_WAIT:g}); it goes on after")
    parser.add_argument("--dry-run", action="store_true", help="say what would be moved; move nothing")
    parser.add_argument("--endpoint", default=os.environ.get("AWS_ENDPOINT_URL"),
                        help="AWS endpoint (default AWS_ENDPOINT_URL; unset: AWS)")
    parser.add_argument("--template", default=str(tpl.TEMPLATE_PATH), help="the template naming the queues")
    args = parser.parse_args(argv)
    if args.max_messages is not None and args.max_messages < 1:
        parser.error("--max must be at least 1")
    if args.rate is not None and not 1 <= args.rate <= MAX_RATE:
        parser.error(f"--rate is 1..{MAX_RATE}")
    if args.max_messages is not None and args.method == "move-task":
        parser.error("--max applies to --method copy: a move task moves every message")
    try:
        template = tpl.load(args.template)
    except (OSError, tpl.TemplateError) as e:
        print(f"redrive: {args.template}: {e}", file=sys.stderr)
        return 2
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None
    sqs = boto3.client("sqs", endpoint_url=args.endpoint, region_name=region)
    cfn = boto3.client("cloudformation", endpoint_url=args.endpoint, region_name=region)
    try:
        url = resolve(sqs, cfn, args.queue, args.stack, template)
        q = queues(sqs, url, args.to)
        method = args.method
        running: list[dict[str, Any]] = []
        if method == "auto" and args.max_messages is not None:
            print("redrive: --max given: moving with receive, send, delete (a move task moves everything)")
            method = "copy"
        elif method != "copy":
            probe = boto3.client("sqs", endpoint_url=args.endpoint, region_name=region,
                                 config=Config(retries={"total_max_attempts": 1}))
            supported, running = move_tasks_supported(probe, q.dlq_arn)
            if not supported:
                if method == "move-task":
                    raise RedriveError(f"{args.endpoint or 'the endpoint'} does not implement StartMessageMoveTask; "
                                       "use --method copy")
                print(f"redrive: {args.endpoint or 'the endpoint'} does not implement StartMessageMoveTask "
                      "(moto does not): moving with receive, send, delete instead")
                method = "copy"
            else:
                method = "move-task"
        redrive = Redrive(sqs, q, dry_run=args.dry_run)
        if method == "move-task":
            return redrive.move_task(running, args.rate, args.wait)
        summary = redrive.copy(args.max_messages or DEFAULT_MAX)
    except RedriveError as e:
        print(f"redrive: {e}", file=sys.stderr)
        return 2
    except (ClientError, BotoCoreError) as e:
        print(f"redrive: {args.queue}: {e}", file=sys.stderr)
        return 1
    verb = "would move" if args.dry_run else "moved"
    visible, in_flight = counts(sqs, q.dlq_url)
    line = (f"redrive: {verb} {summary.moved} messages from {q.dlq_url} to {q.destination} (receive, send, delete); "
            f"{summary.kept} kept; the dead-letter queue now holds {visible} visible, {in_flight} in flight")
    if summary.undeleted:
        line += f"; {summary.undeleted} moved but not deleted from it"
    print(line, flush=True)
    return 1 if summary.kept or summary.undeleted else 0


if __name__ == "__main__":
    raise SystemExit(main())
