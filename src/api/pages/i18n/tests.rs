#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::{BTreeMap, BTreeSet};

use super::{error_message, text, EN, KK, PAGE_AGENT_CODES, RU};
use crate::error_code::ErrorCode;
use crate::vocab::{ApplicationStatus, Language};

const LANGS: [(Language, &str, &str); 3] = [
    (Language::Kk, "kk", KK),
    (Language::Ru, "ru", RU),
    (Language::En, "en", EN),
];

/// Every HTML file under `assets/`, with its name.
const HTML: [(&str, &str); 4] = [
    ("enroll.html", include_str!("../assets/enroll.html")),
    ("error.html", include_str!("../assets/error.html")),
    ("digital-id.html", include_str!("../assets/digital-id.html")),
    ("handover.html", include_str!("../assets/handover.html")),
];

const ENROLL_JS: &str = include_str!("../assets/enroll.js");

const AGREEMENT_2026_1: [(&str, &str); 3] = [
    ("kk", include_str!("../assets/agreement/2026-1/kk.txt")),
    ("ru", include_str!("../assets/agreement/2026-1/ru.txt")),
    ("en", include_str!("../assets/agreement/2026-1/en.txt")),
];

/// A language's table read strictly: a flat JSON object whose every value is a string.
fn strict_table(name: &str, json: &str) -> BTreeMap<String, String> {
    let value: serde_json::Value =
        serde_json::from_str(json).unwrap_or_else(|e| panic!("i18n/{name}.json: {e}"));
    let object = value
        .as_object()
        .unwrap_or_else(|| panic!("i18n/{name}.json is not one JSON object"));
    object
        .iter()
        .map(|(k, v)| {
            let text = v
                .as_str()
                .unwrap_or_else(|| panic!("i18n/{name}.json: {k} is not a string"));
            (k.clone(), text.to_owned())
        })
        .collect()
}

fn tables() -> Vec<(Language, &'static str, BTreeMap<String, String>)> {
    LANGS
        .iter()
        .map(|(lang, name, json)| (*lang, *name, strict_table(name, json)))
        .collect()
}

/// Every key must be in every language: missing ones are listed per language.
fn assert_everywhere(keys: &BTreeSet<String>, what: &str) {
    assert!(
        !keys.is_empty(),
        "no {what} found: the scan itself is broken"
    );
    let mut missing = Vec::new();
    for (_, name, table) in tables() {
        for key in keys {
            if !table.contains_key(key) {
                missing.push(format!("{name}: {key}"));
            }
        }
    }
    assert!(missing.is_empty(), "{what} without a text: {missing:#?}");
}

/// The values of every `data-i18n…="key"` attribute (`data-i18n`, `data-i18n-label`, …).
fn data_i18n_keys(html: &str) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    let mut rest = html;
    while let Some(at) = rest.find("data-i18n") {
        rest = &rest[at + "data-i18n".len()..];
        let name_end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .unwrap_or(rest.len());
        let after = &rest[name_end..];
        if let Some(value) = after.strip_prefix("=\"") {
            if let Some(end) = value.find('"') {
                keys.insert(value[..end].to_owned());
            }
        }
    }
    keys
}

/// The literal argument of every `name('literal')` call in a script; a call whose argument
/// is not one literal (`t('status.' + word)`) is dynamic and checked by the tests of its
/// family (statuses, codes).
fn literal_calls(script: &str, name: &str) -> BTreeSet<String> {
    let opening = format!("{name}('");
    let mut found = BTreeSet::new();
    let mut from = 0;
    while let Some(at) = script[from..].find(&opening) {
        let start = from + at;
        from = start + opening.len();
        let before = script[..start].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$' || c == '.') {
            continue;
        }
        let literal = &script[from..];
        let Some(end) = literal.find('\'') else {
            continue;
        };
        if literal[end + 1..].starts_with(')') {
            found.insert(literal[..end].to_owned());
        }
    }
    found
}

/// Each tag (`<…>`) of an HTML file, comments left out.
fn tags(html: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        rest = &rest[open..];
        if rest.starts_with("<!--") {
            match rest.find("-->") {
                Some(end) => rest = &rest[end + 3..],
                None => break,
            }
            continue;
        }
        match rest.find('>') {
            Some(end) => {
                out.push(&rest[..=end]);
                rest = &rest[end + 1..];
            }
            None => break,
        }
    }
    out
}

#[test]
fn every_table_is_a_flat_object_of_strings_and_the_module_reads_it() {
    for (lang, name, table) in tables() {
        assert!(table.len() > 50, "i18n/{name}.json is nearly empty");
        // What the module loaded is what the file holds (a table that did not parse would
        // read every key as itself).
        for (key, value) in &table {
            assert_eq!(text(lang, key), value, "{name}: {key}");
        }
    }
}

