//! `tamga-enroll`, the citizen-side signing client: it plays what the local signing client of
//! the real service does. It checks the container password (every rule it breaks, at once),
//! checks that the server answers (`/healthz`), generates the AUTH and SIGN key pairs on this
//! machine, sends the two certification requests with the consent token, polls while the
//! application waits for an operator (then prints the `resume` command that finishes it, as it
//! runs), and writes two password-protected PKCS#12 files. A run that fails takes away the
//! `--out` directory it created, if nothing was written into it. Its own messages are in
//! English; `--language` is the language of the server's e-mails. `reissue` and `cabinet
//! list|revoke` (the `cabinet` module) use the holder's current containers to log in to the cabinet
//! and to re-issue the pair. `agent` (the [`agent`] module) is the local signing agent the
//! citizen's pages call: the same keys, requests and containers, over HTTP on loopback.
//!
//! Owns: the password policy, local key generation, CSRs, which containers it writes (through
//! [`crate::pkcs12`]: modern PBES2/AES-256 with the chain by default, NCA's own 3DES/RC2
//! container with `--legacy-p12`; a GOST SIGN key of `--sign-key-type gost2015-512`, made and
//! requested through [`crate::gost`], always in NCA's container with NCA's PKCS#8, as NCA
//! writes `GOST512_<ski>.p12`: [`gost_container`]), their names, and writing them both or none
//! (`make_containers`, `write_new_files`: the command line and the agent share them). Must
//! never: send or write a private key unencrypted (a pending application's keys are kept as
//! password-encrypted PKCS#8 until its certificates arrive; the agent's under its own
//! AES-256-GCM key), replace a file, leave one container of a pair without the other, or reach
//! into the server's internals — it speaks only the HTTP API through the shared
//! [`crate::api::types`].

use std::ffi::{OsStr, OsString};
use std::io::{IsTerminal, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand, ValueEnum};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::stack::Stack;
use openssl::symm::Cipher;
use openssl::x509::extension::SubjectAlternativeName;
use openssl::x509::{X509NameBuilder, X509ReqBuilder, X509};

use crate::gost::{self, Form, GostPublicKey, KeySize};
use crate::pkcs12::{self, Contents, Protection};

pub mod agent;
mod cabinet;

use crate::api::types::{
    ApplicationRequest, ApplicationResponse, CsrPair, ProblemCode, ProblemDocument,
};

const EXIT_CODES: &str = "\
Exit codes:
  0  the two .p12 files were written
  1  error (network, files, unexpected answer)
  2  usage error, or a password that breaks the policy
  3  the server refused the application (its code and message are shown)
  4  still pending review when polling stopped: run the `tamga-enroll resume …` command it
     prints once an operator approved the application

The container password is read from --password-file, or asked on the terminal; without a
terminal (stdin not one) --password-file is required.";

/// The citizen's signing client for Tamga.
#[derive(Debug, Parser)]
#[command(
    name = "tamga-enroll",
    version,
    about = "The citizen's client of Tamga: generates the AUTH and SIGN key pairs on this \
             machine, applies for their certificates and writes the key containers",
    after_help = EXIT_CODES
)]
pub struct Cli {
    /// Options of every command.
    #[command(flatten)]
    pub common: Common,
    /// A new application (without a subcommand).
    #[command(flatten)]
    pub submit: SubmitArgs,
    /// Other commands.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// `tamga-enroll resume`, `reissue`, `cabinet …`
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Fetch the certificates of an application that was pending review, and write the files.
    Resume(ResumeArgs),
    /// New keys and certificates for a valid pair, with its containers: no new Digital ID
    /// journey. The old pair is revoked (superseded) when the new one is issued.
    #[command(after_help = cabinet::REISSUE_HELP)]
    Reissue(cabinet::ReissueArgs),
    /// The holder's cabinet, logged in with the AUTH container: list or revoke certificates.
    #[command(subcommand)]
    Cabinet(cabinet::CabinetCommand),
    /// The local signing agent the citizen's pages call: keys, requests and containers on
    /// this machine, for the pages of the origins given only, into the allowed folders only.
    Agent(agent::AgentArgs),
}

/// Key algorithms the client generates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KeyType {
    /// RSA 2048.
    Rsa2048,
    /// RSA 3072.
    Rsa3072,
    /// ECDSA P-256.
    EcP256,
}

/// The key type as the citizen names it on the command line (`rsa2048`, `ec-p256`).
impl std::fmt::Display for KeyType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.to_possible_value() {
            Some(value) => f.write_str(value.get_name()),
            None => Ok(()),
        }
    }
}

/// Key algorithms of a SIGN key that differs from the AUTH key's (`--sign-key-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SignKeyType {
    /// GOST R 34.10-2015, 512 bits (TC26 parameter set A), in NCA's form: made through
    /// OpenSSL's gost engine, requested in NCA's form, written as NCA's `GOST512_<ski>.p12`.
    #[value(name = "gost2015-512")]
    Gost2015_512,
}

/// The SIGN key type as the command line names it (`gost2015-512`).
impl std::fmt::Display for SignKeyType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.to_possible_value() {
            Some(value) => f.write_str(value.get_name()),
            None => Ok(()),
        }
    }
}

/// Options shared by submitting and resuming.
#[derive(Debug, Args)]
pub struct Common {
    /// Tamga's base URL.
    #[arg(long, global = true, default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// Directory for the .p12 files (created if missing).
    #[arg(long, global = true, default_value = ".")]
    pub out: PathBuf,
    /// File holding the container password (first line) [default: ask on the terminal;
    /// required without one].
    #[arg(long, global = true)]
    pub password_file: Option<PathBuf>,
    /// Write NCA's own container (3DES key, RC2-40 certificate, SHA-1 MAC, 1024 iterations,
    /// no chain), which NCA's software reads, instead of PBES2/AES-256.
    #[arg(long, global = true)]
    pub legacy_p12: bool,
    /// PBKDF2-HMAC-SHA256 iterations of the modern containers (also the MAC's).
    #[arg(
        long,
        global = true,
        default_value_t = pkcs12::DEFAULT_ITERATIONS,
        value_parser = clap::value_parser!(u32).range(i64::from(pkcs12::MIN_ITERATIONS)..=i64::from(pkcs12::MAX_ITERATIONS)),
        conflicts_with = "legacy_p12"
    )]
    pub p12_iterations: u32,
    /// How long to poll an application pending review before exiting (seconds).
    #[arg(long, global = true, default_value_t = 60)]
    pub poll_timeout: u64,
    /// CA certificates (PEM) to trust for an https --server, besides the system's.
    #[arg(long, global = true)]
    pub ca_cert: Option<PathBuf>,
    /// A TLS client certificate (PEM) to present, for a server whose portal API asks for one
    /// ([server.tls] client_ca): the portal's identity, for operators testing a deployment.
    #[arg(long, global = true, requires = "client_key")]
    pub client_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM, unencrypted).
    #[arg(long, global = true, requires = "client_cert")]
    pub client_key: Option<PathBuf>,
}

