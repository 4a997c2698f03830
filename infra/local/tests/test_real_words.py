"""tools/real_words.py repeats the reply reader's typo rule (reply/typos.rs `near`) to list the real
words that must stay themselves. Both answer from one table, data/typo-candidates.tsv: a change to
the rule on one side that the other does not follow fails here or in the Rust test
`near_answers_as_the_shared_table_of_candidates_says`."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
TABLE = ROOT / "shared/consent/data/typo-candidates.tsv"


def _real_words():
    spec = importlib.util.spec_from_file_location("real_words", ROOT / "tools/real_words.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rows() -> list[tuple[str, str, bool, str]]:
    rows = []
    for line in TABLE.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        word, target, candidate, why = line.split("\t")
        assert candidate in ("yes", "no"), line
        rows.append((word, target, candidate == "yes", why))
    return rows


def test_the_table_is_wide_enough():
    rows = _rows()
    assert len(rows) >= 30
    # Both answers, and each rule the table names, are in it.
    assert {expected for _, _, expected, _ in rows} == {True, False}


@pytest.mark.parametrize("word,target,expected,why", _rows(), ids=lambda v: v if isinstance(v, str) else None)
def test_the_generator_reads_typos_as_the_classifier_does(word, target, expected, why):
    assert _real_words().is_candidate(word, target) is expected, f"{word} as a typo of {target}: {why}"
