//! `tamga-enroll reissue` and `tamga-enroll cabinet list|revoke`: the holder's cabinet, logged
//! in with the current containers.
//!
//! The login signs the server's challenge with the AUTH key as an attached CMS SignedData
//! (the certificate included, made by [`crate::cms`]); a re-issue sends its JSON body, made once, with a detached CMS
//! over its exact bytes signed with the SIGN key (`Tamga-Confirmation`), and sends those same
//! bytes and header again when an answer is lost (no connection, a timeout, a 5xx).
//!
//! Files in `--keys DIR`: the current pair is the one `AUTH_….p12` and the one other `….p12`
//! (`RSA256_…`, `ECDSA256_…`); before the re-issue is sent, the new keys are written there
//! encrypted with the containers' password (`.reissue-<old AUTH serial>-auth.key.pem`,
//! `…-sign.key.pem`, PKCS#8 with AES-256-CBC) and so is the request as sent
//! (`.reissue-<old AUTH serial>.request.json`: the body, its confirmation, the session), so a
//! run that dies after the server committed (which revokes the old pair) loses no key: run
//! again, it sends the same request and finishes. Once the new containers are written, the old
//! ones are renamed `<name>.superseded` (never over an existing file) and the pending files
//! removed. The new containers take the same password as the old ones.
//!
//! Must never: write a key unencrypted, overwrite a file, or send anything but what
//! [`crate::api::types`] describes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use clap::{Args, Subcommand};
use openssl::pkey::{PKey, Private};
use openssl::symm::Cipher;
use openssl::x509::X509;
use serde::{Deserialize, Serialize};

use super::{err, unreachable, Common, Failure, KeyType};
use crate::api::types::{
    ApplicationResponse, ChallengeResponse, CsrPair, HolderCertificates, LoginRequest,
    ProblemDocument, ReissueRequest, RevocationRequest, RevocationResponse, SessionResponse,
    CONFIRMATION_HEADER, CONSENT_HEADER,
};
use crate::pkcs12;

/// What `tamga-enroll reissue --help` adds.
pub const REISSUE_HELP: &str = "\
The current pair is the AUTH_….p12 container in --keys and the other .p12 (RSA256_…,
ECDSA256_…); both open with the password (--password-file, or asked), which also protects the
new containers. The new keys are written to --keys, encrypted with that password, before the
request is sent (.reissue-<serial>-auth.key.pem, -sign.key.pem, and the request as sent,
.reissue-<serial>.request.json): a run that fails after that is finished by running the same
command again. Then the new containers are written beside the old ones, and the old ones are
renamed <name>.superseded (the CA revoked them, reason superseded).

Exit codes: 0 re-issued, 1 error (network, files), 2 usage error or a password that does not
open the containers, 3 the server refused (its code and what it means are shown).";

/// The directory of the holder's containers.
#[derive(Debug, Args)]
pub struct Keys {
    /// Directory holding the current containers (`AUTH_….p12` and `RSA256_….p12` or
    /// `ECDSA256_….p12`).
    #[arg(long)]
    pub keys: PathBuf,
}

/// `tamga-enroll reissue`.
#[derive(Debug, Args)]
pub struct ReissueArgs {
    /// The current containers.
    #[command(flatten)]
    pub keys: Keys,
    /// E-mail for notifications and the new certificates' subjectAltName.
    #[arg(long)]
    pub email: Option<String>,
    /// Language of the e-mails the server sends about the re-issue.
    #[arg(long, default_value = "kk", value_parser = ["kk", "ru", "en"])]
    pub language: String,
    /// Key storage of the new pair.
    #[arg(long, default_value = "pkcs12", value_parser = ["pkcs12"])]
    pub storage: String,
    /// Key algorithm of both new key pairs.
    #[arg(long, value_enum, default_value = "rsa2048")]
    pub key_type: KeyType,
    /// A file holding a Digital ID consent token (purpose eds_reissue), for a CA that asks one
    /// for a re-issue.
    #[arg(long)]
    pub consent_token_file: Option<PathBuf>,
    /// How many times the same request is sent again when its answer is lost.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(0..=10))]
    pub retries: u32,
}

