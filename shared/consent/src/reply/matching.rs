//! The rules applied to a reply, in the order of the module doc: opt-out phrases, then
//! bare opt-out keywords, then whole-message keywords, else Other.

use super::normalize::normalize;
use super::rules::{AgreeFor, Pattern, Rules, Tok, GUARD_WINDOW, W, WHOLE_KINDS};
use super::types::{AgreeScope, Classified, Language, ReplyKind};
use super::types::{BREAK, COMMA};

impl Rules {
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

    pub(super) fn agree_scope(&self, body: &str) -> AgreeScope {
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

    pub(super) fn classify(&self, body: &str) -> Classified {
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
