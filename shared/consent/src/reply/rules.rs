//! The rule compiler: `data/reply-rules.tsv` (word classes, filler, revocation phrases
//! and keywords, whole-message keywords) read once into word tables and patterns, with
//! the real words of `data/real-words.txt` that typo repair leaves alone.

use std::collections::HashMap;
use std::sync::LazyLock;

use super::types::COMMA;
use super::types::{Language, ReplyKind};
use super::typos::Typos;
use crate::category::Category;
use crate::data::{rows, DataError};

static RULES_TSV: &str = include_str!("../../data/reply-rules.tsv");

static REAL_WORDS: &str = include_str!("../../data/real-words.txt");

pub(super) static RULES: LazyLock<Rules> = LazyLock::new(|| {
    Rules::with_real_words(RULES_TSV, REAL_WORDS)
        .unwrap_or_else(|e| panic!("embedded reply-rules.tsv is invalid (a build bug): {e}"))
});

/// The kinds decided by whole-message keywords, in the order they are tried.
pub(super) const WHOLE_KINDS: [(&str, ReplyKind); 5] = [
    ("agree", ReplyKind::Agree),
    ("opt-in", ReplyKind::OptIn),
    ("help", ReplyKind::Help),
    ("pay", ReplyKind::Pay),
    ("confirm", ReplyKind::Confirm),
];

/// One alternative of a pattern token.
#[derive(Debug, Clone)]
pub(super) enum Alt {
    Word(Box<str>),
    Prefix(Box<str>),
    Class(u32),
}

#[derive(Debug, Clone)]
pub(super) enum Tok {
    Any(Vec<Alt>),
    /// Up to this many words of anything.
    Gap(usize),
    /// Only filler until the end of the sentence.
    End,
    /// Not about a thing of this class: the rest of the clause (up to [`GUARD_WINDOW`]
    /// words, a comma or a `{but}` word) names none, or also names a `{msg}` word.
    Guard(u32),
}

/// How far a guard looks after its phrase.
pub(super) const GUARD_WINDOW: usize = 10;

#[derive(Debug, Clone)]
pub(super) struct Pattern {
    /// Only filler before it in its sentence.
    pub(super) at_start: bool,
    pub(super) toks: Vec<Tok>,
    pub(super) language: Language,
}

/// What the rules say about one word.
#[derive(Debug, Clone, Default)]
pub(super) struct WordInfo {
    /// Bit i: the word is in class i.
    pub(super) classes: u32,
    pub(super) filler: bool,
    /// Revocation phrases whose first token names this word.
    pub(super) phrases: Vec<usize>,
    /// Per whole-message kind: (key word in this language, also word).
    pub(super) whole: [(Option<Language>, bool); WHOLE_KINDS.len()],
    /// What the word names in an Agree.
    pub(super) agree_for: Option<AgreeFor>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AgreeFor {
    Category(Category),
    All,
}

/// FNV-1a: the word table's keys are short lowercase words chosen by the rules file, so
/// a fast non-cryptographic hash is enough (nothing a sender writes becomes a key).
#[derive(Default)]
pub(super) struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

pub(super) type WordMap = HashMap<Box<str>, WordInfo, std::hash::BuildHasherDefault<Fnv>>;

/// The parsed rules.
#[derive(Default)]
pub(super) struct Rules {
    pub(super) words: WordMap,
    pub(super) classes: Vec<Box<str>>,
    pub(super) phrases: Vec<Pattern>,
    /// Phrases whose first token is a prefix or a class: tried at every word.
    pub(super) loose: Vec<usize>,
    /// Revocation keywords, longest first.
    pub(super) keywords: Vec<Pattern>,
    /// Phrases that, anywhere in a message, mean it revokes nothing (`dont stop`).
    pub(super) vetoes: Vec<Pattern>,
    /// The classes the engine itself reads: `msg`, `but` and `strong`.
    pub(super) msg: u32,
    pub(super) but: u32,
    pub(super) strong: u32,
    pub(super) typos: Typos,
}

#[derive(Clone, Copy)]
pub(super) struct W<'a> {
    pub(super) text: &'a str,
    pub(super) info: Option<&'a WordInfo>,
}

