//! Enrollment over HTTP against a running `tamga serve`: consent tokens from
//! `tamga dev consent-token`, CSRs from `openssl req`, certificates checked with `openssl
//! verify`, `openssl x509 -text` and pkilint; every refusal code, each leaving nothing
//! written; concurrency; and both flows on SQLite and PostgreSQL.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use tamga::config::{DatabaseConfig, DatabaseUrl};
use tamga::digital_id::{
    self, Audience, Claims, Document, Identity, Verification, VerificationMethod,
};
use tamga::store::{BlockedKey, Store, TableCounts};

use crate::support::{
    client, openssl, post_json, postgres_url, run, softhsm_available, softhsm_hierarchy, tamga,
    text, tool_present, verify_chain, x509_text, PgDatabase, Server,
};

const AGREEMENT: &str = "2026-1";
const ISSUER: &str = "https://digitalid.dev.tamga.local";
const AUDIENCE: &str = "tamga";

/// A running server with its working directory and a store handle on the same database.
pub struct Env {
    pub server: Server,
    pub store: Store,
    pub _dir_guard: tempfile::TempDir,
    pub db: Option<PgDatabase>,
}

impl Env {
    pub fn sqlite() -> Env {
        Env::sqlite_with(&[])
    }

    pub fn sqlite_with(env: &[(&str, &str)]) -> Env {
        Env::sqlite_in(tempfile::tempdir().unwrap(), env)
    }