/// A new application.
#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// The Digital ID consent token.
    #[arg(long, conflicts_with = "token_file")]
    pub token: Option<String>,
    /// A file holding the consent token.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// E-mail for notifications and the certificates' subjectAltName.
    #[arg(long)]
    pub email: Option<String>,
    /// Language of the e-mails the server sends about this application (this client's own
    /// messages are in English).
    #[arg(long, default_value = "kk", value_parser = ["kk", "ru", "en"])]
    pub language: String,
    /// Key storage.
    #[arg(long, default_value = "pkcs12", value_parser = ["pkcs12"])]
    pub storage: String,
    /// Key algorithm of both key pairs (of the AUTH pair alone with --sign-key-type).
    #[arg(long, value_enum, default_value = "rsa2048")]
    pub key_type: KeyType,
    /// Key algorithm of the SIGN pair, when it is not --key-type's: `gost2015-512` makes a
    /// GOST R 34.10-2015 512-bit key (OpenSSL's gost engine is needed), requests it in NCA's
    /// form and writes it as NCA does, `GOST512_<ski>.p12` in NCA's own container (whatever
    /// --legacy-p12 says; the AUTH container follows it as usual).
    #[arg(long, value_enum)]
    pub sign_key_type: Option<SignKeyType>,
    /// The user-agreement version shown to (and accepted by) the citizen.
    #[arg(long, default_value = "2026-1")]
    pub agreement_version: String,
}

/// Resume a pending application.
#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// The application id (use the same --out and password as when it was submitted).
    #[arg(long)]
    pub application: String,
    /// The access token printed when it was submitted (it may begin with `-`).
    #[arg(long, allow_hyphen_values = true)]
    pub access_token: String,
}

/// A failure with its exit code.
#[derive(Debug)]
enum Failure {
    Error(String),
    Usage(String),
    Refused(String),
    Pending(String),
}

impl Failure {
    /// What the citizen reads.
    fn message(&self) -> &str {
        match self {
            Failure::Error(m) | Failure::Usage(m) | Failure::Refused(m) | Failure::Pending(m) => m,
        }
    }

    fn exit(&self) -> u8 {
        match self {
            Failure::Error(_) => 1,
            Failure::Usage(_) => 2,
            Failure::Refused(_) => 3,
            Failure::Pending(_) => 4,
        }
    }
}

fn err(e: impl std::fmt::Display) -> Failure {
    Failure::Error(e.to_string())
}

/// Run the client.
pub fn main() -> ExitCode {
    // First, before any other use of OpenSSL: its configuration loads the gost engine.
    crate::gost::init();
    let cli = Cli::parse();
    let result = match &cli.command {
        Some(Command::Resume(args)) => resume(&cli.common, args),
        Some(Command::Reissue(args)) => cabinet::reissue(&cli.common, args),
        Some(Command::Cabinet(command)) => cabinet::run(&cli.common, command),
        Some(Command::Agent(args)) => agent::run(&cli.common, args),
        None => submit(&cli.common, &cli.submit),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            match &f {
                Failure::Error(m) => eprintln!("tamga-enroll: error: {m}"),
                Failure::Usage(m) => eprintln!("tamga-enroll: {m}"),
                Failure::Refused(m) => eprintln!("tamga-enroll: the server refused: {m}"),
                Failure::Pending(m) => eprintln!("tamga-enroll: {m}"),
            }
            ExitCode::from(f.exit())
        }
    }
}

/// The real service's container password policy: every rule `password` breaks, in the
/// order the policy states them (none when it meets the policy).
pub fn password_rules_broken(password: &str) -> Vec<String> {
    let mut broken = Vec::new();
    let len = password.chars().count();
    if !(6..=32).contains(&len) {
        broken.push(format!("it must be 6 to 32 characters long (it has {len})"));
    }
    if !password.chars().any(char::is_uppercase) {
        broken.push("it needs an upper-case letter".to_owned());
    }
    if !password.chars().any(char::is_lowercase) {
        broken.push("it needs a lower-case letter".to_owned());
    }
    if !password.chars().any(|c| c.is_ascii_digit()) {
        broken.push("it needs a digit".to_owned());
    }
    broken
}

/// The password policy as the citizen reads it: every rule broken, in one message.
pub fn check_password(password: &str) -> Result<(), String> {
    let broken = password_rules_broken(password);
    if broken.is_empty() {
        return Ok(());
    }
    Err(format!(
        "the container password breaks the policy: {}",
        broken.join("; ")
    ))
}

fn read_password(common: &Common) -> Result<String, Failure> {
    let password = match &common.password_file {
        Some(path) => crate::input::read_secret_line(path)
            .map_err(|e| Failure::Usage(format!("--password-file {}: {e}", path.display())))?,
        // Asked on the terminal only when the client runs in one: without a terminal (a
        // script, a service, stdin from a file or a pipe) there is nobody to ask.
        None if !std::io::stdin().is_terminal() => {
            return Err(Failure::Usage(
                "no terminal to ask for the container password: give it with \
                 --password-file PATH (a file whose first line is the password)"
                    .to_owned(),
            ))
        }
        None => {
            let ask = |prompt: &str| {
                rpassword::prompt_password(prompt).map_err(|e| {
                    err(format!(
                        "cannot read the password from the terminal ({e}): give it with \
                         --password-file PATH"
                    ))
                })
            };
            let first = ask("Container password: ")?;
            let again = ask("Repeat the password: ")?;
            if first != again {
                return Err(Failure::Usage("the passwords differ".to_owned()));
            }
            first
        }
    };
    check_password(&password).map_err(Failure::Usage)?;
    Ok(password)
}

/// The SIGN key: of `sign_key_type` when given, else of `key_type` as the AUTH key.
fn generate_sign(
    key_type: KeyType,
    sign_key_type: Option<SignKeyType>,
) -> Result<PKey<Private>, Failure> {
    match sign_key_type {
        None => generate(key_type),
        Some(SignKeyType::Gost2015_512) => gost::generate(KeySize::Bits512).map_err(err),
    }
}

/// Where `--sign-key-type` asks for a key this process cannot make (no gost engine), the
/// refusal that stops the run before anything is asked, made, sent or written.
fn check_sign_key_type(sign_key_type: Option<SignKeyType>) -> Result<(), Failure> {
    match (sign_key_type, gost::support()) {
        (Some(t @ SignKeyType::Gost2015_512), gost::GostSupport::Unavailable(why)) => {
            Err(err(format!(
                "--sign-key-type {t}: GOST keys need OpenSSL's gost engine, which this \
                 process does not have ({why}); install it (Debian: apt-get install \
                 libengine-gost-openssl) or leave --sign-key-type out"
            )))
        }
        _ => Ok(()),
    }
}

