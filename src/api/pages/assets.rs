//! The files of the citizen's pages, embedded in the binary: the templates the server fills,
//! the static files it serves under `/enroll/assets/`, and the agreement's texts. Must never:
//! read a file at run time, or serve a name that is not in [`STATIC`].

use crate::vocab::Language;

/// The page shell (`{{mode}} {{agent_url}} {{digital_id_url}} {{lang}} {{application}}`).
pub const ENROLL_HTML: &str = include_str!("assets/enroll.html");
/// The refusal page of `POST /enroll`
/// (`{{lang}} {{title}} {{message}} {{code}} {{digital_id_url}} {{back}}`).
pub const ERROR_HTML: &str = include_str!("assets/error.html");
/// The Digital ID stand-in's form (`{{lang}} {{message}}`).
pub const DIGITAL_ID_HTML: &str = include_str!("assets/digital-id.html");
/// The stand-in's hand-over to `POST /enroll` (`{{lang}} {{consent_token}}`).
pub const HANDOVER_HTML: &str = include_str!("assets/handover.html");

/// A file served under `/enroll/assets/`.
#[derive(Debug, Clone, Copy)]
pub struct StaticFile {
    /// Its name after `/enroll/assets/`.
    pub name: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its bytes.
    pub body: &'static str,
}

/// Every file served under `/enroll/assets/`; any other name is `404`.
pub const STATIC: &[StaticFile] = &[
    StaticFile {
        name: "enroll.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/enroll.js"),
    },
    StaticFile {
        name: "enroll.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("assets/enroll.css"),
    },
    StaticFile {
        name: "handover.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/handover.js"),
    },
    StaticFile {
        name: "i18n/kk.json",
        content_type: "application/json",
        body: include_str!("assets/i18n/kk.json"),
    },
    StaticFile {
        name: "i18n/ru.json",
        content_type: "application/json",
        body: include_str!("assets/i18n/ru.json"),
    },
    StaticFile {
        name: "i18n/en.json",
        content_type: "application/json",
        body: include_str!("assets/i18n/en.json"),
    },
];

/// The static file `name`, if it is one.
pub fn static_file(name: &str) -> Option<&'static StaticFile> {
    STATIC.iter().find(|f| f.name == name)
}

/// The agreement's versions and their texts, one per language.
const AGREEMENTS: &[(&str, Language, &str)] = &[
    (
        "2026-1",
        Language::Kk,
        include_str!("assets/agreement/2026-1/kk.txt"),
    ),
    (
        "2026-1",
        Language::Ru,
        include_str!("assets/agreement/2026-1/ru.txt"),
    ),
    (
        "2026-1",
        Language::En,
        include_str!("assets/agreement/2026-1/en.txt"),
    ),
];

/// The text of agreement `version` in `lang`, if there is one.
pub fn agreement(version: &str, lang: Language) -> Option<&'static str> {
    AGREEMENTS
        .iter()
        .find(|(v, l, _)| *v == version && *l == lang)
        .map(|(_, _, text)| *text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_static_file_is_found_by_its_name_and_nothing_else_is() {
        for file in STATIC {
            assert_eq!(static_file(file.name).map(|f| f.name), Some(file.name));
        }
        for name in ["", "enroll.html", "../enroll.js", "i18n/", "i18n/de.json"] {
            assert!(static_file(name).is_none(), "{name}");
        }
    }

    #[test]
    fn the_agreement_exists_in_every_language_and_only_for_its_versions() {
        for lang in [Language::Kk, Language::Ru, Language::En] {
            assert!(agreement("2026-1", lang).is_some_and(|t| !t.trim().is_empty()));
            assert!(agreement("2025-9", lang).is_none());
        }
    }
}
