//! The holder's cabinet over HTTP (`/cabinet/api/…`) against a running `tamga serve`: a login
//! signed with the AUTH key over a single-use challenge, the holder's certificates, and the
//! re-issue of the pair under a confirmation signed with the SIGN key. The CMS signatures are
//! made by the `openssl cms` CLI (an independent implementation) and by the `openssl` crate,
//! and both are accepted. The old pair is checked `superseded` with `openssl ocsp` and in the
//! next full CRL, the new pair `good`, the identity unchanged whatever the CSRs claim; every
//! refusal has its code and writes nothing; a challenge is consumed once, also when raced from
//! several connections and across two instances on one PostgreSQL.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Barrier};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{Duration, Utc};
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::{X509Builder, X509NameBuilder, X509ReqBuilder, X509};
use serde_json::{json, Value};
use tamga::api::types::{CONFIRMATION_HEADER, CONSENT_HEADER};
use tamga::store::TableCounts;

use crate::enroll::{body, claims, fresh_iin, Env};
use crate::support::{client, openssl as openssl_cli, postgres_url, run, tamga, text};

/// The development issuing CA's id (CRL file names).
const ISSUER: &str = "nca_rsa_dev";

/// A session token of the usual shape (43 base64url characters) that the server never made.
const MADE_UP_SESSION: &str = "q2Vk3Zl0m1pQyR8sTuVwXyZaBcDeFgHiJkLmNoPqRsT";

static SEQ: AtomicU32 = AtomicU32::new(1);

/// A number for the next file name, unique in this test binary.
fn next() -> u32 {
    SEQ.fetch_add(1, Ordering::SeqCst)
}

/// One of a holder's certificates with its private key, as PEM files.
#[derive(Debug, Clone)]
struct Credential {
    cert: PathBuf,
    key: PathBuf,
    serial: String,
}

/// A holder's issued pair.
#[derive(Debug, Clone)]
struct Holder {
    iin: String,
    application_id: String,
    auth: Credential,
    sign: Credential,
}

/// Two new keys (RSA 2048 for AUTH, P-256 for SIGN) written as PEM files in a directory, and
/// a CSR for each.
struct NewKeys {
    auth_key: PathBuf,
    sign_key: PathBuf,
    auth_csr: String,
    sign_csr: String,
}

impl NewKeys {
    /// New keys in `dir`, their CSRs carrying `subject` (`(field, value)` pairs).
    fn make(dir: &Path, subject: &[(&str, &str)]) -> NewKeys {
        let auth = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        let sign = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
        NewKeys {
            auth_csr: csr_pem(&auth, subject),
            sign_csr: csr_pem(&sign, subject),
            auth_key: write_key(dir, &auth),
            sign_key: write_key(dir, &sign),
        }
    }
}

fn write_key(dir: &Path, key: &PKey<Private>) -> PathBuf {
    let path = dir.join(format!("key{}.pem", next()));
    std::fs::write(&path, key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    path
}

fn read_key(path: &Path) -> PKey<Private> {
    PKey::private_key_from_pem(&std::fs::read(path).unwrap()).unwrap()
}

fn read_cert(path: &Path) -> X509 {
    X509::from_pem(&std::fs::read(path).unwrap()).unwrap()
}

/// A PKCS#10 request for `key` whose subject is `subject` (UTF-8 values).
fn csr_pem(key: &PKey<Private>, subject: &[(&str, &str)]) -> String {
    let mut name = X509NameBuilder::new().unwrap();
    for (field, value) in subject {
        name.append_entry_by_text(field, value).unwrap();
    }
    let mut req = X509ReqBuilder::new().unwrap();
    req.set_subject_name(&name.build()).unwrap();
    req.set_pubkey(key).unwrap();
    req.sign(key, MessageDigest::sha256()).unwrap();
    String::from_utf8(req.build().to_pem().unwrap()).unwrap()
}

/// The holder whose application answered `created`, the keys of its CSRs in `keys`; its
/// certificates are written as PEM files into `dir`.
fn holder_from(dir: &Path, iin: &str, created: &Value, keys: &NewKeys) -> Holder {
    let credential = |kind: &str, key: &Path| {
        let cert = created["certificates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} certificate in {created}"));
        let path = dir.join(format!("cert{}-{kind}.pem", next()));
        std::fs::write(&path, cert["pem"].as_str().unwrap()).unwrap();
        Credential {
            cert: path,
            key: key.to_path_buf(),
            serial: cert["serial"].as_str().unwrap().to_owned(),
        }
    };
    Holder {
        iin: iin.to_owned(),
        application_id: created["id"].as_str().unwrap().to_owned(),
        auth: credential("auth", &keys.auth_key),
        sign: credential("sign", &keys.sign_key),
    }
}

/// A new holder's pair, issued over HTTP with a consent token, keys and certificates kept.
fn issue_pair(env: &Env, email: Option<&str>) -> Holder {
    let dir = env.dir();
    let iin = fresh_iin();
    let keys = NewKeys::make(dir, &[("CN", "Requested Name Is Ignored")]);
    let (status, created) = env.post(
        Some(&env.minted(&claims(&iin))),
        &body(&keys.auth_csr, &keys.sign_csr, email),
    );
    assert_eq!(status, 201, "{created}");
    holder_from(dir, &iin, &created, &keys)
}