fn generate(key_type: KeyType) -> Result<PKey<Private>, Failure> {
    let key = match key_type {
        KeyType::Rsa2048 => PKey::from_rsa(Rsa::generate(2048).map_err(err)?),
        KeyType::Rsa3072 => PKey::from_rsa(Rsa::generate(3072).map_err(err)?),
        KeyType::EcP256 => {
            let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).map_err(err)?;
            PKey::from_ec_key(EcKey::generate(&group).map_err(err)?)
        }
    };
    key.map_err(err)
}

/// The certification request (PEM) of `key`, with `email` as its subjectAltName: a GOST key's
/// in NCA's form, any other key's as OpenSSL writes it.
fn csr(key: &PKey<Private>, email: Option<&str>) -> Result<String, Failure> {
    if gost::private_key_size(key).is_some() {
        return gost_csr(key, email);
    }
    let mut b = X509ReqBuilder::new().map_err(err)?;
    let mut name = X509NameBuilder::new().map_err(err)?;
    // The CA takes the subject from the consent token; this one only labels the request.
    name.append_entry_by_nid(Nid::COMMONNAME, "tamga-enroll")
        .map_err(err)?;
    b.set_subject_name(&name.build()).map_err(err)?;
    b.set_pubkey(key).map_err(err)?;
    if let Some(email) = email {
        let san = SubjectAlternativeName::new()
            .email(email)
            .build(&b.x509v3_context(None))
            .map_err(err)?;
        let mut exts = Stack::new().map_err(err)?;
        exts.push(san).map_err(err)?;
        b.add_extensions(&exts).map_err(err)?;
    }
    b.sign(key, MessageDigest::sha256()).map_err(err)?;
    let pem = b.build().to_pem().map_err(err)?;
    String::from_utf8(pem).map_err(err)
}

/// The certification request (PEM) of a GOST key in NCA's form, with `email` as its
/// subjectAltName.
fn gost_csr(key: &PKey<Private>, email: Option<&str>) -> Result<String, Failure> {
    // As the other requests: the CA takes the subject from the consent token.
    let subject = x509_cert::name::Name::from_str("CN=tamga-enroll").map_err(err)?;
    let der =
        gost::certification_request_with_email(&subject, key, Form::Nca, email).map_err(err)?;
    Ok(crate::pem::encode("CERTIFICATE REQUEST", &der))
}

/// Write a new file with mode 0600 (never replacing one).
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    write_new(path, bytes).map_err(|e| err(format!("{}: {e}", path.display())))
}

/// Write a new file with mode 0600, never replacing one (nor following a link at its name),
/// and sync it and its directory. A file this could not finish writing is taken away.
fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    if let Err(e) = f.write_all(bytes).and_then(|()| f.sync_all()) {
        drop(f);
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    // The new name too must survive a power cut: the keys may be all the holder has of a pair
    // the CA has already certified.
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::File::open(dir).and_then(|d| d.sync_all())
}

fn pending_key_path(out: &Path, application: &str, kind: &str) -> PathBuf {
    out.join(format!(".pending-{application}-{kind}.key.pem"))
}

fn http(common: &Common) -> Result<reqwest::blocking::Client, Failure> {
    let read = |flag: &str, path: &Path| {
        crate::input::read_bounded(path, crate::input::PEM_LIMIT)
            .map_err(|e| Failure::Usage(format!("{flag} {}: {e}", path.display())))
    };
    let mut builder = reqwest::blocking::Client::builder().timeout(Duration::from_secs(30));
    if let Some(path) = &common.ca_cert {
        let bundle = reqwest::Certificate::from_pem_bundle(&read("--ca-cert", path)?)
            .map_err(|e| Failure::Usage(format!("--ca-cert {}: {e}", path.display())))?;
        if bundle.is_empty() {
            return Err(Failure::Usage(format!(
                "--ca-cert {}: no PEM certificate in it",
                path.display()
            )));
        }
        for cert in bundle {
            builder = builder.add_root_certificate(cert);
        }
    }
    if let (Some(cert_path), Some(key_path)) = (&common.client_cert, &common.client_key) {
        let cert = read("--client-cert", cert_path)?;
        // Any PEM private key (PKCS#1, SEC1, PKCS#8), handed to the TLS stack as PKCS#8.
        let key = PKey::private_key_from_pem_passphrase(&read("--client-key", key_path)?, b"")
            .and_then(|k| k.private_key_to_pem_pkcs8())
            .map_err(|_| {
                Failure::Usage(format!(
                    "--client-key {}: not an unencrypted PEM private key",
                    key_path.display()
                ))
            })?;
        let identity = reqwest::Identity::from_pkcs8_pem(&cert, &key).map_err(|e| {
            Failure::Usage(format!(
                "--client-cert {} with --client-key {}: {e}",
                cert_path.display(),
                key_path.display()
            ))
        })?;
        builder = builder.identity(identity);
    }
    builder.build().map_err(err)
}

/// Turn a non-success answer into a refusal naming the server's code.
fn refusal(resp: reqwest::blocking::Response) -> Failure {
    let status = resp.status();
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(|secs| secs.trim().to_owned());
    match resp.json::<ProblemDocument>() {
        Ok(p) => Failure::Refused(refused_text(status.as_u16(), p, retry_after.as_deref())),
        Err(_) => Failure::Error(format!("unexpected answer: HTTP {status}")),
    }
}

/// What the citizen reads about a problem document: its code and status, then the server's
/// detail (or title). A code this client does not know yet (a newer server) is still shown
/// with the problem's title and detail, never as an unexpected answer.
/// A refusal as the citizen reads it: the problem, then the wait `Retry-After` asks for,
/// unless the server's own words already give that wait ("retry in 60 s").
fn refused_text(status: u16, problem: ProblemDocument, retry_after: Option<&str>) -> String {
    let described = describe(status, problem);
    match retry_after.map(|secs| format!("{secs} s")) {
        Some(wait) if !described.contains(&wait) => format!("{described} (retry after {wait})"),
        _ => described,
    }
}

fn describe(status: u16, problem: ProblemDocument) -> String {
    let code = problem.code.as_str();
    match (&problem.code, problem.detail) {
        (ProblemCode::Known(_), Some(detail)) => format!("{code} ({status}): {detail}"),
        (ProblemCode::Known(_), None) => format!("{code} ({status}): {}", problem.title),
        (ProblemCode::Unknown(_), Some(detail)) => {
            format!("{code} ({status}): {}: {detail}", problem.title)
        }
        (ProblemCode::Unknown(_), None) => format!("{code} ({status}): {}", problem.title),
    }
}

/// What went wrong at the bottom of an error's causes ("Connection refused (os error 111)",
/// a TLS verification failure): the layers above it only repeat the URL.
fn root_cause(e: &dyn std::error::Error) -> String {
    let mut deepest = e;
    while let Some(cause) = deepest.source() {
        deepest = cause;
    }
    deepest.to_string()
}