    /// Keys in a SoftHSM2 token (see `support::softhsm_hierarchy`), or `None` when SoftHSM2
    /// is missing and the test was reported skipped.
    pub fn sqlite_softhsm(test: &str, ca: &str, env: &[(&str, &str)]) -> Option<Env> {
        if !softhsm_available(test) {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        softhsm_hierarchy(dir.path(), ca);
        Some(Env::sqlite_in(dir, env))
    }

    /// A server in the working directory `dir`, on SQLite.
    pub fn sqlite_in(dir: tempfile::TempDir, env: &[(&str, &str)]) -> Env {
        let server = Server::start(dir.path(), env);
        let url = DatabaseUrl::Sqlite(dir.path().join("data/tamga.db"));
        let store = Store::open(&url, &DatabaseConfig::default()).unwrap();
        Env {
            server,
            store,
            _dir_guard: dir,
            db: None,
        }
    }

    pub fn postgres(admin: &str) -> Env {
        Env::postgres_with(admin, &[])
    }

    pub fn postgres_with(admin: &str, env: &[(&str, &str)]) -> Env {
        let db = PgDatabase::create(admin);
        let dir = tempfile::tempdir().unwrap();
        let mut all = vec![("TAMGA_DATABASE__URL", db.url.as_str())];
        all.extend_from_slice(env);
        let server = Server::start(dir.path(), &all);
        let url = DatabaseUrl::Postgres(db.url.clone());
        let store = Store::open(&url, &DatabaseConfig::default()).unwrap();
        Env {
            server,
            store,
            _dir_guard: dir,
            db: Some(db),
        }
    }

    /// A server on a fresh PostgreSQL database, or `None` when `TAMGA_TEST_POSTGRES_URL` is not
    /// set and `test` was reported skipped.
    pub fn postgres_for(test: &str) -> Option<Env> {
        postgres_url(test).map(|admin| Env::postgres(&admin))
    }

    /// A second `tamga serve` on this PostgreSQL database, in a new working directory holding
    /// a copy of this one's CA hierarchy (`certs-dev`), with `env` added to its environment.
    /// The directory is returned with it: it must outlive the server.
    pub fn second_instance(&self, env: &[(&str, &str)]) -> (tempfile::TempDir, Server) {
        let url = &self.db.as_ref().expect("an Env on PostgreSQL").url;
        let dir = tempfile::tempdir().unwrap();
        let (from, to) = (self.dir().join("certs-dev"), dir.path().join("certs-dev"));
        std::fs::create_dir_all(&to).unwrap();
        for entry in std::fs::read_dir(&from).unwrap() {
            let name = entry.unwrap().file_name();
            std::fs::copy(from.join(&name), to.join(&name)).unwrap();
        }
        let mut all = vec![("TAMGA_DATABASE__URL", url.as_str())];
        all.extend_from_slice(env);
        let server = Server::start(dir.path(), &all);
        (dir, server)
    }

    /// Take the environment apart, to stop or restart its server while the store, the working
    /// directory and the database live on: (server, store, directory, database).
    pub fn into_parts(self) -> (Server, Store, tempfile::TempDir, Option<PgDatabase>) {
        (self.server, self.store, self._dir_guard, self.db)
    }

    /// A new holder enrolled at once (an RSA 2048 AUTH key, an EC SIGN key, `email` if any);
    /// returns (IIN, the application JSON).
    pub fn enroll_holder(&self, email: Option<&str>) -> (String, Value) {
        let dir = self.dir();
        let iin = fresh_iin();
        let (a, _) = csr(dir, "rsa:2048", &[]);
        let (s, _) = csr(dir, "ec", &[]);
        let (status, created) = self.post(Some(&self.minted(&claims(&iin))), &body(&a, &s, email));
        assert_eq!(status, 201, "{created}");
        (iin, created)
    }

    pub fn dir(&self) -> &Path {
        &self.server.dir
    }

    /// A consent token of the holder `iin` for revoking (purpose `eds_revocation`).
    pub fn revocation_token(&self, iin: &str) -> String {
        let mut c = claims(iin);
        c.purpose = "eds_revocation".into();
        self.minted(&c)
    }

    /// The holder `iin` asks, through the API, to revoke `serial` for `reason`.
    pub fn revoke_as_holder(
        &self,
        iin: &str,
        serial: &str,
        reason: &str,
    ) -> reqwest::blocking::Response {
        post_json(
            &format!("{}/api/v1/revocations", self.server.base),
            &self.revocation_token(iin),
            &json!({"serial": serial, "reason": reason}),
        )
    }

    pub fn counts(&self) -> TableCounts {
        self.store.read(|tx| tx.table_counts()).unwrap()
    }

    /// A token from the real `tamga dev consent-token` command.
    pub fn cli_token(&self, iin: &str, extra: &[&str]) -> String {
        let out = run(tamga(self.dir())
            .args([
                "dev",
                "consent-token",
                "--iin",
                iin,
                "--surname",
                "ӘБІЛҚАСЫМОВА",
                "--name",
                "АЙГҮЛ",
                "--patronymic",
                "НҰРЛАНҚЫЗЫ",
            ])
            .args(extra));
        assert!(out.status.success(), "{}", text(&out));
        let token = String::from_utf8(out.stdout).unwrap();
        assert_eq!(
            token.lines().count(),
            1,
            "only the token on stdout: {token}"
        );
        token.trim().to_owned()
    }

    /// A token minted in-process with the development key, from any claims.
    pub fn minted(&self, claims: &Claims) -> String {
        let key =
            digital_id::read_signing_key(&self.dir().join("certs-dev/digital_id_dev.key.pem"))
                .unwrap();
        digital_id::mint_es256(&key, claims).unwrap()
    }

    pub fn post(&self, token: Option<&str>, body: &Value) -> (u16, Value) {
        let mut req = client()
            .post(format!("{}/api/v1/applications", self.server.base))
            .json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().unwrap();
        let status = resp.status().as_u16();
        if status >= 400 {
            assert_eq!(
                resp.headers()["content-type"].to_str().unwrap(),
                "application/problem+json"
            );
        }
        (status, resp.json().unwrap())
    }

    pub fn get(&self, id: &str, token: &str) -> (u16, Value) {
        let resp = client()
            .get(format!("{}/api/v1/applications/{id}", self.server.base))
            .bearer_auth(token)
            .send()
            .unwrap();
        (resp.status().as_u16(), resp.json().unwrap())
    }
}

static IIN_SEQ: AtomicU32 = AtomicU32::new(1);

/// A fresh valid IIN (born 1990-01-01 … , serial digits vary).
pub fn fresh_iin() -> String {
    loop {
        let n = IIN_SEQ.fetch_add(1, Ordering::SeqCst);
        let first11 = format!("9001013{:04}", n % 10_000);
        if let Some(d) = digital_id::iin_check_digit(&first11) {
            return format!("{first11}{d}");
        }
    }
}

pub fn claims(iin: &str) -> Claims {
    let now = chrono::Utc::now().timestamp();
    let parsed = digital_id::Iin::parse(iin, chrono::Utc::now()).unwrap();
    Claims {
        iss: ISSUER.into(),
        aud: Audience::One(AUDIENCE.into()),
        sub: iin.into(),
        jti: uuid::Uuid::new_v4().to_string(),
        iat: now,
        nbf: Some(now),
        exp: now + 300,
        purpose: "eds_issuance".into(),
        identity: Identity {
            surname: "ТЕСТОВ".into(),
            name: "ТЕСТ".into(),
            patronymic: None,
            birth_date: parsed.birth_date(),
            sex: parsed.sex().into(),
            document: Document {
                kind: "id_card".into(),
                number: "012345678".into(),
                expires: chrono::NaiveDate::from_ymd_opt(2031, 1, 1).unwrap(),
            },
        },
        verification: Verification {
            method: VerificationMethod::DigitalIdBiometric,
            liveness: true,
            register_match: true,
        },
    }
}

static CSR_SEQ: AtomicU32 = AtomicU32::new(1);

/// A CSR made by `openssl req` with a new key of `newkey` (e.g. `rsa:2048`, `ec`), plus any
/// extra `openssl req` arguments. Returns (csr PEM, key path).
pub fn csr(dir: &Path, newkey: &str, extra: &[&str]) -> (String, PathBuf) {
    let n = CSR_SEQ.fetch_add(1, Ordering::SeqCst);
    let key = dir.join(format!("k{n}.pem"));
    let out = dir.join(format!("r{n}.csr"));
    let mut args: Vec<String> = vec!["req".into(), "-new".into(), "-nodes".into()];
    match newkey {
        "ec" => args.extend([
            "-newkey".into(),
            "ec".into(),
            "-pkeyopt".into(),
            "ec_paramgen_curve:P-256".into(),
        ]),
        other => args.extend(["-newkey".into(), other.into()]),
    }
    args.extend([
        "-keyout".into(),
        key.display().to_string(),
        "-out".into(),
        out.display().to_string(),
        "-subj".into(),
        "/CN=Requested Name Is Ignored/O=Evil".into(),
    ]);
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    openssl(dir, &refs);
    (std::fs::read_to_string(&out).unwrap(), key)
}

/// A CSR for an existing key file.
pub fn csr_for_key(dir: &Path, key: &Path) -> String {
    let n = CSR_SEQ.fetch_add(1, Ordering::SeqCst);
    let out = dir.join(format!("r{n}.csr"));
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-key",
            &key.display().to_string(),
            "-subj",
            "/CN=x",
            "-out",
            &out.display().to_string(),
        ],
    );
    std::fs::read_to_string(out).unwrap()
}

