#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::Arc;

use chrono::{Duration, Utc};

use super::templates::reason_noun;
use super::*;
use crate::clock::FixedClock;
use crate::config::{DatabaseConfig, DatabaseUrl};
use crate::store::{
    Application, ApplicationStatus, Certificate, CertificateKind, CertificateStatus, OutboxStatus,
};

#[test]
fn every_event_renders_in_every_language() {
    let payloads = [
        ("application_received", r#"{"application_id":"A-1"}"#, "A-1"),
        (
            "certificates_issued",
            r#"{"application_id":"A-1","certificates":[{"kind":"auth","serial":"0A1B","not_before":"2026-11-25T00:00:00+00:00","not_after":"2027-11-25T00:00:00+00:00"}]}"#,
            "0A1B",
        ),
        (
            "application_rejected",
            r#"{"application_id":"A-1","reason":"<b>фото</b>"}"#,
            "&lt;b&gt;фото&lt;/b&gt;",
        ),
        (
            "certificate_revoked",
            r#"{"serial":"0C0D","kind":"sign","reason":"keyCompromise","revoked_at":"2026-11-25T10:00:00+00:00"}"#,
            "0C0D",
        ),
        (
            "certificate_expiring",
            r#"{"serial":"0E0F","kind":"auth","not_after":"2026-12-09T00:00:00+00:00","days":14}"#,
            "0E0F",
        ),
        (
            "certificate_held",
            r#"{"serial":"0A0B","kind":"auth","held_at":"2026-11-25T10:00:00+00:00"}"#,
            "0A0B",
        ),
        (
            "certificate_released",
            r#"{"serial":"0B0C","kind":"sign","released_at":"2026-11-26T10:00:00+00:00"}"#,
            "0B0C",
        ),
        (
            "certificates_reissued",
            r#"{"application_id":"A-2","replaces":"A-1","certificates":[{"kind":"auth","serial":"0D1E","not_before":"2026-11-25T00:00:00+00:00","not_after":"2027-11-25T00:00:00+00:00"}],"superseded":["0A1B","0C1D"]}"#,
            "0D1E",
        ),
    ];
    let mut subjects = std::collections::HashSet::new();
    for (event, payload, needle) in payloads {
        for lang in ["kk", "ru", "en"] {
            let r = render(event, lang, payload).unwrap();
            assert!(!r.subject.is_empty());
            assert!(r.html.contains(needle), "{event}/{lang}: {}", r.html);
            assert!(r.html.contains(&format!("lang=\"{lang}\"")));
            assert!(
                subjects.insert(r.subject.clone()),
                "subjects differ by event and language"
            );
        }
    }
    // An application an operator approved: the link to the page that finishes it.
    let approved = r#"{"application_id":"A-1","certificates":[],"resume_url":"https://ca.example/enroll/resume?application=A-1"}"#;
    for lang in ["kk", "ru", "en"] {
        let r = render("certificates_issued", lang, approved).unwrap();
        assert!(r
            .text
            .contains("https://ca.example/enroll/resume?application=A-1"));
        assert!(r
            .html
            .contains("https://ca.example/enroll/resume?application=A-1"));
        let at_once = render("certificates_issued", lang, payloads[1].1).unwrap();
        assert!(!at_once.text.contains("/enroll/resume"));
    }
    let rejected = render("application_rejected", "kk", payloads[2].1).unwrap();
    assert!(
        rejected.text.contains("<b>фото</b>") && !rejected.html.contains("<b>фото"),
        "escaped in HTML only"
    );
    assert!(render("certificate_revoked", "ru", payloads[3].1)
        .unwrap()
        .text
        .contains("компрометация ключа"));
    assert!(render("no_such_event", "en", "{}").is_err());
    assert!(render("application_received", "en", "not json").is_err());
}

/// A payload for every event, as the authorities queue them.
fn payload_of(event: EmailEvent) -> &'static str {
    match event {
        EmailEvent::ApplicationReceived => r#"{"application_id":"A-1"}"#,
        EmailEvent::CertificatesIssued => {
            r#"{"application_id":"A-1","certificates":[{"kind":"auth","serial":"0A1B","not_before":"2026-11-25T00:00:00+00:00","not_after":"2027-11-25T00:00:00+00:00"},{"kind":"sign","serial":"0C1D","not_before":"2026-11-25T00:00:00+00:00","not_after":"2027-11-25T00:00:00+00:00"}]}"#
        }
        EmailEvent::ApplicationRejected => {
            r#"{"application_id":"A-1","reason":"the photo is not sharp"}"#
        }
        EmailEvent::CertificateRevoked => {
            r#"{"serial":"0C0D","kind":"sign","reason":"cessationOfOperation","revoked_at":"2026-11-25T10:00:00+00:00"}"#
        }
        EmailEvent::CertificateExpiring => {
            r#"{"serial":"0E0F","kind":"auth","not_after":"2026-12-09T00:00:00+00:00","days":14}"#
        }
        EmailEvent::CertificateHeld => {
            r#"{"serial":"0A0B","kind":"auth","held_at":"2026-11-25T10:00:00+00:00"}"#
        }
        EmailEvent::CertificateReleased => {
            r#"{"serial":"0A0B","kind":"auth","released_at":"2026-11-26T10:00:00+00:00"}"#
        }
        EmailEvent::CertificatesReissued => {
            r#"{"application_id":"A-2","replaces":"A-1","certificates":[{"kind":"auth","serial":"0E1F","not_before":"2026-11-25T00:00:00+00:00","not_after":"2027-11-25T00:00:00+00:00"},{"kind":"sign","serial":"0F2A","not_before":"2026-11-25T00:00:00+00:00","not_after":"2027-11-25T00:00:00+00:00"}],"superseded":["0A1B","0C1D"]}"#
        }
    }
}

