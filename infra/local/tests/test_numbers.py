"""NUMBER_POOL's syntax: numbers and inclusive ranges of same-length numbers."""

from __future__ import annotations

import pytest

from infra.local.numbers import MAX_RANGE, PoolError, expand


def test_numbers_and_ranges_in_the_order_written() -> None:
    assert expand("") == []
    assert expand("+12025550101") == ["+12025550101"]
    assert expand(" +13125550198..+13125550200 , +12025550101,") == [
        "+13125550198", "+13125550199", "+13125550200", "+12025550101"]
    assert expand("+12025550100..+12025550100") == ["+12025550100"]
    assert len(expand("+12025550101..+12025550199,+13125550100..+13125550199")) == 199


@pytest.mark.parametrize("spec, problem", [
    ("12025550101", "not an E.164 number"),
    ("+12025550101..", "not an E.164 number"),
    ("+1202555010a", "not an E.164 number"),
    ("+12025550199..+1202555019", "differ in length"),
    ("+12025550199..+12025550101", "runs backwards"),
    (f"+12020000000..+1202{MAX_RANGE:07d}", "more than"),
])
def test_a_bad_item_is_named(spec: str, problem: str) -> None:
    with pytest.raises(PoolError, match=problem):
        expand(spec)