/// A pair whose certificates expired a month ago: issued through the real RA path (the same
/// `Registrar`, CA hierarchy and database as the server) by a registrar whose clock is fixed
/// 400 days back, for a consent token valid then. The server cannot be started in the past
/// and `[ca]` sets no validity, so this is the one way to an expired pair it issued.
fn issue_expired_pair(env: &Env) -> Holder {
    use tamga::ca::{Hierarchy, Issuer};
    use tamga::clock::FixedClock;
    use tamga::config::{CaConfig, Mode};
    use tamga::digital_id::{Purpose, TrustedKeys};
    use tamga::ra::{ApplicationForm, Registrar};

    let dir = env.dir();
    let at = Utc::now() - Duration::days(400);
    let ca = CaConfig {
        dir: dir.join("certs-dev"),
        ..CaConfig::default()
    };
    let hierarchy = Arc::new(Hierarchy::load(&ca, Mode::Dev).unwrap());
    let dev_key = hierarchy.digital_id_dev_key().unwrap().clone();
    let base = &env.server.base;
    let issuer = Issuer::new(Arc::clone(&hierarchy), base, &format!("{base}/cps")).unwrap();
    let registrar = Registrar::new(
        env.store.clone(),
        Arc::new(issuer),
        Arc::new(FixedClock(at)),
        "2026-1",
    );
    let iin = fresh_iin();
    let mut then = claims(&iin);
    then.iat = at.timestamp();
    then.nbf = Some(at.timestamp());
    then.exp = at.timestamp() + 300;
    let trusted = TrustedKeys::load(
        &[],
        &[dev_key],
        "https://digitalid.dev.tamga.local",
        "tamga",
    )
    .unwrap();
    let consent = trusted
        .verify(&env.minted(&then), Purpose::EdsIssuance, at)
        .unwrap();
    let keys = NewKeys::make(dir, &[("CN", "x")]);
    let submitted = registrar
        .submit(
            &consent,
            ApplicationForm {
                agreement_version: "2026-1".into(),
                agreement_accepted: true,
                email: None,
                language: "kk".into(),
                storage: "pkcs12".into(),
                auth_csr: keys.auth_csr.clone(),
                sign_csr: keys.sign_csr.clone(),
            },
        )
        .unwrap();
    let certificates: Vec<Value> = submitted
        .certificates
        .iter()
        .map(|c| {
            assert!(
                c.not_after < Utc::now().naive_utc(),
                "{c:?} has not expired"
            );
            let der = c.der.as_deref().unwrap();
            let pem = X509::from_der(der).unwrap().to_pem().unwrap();
            json!({
                "kind": c.kind.as_str(),
                "serial": c.serial,
                "pem": String::from_utf8(pem).unwrap(),
            })
        })
        .collect();
    let created = json!({"id": submitted.application.id, "certificates": certificates});
    holder_from(dir, &iin, &created, &keys)
}

/// A certificate made by the test itself, with `like`'s subject and a key of its own. With
/// `our_serial`, it also names the issuing CA as its issuer and carries `like`'s serial, so
/// that a CMS signed with it points at `like`; otherwise it is self-signed, with a serial of
/// its own.
fn self_made(dir: &Path, like: &Credential, our_serial: bool) -> Credential {
    let real = read_cert(&like.cert);
    let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let mut b = X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    let serial = if our_serial {
        BigNum::from_hex_str(&like.serial).unwrap()
    } else {
        let mut n = BigNum::new().unwrap();
        n.rand(127, MsbOption::MAYBE_ZERO, false).unwrap();
        n
    };
    b.set_serial_number(&serial.to_asn1_integer().unwrap())
        .unwrap();
    b.set_subject_name(real.subject_name()).unwrap();
    if our_serial {
        b.set_issuer_name(real.issuer_name()).unwrap();
    } else {
        b.set_issuer_name(real.subject_name()).unwrap();
    }
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(365).unwrap())
        .unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    let cert = dir.join(format!("self-made{}.pem", next()));
    std::fs::write(&cert, b.build().to_pem().unwrap()).unwrap();
    Credential {
        cert,
        key: write_key(dir, &key),
        serial: serial.to_hex_str().unwrap().to_string(),
    }
}

/// Who makes a CMS signature.
#[derive(Debug, Clone, Copy)]
enum Signer {
    /// `openssl cms -sign`.
    Cli,
    /// The `openssl` crate's `CmsContentInfo::sign`.
    Crate,
}

impl Signer {
    /// A CMS SignedData over `content` by `who` (its certificate included), DER; `attached`
    /// carries the content, otherwise it is detached.
    fn sign(self, dir: &Path, who: &Credential, content: &[u8], attached: bool) -> Vec<u8> {
        match self {
            Signer::Cli => {
                let n = next();
                let (input, output) = (
                    dir.join(format!("content{n}.bin")),
                    dir.join(format!("signed{n}.cms")),
                );
                std::fs::write(&input, content).unwrap();
                let (input_s, output_s) =
                    (input.display().to_string(), output.display().to_string());
                let (cert, key) = (
                    who.cert.display().to_string(),
                    who.key.display().to_string(),
                );
                let mut args = vec!["cms", "-sign", "-binary"];
                if attached {
                    args.push("-nodetach");
                }
                args.extend([
                    "-in", &input_s, "-signer", &cert, "-inkey", &key, "-outform", "DER", "-out",
                    &output_s,
                ]);
                openssl_cli(dir, &args);
                std::fs::read(output).unwrap()
            }
            Signer::Crate => {
                let mut flags = CMSOptions::BINARY;
                if !attached {
                    flags |= CMSOptions::DETACHED;
                }
                CmsContentInfo::sign(
                    Some(&read_cert(&who.cert)),
                    Some(&read_key(&who.key)),
                    None,
                    Some(content),
                    flags,
                )
                .unwrap()
                .to_der()
                .unwrap()
            }
        }
    }
}