/// A request to `url` (under `--server`) that got no answer: a `--server` that is no URL is a
/// usage error; anything else (refused, timed out, a TLS failure) names the URL it tried.
fn unreachable(server: &str, url: &str, e: &reqwest::Error) -> Failure {
    if e.is_builder() {
        return Failure::Usage(format!(
            "--server {server}: not an http:// or https:// URL ({})",
            root_cause(e)
        ));
    }
    if e.is_timeout() {
        return err(format!("cannot reach {url}: no answer in time"));
    }
    err(format!("cannot reach {url}: {}", root_cause(e)))
}

/// Ask the server's `/healthz` before anything is generated: a server that cannot be reached
/// (refused, no answer, a TLS failure) stops the run at once, naming the URL. Any HTTP answer
/// will do, even an error: whether the server can issue now is for the application's own
/// answer to say, with its code (`signing_key_unavailable`, say).
fn check_reachable(client: &reqwest::blocking::Client, server: &str) -> Result<(), Failure> {
    let url = format!("{}/healthz", server.trim_end_matches('/'));
    client
        .get(&url)
        .timeout(Duration::from_secs(10))
        .send()
        .map_err(|e| unreachable(server, &url, &e))?;
    Ok(())
}

/// Create the `--out` directory; the directories this made, deepest first (none when it
/// existed), so that a run that fails before writing into them can take them away again.
fn create_out(out: &Path) -> Result<Vec<PathBuf>, Failure> {
    let mut missing = Vec::new();
    let mut dir = out;
    while !dir.as_os_str().is_empty() && std::fs::symlink_metadata(dir).is_err() {
        missing.push(dir.to_path_buf());
        match dir.parent() {
            Some(parent) => dir = parent,
            None => break,
        }
    }
    std::fs::create_dir_all(out).map_err(|e| err(format!("--out {}: {e}", out.display())))?;
    Ok(missing)
}

/// Remove the directories a failed run created, as long as they are empty: never one that
/// existed before, never one holding anything (pending keys, containers, someone's file).
fn remove_if_empty(created: &[PathBuf]) {
    for dir in created {
        if std::fs::remove_dir(dir).is_err() {
            break;
        }
    }
}

fn submit(common: &Common, args: &SubmitArgs) -> Result<(), Failure> {
    if args.token.is_none() && args.token_file.is_none() {
        return Err(Failure::Usage(
            "--token or --token-file is required (see --help)".to_owned(),
        ));
    }
    check_sign_key_type(args.sign_key_type)?;
    // The password is checked before any key is generated or anything is sent.
    let password = read_password(common)?;
    let token = match (&args.token, &args.token_file) {
        (Some(t), _) => t.trim().to_owned(),
        (None, Some(path)) => crate::input::read_bounded_text(path, crate::input::TOKEN_LIMIT)
            .map_err(|e| Failure::Usage(format!("--token-file {}: {e}", path.display())))?
            .trim()
            .to_owned(),
        (None, None) => {
            return Err(Failure::Usage(
                "--token or --token-file is required".to_owned(),
            ))
        }
    };
    let client = http(common)?;
    check_reachable(&client, &common.server)?;
    let created = create_out(&common.out)?;
    let result = apply(common, args, &client, &password, &token);
    if result.is_err() {
        remove_if_empty(&created);
    }
    result
}

/// Generate the keys, send the application, and write the containers (or keep the keys
/// while it waits for an operator).
fn apply(
    common: &Common,
    args: &SubmitArgs,
    client: &reqwest::blocking::Client,
    password: &str,
    token: &str,
) -> Result<(), Failure> {
    match args.sign_key_type {
        None => eprintln!(
            "Generating the AUTH and SIGN key pairs ({}) on this machine…",
            args.key_type
        ),
        Some(sign) => eprintln!(
            "Generating the AUTH ({}) and SIGN ({sign}) key pairs on this machine…",
            args.key_type
        ),
    }
    let auth_key = generate(args.key_type)?;
    let sign_key = generate_sign(args.key_type, args.sign_key_type)?;
    let request = ApplicationRequest {
        agreement_version: args.agreement_version.clone(),
        agreement_accepted: true,
        email: args.email.clone(),
        language: args.language.clone(),
        storage: args.storage.clone(),
        csrs: CsrPair {
            auth: csr(&auth_key, args.email.as_deref())?,
            sign: csr(&sign_key, args.email.as_deref())?,
        },
    };
    eprintln!("Submitting the application to {}…", common.server);
    let url = format!(
        "{}/api/v1/applications",
        common.server.trim_end_matches('/')
    );
    let resp = client
        .post(&url)
        .bearer_auth(token)
        .json(&request)
        .send()
        .map_err(|e| unreachable(&common.server, &url, &e))?;
    if !resp.status().is_success() {
        return Err(refusal(resp));
    }
    let created: ApplicationResponse = resp.json().map_err(err)?;
    let access_token = created
        .access_token
        .clone()
        .ok_or_else(|| err("the server returned no access token"))?;
    eprintln!("Application {} is {}.", created.id, created.status);
    if created.status == "issued" {
        return write_containers(
            common,
            &common.out,
            password,
            &created,
            &auth_key,
            &sign_key,
        )
        .map(drop);
    }
    // Keep the keys, encrypted with the container password, until the certificates come.
    for (kind, key) in [("auth", &auth_key), ("sign", &sign_key)] {
        let pem = key
            .private_key_to_pem_pkcs8_passphrase(Cipher::aes_256_cbc(), password.as_bytes())
            .map_err(err)?;
        write_private(&pending_key_path(&common.out, &created.id, kind), &pem)?;
    }
    poll_and_write(common, password, &created.id, &access_token)
}

fn resume(common: &Common, args: &ResumeArgs) -> Result<(), Failure> {
    let password = read_password(common)?;
    poll_and_write(common, &password, &args.application, &args.access_token)
}

