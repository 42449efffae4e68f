//! The messages, in Kazakh, Russian and English: a subject and paragraphs per event and
//! language, rendered to a text part and an HTML part (values HTML-escaped).
//!
//! One word for the thing issued, in subject and body alike: "сертификат" (kk and ru),
//! "certificate" (en), the word the citizen sees in the signing client and on relying
//! parties' pages; NCA's legal term ("тіркеу куәлігі", "регистрационное свидетельство") is
//! not used beside it. Every paragraph is a full sentence, and the messages say what the
//! citizen still has to do as it is: the keys were made and the containers are written by
//! the signing client on the citizen's own computer, with the password chosen there; nothing
//! is downloaded from a portal.

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

/// Which certificate, as the word that qualifies "сертификат"/"certificate" in a sentence
/// (kk: before it, ru: after it, in the genitive; en: before it).
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

/// `text` with its first letter in upper case, to begin a sentence.
fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
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
    match lang {
        "kk" | "ru" => format!("«{name}» ({r})"),
        _ => format!("\u{201c}{name}\u{201d} ({r})"),
    }
}

/// Free text (an operator's reason) closing a sentence: a full stop added unless it ends one.
fn closing(text: &str) -> String {
    let text = text.trim_end();
    if text.ends_with(['.', '!', '?', '…']) {
        text.to_owned()
    } else {
        format!("{text}.")
    }
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
                format!("Сертификаттар алуға берген өтінішіңіз ({}) қабылданды және оператордың тексеруін күтуде.", s(&p, "application_id")),
                "Оператор шешім қабылдағанда сізге хат жібереміз.".into(),
            ],
        ),
        (EmailEvent::ApplicationReceived, "ru") => (
            "Ваша заявка принята".into(),
            vec![
                format!("Ваша заявка на выпуск сертификатов ({}) принята и ожидает проверки оператором.", s(&p, "application_id")),
                "Мы напишем вам, когда оператор примет решение.".into(),
            ],
        ),
        (EmailEvent::ApplicationReceived, _) => (
            "Your application was received".into(),
            vec![
                format!("Your application for certificates ({}) was received and is waiting for an operator's review.", s(&p, "application_id")),
                "We will write to you when the operator has decided.".into(),
            ],
        ),
        (EmailEvent::CertificatesIssued, _) => {
            let each: Vec<String> = p
                .get("certificates")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|c| {
                    let (kind, serial) = (kind(lang, s(c, "kind")), s(c, "serial"));
                    let (from, until) = (date(s(c, "not_before")), date(s(c, "not_after")));
                    match lang {
                        "kk" => format!("{} сертификатыңыздың сериялық нөмірі — {serial}, ол {from} – {until} аралығында жарамды.", capitalized(kind)),
                        "ru" => format!("Ваш сертификат {kind} имеет серийный номер {serial} и действует с {from} по {until}."),
                        _ => format!("Your {kind} certificate has serial number {serial} and is valid from {from} to {until}."),
                    }
                })
                .collect();
            let (subject, intro, rest) = match lang {
                "kk" => (
                    "Сертификаттарыңыз берілді",
                    "Сертификаттарыңыз берілді.",
                    [
                        "Өтініш берген компьютеріңіздегі қол қою бағдарламасы әр сертификатты оның кілтімен бірге сіз сол бағдарламада таңдаған құпиясөзбен қорғалған файлға жазады. Өтінішіңіз оператордың тексеруін күткен кезде бағдарламаны жауып тастасаңыз, аяқтау үшін оны сол компьютерде қайта іске қосыңыз.",
                        "Жабық кілттеріңіз компьютеріңізден ешқайда жіберілген жоқ. Кілттеріңізді де, олардың құпиясөзін де ешкімге, тіпті куәландырушы орталықтың қызметкерлеріне де бермеңіз.",
                    ],
                ),
                "ru" => (
                    "Ваши сертификаты выпущены",
                    "Ваши сертификаты выпущены.",
                    [
                        "Программа подписи на компьютере, с которого вы подали заявку, сохраняет каждый сертификат вместе с его ключом в файл, защищённый паролем, который вы выбрали в этой программе. Если вы закрыли программу, пока заявка ожидала проверки оператором, запустите её снова на том же компьютере, чтобы завершить.",
                        "Ваши закрытые ключи не покидали ваш компьютер. Никому не передавайте ни ключи, ни пароль от них, даже сотрудникам удостоверяющего центра.",
                    ],
                ),
                _ => (
                    "Your certificates were issued",
                    "Your certificates were issued.",
                    [
                        "The signing program on the computer you applied from saves each certificate with its key in a file protected by the password you chose in that program. If you closed the program while your application waited for an operator's review, start it again on the same computer to finish.",
                        "Your private keys never left your computer. Never give the keys or their password to anyone, not even to the certification authority's staff.",
                    ],
                ),
            };
            let mut paragraphs = vec![intro.to_owned()];
            paragraphs.extend(each);
            paragraphs.extend(rest.map(str::to_owned));
            (subject.to_owned(), paragraphs)
        }
        (EmailEvent::ApplicationRejected, "kk") => (
            "Өтінішіңіз қабылданбады".into(),
            vec![
                format!("Сертификаттар алуға берген өтінішіңіз ({}) қабылданбады.", s(&p, "application_id")),
                format!("Оператор көрсеткен себеп: {}", closing(s(&p, "reason"))),
                "Digital ID арқылы жеке басыңызды қайта растап, жаңа өтініш бере аласыз.".into(),
            ],
        ),
        (EmailEvent::ApplicationRejected, "ru") => (
            "Ваша заявка отклонена".into(),
            vec![
                format!("Ваша заявка на выпуск сертификатов ({}) отклонена.", s(&p, "application_id")),
                format!("Причина, указанная оператором: {}", closing(s(&p, "reason"))),
                "Вы можете подать новую заявку, снова подтвердив личность через Digital ID.".into(),
            ],
        ),
        (EmailEvent::ApplicationRejected, _) => (
            "Your application was rejected".into(),
            vec![
                format!("Your application for certificates ({}) was rejected.", s(&p, "application_id")),
                format!("The operator gave this reason: {}", closing(s(&p, "reason"))),
                "You may apply again, confirming your identity with Digital ID once more.".into(),
            ],
        ),
        (EmailEvent::CertificateRevoked, "kk") => (
            "Сертификатыңыз кері қайтарып алынды".into(),
            vec![
                format!(
                    "{} сертификатыңыз (сериялық нөмірі {}) {} кері қайтарып алынды. Себебі — {}.",
                    capitalized(kind(lang, s(&p, "kind"))),
                    s(&p, "serial"),
                    date(s(&p, "revoked_at")),
                    reason(lang, s(&p, "reason"))
                ),
                "Бұдан былай сертификаттарды тексеретін қызметтер оны қабылдамайды. Мұны сіз сұрамаған болсаңыз, куәландырушы орталыққа хабарласыңыз.".into(),
            ],
        ),
        (EmailEvent::CertificateRevoked, "ru") => (
            "Ваш сертификат отозван".into(),
            vec![
                format!(
                    "Ваш сертификат {} с серийным номером {} отозван {}. Причина отзыва — {}.",
                    kind(lang, s(&p, "kind")),
                    s(&p, "serial"),
                    date(s(&p, "revoked_at")),
                    reason(lang, s(&p, "reason"))
                ),
                "Службы, проверяющие сертификаты, с этого момента его не принимают. Если вы не запрашивали отзыв, обратитесь в удостоверяющий центр.".into(),
            ],
        ),
        (EmailEvent::CertificateRevoked, _) => (
            "Your certificate was revoked".into(),
            vec![
                format!(
                    "Your {} certificate with serial number {} was revoked on {}. The reason recorded is {}.",
                    kind(lang, s(&p, "kind")),
                    s(&p, "serial"),
                    date(s(&p, "revoked_at")),
                    reason(lang, s(&p, "reason"))
                ),
                "Services that check certificates no longer accept it. If you did not ask for this, contact the certification authority.".into(),
            ],
        ),
        (EmailEvent::CertificateExpiring, _) => {
            let days = p.get("days").and_then(Value::as_i64).unwrap_or(0);
            let (kind, serial, until) = (
                kind(lang, s(&p, "kind")),
                s(&p, "serial"),
                date(s(&p, "not_after")),
            );
            let (subject, body) = match lang {
                "kk" => (
                    format!("Сертификатыңыздың мерзімі {days} күннен кейін аяқталады"),
                    [
                        format!("{} сертификатыңыздың (сериялық нөмірі {serial}) жарамдылық мерзімі {until} аяқталады.", capitalized(kind)),
                        "Бұл мерзімнен кейін сертификат жарамсыз болады, сондықтан жаңа сертификаттарға алдын ала өтініш беріңіз.".to_owned(),
                    ],
                ),
                "ru" => (
                    format!("Срок действия сертификата истекает через {days} дн."),
                    [
                        format!("Срок действия вашего сертификата {kind} с серийным номером {serial} истекает {until}."),
                        "После этого сертификат перестанет действовать, поэтому подайте заявку на новые сертификаты заранее.".to_owned(),
                    ],
                ),
                _ => (
                    format!("Your certificate expires in {days} days"),
                    [
                        format!("Your {kind} certificate with serial number {serial} expires on {until}."),
                        "After that it can no longer be used, so apply for new certificates before then.".to_owned(),
                    ],
                ),
            };
            (subject, body.to_vec())
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
