//! Generation of a development CA hierarchy: root, issuing CA, delegated OCSP responder and the
//! Digital ID development key pair. Used by `tamga ca init --dev`, by `tamga serve` in dev
//! mode when `[ca] dir` holds no hierarchy yet, and by tests. The certificates are built by
//! the production builders of [`crate::ca::build`]; only the self-signed development root and
//! the file layout are made here.
//!
//! Everything is written first into a staging directory inside `[ca] dir` and then renamed
//! into place, so an interrupted run leaves either nothing or a complete hierarchy (and a
//! stale staging directory that the next run removes).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use openssl::pkey::{PKey, Private, Public};
use openssl::x509::extension::{BasicConstraints, SubjectKeyIdentifier};
use openssl::x509::{X509Name, X509};

use crate::ca::build::{
    add_years, base_builder, build_issuing, ca_key_usage, generate_key, issue_ocsp_responder,
    utf8_name, ROOT_KEY_TYPE,
};
use crate::ca::pkcs11::{self, Pkcs11Key, Pkcs11Location};
use crate::ca::{write_new, CaError, HierarchyFiles, SigningKey};
use crate::config::{CaConfig, KeyConfig};
use crate::vocab::KeyType;

const ROOT_VALIDITY_YEARS: i64 = 20;
/// Certificates are backdated by this much so a relying party with a slow clock accepts them.
const BACKDATE: Duration = Duration::from_secs(3600);

/// What `init` did.
#[derive(Debug)]
pub struct InitOutcome {
    /// The files of the new hierarchy.
    pub files: HierarchyFiles,
    /// Whether an existing hierarchy was replaced.
    pub replaced: bool,
}

/// Generate a development hierarchy in `ca.dir`, its certificates pointing relying parties at
/// `public_url` and the issuing CA's certificate policies at `cps_url`.
///
/// Refuses (with [`CaError::AlreadyExists`]) when any hierarchy file is already there, unless
/// `force` is set, in which case the old files are replaced.
pub fn init(
    ca: &CaConfig,
    public_url: &str,
    cps_url: &str,
    force: bool,
    now: DateTime<Utc>,
) -> Result<InitOutcome, CaError> {
    let files = HierarchyFiles::for_config(ca);
    std::fs::create_dir_all(&ca.dir).map_err(|source| CaError::Write {
        path: ca.dir.clone(),
        source,
    })?;
    let replaced = files.all().iter().any(|p| p.exists());
    if replaced && !force {
        return Err(CaError::AlreadyExists(ca.dir.clone()));
    }
    remove_stale_staging(&ca.dir);

    let staging = ca
        .dir
        .join(format!(".init-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir(&staging).map_err(|source| CaError::Write {
        path: staging.clone(),
        source,
    })?;
    let staged = files.in_dir(&staging);
    let result = generate_into(&staged, ca, public_url, cps_url, now).and_then(|()| {
        for (from, to) in staged.all().into_iter().zip(files.all()) {
            std::fs::rename(from, to).map_err(|source| CaError::Write {
                path: to.to_path_buf(),
                source,
            })?;
        }
        Ok(())
    });
    // Best effort: the directory is empty after a successful rename.
    let _ = std::fs::remove_dir_all(&staging);
    result?;
    Ok(InitOutcome { files, replaced })
}

