//! The production key ceremony, on the CA's side: generating a CA key where `[ca.*_key]`
//! says (a file with mode 0600, or a token object that is sensitive and never extractable),
//! the PKCS#10 request for the issuing CA's key, the offline root (its generation and its
//! certifying of an issuing CA from a request, with the one issuing-CA profile of
//! [`super::build::build_issuing`]), checking and installing the issuing CA certificate the
//! root returns, the OCSP responder's key and certificate (the profile of
//! [`super::build::issue_ocsp_responder`], as in the development hierarchy), and the marker
//! that says a root is a development root, and the root machine's register of the CA
//! certificates its root signed (`[ca] dir/issued/<serial>.pem`).
//!
//! Must never: overwrite a key or a certificate unless told to, leave a half-written file
//! (every file is written under a temporary name and renamed into place), make a key before
//! every input of its step is checked or leave one behind when a later part of the step fails,
//! leave an installed certificate beside a key that replaced its own, certify a request
//! whose proof of possession or key fails the key policy, install a certificate that is not
//! for the configured key or not signed by the configured root, or import the store or
//! development code (the CLI audits each step).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use openssl::pkey::{PKey, PKeyRef, Public};
use openssl::x509::{X509NameRef, X509Req, X509ReqBuilder, X509};

use super::build::{self, IssuingUrls, RootSigner};
use super::pkcs11::{self, Pkcs11Key, Pkcs11Location};
use super::{files, CaError, HierarchyFiles, IssuerKey, SigningKey};
use crate::config::{CaConfig, KeyConfig, KeyKind};
use crate::vocab::KeyType;

pub(crate) use super::files::write_replacing;

/// The marker file beside the root key that says the root is a development root.
pub const DEV_ROOT_MARKER: &str = "root.development";

/// Certificates are backdated by this much so a relying party with a slow clock accepts them.
const BACKDATE: chrono::Duration = chrono::Duration::hours(1);

/// Why a ceremony step did not happen.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CeremonyError {
    /// The step refuses: an existing key or certificate (without `--force`), a request or a
    /// certificate that fails a check.
    #[error("{0}")]
    Refused(String),
    /// A CA operation failed (I/O, cryptography, the token).
    #[error(transparent)]
    Ca(#[from] CaError),
}

impl From<openssl::error::ErrorStack> for CeremonyError {
    fn from(e: openssl::error::ErrorStack) -> Self {
        CeremonyError::Ca(CaError::Crypto(e))
    }
}

/// Why an output file named on the command line cannot be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OutputError {
    /// It is there (without `--force`), or it is a directory.
    #[error("{0}")]
    Exists(String),
    /// Its directory is missing or takes no new files.
    #[error("{0}")]
    Unwritable(String),
}

impl From<OutputError> for CeremonyError {
    fn from(e: OutputError) -> Self {
        CeremonyError::Refused(e.to_string())
    }
}

fn refused(message: impl Into<String>) -> CeremonyError {
    CeremonyError::Refused(message.into())
}

/// A CA key just generated: its signer (a file key in memory until written, or a token
/// object) and its public key.
pub struct NewCaKey {
    signer: SigningKey,
    public: PKey<Public>,
    key_type: KeyType,
}

impl NewCaKey {
    /// Generate a key of `key_type` where `config` says keys live: in memory (written by
    /// [`NewCaKey::write`]) or inside the PKCS#11 token (sensitive, never extractable).
    pub fn generate(config: &KeyConfig, what: &str, key_type: KeyType) -> Result<Self, CaError> {
        match Pkcs11Location::from_config(what, config)? {
            Some(location) => {
                let public = pkcs11::generate(&location, key_type)?;
                let key = Pkcs11Key::open(location, key_type)?;
                Ok(NewCaKey {
                    signer: SigningKey::Pkcs11(Arc::new(key)),
                    public,
                    key_type,
                })
            }
            None => {
                let key = build::generate_key(key_type)?;
                let public = PKey::public_key_from_der(&key.public_key_to_der()?)?;
                Ok(NewCaKey {
                    signer: SigningKey::File {
                        key,
                        path: PathBuf::new(),
                    },
                    public,
                    key_type,
                })
            }
        }
    }

    /// The private key, to sign with.
    pub fn signer(&self) -> &SigningKey {
        &self.signer
    }
    /// The public key.
    pub fn public(&self) -> &PKeyRef<Public> {
        &self.public
    }

    /// Write a file key to `path` (mode 0600, replacing what is there); a token key stays
    /// where it is.
    pub fn write(&self, path: &Path) -> Result<(), CaError> {
        match &self.signer {
            SigningKey::File { key, .. } => {
                write_replacing(path, &key.private_key_to_pem_pkcs8()?, 0o600)
            }
            SigningKey::Pkcs11(_) => Ok(()),
        }
    }