/// The body of a message, without the signature.
fn body_of(r: &Rendered) -> &str {
    r.text.split("\n\n-- \n").next().unwrap()
}

/// A revocation's payload with `reason`.
fn revoked_with(reason: &str) -> String {
    serde_json::json!({
        "serial": "0C0D",
        "kind": "sign",
        "reason": reason,
        "revoked_at": "2026-11-25T10:00:00+00:00",
    })
    .to_string()
}

/// A hold is a suspension the CA can lift: its message says so in every language, says how
/// to ask for it to be resumed, and never says the certificate was revoked; a
/// `certificate_revoked` row queued for a hold before the hold had its own event reads the
/// same. The release says the certificate works again.
#[test]
fn a_hold_is_told_as_a_suspension_and_its_release_as_valid_again() {
    let revoked_words = [
        "revoked",
        "revocation",
        "отозван",
        "отзыв",
        "кері қайтарып алынды",
    ];
    let legacy = revoked_with("certificateHold");
    for lang in ["kk", "ru", "en"] {
        let held = render_event(
            EmailEvent::CertificateHeld,
            lang,
            payload_of(EmailEvent::CertificateHeld),
        )
        .unwrap();
        let (subject, body) = (held.subject.to_lowercase(), body_of(&held).to_lowercase());
        for word in revoked_words {
            assert!(
                !subject.contains(word) && !body.contains(word) && !held.html.contains(word),
                "{lang}: the hold's message says {word:?}: {body}"
            );
        }
        let (suspended, resumed, contact) = match lang {
            "kk" => ("уақытша тоқтатылды", "қалпына келтіре алады", "хабарласып"),
            "ru" => ("приостановлено", "может возобновить", "обратитесь"),
            _ => ("suspended", "can resume", "contact"),
        };
        for needle in [suspended, resumed, contact, "0a0b", "2026-11-25 10:00 utc"] {
            assert!(body.contains(needle), "{lang}: {needle:?} in {body}");
        }
        assert!(subject.contains(suspended), "{lang}: {subject}");

        let old_row = render("certificate_revoked", lang, &legacy).unwrap();
        assert_eq!(old_row.subject, held.subject, "{lang}");
        for word in revoked_words {
            assert!(
                !old_row.text.to_lowercase().contains(word),
                "{lang}: {}",
                old_row.text
            );
        }

        let released = render_event(
            EmailEvent::CertificateReleased,
            lang,
            payload_of(EmailEvent::CertificateReleased),
        )
        .unwrap();
        let body = body_of(&released).to_lowercase();
        let again = match lang {
            "kk" => "қайтадан қабылдайды",
            "ru" => "снова его принимают",
            _ => "accept it again",
        };
        for needle in [again, "0a0b", "2026-11-26 10:00 utc"] {
            assert!(body.contains(needle), "{lang}: {needle:?} in {body}");
        }
        for word in revoked_words {
            assert!(!body.contains(word), "{lang}: {body}");
        }
    }
}

