"""A Twilio-compatible fake carrier: receives sends, shows them, and lets a person play the phone.

    python -m infra.local.fake_carrier [--host 127.0.0.1] [--port 4010]

Twilio's side:
  POST /2010-04-01/Accounts/{AccountSid}/Messages.json   form To, From, Body, StatusCallback; basic auth
       AccountSid:TWILIO_AUTH_TOKEN. 201 with Twilio's JSON; then status callbacks (sent, delivered),
       signed with X-Twilio-Signature, are posted to StatusCallback. With more than CARRIER_MAX_CONCURRENT
       sends in flight: 429 with Twilio error 20429 (Too Many Requests), and the send is not processed.
  GET  /2010-04-01/Accounts/{AccountSid}/Messages.json   Twilio's message list, same basic auth: filters To,
       From, DateSent, DateSent< and DateSent> (sent as DateSent%3C= / DateSent%3E=; YYYY-MM-DD, UTC,
       inclusive), PageSize (default 50, max 1000), Page; newest first; every message (sent through the API
       or received) with its current status and date_sent (RFC 2822); next_page_uri when there are more.
  GET  /2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers.json   the account's numbers (Twilio's list JSON,
       `incoming_phone_numbers`), same basic auth: filters PhoneNumber (the number or a part of it, `*` for any
       digit) and FriendlyName, PageSize, Page. Each has a stable sid PN... (from the number).
  GET  /2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers/{PN sid}.json   one number; 404 (20404) if unknown
  POST /2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers/{PN sid}.json   Twilio's Update, form-encoded:
       SmsUrl, SmsMethod, SmsFallbackUrl, SmsFallbackMethod, SmsApplicationSid, StatusCallback (calls'),
       StatusCallbackMethod, Voice*, FriendlyName are kept; other parameters are ignored, as Twilio ignores
       ones it does not know; 400 (20001) for a method other than GET/POST or a URL that is not http(s).
  The REST API answers 401 (20003) for credentials other than AccountSid:TWILIO_AUTH_TOKEN.
Webhooks (the inbound SMS and the status callbacks) are delivered as Twilio does: an answer (4xx, 5xx) is
  not retried, a connection that failed is retried once; Twilio's connection overrides in the URL's
  fragment change that: #ct=5000&rt=15000&tt=15000&rc=1&rp=ct (connect and read timeouts, total time for
  all attempts in ms; retry count, max 5; retry policy: comma-separated 4xx, 5xx, ct, rt, or all). The
  fragment is neither sent nor signed; every attempt carries the same I-Twilio-Idempotency-Token.
Test controls:
  GET /messages?to=E164 (or from=)   what was sent and received, newest last
  DELETE /messages                   forget everything
  POST /reply {"from","to","body"}   the phone replies: a signed inbound webhook to the SmsUrl configured on the
                                     number `to` (with its SmsMethod and its URL's connection overrides), else
                                     to INBOUND_WEBHOOK_URL;
                                     answers with the service's status and body (of the last attempt;
                                     X-Webhook-Attempts says how many), 502 if it never answered
  POST /fail {"count","status","code"}   the next N sends fail with that HTTP status and Twilio error code
  POST /hang {"count","seconds"}         the next N sends sleep first (client timeouts)
  POST /accept-and-hang {"count","seconds"}   the next N sends are accepted (the message reaches the
                                     phone and its status callbacks follow) but answered only after
                                     that many seconds (default 30): past the client's timeout
  POST /accept-then-fail {"count","status","code"}   the next N sends are accepted (as above) but answered
                                     with that 5xx status (default 500) and a Twilio error (code 20500)
  POST /callbacks {"duplicate","reorder"}   probabilities (0..1) that a status callback is posted twice,
                                     and that a message's `delivered` callback is posted before `sent`
  POST /limits {"maxConcurrent","latencyMs"}   sends in flight at once before 429 (0: no limit), and the
                                     time each admitted send takes before its answer (ms, default 0)
  GET /                              an HTML page: the conversation and a form to reply
Environment: TWILIO_AUTH_TOKEN (else .env.local), INBOUND_WEBHOOK_URL (where a text to a number with no SmsUrl
goes; default http://127.0.0.1:3000/v1/carrier/twilio/inbound, may carry connection overrides), CARRIER_NUMBERS
(the account's numbers, NUMBER_POOL's syntax; default: NUMBER_POOL and DEMO_TEXTING_NUMBER),
STATUS_CALLBACK_DELAY_SECONDS (default 0.2), STATUS_CALLBACK_DUPLICATE and STATUS_CALLBACK_REORDER
(default 0.0), CARRIER_SEED (the random choices'; default random, printed at start), CARRIER_MAX_CONCURRENT
(default 0: no limit).

The fake, one idea per file: `rest.py` (Twilio's paths, dates, errors and paged lists), `messages.py`
(the Message resource, segments, the list's filters), `phone_numbers.py` (IncomingPhoneNumbers),
`webhooks.py` (signed webhooks and their retries), `carrier.py` (the state: messages, numbers, injected
failures, callbacks, limits; the environment's settings), `sms_voice.py` (AWS End User Messaging SMS's API
for the numbers in EUM_NUMBERS, with EUM_CONFIGURATION_SETS, default texting; the emulator hands it the
requests signed for sms-voice), `server.py` (the HTTP routes and the page).
"""