    /// Remove the key again after a later step failed: the file `written` (once written),
    /// or the token's objects with the key's label (all made by [`NewCaKey::generate`],
    /// which refuses a label the token already holds).
    fn discard(&self, written: Option<&Path>) {
        match &self.signer {
            SigningKey::File { .. } => {
                if let Some(path) = written {
                    let _ = std::fs::remove_file(path);
                }
            }
            SigningKey::Pkcs11(key) => {
                let _ = pkcs11::destroy_labelled(key.location());
            }
        }
    }

    /// Where the key lives, for operators: `file PATH` or the token and label.
    fn location(&self, path: &Path) -> String {
        match &self.signer {
            SigningKey::File { .. } => format!("file {}", path.display()),
            SigningKey::Pkcs11(key) => key.location().describe(),
        }
    }
}

/// The SHA-256 of a public key's DER SubjectPublicKeyInfo, upper-case hex: what the
/// operators compare on both machines.
pub fn spki_sha256(key: &PKeyRef<impl openssl::pkey::HasPublic>) -> Result<String, CaError> {
    let digest = openssl::hash::hash(
        openssl::hash::MessageDigest::sha256(),
        &key.public_key_to_der()?,
    )?;
    Ok(upper_hex(&digest))
}

/// The SHA-256 fingerprint of a certificate (`openssl x509 -fingerprint -sha256` prints the
/// same digits with colons).
pub fn cert_sha256(cert: &X509) -> Result<String, CaError> {
    Ok(upper_hex(
        &cert.digest(openssl::hash::MessageDigest::sha256())?,
    ))
}

/// Upper-case hex, as `tamga ca show` prints fingerprints.
fn upper_hex(bytes: &[u8]) -> String {
    hex::encode_upper(bytes)
}

fn serial_hex(cert: &X509) -> Result<String, CaError> {
    Ok(cert
        .serial_number()
        .to_bn()
        .and_then(|b| b.to_hex_str().map(|s| s.to_string()))?)
}

/// Make room for a new key where `config` says it lives: refuse when a key file or token
/// object is there unless `force`, in which case the token's objects with the label are
/// destroyed (a file is replaced when the new key is written).
fn make_room_for_key(
    config: &KeyConfig,
    what: &str,
    key_file: &Path,
    force: bool,
) -> Result<(), CeremonyError> {
    match Pkcs11Location::from_config(what, config)? {
        Some(location) => {
            if force {
                pkcs11::destroy_labelled(&location)?;
            }
            Ok(())
        }
        None if key_file.exists() && !force => Err(refused(format!(
            "the {what} key {} exists; pass --force to replace it (the old key is lost)",
            key_file.display()
        ))),
        None => Ok(()),
    }
}

/// The key ceremony's steps make RSA and EC CA keys: a GOST CA (`gost2015-512`) is built in
/// NCA's form by `ca::gost_ca`, which the ceremony's commands do not drive yet. Refused before
/// anything is made.
fn refuse_gost(key_type: KeyType, setting: &str) -> Result<(), CeremonyError> {
    if key_type.is_gost() {
        return Err(refused(format!(
            "[ca] {setting} = \"{key_type}\": the key ceremony makes RSA and EC CA keys; a GOST \
             CA's certificates are built in NCA's form (see docs/operations.md, section 2)"
        )));
    }
    Ok(())
}

fn refuse_existing(path: &Path, what: &str, force: bool) -> Result<(), CeremonyError> {
    if path.exists() && !force {
        return Err(refused(format!(
            "the {what} {} exists; pass --force to replace it",
            path.display()
        )));
    }
    Ok(())
}

/// The longest common name X.520 allows (ub-common-name), in characters.
const MAX_COMMON_NAME: usize = 64;

/// The name `C=KZ, CN=<name>` of a CA, checked before any key is made: 1 to 64 characters,
/// no control characters, no blanks around it.
fn ca_name(name: &str, option: &str) -> Result<openssl::x509::X509Name, CeremonyError> {
    let chars = name.chars().count();
    if name.trim() != name
        || !(1..=MAX_COMMON_NAME).contains(&chars)
        || name.chars().any(char::is_control)
    {
        return Err(refused(format!(
            "{option} `{name}`: a common name is 1 to {MAX_COMMON_NAME} characters, without \
             control characters or blanks around it"
        )));
    }
    build::utf8_name(name)
        .map_err(|_| refused(format!("{option} `{name}` is not a valid common name")))
}

/// Check, before anything is generated, that a file can be written at `out`: it is not there
/// (unless `force`) or not a directory, and its directory exists and takes new files (a file
/// is created there and removed).
pub fn check_output(out: &Path, option: &str, force: bool) -> Result<(), OutputError> {
    if out.is_dir() {
        return Err(OutputError::Exists(format!(
            "{option} {} is a directory",
            out.display()
        )));
    }
    if out.exists() && !force {
        return Err(OutputError::Exists(format!(
            "{option} {} exists: choose another {option} or pass --force",
            out.display()
        )));
    }
    let dir = match out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(OutputError::Unwritable(format!(
            "{option} {}: the directory {} does not exist",
            out.display(),
            dir.display()
        )));
    }
    let probe = dir.join(format!(".tamga-probe.{}", uuid::Uuid::new_v4().simple()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(OutputError::Unwritable(format!(
            "{option} {}: cannot write in {}: {e}",
            out.display(),
            dir.display()
        ))),
    }
}