/// After «Себебі —» / «Причина отзыва —» / "The reason recorded is" comes a noun naming the
/// cause, never a verb or a participle; `unspecified` is said in a sentence of its own.
#[test]
fn a_revocations_reason_is_a_noun() {
    let nouns: [(&str, [&str; 3]); 6] = [
        (
            "keyCompromise",
            [
                "кілт құпиялылығының бұзылуы",
                "компрометация ключа",
                "key compromise",
            ],
        ),
        (
            "superseded",
            [
                "жаңа сертификатпен ауыстыру",
                "замена новым сертификатом",
                "replacement by a new certificate",
            ],
        ),
        (
            "cessationOfOperation",
            [
                "пайдаланудың тоқтатылуы",
                "прекращение использования",
                "cessation of use",
            ],
        ),
        (
            "affiliationChanged",
            [
                "деректердің өзгеруі",
                "изменение сведений",
                "change of the holder's details",
            ],
        ),
        (
            "privilegeWithdrawn",
            [
                "өкілеттіктің қайтарылуы",
                "отзыв полномочий",
                "withdrawal of privilege",
            ],
        ),
        (
            "certificateHold",
            [
                "уақытша тоқтата тұру",
                "приостановление действия",
                "suspension",
            ],
        ),
    ];
    let langs = ["kk", "ru", "en"];
    let leads = ["Себебі — ", "Причина отзыва — ", "The reason recorded is "];
    // The words the review found after the dash: verbs and participles.
    let not_nouns = [
        "ауыстырылды",
        "пайдалану тоқтатылды",
        "«уақытша тоқтатылды»",
        "деректер өзгерді",
        "құқық қайтарылды",
        "заменён",
        "«приостановлен»",
        "superseded by",
        "no longer used",
        "details changed",
        "privilege withdrawn",
    ];
    for (reason, names) in nouns {
        for ((lang, name), lead) in langs.into_iter().zip(names).zip(leads) {
            // The noun itself, as the reason sentence gives it.
            assert_eq!(
                reason_noun(lang, crate::vocab::RevocationReason::parse(reason).unwrap()),
                Some(name),
                "{reason}/{lang}"
            );
            if reason == "certificateHold" {
                continue; // rendered as the hold's own message
            }
            let r = render("certificate_revoked", lang, &revoked_with(reason)).unwrap();
            let (open, close) = if lang == "en" {
                ('\u{201c}', '\u{201d}')
            } else {
                ('«', '»')
            };
            let sentence = format!("{lead}{open}{name}{close} ({reason}).");
            assert!(r.text.contains(&sentence), "{sentence} in {}", r.text);
            for wrong in not_nouns {
                assert!(!r.text.contains(wrong), "{reason}/{lang}: {wrong}");
            }
        }
    }
    for (lang, sentence) in langs.into_iter().zip([
        "Себебі көрсетілмеген.",
        "Причина отзыва не указана.",
        "No reason was recorded.",
    ]) {
        for reason in ["unspecified", "noSuchReason"] {
            let r = render("certificate_revoked", lang, &revoked_with(reason)).unwrap();
            assert!(r.text.contains(sentence), "{lang}/{reason}: {}", r.text);
            assert!(!r.text.contains(reason), "{lang}/{reason}: {}", r.text);
        }
    }
}

