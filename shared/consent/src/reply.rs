//! Classification of inbound SMS replies, in English, Spanish and French.
//!
//! The rules are data: `data/reply-rules.tsv` (word classes, filler words, revocation
//! phrases, revocation keywords and the whole-message keywords of each kind, each row
//! with its language and source), parsed once. This module is the engine that reads
//! them; the labelled replies at the end are the tests that hold both together.
//!
//! # Normalisation
//!
//! The body is reduced to lowercase words: ASCII letters and digits, other
//! letters lowercased with Spanish/French accents folded (`MÁS` -> `mas`,
//! `ARRÊT` -> `arret`), full-width letters mapped to ASCII. Apostrophes join
//! (`don't` -> `dont`, `m'envoyer` -> `menvoyer`, `d'accord` -> `daccord`); every
//! other character (spaces, hyphens, punctuation, emoji) separates words, and `.`
//! `!` `?` `;` `¡` `¿` and line breaks also end a sentence. Words are only ever
//! compared whole (or by a prefix the rule spells out, `envi*`), so `WEEKEND` is
//! not `END`, `stopped` is not `STOP` and `Para mañana` is not `PARA`.
//!
//! # Rules, in order
//!
//! 1. **Opt-out, by phrase, anywhere.** A revocation phrase (`stop texting`, `no me
//!    manden`, `arrêtez de m'envoyer`, ...) inside any one sentence wins over
//!    everything else. A phrase never spans two sentences; `^` and `$` anchor it
//!    to the start or end of its sentence (filler aside).
//! 2. **Opt-out, by bare keyword.** A sentence of at most eight meaningful words
//!    consisting only of revocation keywords (STOP, ALTO, ARRÊT, NO MÁS, ...) and
//!    filler revokes: `STOP`, `Stop please!`, `STOP. I sold the car`, `Alto por
//!    favor`, while `I'll stop by`, `Para mañana está bien` and `Baja el precio`
//!    do not. The price of the sentence rule: `Cancel. Can't make it` to an
//!    appointment text is an opt-out, as carriers would treat it.
//! 3. **Whole-message keywords.** Otherwise, with filler dropped, the whole message
//!    must consist of one kind's key and "also" words with at least one key word:
//!    Agree (`I agree`, `Acepto`, `D'accord`), OptIn (`START`, `Sí, quiero recibir
//!    mensajes`, `Oui`), Help (`HELP`, `AYUDA`, `AIDE`), Pay, Confirm.
//! 4. Everything else is **Other** and goes to staff, including requests that
//!    merely contain a keyword: `help me understand my bill`, `Necesito ayuda con
//!    mi pago`, `Quiero cancelar mi cita`, `not interested`, a lone 🛑.
//!
//! The language of the rule that decided a reply is the language its answer is
//! written in (the opt-out confirmation, HELP, the Agree confirmation).

use std::collections::HashMap;
use std::sync::LazyLock;

use serde::Serialize;

use crate::category::Category;
use crate::data::{rows, DataError};

#[cfg(any(test, feature = "test-util"))]
mod labelled;
mod typos;

#[cfg(any(test, feature = "test-util"))]
pub use labelled::{labelled_es_fr, labelled_examples};
use typos::{Typos, COMMA};

/// What an inbound reply asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ReplyKind {
    /// Confirms a pending authorization.
    Agree,
    /// Revokes consent.
    OptOut,
    /// Restores what an opt-out removed.
    OptIn,
    /// Asks for the help text.
    Help,
    /// Asks to pay the amount of a Text to Pay reminder.
    Pay,
    /// Confirms a payment.
    Confirm,
    /// Anything else: goes to staff.
    Other,
}

/// The language of a reply, as far as the rule that classified it tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    #[default]
    En,
    Es,
    Fr,
}

impl Language {
    fn parse(s: &str) -> Option<Language> {
        match s {
            "en" => Some(Language::En),
            "es" => Some(Language::Es),
            "fr" => Some(Language::Fr),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::Es => "es",
            Language::Fr => "fr",
        }
    }
}

