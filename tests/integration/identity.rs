//! Hostile identities and addresses against a running `tamga serve`: impossible birth dates,
//! a sex the IIN contradicts, a token that expires before it was issued, invisible and
//! bidirectional characters in names (refused), a name mixing scripts (sent to an operator
//! with the reason), invalid e-mail addresses (refused) and an internationalised domain
//! (issued with its A-label in the certificate and the message).

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use tamga::digital_id::{self, Claims};

use crate::enroll::{body, claims, csr, fresh_iin, Env};
use crate::support::{openssl, run, tamga, text};

/// POST an application and expect the refusal `status`/`code`, nothing written; the problem.
fn refused(env: &Env, token: &str, body: &Value, status: u16, code: &str) -> Value {
    let before = env.counts();
    let (got, problem) = env.post(Some(token), body);
    assert_eq!(
        (got, problem["code"].as_str()),
        (status, Some(code)),
        "{problem}"
    );
    assert_eq!(env.counts(), before, "{code} must leave nothing written");
    problem
}

/// An IIN with a valid check digit for `yymmdd` and century digit `c`.
fn iin_born(yymmdd: &str, c: u8) -> String {
    (0..10_000u32)
        .map(|n| format!("{yymmdd}{c}{n:04}"))
        .find_map(|p| digital_id::iin_check_digit(&p).map(|d| format!("{p}{d}")))
        .unwrap()
}

/// Claims for an IIN that does not parse today (so `claims()` cannot be used).
fn claims_for(iin: &str, birth: chrono::NaiveDate, sex: &str) -> Claims {
    let mut c = claims(&fresh_iin());
    c.sub = iin.to_owned();
    c.identity.birth_date = birth;
    c.identity.sex = sex.to_owned();
    c
}

#[test]
fn hostile_identities_and_addresses_are_refused_with_precise_codes() {
    let env = Env::sqlite();
    let dir = env.dir();
    let (auth, sign) = ec_csrs(dir, &[]);
    let good = body(&auth, &sign, None);
    let date = |y, m, d| chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap();

    // Item 7: valid check digits, impossible birth dates.
    for (iin, birth, sex, why) in [
        (
            iin_born("991231", 5),
            date(2099, 12, 31),
            "M",
            "in the future",
        ),
        (
            iin_born("300101", 6),
            date(2030, 1, 1),
            "F",
            "in the future",
        ),
        (iin_born("000101", 1), date(1800, 1, 1), "M", "before 1900"),
    ] {
        let token = env.minted(&claims_for(&iin, birth, sex));
        let problem = refused(&env, &token, &good, 422, "iin_invalid");
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(why), "{iin}: {detail}");
    }
    // A woman's sex on a man's IIN (century digit 3).
    let mut c = claims(&fresh_iin());
    c.identity.sex = "F".into();
    let problem = refused(&env, &env.minted(&c), &good, 422, "iin_invalid");
    assert!(
        problem["detail"].as_str().unwrap().contains("sex"),
        "{problem}"
    );

    // Item 10: exp before iat, both within the clock allowance.
    let mut c = claims(&fresh_iin());
    let now = chrono::Utc::now().timestamp();
    (c.iat, c.nbf, c.exp) = (now + 20, None, now - 10);
    refused(
        &env,
        &env.minted(&c),
        &good,
        401,
        "consent_token_lifetime_invalid",
    );

    // Item 8: every listed invisible, bidirectional, separator, private-use and
    // noncharacter code point, in each name claim, refused with the code point named.
    let hostile = [
        '\u{202E}', '\u{200B}', '\u{2028}', '\u{FEFF}', '\u{200F}', '\u{2066}', '\u{FFFE}',
        '\u{E000}', '\u{00AD}',
    ];
    for (i, ch) in hostile.into_iter().enumerate() {
        let mut c = claims(&fresh_iin());
        let named = format!("ИВА{ch}НОВ");
        let claim = match i % 3 {
            0 => {
                c.identity.surname = named;
                "surname"
            }
            1 => {
                c.identity.name = named;
                "name"
            }
            _ => {
                c.identity.patronymic = Some(named);
                "patronymic"
            }
        };
        let problem = refused(&env, &env.minted(&c), &good, 422, "name_invalid");
        let detail = problem["detail"].as_str().unwrap();
        let cp = format!("U+{:04X}", u32::from(ch));
        assert!(
            detail.contains(&cp) && detail.contains(claim),
            "{cp} in {claim}: {detail}"
        );
    }

    // Item 9: addresses that are not dot-atom mailboxes, and a non-ASCII local part.
    let token = env.minted(&claims(&fresh_iin()));
    for email in [
        "a,b@x.kz",
        "a\"b@x.kz",
        ".a@x.kz",
        "a..b@x.kz",
        "a<b@x.kz",
        "a b@x.kz",
        "a@x_y.kz",
        "a@[127.0.0.1]",
        "a@b@x.kz",
    ] {
        refused(
            &env,
            &token,
            &body(&auth, &sign, Some(email)),
            422,
            "email_invalid",
        );
    }
    let problem = refused(
        &env,
        &token,
        &body(&auth, &sign, Some("иван@пример.қаз")),
        422,
        "email_invalid",
    );
    assert!(
        problem["detail"].as_str().unwrap().contains("SMTPUTF8"),
        "{problem}"
    );
}