/// Move the installed certificate `path` aside as `<name>.<serial>.old` (as `install-issuing
/// --force` keeps a replaced one); its new path.
fn move_aside(path: &Path) -> Result<PathBuf, CaError> {
    let old = files::read_cert(path)?;
    let extension = path
        .extension()
        .map(|e| e.to_string_lossy().into_owned())
        .unwrap_or_default();
    let aside = path.with_extension(format!("{extension}.{}.old", serial_hex(&old)?));
    std::fs::rename(path, &aside).map_err(|source| CaError::Write {
        path: aside.clone(),
        source,
    })?;
    files::sync_parent(path)?;
    Ok(aside)
}

fn create_dir(dir: &Path) -> Result<(), CaError> {
    std::fs::create_dir_all(dir).map_err(|source| CaError::Write {
        path: dir.to_path_buf(),
        source,
    })
}

// ---------------------------------------------------------------------------------------
// The development root's marker.

/// The text of the marker of a development root `root`.
pub(crate) fn dev_root_marker_text(root: &X509) -> Result<String, CaError> {
    Ok(format!(
        "This root was generated for development (`tamga ca init`): its key was made on the \
         server, not in a key ceremony. Production refuses to start with it.\n\
         root sha256 fingerprint: {}\n",
        cert_sha256(root)?
    ))
}

/// Whether the root of `ca.dir` is marked as a development root; the marker's path if so.
pub fn development_root(ca: &CaConfig) -> Option<PathBuf> {
    let marker = HierarchyFiles::for_config(ca).dev_root_marker;
    marker.exists().then_some(marker)
}

// ---------------------------------------------------------------------------------------
// The offline root.

/// What `root init` made.
#[derive(Debug)]
pub struct NewRoot {
    /// The self-signed root certificate.
    pub cert: X509,
    /// Where its key lives.
    pub key_location: String,
    /// Where the certificate was written.
    pub cert_path: PathBuf,
}

/// Generate the root key where `[ca.root_key]` says (a file `root.key.pem` in `[ca] dir`,
/// or a token object) and the self-signed root certificate `root.pem`, named `C=KZ,
/// CN=<name>`, valid for `years`. Refuses when a root is there unless `force`; a
/// development root's marker is removed.
pub fn generate_root(
    ca: &CaConfig,
    name: &str,
    years: i64,
    force: bool,
    now: DateTime<Utc>,
) -> Result<NewRoot, CeremonyError> {
    if !(1..=30).contains(&years) {
        return Err(refused(format!("a root valid for {years} years: 1 to 30")));
    }
    // Every input is checked before a key is made (or an old one destroyed).
    let subject = ca_name(name, "--name")?;
    let files = HierarchyFiles::for_config(ca);
    create_dir(&files.dir)?;
    refuse_existing(&files.root_cert, "root certificate", force)?;
    make_room_for_key(&ca.root_key, "root", &files.root_key, force)?;
    let key = NewCaKey::generate(&ca.root_key, "root", build::ROOT_KEY_TYPE)?;
    let mut key_written = false;
    let not_before = now - BACKDATE;
    let written = build::build_root(
        &subject,
        &key.public,
        &key.signer,
        key.key_type,
        not_before,
        build::add_years(not_before, years),
    )
    .and_then(|cert| {
        key.write(&files.root_key)?;
        key_written = true;
        write_replacing(&files.root_cert, &cert.to_pem()?, 0o644)?;
        Ok(cert)
    });
    let cert =
        written.inspect_err(|_| key.discard(key_written.then_some(files.root_key.as_path())))?;
    if files.dev_root_marker.exists() {
        std::fs::remove_file(&files.dev_root_marker).map_err(|source| CaError::Write {
            path: files.dev_root_marker.clone(),
            source,
        })?;
    }
    Ok(NewRoot {
        cert,
        key_location: key.location(&files.root_key),
        cert_path: files.root_cert,
    })
}

/// The root certificate `root.pem` of `[ca] dir`, without its key.
pub fn read_root_cert(ca: &CaConfig) -> Result<X509, CaError> {
    files::read_cert(&HierarchyFiles::for_config(ca).root_cert)
}

/// The root certificate and key of `[ca] dir` (the key as `[ca.root_key]` says), checked to
/// belong together.
pub fn load_root(ca: &CaConfig) -> Result<IssuerKey, CaError> {
    let files = HierarchyFiles::for_config(ca);
    super::load_key_pair("root", &files.root_cert, &files.root_key, &ca.root_key)
}