/// `tamga-enroll cabinet …`
#[derive(Debug, Subcommand)]
pub enum CabinetCommand {
    /// The holder's certificates, newest first.
    List(ListArgs),
    /// Revoke one of the holder's certificates.
    Revoke(RevokeArgs),
}

/// `tamga-enroll cabinet list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// The AUTH container to log in with.
    #[command(flatten)]
    pub keys: Keys,
    /// Print the server's JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `tamga-enroll cabinet revoke`.
#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// The AUTH container to log in with.
    #[command(flatten)]
    pub keys: Keys,
    /// The certificate's serial number (hex).
    #[arg(long)]
    pub serial: String,
    /// RFC 5280 reason: unspecified, keyCompromise, affiliationChanged, superseded,
    /// cessationOfOperation, certificateHold, privilegeWithdrawn.
    #[arg(long)]
    pub reason: String,
    /// When the key was (suspected) compromised, RFC 3339.
    #[arg(long)]
    pub invalidity_date: Option<String>,
}

/// Which container of the pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Auth,
    Sign,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Auth => "AUTH",
            Kind::Sign => "SIGN",
        }
    }
}

/// A current container, opened.
struct Container {
    path: PathBuf,
    key: PKey<Private>,
    cert: X509,
    /// Its certificate's serial, upper-case hex.
    serial: String,
}

/// A code the server answered with, and what the citizen reads of it.
struct Refusal {
    /// The problem's code (empty without a problem document).
    code: String,
    failure: Failure,
    /// Whether the server may have acted on the request: an answer was lost (no answer, a
    /// 5xx), or this was a repeat of a request whose answer was.
    uncertain: bool,
}

impl From<Failure> for Refusal {
    fn from(failure: Failure) -> Refusal {
        Refusal {
            code: String::new(),
            failure,
            uncertain: true,
        }
    }
}

/// What the cabinet's codes mean to the holder running this client.
fn sentence(code: &str) -> Option<&'static str> {
    Some(match code {
        "session_invalid" => "the cabinet session is unknown or has expired: run the command again to log in anew",
        "challenge_invalid" => "the login challenge was unknown, expired or already used: run the command again",
        "cms_malformed" => "the server could not read the signature this client sent (a CMS SignedData)",
        "cms_algorithm_not_allowed" => "the signature's digest is one the CA does not accept (SHA-256, SHA-384 or SHA-512 are)",
        "cms_signature_invalid" => "the signature does not verify with the certificate the CA issued: the container's key is not that certificate's, or the request was changed on the way",
        "cms_signer_unknown" => "the container's certificate was not issued by this CA (check --server and the containers in --keys)",
        "cms_signer_wrong_kind" => "the AUTH container logs in and the SIGN container confirms: the containers in --keys are not what their names say",
        "cms_signer_not_holder" => "the AUTH and SIGN containers in --keys are not one pair (one application)",
        "certificate_revoked" => "the current pair is revoked: only a valid pair can be re-issued; a new one needs a new application through Digital ID",
        "certificate_on_hold" => "the current pair is on hold: it can be re-issued once the hold is lifted",
        "certificate_expired" => "the current pair has expired: new keys need a new application through Digital ID",
        "confirmation_missing" => "the re-issue reached the server without its signed confirmation",
        "already_reissued" => "this pair was already replaced by another re-issue (`tamga-enroll cabinet list` shows the certificates)",
        "consent_token_missing" => "this CA also asks a Digital ID consent token for a re-issue: give it with --consent-token-file (purpose eds_reissue)",
        "consent_token_wrong_holder" => "the consent token (--consent-token-file) is another person's",
        "consent_token_wrong_purpose" => "the consent token (--consent-token-file) is not for a re-issue (purpose eds_reissue)",
        "not_certificate_holder" => "that certificate is not one of yours",
        "key_reused" => "a new key was certified before: run the command again (new keys are generated)",
        _ => return None,
    })
}

/// A cabinet answer that is no success, as a refusal naming its code and what it means.
fn refusal(resp: reqwest::blocking::Response) -> Refusal {
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(|secs| secs.trim().to_owned());
    match resp.json::<ProblemDocument>() {
        Ok(problem) => Refusal {
            code: problem.code.as_str().to_owned(),
            failure: Failure::Refused(refused_text(status, problem, retry_after.as_deref())),
            uncertain: status >= 500,
        },
        Err(_) => Refusal::from(err(format!("unexpected answer: HTTP {status}"))),
    }
}

