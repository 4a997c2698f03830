"""The operator's allow-list of texting numbers: provision numbers a dealer admin may pick.

    python -m infra.provision --table <stack's table> --account AC... --dealer <dealer id> +12025550100 +13125550100..+13125550199

Each number (or inclusive range, NUMBER_POOL's syntax) becomes the item NUMBER#<number> / PROVISIONED
with the carrier account it belongs to and the dealer it is for: only that dealer's admin may then
pick it (PUT /v1/dealer); a number another dealer gave up is provisioned again for its next dealer. Uses the standard AWS credentials and region (and
AWS_ENDPOINT_URL, so it works on the emulator too). `--remove` deprovisions. Running it twice is fine.
Locally the number pool (NUMBER_POOL) plays the operator's list, so `make dev` needs none of this.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys

import boto3

from infra.local.numbers import PoolError, expand

# The product's DealerId: letters, digits, - and _ (shared/consent/src/ids.rs).
_DEALER_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", required=True, help="the stack's DynamoDB table name")
    parser.add_argument("--account", help="carrier account SID the numbers belong to (required to provision)")
    parser.add_argument("--dealer", help="the dealer id the numbers are for (required to provision)")
    parser.add_argument("--remove", action="store_true", help="deprovision the numbers")
    parser.add_argument("numbers", nargs="+", help="E.164 numbers or ranges (+12025550100..+12025550199)")
    args = parser.parse_args(argv)
    try:
        numbers = expand(",".join(args.numbers))
    except PoolError as e:
        print(f"provision: {e}", file=sys.stderr)
        return 2
    if not args.remove and not args.account:
        print("provision: --account is required to provision", file=sys.stderr)
        return 2
    if not args.remove and not (args.dealer and _DEALER_ID.fullmatch(args.dealer)):
        print("provision: --dealer (a dealer id: letters, digits, - and _, up to 64) is required to provision",
              file=sys.stderr)
        return 2
    table = boto3.resource("dynamodb").Table(args.table)
    now = dt.datetime.now(dt.timezone.utc).isoformat()
    with table.batch_writer() as batch:
        for number in numbers:
            key = {"PK": f"NUMBER#{number}", "SK": "PROVISIONED"}
            if args.remove:
                batch.delete_item(Key=key)
            else:
                batch.put_item(Item={**key, "carrierAccount": args.account, "dealerId": args.dealer,
                                     "provisionedAt": now})
    print(f"provision: {'removed' if args.remove else 'provisioned'} {len(numbers)} number(s) in {args.table}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