fn remove_stale_staging(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(".init-") {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn generate_into(
    files: &HierarchyFiles,
    ca: &CaConfig,
    public_url: &str,
    cps_url: &str,
    now: DateTime<Utc>,
) -> Result<(), CaError> {
    let not_before = now - BACKDATE;

    let root_key = generate_key(ROOT_KEY_TYPE)?;
    let root_name = utf8_name("ҚР ТҮБІРЛІК КУӘЛАНДЫРУШЫ ОРТАЛЫҒЫ (RSA) DEV")?;
    let root_cert = build_root(&root_name, &root_key, not_before)?;
    let root_signer = SigningKey::File {
        key: root_key.clone(),
        path: files.root_key.clone(),
    };

    let issuing = NewKey::generate(&ca.issuing_key, "issuing", ca.issuing_key_type)?;
    let algorithm = if ca.issuing_key_type.is_rsa() {
        "RSA"
    } else {
        "ECDSA"
    };
    let issuing_name = utf8_name(&format!("ҰЛТТЫҚ КУӘЛАНДЫРУШЫ ОРТАЛЫҚ ({algorithm}) DEV"))?;
    let issuing_cert = build_issuing(
        &issuing_name,
        &issuing.public,
        &root_cert,
        &root_signer,
        public_url,
        cps_url,
        not_before,
    )?;

    let ocsp = NewKey::generate(&ca.ocsp_key, "OCSP responder", ca.ocsp_key_type)?;
    let ocsp_cert = issue_ocsp_responder(
        &ocsp.public,
        &issuing_cert,
        &issuing.signer,
        ca.issuing_key_type,
        not_before,
        chrono::Duration::days(i64::from(ca.ocsp_validity_days)),
    )?;

    let digital_id_key = generate_key(KeyType::EcP256)?;

    write_key(&files.root_key, &root_key)?;
    write_cert(&files.root_cert, &root_cert)?;
    issuing.write(&files.issuing_key)?;
    write_cert(&files.issuing_cert, &issuing_cert)?;
    ocsp.write(&files.ocsp_key)?;
    write_cert(&files.ocsp_cert, &ocsp_cert)?;
    write_key(&files.digital_id_key, &digital_id_key)?;
    write_new(
        &files.digital_id_pub,
        &digital_id_key.public_key_to_pem()?,
        0o644,
    )?;
    Ok(())
}

/// A CA key made by `init`: in memory until written, or already inside its token.
struct NewKey {
    signer: SigningKey,
    public: PKey<Public>,
}

impl NewKey {
    /// Generate a key of `key_type` where `config` says keys live: in memory (written by
    /// [`NewKey::write`]) or inside the PKCS#11 token.
    fn generate(config: &KeyConfig, what: &str, key_type: KeyType) -> Result<NewKey, CaError> {
        match Pkcs11Location::from_config(what, config)? {
            Some(location) => {
                let public = pkcs11::generate(&location, key_type)?;
                let key = Pkcs11Key::open(location, key_type)?;
                Ok(NewKey {
                    signer: SigningKey::Pkcs11(Arc::new(key)),
                    public,
                })
            }
            None => {
                let key = generate_key(key_type)?;
                let public = PKey::public_key_from_der(&key.public_key_to_der()?)?;
                Ok(NewKey {
                    signer: SigningKey::File {
                        key,
                        path: std::path::PathBuf::new(),
                    },
                    public,
                })
            }
        }
    }

    /// Write a file key to `path`; a token key stays where it is.
    fn write(&self, path: &Path) -> Result<(), CaError> {
        match &self.signer {
            SigningKey::File { key, .. } => write_key(path, key),
            SigningKey::Pkcs11(_) => Ok(()),
        }
    }
}

fn write_key(path: &Path, key: &PKey<Private>) -> Result<(), CaError> {
    write_new(path, &key.private_key_to_pem_pkcs8()?, 0o600)
}

fn write_cert(path: &Path, cert: &X509) -> Result<(), CaError> {
    write_new(path, &cert.to_pem()?, 0o644)
}

fn build_root(
    name: &X509Name,
    key: &PKey<Private>,
    not_before: DateTime<Utc>,
) -> Result<X509, CaError> {
    let not_after = add_years(not_before, ROOT_VALIDITY_YEARS);
    let mut b = base_builder(name, name, key, not_before, not_after)?;
    b.append_extension(BasicConstraints::new().critical().ca().build()?)?;
    b.append_extension(ca_key_usage()?)?;
    let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(None, None))?;
    b.append_extension(ski)?;
    b.sign(key, ROOT_KEY_TYPE.digest())?;
    Ok(b.build())
}
