//! The file layout of a CA hierarchy in `[ca] dir`, and reading and writing its PEM files.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use openssl::pkey::{PKey, Private, Public};
use openssl::x509::X509;

use super::CaError;
use crate::config::{CaConfig, KeyKind, Mode};

/// Paths of every file of a hierarchy.
#[derive(Debug, Clone)]
pub struct HierarchyFiles {
    /// The directory.
    pub dir: PathBuf,
    /// Root CA certificate (PEM).
    pub root_cert: PathBuf,
    /// Root CA private key (PKCS#8 PEM); absent in production, where the root is offline.
    pub root_key: PathBuf,
    /// Issuing CA certificate.
    pub issuing_cert: PathBuf,
    /// Issuing CA private key.
    pub issuing_key: PathBuf,
    /// Delegated OCSP responder certificate.
    pub ocsp_cert: PathBuf,
    /// Delegated OCSP responder private key.
    pub ocsp_key: PathBuf,
    /// Development Digital ID signing key (PKCS#8 PEM, EC P-256).
    pub digital_id_key: PathBuf,
    /// Development Digital ID public key (SubjectPublicKeyInfo PEM).
    pub digital_id_pub: PathBuf,
    /// The marker beside the root key of a development root (`ca init`); production refuses
    /// to start while it is there.
    pub dev_root_marker: PathBuf,
    issuer_id: String,
    /// Whether the issuing key is a file here (not in a PKCS#11 token).
    issuing_key_is_file: bool,
    /// Whether the OCSP responder key is a file here.
    ocsp_key_is_file: bool,
}

impl HierarchyFiles {
    /// The layout for issuing CA `issuer_id` in `dir`.
    pub fn new(dir: &Path, issuer_id: &str) -> HierarchyFiles {
        HierarchyFiles {
            dir: dir.to_path_buf(),
            root_cert: dir.join("root.pem"),
            root_key: dir.join("root.key.pem"),
            issuing_cert: dir.join(format!("{issuer_id}.pem")),
            issuing_key: dir.join(format!("{issuer_id}.key.pem")),
            ocsp_cert: dir.join(format!("ocsp_{issuer_id}.pem")),
            ocsp_key: dir.join(format!("ocsp_{issuer_id}.key.pem")),
            digital_id_key: dir.join("digital_id_dev.key.pem"),
            digital_id_pub: dir.join("digital_id_dev.pub.pem"),
            dev_root_marker: dir.join(super::ceremony::DEV_ROOT_MARKER),
            issuer_id: issuer_id.to_owned(),
            issuing_key_is_file: true,
            ocsp_key_is_file: true,
        }
    }

    /// The layout `[ca]` describes: key files only for keys that are not in a token.
    pub fn for_config(ca: &CaConfig) -> HierarchyFiles {
        HierarchyFiles {
            issuing_key_is_file: ca.issuing_key.kind == KeyKind::File,
            ocsp_key_is_file: ca.ocsp_key.kind == KeyKind::File,
            ..HierarchyFiles::new(&ca.dir, &ca.issuer_id)
        }
    }

    /// The same layout in another directory (a staging directory).
    pub fn in_dir(&self, dir: &Path) -> HierarchyFiles {
        HierarchyFiles {
            issuing_key_is_file: self.issuing_key_is_file,
            ocsp_key_is_file: self.ocsp_key_is_file,
            ..HierarchyFiles::new(dir, &self.issuer_id)
        }
    }

    /// The files a hierarchy must have in `mode`.
    pub fn required(&self, mode: Mode) -> Vec<&Path> {
        let mut v: Vec<&Path> = vec![&self.root_cert, &self.issuing_cert];
        if self.issuing_key_is_file {
            v.push(&self.issuing_key);
        }
        v.push(&self.ocsp_cert);
        if self.ocsp_key_is_file {
            v.push(&self.ocsp_key);
        }
        if mode == Mode::Dev {
            v.extend([
                self.root_key.as_path(),
                &self.digital_id_key,
                &self.digital_id_pub,
            ]);
        }
        v
    }

    /// Every file a development hierarchy consists of.
    pub fn all(&self) -> Vec<&Path> {
        self.required(Mode::Dev)
    }

    /// Whether `path` is one of the private-key files.
    pub fn is_key(&self, path: &Path) -> bool {
        [
            &self.root_key,
            &self.issuing_key,
            &self.ocsp_key,
            &self.digital_id_key,
        ]
        .iter()
        .any(|k| k.as_path() == path)
    }
}

fn read(path: &Path) -> Result<Vec<u8>, CaError> {
    crate::input::read_bounded(path, crate::input::PEM_LIMIT).map_err(|source| CaError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn invalid(path: &Path, message: &str) -> CaError {
    CaError::Invalid {
        path: path.to_path_buf(),
        message: message.to_owned(),
    }
}

/// Read a PEM certificate.
pub fn read_cert(path: &Path) -> Result<X509, CaError> {
    X509::from_pem(&read(path)?).map_err(|_| invalid(path, "not a PEM certificate"))
}

/// Read a PEM private key (PKCS#8 or traditional).
pub fn read_private_key(path: &Path) -> Result<PKey<Private>, CaError> {
    PKey::private_key_from_pem(&read(path)?)
        .map_err(|_| invalid(path, "not an unencrypted PEM private key"))
}

/// Read a PEM public key (SubjectPublicKeyInfo).
pub fn read_public_key(path: &Path) -> Result<PKey<Public>, CaError> {
    PKey::public_key_from_pem(&read(path)?).map_err(|_| invalid(path, "not a PEM public key"))
}

/// Write `bytes` to a new file with `mode`; fails if the file exists.
pub fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), CaError> {
    let err = |source| CaError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(err)?;
    file.write_all(bytes).map_err(err)?;
    file.sync_all().map_err(err)
}