/// In Kazakh a date before a verb takes a case word: every date a Kazakh message gives is
/// followed by "кезінде", "күні" or, for a period, "–" and "аралығында".
#[test]
fn kazakh_dates_take_a_case_word() {
    for event in EmailEvent::ALL {
        let r = render_event(event, "kk", payload_of(event)).unwrap();
        let body = body_of(&r);
        for (i, _) in body.match_indices(" UTC") {
            let after = &body[i + " UTC".len()..];
            assert!(
                [" кезінде ", " күні ", " – ", " аралығында "]
                    .iter()
                    .any(|word| after.starts_with(word)),
                "{event}: a bare date before {:?}",
                after.chars().take(30).collect::<String>()
            );
        }
    }
    let revoked = render("certificate_revoked", "kk", &revoked_with("keyCompromise")).unwrap();
    assert!(
        revoked
            .text
            .contains("2026-11-25 10:00 UTC кезінде кері қайтарып алынды"),
        "{}",
        revoked.text
    );
    let expiring = render_event(
        EmailEvent::CertificateExpiring,
        "kk",
        payload_of(EmailEvent::CertificateExpiring),
    )
    .unwrap();
    assert!(
        expiring
            .text
            .contains("2026-12-09 00:00 UTC күні аяқталады"),
        "{}",
        expiring.text
    );
}

/// One application may be received and then rejected: "received" must not read as "accepted"
/// beside the rejection's "not accepted".
#[test]
fn received_does_not_read_as_accepted() {
    let id = r#"{"application_id":"A-1","reason":"x"}"#;
    for (lang, received, accepted) in [
        ("kk", "Өтінішіңіз алынды", "қабылданды"),
        ("ru", "Ваша заявка получена", "принята"),
    ] {
        let r = render_event(EmailEvent::ApplicationReceived, lang, id).unwrap();
        assert_eq!(r.subject, received);
        assert!(!r.text.contains(accepted), "{lang}: {}", r.text);
        let rejected = render_event(EmailEvent::ApplicationRejected, lang, id).unwrap();
        assert_ne!(rejected.subject, r.subject);
    }
}

/// The reviewed texts: every event exists in kk, ru and en (none falls back to another
/// language); one word for what is issued, "сертификат" / "certificate", in the body and in
/// every subject that names it, and never NCA's legal term beside it; nothing tells the
/// citizen to download the certificates or set a password on a portal (the signing client
/// wrote the containers, with the password chosen in it); every paragraph is a sentence.
#[test]
fn the_messages_use_one_word_and_say_what_is_left_to_do() {
    let term = |lang: &str| {
        if lang == "en" {
            "certificate"
        } else {
            "сертификат"
        }
    };
    let wrong_term = ["тіркеу куәлі", "свидетельств", "registration certificate"];
    let wrong_steps: &[(&str, &[&str])] = &[
        ("kk", &["жүкте", "портал", "құпиясөз орнат"]),
        ("ru", &["скача", "загруз", "задайте пароль", "портал"]),
        ("en", &["download", "set a password", "portal"]),
    ];
    for event in EmailEvent::ALL {
        let rendered: Vec<(&str, Rendered)> = ["kk", "ru", "en"]
            .into_iter()
            .map(|lang| (lang, render_event(event, lang, payload_of(event)).unwrap()))
            .collect();
        for (lang, r) in &rendered {
            let body = r.text.split("\n\n-- \n").next().unwrap();
            let (subject, lower) = (r.subject.to_lowercase(), body.to_lowercase());
            assert!(lower.contains(term(lang)), "{event}/{lang}: {body}");
            let names_it = !matches!(
                event,
                EmailEvent::ApplicationReceived | EmailEvent::ApplicationRejected
            );
            assert_eq!(
                subject.contains(term(lang)),
                names_it,
                "{event}/{lang}: {subject}"
            );
            for wrong in wrong_term {
                assert!(
                    !subject.contains(wrong) && !lower.contains(wrong),
                    "{event}/{lang}: {wrong}"
                );
            }
            for (_, words) in wrong_steps.iter().filter(|(l, _)| l == lang) {
                for wrong in *words {
                    assert!(
                        !lower.contains(wrong),
                        "{event}/{lang} says {wrong:?}: {body}"
                    );
                }
            }
            for paragraph in body.split("\n\n") {
                let first = paragraph.chars().next().unwrap();
                assert!(
                    first.is_uppercase() && paragraph.ends_with(['.', '!', '?']),
                    "{event}/{lang}: not a sentence: {paragraph:?}"
                );
            }
            assert!(r.html.contains(&format!("lang=\"{lang}\"")));
        }
        // Three languages, not one text three times.
        let en = &rendered[2].1;
        for (lang, r) in &rendered[..2] {
            assert_ne!(r.subject, en.subject, "{event}/{lang}");
            assert_ne!(r.text, en.text, "{event}/{lang}");
            assert!(
                r.text.chars().any(|c| ('\u{400}'..='\u{4ff}').contains(&c)),
                "{event}/{lang} is written in Cyrillic"
            );
        }
    }
    // The issued message names each certificate, and says how the files come about.
    let issued = render_event(
        EmailEvent::CertificatesIssued,
        "en",
        payload_of(EmailEvent::CertificatesIssued),
    )
    .unwrap();
    for needle in [
        "Your authentication (AUTH) certificate has serial number 0A1B",
        "Your signing (SIGN) certificate has serial number 0C1D",
        "password you chose",
    ] {
        assert!(issued.text.contains(needle), "{needle}: {}", issued.text);
    }
    let ru = render_event(
        EmailEvent::CertificatesIssued,
        "ru",
        payload_of(EmailEvent::CertificatesIssued),
    )
    .unwrap();
    assert!(
        ru.text
            .contains("Ваш сертификат аутентификации (AUTH) имеет серийный номер 0A1B"),
        "{}",
        ru.text
    );
}

