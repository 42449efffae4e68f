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
//!
//! A hold is not a revocation: its message says the certificate is suspended, that the CA can
//! resume it and how to ask, and never that it was revoked (a `certificate_revoked` row with
//! the reason `certificateHold`, queued before the hold had its own event, is rendered as the
//! hold's message); its release has a message of its own. A revocation's reason follows
//! «Себебі —» / «Причина отзыва —» as a noun, never a verb or a participle. In Kazakh a date
//! before a verb takes a case word ("… кезінде кері қайтарып алынды", "… күні аяқталады").
//! "Received" is kk «алынды», ru «получена»: not «қабылданды» / «принята», which read as the
//! opposite of the rejection («қабылданбады») the same application may get.
//!
//! A re-issue (kk «қайта шығару», ru «перевыпуск») has its own message: the new certificates,
//! and the previous ones revoked as superseded, a replacement and not a fault. The expiry
//! reminders say the holder can re-issue with the current keys until the expiry date (in the
//! cabinet, or `tamga-enroll reissue`), and after it needs the full Digital ID journey.

use serde_json::Value;

use super::EmailEvent;
use crate::vocab::RevocationReason;

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

/// The first of `keys` the payload has as a string ("" if none).
fn first_of<'a>(p: &'a Value, keys: &[&str]) -> &'a str {
    keys.iter()
        .find_map(|key| p.get(*key).and_then(Value::as_str))
        .unwrap_or("")
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

/// The name of a revocation reason as a noun phrase (what «Себебі —», «Причина отзыва —» and
/// "The reason recorded is" expect: never a verb or a participle); `None` for `unspecified`,
/// which the sentence then says was not given.
pub(super) fn reason_noun(lang: &str, reason: RevocationReason) -> Option<&'static str> {
    let name = match (lang, reason) {
        (_, RevocationReason::Unspecified) => return None,
        ("kk", RevocationReason::KeyCompromise) => "кілт құпиялылығының бұзылуы",
        ("kk", RevocationReason::Superseded) => "жаңа сертификатпен ауыстыру",
        ("kk", RevocationReason::CessationOfOperation) => "пайдаланудың тоқтатылуы",
        ("kk", RevocationReason::CertificateHold) => "уақытша тоқтата тұру",
        ("kk", RevocationReason::AffiliationChanged) => "деректердің өзгеруі",
        ("kk", RevocationReason::PrivilegeWithdrawn) => "өкілеттіктің қайтарылуы",
        ("ru", RevocationReason::KeyCompromise) => "компрометация ключа",
        ("ru", RevocationReason::Superseded) => "замена новым сертификатом",
        ("ru", RevocationReason::CessationOfOperation) => "прекращение использования",
        ("ru", RevocationReason::CertificateHold) => "приостановление действия",
        ("ru", RevocationReason::AffiliationChanged) => "изменение сведений",
        ("ru", RevocationReason::PrivilegeWithdrawn) => "отзыв полномочий",
        (_, RevocationReason::KeyCompromise) => "key compromise",
        (_, RevocationReason::Superseded) => "replacement by a new certificate",
        (_, RevocationReason::CessationOfOperation) => "cessation of use",
        (_, RevocationReason::CertificateHold) => "suspension",
        (_, RevocationReason::AffiliationChanged) => "change of the holder's details",
        (_, RevocationReason::PrivilegeWithdrawn) => "withdrawal of privilege",
    };
    Some(name)
}

/// The sentence that gives a revocation's reason: its noun and RFC 5280 name, or that none was
/// given (`unspecified`, or a text that is no reason).
fn reason_sentence(lang: &str, r: &str) -> String {
    let reason = RevocationReason::parse(r);
    let r = reason.map_or("", RevocationReason::as_str);
    match (lang, reason.and_then(|reason| reason_noun(lang, reason))) {
        ("kk", Some(name)) => format!("Себебі — «{name}» ({r})."),
        ("kk", None) => "Себебі көрсетілмеген.".to_owned(),
        ("ru", Some(name)) => format!("Причина отзыва — «{name}» ({r})."),
        ("ru", None) => "Причина отзыва не указана.".to_owned(),
        (_, Some(name)) => format!("The reason recorded is \u{201c}{name}\u{201d} ({r})."),
        _ => "No reason was recorded.".to_owned(),
    }
}

