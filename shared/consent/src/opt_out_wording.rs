//! The opt-out wording a marketing text must carry: an instruction, as a phrase, in
//! English, Spanish or French ("Reply STOP to opt out", "To unsubscribe, text STOP",
//! "Responde ALTO para cancelar", "Pour vous désabonner, répondez STOP"), not the
//! letters STOP anywhere ("NONSTOP deals", "stop by our showroom").
//!
//! Words are compared whole, normalised as the reply classifier reads replies
//! (lowercased, accents folded, `.` `!` `?` `;` and line breaks ending a sentence). An instruction is a verb (reply, text, ...) and a keyword
//! (STOP, ALTO, ARRET, ...), followed by its purpose ("to opt out", "para cancelar")
//! or by the end of its sentence, or preceded by the purpose ("To opt out, reply STOP").

/// The wording added to staff's own marketing words that lack one.
pub const OPT_OUT_WORDING: &str = "Reply STOP to opt out.";

struct Language {
    verbs: &'static [&'static str],
    keywords: &'static [&'static str],
    connectors: &'static [&'static str],
    purposes: &'static [&'static [&'static str]],
}

const LANGUAGES: [Language; 3] = [
    Language {
        verbs: &["reply", "text", "txt", "send", "respond", "msg"],
        keywords: &[
            "stop",
            "end",
            "quit",
            "cancel",
            "unsubscribe",
            "stopall",
            "optout",
        ],
        connectors: &["to", "for"],
        purposes: &[
            &["opt", "out"],
            &["optout"],
            &["unsubscribe"],
            &["cancel"],
            &["end"],
            &["stop"],
            &["quit"],
            &["stop", "receiving"],
            &["stop", "texts"],
            &["stop", "messages"],
        ],
    },
    Language {
        verbs: &[
            "responde",
            "responda",
            "responder",
            "envia",
            "envie",
            "enviar",
            "escribe",
            "escriba",
            "contesta",
            "conteste",
            "textea",
        ],
        keywords: &["stop", "alto", "baja", "parar", "cancelar"],
        connectors: &["para"],
        purposes: &[
            &["cancelar"],
            &["darte", "de", "baja"],
            &["darse", "de", "baja"],
            &["darme", "de", "baja"],
            &["dejar", "de", "recibir"],
            &["no", "recibir"],
            &["salir"],
            &["desuscribirte"],
            &["desuscribirse"],
            &["anular"],
        ],
    },
    Language {
        verbs: &[
            "repondez", "repondre", "reponds", "envoyez", "envoyer", "textez",
        ],
        keywords: &["stop", "arret", "arreter"],
        connectors: &["pour"],
        purposes: &[
            &["vous", "desabonner"],
            &["se", "desabonner"],
            &["desabonner"],
            &["annuler"],
            &["ne", "plus", "recevoir"],
        ],
    },
];

/// A sentence break in the word list ([`crate::reply`]'s normalisation).
const BREAK: &str = "|";

fn starts_with(words: &[String], phrase: &[&str]) -> bool {
    words.len() >= phrase.len() && words.iter().zip(phrase).all(|(w, p)| w == p)
}

fn is_in(word: Option<&String>, set: &[&str]) -> bool {
    word.is_some_and(|w| set.contains(&w.as_str()))
}

/// true if `text` tells how to opt out, as a phrase in English, Spanish or French.
pub fn carries_opt_out_wording(text: &str) -> bool {
    let w = crate::reply::normalized_words(text);
    LANGUAGES.iter().any(|l| {
        let purpose_at = |i: usize| {
            l.purposes
                .iter()
                .find(|p| starts_with(&w[i.min(w.len())..], p))
                .map(|p| p.len())
        };
        (0..w.len()).any(|i| {
            // verb keyword (connector purpose | end of sentence)
            let instruction = is_in(w.get(i), l.verbs) && is_in(w.get(i + 1), l.keywords);
            let forward = instruction
                && match w.get(i + 2) {
                    None => true,
                    Some(b) if b == BREAK => true,
                    Some(c) if l.connectors.contains(&c.as_str()) => purpose_at(i + 3).is_some(),
                    _ => false,
                };
            // connector purpose verb keyword
            let backward = is_in(w.get(i), l.connectors)
                && purpose_at(i + 1).is_some_and(|n| {
                    is_in(w.get(i + 1 + n), l.verbs) && is_in(w.get(i + 2 + n), l.keywords)
                });
            forward || backward
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instructions_in_each_language_count() {
        for ok in [
            "Reply STOP to opt out.",
            "Great offers this week. Reply STOP to opt out",
            "Msg&data rates may apply. Text STOP to unsubscribe.",
            "To opt out, reply STOP.",
            "Reply STOP to opt-out",
            "Sale ends Friday! Reply STOP",
            "Responde STOP para cancelar.",
            "Para darte de baja, responde ALTO",
            "Envía BAJA para dejar de recibir mensajes",
            "Répondez STOP pour vous désabonner.",
            "Pour vous désabonner, répondez ARRÊT",
        ] {
            assert!(carries_opt_out_wording(ok), "{ok:?}");
        }
    }

    #[test]
    fn the_letters_stop_anywhere_do_not() {
        for bad in [
            "NONSTOP deals all weekend!",
            "Stop by our showroom for 0% APR",
            "Don't stop now: offers end Friday",
            "STOP",
            "Reply YES for more deals. Stop by anytime",
            "Reply STOP by Friday for a coupon",
            "Responde pronto, las ofertas paran el viernes",
            "STOPPING by? Reply to book",
        ] {
            assert!(!carries_opt_out_wording(bad), "{bad:?}");
        }
    }
}
