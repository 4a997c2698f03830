"""NUMBER_POOL's syntax: comma-separated items, each an E.164 number or an inclusive range of them.

    +12025550101..+12025550199,+13125550100..+13125550199,+14155550123

A range's two ends have the same length and the first is not greater than the last; it stands for
every number between them (at most MAX_RANGE). The functions read the same syntax; the local stack
passes the compact form through (an environment stays small) and expands it only to check or list it.
"""

from __future__ import annotations

import re

E164 = re.compile(r"\+[1-9]\d{6,14}")
MAX_RANGE = 10_000


class PoolError(ValueError):
    """A NUMBER_POOL item that is neither a number nor a valid range."""


def expand(spec: str) -> list[str]:
    """Every number of the pool, in the order written."""
    numbers: list[str] = []
    for raw in spec.split(","):
        item = raw.strip()
        if not item:
            continue
        first, sep, last = (part.strip() for part in item.partition(".."))
        for end in (first, last) if sep else (first,):
            if not E164.fullmatch(end):
                raise PoolError(f"NUMBER_POOL: {end!r} in {item!r} is not an E.164 number (+ and 7 to 15 digits)")
        if not sep:
            numbers.append(first)
            continue
        if len(first) != len(last):
            raise PoolError(f"NUMBER_POOL: the ends of {item!r} differ in length")
        low, high = int(first[1:]), int(last[1:])
        if low > high:
            raise PoolError(f"NUMBER_POOL: {item!r} runs backwards")
        if high - low + 1 > MAX_RANGE:
            raise PoolError(f"NUMBER_POOL: {item!r} holds more than {MAX_RANGE} numbers")
        numbers.extend(f"+{n:0{len(first) - 1}d}" for n in range(low, high + 1))
    return numbers