/// A re-issue's message names the new certificates, the superseded ones by serial with the
/// reason `superseded` (a replacement, not a fault), and that the signing program saved the
/// new keys; in every language, each its own text.
#[test]
fn a_reissue_names_the_new_certificates_and_the_superseded_ones() {
    let payload = payload_of(EmailEvent::CertificatesReissued);
    let expected: [(&str, &str, &[&str]); 3] = [
        (
            "kk",
            "Сертификаттарыңыз қайта шығарылды",
            &[
                "Кілттеріңіз қайта шығарылды: сіз сұрауды қолданыстағы кілттеріңізбен растадыңыз",
                "(өтініш A-2)",
                "Жаңа аутентификация (AUTH) сертификатыңыздың сериялық нөмірі — 0E1F, ол 2026-11-25 00:00 UTC – 2027-11-25 00:00 UTC аралығында жарамды.",
                "Жаңа қол қою (SIGN) сертификатыңыздың сериялық нөмірі — 0F2A",
                "Бұрынғы сертификаттарыңыз (сериялық нөмірлері 0A1B, 0C1D) кері қайтарып алынды. Себебі — «жаңа сертификатпен ауыстыру» (superseded).",
                "Бұл ақау да, кілттердің құпиялылығының бұзылуы да емес, тек ауыстыру",
                "Қол қою бағдарламасы жаңа кілттерді сертификаттарымен бірге",
            ],
        ),
        (
            "ru",
            "Ваши сертификаты перевыпущены",
            &[
                "Ваши ключи перевыпущены: вы подтвердили запрос действующими ключами",
                "(заявка A-2)",
                "Ваш новый сертификат аутентификации (AUTH) имеет серийный номер 0E1F и действует с 2026-11-25 00:00 UTC по 2027-11-25 00:00 UTC.",
                "Ваш новый сертификат подписи (SIGN) имеет серийный номер 0F2A",
                "Ваши прежние сертификаты (серийные номера 0A1B, 0C1D) отозваны. Причина отзыва — «замена новым сертификатом» (superseded).",
                "Это замена, а не неисправность или компрометация ключей",
                "Программа подписи сохранила новые ключи",
            ],
        ),
        (
            "en",
            "Your certificates were re-issued",
            &[
                "Your keys were re-issued: you confirmed the request with your current keys",
                "(application A-2)",
                "Your new authentication (AUTH) certificate has serial number 0E1F and is valid from 2026-11-25 00:00 UTC to 2027-11-25 00:00 UTC.",
                "Your new signing (SIGN) certificate has serial number 0F2A",
                "Your previous certificates (serial numbers 0A1B, 0C1D) were revoked. The reason recorded is \u{201c}replacement by a new certificate\u{201d} (superseded).",
                "This is a replacement, not a fault or a compromise of your keys",
                "The signing program saved the new keys",
            ],
        ),
    ];
    let issued = render_event(
        EmailEvent::CertificatesIssued,
        "en",
        payload_of(EmailEvent::CertificatesIssued),
    )
    .unwrap();
    for (lang, subject, sentences) in expected {
        let r = render("certificates_reissued", lang, payload).unwrap();
        assert_eq!(r.subject, subject);
        for sentence in sentences {
            assert!(
                r.text.contains(sentence),
                "{lang}: {sentence:?} in {}",
                r.text
            );
            assert!(r.html.contains(sentence), "{lang}: HTML {}", r.html);
        }
        assert_ne!(r.subject, issued.subject);
    }
}