from __future__ import annotations

import argparse
import os
import sys

from infra.local.common import ENV_LOCAL, read_env_file, serve_until_interrupted
from infra.local.fake_carrier.carrier import (DEFAULT_INBOUND_URL, Carrier, account_numbers, carrier_from_env, log,
                                              probability)
from infra.local.fake_carrier.messages import (GSM7, GSM7_EXT, REQUIRED, Message, MessageFilter, missing_parameter,
                                               segments, utc_day)
from infra.local.fake_carrier.phone_numbers import (METHOD_PARAMETERS, NUMBER_PARAMETERS, URL_PARAMETERS, PhoneNumber,
                                                    friendly, number_filter, number_sid)
from infra.local.fake_carrier.rest import (API_VERSION, MAX_PAGE_SIZE, PAGE_SIZE, ApiPath, list_page, page_of, rfc2822,
                                           twilio_error, utcnow)
from infra.local.fake_carrier.server import Answer, CarrierHandler, make_server
from infra.local.fake_carrier.sms_voice import SmsVoice, sms_voice_from_env
from infra.local.fake_carrier.webhooks import (OVERRIDE_BOUNDS, RETRY_KINDS, ConnectionOverrides, WebhookError,
                                               bounded_int, deliver_webhook, post_once, twilio_signature,
                                               webhook_headers)

__all__ = [
    "API_VERSION", "DEFAULT_INBOUND_URL", "GSM7", "GSM7_EXT", "MAX_PAGE_SIZE", "METHOD_PARAMETERS", "NUMBER_PARAMETERS",
    "OVERRIDE_BOUNDS", "PAGE_SIZE", "REQUIRED", "RETRY_KINDS", "URL_PARAMETERS", "Answer", "ApiPath", "Carrier",
    "CarrierHandler", "ConnectionOverrides", "Message", "MessageFilter", "PhoneNumber", "WebhookError",
    "account_numbers", "bounded_int", "carrier_from_env", "deliver_webhook", "friendly", "list_page", "log", "main",
    "make_server", "missing_parameter", "number_filter", "number_sid", "page_of", "post_once", "probability",
    "rfc2822", "segments", "twilio_error", "twilio_signature", "utc_day", "utcnow", "webhook_headers", "SmsVoice", "sms_voice_from_env",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.local.fake_carrier", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("CARRIER_PORT", 4010)))
    args = parser.parse_args(argv)
    env = {**(read_env_file(ENV_LOCAL) if ENV_LOCAL.exists() else {}), **os.environ}
    token = env.get("TWILIO_AUTH_TOKEN")
    if not token:
        print("fake-carrier: TWILIO_AUTH_TOKEN is not set (and no .env.local)", file=sys.stderr)
        return 1
    try:
        carrier = carrier_from_env(env, token)
    except ValueError as e:
        print(f"fake-carrier: {e}", file=sys.stderr)
        return 1
    try:
        sms_voice = sms_voice_from_env(env, carrier)
    except ValueError as e:
        print(f"fake-carrier: {e}", file=sys.stderr)
        return 1
    server = make_server(args.host, args.port, carrier, sms_voice)
    if sms_voice.numbers:
        print(f"fake-carrier: End User Messaging holds {len(sms_voice.numbers)} numbers, configuration sets "
              f"{', '.join(sorted(sms_voice.configuration_sets)) or '(none)'}", flush=True)
    print(f"fake-carrier: http://{args.host}:{args.port} ({len(carrier.numbers)} numbers; inbound webhooks to each "
          f"number's SmsUrl, else {carrier.inbound_url}; "
          f"CARRIER_SEED={carrier.seed}, duplicate {carrier.duplicate:g}, reorder {carrier.reorder:g}, "
          f"max concurrent {carrier.max_concurrent or 'unlimited'})", flush=True)
    return serve_until_interrupted(server)