/// Status and JSON body of an answer (a body that is no JSON is kept as text under `raw`).
fn answer(resp: reqwest::blocking::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let body = resp.text().unwrap();
    let value = serde_json::from_str(&body).unwrap_or_else(|_| json!({ "raw": body }));
    (status, value)
}

/// A new challenge from `base`: its 32 bytes.
fn challenge(base: &str) -> Vec<u8> {
    let (status, ch) = answer(
        client()
            .post(format!("{base}/cabinet/api/challenge"))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200, "{ch}");
    let bytes = STANDARD.decode(ch["challenge"].as_str().unwrap()).unwrap();
    assert_eq!(bytes.len(), 32, "{ch}");
    let expires = chrono::DateTime::parse_from_rfc3339(ch["expires_at"].as_str().unwrap()).unwrap();
    let left = expires.with_timezone(&Utc) - Utc::now();
    assert!(
        left > Duration::zero() && left <= Duration::minutes(5) + Duration::seconds(2),
        "{ch}"
    );
    bytes
}

/// `POST /cabinet/api/login` with `cms` (DER, sent in base64).
fn login_cms(base: &str, cms: &[u8]) -> (u16, Value) {
    answer(
        client()
            .post(format!("{base}/cabinet/api/login"))
            .json(&json!({"cms": STANDARD.encode(cms)}))
            .send()
            .unwrap(),
    )
}

/// A login through `base` over a new challenge, signed by `who` with `signer`.
fn login(base: &str, dir: &Path, who: &Credential, signer: Signer) -> (u16, Value) {
    let ch = challenge(base);
    login_cms(base, &signer.sign(dir, who, &ch, true))
}

/// `holder` logs in with its AUTH key; the session token.
fn session(base: &str, dir: &Path, holder: &Holder, signer: Signer) -> String {
    let (status, s) = login(base, dir, &holder.auth, signer);
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["application_id"], holder.application_id.as_str(), "{s}");
    let expires = chrono::DateTime::parse_from_rfc3339(s["expires_at"].as_str().unwrap()).unwrap();
    let left = expires.with_timezone(&Utc) - Utc::now();
    assert!(
        left > Duration::zero() && left <= Duration::minutes(15) + Duration::seconds(2),
        "{s}"
    );
    s["session_token"].as_str().unwrap().to_owned()
}