/// The expiry reminders say that the holder can re-issue with the current keys until the
/// expiry date (in the cabinet or with `tamga-enroll reissue`), and that after it a new pair
/// needs the full Digital ID journey.
#[test]
fn expiry_reminders_offer_the_reissue_until_the_expiry_date() {
    let payload = payload_of(EmailEvent::CertificateExpiring);
    for (lang, sentences) in [
        (
            "kk",
            [
                "2026-12-09 00:00 UTC күні аяқталады.",
                "Мерзім аяқталғанға дейін кілттеріңізді жеке кабинетте (немесе tamga-enroll reissue командасымен) қолданыстағы кілттеріңіз арқылы, жеке басыңызды қайта растамай-ақ қайта шығара аласыз.",
                "Бұл мерзімнен кейін сертификат жарамсыз болады, ал жаңа сертификаттар алу үшін Digital ID арқылы жеке басыңызды қайтадан толық растау қажет болады.",
            ],
        ),
        (
            "ru",
            [
                "истекает 2026-12-09 00:00 UTC.",
                "До этой даты вы можете перевыпустить ключи в личном кабинете, подтвердив запрос действующими ключами (или командой tamga-enroll reissue), без повторной проверки личности.",
                "После этой даты сертификат перестанет действовать, и для новых сертификатов придётся снова пройти полную проверку личности через Digital ID.",
            ],
        ),
        (
            "en",
            [
                "expires on 2026-12-09 00:00 UTC.",
                "Until that date you can re-issue your keys with the current ones from your personal cabinet (or with the command tamga-enroll reissue), without confirming your identity again.",
                "After that date the certificate can no longer be used, and new certificates need the full identification with Digital ID again.",
            ],
        ),
    ] {
        let r = render("certificate_expiring", lang, payload).unwrap();
        let paragraphs: Vec<&str> = body_of(&r).split("\n\n").collect();
        assert_eq!(paragraphs.len(), 3, "{lang}: {}", r.text);
        for (paragraph, sentence) in paragraphs.iter().zip(sentences) {
            assert!(paragraph.ends_with(sentence), "{lang}: {sentence:?} in {paragraph:?}");
        }
        assert!(r.html.contains("tamga-enroll reissue"), "{lang}: {}", r.html);
    }
}

#[test]
fn configuration_is_checked() {
    let ok = NotifyConfig::default();
    assert!(check_config(&ok).is_ok());
    for (url, good) in [
        ("smtp://127.0.0.1:2525", true),
        ("smtp://mail.example.kz?tls=starttls", true),
        ("smtps://mail.example.kz", true),
        ("smtp://user:secret@mail.example.kz", false),
        ("http://mail.example.kz", false),
        ("smtps://mail.example.kz?tls=starttls", false),
    ] {
        let c = NotifyConfig {
            smtp_url: url.into(),
            ..NotifyConfig::default()
        };
        assert_eq!(check_config(&c).is_ok(), good, "{url}");
    }
    let c = NotifyConfig {
        username: "ca".into(),
        ..NotifyConfig::default()
    };
    assert!(check_config(&c).unwrap_err().contains("password_env"));
    let c = NotifyConfig {
        from: "not an address".into(),
        ..NotifyConfig::default()
    };
    assert!(check_config(&c).is_err());
}