impl W<'_> {
    /// Filler, or a comma (which carries no meaning of its own).
    pub(super) fn filler(&self) -> bool {
        self.text == COMMA || self.info.is_some_and(|i| i.filler)
    }

    pub(super) fn in_class(&self, class: u32) -> bool {
        self.info.is_some_and(|i| i.classes & (1 << class) != 0)
    }
}

impl Alt {
    pub(super) fn matches(&self, w: &W<'_>) -> bool {
        match self {
            Alt::Word(x) => **x == *w.text,
            Alt::Prefix(p) => w.text.starts_with(&**p) && w.text.len() > p.len(),
            Alt::Class(c) => w.in_class(*c),
        }
    }
}

impl Rules {
    /// The rules, with no real words listed (every near word is a typo).
    #[cfg(test)]
    fn from_tsv(text: &str) -> Result<Rules, DataError> {
        Rules::with_real_words(text, "")
    }

    fn with_real_words(text: &str, real_words: &str) -> Result<Rules, DataError> {
        let mut r = Rules::default();
        let mut pending: Vec<(usize, &str, Language, &str)> = Vec::new();
        for (line, cols) in rows(text) {
            let [rule, language, pattern, source] = cols[..] else {
                return Err(DataError::new(
                    line,
                    format!("expected 4 columns, found {}", cols.len()),
                ));
            };
            let language = Language::parse(language)
                .ok_or_else(|| DataError::new(line, format!("bad language {language:?}")))?;
            if source.is_empty() || pattern.is_empty() {
                return Err(DataError::new(line, "a rule needs its pattern and source"));
            }
            let words = || pattern.split(' ').filter(|w| !w.is_empty());
            if let Some(name) = rule.strip_prefix("class:") {
                let bit = match r.classes.iter().position(|c| **c == *name) {
                    Some(i) => i,
                    None if r.classes.len() < 32 => {
                        r.classes.push(name.into());
                        r.classes.len() - 1
                    }
                    None => return Err(DataError::new(line, "more than 32 classes")),
                };
                for w in words() {
                    r.entry(w).classes |= 1 << bit;
                }
            } else if let Some(what) = rule.strip_prefix("agree-for:") {
                // Words that name what an Agree is for; each is also an Agree word.
                let what = match what {
                    "all" => AgreeFor::All,
                    c => AgreeFor::Category(c.parse().map_err(
                        |e: crate::category::UnknownCategory| DataError::new(line, e.to_string()),
                    )?),
                };
                let agree = WHOLE_KINDS
                    .iter()
                    .position(|(k, _)| *k == "agree")
                    .unwrap_or_default();
                for w in words() {
                    let e = r.entry(w);
                    e.agree_for = Some(what);
                    e.whole[agree].1 = true;
                }
            } else if rule == "filler" {
                for w in words() {
                    r.entry(w).filler = true;
                }
            } else if rule == "opt-out" || rule == "opt-out-word" || rule == "not-opt-out" {
                // Patterns are compiled once every class is known.
                pending.push((line, rule, language, pattern));
            } else if let Some(i) = WHOLE_KINDS
                .iter()
                .position(|(k, _)| rule == format!("{k}-key") || rule == format!("{k}-also"))
            {
                let key = rule.ends_with("-key");
                for w in words() {
                    let slot = &mut r.entry(w).whole[i];
                    if key {
                        slot.0.get_or_insert(language);
                    } else {
                        slot.1 = true;
                    }
                }
            } else {
                return Err(DataError::new(line, format!("unknown rule {rule:?}")));
            }
        }
        for (line, rule, language, pattern) in pending {
            let p = r
                .compile(pattern, language)
                .map_err(|e| DataError::new(line, e))?;
            // Every word a pattern names is vocabulary: a typo may be read as it.
            for t in &p.toks {
                if let Tok::Any(alts) = t {
                    for a in alts {
                        if let Alt::Word(w) = a {
                            let w = w.clone();
                            r.entry(&w);
                        }
                    }
                }
            }
            if rule == "not-opt-out" {
                r.vetoes.push(p);
                continue;
            }
            if rule == "opt-out-word" {
                if p.at_start || p.toks.iter().any(|t| !matches!(t, Tok::Any(_))) {
                    return Err(DataError::new(line, "a keyword is words only"));
                }
                r.keywords.push(p);
                continue;
            }
            let index = r.phrases.len();
            match p.toks.first() {
                Some(Tok::Any(alts)) if alts.iter().all(|a| matches!(a, Alt::Word(_))) => {
                    for a in alts {
                        if let Alt::Word(w) = a {
                            let w = w.clone();
                            r.entry(&w).phrases.push(index);
                        }
                    }
                }
                Some(Tok::Any(_)) => r.loose.push(index),
                _ => return Err(DataError::new(line, "a phrase starts with a word")),
            }
            r.phrases.push(p);
        }
        r.keywords.sort_by_key(|k| std::cmp::Reverse(k.toks.len()));
        let class = |name: &str| {
            r.classes
                .iter()
                .position(|c| **c == *name)
                .map(|i| i as u32)
                .ok_or_else(|| DataError::new(0, format!("the engine reads class {name:?}")))
        };
        (r.msg, r.but, r.strong) = (class("msg")?, class("but")?, class("strong")?);
        let prefixes: Vec<&str> = r
            .phrases
            .iter()
            .chain(&r.keywords)
            .chain(&r.vetoes)
            .flat_map(|p| &p.toks)
            .flat_map(|t| match t {
                Tok::Any(alts) => alts.as_slice(),
                _ => &[],
            })
            .filter_map(|a| match a {
                Alt::Prefix(p) => Some(&**p),
                _ => None,
            })
            .collect();
        let mut typos = Typos::new(r.words.keys().map(|k| &**k), &prefixes, real_words);
        let strong = r.strong;
        typos.prefer(
            r.words
                .iter()
                .filter(|(_, i)| i.classes & (1 << strong) != 0)
                .map(|(w, _)| &**w),
        );
        r.typos = typos;
        Ok(r)
    }

