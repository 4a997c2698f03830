//! SMS character encoding and segment counting.
//!
//! A text goes out as GSM-7 when every character is in the GSM 03.38 basic table
//! or its extension table, else as UCS-2 (UTF-16). One segment holds 160 septets
//! (GSM-7) or 70 UTF-16 units (UCS-2); a longer text is split into concatenated
//! segments of 153 septets or 67 units, the rest of each being the concatenation
//! header.
//!
//! Segments are counted the way they are actually packed: an extension character
//! (escape + character, 2 septets) is never split across two segments, and neither
//! is a UTF-16 surrogate pair (an emoji). So a long text whose 153rd septet would be
//! the first half of `€` needs one more segment than `ceil(septets / 153)`; for every
//! other text the two agree.

use serde::Serialize;

/// How a text is encoded on the air.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Encoding {
    /// GSM 03.38 7-bit default alphabet (with its extension table).
    Gsm7,
    /// UCS-2 / UTF-16: anything outside the GSM alphabet, such as emoji or curly quotes.
    Ucs2,
}

/// Septets in one single-segment GSM-7 text.
const GSM_SINGLE: u32 = 160;
/// Septets per segment of a concatenated GSM-7 text.
const GSM_MULTI: u32 = 153;
/// UTF-16 units in one single-segment UCS-2 text.
const UCS2_SINGLE: u32 = 70;
/// UTF-16 units per segment of a concatenated UCS-2 text.
const UCS2_MULTI: u32 = 67;

/// The non-ASCII characters of the GSM 03.38 basic table.
const GSM_BASIC_NON_ASCII: &str = "£¥èéùìòÇØøÅåΔΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà";

/// Septets a character takes in GSM-7: 1 (basic table), 2 (extension table,
/// sent as escape + character), or `None` when GSM-7 cannot carry it.
fn gsm_septets(c: char) -> Option<u32> {
    match c {
        // Extension table: form feed ^ { } \ [ ~ ] | €
        '\u{0C}' | '^' | '{' | '}' | '\\' | '[' | '~' | ']' | '|' | '€' => Some(2),
        // ASCII characters of the basic table: LF, CR and printable ASCII except
        // the ones GSM lacks (` and the extension characters handled above).
        '\n' | '\r' => Some(1),
        ' '..='~' if c != '`' => Some(1),
        _ if GSM_BASIC_NON_ASCII.contains(c) => Some(1),
        _ => None,
    }
}

/// The encoding a text needs: GSM-7 when every character is in the GSM 03.38
/// basic or extension table, else UCS-2.
pub fn encoding(text: &str) -> Encoding {
    measure(text).0
}

/// How many SMS segments the text takes. Empty text is one segment.
pub fn segments(text: &str) -> u32 {
    measure(text).1
}

/// Segments are filled with indivisible units (an escaped GSM character or a
/// surrogate pair is never split across two segments).
#[derive(Clone, Copy)]
struct Packer {
    total: u32,
    count: u32,
    used: u32,
    multi: u32,
}

impl Packer {
    fn new(multi: u32) -> Self {
        Self {
            total: 0,
            count: 1,
            used: 0,
            multi,
        }
    }

    fn add(&mut self, size: u32) {
        self.total = self.total.saturating_add(size);
        if self.used + size > self.multi {
            self.count = self.count.saturating_add(1);
            self.used = 0;
        }
        self.used += size;
    }

    fn segments(&self, single: u32) -> u32 {
        if self.total <= single {
            1
        } else {
            self.count
        }
    }
}

/// Septets of each ASCII byte in GSM-7 (0 = not in GSM-7), built from `gsm_septets`.
const ASCII_SEPTETS: [u8; 128] = {
    let mut table = [0u8; 128];
    let mut b = 0;
    while b < 128 {
        table[b] = match b as u8 {
            0x0C | b'^' | b'{' | b'}' | b'\\' | b'[' | b'~' | b']' | b'|' => 2,
            b'\n' | b'\r' => 1,
            b'`' => 0,
            b' '..=b'~' => 1,
            _ => 0,
        };
        b += 1;
    }
    table
};

