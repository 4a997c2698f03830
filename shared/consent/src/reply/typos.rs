//! What people type on phones, read back into the words the rules know: letters spaced
//! out (`S T O P`, `s.t.o.p`, `A-L-T-O`), a word split in two (`st op`), letters
//! doubled (`stooop`, `altoo`) and one-edit typos (`stpo`, `sneding`, `mensages`,
//! `desuscrivirme`), the "fuzzy opt-out" the FCC's any-reasonable-means rule asks of a
//! sender (MoEngage, Braze and Ushur document the same).
//!
//! A word is only ever read as a rule word (the *vocabulary*: every plain word the
//! rules name). A word the rules know stays itself, and so does a real word of English,
//! Spanish or French one edit from a rule word (`step`, `shop`, `auto`, `also`, `alot`):
//! `data/real-words.txt` lists them (generated from word frequencies by
//! `tools/real_words.py`; its header holds a hash of the vocabulary it was made from,
//! and a test fails when the rules change without a rerun).

use std::collections::{HashMap, HashSet};

use super::types::{BREAK, COMMA};

/// The longest word considered for a correction.
const MAX_LEN: usize = 24;

/// Endings that make a rule word another word, not a typo of it (`unsubscribed`,
/// `stopping`, `ended`): a word that is a rule word plus one of these stays itself.
const INFLECTIONS: [&str; 10] = [
    "s", "d", "ed", "es", "ing", "er", "ers", "ion", "ions", "ly",
];

/// Endings a rule's prefix (`escrib*`, `envi*`) takes in the words people write
/// (`escribirme`, `enviando`): the forms a typo of such a word is read back into.
pub(super) const PREFIX_ENDINGS: [&str; 23] = [
    "a", "e", "o", "ar", "er", "ir", "an", "en", "as", "es", "ame", "arme", "erme", "irme", "anme",
    "enme", "ando", "iendo", "ado", "ido", "ing", "ed", "ez",
];

/// Letters Spanish spelling confuses by sound (`resivir` for `recibir`, `escrivir`,
/// `mensajez`) compare equal: b/v, c/s/z, g/j, i/y.
fn sound(b: u8) -> u8 {
    match b {
        b'v' => b'b',
        b'z' | b'c' => b's',
        b'j' => b'g',
        b'y' => b'i',
        b => b,
    }
}

#[derive(Default)]
pub(super) struct Typos {
    real: HashSet<Box<str>>,
    /// Vocabulary words of 3 letters or more, by length, sorted (ties go to the first).
    /// With each, the letters it has (as they sound): a cheap test before the distance.
    by_len: Vec<Vec<(Box<str>, u32)>>,
    /// Vocabulary words by their letters with runs collapsed (`stop` for `stoop`), when
    /// only one word collapses so.
    squeezed: HashMap<Box<str>, Option<Box<str>>>,
    /// The rules' prefixes: a word they match is known, never a typo.
    prefixes: Vec<Box<str>>,
    /// Keywords that win a tie (`dtop` is STOP before it is `drop`).
    preferred: HashSet<Box<str>>,
}

/// `stoop` -> `stop`: runs of one letter collapsed.
fn squeeze(w: &str) -> String {
    let mut out = String::with_capacity(w.len());
    for c in w.chars() {
        if !out.ends_with(c) {
            out.push(c);
        }
    }
    out
}

/// How a typo's candidate ranks (lower is better): distance, not a strong keyword, first
/// letter changed, length difference.
type Rank = (usize, bool, bool, usize);

/// The letters a word has, as they sound (`sound`), one bit each.
fn letters(w: &str) -> u32 {
    w.bytes()
        .filter(u8::is_ascii_lowercase)
        .fold(0, |m, b| m | 1 << (sound(b) - b'a'))
}

/// How many edits a typo may be from a rule word of this length: none below four
/// letters (but see `near`), one up to eight, two from nine (`unsubscribe`).
pub(super) fn allowed_edits(target_len: usize) -> usize {
    match target_len {
        0..=3 => 0,
        4..=8 => 1,
        _ => 2,
    }
}

