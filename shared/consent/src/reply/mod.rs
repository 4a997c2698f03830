//! Classification of inbound SMS replies, in English, Spanish and French.
//!
//! The rules are data: `data/reply-rules.tsv` (word classes, filler words, revocation
//! phrases, revocation keywords and the whole-message keywords of each kind, each row
//! with its language and source), parsed once. This module is the engine that reads
//! them; the labelled replies (`data/reply-examples.tsv`) are the tests that hold both
//! together.
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
//!
//! One file per idea: `types.rs` holds what a reply is read as, `rules.rs` compiles
//! `data/reply-rules.tsv` into the rules, `normalize.rs` reduces a body to the words
//! they read, `typos.rs` repairs what people type on phones, and `matching.rs` applies
//! the rules in the order above; `labelled.rs` reads the labelled replies. This file is
//! the entry point.

#[cfg(any(test, feature = "test-util"))]
mod labelled;
mod matching;
mod normalize;
mod rules;
mod types;
mod typos;

#[cfg(any(test, feature = "test-util"))]
pub use labelled::{labelled_es_fr, labelled_examples};
pub(crate) use normalize::normalized_words;
use rules::RULES;
pub use types::{AgreeScope, Classified, Language, ReplyKind};

/// What a reply read as Agree names (rules `agree-for:CATEGORY` and `agree-for:all`).
pub fn agree_scope(body: &str) -> AgreeScope {
    RULES.agree_scope(body)
}

/// Classifies an inbound reply. Never panics.
pub fn classify(body: &str) -> ReplyKind {
    classify_reply(body).kind
}

/// Classifies an inbound reply and tells the language to answer in.
pub fn classify_reply(body: &str) -> Classified {
    RULES.classify(body)
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