pub fn body(auth: &str, sign: &str, email: Option<&str>) -> Value {
    let mut b = json!({
        "agreement_version": AGREEMENT,
        "agreement_accepted": true,
        "language": "kk",
        "storage": "pkcs12",
        "csrs": {"auth": auth, "sign": sign},
    });
    if let Some(e) = email {
        b["email"] = json!(e);
    }
    b
}

/// The extension names `openssl x509 -text` prints, in order.
pub fn extension_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        if line.trim_start().starts_with("X509v3 extensions:") {
            inside = true;
            continue;
        }
        if inside && line.starts_with("    Signature Algorithm") {
            break;
        }
        if inside && line.starts_with("            ") && !line.starts_with("             ") {
            names.push(line.trim().trim_end_matches(':').trim().to_owned());
        }
    }
    names
}

/// `cert_text` (`openssl x509 -text`) has exactly the extensions of the real NCA test
/// certificate of `kind` (auth or sign), in its order, plus the e-mail subjectAltName.
pub fn assert_reference_extensions(dir: &Path, cert_text: &str, kind: &str) {
    let reference_file = format!(
        "{}/tests/data/nca-test-2020/{kind}.pem",
        env!("CARGO_MANIFEST_DIR")
    );
    let reference = x509_text(dir, &reference_file);
    let mut expected = extension_names(&reference);
    expected.push("X509v3 Subject Alternative Name".to_owned());
    assert_eq!(extension_names(cert_text), expected, "{kind}: {cert_text}");
}

pub fn lint(dir: &Path, pem_file: &str) {
    lint_with(dir, "lint_pkix_cert", &["lint", "-s", "WARNING", pem_file]);
}

/// Run a pkilint command; exit 0 means it loaded the document and found nothing at WARNING or
/// above.
pub fn lint_with(dir: &Path, tool: &str, args: &[&str]) {
    let installed = Command::new(tool).arg("--help").output().is_ok();
    let missing = format!("{tool} is not installed (pip install pkilint)");
    if !tool_present(
        installed,
        "TAMGA_TEST_REQUIRE_PKILINT",
        "pkilint check",
        &missing,
    ) {
        return;
    }
    let out = Command::new(tool)
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    // 0: loaded, nothing at WARNING or above. Accepted findings: none.
    assert_eq!(
        out.status.code(),
        Some(0),
        "{tool} {}: {}",
        args.join(" "),
        text(&out)
    );
}

