//! Classification of inbound SMS replies.
//!
//! # Normalisation
//!
//! The body is reduced to lowercase words: ASCII letters and digits, other
//! letters lowercased with Spanish/French accents folded (`MÁS` -> `mas`,
//! `ARRÊT` -> `arret`), full-width letters mapped to ASCII. Apostrophes join
//! (`don't` -> `dont`, `I'll` -> `ill`); every other character (spaces,
//! punctuation, emoji) separates words, and `.` `!` `?` `;` `¡` `¿` and line
//! breaks also end a sentence. Words are only ever compared whole, so `WEEKEND`
//! is not `END` and `stopped` is not `STOP`.
//!
//! # Rules, in order
//!
//! 1. **Opt-out, by phrase, anywhere.** A clear revocation in plain words wins
//!    over everything else wherever it appears: `unsubscribe`, `opt out`,
//!    `optout`, `stopall`, `revoke`; stop/quit + texting, sending, messaging,
//!    contacting, calling, or + (the/these/all/your) texts/messages; don't / do
//!    not / never + text/message/contact, or + send/want/receive + texts (within
//!    seven words); no more texts; enough with the texts;
//!    remove me, remove my number, take me off (your list), leave me alone,
//!    delete my number, wrong number; Spanish no más mensajes, no me envíen,
//!    dejen de enviar, dar de baja, no quiero mensajes. A phrase never spans two
//!    sentences.
//! 2. **Opt-out, by bare keyword.** The single words STOP, STOPALL, QUIT, END,
//!    REVOKE, OPTOUT, CANCEL, UNSUBSCRIBE, REMOVE, Spanish ALTO, PARA, CANCELAR,
//!    BAJA, BASTA, French ARRÊT, and OPT OUT, NO MÁS, NO MORE, STOP IT count only
//!    when a whole *sentence* is nothing but such keywords plus filler (please,
//!    now, all, thanks, ok, just, hi, por favor...). So `STOP`, `Stop please!`,
//!    `STOP ALL`, `stop stop stop` and `STOP. I sold the car` are opt-outs, while
//!    `I'll stop by`, `cancel my appointment`, `at the end of the month`, `the
//!    end` and `can I quit paying autopay?` are not. The price of the sentence
//!    rule: `Cancel. Can't make it` to an appointment text is an opt-out, as
//!    carriers would treat it; the confirmation text lets the person narrow it.
//! 3. **Whole-message keywords.** Otherwise, with filler words dropped, the whole
//!    message must be only:
//!    * Agree: `agree`/`agreed` with at most yes, I, do, sure, to, the, terms,
//!      receive, texts... (`I agree`, `Yes I agree`, `I agree to the terms`;
//!      `I don't agree` is Other).
//!    * OptIn: START, UNSTOP, YES (`Yes!`, `yes please`).
//!    * Help: HELP, INFO, AYUDA.
//!    * Pay: PAY (`pay now`, `pay it`).
//!    * Confirm: CONFIRM, CONFIRMED (`yes confirm`).
//! 4. Everything else is **Other** and goes to staff, including requests that
//!    merely contain a keyword and need a person: `help me understand my bill`,
//!    `Yes please call me` (a request for a call, not a re-subscription), `I want
//!    to pay`, `not interested` (a brush-off, not a revocation), a lone 🛑.

use serde::Serialize;

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

/// Sentence break marker in the normalised text.
const BREAK: &str = "|";