/// Encoding and segment count in one pass over the text (both packings are kept
/// until a character rules GSM-7 out). Plain ASCII, the common case, takes a byte
/// table instead of decoding characters.
pub fn measure(text: &str) -> (Encoding, u32) {
    if text.is_ascii() {
        let mut gsm = Packer::new(GSM_MULTI);
        let all_gsm = text.bytes().all(|b| {
            let n = ASCII_SEPTETS[usize::from(b)];
            gsm.add(u32::from(n));
            n != 0
        });
        if all_gsm {
            return (Encoding::Gsm7, gsm.segments(GSM_SINGLE));
        }
    }
    let mut gsm = Some(Packer::new(GSM_MULTI));
    let mut ucs2 = Packer::new(UCS2_MULTI);
    for c in text.chars() {
        if let Some(p) = gsm.as_mut() {
            match gsm_septets(c) {
                Some(n) => p.add(n),
                None => gsm = None,
            }
        }
        ucs2.add(c.len_utf16() as u32);
    }
    match gsm {
        Some(p) => (Encoding::Gsm7, p.segments(GSM_SINGLE)),
        None => (Encoding::Ucs2, ucs2.segments(UCS2_SINGLE)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_ascii_table_agrees_with_the_character_rules() {
        for b in 0u8..128 {
            let expected = gsm_septets(char::from(b)).unwrap_or(0);
            assert_eq!(
                u32::from(ASCII_SEPTETS[usize::from(b)]),
                expected,
                "byte {b:#x}"
            );
        }
    }

    #[test]
    fn plain_ascii_is_gsm7() {
        // GIVEN an ordinary English text  WHEN encoded  THEN GSM-7 in one segment
        let text = "Sunrise Motors: your car is ready. Reply STOP to opt out.";
        assert_eq!(encoding(text), Encoding::Gsm7);
        assert_eq!(segments(text), 1);
    }

    #[test]
    fn empty_text_is_one_gsm7_segment() {
        assert_eq!(encoding(""), Encoding::Gsm7);
        assert_eq!(segments(""), 1);
    }

    #[test]
    fn gsm7_boundary_is_160_then_153_per_segment() {
        // GIVEN 160 GSM characters THEN one segment; 161 THEN two
        assert_eq!(segments(&"a".repeat(160)), 1);
        assert_eq!(segments(&"a".repeat(161)), 2);
        // 306 = 2 x 153 fits two; 307 needs three
        assert_eq!(segments(&"a".repeat(306)), 2);
        assert_eq!(segments(&"a".repeat(307)), 3);
    }

    #[test]
    fn ucs2_boundary_is_70_then_67_per_segment() {
        // GIVEN a non-GSM character forcing UCS-2
        let seventy = format!("{}{}", "ア", "a".repeat(69));
        assert_eq!(encoding(&seventy), Encoding::Ucs2);
        assert_eq!(segments(&seventy), 1);
        let seventy_one = format!("{seventy}a");
        assert_eq!(segments(&seventy_one), 2);
        assert_eq!(segments(&format!("ア{}", "a".repeat(133))), 2);
        assert_eq!(segments(&format!("ア{}", "a".repeat(134))), 3);
    }

    #[test]
    fn emoji_is_two_utf16_units() {
        // GIVEN 68 ASCII characters and one emoji (2 units) = 70 units THEN one segment
        let text = format!("{}😀", "a".repeat(68));
        assert_eq!(encoding(&text), Encoding::Ucs2);
        assert_eq!(segments(&text), 1);
        // WHEN one more character is added THEN 71 units, two segments
        assert_eq!(segments(&format!("a{text}")), 2);
    }

    #[test]
    fn emoji_is_never_split_across_segments() {
        // GIVEN 66 units then an emoji straddling the 67-unit boundary, 72 units in all
        let text = format!("{}😀{}", "a".repeat(66), "a".repeat(4));
        // THEN ceil(72/67) would say 2, and packing also gives 2 (66 | 2+4)
        assert_eq!(segments(&text), 2);
        // GIVEN 66 + emoji + 66 = 134 units: ceil(134/67) = 2
        let text = format!("{}😀{}", "a".repeat(66), "a".repeat(66));
        // THEN the emoji moves whole to segment two (66 | 2+65 | 1): 3 segments
        assert_eq!(segments(&text), 3);
    }

    #[test]
    fn euro_and_other_extension_characters_count_two_septets() {
        // GIVEN 159 septets of which one is € (2 septets) = 160 THEN one segment
        let text = format!("{}€", "a".repeat(158));
        assert_eq!(encoding(&text), Encoding::Gsm7);
        assert_eq!(segments(&text), 1);
        // 159 + 2 = 161 septets THEN two segments
        assert_eq!(segments(&format!("{}€", "a".repeat(159))), 2);
        for c in ['^', '{', '}', '\\', '[', '~', ']', '|', '€'] {
            assert_eq!(
                segments(&format!("{}{c}", "a".repeat(159))),
                2,
                "{c} counts 2"
            );
        }
    }

    #[test]
    fn extension_character_is_never_split_across_segments() {
        // GIVEN 152 septets then € at the 153-septet boundary, 164 septets in all
        let text = format!("{}€{}", "a".repeat(152), "a".repeat(10));
        // THEN the escape pair moves to segment two: 152 | 2+10
        assert_eq!(segments(&text), 2);
        // GIVEN 152 + € + 152: ceil(306/153) = 2 but packing needs 3
        let text = format!("{}€{}", "a".repeat(152), "a".repeat(152));
        assert_eq!(segments(&text), 3);
    }

    #[test]
    fn curly_quotes_and_backtick_force_ucs2() {
        for text in ["It’s ready", "“Hello”", "use `code`", "tab\there"] {
            assert_eq!(encoding(text), Encoding::Ucs2, "{text}");
        }
    }

    #[test]
    fn gsm_specials_stay_gsm7() {
        for text in [
            "Café déjà? ¿Qué? £5, ¥5, §1, Ñu, Øre Ü ß",
            "@_!\"#%&'()*+,-./:;<=>?\r\n",
        ] {
            assert_eq!(encoding(text), Encoding::Gsm7, "{text}");
        }
        // GIVEN accented letters that GSM lacks THEN UCS-2
        assert_eq!(encoding("á"), Encoding::Ucs2);
        assert_eq!(encoding("ç"), Encoding::Ucs2);
    }

    #[test]
    fn encoding_serializes_kebab_case() {
        assert_eq!(serde_json::json!(Encoding::Gsm7), serde_json::json!("gsm7"));
        assert_eq!(serde_json::json!(Encoding::Ucs2), serde_json::json!("ucs2"));
    }

    proptest! {
        #[test]
        fn segments_never_panic_and_grow_with_length(s in "\\PC{0,400}") {
            let n = segments(&s);
            prop_assert!(n >= 1);
            let units: usize = match encoding(&s) {
                Encoding::Gsm7 => s.chars().map(|c| gsm_septets(c).unwrap_or(1) as usize).sum(),
                Encoding::Ucs2 => s.encode_utf16().count(),
            };
            // Packing never needs fewer segments than the plain division.
            let (single, multi) = match encoding(&s) {
                Encoding::Gsm7 => (160, 153),
                Encoding::Ucs2 => (70, 67),
            };
            if units <= single {
                prop_assert_eq!(n, 1);
            } else {
                // Packing never needs fewer segments than the plain division, and
                // wastes at most one unit per segment.
                prop_assert!(n as usize >= units.div_ceil(multi));
                prop_assert!(n as usize <= units.div_ceil(multi - 1));
            }
        }
    }
}

/// The most segments a text may take (a 918-character GSM-7 text is 6; one emoji turns
/// it into UCS-2 and 14).
pub const MAX_SEGMENTS: u32 = 10;

/// Unicode format characters (general category Cf, Unicode 15.1): bidirectional
/// overrides and isolates, zero-width spaces and joiners, the soft hyphen, tags. On a
/// phone they are invisible and can reorder what is shown (a payment link read
/// backwards), so texts refuse them.
pub fn is_format(c: char) -> bool {
    matches!(c as u32,
        0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x890..=0x891 | 0x8E2 | 0x180E
        | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x2064 | 0x2066..=0x206F | 0xFEFF
        | 0xFFF9..=0xFFFB | 0x110BD | 0x110CD | 0x13430..=0x1343F | 0x1BCA0..=0x1BCA3
        | 0x1D173..=0x1D17A | 0xE0001 | 0xE0020..=0xE007F)
}

#[cfg(test)]
mod format_tests {
    use super::*;

    #[test]
    fn format_characters_are_the_invisible_ones() {
        for c in [
            '\u{202E}',
            '\u{200B}',
            '\u{200D}',
            '\u{2066}',
            '\u{FEFF}',
            '\u{AD}',
            '\u{E0041}',
        ] {
            assert!(is_format(c), "{:04X}", c as u32);
        }
        for c in ['a', ' ', '€', 'ñ', '😀', '\u{FE0F}', '\n'] {
            assert!(!is_format(c), "{:04X}", c as u32);
        }
    }
}