fn store(dir: &std::path::Path) -> Store {
    Store::open(
        &DatabaseUrl::Sqlite(dir.join("t.db")),
        &DatabaseConfig::default(),
    )
    .unwrap()
}

#[test]
fn backoff_grows_and_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let m = Mailer::new(
        store(dir.path()),
        &NotifyConfig::default(),
        Arc::new(FixedClock(Utc::now())),
    )
    .unwrap();
    for attempt in 0..40 {
        let d = m.backoff(attempt).num_milliseconds();
        let nominal = (30_000f64 * 2f64.powi(attempt.min(30))).min(3_600_000.0);
        assert!(
            d as f64 >= nominal * 0.74 && d as f64 <= nominal * 1.26,
            "attempt {attempt}: {d}"
        );
    }
}

#[test]
fn expiry_reminders_are_queued_once_per_threshold() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let now = db_time(Utc::now());
    let app = Application {
        id: "app-1".into(),
        status: ApplicationStatus::Issued,
        holder_iin: "900101300007".into(),
        surname: "S".into(),
        given_name: "N".into(),
        patronymic: None,
        birth_date: chrono::NaiveDate::from_ymd_opt(1990, 1, 1).unwrap(),
        email: Some("holder@example.kz".into()),
        language: "kk".into(),
        storage: "pkcs12".into(),
        agreement_version: "2026-1".into(),
        access_token_hash: vec![0; 32],
        consent_jti: "j".into(),
        register_match: true,
        liveness: true,
        auth_csr: vec![1],
        sign_csr: vec![1],
        reason: None,
        decided_by: None,
        created_at: now,
        updated_at: now,
        review_reasons: Vec::new(),
        replaces_application_id: None,
    };
    let cert = Certificate {
        serial: "0A".into(),
        issuer_id: "nca_rsa_dev".into(),
        application_id: Some("app-1".into()),
        kind: CertificateKind::Auth,
        holder_iin: app.holder_iin.clone(),
        not_before: now - Duration::days(300),
        not_after: now + Duration::days(40),
        tbs_der: vec![0],
        der: Some(vec![0]),
        spki_sha256: "k".into(),
        status: CertificateStatus::Issued,
        revoked_at: None,
        revocation_reason: None,
        invalidity_date: None,
        created_at: now,
        issued_at: Some(now),
        revocation_seq: None,
    };
    store
        .write(|tx| -> Result<(), StoreError> {
            tx.insert_application(&app)?;
            tx.insert_certificate(&cert)
        })
        .unwrap();
    let at = |days_before: i64| {
        let clock =
            FixedClock(cert.not_after.and_utc() - Duration::days(days_before) + Duration::hours(1));
        Mailer::new(store.clone(), &NotifyConfig::default(), Arc::new(clock)).unwrap()
    };
    let payloads = |store: &Store| -> Vec<i64> {
        store
            .read(|tx| tx.list_messages(None, 100))
            .unwrap()
            .iter()
            .filter(|m| m.event == "certificate_expiring")
            .map(|m| {
                serde_json::from_str::<serde_json::Value>(&m.payload).unwrap()["days"]
                    .as_i64()
                    .unwrap()
            })
            .collect()
    };
    assert_eq!(at(35).queue_expiry_reminders().unwrap(), 0, "not yet");
    assert_eq!(at(30).queue_expiry_reminders().unwrap(), 1);
    assert_eq!(
        at(29).queue_expiry_reminders().unwrap(),
        0,
        "30-day reminder sent once"
    );
    assert_eq!(at(14).queue_expiry_reminders().unwrap(), 1);
    // A scheduler that was down from day 13 to day 6 sends only the 7-day reminder.
    assert_eq!(at(6).queue_expiry_reminders().unwrap(), 1);
    assert_eq!(at(5).queue_expiry_reminders().unwrap(), 0);
    let mut days = payloads(&store);
    days.sort();
    assert_eq!(days, vec![7, 14, 30]);
}

