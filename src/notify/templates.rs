//! The messages, in Kazakh, Russian and English: a subject and paragraphs per event and
//! language, rendered to a text part and an HTML part (values HTML-escaped).

use serde_json::Value;

use super::EmailEvent;

/// A rendered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// Subject line.
    pub subject: String,
    /// text/plain body.
    pub text: String,
    /// text/html body.
    pub html: String,
}

fn s<'a>(p: &'a Value, key: &str) -> &'a str {
    p.get(key).and_then(Value::as_str).unwrap_or("")
}

fn date(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|_| rfc3339.to_owned())
}

fn kind(lang: &str, kind: &str) -> &'static str {
    match (lang, kind) {
        ("kk", "auth") => "аутентификация (AUTH)",
        ("kk", _) => "қол қою (SIGN)",
        ("ru", "auth") => "аутентификации (AUTH)",
        ("ru", _) => "подписи (SIGN)",
        (_, "auth") => "authentication (AUTH)",
        _ => "signing (SIGN)",
    }
}

fn reason(lang: &str, r: &str) -> String {
    let name = match (lang, r) {
        ("kk", "keyCompromise") => "кілт құпиялылығының бұзылуы",
        ("kk", "superseded") => "жаңа сертификатпен ауыстырылды",
        ("kk", "cessationOfOperation") => "пайдалану тоқтатылды",
        ("kk", "certificateHold") => "уақытша тоқтатылды",
        ("kk", "affiliationChanged") => "деректер өзгерді",
        ("kk", "privilegeWithdrawn") => "құқық қайтарылды",
        ("kk", _) => "себебі көрсетілмеген",
        ("ru", "keyCompromise") => "компрометация ключа",
        ("ru", "superseded") => "заменён новым сертификатом",
        ("ru", "cessationOfOperation") => "прекращение использования",
        ("ru", "certificateHold") => "приостановлен",
        ("ru", "affiliationChanged") => "изменение сведений",
        ("ru", "privilegeWithdrawn") => "отзыв полномочий",
        ("ru", _) => "причина не указана",
        (_, "keyCompromise") => "key compromise",
        (_, "superseded") => "superseded by a new certificate",
        (_, "cessationOfOperation") => "no longer used",
        (_, "certificateHold") => "suspended (on hold)",
        (_, "affiliationChanged") => "details changed",
        (_, "privilegeWithdrawn") => "privilege withdrawn",
        _ => "no reason given",
    };
    format!("{name} ({r})")
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// Render the event an outbox row stores (its text, read back into an [`EmailEvent`]) for
/// `language` (kk, ru, en; anything else falls back to en) from the JSON payload the
/// authority queued.
pub fn render(event: &str, language: &str, payload: &str) -> Result<Rendered, String> {
    let event = EmailEvent::parse(event).ok_or_else(|| format!("no template for event {event}"))?;
    render_event(event, language, payload)
}

/// Render `event` for `language` from its payload.
pub fn render_event(event: EmailEvent, language: &str, payload: &str) -> Result<Rendered, String> {
    let p: Value = serde_json::from_str(payload).map_err(|e| format!("payload: {e}"))?;
    let lang = match language {
        "kk" | "ru" => language,
        _ => "en",
    };
    let (subject, paragraphs): (String, Vec<String>) = match (event, lang) {
        (EmailEvent::ApplicationReceived, "kk") => (
            "Өтінішіңіз қабылданды".into(),
            vec![
                format!("Сертификаттарға өтінішіңіз ({}) қабылданды және оператордың тексеруін күтуде.", s(&p, "application_id")),
                "Шешім қабылданғанда сізге хабарлаймыз.".into(),
            ],
        ),
        (EmailEvent::ApplicationReceived, "ru") => (
            "Ваша заявка принята".into(),
            vec![
                format!("Ваша заявка на сертификаты ({}) принята и ожидает проверки оператором.", s(&p, "application_id")),
                "Мы сообщим вам, когда решение будет принято.".into(),
            ],
        ),
        (EmailEvent::ApplicationReceived, _) => (
            "Your application was received".into(),
            vec![
                format!("Your application for certificates ({}) was received and is waiting for an operator's review.", s(&p, "application_id")),
                "We will write to you when it is decided.".into(),
            ],
        ),
        (EmailEvent::CertificatesIssued, _) => {
            let list: Vec<String> = p
                .get("certificates")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|c| {
                    format!(
                        "{}: {} ({} — {})",
                        kind(lang, s(c, "kind")),
                        s(c, "serial"),
                        date(s(c, "not_before")),
                        date(s(c, "not_after"))
                    )
                })
                .collect();
            let (subject, intro, next) = match lang {
                "kk" => (
                    "Сертификаттарыңыз берілді",
                    "Сіздің тіркеу куәліктеріңіз берілді:",
                    "Келесі қадам: порталда құпиясөз орнатып, сертификаттарды жүктеп алыңыз. Кілттеріңізді ешкімге бермеңіз.",
                ),
                "ru" => (
                    "Ваши сертификаты выпущены",
                    "Ваши регистрационные свидетельства выпущены:",
                    "Далее: задайте пароль на портале и скачайте сертификаты. Никому не передавайте свои ключи.",
                ),
                _ => (
                    "Your certificates were issued",
                    "Your certificates were issued:",
                    "Next: set a password on the portal and download your certificates. Never share your keys.",
                ),
            };
            let mut paragraphs = vec![intro.to_owned()];
            paragraphs.extend(list);
            paragraphs.push(next.to_owned());
            (subject.to_owned(), paragraphs)
        }
        (EmailEvent::ApplicationRejected, "kk") => (
            "Өтінішіңіз қабылданбады".into(),
            vec![
                format!("Өтінішіңіз ({}) қабылданбады.", s(&p, "application_id")),
                format!("Себебі: {}", s(&p, "reason")),
            ],
        ),
        (EmailEvent::ApplicationRejected, "ru") => (
            "Ваша заявка отклонена".into(),
            vec![
                format!("Ваша заявка ({}) отклонена.", s(&p, "application_id")),
                format!("Причина: {}", s(&p, "reason")),
            ],
        ),
        (EmailEvent::ApplicationRejected, _) => (
            "Your application was rejected".into(),
            vec![
                format!("Your application ({}) was rejected.", s(&p, "application_id")),
                format!("Reason: {}", s(&p, "reason")),
            ],
        ),
        (EmailEvent::CertificateRevoked, "kk") => (
            "Сертификат кері қайтарылды".into(),
            vec![format!(
                "{} сертификаты {} {} кері қайтарылды. Себебі: {}.",
                kind(lang, s(&p, "kind")),
                s(&p, "serial"),
                date(s(&p, "revoked_at")),
                reason(lang, s(&p, "reason"))
            )],
        ),
        (EmailEvent::CertificateRevoked, "ru") => (
            "Сертификат отозван".into(),
            vec![format!(
                "Сертификат {} {} отозван {}. Причина: {}.",
                kind(lang, s(&p, "kind")),
                s(&p, "serial"),
                date(s(&p, "revoked_at")),
                reason(lang, s(&p, "reason"))
            )],
        ),
        (EmailEvent::CertificateRevoked, _) => (
            "Your certificate was revoked".into(),
            vec![format!(
                "Your {} certificate {} was revoked at {}. Reason: {}.",
                kind(lang, s(&p, "kind")),
                s(&p, "serial"),
                date(s(&p, "revoked_at")),
                reason(lang, s(&p, "reason"))
            )],
        ),
        (EmailEvent::CertificateExpiring, _) => {
            let days = p.get("days").and_then(Value::as_i64).unwrap_or(0);
            let (subject, body) = match lang {
                "kk" => (
                    format!("Сертификаттың мерзімі {days} күннен кейін бітеді"),
                    format!(
                        "{} сертификатыңыздың ({}) мерзімі {} аяқталады. Жаңа сертификатқа алдын ала өтініш беріңіз.",
                        kind(lang, s(&p, "kind")),
                        s(&p, "serial"),
                        date(s(&p, "not_after"))
                    ),
                ),
                "ru" => (
                    format!("Срок действия сертификата истекает через {days} дн."),
                    format!(
                        "Срок действия вашего сертификата {} ({}) истекает {}. Подайте заявку на новый сертификат заранее.",
                        kind(lang, s(&p, "kind")),
                        s(&p, "serial"),
                        date(s(&p, "not_after"))
                    ),
                ),
                _ => (
                    format!("Your certificate expires in {days} days"),
                    format!(
                        "Your {} certificate {} expires on {}. Apply for a new one before then.",
                        kind(lang, s(&p, "kind")),
                        s(&p, "serial"),
                        date(s(&p, "not_after"))
                    ),
                ),
            };
            (subject, vec![body])
        }
    };
    let signature = match lang {
        "kk" => "Ұлттық куәландырушы орталық",
        "ru" => "Национальный удостоверяющий центр",
        _ => "National Certification Authority",
    };
    let text = format!("{}\n\n-- \n{signature}\n", paragraphs.join("\n\n"));
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"{lang}\"><head><meta charset=\"utf-8\"><title>{}</title></head><body>\n{}\n<p style=\"color:#666\">{}</p>\n</body></html>\n",
        escape(&subject),
        paragraphs
            .iter()
            .map(|para| format!("<p>{}</p>", escape(para)))
            .collect::<Vec<_>>()
            .join("\n"),
        escape(signature)
    );
    Ok(Rendered {
        subject,
        text,
        html,
    })
}
