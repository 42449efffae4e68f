//! The pages' texts in kk, ru and en, read from `assets/i18n/*.json`.
//! (A placeholder until the pages' own translations land.)

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::vocab::Language;

fn table(lang: Language) -> &'static HashMap<String, String> {
    static KK: OnceLock<HashMap<String, String>> = OnceLock::new();
    static RU: OnceLock<HashMap<String, String>> = OnceLock::new();
    static EN: OnceLock<HashMap<String, String>> = OnceLock::new();
    let (cell, text) = match lang {
        Language::Kk => (&KK, include_str!("assets/i18n/kk.json")),
        Language::Ru => (&RU, include_str!("assets/i18n/ru.json")),
        Language::En => (&EN, include_str!("assets/i18n/en.json")),
    };
    cell.get_or_init(|| serde_json::from_str(text).unwrap_or_default())
}

/// The text of `key` in `lang`; the key itself when it has none.
pub fn text(lang: Language, key: &str) -> &'static str {
    match table(lang).get(key) {
        Some(t) => t.as_str(),
        None => Box::leak(key.to_owned().into_boxed_str()),
    }
}

/// The human message for an error or agent `code` in `lang`.
pub fn error_message(lang: Language, code: &str) -> &'static str {
    let t = table(lang);
    t.get(&format!("error.{code}"))
        .or_else(|| t.get(&format!("agent_error.{code}")))
        .map(String::as_str)
        .unwrap_or(match lang {
            Language::Kk => "Қате орын алды.",
            Language::Ru => "Произошла ошибка.",
            Language::En => "Something went wrong.",
        })
}