#[test]
fn a_surname_mixing_scripts_waits_for_an_operator_with_the_reason() {
    let env = Env::sqlite();
    let dir = env.dir();
    let (auth, sign) = ec_csrs(dir, &[]);
    let mut c = claims(&fresh_iin());
    // A Latin A (U+0041) inside a Cyrillic surname; Digital ID's checks all passed.
    c.identity.surname = "ИВAНОВ".into();
    let (status, created) = env.post(Some(&env.minted(&c)), &body(&auth, &sign, None));
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["status"], "pending_review");
    let id = created["id"].as_str().unwrap().to_owned();

    let out = run(tamga(dir).args(["applications", "show", &id, "--json"]));
    assert!(out.status.success(), "{}", text(&out));
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    let reasons = shown["review_reasons"].as_array().unwrap();
    assert_eq!(reasons.len(), 1, "{shown}");
    let reason = reasons[0].as_str().unwrap();
    assert!(
        reason.contains("identity.surname") && reason.contains("U+0041"),
        "{reason}"
    );
    // The operator's queue shows it too.
    let out = run(tamga(dir).args(["applications", "list", "--status", "pending_review"]));
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("U+0041"), "{}", text(&out));
    // A name in one script is issued at once, as before.
    let (auth, sign) = ec_csrs(dir, &[]);
    let (status, created) = env.post(
        Some(&env.minted(&claims(&fresh_iin()))),
        &body(&auth, &sign, None),
    );
    assert_eq!((status, created["status"].as_str()), (201, Some("issued")));
}

/// An AUTH and a SIGN CSR for new EC keys, the SIGN one made with the `openssl req`
/// arguments `sign_extra`.
fn ec_csrs(dir: &Path, sign_extra: &[&str]) -> (String, String) {
    let (auth, _) = csr(dir, "ec", &[]);
    let (sign, _) = csr(dir, "ec", sign_extra);
    (auth, sign)
}

/// An AUTH CSR, and a SIGN CSR asking for `mailbox` as its e-mail address.
fn csrs_naming_mailbox(dir: &Path, mailbox: &str) -> (String, String) {
    ec_csrs(
        dir,
        &["-addext", &format!("subjectAltName=email:{mailbox}")],
    )
}

#[test]
fn an_internationalised_domain_is_certified_and_mailed_as_its_a_label() {
    let env = Env::sqlite();
    let dir = env.dir();
    // The CSR asks for the A-label form, the form gives the U-label: the same mailbox.
    let (auth, sign) = csrs_naming_mailbox(dir, "ivan@xn--e1afmkfd.kz");
    let token = env.minted(&claims(&fresh_iin()));
    let (status, created) = env.post(Some(&token), &body(&auth, &sign, Some("ivan@пример.kz")));
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["status"], "issued");
    for cert in created["certificates"].as_array().unwrap() {
        let file = format!("{}.pem", cert["kind"].as_str().unwrap());
        std::fs::write(dir.join(&file), cert["pem"].as_str().unwrap()).unwrap();
        let shown = openssl(
            dir,
            &["x509", "-in", &file, "-noout", "-ext", "subjectAltName"],
        );
        assert!(shown.contains("email:ivan@xn--e1afmkfd.kz"), "{shown}");
    }
    // The outbox row and the .eml file carry the A-label too.
    let out = run(tamga(dir).args(["outbox", "list", "--json"]));
    assert!(out.status.success(), "{}", text(&out));
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    let recipients: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["recipient"].as_str())
        .collect();
    assert_eq!(recipients, ["ivan@xn--e1afmkfd.kz"], "{rows}");
    let mail = dir.join("data/mail");
    let deadline = Instant::now() + Duration::from_secs(15);
    let eml = loop {
        let found: Vec<_> = std::fs::read_dir(&mail)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        if let Some(f) = found.first() {
            break std::fs::read_to_string(f).unwrap();
        }
        assert!(Instant::now() < deadline, "no .eml in {}", mail.display());
        std::thread::sleep(Duration::from_millis(200));
    };
    let to = eml
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("to:"))
        .unwrap_or_default();
    assert!(to.contains("ivan@xn--e1afmkfd.kz"), "{to}");

    // A CSR asking for another mailbox is still refused.
    let (auth, sign) = csrs_naming_mailbox(dir, "ivan@xn--80awbu3c.kz");
    let token = env.minted(&claims(&fresh_iin()));
    refused(
        &env,
        &token,
        &body(&auth, &sign, Some("ivan@пример.kz")),
        422,
        "csr_email_mismatch",
    );
}