/// The directory of the root's register: a copy of every CA certificate `root
/// sign-issuing` signed, as `<serial>.pem` (upper-case hex, no leading zeros).
pub fn register_dir(ca: &CaConfig) -> PathBuf {
    ca.dir.join("issued")
}

fn serial_of(cert: &X509) -> Result<String, CaError> {
    let hex = serial_hex(cert)?;
    super::Serial::parse(&hex)
        .map(|s| s.as_str().to_owned())
        .map_err(|e| CaError::Invalid {
            path: PathBuf::new(),
            message: e.to_string(),
        })
}

/// Keep a copy of `cert`, a CA certificate the root just signed, in the register
/// (`[ca] dir/issued/<serial>.pem`, mode 0644, written whole or not at all). Returns its path.
pub fn register_issued(ca: &CaConfig, cert: &X509) -> Result<PathBuf, CaError> {
    let dir = register_dir(ca);
    create_dir(&dir)?;
    let path = dir.join(format!("{}.pem", serial_of(cert)?));
    write_replacing(&path, &cert.to_pem()?, 0o644)?;
    Ok(path)
}

/// The CA certificates this machine knows the root `root` signed, one per serial, each
/// checked against the root's key: the register (`[ca] dir/issued/*.pem`), and where the
/// machine holds the issuing CA certificate too (development, a server), that certificate and
/// the earlier ones kept beside it (`<issuer_id>.pem.<serial>.old`). Files that are not
/// certificates signed by the root are skipped with a warning. Reads certificates only,
/// never a key.
pub fn signed_by_root(ca: &CaConfig, root: &X509) -> Result<Vec<X509>, CaError> {
    let files = HierarchyFiles::for_config(ca);
    let root_public = root.public_key()?;
    let mut candidates = vec![files.issuing_cert.clone()];
    let old_prefix = format!("{}.pem.", ca.issuer_id);
    if let Ok(entries) = std::fs::read_dir(&files.dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(&old_prefix) && name.ends_with(".old") {
                candidates.push(entry.path());
            }
        }
    }
    let register = register_dir(ca);
    match std::fs::read_dir(&register) {
        Ok(entries) => {
            let mut paths: Vec<PathBuf> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "pem"))
                .collect();
            paths.sort();
            candidates.extend(paths);
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(CaError::Read {
                path: register,
                source,
            })
        }
    }
    let mut found: Vec<(String, X509)> = Vec::new();
    for path in candidates {
        if !path.exists() {
            continue;
        }
        let cert = match files::read_cert(&path) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "not a certificate: skipped");
                continue;
            }
        };
        let by_root = cert.issuer_name().try_cmp(root.subject_name())? == std::cmp::Ordering::Equal
            && cert.verify(&root_public).unwrap_or(false);
        if !by_root {
            tracing::warn!(path = %path.display(), "not signed by the root: skipped");
            continue;
        }
        let serial = serial_of(&cert)?;
        if !found.iter().any(|(s, _)| *s == serial) {
            found.push((serial, cert));
        }
    }
    Ok(found.into_iter().map(|(_, c)| c).collect())
}

/// An issuing CA certificate the root just signed.
#[derive(Debug)]
pub struct SignedIssuing {
    /// The certificate.
    pub cert: X509,
    /// The SHA-256 of the certified key's SubjectPublicKeyInfo.
    pub spki_sha256: String,
    /// The certified key's type.
    pub key_type: KeyType,
}

/// Certify the key of the PKCS#10 request `csr` (PEM) as an issuing CA with the root `root`:
/// the request's proof of possession and its key are checked with the key policy of every
/// request (`csr::validate`: the accepted types and sizes, weak keys), the name is `name` or
/// the request's common name, the validity `years` from now and never past the root's own.
pub fn sign_issuing(
    root: &IssuerKey,
    csr: &str,
    name: Option<&str>,
    years: i64,
    urls: &IssuingUrls<'_>,
    now: DateTime<Utc>,
) -> Result<SignedIssuing, CeremonyError> {
    if !(1..=30).contains(&years) {
        return Err(refused(format!(
            "an issuing CA valid for {years} years: 1 to 30"
        )));
    }
    let validated = crate::csr::validate(csr).map_err(|e| refused(format!("the request: {e}")))?;
    let public = PKey::public_key_from_der(validated.spki_der())?;
    // A GOST issuing CA is certified by a GOST root in NCA's form (`ca::gost_ca`), not here.
    let key_type = KeyType::of(&public)
        .filter(|t| !t.is_gost())
        .ok_or_else(|| {
            refused("the request's key is of a type an issuing CA may not have".to_owned())
        })?;
    let root_public = root.certificate().x509().public_key()?;
    if public.public_eq(&root_public) {
        return Err(refused("the request's key is the root's own key"));
    }
    let common_name = match name {
        Some(n) => n.to_owned(),
        None => request_common_name(csr).ok_or_else(|| {
            refused("the request has no common name: pass --name with the issuing CA's name")
        })?,
    };
    let subject = build::utf8_name(&common_name)
        .map_err(|_| refused(format!("`{common_name}` is not a valid common name")))?;
    let not_before = now - BACKDATE;
    let not_after = build::add_years(not_before, years);
    let root_cert = root.certificate().x509();
    if root_cert.not_after() < build::asn1_time(not_after)? {
        return Err(refused(format!(
            "an issuing CA valid until {} would outlive the root (valid until {}): choose \
             fewer --validity-years",
            not_after.format("%Y-%m-%d"),
            root_cert.not_after()
        )));
    }
    let cert = build::build_issuing(
        &subject,
        &public,
        &RootSigner {
            cert: root_cert,
            key: root.signing_key(),
            key_type: root.key_type(),
        },
        urls,
        not_before,
        not_after,
    )?;
    if !cert.verify(&root_public)? {
        return Err(CaError::SignatureCheck(serial_hex(&cert)?).into());
    }
    Ok(SignedIssuing {
        spki_sha256: spki_sha256(&public)?,
        cert,
        key_type,
    })
}