/// Optimal string alignment distance of two ASCII words (insertions, deletions,
/// substitutions and swaps of neighbours), or `limit + 1` when it is larger.
fn osa(a: &[u8], b: &[u8], limit: usize) -> usize {
    const ROW: usize = MAX_LEN + 4;
    if a.len().abs_diff(b.len()) > limit || b.len() >= ROW {
        return limit + 1;
    }
    // Three rows on the stack: this runs for every candidate of every unknown word.
    let (mut prev2, mut prev, mut cur) = ([0usize; ROW], [0usize; ROW], [0usize; ROW]);
    for (j, p) in prev.iter_mut().enumerate().take(b.len() + 1) {
        *p = j;
    }
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(sound(a[i - 1]) != sound(b[j - 1]));
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                cur[j] = cur[j].min(prev2[j - 2] + 1);
            }
        }
        // Every cell of a row beyond the limit: so is the distance (a swap reads two rows
        // back, so both rows must be beyond it).
        if cur[..=b.len()].iter().all(|d| *d > limit) && prev[..=b.len()].iter().all(|d| *d > limit)
        {
            return limit + 1;
        }
        std::mem::swap(&mut prev2, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// Could `word` be a typo of `target`, and at what distance? Three-letter rule words
/// take only a swap of neighbours (`edn` -> `end`); two edits need the first letter right.
fn near(word: &str, target: &str) -> Option<usize> {
    let (w, t) = (word.as_bytes(), target.as_bytes());
    // One edit leaves one of the first two letters where it was or moves it by one
    // (substitution, insertion, deletion or swap at the start): a cheap test first.
    let one =
        allowed_edits(t.len()) == 1 || (allowed_edits(t.len()) == 2 && w.first() != t.first());
    if one && w.len() >= 2 && t.len() >= 2 {
        let (w0, w1, t0, t1) = (sound(w[0]), sound(w[1]), sound(t[0]), sound(t[1]));
        if w0 != t0 && w1 != t1 && w1 != t0 && w0 != t1 {
            return None;
        }
    }
    if word
        .strip_prefix(target)
        .is_some_and(|rest| INFLECTIONS.contains(&rest))
    {
        return None;
    }
    let mut n = allowed_edits(t.len());
    if n == 0 {
        let swapped = w.len() == 3 && {
            let (mut x, mut y) = (w.to_vec(), t.to_vec());
            x.sort_unstable();
            y.sort_unstable();
            x == y
        };
        return (swapped && osa(w, t, 1) == 1).then_some(1);
    }
    if n == 2 && w.first() != t.first() {
        n = 1;
    }
    let d = osa(w, t, n);
    (d <= n).then_some(d)
}

fn is_word(w: &str) -> bool {
    w != BREAK && w != COMMA
}

impl Typos {
    /// `vocabulary`: the words the rules name; `prefixes`: the prefixes they name
    /// (`escrib` of `escrib*`), whose usual forms are read back too.
    pub(super) fn new<'v>(
        vocabulary: impl Iterator<Item = &'v str>,
        prefixes: &[&str],
        real_words: &str,
    ) -> Typos {
        let mut by_len: Vec<Vec<(Box<str>, u32)>> = vec![Vec::new(); MAX_LEN + 3];
        let mut squeezed: HashMap<Box<str>, Option<Box<str>>> = HashMap::new();
        let mut vocabulary: Vec<Box<str>> = vocabulary.map(Into::into).collect();
        let known: HashSet<Box<str>> = vocabulary.iter().cloned().collect();
        let mut forms: Vec<Box<str>> = prefixes
            .iter()
            .flat_map(|p| PREFIX_ENDINGS.iter().map(move |e| format!("{p}{e}").into()))
            .collect();
        forms.sort_unstable();
        forms.dedup();
        let mut vocabulary_forms = Vec::new();
        for f in forms {
            if !known.contains(&f) {
                vocabulary_forms.push(f);
            }
        }
        vocabulary.extend(vocabulary_forms);
        for v in vocabulary.iter().map(|v| &**v) {
            if v.len() >= 3
                && v.len() < by_len.len()
                && v.bytes().all(|b| b.is_ascii_alphanumeric())
            {
                by_len[v.len()].push((v.into(), letters(v)));
            }
            if v.len() >= 3 {
                // A word that is its own squeeze (`stop`) wins over one that only
                // collapses to it; two of the latter are ambiguous.
                let sq = squeeze(v);
                let own = sq == v;
                squeezed
                    .entry(sq.into())
                    .and_modify(|e| match e {
                        Some(w) if squeeze(w) == **w => {}
                        _ if own => *e = Some(v.into()),
                        _ => *e = None,
                    })
                    .or_insert_with(|| Some(v.into()));
            }
        }
        for words in &mut by_len {
            words.sort_unstable();
            words.dedup();
        }
        let real = real_words
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(Into::into)
            .collect();
        Typos {
            real,
            by_len,
            squeezed,
            prefixes: prefixes.iter().map(|p| (*p).into()).collect(),
            preferred: HashSet::new(),
        }
    }

    /// The rule word an unknown word is a typo of, if any (`known` tells the words the
    /// rules name; they are never corrected).
    fn correct<'a>(
        &'a self,
        word: &str,
        canonical: &dyn Fn(&str) -> Option<&'a str>,
    ) -> Option<&'a str> {
        let known = |w: &str| canonical(w).is_some();
        let alphabetic = word.bytes().filter(u8::is_ascii_alphabetic).count();
        if known(word)
            || word.len() < 3
            || word.len() > MAX_LEN
            || alphabetic < 2
            || !word.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return None;
        }
        if let Some(v) = self.doubled(word) {
            return Some(v);
        }
        // Spanish texting writes `k` for `qu` (`kitenme`, `ke`).
        if word.contains('k') {
            let spelled = word.replace('k', "qu");
            if let Some(w) = canonical(&spelled) {
                return Some(w);
            }
        }
        if self.real.contains(word) {
            return None;
        }
        if self.by_len.is_empty() {
            return None;
        }
        // A word a rule's prefix takes is only read as a rule word one edit away
        // (`textin` -> `texting`), never as another prefix's form (`desinscrire`).
        let by_prefix = self.by_prefix(word);
        // The nearest rule word; among equals, a strong keyword, then one with the same
        // first letter (people seldom mistype the first), then the closest length, then
        // the first in order.
        let rank = |d: usize, t: &str| {
            (
                d,
                !self.preferred.contains(t),
                t.as_bytes().first() != word.as_bytes().first(),
                t.len().abs_diff(word.len()),
            )
        };
        let mut best: Option<(Rank, &str)> = None;
        let lo = word.len().saturating_sub(2).max(3);
        let hi = (word.len() + 2).min(self.by_len.len() - 1);
        let mine = letters(word);
        for len in lo..=hi {
            for (t, theirs) in &self.by_len[len] {
                // An edit changes which letters a word has by two at most.
                if (mine ^ theirs).count_ones() > 2 * allowed_edits(len).max(1) as u32 {
                    continue;
                }
                if by_prefix && !known(t) {
                    continue;
                }
                if let Some(d) = near(word, t).filter(|d| !by_prefix || *d <= 1) {
                    let r = rank(d, t);
                    if best.is_none_or(|(b, bt)| r < b || (r == b && **t < *bt)) {
                        best = Some((r, t));
                    }
                }
            }
        }
        best.map(|(_, t)| t)
    }

    /// Reads the normalised words back into rule words where they are typos of one;
    /// `canonical` gives the rules' own copy of a word they know.
    pub(super) fn repair<'a>(
        &'a self,
        words: Vec<&'a str>,
        canonical: &dyn Fn(&str) -> Option<&'a str>,
    ) -> Vec<&'a str> {
        let known = |w: &str| canonical(w).is_some();
        let read = |w: &str| canonical(w).or_else(|| self.correct(w, canonical));
        let single = |w: &str| w.len() == 1 && w.as_bytes()[0].is_ascii_alphabetic();
        let mut out: Vec<&'a str> = Vec::with_capacity(words.len());
        let mut i = 0;
        while i < words.len() {
            // Letters spaced out, dotted or dashed: `s t o p`, `s | t | o | p`.
            if single(words[i]) {
                let (mut letters, mut last, mut j) = (String::new(), i, i);
                while j < words.len() {
                    if single(words[j]) {
                        letters.push_str(words[j]);
                        last = j;
                    } else if is_word(words[j]) {
                        break;
                    }
                    j += 1;
                }
                if letters.len() >= 3 {
                    if let Some(w) = read(&letters) {
                        out.push(w);
                        i = last + 1;
                        continue;
                    }
                }
            }
            // A word split in two, neither half a word the rules know: `st op`.
            if let Some(&next) = words.get(i + 1) {
                let (a, b) = (words[i], next);
                if is_word(a) && is_word(b) && !known(a) && !known(b) && a.len() + b.len() >= 4 {
                    if let Some(w) = canonical(&format!("{a}{b}")) {
                        out.push(w);
                        i += 2;
                        continue;
                    }
                }
                // A known word and a stray short piece of its partner (`opt ot`), or a
                // long word split and mistyped (`on subscribe`).
                let joined = format!("{a}{b}");
                let stray = known(a) && !known(b) && b.len() <= 3 && !self.real.contains(b);
                // `on subscribe`: a short first piece and an unknown word that is no typo
                // of its own.
                let split_long = a.len() <= 3
                    && !known(b)
                    && joined.len() >= 8
                    && self.correct(b, canonical).is_none();
                if is_word(a) && is_word(b) && (stray || split_long) {
                    let long_enough = |w: &&str| w.len() >= if stray { 5 } else { 8 };
                    let close = |w: &&str| stray || near(&joined, w) == Some(1);
                    if let Some(w) = self
                        .correct(&joined, canonical)
                        .filter(long_enough)
                        .filter(close)
                    {
                        out.push(w);
                        i += 2;
                        continue;
                    }
                }
            }
            let w = words[i];
            i += 1;
            if !is_word(w) {
                out.push(w);
                continue;
            }
            // Words run together (`stoptexting`, `nomoretexts`, `dejende`), unless the
            // word is one with a letter doubled (`cancell` is not `can cell`).
            if let Some(v) = (!known(w)).then(|| self.doubled(w)).flatten() {
                out.push(v);
                continue;
            }
            if let Some(parts) = self.split(w, canonical) {
                out.extend(parts);
                continue;
            }
            out.push(self.correct(w, canonical).unwrap_or(w));
        }
        out
    }

    /// The rules' prefixes, as given.
    #[cfg(test)]
    pub(super) fn prefixes(&self) -> Vec<&str> {
        self.prefixes.iter().map(|p| &**p).collect()
    }

    /// Doubled letters are a typo even of a real word (`stoop`, `alllto`, `outt`,
    /// `cancell`): the rule word they collapse to.
    fn doubled(&self, word: &str) -> Option<&str> {
        if word.len() < 4 {
            return None;
        }
        match self.squeezed.get(squeeze(word).as_str()) {
            Some(Some(v)) if **v != *word => Some(v),
            _ => None,
        }
    }

    /// These rule words win a tie between typos at the same distance.
    pub(super) fn prefer<'v>(&mut self, words: impl Iterator<Item = &'v str>) {
        self.preferred.extend(words.map(Into::into));
    }

    /// Does a rule's prefix take this word (`escribirme` for `escrib*`)?
    fn by_prefix(&self, word: &str) -> bool {
        self.prefixes
            .iter()
            .any(|p| word.len() > p.len() && word.starts_with(&**p))
    }

    /// An unknown word that is two or three words the rules know written together
    /// (each of two letters or more), fewest parts first.
    fn split<'a>(
        &self,
        word: &str,
        canonical: &dyn Fn(&str) -> Option<&'a str>,
    ) -> Option<Vec<&'a str>> {
        if word.len() < 5
            || word.len() > MAX_LEN
            || canonical(word).is_some()
            || self.real.contains(word)
            || self.by_prefix(word)
        {
            return None;
        }
        let n = word.len();
        let piece = |a: usize, b: usize| word.get(a..b).and_then(canonical);
        (2..=n - 2)
            .find_map(|i| Some(vec![piece(0, i)?, piece(i, n)?]))
            .or_else(|| {
                (2..=n - 4).find_map(|i| {
                    (i + 2..=n - 2)
                        .find_map(|j| Some(vec![piece(0, i)?, piece(i, j)?, piece(j, n)?]))
                })
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typos(vocabulary: &[&str], real: &str) -> Typos {
        Typos::new(vocabulary.iter().copied(), &["escrib"], real)
    }

    /// The table both implementations of the rule answer from (this one and
    /// tools/real_words.py's `is_candidate`, tested in infra/local/tests/test_real_words.py).
    #[test]
    fn near_answers_as_the_shared_table_of_candidates_says() {
        let table = include_str!("../../data/typo-candidates.tsv");
        let mut rows = 0;
        for line in table
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let [word, target, candidate, why] = line.split('\t').collect::<Vec<_>>()[..] else {
                panic!("a row is word, target, yes|no, why: {line:?}");
            };
            let expected = match candidate {
                "yes" => true,
                "no" => false,
                other => panic!("{other:?} is neither yes nor no: {line:?}"),
            };
            assert_eq!(
                near(word, target).is_some(),
                expected,
                "{word} as a typo of {target}: {why}"
            );
            rows += 1;
        }
        assert!(rows >= 30, "{rows} rows");
    }

    #[test]
    fn distances_count_swaps_as_one_edit() {
        assert_eq!(osa(b"stpo", b"stop", 2), 1);
        assert_eq!(osa(b"sotp", b"stop", 2), 1);
        assert_eq!(osa(b"stp", b"stop", 2), 1);
        assert_eq!(osa(b"unsubscibe", b"unsubscribe", 2), 1);
        assert_eq!(osa(b"stahp", b"stop", 1), 2);
        assert_eq!(osa(b"abc", b"abcdef", 1), 2);
    }

    #[test]
    fn typos_are_read_as_the_rule_word_and_real_words_stay() {
        let words = ["stop", "texting", "end", "unsubscribe", "alto", "recibir"];
        let t = typos(&words, "step\nauto\n");
        let canonical = |w: &str| words.iter().copied().find(|k| *k == w);
        for (typo, word) in [
            ("stpo", "stop"),
            ("stp", "stop"),
            ("stoooop", "stop"),
            ("textng", "texting"),
            ("edn", "end"),
            ("unsubscirbe", "unsubscribe"),
            ("unsbscrbe", "unsubscribe"),
            ("altoo", "alto"),
            ("st0p", "stop"),
            ("escrivirme", "escribirme"),
            ("resivir", "recibir"),
        ] {
            assert_eq!(t.correct(typo, &canonical), Some(word), "{typo}");
        }
        for real in [
            "step",
            "auto",
            "stop",
            "nde",
            "en",
            "xunsbscrbe",
            "123",
            "unsubscribed",
            "stopping",
            "ended",
        ] {
            assert_eq!(t.correct(real, &canonical), None, "{real}");
        }
    }

    #[test]
    fn words_run_together_are_parted_and_spaced_letters_joined() {
        let words = ["stop", "texting", "no", "more", "texts", "de", "dejen"];
        let t = typos(&words, "");
        let repaired = |s: &str| {
            let canonical = |w: &str| words.iter().copied().find(|k| *k == w);
            t.repair(s.split(' ').collect(), &canonical).join(" ")
        };
        assert_eq!(repaired("stoptexting now"), "stop texting now");
        assert_eq!(repaired("nomoretexts"), "no more texts");
        assert_eq!(repaired("dejende"), "dejen de");
        assert_eq!(repaired("s t o p texting"), "stop texting");
        assert_eq!(repaired("s | t | o | p"), "stop");
        assert_eq!(repaired("st op"), "stop");
        assert_eq!(repaired("no mor texts"), "no more texts");
        assert_eq!(repaired("a b c"), "a b c");
    }
}
