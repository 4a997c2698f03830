"""The operator's allow-list of texting numbers: provision numbers a dealer admin may pick, and point them at the stack.

    python -m infra.provision --table <stack's table> --account AC... --dealer <dealer id>
        [--base-url <stack's public base URL> [--carrier-base-url https://api.twilio.com]
         [--token-secret-arn <TwilioAuthTokenSecret ARN>]] +12025550100 +13125550100..+13125550199

Each number (or inclusive range, NUMBER_POOL's syntax) becomes the item NUMBER#<number> / PROVISIONED
with the carrier account it belongs to and the dealer it is for: only that dealer's admin may then
pick it (PUT /v1/dealer); a number another dealer gave up is provisioned again for its next dealer. Uses the standard AWS credentials and region (and
AWS_ENDPOINT_URL, so it works on the emulator too). `--remove` deprovisions (the numbers' webhooks are left
as they are: a text to a number given up is still handled, and the number is released at the carrier).
Running it twice is fine. Locally the number pool (NUMBER_POOL) plays the operator's list, so `make dev`
needs none of this.

With --base-url (the stack's PublicBaseUrl parameter, else its ApiUrl output: the base the inbound function
checks webhook signatures against), each number's incoming-message webhook is pointed at the stack through
the carrier's IncomingPhoneNumbers API (Twilio's, or the fake carrier's locally): SmsUrl
<base>/v1/carrier/twilio/inbound#rc=3&rp=all (Twilio's connection overrides: up to 3 retries of any
failure, so the rare 503 is retried; docs/decisions.md), SmsMethod POST. The number's StatusCallback is
Twilio's for voice calls and is left alone: a text's status reports come to the StatusCallback deliver
gives each text (<base>/v1/carrier/twilio/status?messageId=..., the id the service needs).

Order, so that a re-run mends any partial run: every number is looked up first (its PN sid, with basic auth
AccountSid:AuthToken); a number the account does not hold, or one whose texts an SMS application or
Messaging Service takes (which overrides SmsUrl), stops the run before anything changes. Then each number's
webhook is set, and only a number whose webhook is set is written to the table, so a dealer can never pick
a number whose replies (a STOP) would go elsewhere. A webhook already set is not posted again.

The auth token comes from the environment (TWILIO_AUTH_TOKEN) or from the stack's Secrets Manager secret
(--token-secret-arn), never from the command line (it would show in `ps` and the shell's history).
Without --base-url the webhooks are not changed, and the output says so.

With --carrier end-user-messaging the numbers are AWS End User Messaging SMS phone numbers of this AWS
account (--account: its 12-digit id), and each item says so (`carrier`), with the number's ARN and opt-out
list. Instead of a webhook, --two-way-topic-arn (the stack's EumRepliesTopicArn output) becomes each
number's two-way channel (UpdatePhoneNumber: TwoWayEnabled, TwoWayChannelArn; opt-outs managed by End User
Messaging, so a STOP is refused at the service too). The same order holds: every number is looked up first
(DescribePhoneNumbers), one the account does not hold stops the run, and only a number whose channel is set
is written. The output lists the numbers' ARNs: the template's EndUserMessagingOriginationArns.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import re
import sys
import urllib.error
import urllib.request
from typing import Any, Callable, Mapping
from urllib.parse import urlencode, urlsplit

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from infra.local.numbers import PoolError, expand

# The product's DealerId: letters, digits, - and _ (shared/consent/src/ids.rs).
_DEALER_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_ACCOUNT_SID = re.compile(r"AC[0-9a-fA-F]{32}")
API_VERSION = "2010-04-01"
TWILIO = "https://api.twilio.com"
INBOUND_PATH = "/v1/carrier/twilio/inbound"  # infra/template.yaml's carrier webhook routes (no authorizer)
STATUS_PATH = "/v1/carrier/twilio/status"
# Twilio's connection overrides on the SmsUrl: retry any failure (a 503 when the inbound queue refuses the
# store, a timeout, no connection) up to 3 times, within Twilio's 15 s (docs/decisions.md, docs/reliability.md).
RETRY_FRAGMENT = "#rc=3&rp=all"
MAX_PAGES = 20  # pages of a PhoneNumber lookup (a partial match may list several numbers)
TIMEOUT = 20.0
SHOWN = 10  # numbers named in one error line


class CarrierError(Exception):
    """The carrier's API refused a request or could not be reached; `status` and `code` as it answered."""

    def __init__(self, message: str, status: int = 0, code: int | None = None) -> None:
        super().__init__(message)
        self.status, self.code = status, code