fn request_common_name(csr: &str) -> Option<String> {
    let req = X509Req::from_pem(csr.as_bytes()).ok()?;
    let entry = req
        .subject_name()
        .entries_by_nid(openssl::nid::Nid::COMMONNAME)
        .next()?;
    entry.data().to_string().ok().map(|s| s.to_string())
}

// ---------------------------------------------------------------------------------------
// The issuing CA's key and certificate, on the server.

/// What `ca request-issuing` made.
#[derive(Debug)]
pub struct IssuingRequest {
    /// The PKCS#10 request, PEM.
    pub csr_pem: Vec<u8>,
    /// The installed issuing CA certificate `--force` moved aside (for the replaced key), kept
    /// as `<issuer_id>.pem.<serial>.old`.
    pub moved_aside: Option<PathBuf>,
    /// The key's type.
    pub key_type: KeyType,
    /// Where the key lives.
    pub key_location: String,
    /// The SHA-256 of the key's SubjectPublicKeyInfo.
    pub spki_sha256: String,
}

/// Generate the issuing CA's key where `[ca.issuing_key]` says, of `[ca] issuing_key_type`,
/// and a PKCS#10 request for it named `C=KZ, CN=<name>`, signed with the new key, written to
/// `out`. Every input (the name, `out` and its directory) is checked before anything is
/// generated. Refuses when the key (or an installed issuing certificate) exists unless
/// `force`; with `force` the old key is destroyed and an installed certificate (for that key)
/// is moved aside as `<issuer_id>.pem.<serial>.old`, so the server refuses to start, naming
/// the missing certificate, until the new one is installed. A step that fails after the key
/// was made removes the key again.
pub fn request_issuing(
    ca: &CaConfig,
    name: &str,
    out: &Path,
    force: bool,
) -> Result<IssuingRequest, CeremonyError> {
    refuse_gost(ca.issuing_key_type, "issuing_key_type")?;
    let subject = ca_name(name, "--name")?;
    check_output(out, "--out", force)?;
    let files = HierarchyFiles::for_config(ca);
    create_dir(&files.dir)?;
    refuse_existing(&files.issuing_cert, "issuing CA certificate", force)?;
    // The old key goes first (a token that cannot be reached stops here, nothing changed);
    // the certificate for it is then of no use and is moved aside.
    make_room_for_key(&ca.issuing_key, "issuing", &files.issuing_key, force)?;
    let moved_aside = if files.issuing_cert.exists() {
        Some(move_aside(&files.issuing_cert)?)
    } else {
        None
    };
    let key = NewCaKey::generate(&ca.issuing_key, "issuing", ca.issuing_key_type)?;
    let mut key_written = false;
    let written = pkcs10(&subject, &key).and_then(|csr_pem| {
        key.write(&files.issuing_key)?;
        key_written = true;
        write_replacing(out, &csr_pem, 0o644)?;
        Ok(csr_pem)
    });
    let csr_pem =
        written.inspect_err(|_| key.discard(key_written.then_some(files.issuing_key.as_path())))?;
    Ok(IssuingRequest {
        csr_pem,
        moved_aside,
        key_type: key.key_type,
        key_location: key.location(&files.issuing_key),
        spki_sha256: spki_sha256(&key.public)?,
    })
}