/// `word` as a POSIX shell reads it back: as it is when no shell treats any of its characters
/// specially, otherwise in single quotes. What the server sent (an application id, a token)
/// is quoted too, so a printed command runs nothing else.
fn shell_word(word: &str) -> String {
    // A word may not begin with `=` (zsh expands `=cmd`) or `~` unquoted.
    let plain = !word.is_empty()
        && !word.starts_with('=')
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// The command that finishes application `id` once an operator approved it, runnable as
/// printed from any directory: the program as it was started (a path made absolute; a bare
/// name is found on `PATH` again), the server, every option the connection and the
/// containers need (TLS files, the password file, the container kind and iterations), the
/// files made absolute, each word quoted for the shell.
fn resume_command(program: &OsStr, common: &Common, id: &str, access_token: &str) -> String {
    let path = |p: &Path| {
        std::path::absolute(p)
            .unwrap_or_else(|_| p.to_path_buf())
            .display()
            .to_string()
    };
    let program = if program.as_encoded_bytes().contains(&b'/') {
        path(Path::new(program))
    } else {
        program.to_string_lossy().into_owned()
    };
    let mut words = vec![
        program,
        "resume".to_owned(),
        "--server".to_owned(),
        common.server.clone(),
    ];
    for (flag, file) in [
        ("--ca-cert", &common.ca_cert),
        ("--client-cert", &common.client_cert),
        ("--client-key", &common.client_key),
        ("--password-file", &common.password_file),
    ] {
        if let Some(file) = file {
            words.extend([flag.to_owned(), path(file)]);
        }
    }
    if common.legacy_p12 {
        words.push("--legacy-p12".to_owned());
    } else if common.p12_iterations != pkcs12::DEFAULT_ITERATIONS {
        words.extend([
            "--p12-iterations".to_owned(),
            common.p12_iterations.to_string(),
        ]);
    }
    words.extend([
        "--out".to_owned(),
        path(&common.out),
        // With `=`: the id and the token come from the server, and may begin with `-`.
        format!("--application={id}"),
        format!("--access-token={access_token}"),
    ]);
    words
        .iter()
        .map(|w| shell_word(w))
        .collect::<Vec<_>>()
        .join(" ")
}

fn poll_and_write(
    common: &Common,
    password: &str,
    id: &str,
    access_token: &str,
) -> Result<(), Failure> {
    let client = http(common)?;
    let started = Instant::now();
    let url = format!(
        "{}/api/v1/applications/{id}",
        common.server.trim_end_matches('/')
    );
    loop {
        let resp = client
            .get(&url)
            .bearer_auth(access_token)
            .send()
            .map_err(|e| unreachable(&common.server, &url, &e))?;
        if !resp.status().is_success() {
            return Err(refusal(resp));
        }
        let app: ApplicationResponse = resp.json().map_err(err)?;
        match app.status.as_str() {
            "issued" => {
                let load = |kind: &str| -> Result<PKey<Private>, Failure> {
                    let path = pending_key_path(&common.out, id, kind);
                    let pem = crate::input::read_bounded(&path, crate::input::PEM_LIMIT).map_err(
                        |e| {
                            err(format!(
                                "{}: {e} (resume with the same --out as the submission)",
                                path.display()
                            ))
                        },
                    )?;
                    PKey::private_key_from_pem_passphrase(&pem, password.as_bytes()).map_err(|_| {
                        match gost::support() {
                            gost::GostSupport::Available => Failure::Usage(
                                "this password does not open the pending keys".to_owned(),
                            ),
                            // A GOST key (--sign-key-type) reads only through the engine.
                            gost::GostSupport::Unavailable(why) => Failure::Usage(format!(
                                "this password does not open the pending keys, or one is a \
                                 GOST key and OpenSSL's gost engine is missing ({why})"
                            )),
                        }
                    })
                };
                let (auth, sign) = (load("auth")?, load("sign")?);
                write_containers(common, &common.out, password, &app, &auth, &sign)?;
                for kind in ["auth", "sign"] {
                    let _ = std::fs::remove_file(pending_key_path(&common.out, id, kind));
                }
                return Ok(());
            }
            "rejected" => {
                return Err(Failure::Refused(format!(
                    "application {id} was rejected: {}",
                    app.reason.unwrap_or_default()
                )))
            }
            status => {
                let waited = started.elapsed().as_secs();
                eprintln!("Application {id}: {status} (waiting for an operator, {waited} s)…");
                if started.elapsed() >= Duration::from_secs(common.poll_timeout) {
                    let program = std::env::args_os()
                        .next()
                        .unwrap_or_else(|| OsString::from("tamga-enroll"));
                    return Err(Failure::Pending(format!(
                        "application {id} is still {status}. When it is approved, run:\n  {}",
                        resume_command(&program, common, id, access_token)
                    )));
                }
                std::thread::sleep(Duration::from_secs(2));
            }
        }
    }
}

/// Write the containers of `app`'s certificates with their keys into `out`; the files written,
/// AUTH first. Both files or none: see [`write_new_files`].
fn write_containers(
    common: &Common,
    out: &Path,
    password: &str,
    app: &ApplicationResponse,
    auth_key: &PKey<Private>,
    sign_key: &PKey<Private>,
) -> Result<Vec<PathBuf>, Failure> {
    let certificates: Vec<(&str, &str)> = app
        .certificates
        .iter()
        .map(|c| (c.kind.as_str(), c.pem.as_str()))
        .collect();
    let containers = make_containers(
        protection(common.legacy_p12, common.p12_iterations),
        password,
        &certificates,
        app.chain_pem.as_deref().unwrap_or(""),
        auth_key,
        sign_key,
    )?;
    let written = write_new_files(out, &containers)?;
    for (path, cert) in written.iter().zip(&app.certificates) {
        println!("{}", path.display());
        eprintln!(
            "Wrote {} ({} certificate {}).",
            path.display(),
            cert.kind.to_uppercase(),
            cert.serial
        );
    }
    Ok(written)
}

/// Why the containers could not be made or written.
#[derive(Debug)]
pub enum ContainerError {
    /// Not exactly one `auth` and one `sign` certificate (AUTH first).
    Incomplete(String),
    /// The certificate of this kind does not carry the key held for it.
    KeyMismatch(String),
    /// A file of this name exists already: nothing was written.
    Exists(PathBuf),
    /// Anything else: a certificate or chain that does not parse, a write that failed.
    Other(String),
}

impl std::fmt::Display for ContainerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ContainerError::Incomplete(m) | ContainerError::Other(m) => f.write_str(m),
            ContainerError::KeyMismatch(kind) => {
                write!(f, "the {kind} certificate does not carry our key")
            }
            ContainerError::Exists(path) => write!(
                f,
                "{} exists already: nothing was written (no container is ever replaced)",
                path.display()
            ),
        }
    }
}

impl From<ContainerError> for Failure {
    fn from(e: ContainerError) -> Failure {
        err(e)
    }
}

/// A container made in memory, not yet written: its file name and bytes.
#[derive(Debug)]
pub struct Container {
    /// Its file name (`AUTH_RSA256_<ski>.p12`, `GOST512_<ski>.p12`, …).
    pub file: String,
    /// The PKCS#12 container.
    pub bytes: Vec<u8>,
}

/// How the containers are protected: NCA's legacy container, or the modern one with
/// `iterations`.
fn protection(legacy: bool, iterations: u32) -> Protection {
    if legacy {
        Protection::Legacy
    } else {
        Protection::Modern { iterations }
    }
}

/// The file name of the container of `kind` whose key is `key` and certificate's subject key
/// identifier is `ski` (hex): `AUTH_RSA256_<ski>.p12` and `RSA256_<ski>.p12`, or
/// `AUTH_ECDSA256_…` and `ECDSA256_…` for EC keys, or `GOST512_<ski>.p12` for a GOST 2015
/// 512-bit key, as NCA names them.
fn container_name(kind: &str, key: &PKey<Private>, ski: &str) -> String {
    let algorithm = match gost::private_key_size(key) {
        Some(KeySize::Bits512) => "GOST512",
        Some(KeySize::Bits256) => "GOST256",
        None if key.id() == openssl::pkey::Id::EC => "ECDSA256",
        None => "RSA256",
    };
    if kind == "auth" {
        format!("AUTH_{algorithm}_{ski}.p12")
    } else {
        format!("{algorithm}_{ski}.p12")
    }
}