/// `GET /cabinet/api/certificates` with the session `token`, if any.
fn certificates(base: &str, token: Option<&str>) -> (u16, Value) {
    let mut req = client().get(format!("{base}/cabinet/api/certificates"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    answer(req.send().unwrap())
}

/// `POST /cabinet/api/revocations` with the session `token`, if any.
fn cabinet_revoke(base: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
    let mut req = client()
        .post(format!("{base}/cabinet/api/revocations"))
        .json(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    answer(req.send().unwrap())
}

/// `POST /cabinet/api/reissues` with exactly the bytes `body`, the session `token`, the
/// confirmation CMS (DER, sent in base64) and the consent token, each if any.
fn reissue(
    base: &str,
    token: Option<&str>,
    body: &[u8],
    confirmation: Option<&[u8]>,
    consent: Option<&str>,
) -> (u16, Value) {
    let mut req = client()
        .post(format!("{base}/cabinet/api/reissues"))
        .header("Content-Type", "application/json")
        .body(body.to_vec());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(c) = confirmation {
        req = req.header(CONFIRMATION_HEADER, STANDARD.encode(c));
    }
    if let Some(c) = consent {
        req = req.header(CONSENT_HEADER, c);
    }
    answer(req.send().unwrap())
}

/// A re-issue request (exact body bytes) whose CSRs hold new keys and claim another person's
/// name and IIN, with the keys.
fn reissue_form(dir: &Path, email: Option<&str>) -> (Vec<u8>, NewKeys) {
    let other = format!("IIN{}", fresh_iin());
    let keys = NewKeys::make(
        dir,
        &[
            ("CN", "БАСҚА АДАМ"),
            ("SN", "БАСҚА"),
            ("serialNumber", &other),
            ("C", "KZ"),
        ],
    );
    (form_bytes(&keys.auth_csr, &keys.sign_csr, email), keys)
}

fn form_bytes(auth_csr: &str, sign_csr: &str, email: Option<&str>) -> Vec<u8> {
    let mut form = json!({
        "language": "ru",
        "storage": "pkcs12",
        "csrs": {"auth": auth_csr, "sign": sign_csr},
    });
    if let Some(e) = email {
        form["email"] = json!(e);
    }
    serde_json::to_vec(&form).unwrap()
}

/// `tamga ARGS` in `env`'s directory, on its database.
fn cli(env: &Env, args: &[&str]) -> Output {
    let mut cmd = tamga(env.dir());
    if let Some(db) = &env.db {
        cmd.env("TAMGA_DATABASE__URL", &db.url);
    }
    run(cmd.args(args))
}

/// The JSON that `tamga ARGS` prints (it must succeed).
fn cli_json(env: &Env, args: &[&str]) -> Value {
    let out = cli(env, args);
    assert!(out.status.success(), "tamga {args:?}: {}", text(&out));
    let shown = String::from_utf8(out.stdout).unwrap();
    let start = shown.find(['[', '{']).unwrap_or(0);
    serde_json::from_str(&shown[start..]).unwrap_or_else(|e| panic!("{e}: {shown}"))
}

/// The audit log, oldest first, as `tamga audit tail --json` shows it.
fn audit(env: &Env) -> Vec<Value> {
    cli_json(env, &["audit", "tail", "-n", "100000", "--json"])
        .as_array()
        .unwrap()
        .clone()
}

/// What a request could have written: the main tables' row counts, every application and
/// certificate (with its status) as the CLI lists them, and the audit log without the CRL
/// publications that run by themselves.
#[derive(Debug, PartialEq)]
struct Written {
    counts: TableCounts,
    applications: Value,
    certificates: Value,
    audit: Vec<Value>,
}

fn written(env: &Env) -> Written {
    Written {
        counts: TableCounts {
            audit_log: 0,
            ..env.counts()
        },
        applications: cli_json(
            env,
            &["applications", "list", "--limit", "100000", "--json"],
        ),
        certificates: cli_json(env, &["certs", "list", "--limit", "100000", "--json"]),
        audit: audit(env)
            .into_iter()
            .filter(|e| !e["action"].as_str().unwrap_or_default().starts_with("crl."))
            .collect(),
    }
}

/// The answer `got` is the problem `code` with status `want`, and nothing was written since
/// `before`.
fn refused(env: &Env, before: &Written, got: (u16, Value), want: u16, code: &str) {
    let (status, problem) = got;
    assert_eq!(
        (status, problem["code"].as_str()),
        (want, Some(code)),
        "{problem}"
    );
    assert_eq!(&written(env), before, "{code}: something was written");
}

/// The operator revokes `serial` with `reason` (`tamga certs revoke`).
fn operator_revokes(env: &Env, serial: &str, reason: &str) {
    let out = cli(
        env,
        &[
            "certs",
            "revoke",
            serial,
            "--reason",
            reason,
            "--operator",
            "aliya",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
}

/// What `openssl ocsp` says about `serial` (the answer's signature checked).
fn ocsp(env: &Env, serial: &str) -> String {
    let url = format!("{}/ocsp", env.server.base);
    let out = crate::support::openssl_command()
        .current_dir(env.dir())
        .args(["ocsp", "-issuer", "certs-dev/nca_rsa_dev.pem"])
        .args(["-VAfile", "certs-dev/ocsp_nca_rsa_dev.pem", "-url", &url])
        .args(["-serial", &format!("0x{serial}")])
        .output()
        .unwrap();
    let shown = text(&out);
    assert!(shown.contains("Response verify OK"), "{shown}");
    shown
}

/// The lines `openssl crl -text` prints for `serial`'s entry (empty if it is not listed).
fn crl_entry(listing: &str, serial: &str) -> String {
    let Some(at) = listing.find(&format!("Serial Number: {serial}")) else {
        return String::new();
    };
    let rest = &listing[at..];
    let end = rest[1..]
        .find("Serial Number:")
        .or_else(|| rest.find("Signature Algorithm"))
        .map_or(rest.len(), |e| e + 1);
    rest[..end].to_owned()
}

/// The operator publishes a new full CRL; the one the server then serves, as `openssl crl
/// -text` shows it (its signature checked against the issuing CA).
fn next_full_crl(env: &Env) -> String {
    let out = cli(env, &["crl", "publish", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let resp = env.server.get(&format!("/crl/{ISSUER}.crl"));
    assert_eq!(resp.status(), 200);
    let file = format!("full{}.crl", next());
    std::fs::write(env.dir().join(&file), resp.bytes().unwrap()).unwrap();
    let out = crate::support::openssl_command()
        .current_dir(env.dir())
        .args(["crl", "-inform", "DER", "-in", &file, "-noout", "-text"])
        .args(["-CAfile", "certs-dev/nca_rsa_dev.pem"])
        .output()
        .unwrap();
    let shown = text(&out);
    assert!(
        out.status.success() && shown.contains("verify OK"),
        "{shown}"
    );
    shown
}

/// The subject of the certificate in `file`, DER.
fn subject_der(file: &Path) -> Vec<u8> {
    read_cert(file).subject_name().to_der().unwrap()
}

/// Send the login `cms` to each of `bases` at once, each over a connection of its own.
fn race(bases: &[&str], cms: &[u8]) -> Vec<(u16, Value)> {
    let barrier = Arc::new(Barrier::new(bases.len()));
    std::thread::scope(|scope| {
        let handles: Vec<_> = bases
            .iter()
            .map(|base| {
                let barrier = Arc::clone(&barrier);
                let http = client();
                scope.spawn(move || {
                    barrier.wait();
                    answer(
                        http.post(format!("{base}/cabinet/api/login"))
                            .json(&json!({"cms": STANDARD.encode(cms)}))
                            .send()
                            .unwrap(),
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// Exactly one of `results` made a session; every other one is `challenge_invalid`.
fn one_session(results: &[(u16, Value)]) -> String {
    let won: Vec<&Value> = results
        .iter()
        .filter(|(s, _)| *s == 200)
        .map(|(_, v)| v)
        .collect();
    assert_eq!(won.len(), 1, "{results:?}");
    for (status, problem) in results.iter().filter(|(s, _)| *s != 200) {
        assert_eq!(
            (*status, problem["code"].as_str()),
            (401, Some("challenge_invalid")),
            "{results:?}"
        );
    }
    won[0]["session_token"].as_str().unwrap().to_owned()
}

fn count_of(entries: &[Value], action: &str, subject: &str) -> usize {
    entries
        .iter()
        .filter(|e| e["action"] == action && e["subject"] == subject)
        .count()
}

/// A holder logs in (the CMS made by `signer`), sees the pair, re-issues it with CSRs that
/// claim another identity, and gets a new pair with the old subject; the old pair is
/// `superseded` on OCSP and in the next CRL, the new one `good`; the audit log shows it all;
/// the same request again gives the same application.
fn reissue_journey(env: &Env, signer: Signer) {
    let (dir, base) = (env.dir(), env.server.base.as_str());
    let old = issue_pair(env, Some("holder@example.kz"));
    let token = session(base, dir, &old, signer);

    // The cabinet lists the pair, issued.
    let (status, listed) = certificates(base, Some(&token));
    assert_eq!(status, 200, "{listed}");
    let certs = listed["certificates"].as_array().unwrap();
    assert_eq!(certs.len(), 2, "{listed}");
    for (kind, cred) in [("auth", &old.auth), ("sign", &old.sign)] {
        let c = certs.iter().find(|c| c["kind"] == kind).unwrap();
        assert_eq!(c["serial"], cred.serial.as_str(), "{listed}");
        assert_eq!(c["status"], "issued", "{listed}");
        assert_eq!(c["storage"], "pkcs12", "{listed}");
        assert_eq!(c["application_id"], old.application_id.as_str(), "{listed}");
        assert_eq!(
            X509::from_pem(c["pem"].as_str().unwrap().as_bytes())
                .unwrap()
                .to_der()
                .unwrap(),
            read_cert(&cred.cert).to_der().unwrap()
        );
    }

    // The re-issue: new keys, CSRs naming someone else.
    let (form, keys) = reissue_form(dir, Some("new@example.kz"));
    let confirmation = signer.sign(dir, &old.sign, &form, false);
    let (status, created) = reissue(base, Some(&token), &form, Some(&confirmation), None);
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["status"], "issued", "{created}");
    assert_eq!(
        created["replaces"],
        old.application_id.as_str(),
        "{created}"
    );
    assert!(created["access_token"].is_string(), "{created}");
    let new = holder_from(dir, &old.iin, &created, &keys);
    assert_ne!(new.application_id, old.application_id);
    for (was, now, key) in [
        (&old.auth, &new.auth, &keys.auth_key),
        (&old.sign, &new.sign, &keys.sign_key),
    ] {
        assert_eq!(
            subject_der(&now.cert),
            subject_der(&was.cert),
            "the identity is the old pair's"
        );
        assert!(read_cert(&now.cert)
            .public_key()
            .unwrap()
            .public_eq(&read_key(key)));
    }

    // OCSP: the old pair superseded, the new one good.
    for was in [&old.auth, &old.sign] {
        let shown = ocsp(env, &was.serial);
        assert!(
            shown.contains(": revoked") && shown.contains("Reason: superseded"),
            "{shown}"
        );
    }
    for now in [&new.auth, &new.sign] {
        let shown = ocsp(env, &now.serial);
        assert!(shown.contains(": good"), "{shown}");
    }
    // The next full CRL lists the old pair as superseded, not the new one.
    let crl = next_full_crl(env);
    for was in [&old.auth, &old.sign] {
        let entry = crl_entry(&crl, &was.serial);
        assert!(entry.contains("Superseded"), "{}: {crl}", was.serial);
    }
    for now in [&new.auth, &new.sign] {
        assert!(crl_entry(&crl, &now.serial).is_empty(), "{crl}");
    }

    // The audit log: intact, with the login, the confirmed re-issue, the issuance and the two
    // supersessions.
    let out = cli(env, &["audit", "verify"]);
    assert!(out.status.success(), "{}", text(&out));
    let entries = audit(env);
    assert_eq!(count_of(&entries, "cabinet.login", &old.auth.serial), 1);
    let submitted: Vec<&Value> = entries
        .iter()
        .filter(|e| {
            e["action"] == "application.reissue_submitted" && e["subject"] == new.application_id
        })
        .collect();
    assert_eq!(submitted.len(), 1, "{entries:?}");
    assert_eq!(
        submitted[0]["details"]["replaces"],
        old.application_id.as_str()
    );
    assert_eq!(
        submitted[0]["details"]["confirmed_by"],
        old.sign.serial.as_str()
    );
    assert_eq!(
        count_of(&entries, "application.issued", &new.application_id),
        1
    );
    for was in [&old.auth, &old.sign] {
        let revoked: Vec<&Value> = entries
            .iter()
            .filter(|e| e["action"] == "certificate.revoked" && e["subject"] == was.serial)
            .collect();
        assert_eq!(revoked.len(), 1, "{entries:?}");
        assert_eq!(revoked[0]["details"]["reason"], "superseded");
        assert_eq!(revoked[0]["actor"], "system:reissue");
    }

    // The answer was lost: the same body and confirmation give the same application.
    let before = env.counts();
    let (status, again) = reissue(base, Some(&token), &form, Some(&confirmation), None);
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["id"], created["id"]);
    assert_eq!(again["replaces"], old.application_id.as_str());
    assert_eq!(again["certificates"], created["certificates"]);
    let (applications, certificates_count) = (env.counts().applications, env.counts().certificates);
    assert_eq!(
        (applications, certificates_count),
        (before.applications, before.certificates)
    );
    let (status, view) = env.get(&new.application_id, again["access_token"].as_str().unwrap());
    assert_eq!(
        (status, view["status"].as_str()),
        (200, Some("issued")),
        "{view}"
    );
    // The session that logged in ended with its superseded AUTH certificate; the repeat needs
    // none: the confirmation alone names the request (a client whose session expired while
    // the answer was lost still gets its certificates).
    let (status, problem) = certificates(base, Some(&token));
    assert_eq!(
        (status, problem["code"].as_str()),
        (403, Some("certificate_revoked")),
        "{problem}"
    );
    let (status, again) = reissue(base, None, &form, Some(&confirmation), None);
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["id"], created["id"]);
    assert_eq!(again["certificates"], created["certificates"]);

    // The old AUTH key logs in no more; the new one does, and sees all four certificates.
    let (status, problem) = login(base, dir, &old.auth, signer);
    assert_eq!(
        (status, problem["code"].as_str()),
        (403, Some("certificate_revoked")),
        "{problem}"
    );
    let token = session(base, dir, &new, signer);
    let (status, listed) = certificates(base, Some(&token));
    assert_eq!(status, 200, "{listed}");
    let certs = listed["certificates"].as_array().unwrap();
    assert_eq!(certs.len(), 4, "{listed}");
    for c in certs {
        let serial = c["serial"].as_str().unwrap();
        if serial == old.auth.serial || serial == old.sign.serial {
            assert_eq!(c["status"], "revoked", "{listed}");
            assert_eq!(c["revocation_reason"], "superseded", "{listed}");
            assert_eq!(c["application_id"], old.application_id.as_str());
        } else {
            assert_eq!(c["status"], "issued", "{listed}");
            assert_eq!(c["application_id"], new.application_id.as_str());
        }
    }
}

#[test]
fn cabinet_reissue_supersedes_the_old_pair_signed_by_the_openssl_cli_and_crate() {
    let env = Env::sqlite();
    reissue_journey(&env, Signer::Cli);
    reissue_journey(&env, Signer::Crate);
}

#[test]
fn cabinet_refusals_have_their_codes_and_write_nothing() {
    let env = Env::sqlite();
    let (dir, base) = (env.dir(), env.server.base.as_str());
    let signer = Signer::Cli;
    let a = issue_pair(&env, None);
    let b = issue_pair(&env, None);

    // No session, or a made-up one.
    let before = written(&env);
    let (form, _) = reissue_form(dir, None);
    for token in [None, Some("garbage"), Some(MADE_UP_SESSION)] {
        refused(
            &env,
            &before,
            certificates(base, token),
            401,
            "session_invalid",
        );
        let conf = signer.sign(dir, &a.sign, &form, false);
        refused(
            &env,
            &before,
            reissue(base, token, &form, Some(&conf), None),
            401,
            "session_invalid",
        );
        refused(
            &env,
            &before,
            cabinet_revoke(
                base,
                token,
                &json!({"serial": a.sign.serial, "reason": "keyCompromise"}),
            ),
            401,
            "session_invalid",
        );
    }

    // Logins: with the SIGN key; with a self-made certificate carrying the holder's subject;
    // with one that also names our issuer and the holder's AUTH serial (its signature does
    // not verify with the certificate we issued).
    refused(
        &env,
        &before,
        login(base, dir, &a.sign, signer),
        403,
        "cms_signer_wrong_kind",
    );
    let own_issuer = self_made(dir, &a.auth, false);
    refused(
        &env,
        &before,
        login(base, dir, &own_issuer, signer),
        401,
        "cms_signer_unknown",
    );
    let impostor = self_made(dir, &a.auth, true);
    refused(
        &env,
        &before,
        login(base, dir, &impostor, signer),
        401,
        "cms_signature_invalid",
    );
    // A challenge the server never gave; a detached CMS where the login needs it attached.
    let mut invented = [0u8; 32];
    openssl::rand::rand_bytes(&mut invented).unwrap();
    refused(
        &env,
        &before,
        login_cms(base, &signer.sign(dir, &a.auth, &invented, true)),
        401,
        "challenge_invalid",
    );
    let ch = challenge(base);
    refused(
        &env,
        &before,
        login_cms(base, &signer.sign(dir, &a.auth, &ch, false)),
        400,
        "cms_malformed",
    );

    // A challenge is used once: a replayed login is refused.
    let ch = challenge(base);
    let cms = signer.sign(dir, &a.auth, &ch, true);
    let (status, first) = login_cms(base, &cms);
    assert_eq!(status, 200, "{first}");
    let a_token = first["session_token"].as_str().unwrap().to_owned();
    let before = written(&env);
    refused(
        &env,
        &before,
        login_cms(base, &cms),
        401,
        "challenge_invalid",
    );
    // Raced from four connections, a challenge makes exactly one session.
    let logins = |e: &Env| count_of(&audit(e), "cabinet.login", &a.auth.serial);
    let logged_in = logins(&env);
    for _ in 0..3 {
        let ch = challenge(base);
        let cms = signer.sign(dir, &a.auth, &ch, true);
        one_session(&race(&[base, base, base, base], &cms));
    }
    assert_eq!(logins(&env), logged_in + 3);
    // The login CMS may come as PEM too (`openssl cms -outform PEM`).
    let der = format!("login{}.cms", next());
    std::fs::write(
        dir.join(&der),
        signer.sign(dir, &a.auth, &challenge(base), true),
    )
    .unwrap();
    let pem = openssl_cli(
        dir,
        &[
            "cms", "-cmsout", "-inform", "DER", "-in", &der, "-outform", "PEM",
        ],
    );
    assert!(pem.starts_with("-----BEGIN CMS-----"), "{pem}");
    let (status, by_pem) = answer(
        client()
            .post(format!("{base}/cabinet/api/login"))
            .json(&json!({ "cms": pem }))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200, "{by_pem}");

    // Confirmations: missing; signed by the AUTH key; by another holder's SIGN key; a body
    // changed under a valid one; attached where it must be detached.
    let before = written(&env);
    let a_session = Some(a_token.as_str());
    refused(
        &env,
        &before,
        reissue(base, a_session, &form, None, None),
        401,
        "confirmation_missing",
    );
    let by_auth = signer.sign(dir, &a.auth, &form, false);
    refused(
        &env,
        &before,
        reissue(base, a_session, &form, Some(&by_auth), None),
        403,
        "cms_signer_wrong_kind",
    );
    let by_other = signer.sign(dir, &b.sign, &form, false);
    refused(
        &env,
        &before,
        reissue(base, a_session, &form, Some(&by_other), None),
        403,
        "cms_signer_not_holder",
    );
    let confirmation = signer.sign(dir, &a.sign, &form, false);
    let tampered = String::from_utf8(form.clone())
        .unwrap()
        .replacen("\"ru\"", "\"kk\"", 1)
        .into_bytes();
    assert_ne!(tampered, form);
    refused(
        &env,
        &before,
        reissue(base, a_session, &tampered, Some(&confirmation), None),
        401,
        "cms_signature_invalid",
    );
    let attached = signer.sign(dir, &a.sign, &form, true);
    refused(
        &env,
        &before,
        reissue(base, a_session, &form, Some(&attached), None),
        400,
        "cms_malformed",
    );

    // New CSRs with a key certified already: the current AUTH or SIGN key, another holder's.
    let fresh = NewKeys::make(dir, &[("CN", "x")]);
    for (auth_key, sign_key) in [
        (&a.auth.key, &fresh.sign_key),
        (&fresh.auth_key, &a.sign.key),
        (&b.auth.key, &fresh.sign_key),
    ] {
        let reused = form_bytes(
            &csr_pem(&read_key(auth_key), &[("CN", "x")]),
            &csr_pem(&read_key(sign_key), &[("CN", "x")]),
            None,
        );
        let conf = signer.sign(dir, &a.sign, &reused, false);
        refused(
            &env,
            &before,
            reissue(base, a_session, &reused, Some(&conf), None),
            409,
            "key_reused",
        );
    }

    // The cabinet revokes only the holder's own certificates.
    refused(
        &env,
        &before,
        cabinet_revoke(
            base,
            a_session,
            &json!({"serial": b.sign.serial, "reason": "keyCompromise"}),
        ),
        403,
        "not_certificate_holder",
    );

    // A pair whose AUTH certificate the operator revoked (keyCompromise) logs in no more.
    let c = issue_pair(&env, None);
    operator_revokes(&env, &c.auth.serial, "keyCompromise");
    let before = written(&env);
    refused(
        &env,
        &before,
        login(base, dir, &c.auth, signer),
        403,
        "certificate_revoked",
    );
    // Logged in, then the SIGN certificate revoked: no re-issue.
    let d = issue_pair(&env, None);
    let d_token = session(base, dir, &d, signer);
    operator_revokes(&env, &d.sign.serial, "keyCompromise");
    let (d_form, _) = reissue_form(dir, None);
    let d_conf = signer.sign(dir, &d.sign, &d_form, false);
    let before = written(&env);
    refused(
        &env,
        &before,
        reissue(base, Some(&d_token), &d_form, Some(&d_conf), None),
        403,
        "certificate_revoked",
    );
    // On hold: the AUTH certificate (no login); the SIGN one after the login (no re-issue).
    let e = issue_pair(&env, None);
    operator_revokes(&env, &e.auth.serial, "certificateHold");
    let f = issue_pair(&env, None);
    let f_token = session(base, dir, &f, signer);
    operator_revokes(&env, &f.sign.serial, "certificateHold");
    let (f_form, _) = reissue_form(dir, None);
    let f_conf = signer.sign(dir, &f.sign, &f_form, false);
    let before = written(&env);
    refused(
        &env,
        &before,
        login(base, dir, &e.auth, signer),
        403,
        "certificate_on_hold",
    );
    refused(
        &env,
        &before,
        reissue(base, Some(&f_token), &f_form, Some(&f_conf), None),
        403,
        "certificate_on_hold",
    );
    // An expired pair: the full Digital ID journey is needed.
    let old = issue_expired_pair(&env);
    let before = written(&env);
    refused(
        &env,
        &before,
        login(base, dir, &old.auth, signer),
        403,
        "certificate_expired",
    );

    // A pair replaced already: another, different re-issue of it is refused.
    let g = issue_pair(&env, None);
    let g_token = session(base, dir, &g, signer);
    let (first_form, _) = reissue_form(dir, None);
    let first_conf = signer.sign(dir, &g.sign, &first_form, false);
    let (status, created) = reissue(base, Some(&g_token), &first_form, Some(&first_conf), None);
    assert_eq!(status, 201, "{created}");
    let (second_form, _) = reissue_form(dir, None);
    let second_conf = signer.sign(dir, &g.sign, &second_form, false);
    let before = written(&env);
    let (status, problem) = reissue(base, Some(&g_token), &second_form, Some(&second_conf), None);
    assert!(
        [
            (409, Some("already_reissued")),
            (403, Some("certificate_revoked"))
        ]
        .contains(&(status, problem["code"].as_str())),
        "{status} {problem}"
    );
    assert_eq!(written(&env), before);

    // Finally the holder revokes their own SIGN certificate from the cabinet.
    let (status, revoked) = cabinet_revoke(
        base,
        a_session,
        &json!({"serial": a.sign.serial, "reason": "keyCompromise"}),
    );
    assert_eq!(status, 200, "{revoked}");
    assert_eq!(revoked["status"], "revoked", "{revoked}");
    let shown = ocsp(&env, &a.sign.serial);
    assert!(
        shown.contains(": revoked") && shown.contains("Reason: keyCompromise"),
        "{shown}"
    );
    let out = cli(&env, &["audit", "verify"]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn cabinet_reissue_with_required_consent_needs_the_holders_eds_reissue_token() {
    let env = Env::sqlite_with(&[("TAMGA_RA__REISSUE_REQUIRES_CONSENT", "true")]);
    let (dir, base) = (env.dir(), env.server.base.as_str());
    let signer = Signer::Crate;
    let holder = issue_pair(&env, None);
    let token = session(base, dir, &holder, signer);
    let (form, _) = reissue_form(dir, None);
    let confirmation = signer.sign(dir, &holder.sign, &form, false);
    let send =
        |consent: Option<&str>| reissue(base, Some(&token), &form, Some(&confirmation), consent);

    let before = written(&env);
    refused(&env, &before, send(None), 401, "consent_token_missing");
    let stranger = env.cli_token(&fresh_iin(), &["--purpose", "eds_reissue"]);
    refused(
        &env,
        &before,
        send(Some(&stranger)),
        403,
        "consent_token_wrong_holder",
    );
    let issuance = env.cli_token(&holder.iin, &[]);
    refused(
        &env,
        &before,
        send(Some(&issuance)),
        403,
        "consent_token_wrong_purpose",
    );
    let right = env.cli_token(&holder.iin, &["--purpose", "eds_reissue"]);
    let (status, created) = send(Some(&right));
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["status"], "issued", "{created}");
    assert_eq!(created["replaces"], holder.application_id.as_str());
    for was in [&holder.auth, &holder.sign] {
        let shown = ocsp(&env, &was.serial);
        assert!(shown.contains("Reason: superseded"), "{shown}");
    }
}

#[test]
fn cabinet_challenge_is_single_use_across_two_instances_on_postgres() {
    let test = "cabinet_challenge_is_single_use_across_two_instances_on_postgres";
    let Some(admin) = postgres_url(test) else {
        return;
    };
    let env = Env::postgres(&admin);
    let (_dir_b, b) = env.second_instance(&[]);
    let (dir, a) = (env.dir(), env.server.base.as_str());
    let holder = issue_pair(&env, None);
    let logins = |e: &Env| count_of(&audit(e), "cabinet.login", &holder.auth.serial);
    let logged_in = logins(&env);
    // A challenge from A, its login sent to A and B at once: one session.
    let rounds = 5;
    for _ in 0..rounds {
        let ch = challenge(a);
        let cms = Signer::Cli.sign(dir, &holder.auth, &ch, true);
        one_session(&race(&[a, b.base.as_str()], &cms));
    }
    assert_eq!(logins(&env), logged_in + rounds);
    // A session made on A works on B, down to the re-issue.
    let token = session(a, dir, &holder, Signer::Crate);
    let (status, listed) = certificates(&b.base, Some(&token));
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["certificates"].as_array().unwrap().len(), 2);
    let (form, _) = reissue_form(dir, None);
    let confirmation = Signer::Crate.sign(dir, &holder.sign, &form, false);
    let (status, created) = reissue(&b.base, Some(&token), &form, Some(&confirmation), None);
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["replaces"], holder.application_id.as_str());
    for was in [&holder.auth, &holder.sign] {
        let shown = ocsp(&env, &was.serial);
        assert!(shown.contains("Reason: superseded"), "{shown}");
    }
    // The whole journey on PostgreSQL.
    reissue_journey(&env, Signer::Crate);
    assert!(tamga::audit::verify(&env.store).is_ok());
}