/// A PKCS#10 request for `key` named `subject`, signed by the key itself (in its token, if it
/// is there): OpenSSL builds and signs it with a throw-away key of the same algorithm, and the
/// CertificationRequestInfo is signed again with the real key.
fn pkcs10(subject: &X509NameRef, key: &NewCaKey) -> Result<Vec<u8>, CaError> {
    use der::{Decode, Encode};
    let mut b = X509ReqBuilder::new()?;
    b.set_version(0)?;
    b.set_subject_name(subject)?;
    b.set_pubkey(&key.public)?;
    let Some(digest) = key.key_type.digest() else {
        return Err(CaError::Gost(
            "the ceremony's requests are made for RSA and EC keys".to_owned(),
        ));
    };
    let placeholder = build::generate_key(if key.key_type.is_rsa() {
        KeyType::Rsa2048
    } else {
        key.key_type
    })?;
    b.sign(&placeholder, digest)?;
    let mut req = x509_cert::request::CertReq::from_der(&b.build().to_der()?)?;
    let info = req.info.to_der()?;
    let signature = key.signer.sign(key.key_type, &info)?;
    req.signature = der::asn1::BitString::from_bytes(&signature)?;
    let signed = X509Req::from_der(&req.to_der()?)?;
    if !signed.verify(&key.public)? {
        return Err(CaError::SignatureCheck("the issuing CA request".to_owned()));
    }
    Ok(signed.to_pem()?)
}

/// Parse a certificate file's content, PEM or DER.
fn parse_cert(bytes: &[u8]) -> Result<X509, CeremonyError> {
    X509::from_pem(bytes)
        .or_else(|_| X509::from_der(bytes))
        .map_err(|_| refused("not a certificate (PEM or DER)"))
}

/// What `ca install-issuing` installed.
#[derive(Debug)]
pub struct InstalledIssuing {
    /// The certificate.
    pub cert: X509,
    /// Where it was written.
    pub path: PathBuf,
    /// Where the previous certificate was kept, if one was replaced.
    pub replaced: Option<PathBuf>,
    /// The certificate's URLs that are not the ones this server's configuration would write
    /// (the root machine's `[server] public_url` or `[ca] cps_url` differ from the server's):
    /// said to the operator, not refused.
    pub url_mismatches: Vec<String>,
}

/// Check the issuing CA certificate `bytes` (PEM or DER) and install it as
/// `<issuer_id>.pem`: signed by the root certificate of `[ca] dir`, a CA certificate of the
/// issuing-CA profile, valid at `now`, and for the key `[ca.issuing_key]` names (a file key is
/// compared; a token key signs a challenge that the certificate's key must verify). The file
/// appears whole or not at all; an installed certificate is replaced only with `force` and kept
/// as `<issuer_id>.pem.<serial>.old`. Its CPS URI and the root's CRL and AIA URLs are compared
/// with the ones `urls` (this server's configuration) gives, and the differences returned.
pub fn install_issuing(
    ca: &CaConfig,
    bytes: &[u8],
    force: bool,
    urls: &IssuingUrls<'_>,
    now: DateTime<Utc>,
) -> Result<InstalledIssuing, CeremonyError> {
    let files = HierarchyFiles::for_config(ca);
    let cert = parse_cert(bytes)?;
    if !files.root_cert.exists() {
        return Err(refused(format!(
            "no root certificate {}: copy the root's root.pem there first",
            files.root_cert.display()
        )));
    }
    let root = files::read_cert(&files.root_cert)?;
    let root_public = root.public_key()?;
    let signed_by_root = cert.issuer_name().try_cmp(root.subject_name())?
        == std::cmp::Ordering::Equal
        && cert.verify(&root_public)?;
    if !signed_by_root {
        return Err(refused(format!(
            "the certificate is not signed by the configured root {} ({})",
            super::display_name(root.subject_name()),
            files.root_cert.display()
        )));
    }
    check_issuing_profile(&cert)?;
    let at = build::asn1_time(now)?;
    if cert.not_before() > at || cert.not_after() < at {
        return Err(refused(format!(
            "the certificate is not valid now (valid from {} to {})",
            cert.not_before(),
            cert.not_after()
        )));
    }
    refuse_existing(&files.issuing_cert, "issuing CA certificate", force)?;
    // The key check reads the certificate from a file beside the target, as every load does;
    // the same file is then renamed into place.
    let staged = files.dir.join(format!(
        ".{}.pem.{}.install",
        ca.issuer_id,
        uuid::Uuid::new_v4().simple()
    ));
    files::write_new(&staged, &cert.to_pem()?, 0o644)?;
    let checked = super::load_key_pair(&ca.issuer_id, &staged, &files.issuing_key, &ca.issuing_key);
    let result = match checked {
        Ok(_) => install_staged(&files, &staged),
        Err(CaError::Invalid { message, .. }) => Err(refused(format!(
            "the certificate is not for the issuing key ({}): {message}",
            key_description(&ca.issuing_key, &files.issuing_key)
        ))),
        Err(e) => Err(e.into()),
    };
    let _ = std::fs::remove_file(&staged);
    let replaced = result?;
    Ok(InstalledIssuing {
        url_mismatches: url_mismatches(&cert, urls),
        cert,
        path: files.issuing_cert,
        replaced,
    })
}