/// The two containers, AUTH first, of `certificates` (`(kind, PEM)`: exactly one `auth` and
/// one `sign`) with their keys and the chain `chain_pem` (PEM, possibly empty), protected by
/// `password`. Each certificate must carry the key held for its kind.
fn make_containers(
    protection: Protection,
    password: &str,
    certificates: &[(&str, &str)],
    chain_pem: &str,
    auth_key: &PKey<Private>,
    sign_key: &PKey<Private>,
) -> Result<Vec<Container>, ContainerError> {
    let kinds: Vec<&str> = certificates.iter().map(|(kind, _)| *kind).collect();
    if kinds != ["auth", "sign"] {
        return Err(ContainerError::Incomplete(format!(
            "expected an auth and a sign certificate, in that order, got {kinds:?}"
        )));
    }
    let other = |e: &dyn std::fmt::Display| ContainerError::Other(e.to_string());
    // An application's two certificates may come from two issuing CAs (RSA AUTH, GOST SIGN):
    // `chain_pem` holds each one's chain, and each container gets its own certificate's.
    let chain = X509::stack_from_pem(chain_pem.as_bytes())
        .map_err(|e| other(&format!("the chain: {e}")))?;
    let mut made = Vec::new();
    for (kind, pem) in certificates {
        let x509 = X509::from_pem(pem.as_bytes())
            .map_err(|e| other(&format!("the {kind} certificate: {e}")))?;
        let key = if *kind == "auth" { auth_key } else { sign_key };
        if gost::private_key_size(key).is_some() {
            let cert_der = x509.to_der().map_err(|e| other(&e))?;
            made.push(gost_container(kind, password, &cert_der, key)?);
            continue;
        }
        let public = x509.public_key().map_err(|e| other(&e))?;
        if !public.public_eq(key) {
            return Err(ContainerError::KeyMismatch((*kind).to_owned()));
        }
        let cert_der = x509.to_der().map_err(|e| other(&e))?;
        let chain = chain_of(&x509, &chain)
            .iter()
            .map(|c| c.to_der())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| other(&format!("the chain: {e}")))?;
        let ski = hex::encode(pkcs12::subject_key_id(&cert_der).map_err(|e| other(&e))?);
        // The key as PKCS#8, for an encoder that does not care which algorithm it is.
        let pkcs8 = key.private_key_to_pkcs8().map_err(|e| other(&e))?;
        let contents = Contents {
            private_key: &pkcs8,
            certificate: &cert_der,
            chain: &chain,
        };
        let bytes = pkcs12::encode(&contents, password, protection).map_err(|e| other(&e))?;
        made.push(Container {
            file: container_name(kind, key, &ski),
            bytes,
        });
    }
    Ok(made)
}

/// The certificates of `pool` that `leaf` chains to, issuer first, up to a self-issued one:
/// each is the one whose subject is the previous one's issuer (names compared as OpenSSL
/// compares them). Those of another issuing CA in the pool are left out.
fn chain_of<'a>(leaf: &X509, pool: &'a [X509]) -> Vec<&'a X509> {
    let same = |a: &openssl::x509::X509NameRef, b: &openssl::x509::X509NameRef| {
        a.try_cmp(b).ok() == Some(std::cmp::Ordering::Equal)
    };
    let mut chain: Vec<&X509> = Vec::new();
    let mut issuer = leaf.issuer_name();
    while chain.len() < pool.len() {
        let Some(next) = pool
            .iter()
            .find(|c| same(c.subject_name(), issuer) && !chain.iter().any(|d| d == c))
        else {
            break;
        };
        chain.push(next);
        if same(next.subject_name(), next.issuer_name()) {
            break;
        }
        issuer = next.issuer_name();
    }
    chain
}

/// The container of a GOST key and its certificate (DER) of `kind`, written as NCA writes
/// its own `GOST512_<ski>.p12`: NCA's container ([`Protection::Legacy`]: 3DES key bag,
/// RC2-40 certificate safe, SHA-1 MAC, 1024 iterations, 20-byte salts, no chain), the bags
/// named by the SKI, and the key as NCA's PKCS#8 ([`gost::private_key_info`] in
/// [`Form::Nca`]), whatever protection the other container has: NCA's software, the only
/// one that reads a key under NCA's OIDs, reads this container. The certificate, in either
/// form, must carry `key`.
pub fn gost_container(
    kind: &str,
    password: &str,
    certificate: &[u8],
    key: &PKey<Private>,
) -> Result<Container, ContainerError> {
    let other = |what: &str, e: &dyn std::fmt::Display| {
        ContainerError::Other(format!("the {kind} {what}: {e}"))
    };
    let held = key
        .public_key_to_der()
        .map_err(|e| other("key", &e))
        .and_then(|spki| GostPublicKey::from_der(&spki).map_err(|e| other("key", &e)))?;
    let certified = gost::certificate_key(certificate).map_err(|e| other("certificate", &e))?;
    if !held.same_key(&certified) {
        return Err(ContainerError::KeyMismatch(kind.to_owned()));
    }
    let pkcs8 = gost::private_key_info(key, Form::Nca).map_err(|e| other("key", &e))?;
    let ski = pkcs12::subject_key_id(certificate).map_err(|e| other("certificate", &e))?;
    let contents = Contents {
        private_key: &pkcs8,
        certificate,
        chain: &[],
    };
    let bytes = pkcs12::encode(&contents, password, Protection::Legacy)
        .map_err(|e| other("container", &e))?;
    Ok(Container {
        file: container_name(kind, key, &hex::encode(ski)),
        bytes,
    })
}