class TwilioNumbers:
    """The account's IncomingPhoneNumbers through Twilio's REST API: basic auth AccountSid:AuthToken, form bodies."""

    def __init__(self, base_url: str, account_sid: str, auth_token: str, timeout: float = TIMEOUT) -> None:
        self.base = base_url.rstrip("/")
        self.account = account_sid
        self.auth = "Basic " + base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode()
        self.timeout = timeout

    @property
    def list_path(self) -> str:
        return f"/{API_VERSION}/Accounts/{self.account}/IncomingPhoneNumbers"

    def request(self, method: str, path: str, form: Mapping[str, str] | None = None) -> dict[str, Any]:
        """One API call: its JSON answer, else CarrierError with Twilio's status, code and message."""
        data = urlencode(form).encode() if form is not None else None
        headers = {"Authorization": self.auth, "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310 - the carrier's URL
                return json.loads(resp.read())
        except urllib.error.HTTPError as e:
            try:
                error = json.loads(e.read())
            except ValueError:
                error = {}
            code = error.get("code") if isinstance(error, dict) else None
            text = error.get("message") if isinstance(error, dict) else None
            hint = ": the carrier refused the credentials (check --account and the auth token)" \
                if e.code == 401 else ""
            raise CarrierError(f"{method} {path.split('?')[0]}: HTTP {e.code}"
                               + (f" (Twilio {code}: {text})" if code else "") + hint, e.code, code) from None
        except (OSError, ValueError) as e:  # no connection, a timeout, an answer that is not JSON
            raise CarrierError(f"{method} {self.base}{path.split('?')[0]}: {e}") from None

    def find(self, number: str) -> dict[str, Any] | None:
        """The account's IncomingPhoneNumber for `number` (GET ...IncomingPhoneNumbers.json?PhoneNumber=), or None
        if the account does not hold it. The filter also matches parts of numbers: only an exact one counts."""
        path: str | None = f"{self.list_path}.json?{urlencode({'PhoneNumber': number, 'PageSize': 50})}"
        for _ in range(MAX_PAGES):
            if path is None:
                break
            page = self.request("GET", path)
            for resource in page.get("incoming_phone_numbers") or []:
                if resource.get("phone_number") == number:
                    return resource
            path = page.get("next_page_uri")
        return None

    def update(self, sid: str, form: Mapping[str, str]) -> dict[str, Any]:
        """POST ...IncomingPhoneNumbers/{sid}.json: the number as updated."""
        return self.request("POST", f"{self.list_path}/{sid}.json", form)


def inbound_url(base_url: str) -> str:
    """The SmsUrl of every texting number of the stack at `base_url`."""
    return base_url.rstrip("/") + INBOUND_PATH + RETRY_FRAGMENT


def check_base_url(base_url: str) -> str | None:
    """Why `base_url` cannot be the stack's public base (None if it can)."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return f"--base-url {base_url!r} is not an http(s) URL"
    if parts.query or parts.fragment:
        return f"--base-url {base_url!r} has a query or a fragment; give the stack's base URL only"
    return None


def region(env: Mapping[str, str]) -> str | None:
    """The AWS region: AWS_REGION (the Lambda runtime's and the local stack's), else AWS_DEFAULT_REGION."""
    return env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None


def auth_token(secret_arn: str | None, env: Mapping[str, str]) -> str:
    """The carrier's auth token: the secret's value with --token-secret-arn, else TWILIO_AUTH_TOKEN."""
    if secret_arn:
        try:
            token = boto3.client("secretsmanager", region_name=region(os.environ)).get_secret_value(SecretId=secret_arn).get("SecretString") or ""
        except (ClientError, BotoCoreError) as e:
            raise CarrierError(f"could not read the auth token from {secret_arn}: {e}") from None
        if not token.strip():
            raise CarrierError(f"the secret {secret_arn} holds no auth token")
        return token.strip()
    token = env.get("TWILIO_AUTH_TOKEN", "").strip()
    if not token:
        raise CarrierError("the carrier's auth token: set TWILIO_AUTH_TOKEN in the environment or give "
                           "--token-secret-arn (the stack's TwilioAuthTokenSecret); never on the command line")
    return token


def named(numbers: list[str]) -> str:
    shown = ", ".join(numbers[:SHOWN])
    return shown + (f" and {len(numbers) - SHOWN} more" if len(numbers) > SHOWN else "")


def look_up(carrier: TwilioNumbers, numbers: list[str]) -> dict[str, dict[str, Any]]:
    """Every number's IncomingPhoneNumber; CarrierError naming the numbers that cannot take the stack's webhook
    (not the account's, or taken by an SMS application or Messaging Service). Changes nothing."""
    found, missing, taken = {}, [], []
    for number in numbers:
        resource = carrier.find(number)
        if resource is None:
            missing.append(number)
        elif resource.get("sms_application_sid"):
            taken.append(f"{number} ({resource['sms_application_sid']})")
        else:
            found[number] = resource
    problems = []
    if missing:
        problems.append(f"the account {carrier.account} does not hold {named(missing)}")
    if taken:
        problems.append(f"an SMS application or Messaging Service takes the texts of {named(taken)}, so Twilio "
                        "would ignore their SmsUrl: take the numbers out of it first")
    if problems:
        raise CarrierError("; ".join(problems) + ". Nothing was changed.")
    return found


def point_webhooks(carrier: TwilioNumbers, found: Mapping[str, dict[str, Any]], url: str,
                   done: Callable[[str], None], log: Callable[[str], None] = print) -> tuple[int, int]:
    """Set each number's SmsUrl and SmsMethod, calling `done(number)` once its webhook is set;
    (set now, already set). CarrierError stops at the first number that could not be set."""
    changed = unchanged = 0
    for number, resource in found.items():
        if resource.get("sms_url") == url and resource.get("sms_method") == "POST":
            unchanged += 1
        else:
            try:
                updated = carrier.update(resource["sid"], {"SmsUrl": url, "SmsMethod": "POST"})
            except CarrierError as e:
                raise CarrierError(f"{number}: {e}", e.status, e.code) from None
            if updated.get("sms_url") != url:
                raise CarrierError(f"{number}: the carrier answered SmsUrl {updated.get('sms_url')!r}, not {url!r}")
            changed += 1
        fallback = resource.get("sms_fallback_url")
        if fallback and fallback != url:
            log(f"provision: warning: {number} keeps its SmsFallbackUrl {fallback}: texts the stack fails to take "
                "go there")
        done(number)
    return changed, unchanged


EUM = "end-user-messaging"
_AWS_ACCOUNT = re.compile(r"[0-9]{12}")


class EumNumbers:
    """The account's End User Messaging phone numbers (pinpoint-sms-voice-v2; AWS_ENDPOINT_URL reaches the
    emulator, which hands the requests to the fake carrier)."""

    def __init__(self, region_name: str | None) -> None:
        self.client = boto3.client("pinpoint-sms-voice-v2", region_name=region_name)

    def look_up(self, numbers: list[str]) -> dict[str, dict[str, Any]]:
        """Each number's PhoneNumberInformation; CarrierError naming those the account does not hold."""
        held: dict[str, dict[str, Any]] = {}
        try:
            for page in self.client.get_paginator("describe_phone_numbers").paginate():
                for info in page.get("PhoneNumbers", []):
                    held[info["PhoneNumber"]] = info
        except (ClientError, BotoCoreError) as e:
            raise CarrierError(f"End User Messaging's DescribePhoneNumbers failed: {e}") from None
        missing = [n for n in numbers if n not in held]
        if missing:
            raise CarrierError(f"the account's End User Messaging does not hold {named(missing)}")
        return {n: held[n] for n in numbers}

    def point(self, found: Mapping[str, dict[str, Any]], topic_arn: str,
              ready: Callable[[str], None]) -> tuple[int, int]:
        """Each number's two-way channel to `topic_arn` (opt-outs managed by End User Messaging); `ready`
        is called per number as soon as it is set. (changed, already set)."""
        changed = unchanged = 0
        for number, info in found.items():
            if (info.get("TwoWayEnabled") and info.get("TwoWayChannelArn") == topic_arn
                    and not info.get("SelfManagedOptOutsEnabled")):
                unchanged += 1
            else:
                try:
                    updated = self.client.update_phone_number(PhoneNumberId=info["PhoneNumberId"], TwoWayEnabled=True,
                                                              TwoWayChannelArn=topic_arn,
                                                              SelfManagedOptOutsEnabled=False)
                except (ClientError, BotoCoreError) as e:
                    raise CarrierError(f"{number}: UpdatePhoneNumber failed: {e}") from None
                if updated.get("TwoWayChannelArn") != topic_arn:
                    raise CarrierError(f"{number}: the service answered TwoWayChannelArn "
                                       f"{updated.get('TwoWayChannelArn')!r}, not {topic_arn!r}")
                changed += 1
            ready(number)
        return changed, unchanged


def write_provisioned(table: Any, name: str, items: list[dict[str, Any]], failure: CarrierError | None,
                      what_stays: str, how: str = "") -> int | None:
    """Writes the numbers made ready (only those: a number whose replies would go elsewhere is never
    provisioned), then says what a failure left: the exit code, or None when all went well."""
    try:
        with table.batch_writer() as batch:
            for item in items:
                batch.put_item(Item=item)
    except (ClientError, BotoCoreError) as e:
        print(f"provision: writing {name} failed: {e}; {what_stays} stay set: run again", file=sys.stderr)
        return 1
    if failure is not None:
        done = f" {len(items)} number(s) before it were {how}provisioned;" if items else ""
        print(f"provision: {str(failure).rstrip('.')}.{done} Run again once the cause is fixed (a run mends a "
              "partial one).", file=sys.stderr)
        return 1
    return None


def main(argv: list[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    # No abbreviations: `--token <value>` must not be taken for --token-secret-arn (a token is never an argument).
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     allow_abbrev=False)
    parser.add_argument("--table", required=True, help="the stack's DynamoDB table name")
    parser.add_argument("--account", help="carrier account SID the numbers belong to (required to provision)")
    parser.add_argument("--dealer", help="the dealer id the numbers are for (required to provision)")
    parser.add_argument("--remove", action="store_true", help="deprovision the numbers (their webhooks stay)")
    parser.add_argument("--base-url", help="the stack's public base URL (PublicBaseUrl, else the ApiUrl output): "
                                           "point each number's SmsUrl at it; without it the webhooks are not changed")
    parser.add_argument("--carrier-base-url", default=TWILIO,
                        help=f"the carrier's REST API (default {TWILIO}; the fake carrier locally)")
    parser.add_argument("--token-secret-arn", help="read the auth token from this Secrets Manager secret "
                                                   "(else TWILIO_AUTH_TOKEN from the environment)")
    parser.add_argument("--carrier", choices=("twilio", EUM), default="twilio",
                        help="the carrier the numbers are on (default twilio)")
    parser.add_argument("--two-way-topic-arn", help="end-user-messaging: the stack's EumRepliesTopicArn output, "
                                                    "each number's two-way channel; without it the channels are "
                                                    "not changed")
    parser.add_argument("numbers", nargs="+", help="E.164 numbers or ranges (+12025550100..+12025550199)")
    args = parser.parse_args(argv)
    try:
        numbers = list(dict.fromkeys(expand(",".join(args.numbers))))
    except PoolError as e:
        print(f"provision: {e}", file=sys.stderr)
        return 2
    table = boto3.resource("dynamodb", region_name=region(os.environ)).Table(args.table)
    if args.remove:
        with table.batch_writer() as batch:
            for number in numbers:
                batch.delete_item(Key={"PK": f"NUMBER#{number}", "SK": "PROVISIONED"})
        print(f"provision: removed {len(numbers)} number(s) from {args.table}; their webhooks (or two-way channels) "
              "are left as they are (release a number at the carrier to stop its texts)")
        return 0
    if args.carrier == EUM:
        return provision_eum(args, numbers, table)
    if not args.account:
        print("provision: --account is required to provision", file=sys.stderr)
        return 2
    if not (args.dealer and _DEALER_ID.fullmatch(args.dealer)):
        print("provision: --dealer (a dealer id: letters, digits, - and _, up to 64) is required to provision",
              file=sys.stderr)
        return 2
    if args.base_url:
        problem = check_base_url(args.base_url)
        if problem is None and not _ACCOUNT_SID.fullmatch(args.account):
            problem = f"--account {args.account!r} is not a Twilio account sid (AC and 32 hex digits)"
        if problem:
            print(f"provision: {problem}", file=sys.stderr)
            return 2

    now = dt.datetime.now(dt.timezone.utc).isoformat()
    ready: list[str] = []  # numbers whose webhook is set (or, without --base-url, every number)
    failure: CarrierError | None = None
    summary = ""
    if args.base_url:
        url = inbound_url(args.base_url)
        try:
            carrier = TwilioNumbers(args.carrier_base_url, args.account, auth_token(args.token_secret_arn, env))
            found = look_up(carrier, numbers)
            changed, unchanged = point_webhooks(carrier, found, url, ready.append)
            summary = (f"; webhooks: {changed} set, {unchanged} already set: SmsUrl {url} (POST). Texts' status "
                       f"reports come to each text's StatusCallback ({args.base_url.rstrip('/')}{STATUS_PATH}"
                       "?messageId=...); the numbers' StatusCallback (voice calls') is left as it is")
        except CarrierError as e:
            failure = e
    else:
        ready = numbers
        summary = (f"; webhooks NOT changed (no --base-url / BASE_URL): texts to these numbers reach the stack only "
                   f"once each number's SmsUrl is <stack base URL>{INBOUND_PATH}{RETRY_FRAGMENT} (POST)")
    items = [{"PK": f"NUMBER#{number}", "SK": "PROVISIONED", "carrierAccount": args.account,
              "dealerId": args.dealer, "provisionedAt": now} for number in ready]
    failed = write_provisioned(table, args.table, items, failure, "the webhooks set", "pointed at the stack and ")
    if failed is not None:
        return failed
    print(f"provision: provisioned {len(ready)} number(s) for {args.dealer} in {args.table}{summary}")
    return 0


def provision_eum(args: argparse.Namespace, numbers: list[str], table: Any) -> int:
    """--carrier end-user-messaging: look the numbers up, set their two-way channel, write them."""
    problem = None
    if args.base_url:
        problem = "--base-url is Twilio's webhook; End User Messaging's numbers take --two-way-topic-arn"
    elif not (args.account and _AWS_ACCOUNT.fullmatch(args.account)):
        problem = "--account is the AWS account id (12 digits) the End User Messaging numbers are in"
    elif not (args.dealer and _DEALER_ID.fullmatch(args.dealer)):
        problem = "--dealer (a dealer id: letters, digits, - and _, up to 64) is required to provision"
    elif args.two_way_topic_arn and not args.two_way_topic_arn.startswith("arn:"):
        problem = f"--two-way-topic-arn {args.two_way_topic_arn!r} is not an SNS topic ARN"
    if problem:
        print(f"provision: {problem}", file=sys.stderr)
        return 2
    now = dt.datetime.now(dt.timezone.utc).isoformat()
    ready: list[str] = []
    failure: CarrierError | None = None
    found: dict[str, dict[str, Any]] = {}
    summary = ""
    try:
        service = EumNumbers(region(os.environ))
        found = service.look_up(numbers)
        if args.two_way_topic_arn:
            changed, unchanged = service.point(found, args.two_way_topic_arn, ready.append)
            summary = f"; two-way channels: {changed} set, {unchanged} already set: {args.two_way_topic_arn}"
        else:
            ready = numbers
            summary = ("; two-way channels NOT changed (no --two-way-topic-arn / TOPIC_ARN): texts to these numbers "
                       "reach the stack only once each number's two-way channel is its EumRepliesTopic")
    except CarrierError as e:
        failure = e
    items = [{"PK": f"NUMBER#{number}", "SK": "PROVISIONED", "carrier": EUM, "carrierAccount": args.account,
              "dealerId": args.dealer, "provisionedAt": now, "originationArn": found[number]["PhoneNumberArn"],
              "optOutList": found[number].get("OptOutListName") or "Default"} for number in ready]
    failed = write_provisioned(table, args.table, items, failure, "the channels set")
    if failed is not None:
        return failed
    arns = ",".join(found[n]["PhoneNumberArn"] for n in ready)
    print(f"provision: provisioned {len(ready)} End User Messaging number(s) for {args.dealer} in {args.table}"
          f"{summary}. deliver may send from them once EndUserMessagingOriginationArns holds {arns}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