/// The URLs of issuing CA certificate `cert` that differ from the ones the issuing-CA profile
/// writes with `urls`: the CPS URI of NCA's CA policy (`[ca] cps_url`), the root CRL's
/// distribution point and the AIA OCSP and caIssuers URLs (`[server] public_url`), each as a
/// sentence naming both values.
fn url_mismatches(cert: &X509, urls: &IssuingUrls<'_>) -> Vec<String> {
    use der::Decode;
    use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
    use x509_cert::ext::pkix::{
        AuthorityInfoAccessSyntax, CertificatePolicies, CrlDistributionPoints,
    };
    let Ok(parsed) = cert
        .to_der()
        .map_err(|_| ())
        .and_then(|der| x509_cert::Certificate::from_der(&der).map_err(|_| ()))
    else {
        return vec!["the certificate's URLs could not be read".to_owned()];
    };
    let extensions = parsed.tbs_certificate.extensions.unwrap_or_default();
    let find = |oid| extensions.iter().find(|e| e.extn_id == oid);
    let uri = |name: &GeneralName| match name {
        GeneralName::UniformResourceIdentifier(u) => Some(u.to_string()),
        _ => None,
    };
    let cps: Vec<String> = find(const_oid::db::rfc5280::ID_CE_CERTIFICATE_POLICIES)
        .and_then(|e| CertificatePolicies::from_der(e.extn_value.as_bytes()).ok())
        .map(|p| {
            p.0.iter()
                .filter(|i| i.policy_identifier == build::OID_POLICY_CA)
                .flat_map(|i| i.policy_qualifiers.iter().flatten())
                .filter(|q| q.policy_qualifier_id == const_oid::db::rfc5280::ID_QT_CPS)
                .filter_map(|q| q.qualifier.as_ref())
                .filter_map(|a| a.decode_as::<der::asn1::Ia5String>().ok())
                .map(|u| u.to_string())
                .collect()
        })
        .unwrap_or_default();
    let crl: Vec<String> = find(const_oid::db::rfc5280::ID_CE_CRL_DISTRIBUTION_POINTS)
        .and_then(|e| CrlDistributionPoints::from_der(e.extn_value.as_bytes()).ok())
        .map(|d| {
            d.0.iter()
                .filter_map(|p| match &p.distribution_point {
                    Some(DistributionPointName::FullName(names)) => Some(names),
                    _ => None,
                })
                .flatten()
                .filter_map(uri)
                .collect()
        })
        .unwrap_or_default();
    let aia: Vec<String> = find(const_oid::db::rfc5280::ID_PE_AUTHORITY_INFO_ACCESS)
        .and_then(|e| AuthorityInfoAccessSyntax::from_der(e.extn_value.as_bytes()).ok())
        .map(|a| a.0.iter().filter_map(|d| uri(&d.access_location)).collect())
        .unwrap_or_default();
    let public_url = urls.public_url;
    let expected = [
        ("CPS URI", cps, urls.cps_url.to_owned(), "[ca] cps_url"),
        (
            "root CRL distribution point",
            crl,
            format!("{public_url}/crl/root.crl"),
            "[server] public_url",
        ),
        (
            "AIA",
            aia,
            format!("{public_url}/ocsp {public_url}/ca/root.crt"),
            "[server] public_url",
        ),
    ];
    expected
        .into_iter()
        .filter(|(_, found, wanted, _)| found.join(" ") != *wanted)
        .map(|(what, found, wanted, setting)| {
            format!(
                "the certificate's {what} is `{}` but this server's {setting} gives `{wanted}`: \
                 the root machine's configuration must set the server's values",
                found.join(" ")
            )
        })
        .collect()
}

fn install_staged(files: &HierarchyFiles, staged: &Path) -> Result<Option<PathBuf>, CeremonyError> {
    let replaced = if files.issuing_cert.exists() {
        let old = files::read_cert(&files.issuing_cert)?;
        let backup = files
            .issuing_cert
            .with_extension(format!("pem.{}.old", serial_hex(&old)?));
        std::fs::copy(&files.issuing_cert, &backup).map_err(|source| CaError::Write {
            path: backup.clone(),
            source,
        })?;
        Some(backup)
    } else {
        None
    };
    std::fs::rename(staged, &files.issuing_cert).map_err(|source| CaError::Write {
        path: files.issuing_cert.clone(),
        source,
    })?;
    files::sync_parent(&files.issuing_cert)?;
    Ok(replaced)
}

fn key_description(config: &KeyConfig, file: &Path) -> String {
    match config.kind {
        KeyKind::File => format!("file {}", file.display()),
        KeyKind::Pkcs11 => format!(
            "pkcs11 token \"{}\" key \"{}\"",
            config.token_label, config.key_label
        ),
    }
}