/// The whole journey, issued at once and pending review, checked with the openssl CLI.
pub fn both_flows(env: &Env) {
    let dir = env.dir();
    let iin = fresh_iin();
    let token = env.cli_token(&iin, &[]);
    let (auth_csr, _) = csr(dir, "rsa:2048", &[]);
    let (sign_csr, _) = csr(
        dir,
        "ec",
        &["-addext", "subjectAltName=email:Aigul@Example.kz"],
    );
    let before = env.counts();
    let (status, created) = env.post(
        Some(&token),
        &body(&auth_csr, &sign_csr, Some("aigul@example.kz")),
    );
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["status"], "issued");
    let certs = created["certificates"].as_array().unwrap();
    assert_eq!(certs.len(), 2);
    let after = env.counts();
    assert_eq!(after.applications, before.applications + 1);
    assert_eq!(after.certificates, before.certificates + 2);
    assert_eq!(after.used_consent_tokens, before.used_consent_tokens + 1);

    std::fs::write(
        dir.join("chain.pem"),
        created["chain_pem"].as_str().unwrap(),
    )
    .unwrap();
    for cert in certs {
        let kind = cert["kind"].as_str().unwrap();
        let file = format!("{kind}.pem");
        std::fs::write(dir.join(&file), cert["pem"].as_str().unwrap()).unwrap();
        let verified = verify_chain(dir, "chain.pem", &[&file]);
        assert!(verified.contains(": OK"), "{verified}");
        let shown = openssl(
            dir,
            &[
                "x509",
                "-in",
                &file,
                "-noout",
                "-text",
                "-nameopt",
                "utf8",
                "-certopt",
                "ext_parse",
            ],
        );
        let serial = cert["serial"].as_str().unwrap();
        assert_eq!(serial.len(), 32, "128-bit serial: {serial}");
        assert!(serial
            .chars()
            .all(|c| c.is_ascii_digit() || ('A'..='F').contains(&c)));
        assert!(
            shown.contains(&format!("Subject: CN=ӘБІЛҚАСЫМОВА АЙГҮЛ, SN=ӘБІЛҚАСЫМОВА, serialNumber=IIN{iin}, C=KZ, GN=НҰРЛАНҚЫЗЫ")),
            "{shown}"
        );
        assert!(
            !shown.contains("Requested Name") && !shown.contains("Evil"),
            "the CSR subject is ignored: {shown}"
        );
        assert_reference_extensions(dir, &shown, kind);
        assert!(shown.contains("email:aigul@example.kz"), "{shown}");
        let base = &env.server.base;
        assert!(
            shown.contains(&format!("URI:{base}/crl/nca_rsa_dev.crl")),
            "{shown}"
        );
        assert!(
            shown.contains(&format!("URI:{base}/crl/nca_rsa_dev-delta.crl")),
            "{shown}"
        );
        assert!(
            shown.contains(&format!("OCSP - URI:{base}/ocsp")),
            "{shown}"
        );
        assert!(
            shown.contains(&format!("CA Issuers - URI:{base}/ca/nca_rsa_dev.crt")),
            "{shown}"
        );
        assert!(shown.contains(&format!("CPS: {base}/cps")), "{shown}");
        assert!(
            shown.contains("Not Before: ") && shown.contains("Version: 3"),
            "{shown}"
        );
        match kind {
            "auth" => {
                assert!(
                    shown.contains("Digital Signature, Key Encipherment"),
                    "{shown}"
                );
                assert!(
                    shown.contains(
                        "TLS Web Client Authentication, 1.2.398.3.3.4.1.1, 1.2.398.3.3.4.3.2.1"
                    ),
                    "{shown}"
                );
                assert!(shown.contains("Policy: 1.2.398.3.3.2.4"), "{shown}");
                assert!(shown.contains("Public-Key: (2048 bit)"), "{shown}");
            }
            "sign" => {
                assert!(
                    shown.contains("Digital Signature, Non Repudiation"),
                    "{shown}"
                );
                assert!(
                    shown.contains("E-mail Protection, 1.2.398.3.3.4.1.1, 1.2.398.3.3.4.3.2.1"),
                    "{shown}"
                );
                assert!(shown.contains("Policy: 1.2.398.3.3.2.3"), "{shown}");
                assert!(shown.contains("NIST CURVE: P-256"), "{shown}");
            }
            other => panic!("unexpected kind {other}"),
        }
        // UTCTime validity, one year for pkcs12 storage.
        let asn1 = openssl(dir, &["asn1parse", "-in", &file]);
        assert!(asn1.matches("UTCTIME").count() >= 2, "{asn1}");
        let nb =
            chrono::DateTime::parse_from_rfc3339(cert["not_before"].as_str().unwrap()).unwrap();
        let na = chrono::DateTime::parse_from_rfc3339(cert["not_after"].as_str().unwrap()).unwrap();
        assert_eq!((na - nb).num_days(), 365);
        lint(dir, &file);
    }

    // The holder reads it back with the access token.
    let id = created["id"].as_str().unwrap();
    let (status, read) = env.get(id, created["access_token"].as_str().unwrap());
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["status"], "issued");
    assert_eq!(read["certificates"], created["certificates"]);
    assert!(
        read.get("access_token").is_none(),
        "the access token is shown once"
    );

    // Pending review: Digital ID did not confirm liveness. Hardware storage: 3 years.
    let token = env.cli_token(&fresh_iin(), &["--liveness", "false"]);
    let (a, _) = csr(dir, "ec", &[]);
    let (s, _) = csr(dir, "rsa:3072", &[]);
    let mut pending_body = body(&a, &s, None);
    pending_body["storage"] = json!("id_card");
    pending_body["language"] = json!("ru");
    let before = env.counts();
    let (status, pending) = env.post(Some(&token), &pending_body);
    assert_eq!(status, 201, "{pending}");
    assert_eq!(pending["status"], "pending_review");
    assert_eq!(pending["certificates"], json!([]));
    assert!(pending.get("chain_pem").is_none());
    let after = env.counts();
    assert_eq!(after.applications, before.applications + 1);
    assert_eq!(
        after.certificates, before.certificates,
        "nothing issued before review"
    );
    let (status, read) = env.get(
        pending["id"].as_str().unwrap(),
        pending["access_token"].as_str().unwrap(),
    );
    assert_eq!(
        (status, read["status"].as_str()),
        (200, Some("pending_review"))
    );
    let stored = env
        .store
        .read(|tx| tx.application(pending["id"].as_str().unwrap()))
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            stored.storage.as_str(),
            stored.language.as_str(),
            stored.liveness
        ),
        ("id_card", "ru", false)
    );
    assert!(
        !stored.auth_csr.is_empty() && !stored.sign_csr.is_empty(),
        "the CSRs are kept for the operator"
    );

    let metrics = env.server.get("/metrics").text().unwrap();
    assert!(
        metrics.contains(r#"tamga_applications_total{outcome="issued"}"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"tamga_applications_total{outcome="pending_review"}"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"tamga_certificates_issued_total{kind="auth"}"#),
        "{metrics}"
    );
    assert!(tamga::audit::verify(&env.store).is_ok());
}