/// A cabinet code as a sentence (with the server's detail after it); any other code as every
/// refusal reads.
fn refused_text(status: u16, problem: ProblemDocument, retry_after: Option<&str>) -> String {
    let code = problem.code.as_str().to_owned();
    match (sentence(&code), &problem.detail) {
        (Some(s), Some(detail)) => format!("{code} ({status}): {s} (the server says: {detail})"),
        (Some(s), None) => format!("{code} ({status}): {s}"),
        (None, _) => super::refused_text(status, problem, retry_after),
    }
}

fn base(common: &Common) -> &str {
    common.server.trim_end_matches('/')
}

/// The containers' password: from `--password-file`, or asked once on the terminal. It must
/// meet the policy, as the new containers are written with it.
fn container_password(common: &Common) -> Result<String, Failure> {
    let password = match &common.password_file {
        Some(path) => crate::input::read_secret_line(path)
            .map_err(|e| Failure::Usage(format!("--password-file {}: {e}", path.display())))?,
        None if !std::io::IsTerminal::is_terminal(&std::io::stdin()) => {
            return Err(Failure::Usage(
                "no terminal to ask for the containers' password: give it with \
                 --password-file PATH (a file whose first line is the password)"
                    .to_owned(),
            ))
        }
        None => rpassword::prompt_password("Password of the containers: ").map_err(|e| {
            err(format!(
                "cannot read the password from the terminal ({e}): give it with \
                 --password-file PATH"
            ))
        })?,
    };
    Ok(password)
}

/// The current containers of `kind` in `dir`: `AUTH_*.p12`, or any other `*.p12` for SIGN
/// (hidden files and `*.superseded` are not).
fn candidates(dir: &Path, kind: Kind) -> Result<Vec<PathBuf>, Failure> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Failure::Usage(format!("--keys {}: {e}", dir.display())))?;
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| err(format!("--keys {}: {e}", dir.display())))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with('.') || !name.ends_with(".p12") {
            continue;
        }
        if name.starts_with("AUTH_") == (kind == Kind::Auth) {
            found.push(entry.path());
        }
    }
    found.sort();
    Ok(found)
}