/// The issuing-CA profile of [`build::build_issuing`], as a certificate from elsewhere must
/// show it: basicConstraints critical with cA and pathLenConstraint 0, keyUsage critical with
/// keyCertSign and cRLSign, NCA's CA policy, and a CRL distribution point.
fn check_issuing_profile(cert: &X509) -> Result<(), CeremonyError> {
    use der::Decode;
    use x509_cert::ext::pkix::{BasicConstraints, CertificatePolicies, KeyUsage, KeyUsages};
    let parsed = x509_cert::Certificate::from_der(&cert.to_der()?)
        .map_err(|e| refused(format!("the certificate does not parse: {e}")))?;
    let extensions = parsed.tbs_certificate.extensions.unwrap_or_default();
    let find = |oid| extensions.iter().find(|e| e.extn_id == oid);
    let basic = find(const_oid::db::rfc5280::ID_CE_BASIC_CONSTRAINTS)
        .filter(|e| e.critical)
        .and_then(|e| BasicConstraints::from_der(e.extn_value.as_bytes()).ok());
    if !basic.is_some_and(|b| b.ca && b.path_len_constraint == Some(0)) {
        return Err(refused(
            "the certificate is not an issuing CA certificate: basicConstraints must be \
             critical with cA and a path length of 0",
        ));
    }
    let usage = find(const_oid::db::rfc5280::ID_CE_KEY_USAGE)
        .filter(|e| e.critical)
        .and_then(|e| KeyUsage::from_der(e.extn_value.as_bytes()).ok());
    if !usage
        .is_some_and(|u| u.0.contains(KeyUsages::KeyCertSign) && u.0.contains(KeyUsages::CRLSign))
    {
        return Err(refused(
            "the certificate's keyUsage must be critical with keyCertSign and cRLSign",
        ));
    }
    let policies = find(const_oid::db::rfc5280::ID_CE_CERTIFICATE_POLICIES)
        .and_then(|e| CertificatePolicies::from_der(e.extn_value.as_bytes()).ok());
    if !policies.is_some_and(|p| {
        p.0.iter()
            .any(|i| i.policy_identifier == build::OID_POLICY_CA)
    }) {
        return Err(refused(format!(
            "the certificate lacks the CA policy {} of the issuing-CA profile",
            build::OID_POLICY_CA
        )));
    }
    if find(const_oid::db::rfc5280::ID_CE_CRL_DISTRIBUTION_POINTS).is_none() {
        return Err(refused(
            "the certificate has no CRL distribution point (the root CRL's URL)",
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The OCSP responder.

/// What `ca init-ocsp` made.
#[derive(Debug)]
pub struct NewResponder {
    /// The responder's certificate.
    pub cert: X509,
    /// Where its key lives.
    pub key_location: String,
    /// Where the certificate was written.
    pub cert_path: PathBuf,
}

/// Generate the delegated OCSP responder's key where `[ca.ocsp_key]` says, of
/// `[ca] ocsp_key_type`, and certify it with the installed issuing CA (the responder profile
/// of the development hierarchy: id-kp-OCSPSigning, ocsp-nocheck, `[ca] ocsp_validity_days`).
/// Refuses when a responder key or certificate exists unless `force`.
pub fn init_ocsp(
    ca: &CaConfig,
    force: bool,
    now: DateTime<Utc>,
) -> Result<NewResponder, CeremonyError> {
    refuse_gost(ca.ocsp_key_type, "ocsp_key_type")?;
    let files = HierarchyFiles::for_config(ca);
    for (path, what) in [
        (&files.root_cert, "root certificate"),
        (&files.issuing_cert, "issuing CA certificate"),
    ] {
        if !path.exists() {
            return Err(refused(format!(
                "no {what} {}: install it first",
                path.display()
            )));
        }
    }
    let issuing = super::load_key_pair(
        &ca.issuer_id,
        &files.issuing_cert,
        &files.issuing_key,
        &ca.issuing_key,
    )?;
    let root = super::CaCertificate::new(files::read_cert(&files.root_cert)?)?;
    super::signed_by(&issuing.cert, &root, &files.issuing_cert)?;
    refuse_existing(&files.ocsp_cert, "OCSP responder certificate", force)?;
    make_room_for_key(&ca.ocsp_key, "OCSP responder", &files.ocsp_key, force)?;
    let key = NewCaKey::generate(&ca.ocsp_key, "OCSP responder", ca.ocsp_key_type)?;
    let mut key_written = false;
    let written = build::issue_ocsp_responder(
        &key.public,
        issuing.certificate().x509(),
        issuing.signing_key(),
        issuing.key_type(),
        now - chrono::Duration::minutes(5),
        chrono::Duration::days(i64::from(ca.ocsp_validity_days)),
    )
    .and_then(|cert| {
        key.write(&files.ocsp_key)?;
        key_written = true;
        write_replacing(&files.ocsp_cert, &cert.to_pem()?, 0o644)?;
        Ok(cert)
    });
    let cert =
        written.inspect_err(|_| key.discard(key_written.then_some(files.ocsp_key.as_path())))?;
    Ok(NewResponder {
        cert,
        key_location: key.location(&files.ocsp_key),
        cert_path: files.ocsp_cert,
    })
}