#[test]
fn enrollment_on_sqlite() {
    both_flows(&Env::sqlite());
}

#[test]
fn enrollment_on_postgres() {
    if let Some(env) = Env::postgres_for("enrollment_on_postgres") {
        both_flows(&env);
    }
}

/// Assert a refusal with `status` and `code`, and that the request wrote nothing.
fn refused(env: &Env, token: Option<&str>, body: &Value, status: u16, code: &str) {
    let before = env.counts();
    let (got, problem) = env.post(token, body);
    assert_eq!(
        (got, problem["code"].as_str()),
        (status, Some(code)),
        "{problem}"
    );
    assert_eq!(problem["status"], status);
    assert!(problem["type"].as_str().unwrap().ends_with(code));
    assert_eq!(env.counts(), before, "{code} must leave nothing written");
}

fn sign_header(env: &Env, header: &Value, claims: &Claims) -> String {
    // Re-use the minted signature machinery, then swap the header: the signature no longer
    // covers it, but header checks come first.
    let token = env.minted(claims);
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[0] = URL_SAFE_NO_PAD.encode(header.to_string());
    parts.join(".")
}

#[test]
fn every_refusal_has_its_code_and_writes_nothing() {
    let env = Env::sqlite();
    let dir = env.dir();
    let (auth, auth_key) = csr(dir, "rsa:2048", &[]);
    let (sign, _) = csr(dir, "ec", &[]);
    let good = body(&auth, &sign, Some("a@example.kz"));
    let iin = fresh_iin();
    let token = |c: &Claims| env.minted(c);

    refused(&env, None, &good, 401, "consent_token_missing");
    refused(
        &env,
        Some("not.a-token"),
        &good,
        401,
        "consent_token_malformed",
    );
    let mut tampered: Vec<String> = token(&claims(&iin)).split('.').map(str::to_owned).collect();
    let mut forged = claims(&iin);
    forged.identity.surname = "БАСҚА".into();
    tampered[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
    refused(
        &env,
        Some(&tampered.join(".")),
        &good,
        401,
        "consent_token_signature_invalid",
    );
    let stranger = openssl::pkey::PKey::from_ec_key(
        openssl::ec::EcKey::generate(
            &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    refused(
        &env,
        Some(&digital_id::mint_es256(&stranger, &claims(&iin)).unwrap()),
        &good,
        401,
        "consent_token_untrusted_key",
    );
    let kid = token(&claims(&iin));
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(kid.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    refused(
        &env,
        Some(&sign_header(
            &env,
            &json!({"alg": "HS256", "kid": header["kid"]}),
            &claims(&iin),
        )),
        &good,
        401,
        "consent_token_algorithm_not_allowed",
    );
    refused(
        &env,
        Some(&sign_header(&env, &json!({"alg": "none"}), &claims(&iin))),
        &good,
        401,
        "consent_token_algorithm_not_allowed",
    );
    let now = chrono::Utc::now().timestamp();
    let mut c = claims(&iin);
    (c.iat, c.nbf, c.exp) = (now - 600, Some(now - 600), now - 120);
    refused(&env, Some(&token(&c)), &good, 401, "consent_token_expired");
    let mut c = claims(&iin);
    (c.iat, c.nbf, c.exp) = (now + 300, Some(now + 300), now + 600);
    refused(
        &env,
        Some(&token(&c)),
        &good,
        401,
        "consent_token_not_yet_valid",
    );
    // From the CLI too: a 20-minute token.
    refused(
        &env,
        Some(&env.cli_token(&iin, &["--ttl", "1200"])),
        &good,
        401,
        "consent_token_lifetime_too_long",
    );
    let mut c = claims(&iin);
    c.aud = Audience::One("another-ca".into());
    refused(
        &env,
        Some(&token(&c)),
        &good,
        401,
        "consent_token_wrong_audience",
    );
    let mut c = claims(&iin);
    c.iss = "https://digitalid.example".into();
    refused(
        &env,
        Some(&token(&c)),
        &good,
        401,
        "consent_token_wrong_issuer",
    );
    refused(
        &env,
        Some(&env.cli_token(&iin, &["--purpose", "eds_revocation"])),
        &good,
        403,
        "consent_token_wrong_purpose",
    );
    let mut c = claims(&iin);
    c.sub = format!(
        "{}{}",
        &iin[..11],
        (iin[11..].parse::<u32>().unwrap() + 1) % 10
    );
    refused(&env, Some(&token(&c)), &good, 422, "iin_invalid");

    let t = |b: &Value, status: u16, code: &str| {
        refused(&env, Some(&token(&claims(&iin))), b, status, code)
    };
    let mut b = good.clone();
    b["agreement_accepted"] = json!(false);
    t(&b, 422, "agreement_not_accepted");
    let mut b = good.clone();
    b["agreement_version"] = json!("2019-4");
    t(&b, 422, "agreement_version_mismatch");
    let mut b = good.clone();
    b["email"] = json!("not an e-mail");
    t(&b, 422, "email_invalid");
    let mut b = good.clone();
    b["storage"] = json!("floppy");
    t(&b, 422, "storage_type_invalid");
    let mut b = good.clone();
    b["language"] = json!("de");
    t(&b, 422, "language_invalid");
    t(
        &json!({"agreement_version": AGREEMENT}),
        400,
        "request_malformed",
    );
    t(
        &body(
            "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----",
            &sign,
            None,
        ),
        400,
        "csr_malformed",
    );
    t(&body("bm90IGEgQ1NS", &sign, None), 400, "csr_malformed");
    // Flip a bit in the signature: the request still parses, the proof of possession fails.
    let bad_sig = {
        let path = dir.join("badsig.der");
        std::fs::write(dir.join("good.csr"), &auth).unwrap();
        openssl(
            dir,
            &[
                "req",
                "-in",
                "good.csr",
                "-outform",
                "DER",
                "-out",
                &path.display().to_string(),
            ],
        );
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01;
        base64::engine::general_purpose::STANDARD.encode(bytes)
    };
    t(&body(&bad_sig, &sign, None), 422, "csr_signature_invalid");
    let (ed, _) = csr(dir, "ed25519", &[]);
    t(&body(&ed, &sign, None), 422, "key_algorithm_not_allowed");
    let (k1, _) = csr(dir, "ec", &["-pkeyopt", "ec_paramgen_curve:secp256k1"]);
    t(&body(&k1, &sign, None), 422, "key_algorithm_not_allowed");
    let (small, _) = csr(dir, "rsa:1024", &[]);
    t(&body(&small, &sign, None), 422, "key_too_small");
    openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-pkeyopt",
            "rsa_keygen_pubexp:3",
            "-out",
            "e3.pem",
        ],
    );
    t(
        &body(&csr_for_key(dir, &dir.join("e3.pem")), &sign, None),
        422,
        "key_weak",
    );
    t(
        &body(&auth, &csr_for_key(dir, &auth_key), None),
        422,
        "same_key_for_auth_and_sign",
    );
    let (mismatch, _) = csr(
        dir,
        "ec",
        &["-addext", "subjectAltName=email:other@example.kz"],
    );
    t(
        &body(&auth, &mismatch, Some("a@example.kz")),
        422,
        "csr_email_mismatch",
    );
    t(&body(&auth, &mismatch, None), 422, "csr_email_mismatch");
    let mut huge = good.clone();
    huge["csrs"]["auth"] = json!("A".repeat(70 * 1024));
    t(&huge, 413, "body_too_large");

    // A successful application, then the same token again, and its keys again.
    let first = token(&claims(&iin));
    let (status, created) = env.post(Some(&first), &good);
    assert_eq!(status, 201, "{created}");
    // The very same request again (its answer lost on the way): the same application, 200,
    // under a new access token; only that change and its audit entry are written.
    let before_repeat = env.counts();
    let (status, repeated) = env.post(Some(&first), &good);
    assert_eq!(status, 200, "{repeated}");
    assert_eq!(repeated["id"], created["id"]);
    assert_eq!(repeated["certificates"], created["certificates"]);
    assert_ne!(repeated["access_token"], created["access_token"]);
    let after_repeat = env.counts();
    assert_eq!(
        after_repeat,
        TableCounts {
            audit_log: before_repeat.audit_log + 1,
            ..before_repeat
        }
    );
    let id = created["id"].as_str().unwrap();
    let (status, _) = env.get(id, created["access_token"].as_str().unwrap());
    assert_eq!(status, 401, "the lost access token no longer opens it");
    let (status, _) = env.get(id, repeated["access_token"].as_str().unwrap());
    assert_eq!(status, 200);
    // The same token with anything else is a replay.
    let (other_auth, _) = csr(dir, "ec", &[]);
    refused(
        &env,
        Some(&first),
        &body(&other_auth, &sign, Some("a@example.kz")),
        409,
        "consent_token_replayed",
    );
    refused(
        &env,
        Some(&first),
        &body(&auth, &sign, Some("b@example.kz")),
        409,
        "consent_token_replayed",
    );
    let (other_sign, _) = csr(dir, "ec", &[]);
    t(&body(&auth, &other_sign, None), 409, "key_reused");
    // A key blocked for compromise (the block written directly, as a revocation would).
    let (blocked_csr, blocked_key) = csr(dir, "ec", &[]);
    openssl(
        dir,
        &[
            "pkey",
            "-in",
            &blocked_key.display().to_string(),
            "-pubout",
            "-outform",
            "DER",
            "-out",
            "blocked.spki",
        ],
    );
    let digest = hex::encode(openssl::sha::sha256(
        &std::fs::read(dir.join("blocked.spki")).unwrap(),
    ));
    env.store
        .write(|tx| {
            tx.block_key(&BlockedKey {
                spki_sha256: digest.clone(),
                reason: "keyCompromise".into(),
                serial: None,
                created_at: chrono::Utc::now().naive_utc(),
            })
        })
        .unwrap();
    let (fresh_auth, _) = csr(dir, "ec", &[]);
    t(&body(&fresh_auth, &blocked_csr, None), 409, "key_blocked");

    // Reading applications.
    let id = created["id"].as_str().unwrap();
    let before = env.counts();
    let (status, problem) = env.get(id, "wrong-token");
    assert_eq!(
        (status, problem["code"].as_str()),
        (401, Some("access_token_invalid"))
    );
    let (status, problem) = env.get(&uuid::Uuid::new_v4().to_string(), "whatever");
    assert_eq!(
        (status, problem["code"].as_str()),
        (404, Some("application_not_found"))
    );
    let resp = client()
        .get(format!("{}/api/v1/applications/{id}", env.server.base))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(env.counts(), before);

    // Every code above is in the OpenAPI document, and every route too.
    let doc: Value = env.server.get("/api/v1/openapi.json").json().unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let codes = doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .unwrap();
    let metrics = env.server.get("/metrics").text().unwrap();
    for code in [
        "consent_token_missing",
        "consent_token_malformed",
        "consent_token_signature_invalid",
        "consent_token_untrusted_key",
        "consent_token_algorithm_not_allowed",
        "consent_token_expired",
        "consent_token_not_yet_valid",
        "consent_token_lifetime_too_long",
        "consent_token_wrong_audience",
        "consent_token_wrong_issuer",
        "consent_token_replayed",
        "consent_token_wrong_purpose",
        "iin_invalid",
        "agreement_not_accepted",
        "agreement_version_mismatch",
        "email_invalid",
        "storage_type_invalid",
        "csr_malformed",
        "csr_signature_invalid",
        "key_algorithm_not_allowed",
        "key_too_small",
        "key_weak",
        "key_reused",
        "key_blocked",
        "same_key_for_auth_and_sign",
        "body_too_large",
        "application_not_found",
        "access_token_invalid",
    ] {
        assert!(
            codes.contains(&json!(code)),
            "{code} missing from the OpenAPI document"
        );
        assert!(
            metrics.contains(&format!(r#"tamga_api_rejections_total{{code="{code}"}}"#)),
            "{code} not counted"
        );
    }
    for path in [
        "/api/v1/applications",
        "/api/v1/applications/{id}",
        "/api/v1/openapi.json",
        "/healthz",
        "/readyz",
        "/metrics",
        "/ca/{file}",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} missing from the OpenAPI document"
        );
    }
}

/// 50 applications at once with distinct tokens, and one token raced twice.
fn concurrency(env: &Env) {
    let dir = env.dir();
    let jobs: Vec<(String, Value)> = (0..50)
        .map(|_| {
            let (a, _) = csr(dir, "ec", &[]);
            let (s, _) = csr(dir, "ec", &[]);
            (env.minted(&claims(&fresh_iin())), body(&a, &s, None))
        })
        .collect();
    let results: Vec<(u16, Value)> = std::thread::scope(|scope| {
        let handles: Vec<_> = jobs
            .iter()
            .map(|(token, b)| scope.spawn(move || env.post(Some(token), b)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut serials = std::collections::HashSet::new();
    for (status, created) in &results {
        assert_eq!(*status, 201, "{created}");
        assert_eq!(created["status"], "issued");
        for c in created["certificates"].as_array().unwrap() {
            assert!(
                serials.insert(c["serial"].as_str().unwrap().to_owned()),
                "duplicate serial"
            );
        }
    }
    assert_eq!(serials.len(), 100);

    let token = env.minted(&claims(&fresh_iin()));
    let (a1, _) = csr(dir, "ec", &[]);
    let (s1, _) = csr(dir, "ec", &[]);
    let (a2, _) = csr(dir, "ec", &[]);
    let (s2, _) = csr(dir, "ec", &[]);
    let bodies = [body(&a1, &s1, None), body(&a2, &s2, None)];
    let before = env.counts();
    let outcomes: Vec<(u16, Value)> = std::thread::scope(|scope| {
        let handles: Vec<_> = bodies
            .iter()
            .map(|b| scope.spawn(|| env.post(Some(&token), b)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut statuses: Vec<u16> = outcomes.iter().map(|(s, _)| *s).collect();
    statuses.sort();
    assert_eq!(statuses, vec![201, 409], "{outcomes:?}");
    assert!(outcomes
        .iter()
        .any(|(_, v)| v["code"] == "consent_token_replayed"));
    let after = env.counts();
    assert_eq!(after.applications, before.applications + 1);
    assert_eq!(after.used_consent_tokens, before.used_consent_tokens + 1);
    assert!(tamga::audit::verify(&env.store).is_ok());
}

#[test]
fn concurrent_applications_on_sqlite() {
    concurrency(&Env::sqlite());
}

#[test]
fn concurrent_applications_on_postgres() {
    if let Some(env) = Env::postgres_for("concurrent_applications_on_postgres") {
        concurrency(&env);
    }
}

#[test]
fn dev_consent_token_refuses_outside_dev_mode_and_bad_iins() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(tamga(dir.path()).args(["ca", "init", "--dev"]));
    assert!(out.status.success(), "{}", text(&out));
    let args = [
        "dev",
        "consent-token",
        "--iin",
        "900101300007",
        "--surname",
        "A",
        "--name",
        "B",
    ];
    let out = run(tamga(dir.path()).args(args).env("TAMGA_MODE", "production"));
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(out.stdout.is_empty());
    assert!(text(&out).contains("mode = \"dev\""), "{}", text(&out));
    let out = run(tamga(dir.path()).args([
        "dev",
        "consent-token",
        "--iin",
        "900101300000",
        "--surname",
        "A",
        "--name",
        "B",
    ]));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("check digit"), "{}", text(&out));
    let out = run(tamga(dir.path()).args(args));
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .split('.')
            .count(),
        3
    );
}
