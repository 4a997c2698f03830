"""Twilio's REST conventions the fake's resources share: the API's paths, its dates, its errors and its paged lists."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Any, Mapping
from urllib.parse import urlencode

API_VERSION = "2010-04-01"
PAGE_SIZE, MAX_PAGE_SIZE = 50, 1000


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def rfc2822(moment: datetime) -> str:
    """Twilio's dates: `Mon, 07 Dec 2026 10:00:00 +0000`."""
    return format_datetime(moment.astimezone(timezone.utc))


def twilio_error(status: int, code: int, message: str) -> dict[str, Any]:
    return {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status}


@dataclass(frozen=True)
class ApiPath:
    """A REST API path: `/2010-04-01/Accounts/{account}/{resource}.json` (a list) or
    `/2010-04-01/Accounts/{account}/{resource}/{sid}.json` (one instance)."""

    account: str
    resource: str
    sid: str | None = None

    @classmethod
    def parse(cls, path: str) -> ApiPath | None:
        parts = path.strip("/").split("/")
        if len(parts) not in (4, 5) or parts[0] != API_VERSION or parts[1] != "Accounts" \
                or not parts[-1].endswith(".json"):
            return None
        last = parts[-1].removesuffix(".json")
        return cls(parts[2], last) if len(parts) == 4 else cls(parts[2], parts[3], last)

    def not_found(self) -> dict[str, Any]:
        """Twilio's 20404 for a resource it does not have."""
        where = f"/{self.resource}/{self.sid}" if self.sid else f"/{self.resource}"
        return twilio_error(404, 20404, f"The requested resource /{API_VERSION}/Accounts/{self.account}{where}.json "
                                        "was not found")


def list_page(account_sid: str, resources: list[dict[str, Any]], filters: Mapping[str, str], page: int,
              page_size: int, list_name: str = "Messages") -> dict[str, Any]:
    """Twilio's list JSON for one page of `resources` (already filtered, in the list's order): the page under the
    list's key (`messages`, `incoming_phone_numbers`) and the paging fields."""
    base = f"/{API_VERSION}/Accounts/{account_sid}/{list_name}.json"

    def uri(n: int) -> str:
        return f"{base}?{urlencode({**filters, 'PageSize': page_size, 'Page': n})}"

    start = page * page_size
    shown = resources[start:start + page_size]
    key = re.sub(r"(?<!^)(?=[A-Z])", "_", list_name).lower()
    return {key: shown, "page": page, "page_size": page_size, "start": start,
            "end": start + max(len(shown) - 1, 0), "first_page_uri": uri(0), "uri": uri(page),
            "previous_page_uri": uri(page - 1) if page else None,
            "next_page_uri": uri(page + 1) if len(resources) > start + page_size else None}


def page_of(query: Mapping[str, str]) -> tuple[int, int]:
    """(Page, PageSize) of a list request: PageSize defaults to 50 and is at most 1000."""
    try:
        page, size = int(query.get("Page", 0)), int(query.get("PageSize", PAGE_SIZE))
    except ValueError:
        raise ValueError("Page and PageSize are whole numbers") from None
    if page < 0 or size < 1:
        raise ValueError("Page is at least 0 and PageSize at least 1")
    return page, min(size, MAX_PAGE_SIZE)
