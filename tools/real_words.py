"""Regenerates shared/consent/data/real-words.txt: the real words the reply classifier must never
"correct" into one of its rule words (`make real-words`).

The classifier (shared/consent/src/reply/) reads a word it does not know as a typo of a rule word
when it is one edit away (`stpo` -> `stop`, `sneding` -> `sending`, `mensages` -> `mensajes`). A real
word one edit away (`step`, `shop`, `auto`, `also`, `alot`) must stay itself. This script lists them:
every word of English, Spanish or French with a Zipf frequency of at least 3.0 in wordfreq (pinned
in tools/requirements-words.txt) that is a correction candidate of some rule word, folded the way the
classifier folds words (lowercase, accents off, apostrophes joined). The file's header records a hash
of the rule vocabulary it was made from; a test fails when the rules change without a rerun.
"""

import sys
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "shared/consent/data/reply-rules.tsv"
OUT = ROOT / "shared/consent/data/real-words.txt"
MIN_ZIPF = 3.0
LANGUAGES = ("en", "es", "fr")


INFLECTIONS = ("s", "d", "ed", "es", "ing", "er", "ers", "ion", "ions", "ly")
PREFIX_ENDINGS = ("a", "e", "o", "ar", "er", "ir", "an", "en", "as", "es", "ame", "arme", "erme", "irme",
                  "anme", "enme", "ando", "iendo", "ado", "ido", "ing", "ed", "ez")
# reply/typos.rs `sound`: letters Spanish spelling confuses by sound compare equal.
SOUND = str.maketrans("vzcjy", "bssgi")


def prefixes(text: str) -> list[str]:
    """The prefixes the rules' patterns name (`escrib` of `escrib*`)."""
    out = set()
    for line in text.splitlines():
        cols = line.split("\t")
        if line.startswith("#") or len(cols) != 4 or not cols[0].startswith(("opt-out", "not-opt-out")):
            continue
        for part in cols[2].split(" "):
            for alt in part.split("|"):
                if alt.endswith("*") and alt[:-1].isalpha():
                    out.add(alt[:-1])
    return sorted(out)


def vocabulary(text: str) -> list[str]:
    """Every plain word the rules name (what reply/rules.rs calls the vocabulary)."""
    words = set()
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        cols = line.split("\t")
        if len(cols) != 4:
            continue
        for part in cols[2].split(" "):
            for alt in part.split("|"):
                if alt and all(c.islower() or c.isdigit() for c in alt) and alt.isascii() and alt.isalnum():
                    words.add(alt)
    return sorted(words)


def fnv1a(text: str) -> str:
    h = 0xCBF29CE484222325
    for b in text.encode():
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def fold(word: str) -> str:
    word = word.replace("'", "").replace("\u2019", "")
    return "".join(c for c in unicodedata.normalize("NFD", word.lower()) if not unicodedata.combining(c))


def osa(a: str, b: str, limit: int) -> int:
    """Optimal string alignment distance, as reply/typos.rs computes it (capped at limit + 1):
    letters that sound alike (`SOUND`) substitute for free; a swap is of the letters as written."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    sa, sb = a.translate(SOUND), b.translate(SOUND)
    prev2, prev = None, list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if sa[i - 1] == sb[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[len(b)]


def allowed_edits(target: str) -> int:
    """reply/typos.rs `allowed_edits`: how far a typo may be from a rule word of this length."""
    if len(target) >= 9:
        return 2
    if len(target) >= 4:
        return 1
    return 0


def is_candidate(word: str, target: str) -> bool:
    """reply/typos.rs `near`: could `word` be read as a typo of `target`?"""
    if word == target or len(word) < 3:
        return False
    if word.startswith(target) and word[len(target):] in INFLECTIONS:
        return False
    n = allowed_edits(target)
    if n == 0:
        # three letters: a swap of two neighbours only
        return len(word) == 3 and sorted(word) == sorted(target) and osa(word, target, 1) == 1
    if n == 2 and word[0] != target[0]:
        n = 1
    return osa(word, target, n) <= n


def deletes(word: str, n: int) -> set[str]:
    """Every string n deletions or fewer make of word (a symmetric-delete index key)."""
    out, frontier = {word}, {word}
    for _ in range(n):
        frontier = {w[:i] + w[i + 1:] for w in frontier for i in range(len(w))}
        out |= frontier
    return out


def main() -> int:
    from wordfreq import top_n_list, zipf_frequency  # only the generator needs the word lists

    text = RULES.read_text(encoding="utf-8")
    vocab = vocabulary(text)
    pre = prefixes(text)
    known = set(vocab)
    forms = {p + e for p in pre for e in PREFIX_ENDINGS} - known
    targets = sorted({v for v in vocab if len(v) >= 3} | forms)
    # Two strings within 2 edits (a swap is 2 deletions) share a key of 2 deletions each.
    index: dict[str, list[str]] = {}
    for t in targets:
        for key in deletes(t.translate(SOUND), 2):
            index.setdefault(key, []).append(t)
    real = set()
    for lang in LANGUAGES:
        for raw in top_n_list(lang, 200_000):
            if zipf_frequency(raw, lang) < MIN_ZIPF:
                break
            w = fold(raw)
            if w in known or w in real or not (w.isascii() and w.isalnum()) or len(w) < 3:
                continue
            near = {t for key in deletes(w.translate(SOUND), 2) for t in index.get(key, ())}
            if any(len(w) > len(p) and w.startswith(p) for p in pre):
                # reply/typos.rs: a word a prefix takes is only read as a rule word one edit away
                near = {t for t in near if t in known and osa(w, t, 1) <= 1}
            if any(is_candidate(w, t) for t in near):
                real.add(w)
    header = [
        "# Real words one edit from a reply rule word: never read as typos (tools/real_words.py, `make real-words`).",
        f"# wordfreq, Zipf >= {MIN_ZIPF} in {', '.join(LANGUAGES)}; folded as the reply module folds words.",
        f"# vocabulary-fnv: {fnv1a(chr(10).join(vocab + ['*'] + pre))}",
    ]
    OUT.write_text("\n".join(header + sorted(real)) + "\n", encoding="utf-8")
    print(f"{OUT.relative_to(ROOT)}: {len(real)} real words near {len(targets)} rule words")
    return 0


if __name__ == "__main__":
    sys.exit(main())