/// One sentence per certificate of the payload's `certificates`: which, its serial and its
/// validity; `new` calls them the holder's new certificates (a re-issue).
fn issued_certificates(lang: &str, p: &Value, new: bool) -> Vec<String> {
    p.get("certificates")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|c| {
            let (kind, serial) = (kind(lang, s(c, "kind")), s(c, "serial"));
            let (from, until) = (date(s(c, "not_before")), date(s(c, "not_after")));
            match (lang, new) {
                ("kk", false) => format!("{} сертификатыңыздың сериялық нөмірі — {serial}, ол {from} – {until} аралығында жарамды.", capitalized(kind)),
                ("kk", true) => format!("Жаңа {kind} сертификатыңыздың сериялық нөмірі — {serial}, ол {from} – {until} аралығында жарамды."),
                ("ru", false) => format!("Ваш сертификат {kind} имеет серийный номер {serial} и действует с {from} по {until}."),
                ("ru", true) => format!("Ваш новый сертификат {kind} имеет серийный номер {serial} и действует с {from} по {until}."),
                (_, false) => format!("Your {kind} certificate has serial number {serial} and is valid from {from} to {until}."),
                (_, true) => format!("Your new {kind} certificate has serial number {serial} and is valid from {from} to {until}."),
            }
        })
        .collect()
}

