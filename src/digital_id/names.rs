//! The characters a name from the state register may carry into a certificate.
//!
//! Owns: the refusal of characters that are never part of a legitimate name and can make a
//! certificate's subject display as something it is not — control characters (Cc), format
//! characters (Cf: bidirectional controls, zero-width characters, the soft hyphen, the byte
//! order mark, tag characters…), line and paragraph separators (Zl, Zp), private-use characters
//! (Co), noncharacters (U+FDD0–U+FDEF and the last two code points of every plane) and the
//! planes that have no characters at all (4–13, and plane 14 outside its tags and variation
//! selectors); and the detection of words that mix scripts (a Latin "O" inside a Cyrillic
//! surname), which are not refused but sent to an operator, since such a name comes from the
//! register and refusing it would leave the citizen with no way to get a certificate.
//!
//! The tables are written out here (Unicode 16's Cf, Zl, Zp and Co) instead of taken from a
//! crate; unassigned code points inside the planes that have characters are not detected
//! (that needs the full character database). Must never: change a name (a certificate
//! carries the register's name or none), or refuse a name for its script alone.

use std::fmt::Write as _;

/// Why a character may not be in a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusedKind {
    /// C0 and C1 controls, DEL.
    Control,
    /// Invisible format characters (general category Cf).
    Format,
    /// U+2028 and U+2029.
    Separator,
    /// Private-use characters (Co).
    PrivateUse,
    /// Noncharacters (U+FDD0–U+FDEF, U+xFFFE, U+xFFFF).
    Noncharacter,
    /// A code point in a plane or range with no characters.
    Unassigned,
}

impl RefusedKind {
    /// How the refusal message names it.
    pub fn describe(self) -> &'static str {
        match self {
            RefusedKind::Control => "a control character",
            RefusedKind::Format => {
                "an invisible format character (bidirectional control, zero-width character, soft hyphen, byte order mark)"
            }
            RefusedKind::Separator => "a line or paragraph separator",
            RefusedKind::PrivateUse => "a private-use character",
            RefusedKind::Noncharacter => "a noncharacter",
            RefusedKind::Unassigned => "an unassigned code point",
        }
    }
}

/// General category Cf, Unicode 16.0 (U+2065, unassigned, is in the U+2060–U+206F run).
const FORMAT: &[(u32, u32)] = &[
    (0x00AD, 0x00AD),
    (0x0600, 0x0605),
    (0x061C, 0x061C),
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0x180E, 0x180E),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x206F),
    (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x1343F),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
];

/// General category Co.
const PRIVATE_USE: &[(u32, u32)] = &[(0xE000, 0xF8FF), (0xF0000, 0xFFFFD), (0x100000, 0x10FFFD)];

fn within(ranges: &[(u32, u32)], cp: u32) -> bool {
    ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&cp))
}

/// Why `c` may not be in a name, or `None` if it may.
pub fn refused(c: char) -> Option<RefusedKind> {
    let cp = u32::from(c);
    if c.is_control() {
        Some(RefusedKind::Control)
    } else if cp == 0x2028 || cp == 0x2029 {
        Some(RefusedKind::Separator)
    } else if within(FORMAT, cp) {
        Some(RefusedKind::Format)
    } else if (0xFDD0..=0xFDEF).contains(&cp) || cp & 0xFFFE == 0xFFFE {
        Some(RefusedKind::Noncharacter)
    } else if within(PRIVATE_USE, cp) {
        Some(RefusedKind::PrivateUse)
    } else if (0x40000..=0xDFFFF).contains(&cp)
        || ((0xE0000..=0xEFFFF).contains(&cp) && !(0xE0100..=0xE01EF).contains(&cp))
    {
        Some(RefusedKind::Unassigned)
    } else {
        None
    }
}

/// The first refused character of `value`, with its kind.
pub fn first_refused(value: &str) -> Option<(char, RefusedKind)> {
    value.chars().find_map(|c| refused(c).map(|k| (c, k)))
}

/// The scripts whose look-alike letters are mixed in names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Script {
    Latin,
    Cyrillic,
    Greek,
}

impl Script {
    fn of(c: char) -> Option<Script> {
        let cp = u32::from(c);
        let latin = c.is_ascii_alphabetic()
            || ((0x00C0..=0x024F).contains(&cp) && cp != 0x00D7 && cp != 0x00F7)
            || (0x1E00..=0x1EFF).contains(&cp)
            || (0x2C60..=0x2C7F).contains(&cp)
            || (0xA720..=0xA7FF).contains(&cp)
            || (0xAB30..=0xAB6F).contains(&cp)
            || (0xFF21..=0xFF3A).contains(&cp)
            || (0xFF41..=0xFF5A).contains(&cp);
        let cyrillic = (0x0400..=0x052F).contains(&cp)
            || (0x1C80..=0x1C8F).contains(&cp)
            || (0x2DE0..=0x2DFF).contains(&cp)
            || (0xA640..=0xA69F).contains(&cp);
        let greek = (0x0370..=0x03FF).contains(&cp) || (0x1F00..=0x1FFF).contains(&cp);
        if latin {
            Some(Script::Latin)
        } else if cyrillic {
            Some(Script::Cyrillic)
        } else if greek {
            Some(Script::Greek)
        } else {
            None
        }
    }

