"""A function for the local Lambda service's tests: it speaks the Runtime API as lambda_runtime does.

Events: {"sleep": s} waits first; {"fail": "msg"} answers a function error; {"exit": code} ends the
process mid-invocation; {"env": true} returns the environment it sees. An SQS event takes these from its
first record's body and prints "record <messageId> receive <ApproximateReceiveCount>". Every answer
carries the process id, the deadline it was given (Lambda-Runtime-Deadline-Ms) and when it received the
event.
"""

import json
import os
import sys
import time
import urllib.request

API = os.environ["AWS_LAMBDA_RUNTIME_API"]
BASE = (API if API.startswith("http") else f"http://{API}") + "/2018-06-01/runtime"


def post(path: str, doc: object) -> None:
    req = urllib.request.Request(f"{BASE}/{path}", data=json.dumps(doc).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req).read()  # noqa: S310 - the local runtime API


if os.environ.get("FAKE_INIT_ERROR"):
    post("init/error", {"errorType": "Runtime.Config", "errorMessage": os.environ["FAKE_INIT_ERROR"]})
    sys.exit(1)

while True:
    with urllib.request.urlopen(f"{BASE}/invocation/next") as resp:  # noqa: S310 - long poll, no timeout
        request_id = resp.headers["Lambda-Runtime-Aws-Request-Id"]
        deadline = int(resp.headers["Lambda-Runtime-Deadline-Ms"])
        event = json.loads(resp.read() or b"{}")
    received = int(time.time() * 1000)
    if isinstance(event, dict) and "Records" in event:
        record = event["Records"][0]
        print(f"record {record['messageId']} receive {record['attributes']['ApproximateReceiveCount']}", flush=True)
        event = json.loads(record["body"])
    time.sleep(float(event.get("sleep", 0)))
    if "exit" in event:
        os._exit(int(event["exit"]))
    if "fail" in event:
        post(f"invocation/{request_id}/error", {"errorType": "Boom", "errorMessage": event["fail"]})
        continue
    post(f"invocation/{request_id}/response", {
        "pid": os.getpid(), "deadlineMs": deadline, "receivedMs": received, "echo": event.get("echo"),
        "env": dict(os.environ) if event.get("env") else None})
