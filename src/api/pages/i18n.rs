//! The citizen's pages in Kazakh (the default), Russian and English: the three flat
//! `{"key": "text"}` tables under `assets/i18n/`, embedded in the binary and read once.
//!
//! Owns: looking a text up by key ([`text`]) and the human message of a problem code
//! ([`error_message`]: `error.<code>` for the server's codes, `agent_error.<code>` for the local
//! agent's), for the pages the server renders itself (the refusal page of
//! the hand-over, the Digital ID stand-in). The browser reads the same tables through
//! `/enroll/assets/i18n/<lang>.json`. Keys of the refusal page: `error_page.title`,
//! `error_page.back`. Must never: panic on a bad table (a key without its text reads as the
//! key itself; the unit tests fail on any such gap), or hold text anywhere but in the tables.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::vocab::Language;

/// The two codes the page gives itself besides the agent's own
/// (`crate::enroll::agent::AgentCode::ALL`): `agent_unreachable` (no answer at all) and
/// `password_mismatch` (the password and its repetition differ). Each agent code has an
/// `agent_error.<code>` text in every language.
#[cfg(test)]
const PAGE_AGENT_CODES: &[&str] = &["agent_unreachable", "password_mismatch"];

/// The text shown for a code no table knows (and the last resort when even that key is
/// missing from a table).
const GENERIC_KEY: &str = "error.generic";
const GENERIC_FALLBACK: &str = "Something went wrong. Try again later.";

const KK: &str = include_str!("assets/i18n/kk.json");
const RU: &str = include_str!("assets/i18n/ru.json");
const EN: &str = include_str!("assets/i18n/en.json");

type Table = HashMap<String, String>;

struct Tables {
    kk: Table,
    ru: Table,
    en: Table,
}

/// A table that does not parse reads as empty: every key then falls back to itself.
fn parse(json: &str) -> Table {
    serde_json::from_str(json).unwrap_or_default()
}

fn table(lang: Language) -> &'static Table {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    let tables = TABLES.get_or_init(|| Tables {
        kk: parse(KK),
        ru: parse(RU),
        en: parse(EN),
    });
    match lang {
        Language::Kk => &tables.kk,
        Language::Ru => &tables.ru,
        Language::En => &tables.en,
    }
}

fn lookup(lang: Language, key: &str) -> Option<&'static str> {
    table(lang).get(key).map(String::as_str)
}

/// The text of `key` in `lang`; a key the table lacks reads as the key itself (so the answer
/// lives as long as `key`: `'static` for a literal key).
pub fn text(lang: Language, key: &str) -> &str {
    lookup(lang, key).unwrap_or(key)
}

/// The human message of a problem code in `lang`: `error.<code>` (the server's codes, see
/// `ErrorCode`), else `agent_error.<code>` (the agent's), else a generic text.
pub fn error_message(lang: Language, code: &str) -> &'static str {
    lookup(lang, &format!("error.{code}"))
        .or_else(|| lookup(lang, &format!("agent_error.{code}")))
        .or_else(|| lookup(lang, GENERIC_KEY))
        .unwrap_or(GENERIC_FALLBACK)
}

#[cfg(test)]
mod tests;