/// The serial numbers of the payload's `superseded` list, joined for a sentence.
fn superseded_serials(p: &Value) -> String {
    p.get("superseded")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect::<Vec<_>>()
        .join(", ")
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
    // A hold queued before it had its own event: the hold's message, not the revocation's.
    let event = match event {
        EmailEvent::CertificateRevoked
            if RevocationReason::parse(s(&p, "reason"))
                == Some(RevocationReason::CertificateHold) =>
        {
            EmailEvent::CertificateHeld
        }
        other => other,
    };
    let (subject, paragraphs): (String, Vec<String>) = match (event, lang) {
        (EmailEvent::ApplicationReceived, "kk") => (
            "Өтінішіңіз алынды".into(),
            vec![
                format!("Сертификаттар алуға берген өтінішіңіз ({}) алынды және оператордың тексеруін күтуде.", s(&p, "application_id")),
                "Оператор шешім қабылдағанда сізге хат жібереміз.".into(),
            ],
        ),
        (EmailEvent::ApplicationReceived, "ru") => (
            "Ваша заявка получена".into(),
            vec![
                format!("Ваша заявка на выпуск сертификатов ({}) получена и ожидает проверки оператором.", s(&p, "application_id")),
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
            let each = issued_certificates(lang, &p, false);
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
            // An operator approved it: the citizen finishes on the CA's page (the link names
            // the application only; the local agent holds its keys and access token).
            let resume = s(&p, "resume_url");
            if !resume.is_empty() {
                paragraphs.push(match lang {
                    "kk" => format!("Аяқтау үшін өтініш берген компьютеріңізде қол қою агентін іске қосып, мына бетті ашыңыз: {resume}"),
                    "ru" => format!("Чтобы завершить, запустите агент подписи на компьютере, с которого подавали заявку, и откройте страницу: {resume}"),
                    _ => format!("To finish, start the signing agent on the computer you applied from and open this page: {resume}"),
                });
            }
            paragraphs.extend(rest.map(str::to_owned));
            (subject.to_owned(), paragraphs)
        }
        (EmailEvent::CertificatesReissued, _) => {
            let id = s(&p, "application_id");
            let serials = superseded_serials(&p);
            let reason = reason_sentence(lang, RevocationReason::Superseded.as_str());
            let (subject, intro, previous, rest) = match lang {
                "kk" => (
                    "Сертификаттарыңыз қайта шығарылды",
                    format!("Кілттеріңіз қайта шығарылды: сіз сұрауды қолданыстағы кілттеріңізбен растадыңыз, жаңа кілттерге жаңа сертификаттар берілді (өтініш {id})."),
                    format!("Бұрынғы сертификаттарыңыз (сериялық нөмірлері {serials}) кері қайтарып алынды. {reason} Бұл ақау да, кілттердің құпиялылығының бұзылуы да емес, тек ауыстыру; сертификаттарды тексеретін қызметтер бұрынғы сертификаттарды бұдан былай қабылдамайды."),
                    [
                        "Қол қою бағдарламасы жаңа кілттерді сертификаттарымен бірге сіз сол бағдарламада таңдаған құпиясөзбен қорғалған файлдарға сақтады; бұдан былай жаңа файлдарды пайдаланыңыз.",
                        "Жабық кілттеріңіз компьютеріңізден ешқайда жіберілген жоқ. Кілттерді сіз қайта шығармаған болсаңыз, куәландырушы орталыққа дереу хабарласыңыз.",
                    ],
                ),
                "ru" => (
                    "Ваши сертификаты перевыпущены",
                    format!("Ваши ключи перевыпущены: вы подтвердили запрос действующими ключами, и на новые ключи выпущены новые сертификаты (заявка {id})."),
                    format!("Ваши прежние сертификаты (серийные номера {serials}) отозваны. {reason} Это замена, а не неисправность или компрометация ключей; службы, проверяющие сертификаты, прежние сертификаты больше не принимают."),
                    [
                        "Программа подписи сохранила новые ключи вместе с сертификатами в файлы, защищённые паролем, который вы выбрали в этой программе; с этого момента пользуйтесь новыми файлами.",
                        "Ваши закрытые ключи не покидали ваш компьютер. Если вы не перевыпускали ключи, немедленно обратитесь в удостоверяющий центр.",
                    ],
                ),
                _ => (
                    "Your certificates were re-issued",
                    format!("Your keys were re-issued: you confirmed the request with your current keys, and new certificates were issued for new keys (application {id})."),
                    format!("Your previous certificates (serial numbers {serials}) were revoked. {reason} This is a replacement, not a fault or a compromise of your keys; services that check certificates no longer accept the previous certificates."),
                    [
                        "The signing program saved the new keys with their certificates in files protected by the password you chose in it; use the new files from now on.",
                        "Your private keys never left your computer. If you did not re-issue your keys, contact the certification authority at once.",
                    ],
                ),
            };
            let mut paragraphs = vec![intro];
            paragraphs.extend(issued_certificates(lang, &p, true));
            paragraphs.push(previous);
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
                    "{} сертификатыңыз (сериялық нөмірі {}) {} кезінде кері қайтарып алынды. {}",
                    capitalized(kind(lang, s(&p, "kind"))),
                    s(&p, "serial"),
                    date(s(&p, "revoked_at")),
                    reason_sentence(lang, s(&p, "reason"))
                ),
                "Бұдан былай сертификаттарды тексеретін қызметтер оны қабылдамайды. Мұны сіз сұрамаған болсаңыз, куәландырушы орталыққа хабарласыңыз.".into(),
            ],
        ),
        (EmailEvent::CertificateRevoked, "ru") => (
            "Ваш сертификат отозван".into(),
            vec![
                format!(
                    "Ваш сертификат {} с серийным номером {} отозван {}. {}",
                    kind(lang, s(&p, "kind")),
                    s(&p, "serial"),
                    date(s(&p, "revoked_at")),
                    reason_sentence(lang, s(&p, "reason"))
                ),
                "Службы, проверяющие сертификаты, с этого момента его не принимают. Если вы не запрашивали отзыв, обратитесь в удостоверяющий центр.".into(),
            ],
        ),
        (EmailEvent::CertificateRevoked, _) => (
            "Your certificate was revoked".into(),
            vec![
                format!(
                    "Your {} certificate with serial number {} was revoked on {}. {}",
                    kind(lang, s(&p, "kind")),
                    s(&p, "serial"),
                    date(s(&p, "revoked_at")),
                    reason_sentence(lang, s(&p, "reason"))
                ),
                "Services that check certificates no longer accept it. If you did not ask for this, contact the certification authority.".into(),
            ],
        ),
        (EmailEvent::CertificateHeld, _) => {
            let (kind, serial) = (kind(lang, s(&p, "kind")), s(&p, "serial"));
            let at = date(first_of(&p, &["held_at", "revoked_at"]));
            let (subject, body) = match lang {
                "kk" => (
                    "Сертификатыңыздың қолданысы уақытша тоқтатылды",
                    [
                        format!("{} сертификатыңыздың (сериялық нөмірі {serial}) қолданысы {at} кезінде уақытша тоқтатылды.", capitalized(kind)),
                        "Қолданысы тоқтатылып тұрған кезде сертификаттарды тексеретін қызметтер оны қабылдамайды. Бұл уақытша шара: куәландырушы орталық сертификаттың қолданысын қалпына келтіре алады, сонда ол бұрынғы кілттермен және файлдармен қайта жұмыс істейді, бұл туралы сізге хат жібереміз.".to_owned(),
                        format!("Мұны сіз сұрамаған болсаңыз немесе сертификаттың қолданысын қалпына келтіргіңіз келсе, куәландырушы орталыққа хабарласып, сертификаттың сериялық нөмірін ({serial}) айтыңыз."),
                    ],
                ),
                "ru" => (
                    "Действие вашего сертификата приостановлено",
                    [
                        format!("Действие вашего сертификата {kind} с серийным номером {serial} приостановлено {at}."),
                        "Пока действие приостановлено, службы, проверяющие сертификаты, его не принимают. Это временная мера: удостоверяющий центр может возобновить действие сертификата, и он снова будет работать с прежними ключами и файлами, о чём мы вам напишем.".to_owned(),
                        format!("Если вы не просили о приостановлении или хотите возобновить действие сертификата, обратитесь в удостоверяющий центр и назовите серийный номер сертификата ({serial})."),
                    ],
                ),
                _ => (
                    "Your certificate was suspended",
                    [
                        format!("Your {kind} certificate with serial number {serial} was suspended on {at}."),
                        "While it is suspended, services that check certificates do not accept it. The suspension is temporary: the certification authority can resume the certificate, and it then works again with the same keys and files; we will write to you when it does.".to_owned(),
                        format!("If you did not ask for this, or want the certificate resumed, contact the certification authority and give the certificate's serial number ({serial})."),
                    ],
                ),
            };
            (subject.to_owned(), body.to_vec())
        }
        (EmailEvent::CertificateReleased, _) => {
            let (kind, serial) = (kind(lang, s(&p, "kind")), s(&p, "serial"));
            let at = date(s(&p, "released_at"));
            let (subject, body) = match lang {
                "kk" => (
                    "Сертификатыңыздың қолданысы қалпына келтірілді",
                    [
                        format!("{} сертификатыңыздың (сериялық нөмірі {serial}) қолданысы {at} кезінде қалпына келтірілді.", capitalized(kind)),
                        "Сертификаттарды тексеретін қызметтер оны қайтадан қабылдайды. Оны бұрынғы кілттермен және файлдармен пайдалана беріңіз: сізге ештеңе істеудің қажеті жоқ.".to_owned(),
                        "Мұны күтпеген болсаңыз, куәландырушы орталыққа хабарласыңыз.".to_owned(),
                    ],
                ),
                "ru" => (
                    "Действие вашего сертификата возобновлено",
                    [
                        format!("Действие вашего сертификата {kind} с серийным номером {serial} возобновлено {at}."),
                        "Службы, проверяющие сертификаты, снова его принимают. Пользуйтесь им с прежними ключами и файлами: ничего делать не нужно.".to_owned(),
                        "Если вы этого не ожидали, обратитесь в удостоверяющий центр.".to_owned(),
                    ],
                ),
                _ => (
                    "Your certificate is valid again",
                    [
                        format!("The suspension of your {kind} certificate with serial number {serial} was lifted on {at}."),
                        "Services that check certificates accept it again. Keep using it with the same keys and files: there is nothing you need to do.".to_owned(),
                        "If you did not expect this, contact the certification authority.".to_owned(),
                    ],
                ),
            };
            (subject.to_owned(), body.to_vec())
        }
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
                        format!("{} сертификатыңыздың (сериялық нөмірі {serial}) жарамдылық мерзімі {until} күні аяқталады.", capitalized(kind)),
                        "Мерзім аяқталғанға дейін кілттеріңізді жеке кабинетте (немесе tamga-enroll reissue командасымен) қолданыстағы кілттеріңіз арқылы, жеке басыңызды қайта растамай-ақ қайта шығара аласыз.".to_owned(),
                        "Бұл мерзімнен кейін сертификат жарамсыз болады, ал жаңа сертификаттар алу үшін Digital ID арқылы жеке басыңызды қайтадан толық растау қажет болады.".to_owned(),
                    ],
                ),
                "ru" => (
                    format!("Срок действия сертификата истекает через {days} дн."),
                    [
                        format!("Срок действия вашего сертификата {kind} с серийным номером {serial} истекает {until}."),
                        "До этой даты вы можете перевыпустить ключи в личном кабинете, подтвердив запрос действующими ключами (или командой tamga-enroll reissue), без повторной проверки личности.".to_owned(),
                        "После этой даты сертификат перестанет действовать, и для новых сертификатов придётся снова пройти полную проверку личности через Digital ID.".to_owned(),
                    ],
                ),
                _ => (
                    format!("Your certificate expires in {days} days"),
                    [
                        format!("Your {kind} certificate with serial number {serial} expires on {until}."),
                        "Until that date you can re-issue your keys with the current ones from your personal cabinet (or with the command tamga-enroll reissue), without confirming your identity again.".to_owned(),
                        "After that date the certificate can no longer be used, and new certificates need the full identification with Digital ID again.".to_owned(),
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
