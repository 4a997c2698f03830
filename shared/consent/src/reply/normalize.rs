//! Normalisation: a reply's body reduced to lowercase words and sentence and clause
//! breaks, as the rules read it (see the module doc of `reply`).

use super::types::COMMA;

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
pub(super) fn normalize(body: &str, out: &mut String) {
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
}