#[test]
fn a_message_that_keeps_failing_becomes_dead_and_can_be_retried() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let now = Utc::now();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = NotifyConfig {
        smtp_url: format!("smtp://127.0.0.1:{closed}"),
        max_attempts: 2,
        ..NotifyConfig::default()
    };
    let row = message("row-1", OutboxStatus::Pending, 0, now);
    store.write(|tx| tx.enqueue_message(&row)).unwrap();
    let first = Mailer::new(store.clone(), &config, Arc::new(FixedClock(now))).unwrap();
    assert_eq!(
        first.deliver_due().unwrap(),
        Round {
            sent: 0,
            failed: 1,
            dead: 0
        }
    );
    assert_eq!(
        first.deliver_due().unwrap(),
        Round::default(),
        "not due again before its back-off"
    );
    let later = Mailer::new(
        store.clone(),
        &config,
        Arc::new(FixedClock(now + Duration::hours(2))),
    )
    .unwrap();
    assert_eq!(
        later.deliver_due().unwrap(),
        Round {
            sent: 0,
            failed: 1,
            dead: 1
        }
    );
    let dead = store.read(|tx| tx.message("row-1")).unwrap().unwrap();
    assert_eq!((dead.status, dead.attempts), (OutboxStatus::Dead, 2));
    assert!(dead.last_error.is_some());
    assert!(store
        .write(|tx| tx.retry_message("row-1", db_time(now)))
        .unwrap());
    let again = store.read(|tx| tx.message("row-1")).unwrap().unwrap();
    assert_eq!((again.status, again.attempts), (OutboxStatus::Pending, 0));
    // A leased row is not claimed by a second worker until its lease expires.
    let a = store
        .write(|tx| {
            tx.claim_due_messages("a", db_time(now), db_time(now + Duration::minutes(1)), 10)
        })
        .unwrap();
    let b = store
        .write(|tx| {
            tx.claim_due_messages("b", db_time(now), db_time(now + Duration::minutes(1)), 10)
        })
        .unwrap();
    assert_eq!((a.len(), b.len()), (1, 0));
    let after_lease = db_time(now + Duration::minutes(2));
    let c = store
        .write(|tx| tx.claim_due_messages("c", after_lease, after_lease + Duration::minutes(1), 10))
        .unwrap();
    assert_eq!(c.len(), 1, "a dead worker's row is retried");
    assert!(
        !store
            .write(|tx| tx.mark_message_sent("row-1", "a", after_lease))
            .unwrap(),
        "the old lease is gone"
    );
}

/// The event texts stored in the outbox are the ones rows already carry, and each reads back
/// as its event; a text that is no event is refused, not guessed.
#[test]
fn every_event_text_reads_back_and_is_the_stored_one() {
    let stored: Vec<&str> = EmailEvent::ALL.iter().map(|e| e.as_str()).collect();
    assert_eq!(
        stored,
        [
            "application_received",
            "certificates_issued",
            "application_rejected",
            "certificate_revoked",
            "certificate_expiring",
            "certificate_held",
            "certificate_released",
            "certificates_reissued"
        ]
    );
    for event in EmailEvent::ALL {
        assert_eq!(EmailEvent::parse(event.as_str()), Some(event));
    }
    assert_eq!(EmailEvent::parse("Application_Received"), None);
    assert_eq!(EmailEvent::parse(""), None);
}

/// An outbox row of an `application_received` e-mail to `x@example.kz`.
pub(super) fn message(
    id: &str,
    status: OutboxStatus,
    attempts: i32,
    now: chrono::DateTime<Utc>,
) -> OutboxMessage {
    OutboxMessage {
        id: id.into(),
        event: "application_received".into(),
        recipient: "x@example.kz".into(),
        language: "en".into(),
        payload: r#"{"application_id":"A"}"#.into(),
        status,
        attempts,
        next_attempt_at: db_time(now),
        lease_owner: None,
        lease_until: None,
        last_error: None,
        created_at: db_time(now),
        sent_at: None,
    }
}