/// Classifies an inbound reply. Never panics; allocates one small buffer.
pub fn classify(body: &str) -> ReplyKind {
    let mut norm = String::with_capacity(body.len().min(1024) + 8);
    normalize(body, &mut norm);
    if has_revocation_phrase(&norm) || has_bare_opt_out_sentence(&norm) {
        return ReplyKind::OptOut;
    }
    whole_message_kind(&norm)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Sep {
    None,
    Space,
    Break,
}

/// Lowercase words separated by single spaces, sentences separated by ` | `.
fn normalize(body: &str, out: &mut String) {
    let mut sep = Sep::None;
    let word = |out: &mut String, sep: &mut Sep| {
        if !out.is_empty() {
            match *sep {
                Sep::Break => out.push_str(" | "),
                Sep::Space => out.push(' '),
                Sep::None => {}
            }
        }
        *sep = Sep::None;
    };
    for c in body.chars() {
        // Full-width forms (ＳＴＯＰ) to ASCII.
        let c = if ('\u{FF01}'..='\u{FF5E}').contains(&c) {
            char::from_u32(c as u32 - 0xFEE0).unwrap_or(c)
        } else {
            c
        };
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

/// Words that carry no meaning for classification.
fn is_filler(w: &str) -> bool {
    matches!(
        w,
        "please"
            | "pls"
            | "plz"
            | "pleas"
            | "plse"
            | "now"
            | "all"
            | "thanks"
            | "thank"
            | "you"
            | "thx"
            | "ty"
            | "ok"
            | "okay"
            | "just"
            | "asap"
            | "immediately"
            | "hi"
            | "hey"
            | "hello"
            | "por"
            | "favor"
            | "gracias"
    )
}

/// Things one stops or does not want: texts and the like.
fn is_msg_noun(w: &str) -> bool {
    matches!(
        w,
        "text"
            | "texts"
            | "txt"
            | "txts"
            | "texting"
            | "txting"
            | "message"
            | "messages"
            | "msg"
            | "msgs"
            | "messaging"
            | "msging"
            | "sms"
            | "spam"
            | "notifications"
            | "alerts"
            | "reminders"
            | "mensajes"
            | "textos"
            | "msj"
    )
}

/// What follows stop/quit in a revocation: `stop texting`, `stop the texts`.
fn is_stop_object(w: &str) -> bool {
    is_msg_noun(w)
        || matches!(
            w,
            "sending"
                | "contacting"
                | "spamming"
                | "bothering"
                | "harassing"
                | "calling"
                | "calls"
                | "emailing"
        )
}

fn is_determiner(w: &str) -> bool {
    matches!(
        w,
        "the" | "these" | "this" | "those" | "all" | "your" | "ur" | "any" | "my" | "ya"
    )
}

fn is_number_word(w: &str) -> bool {
    matches!(
        w,
        "number" | "phone" | "cell" | "info" | "name" | "contact" | "numero" | "telefono"
    )
}

/// Up to eight words after the current one, within its sentence ("" past the end).
fn ahead<'a>(it: &std::str::Split<'a, char>) -> [&'a str; 8] {
    let mut out = [""; 8];
    for (slot, w) in out.iter_mut().zip(it.clone().take_while(|w| *w != BREAK)) {
        *slot = w;
    }
    out
}

fn has_revocation_phrase(norm: &str) -> bool {
    let mut it = norm.split(' ');
    let mut sentence_start = true;
    while let Some(w) = it.next() {
        if w == BREAK {
            sentence_start = true;
            continue;
        }
        if revocation_at(w, &it, sentence_start) {
            return true;
        }
        if !is_filler(w) {
            sentence_start = false;
        }
    }
    false
}

/// Whether a revocation phrase starts at word `w`, followed by the words in `it`.
fn revocation_at(w: &str, it: &std::str::Split<'_, char>, sentence_start: bool) -> bool {
    match w {
        "unsubscribe" | "unsub" | "optout" | "stopall" | "revoke" => true,
        "stop" | "quit" | "cease" => {
            let [a, b, ..] = ahead(it);
            is_stop_object(a) || (is_determiner(a) && is_msg_noun(b))
        }
        "cancel" => {
            let [a, b, ..] = ahead(it);
            is_msg_noun(a) || (is_determiner(a) && is_msg_noun(b))
        }
        "dont" | "never" => dont_rule(&ahead(it)),
        "do" => {
            let n = ahead(it);
            n[0] == "not" && dont_rule(&n[1..])
        }
        "no" => {
            let [a, b, c, ..] = ahead(it);
            (a == "more" && (is_msg_noun(b) || (matches!(b, "of" | "these" | "your") && is_msg_noun(c))))
                || (sentence_start && matches!(a, "texts" | "texting" | "messages" | "txts" | "msgs"))
                // Spanish: no más mensajes, no me envíen, no quiero mensajes
                || (a == "mas" && is_msg_noun(b))
                || (a == "me"
                    && matches!(
                        b,
                        "envien" | "envies" | "envie" | "manden" | "mandes" | "mande" | "escriban"
                            | "escribas" | "textees" | "contacten" | "molesten"
                    ))
                || (a == "quiero" && (is_msg_noun(b) || is_msg_noun(c)))
        }
        "remove" | "delete" | "lose" => {
            let [a, b, c, d, ..] = ahead(it);
            a == "me"
                || (matches!(a, "my" | "this" | "our") && is_number_word(b))
                || (w == "remove" && a == "from" && [b, c, d].contains(&"list"))
        }
        "take" => {
            let [a, b, c, ..] = ahead(it);
            (matches!(a, "me" | "us") && b == "off")
                || (matches!(a, "my" | "this") && is_number_word(b) && c == "off")
        }
        // enough (with the / of these) texts
        "enough" => ahead(it)[..3].iter().any(|w| is_msg_noun(w)),
        "leave" => {
            let [a, b, ..] = ahead(it);
            a == "me" && b == "alone"
        }
        "wrong" => {
            let [a, b, ..] = ahead(it);
            a == "number" || a == "person" || (a == "phone" && b == "number")
        }
        "opt" => {
            let [a, b, ..] = ahead(it);
            a == "out" || (a == "me" && b == "out")
        }
        // Spanish: dejen de enviar(me), deja de mandar, dejar de escribir
        "dejen" | "deja" | "dejar" | "deje" | "dejes" => {
            let [a, b, ..] = ahead(it);
            a == "de"
                && ["envi", "mand", "escrib", "molest", "contact", "text"]
                    .iter()
                    .any(|p| b.starts_with(p))
        }
        // Spanish: dar de baja, darme de baja, denme de baja
        "de" => ahead(it)[0] == "baja",
        "cancelar" => {
            let a = ahead(it)[0];
            is_msg_noun(a) || a == "suscripcion"
        }
        _ => false,
    }
}

/// After don't / do not / never: `text me`, `contact me`, `send me texts`,
/// `want to receive any more messages`.
fn dont_rule(n: &[&str]) -> bool {
    let Some((first, rest)) = n.split_first() else {
        return false;
    };
    matches!(
        *first,
        "text" | "txt" | "texting" | "message" | "msg" | "messaging" | "contact" | "sms"
    ) || (matches!(*first, "send" | "want" | "need" | "wish" | "receive")
        && rest.iter().any(|w| is_msg_noun(w)))
}

/// Keywords that revoke when a sentence consists of nothing else.
fn bare_keyword_len(words: &[&str]) -> usize {
    match words {
        ["opt", "out", ..]
        | ["no", "mas", ..]
        | ["no", "more", ..]
        | ["stop", "it" | "this" | "that", ..] => 2,
        ["stop" | "stopall" | "quit" | "end" | "revoke" | "optout" | "cancel" | "unsubscribe"
        | "unsub" | "remove" | "alto" | "para" | "cancelar" | "baja" | "basta" | "arret", ..] => 1,
        _ => 0,
    }
}

fn has_bare_opt_out_sentence(norm: &str) -> bool {
    // A sentence of at most this many meaningful words is checked; longer ones
    // cannot be "just keywords" in practice.
    const MAX: usize = 8;
    let mut words = [""; MAX];
    let mut n = 0;
    let mut too_long = false;
    for w in norm.split(' ').chain(std::iter::once(BREAK)) {
        if w == BREAK {
            if n > 0 && !too_long && only_bare_keywords(&words[..n]) {
                return true;
            }
            n = 0;
            too_long = false;
        } else if !is_filler(w) {
            if n < MAX {
                words[n] = w;
                n += 1;
            } else {
                too_long = true;
            }
        }
    }
    false
}

fn only_bare_keywords(mut words: &[&str]) -> bool {
    while !words.is_empty() {
        let len = bare_keyword_len(words);
        if len == 0 {
            return false;
        }
        words = &words[len..];
    }
    true
}

fn whole_message_kind(norm: &str) -> ReplyKind {
    let (mut agree_only, mut optin_only, mut help_only, mut pay_only, mut confirm_only) =
        (true, true, true, true, true);
    let (mut has_agree, mut has_pay, mut has_confirm) = (false, false, false);
    let mut count = 0;
    for w in norm.split(' ') {
        if w == BREAK || is_filler(w) {
            continue;
        }
        count += 1;
        has_agree |= matches!(w, "agree" | "agreed");
        has_pay |= w == "pay";
        has_confirm |= matches!(w, "confirm" | "confirmed");
        agree_only &= matches!(
            w,
            "agree"
                | "agreed"
                | "i"
                | "yes"
                | "yep"
                | "yeah"
                | "do"
                | "sure"
                | "to"
                | "the"
                | "terms"
                | "receive"
                | "texts"
                | "text"
                | "messages"
                | "this"
                | "that"
                | "it"
                | "with"
        );
        optin_only &= matches!(w, "start" | "unstop" | "yes");
        help_only &= matches!(w, "help" | "info" | "ayuda");
        pay_only &= matches!(w, "pay" | "it");
        confirm_only &= matches!(w, "confirm" | "confirmed" | "yes");
    }
    if count == 0 {
        ReplyKind::Other
    } else if agree_only && has_agree {
        ReplyKind::Agree
    } else if optin_only {
        ReplyKind::OptIn
    } else if help_only {
        ReplyKind::Help
    } else if pay_only && has_pay {
        ReplyKind::Pay
    } else if confirm_only && has_confirm {
        ReplyKind::Confirm
    } else {
        ReplyKind::Other
    }
}

/// Labelled, real-world-style replies: the test table, reused by benchmarks.
#[cfg(any(test, feature = "test-util"))]
pub fn labelled_examples() -> &'static [(&'static str, ReplyKind)] {
    use ReplyKind::*;
    &[
        // ---- opt-out: carrier / FCC keywords, bare --------------------------
        ("STOP", OptOut),
        ("stop", OptOut),
        ("Stop.", OptOut),
        ("STOP!!!", OptOut),
        ("  stop  ", OptOut),
        ("Stop please", OptOut),
        ("Please stop", OptOut),
        ("PLEASE STOP!", OptOut),
        ("stop now", OptOut),
        ("Stop 🛑", OptOut),
        ("🛑🛑 STOP 🛑🛑", OptOut),
        ("STOP ALL", OptOut),
        ("Stopall", OptOut),
        ("stop stop stop", OptOut),
        ("Stop it!", OptOut),
        ("ＳＴＯＰ", OptOut),
        ("END", OptOut),
        ("End.", OptOut),
        ("QUIT", OptOut),
        ("quit!", OptOut),
        ("Cancel", OptOut),
        ("CANCEL ALL", OptOut),
        ("Unsubscribe", OptOut),
        ("unsubscribe me please", OptOut),
        ("Revoke", OptOut),
        ("OPT OUT", OptOut),
        ("opt-out", OptOut),
        ("Optout", OptOut),
        ("Remove", OptOut),
        ("STOP. I sold that car last year.", OptOut),
        ("Stop!! Wrong number", OptOut),
        // ---- opt-out: plain-language revocations ------------------------------
        ("Stop texting me", OptOut),
        ("PLEASE STOP TEXTING ME", OptOut),
        ("Can you stop texting me please", OptOut),
        ("stop sending me these messages", OptOut),
        ("Please stop sending me texts.", OptOut),
        ("stop the texts", OptOut),
        ("Stop messaging me, I already bought a car", OptOut),
        ("quit texting me", OptOut),
        ("Don't text me", OptOut),
        ("dont text me again", OptOut),
        ("Please don’t text this number", OptOut),
        ("Do not text me", OptOut),
        ("DO NOT CONTACT ME", OptOut),
        ("I don't want these texts anymore", OptOut),
        ("Never text me again", OptOut),
        ("No more texts please", OptOut),
        ("no more messages", OptOut),
        ("No more!", OptOut),
        ("No texts please", OptOut),
        ("Remove me from your list", OptOut),
        ("remove my number", OptOut),
        ("Take me off your list", OptOut),
        ("take my number off your list please", OptOut),
        ("Leave me alone", OptOut),
        ("How do I unsubscribe?", OptOut),
        ("I want to opt out", OptOut),
        ("Please opt me out", OptOut),
        ("I revoke my consent to receive texts", OptOut),
        ("Wrong number", OptOut),
        ("You have the wrong number", OptOut),
        ("cancel these texts", OptOut),
        ("stop msging me", OptOut),
        ("Quit sending me this crap", OptOut),
        ("Stop contacting me", OptOut),
        (
            "I do not want to receive any more messages from you",
            OptOut,
        ),
        ("Stop sending messages to this number", OptOut),
        ("This is not John, wrong number", OptOut),
        ("Please take this number off your list", OptOut),
        ("Who is this? Stop texting me", OptOut),
        ("Enough with the texts", OptOut),
        ("Ya no me manden mensajes", OptOut),
        ("no quiero recibir mensajes", OptOut),
        ("Cancel please", OptOut),
        // ---- opt-out: Spanish and French ---------------------------------------
        ("Alto", OptOut),
        ("ALTO!", OptOut),
        ("No más", OptOut),
        ("no mas", OptOut),
        ("No más mensajes por favor", OptOut),
        ("Para", OptOut),
        ("para por favor", OptOut),
        ("Cancelar", OptOut),
        ("BAJA", OptOut),
        ("Quiero darme de baja", OptOut),
        ("No me envíen más mensajes", OptOut),
        ("Dejen de enviarme mensajes", OptOut),
        ("Basta", OptOut),
        ("ARRÊT", OptOut),
        // ---- not opt-outs: keywords inside ordinary sentences -------------------
        ("I'll stop by the dealership tomorrow", Other),
        ("Stopped by yesterday but nobody was at the desk", Other),
        ("I can stop in around 3", Other),
        ("The car makes a grinding noise when I stop", Other),
        ("Can you cancel my appointment?", Other),
        ("cancel my appointment for Tuesday", Other),
        ("I need to cancel my oil change", Other),
        ("at the end of the month", Other),
        ("the end", Other),
        ("Will the service end by 5?", Other),
        ("can I quit paying autopay?", Other),
        ("weekend works", Other),
        ("Weekend works for me", Other),
        ("send it", Other),
        ("Sounds good, send it over", Other),
        ("Don't call me, just text", Other),
        ("Don't send it yet, I need to check with my wife", Other),
        ("No message from you guys yet", Other),
        ("Para cuándo está listo mi carro?", Other),
        ("Unstoppable deals?", Other),
        ("I'm not interested", Other),
        ("Who is this?", Other),
        ("Stop by when?", Other),
        ("can I stop autopay?", Other),
        ("I want to cancel my warranty", Other),
        ("When does the promo end?", Other),
        ("Stop sign on the dash is lit", Other),
        ("The brakes squeal when I stop at lights", Other),
        (
            "Please cancel the appointment, I'll call to reschedule",
            Other,
        ),
        ("No thanks", Other),
        ("yes that works", Other),
        // ---- agree --------------------------------------------------------------
        ("Agree", Agree),
        ("AGREE", Agree),
        ("agree.", Agree),
        ("I agree", Agree),
        ("i agree!", Agree),
        ("Agreed", Agree),
        ("Yes I agree", Agree),
        ("yes, I agree to receive texts", Agree),
        ("Agree 👍", Agree),
        ("I don't agree", Other),
        ("What am I agreeing to?", Other),
        // ---- opt-in -------------------------------------------------------------
        ("START", OptIn),
        ("Start", OptIn),
        ("UNSTOP", OptIn),
        ("Yes", OptIn),
        ("YES!", OptIn),
        ("yes please", OptIn),
        ("Yes please call me", Other),
        ("Yes, what time?", Other),
        // ---- help ---------------------------------------------------------------
        ("HELP", Help),
        ("help", Help),
        ("Help!", Help),
        ("INFO", Help),
        ("info please", Help),
        ("Ayuda", Help),
        ("help me understand my bill", Other),
        ("I need help with my payment", Other),
        // ---- pay and confirm --------------------------------------------------
        ("PAY", Pay),
        ("pay", Pay),
        ("Pay now", Pay),
        ("PAY.", Pay),
        ("pay it", Pay),
        ("I'll pay tomorrow", Other),
        ("Can I pay with a card?", Other),
        ("CONFIRM", Confirm),
        ("confirm", Confirm),
        ("Confirmed", Confirm),
        ("yes confirm", Confirm),
        ("Confirm my appointment time?", Other),
        // ---- other --------------------------------------------------------------
        ("", Other),
        ("   ", Other),
        ("👍", Other),
        ("🛑", Other),
        ("Thanks!", Other),
        ("ok", Other),
        ("What time do you close today?", Other),
        ("I already paid this", Other),
        ("Is my car ready?", Other),
        ("Gracias", Other),
        ("Sí, a las 3", Other),
        ("CALL ME ASAP", Other),
    ]
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
        assert_eq!(out, "hi you");
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