    fn entry(&mut self, w: &str) -> &mut WordInfo {
        self.words.entry(w.into()).or_default()
    }

    fn compile(&self, pattern: &str, language: Language) -> Result<Pattern, String> {
        let mut toks = Vec::new();
        let mut at_start = false;
        let parts: Vec<&str> = pattern.split(' ').filter(|w| !w.is_empty()).collect();
        for (i, part) in parts.iter().enumerate() {
            if *part == "^" {
                if i != 0 {
                    return Err("^ must come first".into());
                }
                at_start = true;
            } else if *part == "$" {
                if i != parts.len() - 1 {
                    return Err("$ must come last".into());
                }
                toks.push(Tok::End);
            } else if let Some(c) = part.strip_prefix("!{").and_then(|c| c.strip_suffix('}')) {
                if i != parts.len() - 1 {
                    return Err("a guard !{class} comes last".into());
                }
                let c = self
                    .classes
                    .iter()
                    .position(|x| **x == *c)
                    .ok_or_else(|| format!("unknown class {c:?}"))?;
                toks.push(Tok::Guard(c as u32));
            } else if let Some(n) = part.strip_prefix("...") {
                let n: usize = n.parse().map_err(|_| format!("bad gap {part:?}"))?;
                if !(1..=8).contains(&n) {
                    return Err(format!("gap {part:?}: 1 to 8 words"));
                }
                toks.push(Tok::Gap(n));
            } else {
                let alts = part
                    .split('|')
                    .map(|a| {
                        if let Some(c) = a.strip_prefix('{').and_then(|a| a.strip_suffix('}')) {
                            self.classes
                                .iter()
                                .position(|x| **x == *c)
                                .map(|i| Alt::Class(i as u32))
                                .ok_or_else(|| format!("unknown class {c:?}"))
                        } else if let Some(p) = a.strip_suffix('*') {
                            if p.len() < 3 || !p.bytes().all(|b| b.is_ascii_lowercase()) {
                                return Err(format!("prefix {a:?}: 3 or more lowercase letters"));
                            }
                            Ok(Alt::Prefix(p.into()))
                        } else if !a.is_empty()
                            && a.bytes()
                                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                        {
                            Ok(Alt::Word(a.into()))
                        } else {
                            Err(format!("bad word {a:?}: lowercase ASCII, as normalised"))
                        }
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                toks.push(Tok::Any(alts));
            }
        }
        let last = match toks.last() {
            Some(Tok::Guard(_)) => toks.len().checked_sub(2).map(|i| &toks[i]),
            last => last,
        };
        match (toks.first(), last) {
            (Some(Tok::Any(_)), Some(Tok::Any(_) | Tok::End)) => Ok(Pattern {
                at_start,
                toks,
                language,
            }),
            _ => Err("a pattern starts and ends with a word (or $)".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rules_file_refuses_what_it_cannot_read() {
        let classes = "class:msg\ten\ttexts\tx\nclass:but\ten\tbut\tx\nclass:strong\ten\tstop\tx\n";
        for (bad, why) in [
            ("opt-out\ten\tstop {nothing}\tx\n", "unknown class"),
            ("opt-out\ten\tStop\tx\n", "uppercase"),
            ("opt-out\tde\tstop\tx\n", "language"),
            ("opt-out\ten\tstop\t\n", "source"),
            ("opt-out\ten\tstop ...9 texts\tx\n", "gap"),
            ("opt-out\ten\tstop ^\tx\n", "anchor"),
            (
                "opt-out\ten\tstop !{msg} now\tx\n",
                "a guard before the end",
            ),
            (
                "opt-out\ten\tstop !{nothing}\tx\n",
                "a guard of an unknown class",
            ),
            ("opt-out\ten\t!{msg}\tx\n", "a guard alone"),
            ("opt-out\ten\tstop me|$\tx\n", "$ as an alternative"),
            ("opt-out-word\ten\tstop ...2 now\tx\n", "gap in a keyword"),
            ("opt-in-sometimes\ten\tyes\tx\n", "rule"),
            ("opt-out\ten\tst*\tx\n", "short prefix"),
            ("opt-out\ten\tstop\n", "columns"),
        ] {
            assert!(
                Rules::from_tsv(&format!("{classes}{bad}")).is_err(),
                "{why}: {bad:?}"
            );
        }
        assert!(
            Rules::from_tsv("class:msg\ten\ttexts\tx\nclass:but\ten\tbut\tx\n").is_err(),
            "the classes the engine reads"
        );
        let ok = format!("{classes}opt-out\ten\tstop {{msg}}\tx\n");
        let rules = Rules::from_tsv(&ok).unwrap();
        assert_eq!(rules.classify("stop texts").kind, ReplyKind::OptOut);
        assert_eq!(rules.classify("stop").kind, ReplyKind::Other);
    }

    #[test]
    fn the_real_words_were_listed_for_these_rules() {
        // GIVEN the rules' vocabulary and prefixes, as tools/real_words.py hashes them
        let mut vocabulary: Vec<&str> = RULES.words.keys().map(|k| &**k).collect();
        vocabulary.sort_unstable();
        let mut prefixes = RULES.typos.prefixes();
        prefixes.sort_unstable();
        prefixes.dedup();
        let text = format!("{}\n*\n{}", vocabulary.join("\n"), prefixes.join("\n"));
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in text.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        // THEN data/real-words.txt says it was made from them
        let recorded = REAL_WORDS
            .lines()
            .find_map(|l| l.strip_prefix("# vocabulary-fnv: "))
            .expect("real-words.txt records the vocabulary it was made from");
        assert_eq!(
            recorded,
            format!("{h:016x}"),
            "the rules' words changed: run `make real-words` to list the real words near them again"
        );
    }
}