/// Write `containers` into `out` as new files of mode 0600: both or none. A name that exists
/// already stops everything before a byte is written (`Exists`); a write that fails takes
/// away the files this call wrote before it. The paths written, in order.
fn write_new_files(out: &Path, containers: &[Container]) -> Result<Vec<PathBuf>, ContainerError> {
    let paths: Vec<PathBuf> = containers.iter().map(|c| out.join(&c.file)).collect();
    if let Some(taken) = paths.iter().find(|p| std::fs::symlink_metadata(p).is_ok()) {
        return Err(ContainerError::Exists(taken.clone()));
    }
    let mut written: Vec<&PathBuf> = Vec::new();
    for (path, container) in paths.iter().zip(containers) {
        if let Err(e) = write_new(path, &container.bytes) {
            for done in &written {
                let _ = std::fs::remove_file(done);
            }
            return Err(if e.kind() == std::io::ErrorKind::AlreadyExists {
                ContainerError::Exists(path.clone())
            } else {
                ContainerError::Other(format!("{}: {e}", path.display()))
            });
        }
        written.push(path);
    }
    Ok(paths)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

    use super::check_password;
    use openssl::pkey::PKey;

    /// The wait is said once: the server's detail names it, or `Retry-After` does.
    #[test]
    fn a_refusal_names_its_wait_once() {
        let limit = r#"{"type":"urn:tamga:problem:rate_limited_iin","title":"Too many requests","status":429,"code":"rate_limited_iin","detail":"this IIN has reached its limit of 3 applications in 24 hours; retry in 86400 s"}"#;
        let problem: super::ProblemDocument = serde_json::from_str(limit).unwrap();
        let shown = super::refused_text(429, problem, Some("86400"));
        assert_eq!(shown.matches("86400 s").count(), 1, "{shown}");
        assert!(!shown.contains("retry after"), "{shown}");
        let busy = r#"{"type":"urn:tamga:problem:signing_key_unavailable","title":"Service unavailable","status":503,"code":"signing_key_unavailable","detail":"the issuing key cannot sign"}"#;
        let problem: super::ProblemDocument = serde_json::from_str(busy).unwrap();
        assert_eq!(
            super::refused_text(503, problem, Some("5")),
            "signing_key_unavailable (503): the issuing key cannot sign (retry after 5 s)"
        );
    }

    /// Key types are shown as the command line names them, never as Rust names.
    #[test]
    fn key_types_read_as_their_flag_values() {
        assert_eq!(super::KeyType::Rsa2048.to_string(), "rsa2048");
        assert_eq!(super::KeyType::EcP256.to_string(), "ec-p256");
        assert_eq!(super::SignKeyType::Gost2015_512.to_string(), "gost2015-512");
    }

    /// `--sign-key-type gost2015-512` makes the SIGN key a GOST one, named `GOST512_<ski>` and
    /// requested in NCA's form; without it the SIGN key is of `--key-type`, as the AUTH key.
    #[test]
    fn the_sign_key_type() {
        use clap::Parser;
        let parse = |extra: &[&str]| {
            super::Cli::try_parse_from([&["tamga-enroll", "--token", "t"][..], extra].concat())
        };
        assert_eq!(parse(&[]).unwrap().submit.sign_key_type, None);
        let gost = parse(&["--sign-key-type", "gost2015-512", "--key-type", "ec-p256"]).unwrap();
        assert_eq!(
            gost.submit.sign_key_type,
            Some(super::SignKeyType::Gost2015_512)
        );
        assert_eq!(gost.submit.key_type, super::KeyType::EcP256);
        for bad in ["gost2015-256", "rsa2048", "GOST"] {
            assert!(parse(&["--sign-key-type", bad]).is_err(), "{bad}");
        }
        assert!(super::check_sign_key_type(None).is_ok());
        if !crate::gost::engine_for_test("the_sign_key_type") {
            assert!(super::check_sign_key_type(gost.submit.sign_key_type).is_err());
            return;
        }
        super::check_sign_key_type(gost.submit.sign_key_type).unwrap();
        let key = super::generate_sign(super::KeyType::EcP256, gost.submit.sign_key_type).unwrap();
        assert_eq!(
            crate::gost::private_key_size(&key),
            Some(crate::gost::KeySize::Bits512)
        );
        assert_eq!(
            super::container_name("sign", &key, "ab12"),
            "GOST512_ab12.p12"
        );
        let ec = super::generate_sign(super::KeyType::EcP256, None).unwrap();
        assert_eq!(
            super::container_name("sign", &ec, "ab12"),
            "ECDSA256_ab12.p12"
        );
        // A pending application keeps it as the other keys, encrypted PKCS#8, read back whole.
        let pending = key
            .private_key_to_pem_pkcs8_passphrase(
                openssl::symm::Cipher::aes_256_cbc(),
                b"Secret2026",
            )
            .unwrap();
        let read = PKey::private_key_from_pem_passphrase(&pending, b"Secret2026").unwrap();
        assert!(read.public_eq(&key));
        assert_eq!(
            crate::gost::private_key_info(&read, crate::gost::Form::Nca).unwrap(),
            crate::gost::private_key_info(&key, crate::gost::Form::Nca).unwrap()
        );
        // The request is NCA's form, and its signature proves the key.
        let pem = super::csr(&key, Some("citizen@example.kz")).unwrap();
        assert!(
            pem.starts_with("-----BEGIN CERTIFICATE REQUEST-----\n"),
            "{pem}"
        );
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, body).unwrap();
        let request = crate::gost::SignedArtefact::csr(&der).unwrap();
        assert_eq!(
            request.form_and_size().unwrap(),
            (crate::gost::Form::Nca, crate::gost::KeySize::Bits512)
        );
        request.verify_own().unwrap();
    }

    /// A code this client does not know (a newer server's) is read, not refused: the citizen
    /// sees the code, the problem's title and its detail. A known code reads as before.
    #[test]
    fn a_problem_with_an_unknown_code_shows_its_title_and_detail() {
        let body = r#"{"type":"urn:tamga:problem:hsm_on_fire","title":"Service unavailable","status":503,"code":"hsm_on_fire","detail":"the token is being replaced"}"#;
        let problem: super::ProblemDocument = serde_json::from_str(body).unwrap();
        assert_eq!(
            problem.code,
            super::ProblemCode::Unknown("hsm_on_fire".to_owned())
        );
        assert_eq!(
            super::describe(503, problem.clone()),
            "hsm_on_fire (503): Service unavailable: the token is being replaced"
        );
        // Sent back as it came.
        assert_eq!(
            serde_json::to_value(&problem).unwrap()["code"],
            serde_json::json!("hsm_on_fire")
        );
        let without_detail =
            r#"{"type":"urn:tamga:problem:x","title":"Conflict","status":409,"code":"x"}"#;
        let problem: super::ProblemDocument = serde_json::from_str(without_detail).unwrap();
        assert_eq!(super::describe(409, problem), "x (409): Conflict");
        let known = r#"{"type":"urn:tamga:problem:signing_key_unavailable","title":"Service unavailable","status":503,"code":"signing_key_unavailable"}"#;
        let problem: super::ProblemDocument = serde_json::from_str(known).unwrap();
        assert_eq!(
            problem.code,
            super::ProblemCode::Known(crate::error_code::ErrorCode::SigningKeyUnavailable)
        );
        assert_eq!(
            super::describe(503, problem),
            "signing_key_unavailable (503): Service unavailable"
        );
        let refused = r#"{"type":"urn:tamga:problem:key_weak","title":"Unprocessable request","status":422,"code":"key_weak","detail":"weak key: ROCA"}"#;
        let problem: super::ProblemDocument = serde_json::from_str(refused).unwrap();
        assert_eq!(
            super::describe(422, problem),
            "key_weak (422): weak key: ROCA"
        );
    }

    #[test]
    fn the_password_policy() {
        assert!(check_password("Abcde1").is_ok());
        assert!(check_password("Құпия2026сөз").is_ok());
        assert!(check_password("Abc1").unwrap_err().contains("6 to 32"));
        assert!(check_password(&format!("Ab1{}", "x".repeat(30)))
            .unwrap_err()
            .contains("6 to 32"));
        assert!(check_password("abcdef1")
            .unwrap_err()
            .contains("upper-case"));
        assert!(check_password("ABCDEF1")
            .unwrap_err()
            .contains("lower-case"));
        assert!(check_password("Abcdefg").unwrap_err().contains("digit"));
        // Access tokens are base64url and may begin with '-'.
        use clap::Parser;
        let cli = super::Cli::try_parse_from([
            "tamga-enroll",
            "resume",
            "--application",
            "A",
            "--access-token",
            "-Iabc",
        ]);
        assert!(matches!(
            cli.map(|c| c.command),
            Ok(Some(super::Command::Resume(r))) if r.access_token == "-Iabc"
        ));
    }

    /// A password that breaks several rules is told all of them at once, not one per try.
    #[test]
    fn every_broken_rule_is_reported_at_once() {
        let rules = super::password_rules_broken;
        assert!(rules("Abcde1").is_empty());
        assert_eq!(rules("abc").len(), 3, "{:?}", rules("abc"));
        assert_eq!(rules("").len(), 4, "{:?}", rules(""));
        assert_eq!(rules("ABCDEFGH").len(), 2, "{:?}", rules("ABCDEFGH"));
        let shown = check_password("abc").unwrap_err();
        for rule in ["6 to 32 characters long (it has 3)", "upper-case", "digit"] {
            assert!(shown.contains(rule), "{rule}: {shown}");
        }
        assert!(!shown.contains("lower-case"), "{shown}");
        let shown = check_password("").unwrap_err();
        assert_eq!(shown.matches("it needs").count(), 3, "{shown}");
        assert!(shown.contains("(it has 0)"), "{shown}");
    }

    /// The printed `resume` command carries every option of the run that the resume needs,
    /// with its files made absolute: read back by the same parser, it is the same run.
    #[test]
    fn the_resume_command_carries_every_option_it_needs() {
        use clap::Parser;
        let parse = |words: &[&str]| super::Cli::try_parse_from(words).unwrap();
        let cwd = std::env::current_dir().unwrap();
        let submitted = parse(&[
            "tamga-enroll",
            "--server",
            "https://ca.example.kz:8443",
            "--token-file",
            "token.txt",
            "--out",
            "keys",
            "--password-file",
            "password.txt",
            "--p12-iterations",
            "100000",
            "--ca-cert",
            "ca.pem",
            "--client-cert",
            "portal.pem",
            "--client-key",
            "portal.key",
        ]);
        let line = super::resume_command(
            std::ffi::OsStr::new("./bin/tamga-enroll"),
            &submitted.common,
            "app-1",
            "-tok_en",
        );
        let words: Vec<&str> = line.split(' ').collect();
        assert_eq!(
            words[0],
            cwd.join("bin/tamga-enroll").display().to_string(),
            "{line}"
        );
        let resumed = parse(&words);
        let Some(super::Command::Resume(args)) = resumed.command.as_ref() else {
            panic!("{line}: not a resume command")
        };
        assert_eq!(
            (args.application.as_str(), args.access_token.as_str()),
            ("app-1", "-tok_en")
        );
        let (a, b) = (&submitted.common, &resumed.common);
        assert_eq!(a.server, b.server);
        assert_eq!(b.p12_iterations, 100_000);
        assert!(!b.legacy_p12);
        for (given, printed) in [
            (&a.password_file, &b.password_file),
            (&a.ca_cert, &b.ca_cert),
            (&a.client_cert, &b.client_cert),
            (&a.client_key, &b.client_key),
        ] {
            assert_eq!(
                printed.as_ref(),
                given.as_ref().map(|p| cwd.join(p)).as_ref(),
                "{line}"
            );
        }
        assert_eq!(b.out, cwd.join("keys"), "{line}");

        // The legacy container; a program found on PATH stays a bare name; no password file
        // (the password is asked again).
        let legacy = parse(&[
            "tamga-enroll",
            "--token",
            "t",
            "--legacy-p12",
            "--out",
            "/tmp/k",
        ]);
        let line = super::resume_command(
            std::ffi::OsStr::new("tamga-enroll"),
            &legacy.common,
            "app-2",
            "tok",
        );
        assert_eq!(
            line,
            "tamga-enroll resume --server http://127.0.0.1:8080 --legacy-p12 --out /tmp/k \
             --application=app-2 --access-token=tok"
        );
    }

    /// Words the shell would read otherwise are quoted, and read back as they were.
    #[test]
    fn printed_words_are_quoted_for_the_shell() {
        assert_eq!(super::shell_word("/srv/keys-1"), "/srv/keys-1");
        assert_eq!(super::shell_word("my keys"), "'my keys'");
        assert_eq!(super::shell_word("a'b;rm -rf ~"), "'a'\\''b;rm -rf ~'");
        assert_eq!(super::shell_word("$HOME"), "'$HOME'");
        assert_eq!(super::shell_word(""), "''");
        assert_eq!(super::shell_word("=ls"), "'=ls'");
        assert_eq!(
            super::shell_word("--access-token=a=b"),
            "--access-token=a=b"
        );
        let out = std::process::Command::new("sh")
            .args([
                "-c",
                &format!("printf %s {}", super::shell_word("a'b $X `c` \\ d")),
            ])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), "a'b $X `c` \\ d");
    }

    /// A failed run takes away the directories it made, while empty, and nothing else.
    #[test]
    fn a_failed_run_removes_only_the_empty_directories_it_made() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("a/b/c");
        let created = super::create_out(&out).unwrap();
        assert_eq!(
            created,
            [out.clone(), dir.path().join("a/b"), dir.path().join("a")]
        );
        super::remove_if_empty(&created);
        assert!(!dir.path().join("a").exists());
        assert!(dir.path().exists(), "the directory that was there stays");

        // One that existed is never in the list; one that holds a file stays.
        std::fs::create_dir(dir.path().join("kept")).unwrap();
        assert!(super::create_out(&dir.path().join("kept"))
            .unwrap()
            .is_empty());
        let created = super::create_out(&dir.path().join("x/y")).unwrap();
        std::fs::write(dir.path().join("x/y/pending.pem"), "k").unwrap();
        super::remove_if_empty(&created);
        assert!(dir.path().join("x/y/pending.pem").exists());
    }

    /// Modern containers default to 600,000 iterations; fewer than 100,000 (or more than
    /// 10,000,000) is a usage error, and the legacy container has NCA's fixed count.
    #[test]
    fn the_iteration_count_of_modern_containers() {
        use clap::Parser;
        let parse = |extra: &[&str]| {
            super::Cli::try_parse_from([&["tamga-enroll", "--token", "t"][..], extra].concat())
        };
        assert_eq!(parse(&[]).unwrap().common.p12_iterations, 600_000);
        assert_eq!(
            parse(&["--p12-iterations", "100000"])
                .unwrap()
                .common
                .p12_iterations,
            100_000
        );
        for bad in ["99999", "10000001", "2048", "-1"] {
            assert!(parse(&["--p12-iterations", bad]).is_err(), "{bad}");
        }
        assert!(parse(&["--p12-iterations", "200000", "--legacy-p12"]).is_err());
        assert!(parse(&["--legacy-p12"]).is_ok());
    }
}