    fn name(self) -> &'static str {
        match self {
            Script::Latin => "Latin",
            Script::Cyrillic => "Cyrillic",
            Script::Greek => "Greek",
        }
    }
}

/// For each word of `value` (split at spaces and hyphens) whose letters come from more than
/// one of the Latin, Cyrillic and Greek scripts, a sentence for the operator naming the
/// claim, the word and the letters outside the word's main script.
pub fn mixed_script_words(claim: &str, value: &str) -> Vec<String> {
    let mut reasons = Vec::new();
    for word in value.split(|c: char| c.is_whitespace() || c == '-') {
        let mut counts: [(Script, usize); 3] = [
            (Script::Latin, 0),
            (Script::Cyrillic, 0),
            (Script::Greek, 0),
        ];
        for script in word.chars().filter_map(Script::of) {
            for entry in counts.iter_mut().filter(|(s, _)| *s == script) {
                entry.1 += 1;
            }
        }
        if counts.iter().filter(|(_, n)| *n > 0).count() < 2 {
            continue;
        }
        // The main script has the most letters (the first in Latin, Cyrillic, Greek order on
        // a tie); the others are listed by code point.
        let main = counts
            .iter()
            .fold(
                (Script::Latin, 0),
                |best, &(s, n)| if n > best.1 { (s, n) } else { best },
            )
            .0;
        let mut others = String::new();
        for c in word
            .chars()
            .filter(|&c| Script::of(c).is_some_and(|s| s != main))
            .take(8)
        {
            let script = Script::of(c).map(Script::name).unwrap_or_default();
            if !others.is_empty() {
                others.push_str(", ");
            }
            let _ = write!(others, "{script} {c} U+{:04X}", u32::from(c));
        }
        reasons.push(format!(
            "identity.{claim}: the word {word:?} mixes scripts: {others} in a {} word",
            main.name()
        ));
    }
    reasons
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_hostile_code_point_is_refused_with_its_kind() {
        let cases = [
            ('\u{202E}', RefusedKind::Format),
            ('\u{200B}', RefusedKind::Format),
            ('\u{2028}', RefusedKind::Separator),
            ('\u{2029}', RefusedKind::Separator),
            ('\u{FEFF}', RefusedKind::Format),
            ('\u{200F}', RefusedKind::Format),
            ('\u{2066}', RefusedKind::Format),
            ('\u{00AD}', RefusedKind::Format),
            ('\u{061C}', RefusedKind::Format),
            ('\u{E0041}', RefusedKind::Format),
            ('\u{FFFE}', RefusedKind::Noncharacter),
            ('\u{FFFF}', RefusedKind::Noncharacter),
            ('\u{FDD0}', RefusedKind::Noncharacter),
            ('\u{1FFFE}', RefusedKind::Noncharacter),
            ('\u{10FFFF}', RefusedKind::Noncharacter),
            ('\u{E000}', RefusedKind::PrivateUse),
            ('\u{F8FF}', RefusedKind::PrivateUse),
            ('\u{F0000}', RefusedKind::PrivateUse),
            ('\u{10FFFD}', RefusedKind::PrivateUse),
            ('\u{50000}', RefusedKind::Unassigned),
            ('\u{0000}', RefusedKind::Control),
            ('\u{0085}', RefusedKind::Control),
            ('\u{007F}', RefusedKind::Control),
        ];
        for (c, kind) in cases {
            assert_eq!(refused(c), Some(kind), "U+{:04X}", u32::from(c));
            let name = format!("ИВА{c}НОВ");
            assert_eq!(
                first_refused(&name),
                Some((c, kind)),
                "U+{:04X}",
                u32::from(c)
            );
        }
    }

    #[test]
    fn letters_of_the_register_are_allowed() {
        for name in [
            "ӘБІЛҚАЙЫР",
            "ҰЛЫҚБЕК-ҒАЛЫМҰЛЫ",
            "ЖҮСІПБЕКОВА",
            "Өмірзақ",
            "O'NEIL",
            "MÜLLER",
            "Đorđe",
            "ПАК ЕН СУ",
            "金",
            // Variation selectors are marks, not format characters.
            "A\u{FE0F}",
        ] {
            assert_eq!(first_refused(name), None, "{name}");
            assert!(mixed_script_words("surname", name).is_empty(), "{name}");
        }
    }

    #[test]
    fn a_word_mixing_scripts_is_named_with_the_odd_letters() {
        // "ИВAНОВ" with a Latin A (U+0041).
        let reasons = mixed_script_words("surname", "ИВAНОВ");
        assert_eq!(
            reasons,
            vec![
                "identity.surname: the word \"ИВAНОВ\" mixes scripts: Latin A U+0041 in a Cyrillic word"
                    .to_owned()
            ]
        );
        // A Cyrillic О (U+041E) in a Latin word; two words, one mixed.
        let reasons = mixed_script_words("name", "JOHN R\u{041E}BERT");
        assert_eq!(reasons.len(), 1);
        assert!(
            reasons.iter().all(|r| r.contains("U+041E in a Latin word")),
            "{reasons:?}"
        );
        // Scripts mixed only across words or across a hyphen are not.
        assert!(mixed_script_words("surname", "ИВАНОВА-SMITH").is_empty());
        // Greek omicron among Cyrillic.
        assert_eq!(mixed_script_words("surname", "ИВАН\u{03BF}В").len(), 1);
    }
}