#[test]
fn every_key_is_in_every_language() {
    let all = tables();
    let union: BTreeSet<String> = all.iter().flat_map(|(_, _, t)| t.keys().cloned()).collect();
    let mut missing = Vec::new();
    for (_, name, table) in &all {
        for key in &union {
            if !table.contains_key(key) {
                missing.push(format!("{name}: {key}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "keys missing from a language: {missing:#?}"
    );
}

#[test]
fn no_text_is_empty() {
    let mut empty = Vec::new();
    for (_, name, table) in tables() {
        for (key, value) in table {
            if value.trim().is_empty() {
                empty.push(format!("{name}: {key}"));
            }
        }
    }
    assert!(empty.is_empty(), "empty texts: {empty:#?}");
}

#[test]
fn kazakh_and_russian_are_written_in_cyrillic() {
    // A table copied from English would pass every other test.
    for (_, name, table) in tables() {
        if name == "en" {
            continue;
        }
        let cyrillic = table
            .values()
            .filter(|v| v.chars().any(|c| ('\u{0400}'..='\u{04FF}').contains(&c)))
            .count();
        assert!(
            cyrillic * 10 >= table.len() * 8,
            "{name}: only {cyrillic} of {} texts are in Cyrillic",
            table.len()
        );
    }
    // Letters only Kazakh has: the default language is Kazakh, not Russian.
    let kk = strict_table("kk", KK);
    let kazakh = kk
        .values()
        .filter(|v| v.chars().any(|c| "әғқңөұүһіӘҒҚҢӨҰҮҺІ".contains(c)))
        .count();
    assert!(
        kazakh * 2 >= kk.len(),
        "kk: only {kazakh} texts use Kazakh letters"
    );
}

#[test]
fn every_data_i18n_key_of_the_html_has_a_text() {
    let mut keys = BTreeSet::new();
    for (_, html) in HTML {
        keys.extend(data_i18n_keys(html));
    }
    assert_everywhere(&keys, "data-i18n keys");
}

#[test]
fn every_key_the_script_asks_for_has_a_text() {
    assert_everywhere(&literal_calls(ENROLL_JS, "t"), "t('…') keys of enroll.js");
}

#[test]
fn every_problem_the_script_shows_has_a_text() {
    let codes = literal_calls(ENROLL_JS, "showProblem");
    assert!(
        !codes.is_empty(),
        "no showProblem('…') found: the scan is broken"
    );
    for (lang, name, table) in tables() {
        for code in &codes {
            let known = ["error.", "agent_error.", "page_error."]
                .iter()
                .any(|family| table.contains_key(&format!("{family}{code}")));
            assert!(known, "{name}: the script's problem {code} has no text");
            // The page's own codes (page_error.*) go through the page's lookup only; every
            // other one must read as its own text, not the generic one.
            if !table.contains_key(&format!("page_error.{code}")) {
                assert_ne!(
                    error_message(lang, code),
                    table["error.generic"],
                    "{name}: {code} reads as the generic text"
                );
            }
        }
    }
}

#[test]
fn every_error_code_has_a_message() {
    let mut keys: BTreeSet<String> = ErrorCode::ALL
        .iter()
        .map(|c| format!("error.{}", c.as_str()))
        .collect();
    // The pages' own code, refused by the session API.
    keys.insert("error.csrf_invalid".to_owned());
    keys.insert("error.generic".to_owned());
    assert_everywhere(&keys, "error codes");
}

#[test]
fn every_agent_code_has_a_message() {
    let keys: BTreeSet<String> = crate::enroll::agent::AgentCode::ALL
        .iter()
        .map(|c| c.as_str())
        .chain(PAGE_AGENT_CODES.iter().copied())
        .map(|c| format!("agent_error.{c}"))
        .collect();
    assert_everywhere(&keys, "agent codes");
}

#[test]
fn every_status_has_a_text() {
    let keys: BTreeSet<String> = ApplicationStatus::ALL
        .iter()
        .map(|s| format!("status.{}", s.as_str()))
        .collect();
    assert_everywhere(&keys, "application statuses");
}

#[test]
fn a_missing_key_reads_as_itself_and_an_unknown_code_as_the_generic_text() {
    for (lang, name, table) in tables() {
        assert_eq!(text(lang, "no.such.key"), "no.such.key");
        assert_eq!(
            error_message(lang, "no_such_code"),
            table["error.generic"],
            "{name}"
        );
        assert_eq!(
            error_message(lang, "consent_token_replayed"),
            table["error.consent_token_replayed"]
        );
        assert_eq!(
            error_message(lang, "file_exists"),
            table["agent_error.file_exists"]
        );
        // A code both sides have reads as the server's.
        assert_eq!(error_message(lang, "not_found"), table["error.not_found"]);
    }
    assert_ne!(
        error_message(Language::Kk, "consent_token_expired"),
        error_message(Language::En, "consent_token_expired")
    );
}

#[test]
fn the_html_has_no_inline_script_style_handler_or_external_url() {
    let mut found = Vec::new();
    for (name, html) in HTML {
        for tag in tags(html) {
            let lower = tag.to_ascii_lowercase();
            if lower.contains("style=") || lower.starts_with("<style") {
                found.push(format!("{name}: inline style in {tag}"));
            }
            if lower.contains("http://") || lower.contains("https://") {
                found.push(format!("{name}: external URL in {tag}"));
            }
            let handler = lower
                .split(|c: char| c.is_ascii_whitespace())
                .any(|word| word.starts_with("on") && word.contains('='));
            if handler {
                found.push(format!("{name}: event handler attribute in {tag}"));
            }
        }
        let lower = html.to_ascii_lowercase();
        let mut rest = lower.as_str();
        while let Some(at) = rest.find("<script") {
            rest = &rest[at..];
            let Some(open_end) = rest.find('>') else {
                found.push(format!("{name}: unterminated <script"));
                break;
            };
            let open = &rest[..open_end];
            let Some(close) = rest.find("</script>") else {
                found.push(format!("{name}: <script> without </script>"));
                break;
            };
            if !open.contains(" src=\"/enroll/assets/") {
                found.push(format!("{name}: a script not from /enroll/assets/"));
            }
            if !rest[open_end + 1..close].trim().is_empty() {
                found.push(format!("{name}: inline script body"));
            }
            rest = &rest[close..];
        }
    }
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn the_scans_catch_what_they_look_for() {
    // The checks above must not pass because their scanners see nothing.
    let bad =
        r#"<p style="x" onclick="y"><a href="https://cdn.example">x</a><script>alert(1)</script>"#;
    let tag_list = tags(bad);
    assert!(tag_list.iter().any(|t| t.contains("style=")));
    assert!(tag_list.iter().any(|t| t.contains("https://")));
    assert_eq!(
        data_i18n_keys(r#"<b data-i18n="a.b"></b><i data-i18n-label="c"></i>"#),
        BTreeSet::from(["a.b".to_owned(), "c".to_owned()])
    );
    assert_eq!(
        literal_calls("t('x.y'); t('status.' + w); at('z'); x.t('q')", "t"),
        BTreeSet::from(["x.y".to_owned()])
    );
}

#[test]
fn every_placeholder_is_one_the_server_fills() {
    let allowed: [(&str, &[&str]); 4] = [
        (
            "enroll.html",
            &["mode", "agent_url", "digital_id_url", "lang", "application"],
        ),
        (
            "error.html",
            &["lang", "title", "message", "code", "digital_id_url", "back"],
        ),
        ("digital-id.html", &["lang", "message"]),
        ("handover.html", &["lang", "consent_token"]),
    ];
    for ((name, html), (allowed_name, names)) in HTML.iter().zip(allowed) {
        assert_eq!(*name, allowed_name);
        let mut seen = BTreeSet::new();
        let mut rest = *html;
        while let Some(at) = rest.find("{{") {
            rest = &rest[at + 2..];
            let end = rest.find("}}").expect("an unclosed placeholder");
            seen.insert(&rest[..end]);
            rest = &rest[end + 2..];
        }
        let expected: BTreeSet<&str> = names.iter().copied().collect();
        assert_eq!(seen, expected, "{name}");
    }
}

#[test]
fn the_contract_ids_are_in_the_shell() {
    let shell = HTML[0].1;
    for id in [
        "message",
        "lang-kk",
        "lang-ru",
        "lang-en",
        "step-no-session",
        "back-to-digital-id",
        "step-no-agent",
        "retry-agent",
        "step-agreement",
        "agreement-text",
        "agree",
        "confirm-agreement",
        "step-form",
        "email",
        "storage",
        "storage-note",
        "key-type",
        "choose-folder",
        "folder-chooser",
        "new-folder-name",
        "make-folder",
        "folder",
        "submit-application",
        "step-status",
        "status",
        "refresh",
        "step-password",
        "password",
        "password-repeat",
        "password-rules",
        "rule-length",
        "rule-upper",
        "rule-lower",
        "rule-digit",
        "rule-same",
        "download",
        "step-done",
        "result",
    ] {
        assert_eq!(shell.matches(&format!("id=\"{id}\"")).count(), 1, "id {id}");
    }
    // Every input and select has its label.
    let starts = shell
        .match_indices("<input")
        .chain(shell.match_indices("<select"))
        .map(|(at, _)| at);
    for at in starts {
        let tag = &shell[at..];
        let tag = &tag[..tag.find('>').unwrap()];
        let id = tag
            .split("id=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap();
        assert!(
            shell.contains(&format!("for=\"{id}\"")),
            "no label for {id}"
        );
    }
}

#[test]
fn the_agreement_is_there_in_every_language() {
    for (name, agreement) in AGREEMENT_2026_1 {
        assert!(
            agreement.len() > 2000,
            "agreement 2026-1 in {name} is too short"
        );
        assert!(
            agreement.contains("2026-1"),
            "agreement in {name} does not name its version"
        );
    }
}