/// A classified reply: what it asks for, and the language to answer in (English
/// when no rule decided, i.e. for `Other`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Classified {
    pub kind: ReplyKind,
    pub language: Language,
}

/// What an Agree names: nothing (it answers the one live request), some categories
/// (`Agree service`, `Acepto servicio y ofertas`) or all of them (`Agree all`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AgreeScope {
    #[default]
    Unnamed,
    Named(Vec<Category>),
    All,
}

/// What a reply read as Agree names (rules `agree-for:CATEGORY` and `agree-for:all`).
pub fn agree_scope(body: &str) -> AgreeScope {
    RULES.agree_scope(body)
}

static RULES_TSV: &str = include_str!("../data/reply-rules.tsv");

static REAL_WORDS: &str = include_str!("../data/real-words.txt");

static RULES: LazyLock<Rules> = LazyLock::new(|| {
    Rules::with_real_words(RULES_TSV, REAL_WORDS)
        .unwrap_or_else(|e| panic!("embedded reply-rules.tsv is invalid (a build bug): {e}"))
});

/// Sentence break marker in the normalised text.
const BREAK: &str = "|";

/// Classifies an inbound reply. Never panics.
pub fn classify(body: &str) -> ReplyKind {
    classify_reply(body).kind
}

/// Classifies an inbound reply and tells the language to answer in.
pub fn classify_reply(body: &str) -> Classified {
    RULES.classify(body)
}

/// The kinds decided by whole-message keywords, in the order they are tried.
const WHOLE_KINDS: [(&str, ReplyKind); 5] = [
    ("agree", ReplyKind::Agree),
    ("opt-in", ReplyKind::OptIn),
    ("help", ReplyKind::Help),
    ("pay", ReplyKind::Pay),
    ("confirm", ReplyKind::Confirm),
];

/// One alternative of a pattern token.
#[derive(Debug, Clone)]
enum Alt {
    Word(Box<str>),
    Prefix(Box<str>),
    Class(u32),
}

#[derive(Debug, Clone)]
enum Tok {
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
const GUARD_WINDOW: usize = 10;

#[derive(Debug, Clone)]
struct Pattern {
    /// Only filler before it in its sentence.
    at_start: bool,
    toks: Vec<Tok>,
    language: Language,
}

/// What the rules say about one word.
#[derive(Debug, Clone, Default)]
struct WordInfo {
    /// Bit i: the word is in class i.
    classes: u32,
    filler: bool,
    /// Revocation phrases whose first token names this word.
    phrases: Vec<usize>,
    /// Per whole-message kind: (key word in this language, also word).
    whole: [(Option<Language>, bool); WHOLE_KINDS.len()],
    /// What the word names in an Agree.
    agree_for: Option<AgreeFor>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AgreeFor {
    Category(Category),
    All,
}

/// FNV-1a: the word table's keys are short lowercase words chosen by the rules file, so
/// a fast non-cryptographic hash is enough (nothing a sender writes becomes a key).
#[derive(Default)]
struct Fnv(u64);

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

type WordMap = HashMap<Box<str>, WordInfo, std::hash::BuildHasherDefault<Fnv>>;

/// The parsed rules.
#[derive(Default)]
struct Rules {
    words: WordMap,
    classes: Vec<Box<str>>,
    phrases: Vec<Pattern>,
    /// Phrases whose first token is a prefix or a class: tried at every word.
    loose: Vec<usize>,
    /// Revocation keywords, longest first.
    keywords: Vec<Pattern>,
    /// Phrases that, anywhere in a message, mean it revokes nothing (`dont stop`).
    vetoes: Vec<Pattern>,
    /// The classes the engine itself reads: `msg`, `but` and `strong`.
    msg: u32,
    but: u32,
    strong: u32,
    typos: Typos,
}

#[derive(Clone, Copy)]
struct W<'a> {
    text: &'a str,
    info: Option<&'a WordInfo>,
}

impl W<'_> {
    /// Filler, or a comma (which carries no meaning of its own).
    fn filler(&self) -> bool {
        self.text == COMMA || self.info.is_some_and(|i| i.filler)
    }