/// The one current container of `kind` in `dir`, opened with `password`.
fn current(dir: &Path, kind: Kind, password: &str) -> Result<Container, Failure> {
    let found = candidates(dir, kind)?;
    match found.as_slice() {
        [] => Err(Failure::Usage(format!(
            "--keys {}: no current {} container in it ({})",
            dir.display(),
            kind.name(),
            match kind {
                Kind::Auth => "AUTH_RSA256_….p12 or AUTH_ECDSA256_….p12",
                Kind::Sign => "RSA256_….p12 or ECDSA256_….p12",
            }
        ))),
        [one] => open(one, password),
        many => Err(Failure::Usage(format!(
            "--keys {}: {} {} containers, where one pair belongs: {}; keep only the current \
             pair's there",
            dir.display(),
            many.len(),
            kind.name(),
            many.iter()
                .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

fn open(path: &Path, password: &str) -> Result<Container, Failure> {
    let shown = path.display();
    let limit = u64::try_from(pkcs12::MAX_CONTAINER).unwrap_or(u64::MAX);
    let bytes =
        crate::input::read_bounded(path, limit).map_err(|e| err(format!("{shown}: {e}")))?;
    let decoded = pkcs12::decode(&bytes, password).map_err(|e| match e {
        pkcs12::Pkcs12Error::WrongPassword => {
            Failure::Usage(format!("{shown}: the password does not open it"))
        }
        other => err(format!("{shown}: {other}")),
    })?;
    let key = match decoded.private_keys().as_slice() {
        [key] => PKey::private_key_from_pkcs8(key)
            .map_err(|_| err(format!("{shown}: its private key cannot be read")))?,
        _ => return Err(err(format!("{shown}: not one private key in it"))),
    };
    let cert = decoded
        .certificates()
        .iter()
        .filter_map(|der| X509::from_der(der).ok())
        .find(|c| c.public_key().is_ok_and(|p| p.public_eq(&key)))
        .ok_or_else(|| err(format!("{shown}: no certificate of its key in it")))?;
    let serial = cert
        .serial_number()
        .to_bn()
        .and_then(|bn| bn.to_hex_str().map(|h| h.to_string()))
        .map_err(err)?;
    Ok(Container {
        path: path.to_path_buf(),
        key,
        cert,
        serial,
    })
}

/// A CMS SignedData over `data` with the container's key, its certificate included, DER in
/// standard base64: attached for the login, detached for a confirmation.
fn cms(signer: &Container, data: &[u8], detached: bool) -> Result<String, Failure> {
    let cert = signer.cert.to_der().map_err(err)?;
    let signed = if detached {
        crate::cms::sign_detached(&signer.key, &cert, data)
    } else {
        crate::cms::sign_attached(&signer.key, &cert, data)
    }
    .map_err(|e| err(format!("cannot sign with {}: {e}", signer.path.display())))?;
    Ok(STANDARD.encode(signed))
}

/// Log in with the AUTH container: sign the server's challenge.
fn login(
    client: &reqwest::blocking::Client,
    common: &Common,
    auth: &Container,
) -> Result<SessionResponse, Refusal> {
    let url = format!("{}/cabinet/api/challenge", base(common));
    let resp = client
        .post(&url)
        .send()
        .map_err(|e| unreachable(&common.server, &url, &e))?;
    if !resp.status().is_success() {
        return Err(refusal(resp));
    }
    let challenge: ChallengeResponse = resp.json().map_err(err)?;
    let bytes = STANDARD
        .decode(challenge.challenge.trim())
        .ok()
        .filter(|b| !b.is_empty() && b.len() <= 1024)
        .ok_or_else(|| err("the server's challenge is not 1 to 1024 bytes of base64"))?;
    let login = LoginRequest {
        cms: cms(auth, &bytes, false)?,
    };
    let url = format!("{}/cabinet/api/login", base(common));
    let resp = client
        .post(&url)
        .json(&login)
        .send()
        .map_err(|e| unreachable(&common.server, &url, &e))?;
    if !resp.status().is_success() {
        return Err(refusal(resp));
    }
    let session: SessionResponse = resp.json().map_err(err)?;
    eprintln!(
        "Logged in with the AUTH certificate {} (application {}).",
        auth.serial, session.application_id
    );
    Ok(session)
}

/// Open the AUTH container in `keys` and log in.
fn logged_in(
    common: &Common,
    keys: &Keys,
) -> Result<(reqwest::blocking::Client, SessionResponse), Failure> {
    let password = container_password(common)?;
    let auth = current(&keys.keys, Kind::Auth, &password)?;
    let client = super::http(common)?;
    let session = login(&client, common, &auth).map_err(|r| r.failure)?;
    Ok((client, session))
}

/// `--out` names where a new application's containers go; these commands use `--keys`.
fn no_out(common: &Common) -> Result<(), Failure> {
    if common.out == Path::new(".") {
        return Ok(());
    }
    Err(Failure::Usage(
        "--out is for a new application: the containers are read from, and written into, \
         --keys DIR"
            .to_owned(),
    ))
}

/// `tamga-enroll cabinet list|revoke`.
pub(super) fn run(common: &Common, command: &CabinetCommand) -> Result<(), Failure> {
    no_out(common)?;
    match command {
        CabinetCommand::List(args) => list(common, args),
        CabinetCommand::Revoke(args) => revoke(common, args),
    }
}

fn list(common: &Common, args: &ListArgs) -> Result<(), Failure> {
    let (client, session) = logged_in(common, &args.keys)?;
    let url = format!("{}/cabinet/api/certificates", base(common));
    let resp = client
        .get(&url)
        .bearer_auth(&session.session_token)
        .send()
        .map_err(|e| unreachable(&common.server, &url, &e))?;
    if !resp.status().is_success() {
        return Err(refusal(resp).failure);
    }
    let certificates: HolderCertificates = resp.json().map_err(err)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&certificates).map_err(err)?
        );
        return Ok(());
    }
    println!(
        "{:<40} {:<4} {:<8} {:<20} {:<20} APPLICATION",
        "SERIAL", "KIND", "STATUS", "REASON", "NOT AFTER"
    );
    for c in &certificates.certificates {
        println!(
            "{:<40} {:<4} {:<8} {:<20} {:<20} {}",
            c.serial,
            c.kind,
            c.status,
            c.revocation_reason.as_deref().unwrap_or("-"),
            c.not_after,
            c.application_id
        );
    }
    Ok(())
}

fn revoke(common: &Common, args: &RevokeArgs) -> Result<(), Failure> {
    let (client, session) = logged_in(common, &args.keys)?;
    let url = format!("{}/cabinet/api/revocations", base(common));
    let request = RevocationRequest {
        serial: args.serial.clone(),
        reason: args.reason.clone(),
        invalidity_date: args.invalidity_date.clone(),
    };
    let resp = client
        .post(&url)
        .bearer_auth(&session.session_token)
        .json(&request)
        .send()
        .map_err(|e| unreachable(&common.server, &url, &e))?;
    if !resp.status().is_success() {
        return Err(refusal(resp).failure);
    }
    let revoked: RevocationResponse = resp.json().map_err(err)?;
    println!(
        "Certificate {} is {} ({}) since {}.",
        revoked.serial, revoked.status, revoked.reason, revoked.revoked_at
    );
    Ok(())
}

/// The request as sent, kept beside the new keys until the new containers are written.
#[derive(Debug, Serialize, Deserialize)]
struct PendingRequest {
    /// The exact body text.
    body: String,
    /// Its confirmation (`Tamga-Confirmation`).
    confirmation: String,
    /// The session it was sent with.
    session_token: String,
}

/// The new AUTH and SIGN keys.
type NewKeys = (PKey<Private>, PKey<Private>);

/// Where a re-issue of the pair whose AUTH certificate is `serial` keeps its state in `dir`.
struct Pending {
    auth: PathBuf,
    sign: PathBuf,
    request: PathBuf,
}

impl Pending {
    fn of(dir: &Path, serial: &str) -> Pending {
        Pending {
            auth: dir.join(format!(".reissue-{serial}-auth.key.pem")),
            sign: dir.join(format!(".reissue-{serial}-sign.key.pem")),
            request: dir.join(format!(".reissue-{serial}.request.json")),
        }
    }

    /// The new keys an earlier run kept, if it did.
    fn keys(&self, password: &str) -> Result<Option<NewKeys>, Failure> {
        if !self.auth.exists() && !self.sign.exists() {
            return Ok(None);
        }
        let load = |path: &Path| -> Result<PKey<Private>, Failure> {
            let pem = crate::input::read_bounded(path, crate::input::PEM_LIMIT)
                .map_err(|e| err(format!("{}: {e}", path.display())))?;
            PKey::private_key_from_pem_passphrase(&pem, password.as_bytes()).map_err(|_| {
                Failure::Usage(format!(
                    "{}: the password does not open these new keys",
                    path.display()
                ))
            })
        };
        Ok(Some((load(&self.auth)?, load(&self.sign)?)))
    }

    fn write_keys(
        &self,
        password: &str,
        auth: &PKey<Private>,
        sign: &PKey<Private>,
    ) -> Result<(), Failure> {
        for (path, key) in [(&self.auth, auth), (&self.sign, sign)] {
            let pem = key
                .private_key_to_pem_pkcs8_passphrase(Cipher::aes_256_cbc(), password.as_bytes())
                .map_err(err)?;
            super::write_private(path, &pem)?;
        }
        Ok(())
    }

    fn request(&self) -> Result<Option<PendingRequest>, Failure> {
        if !self.request.exists() {
            return Ok(None);
        }
        let text = crate::input::read_bounded_text(&self.request, crate::input::PEM_LIMIT)
            .map_err(|e| err(format!("{}: {e}", self.request.display())))?;
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| err(format!("{}: {e}", self.request.display())))
    }

    fn write_request(&self, request: &PendingRequest) -> Result<(), Failure> {
        let text = serde_json::to_vec(request).map_err(err)?;
        super::write_private(&self.request, &text)
    }

    fn remove(&self) {
        for path in [&self.auth, &self.sign, &self.request] {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// `tamga-enroll reissue`.
pub(super) fn reissue(common: &Common, args: &ReissueArgs) -> Result<(), Failure> {
    no_out(common)?;
    let password = container_password(common)?;
    // The new containers are written with it.
    super::check_password(&password).map_err(Failure::Usage)?;
    let dir = &args.keys.keys;
    let auth = current(dir, Kind::Auth, &password)?;
    let sign = current(dir, Kind::Sign, &password)?;
    let consent = match &args.consent_token_file {
        Some(path) => Some(
            crate::input::read_bounded_text(path, crate::input::TOKEN_LIMIT)
                .map_err(|e| {
                    Failure::Usage(format!("--consent-token-file {}: {e}", path.display()))
                })?
                .trim()
                .to_owned(),
        ),
        None => None,
    };
    let client = super::http(common)?;
    super::check_reachable(&client, &common.server)?;

    let pending = Pending::of(dir, &auth.serial);
    let kept = pending.keys(&password)?;
    let saved = pending.request()?;
    if kept.is_some() {
        eprintln!(
            "Resuming the re-issue of AUTH {} with the new keys kept in {} and {}.",
            auth.serial,
            pending.auth.display(),
            pending.sign.display()
        );
    }
    // A run that sent its request reuses its session first; a fresh run logs in first, so a
    // pair the server refuses is refused before any key is made.
    let mut session = match &saved {
        Some(request) => request.session_token.clone(),
        None => {
            login(&client, common, &auth)
                .map_err(|r| r.failure)?
                .session_token
        }
    };
    let (auth_key, sign_key) = match kept {
        Some(keys) => keys,
        None => {
            eprintln!(
                "Generating the new AUTH and SIGN key pairs ({}) on this machine…",
                args.key_type
            );
            let keys = (
                super::generate(args.key_type)?,
                super::generate(args.key_type)?,
            );
            // Before anything is sent: the old pair is revoked when the new one is issued.
            pending.write_keys(&password, &keys.0, &keys.1)?;
            eprintln!(
                "Kept the new keys, encrypted with the containers' password, in {} and {}.",
                pending.auth.display(),
                pending.sign.display()
            );
            keys
        }
    };
    // A request read back from an earlier run may have been committed by the server (its
    // answer lost): its keys are never thrown away on a refusal.
    let resumed = saved.is_some();
    let request = match saved {
        Some(request) => request,
        None => {
            let form = ReissueRequest {
                email: args.email.clone(),
                language: args.language.clone(),
                storage: args.storage.clone(),
                csrs: CsrPair {
                    auth: super::csr(&auth_key, args.email.as_deref())?,
                    sign: super::csr(&sign_key, args.email.as_deref())?,
                },
            };
            // The body is made once: the confirmation signs these exact bytes.
            let body = serde_json::to_string(&form).map_err(err)?;
            let request = PendingRequest {
                confirmation: cms(&sign, body.as_bytes(), true)?,
                body,
                session_token: session.clone(),
            };
            pending.write_request(&request)?;
            request
        }
    };
    eprintln!("Sending the re-issue, confirmed with SIGN {}…", sign.serial);
    let sent = send(
        &client,
        common,
        args,
        &session,
        &request,
        consent.as_deref(),
    );
    let app = match sent {
        Err(r) if r.code == "session_invalid" && request.session_token == session => {
            // The kept session expired: log in again (the old pair is valid unless this very
            // request was committed).
            session = match login(&client, common, &auth) {
                Ok(s) => s.session_token,
                Err(r) if r.code == "certificate_revoked" => {
                    return Err(Failure::Error(format!(
                        "the old pair is revoked and the session of the re-issue sent earlier \
                         has expired, so its answer cannot be asked for again: its new keys \
                         are kept in {} and {} (password: the containers'); ask the CA for \
                         the certificates of the re-issue ({})",
                        pending.auth.display(),
                        pending.sign.display(),
                        r.failure.message()
                    )))
                }
                Err(r) => return Err(r.failure),
            };
            send(
                &client,
                common,
                args,
                &session,
                &request,
                consent.as_deref(),
            )
            .map_err(|r| r.failure)?
        }
        Err(r) if !resumed && !r.uncertain && refused_by_the_ca(&r.code) => {
            // A fresh request refused outright on its first sending: nothing was issued, and
            // these keys will never be.
            pending.remove();
            return Err(r.failure);
        }
        other => other.map_err(|r| r.failure)?,
    };
    finish(
        common,
        dir,
        &password,
        &app,
        (&auth_key, &sign_key),
        [auth, sign],
        &pending,
    )
}

/// Whether a refusal of a first sending proves the CA did not record it: a code of the
/// re-issue's own checks, not one of the front door's (the flood guard, a body that did not
/// arrive), which say nothing of an earlier sending.
fn refused_by_the_ca(code: &str) -> bool {
    !code.is_empty()
        && ![
            "session_invalid",
            "rate_limited_client",
            "rate_limited_connections",
            "body_timeout",
            "body_too_large",
            "request_malformed",
        ]
        .contains(&code)
}

/// Send the re-issue; the same bytes and headers again while the answer is lost (no answer,
/// a timeout, a 5xx), at most `--retries` more times.
fn send(
    client: &reqwest::blocking::Client,
    common: &Common,
    args: &ReissueArgs,
    session: &str,
    request: &PendingRequest,
    consent: Option<&str>,
) -> Result<ApplicationResponse, Refusal> {
    let url = format!("{}/cabinet/api/reissues", base(common));
    let mut attempt = 0u32;
    loop {
        let mut builder = client
            .post(&url)
            .bearer_auth(session)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(CONFIRMATION_HEADER, &request.confirmation)
            .body(request.body.clone().into_bytes());
        if let Some(token) = consent {
            builder = builder.header(CONSENT_HEADER, token);
        }
        let lost = match builder.send() {
            Ok(resp) if resp.status().is_success() => {
                return resp.json::<ApplicationResponse>().map_err(|e| {
                    Refusal::from(err(format!("the server's answer cannot be read: {e}")))
                })
            }
            Ok(resp) if resp.status().is_server_error() => refusal(resp),
            Ok(resp) => {
                let mut refused = refusal(resp);
                refused.uncertain |= attempt > 0;
                return Err(refused);
            }
            Err(e) if e.is_builder() => return Err(unreachable(&common.server, &url, &e).into()),
            Err(e) => unreachable(&common.server, &url, &e).into(),
        };
        if attempt >= args.retries {
            return Err(lost);
        }
        let wait = 1u64 << attempt.min(4);
        attempt += 1;
        eprintln!(
            "No answer to the re-issue ({}); sending the same request again in {wait} s…",
            lost.failure.message()
        );
        std::thread::sleep(Duration::from_secs(wait));
    }
}

/// Write the new containers beside the old ones, rename the old ones as superseded, remove
/// the pending files, and say what was done.
fn finish(
    common: &Common,
    dir: &Path,
    password: &str,
    app: &ApplicationResponse,
    keys: (&PKey<Private>, &PKey<Private>),
    old: [Container; 2],
    pending: &Pending,
) -> Result<(), Failure> {
    let kinds: Vec<&str> = app.certificates.iter().map(|c| c.kind.as_str()).collect();
    if app.status != "issued" || kinds != ["auth", "sign"] {
        return Err(err(format!(
            "the re-issue {} is {} with certificates {kinds:?}: the new keys stay in {} and {}",
            app.id,
            app.status,
            pending.auth.display(),
            pending.sign.display()
        )));
    }
    eprintln!(
        "Application {} is issued{}.",
        app.id,
        app.replaces
            .as_deref()
            .map(|r| format!(", replacing application {r}"))
            .unwrap_or_default()
    );
    super::write_containers(common, dir, password, app, keys.0, keys.1)?;
    for container in &old {
        let mut name = container.path.clone().into_os_string();
        name.push(".superseded");
        let to = PathBuf::from(name);
        // A link, then the old name removed: never over an existing file.
        std::fs::hard_link(&container.path, &to)
            .and_then(|()| std::fs::remove_file(&container.path))
            .map_err(|e| {
                err(format!(
                    "renaming {} to {}: {e}",
                    container.path.display(),
                    to.display()
                ))
            })?;
        eprintln!(
            "Superseded: {} (serial {}).",
            to.display(),
            container.serial
        );
    }
    pending.remove();
    let [auth, sign] = &old;
    eprintln!(
        "Re-issued: the CA revoked AUTH {} and SIGN {} (superseded); the new certificates are {}.",
        auth.serial,
        sign.serial,
        app.certificates
            .iter()
            .map(|c| format!("{} {}", c.kind.to_uppercase(), c.serial))
            .collect::<Vec<_>>()
            .join(" and ")
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

    /// Every code of the cabinet reads as a sentence, with the server's detail after it; a
    /// code the cabinet does not know reads as every refusal does.
    #[test]
    fn the_cabinets_codes_read_as_sentences() {
        for code in [
            "session_invalid",
            "challenge_invalid",
            "cms_malformed",
            "cms_algorithm_not_allowed",
            "cms_signature_invalid",
            "cms_signer_unknown",
            "cms_signer_wrong_kind",
            "cms_signer_not_holder",
            "certificate_revoked",
            "certificate_on_hold",
            "certificate_expired",
            "confirmation_missing",
            "already_reissued",
            "consent_token_missing",
            "consent_token_wrong_holder",
            "consent_token_wrong_purpose",
            "not_certificate_holder",
            "key_reused",
        ] {
            let body = format!(
                r#"{{"type":"urn:tamga:problem:{code}","title":"T","status":403,"code":"{code}","detail":"D"}}"#
            );
            let problem = serde_json::from_str(&body).unwrap();
            let shown = super::refused_text(403, problem, None);
            let sentence = super::sentence(code).unwrap();
            assert_eq!(
                shown,
                format!("{code} (403): {sentence} (the server says: D)")
            );
        }
        let body = r#"{"type":"urn:tamga:problem:x_y","title":"Conflict","status":409,"code":"x_y","detail":"why"}"#;
        let problem = serde_json::from_str(body).unwrap();
        assert_eq!(
            super::refused_text(409, problem, None),
            "x_y (409): Conflict: why"
        );
    }

    /// The commands parse as the README writes them.
    #[test]
    fn the_cabinet_commands_parse() {
        use clap::Parser;
        let cli = super::super::Cli::try_parse_from([
            "tamga-enroll",
            "reissue",
            "--server",
            "http://127.0.0.1:8080",
            "--keys",
            "keys",
            "--password-file",
            "p.txt",
            "--email",
            "a@example.kz",
            "--key-type",
            "ec-p256",
        ])
        .unwrap();
        match cli.command {
            Some(super::super::Command::Reissue(args)) => {
                assert_eq!(args.keys.keys, std::path::Path::new("keys"));
                assert_eq!(args.key_type, super::KeyType::EcP256);
                assert_eq!(args.retries, 5);
                assert_eq!(args.language, "kk");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(cli.common.server, "http://127.0.0.1:8080");
        let cli = super::super::Cli::try_parse_from([
            "tamga-enroll",
            "cabinet",
            "revoke",
            "--keys",
            "k",
            "--serial",
            "0A",
            "--reason",
            "keyCompromise",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            Some(super::super::Command::Cabinet(super::CabinetCommand::Revoke(r)))
                if r.serial == "0A" && r.reason == "keyCompromise"
        ));
    }

    /// Only `AUTH_*.p12` is an AUTH container and only another `*.p12` a SIGN one: hidden
    /// files, pending keys and superseded containers are neither.
    #[test]
    fn the_current_containers_are_found_by_name() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "AUTH_RSA256_aa.p12",
            "RSA256_bb.p12",
            "AUTH_RSA256_00.p12.superseded",
            "RSA256_01.p12.superseded",
            ".reissue-0A-auth.key.pem",
            ".AUTH_x.p12",
            "notes.txt",
        ] {
            std::fs::write(dir.path().join(name), "x").unwrap();
        }
        let names = |kind| {
            super::candidates(dir.path(), kind)
                .unwrap()
                .iter()
                .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(super::Kind::Auth), ["AUTH_RSA256_aa.p12"]);
        assert_eq!(names(super::Kind::Sign), ["RSA256_bb.p12"]);
        std::fs::write(dir.path().join("ECDSA256_cc.p12"), "x").unwrap();
        let shown = match super::current(dir.path(), super::Kind::Sign, "Secret2026") {
            Err(super::Failure::Usage(m)) => m,
            _ => panic!("two SIGN containers are refused"),
        };
        assert!(shown.contains("ECDSA256_cc.p12, RSA256_bb.p12"), "{shown}");
    }
}