    fn in_class(&self, class: u32) -> bool {
        self.info.is_some_and(|i| i.classes & (1 << class) != 0)
    }
}

impl Alt {
    fn matches(&self, w: &W<'_>) -> bool {
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

    /// The body's words as the rules read them (normalised, typos repaired).
    fn read<'a>(&'a self, norm: &'a str) -> Vec<W<'a>> {
        let canonical = |w: &str| self.words.get_key_value(w).map(|(k, _)| &**k);
        let tokens = norm.split(' ').filter(|w| !w.is_empty()).collect();
        self.typos
            .repair(tokens, &canonical)
            .into_iter()
            .map(|text| W {
                text,
                info: self.words.get(text),
            })
            .collect()
    }

    fn agree_scope(&self, body: &str) -> AgreeScope {
        let mut norm = String::new();
        normalize(body, &mut norm);
        let mut named = Vec::new();
        for w in self.read(&norm) {
            match w.info.and_then(|i| i.agree_for) {
                Some(AgreeFor::All) => return AgreeScope::All,
                Some(AgreeFor::Category(c)) if !named.contains(&c) => named.push(c),
                _ => {}
            }
        }
        if named.is_empty() {
            AgreeScope::Unnamed
        } else {
            named.sort_unstable();
            AgreeScope::Named(named)
        }
    }

    fn classify(&self, body: &str) -> Classified {
        let mut norm = String::with_capacity(body.len().min(1024) + 8);
        normalize(body, &mut norm);
        let words = self.read(&norm);
        let sentences = || words.split(|w| w.text == BREAK);
        if sentences().any(|s| self.vetoed(s)) {
            return self.whole_message(&words);
        }
        let opt_out = |language| Classified {
            kind: ReplyKind::OptOut,
            language,
        };
        for sentence in sentences() {
            if let Some(language) = self.phrase_in(sentence) {
                return opt_out(language);
            }
        }
        for sentence in sentences() {
            if let Some(language) = self.only_keywords(sentence) {
                return opt_out(language);
            }
            // `Stop, I sold the car`: a clause of strong keywords alone.
            if sentence.iter().any(|w| w.text == COMMA) {
                for clause in sentence.split(|w| w.text == COMMA) {
                    let strong = clause
                        .iter()
                        .filter(|w| !w.filler())
                        .all(|w| w.in_class(self.strong));
                    if let (true, Some(language)) = (strong, self.only_keywords(clause)) {
                        return opt_out(language);
                    }
                }
            }
        }
        self.whole_message(&words)
    }

    /// Does `toks` match the words `sentence[j..]`?
    fn match_here(&self, toks: &[Tok], sentence: &[W<'_>], j: usize) -> bool {
        match toks.split_first() {
            None => true,
            // The end of the clause: only filler until a comma or the sentence's end.
            Some((Tok::End, _)) => sentence[j..]
                .iter()
                .take_while(|w| w.text != COMMA)
                .all(W::filler),
            Some((Tok::Guard(thing), _)) => {
                let window = sentence[j..]
                    .iter()
                    .take(GUARD_WINDOW)
                    .take_while(|w| w.text != COMMA && !w.in_class(self.but));
                let (mut things, mut msgs) = (false, false);
                for w in window {
                    things |= w.in_class(*thing);
                    msgs |= w.in_class(self.msg);
                }
                !things || msgs
            }
            // A gap skips words, never a comma: phrases stay inside one clause.
            Some((Tok::Gap(n), rest)) => (0..=*n)
                .take_while(|k| {
                    j + k <= sentence.len() && (*k == 0 || sentence[j + k - 1].text != COMMA)
                })
                .any(|k| self.match_here(rest, sentence, j + k)),
            Some((Tok::Any(alts), rest)) => {
                j < sentence.len()
                    && alts.iter().any(|a| a.matches(&sentence[j]))
                    && self.match_here(rest, sentence, j + 1)
            }
        }
    }

    /// Does a pattern match anywhere in the sentence (`^` honoured)?
    fn matches_in(&self, pattern: &Pattern, sentence: &[W<'_>], j: usize, at_start: bool) -> bool {
        (!pattern.at_start || at_start) && self.match_here(&pattern.toks, sentence, j)
    }

    /// A message that says it revokes nothing (`don't stop the reminders`, `text me
    /// instead`, `what happens if I unsubscribe?`) is read for no revocation at all: it
    /// goes to staff.
    fn vetoed(&self, sentence: &[W<'_>]) -> bool {
        let mut only_filler_before = true;
        for (j, w) in sentence.iter().enumerate() {
            if self
                .vetoes
                .iter()
                .any(|v| self.matches_in(v, sentence, j, only_filler_before))
            {
                return true;
            }
            // `^` is the start of a clause: a comma starts another.
            only_filler_before = w.text == COMMA || (only_filler_before && w.filler());
        }
        false
    }

    /// The language of the first revocation phrase in the sentence.
    fn phrase_in(&self, sentence: &[W<'_>]) -> Option<Language> {
        let mut only_filler_before = true;
        for (j, w) in sentence.iter().enumerate() {
            let listed = w.info.map(|i| i.phrases.as_slice()).unwrap_or_default();
            for &p in listed.iter().chain(&self.loose) {
                let pattern = &self.phrases[p];
                if self.matches_in(pattern, sentence, j, only_filler_before) {
                    return Some(pattern.language);
                }
            }
            // `^` is the start of a clause: a comma starts another.
            only_filler_before = w.text == COMMA || (only_filler_before && w.filler());
        }
        None
    }

    /// The language of the first keyword when the sentence is nothing but revocation
    /// keywords and filler (and at most eight meaningful words).
    fn only_keywords(&self, sentence: &[W<'_>]) -> Option<Language> {
        const MAX: usize = 8;
        let mut meaningful = [W {
            text: "",
            info: None,
        }; MAX];
        let mut n = 0;
        for w in sentence.iter().filter(|w| !w.filler()) {
            if n == MAX {
                return None;
            }
            meaningful[n] = *w;
            n += 1;
        }
        let mut rest = &meaningful[..n];
        let mut first = None;
        while !rest.is_empty() {
            let k = self.keywords.iter().find(|k| {
                k.toks.len() <= rest.len() && self.match_here(&k.toks, &rest[..k.toks.len()], 0)
            })?;
            first.get_or_insert(k.language);
            rest = &rest[k.toks.len()..];
        }
        first
    }

    fn whole_message(&self, words: &[W<'_>]) -> Classified {
        let meaningful = || words.iter().filter(|w| w.text != BREAK && !w.filler());
        if meaningful().next().is_none() {
            return Classified {
                kind: ReplyKind::Other,
                language: Language::En,
            };
        }
        for (i, (_, kind)) in WHOLE_KINDS.iter().enumerate() {
            let mut language = None;
            let all = meaningful().all(|w| match w.info.map(|info| info.whole[i]) {
                Some((Some(l), _)) => {
                    language.get_or_insert(l);
                    true
                }
                Some((None, also)) => also,
                None => false,
            });
            if let (true, Some(language)) = (all, language) {
                return Classified {
                    kind: *kind,
                    language,
                };
            }
        }
        Classified {
            kind: ReplyKind::Other,
            language: Language::En,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Sep {
    None,
    Space,
    Comma,
    Break,
}

/// 🛑, ⭕, ✋ and ⛔: the emoji people write for STOP, or for the O of it.
const STOP_SIGNS: [char; 4] = ['\u{1F6D1}', '\u{2B55}', '\u{270B}', '\u{26D4}'];

/// 😂 and 🤣: a reply that laughs is no revocation (the `not-opt-out` row of `laughing`).
const LAUGHS: [char; 2] = ['\u{1F602}', '\u{1F923}'];

/// The word a stop sign emoji becomes.
const STOP_SIGN: &str = "stopsign";

/// Lowercase words separated by single spaces, sentences separated by ` | `.
fn normalize(body: &str, out: &mut String) {
    let mut sep = Sep::None;
    let word = |out: &mut String, sep: &mut Sep| {
        if !out.is_empty() {
            match *sep {
                Sep::Break => out.push_str(" | "),
                Sep::Comma => out.push_str(" , "),
                Sep::Space => out.push(' '),
                Sep::None => {}
            }
        }
        *sep = Sep::None;
    };
    let mut chars = body.chars().peekable();
    let mut prev = ' ';
    while let Some(c) = chars.next() {
        // Full-width forms (ＳＴＯＰ) to ASCII.
        let c = if ('\u{FF01}'..='\u{FF5E}').contains(&c) {
            char::from_u32(c as u32 - 0xFEE0).unwrap_or(c)
        } else {
            c
        };
        // Skin tones and the emoji presentation selector belong to the emoji before them.
        if ('\u{1F3FB}'..='\u{1F3FF}').contains(&c) || c == '\u{FE0F}' {
            continue;
        }
        let before = std::mem::replace(&mut prev, c);
        if LAUGHS.contains(&c) {
            // 😂 and 🤣 read as the word people type for them.
            word(out, &mut sep);
            out.push_str("laughing");
            sep = Sep::Space;
            continue;
        }
        if STOP_SIGNS.contains(&c) {
            // A stop sign for the O inside a word (`ST🛑P`); elsewhere the word `stopsign`,
            // which phrases read as STOP (`🛑 texting me`) and keywords as filler.
            let next = chars
                .clone()
                .find(|n| !(('\u{1F3FB}'..='\u{1F3FF}').contains(n) || *n == '\u{FE0F}'));
            if before.is_ascii_alphabetic() && next.is_some_and(|n| n.is_ascii_alphabetic()) {
                out.push('o');
            } else {
                word(out, &mut sep);
                out.push_str(STOP_SIGN);
                sep = Sep::Space;
            }
            continue;
        }
        if c == '+' && before.is_whitespace() && chars.peek().is_some_and(|n| n.is_whitespace()) {
            // `no + msjs`: a plus standing alone is "más".
            word(out, &mut sep);
            out.push_str("mas");
            sep = Sep::Space;
            continue;
        }
        if c.is_ascii_alphanumeric() {
            word(out, &mut sep);
            out.push(c.to_ascii_lowercase());
            continue;
        }
        match c {
            // Apostrophes and combining accents join.
            '\'' | '`' | '\u{2018}' | '\u{2019}' | '\u{02BC}' | '\u{00B4}' => {}
            '\u{0300}'..='\u{036F}' => {}
            '.' | '!' | '?' | ';' | '\n' | '\r' | '¡' | '¿' | '…' | '\u{2028}' | '\u{2029}' => {
                sep = Sep::Break
            }
            ',' | '\u{060C}' | '\u{3001}' => {
                if sep != Sep::Break {
                    sep = Sep::Comma;
                }
            }
            _ if c.is_alphanumeric() => {
                word(out, &mut sep);
                match fold(c) {
                    Some(ascii) => out.push(ascii),
                    None => out.extend(c.to_lowercase()),
                }
            }
            _ => {
                if sep == Sep::None {
                    sep = Sep::Space;
                }
            }
        }
    }
}

/// The body as the classifier reads it, a word a token and `|` between sentences: what
/// other rules on the words of a text (the opt-out wording of a marketing text) read too.
pub(crate) fn normalized_words(body: &str) -> Vec<String> {
    let mut out = String::new();
    normalize(body, &mut out);
    out.split(' ')
        .filter(|w| *w != COMMA)
        .map(str::to_owned)
        .collect()
}

/// Accented Latin letters used in Spanish and French replies, folded to ASCII.
fn fold(c: char) -> Option<char> {
    Some(match c {
        'á' | 'à' | 'â' | 'ä' | 'ã' | 'Á' | 'À' | 'Â' | 'Ä' | 'Ã' => 'a',
        'é' | 'è' | 'ê' | 'ë' | 'É' | 'È' | 'Ê' | 'Ë' => 'e',
        'í' | 'ì' | 'î' | 'ï' | 'Í' | 'Ì' | 'Î' | 'Ï' => 'i',
        'ó' | 'ò' | 'ô' | 'ö' | 'õ' | 'Ó' | 'Ò' | 'Ô' | 'Ö' | 'Õ' => 'o',
        'ú' | 'ù' | 'û' | 'ü' | 'Ú' | 'Ù' | 'Û' | 'Ü' => 'u',
        'ñ' | 'Ñ' => 'n',
        'ç' | 'Ç' => 'c',
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn labelled_examples_score() {
        // GIVEN the labelled table WHEN every example is classified
        let examples = labelled_examples();
        assert!(examples.len() >= 80);
        let (mut tp, mut fp, mut fn_, mut correct) = (0u32, 0u32, 0u32, 0u32);
        let mut wrong = Vec::new();
        for (body, expected) in examples {
            let got = classify(body);
            if got == *expected {
                correct += 1;
            } else {
                wrong.push(format!("{body:?}: expected {expected:?}, got {got:?}"));
            }
            match (got == ReplyKind::OptOut, *expected == ReplyKind::OptOut) {
                (true, true) => tp += 1,
                (true, false) => fp += 1,
                (false, true) => fn_ += 1,
                (false, false) => {}
            }
        }
        let precision = f64::from(tp) / f64::from((tp + fp).max(1));
        let recall = f64::from(tp) / f64::from((tp + fn_).max(1));
        let accuracy = f64::from(correct) / examples.len() as f64;
        println!(
            "reply classification on {} labelled examples: opt-out precision {precision:.3} \
             ({tp} true / {fp} false positives), opt-out recall {recall:.3} ({fn_} missed), \
             overall accuracy {accuracy:.3}",
            examples.len()
        );
        for w in &wrong {
            println!("  misclassified {w}");
        }
        // THEN no opt-out is missed and almost nothing else is taken for one
        assert_eq!(recall, 1.0, "{wrong:#?}");
        assert!(precision >= 0.98, "{wrong:#?}");
        assert!(accuracy >= 0.95, "{wrong:#?}");
    }

    /// Opt-out precision and recall of one language's labelled replies, and the misses.
    fn score(examples: &[(&str, ReplyKind, Language)]) -> (f64, f64, Vec<String>) {
        let (mut tp, mut fp, mut fn_) = (0u32, 0u32, 0u32);
        let mut wrong = Vec::new();
        for (body, expected, language) in examples {
            let got = classify_reply(body);
            if got.kind != *expected {
                wrong.push(format!(
                    "{body:?}: expected {expected:?}, got {:?}",
                    got.kind
                ));
            } else if got.kind != ReplyKind::Other && got.language != *language {
                wrong.push(format!(
                    "{body:?}: answered in {:?}, not {language:?}",
                    got.language
                ));
            }
            match (
                got.kind == ReplyKind::OptOut,
                *expected == ReplyKind::OptOut,
            ) {
                (true, true) => tp += 1,
                (true, false) => fp += 1,
                (false, true) => fn_ += 1,
                (false, false) => {}
            }
        }
        let precision = f64::from(tp) / f64::from((tp + fp).max(1));
        let recall = f64::from(tp) / f64::from((tp + fn_).max(1));
        (precision, recall, wrong)
    }

    #[test]
    fn spanish_and_french_score_as_english_does() {
        // GIVEN the labelled Spanish and French replies (with the English table for
        // comparison) WHEN classified THEN per language: no revocation missed or
        // invented, every kind right, and every answer in the person's language
        let english: Vec<(&str, ReplyKind, Language)> = labelled_examples()
            .iter()
            .map(|(b, k)| (*b, *k, Language::En))
            .collect();
        let mut all_wrong = Vec::new();
        for language in [Language::En, Language::Es, Language::Fr] {
            let examples: Vec<_> = english
                .iter()
                .chain(labelled_es_fr())
                .filter(|(_, _, l)| *l == language)
                .copied()
                .collect();
            let (precision, recall, wrong) = score(&examples);
            let revocations = examples.iter().filter(|e| e.1 == ReplyKind::OptOut).count();
            println!(
                "reply classification, {}: {} labelled replies ({revocations} revocations): \
                 opt-out precision {precision:.3}, recall {recall:.3}, {} other mistakes",
                language.as_str(),
                examples.len(),
                wrong.len()
            );
            assert_eq!(precision, 1.0, "{} {wrong:#?}", language.as_str());
            assert!(recall >= 0.98, "{} {wrong:#?}", language.as_str());
            all_wrong.extend(wrong);
        }
        assert!(labelled_es_fr().len() >= 80);
        assert!(all_wrong.is_empty(), "{all_wrong:#?}");
    }

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

    #[test]
    fn whole_words_only() {
        // GIVEN words that contain a keyword THEN they are not the keyword
        for body in [
            "WEEKEND",
            "stopped",
            "Ending",
            "cancellation",
            "quitting",
            "payment",
            "helpful",
            "starter",
            "agreement",
        ] {
            assert_eq!(classify(body), ReplyKind::Other, "{body}");
        }
    }

    #[test]
    fn normalisation_joins_apostrophes_and_folds_accents() {
        let mut out = String::new();
        normalize("Don’t TEXT me!! Más… ¿Qué? e\u{301}", &mut out);
        assert_eq!(out, "dont text me | mas | que | e");
        out.clear();
        normalize("  ...hi,, 😀 you ", &mut out);
        assert_eq!(out, "hi , you");
        out.clear();
        normalize(",stop, now!, ok", &mut out);
        assert_eq!(out, "stop , now | ok");
    }

    #[test]
    fn opt_out_wins_over_other_keywords() {
        // GIVEN a message with both an opt-in keyword and a revocation THEN opt-out
        assert_eq!(classify("Yes stop texting me"), ReplyKind::OptOut);
        assert_eq!(classify("HELP. Stop."), ReplyKind::OptOut);
        assert_eq!(
            classify("I agree, but remove me from your list"),
            ReplyKind::OptOut
        );
    }

    #[test]
    fn phrases_do_not_span_sentences() {
        // "stop" ends one sentence, "texting" starts the next: not a phrase, and
        // the first sentence is not a bare keyword either.
        assert_eq!(classify("I'll stop. Texting you later"), ReplyKind::Other);
    }

    #[test]
    fn serializes_by_variant_name() {
        assert_eq!(
            serde_json::json!(ReplyKind::OptOut),
            serde_json::json!("OptOut")
        );
    }

    const PUNCT: &str = "[ \\t\\n.,!?;:'\"()\\-]{0,5}";

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_unicode(s in "\\PC{0,200}") {
            let _ = classify(&s);
        }

        #[test]
        fn never_panics_on_arbitrary_chars(s in any::<String>()) {
            let _ = classify(&s);
        }

        #[test]
        fn case_does_not_matter_for_ascii(s in "[a-zA-Z .,!?']{0,40}") {
            prop_assert_eq!(classify(&s), classify(&s.to_uppercase()));
            prop_assert_eq!(classify(&s), classify(&s.to_lowercase()));
        }

        #[test]
        fn labelled_examples_ignore_case(i in 0..labelled_examples().len()) {
            let (body, _) = labelled_examples()[i];
            prop_assert_eq!(classify(body), classify(&body.to_uppercase()));
        }

        #[test]
        fn surrounding_punctuation_does_not_matter(
            i in 0..labelled_examples().len(),
            before in PUNCT,
            after in PUNCT,
        ) {
            let (body, _) = labelled_examples()[i];
            prop_assert_eq!(classify(body), classify(&format!("{before}{body}{after}")));
        }

        #[test]
        fn surrounding_punctuation_does_not_matter_for_any_text(
            body in "[a-zA-Z' ]{0,30}",
            before in PUNCT,
            after in PUNCT,
        ) {
            prop_assert_eq!(classify(&body), classify(&format!("{before}{body}{after}")));
        }
    }
}
