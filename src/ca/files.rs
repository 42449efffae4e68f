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
    /// to start while it is there. `root.development` for the root `root`,
    /// `<root_id>.development` for another.
    pub dev_root_marker: PathBuf,
    root_id: String,
    issuer_id: String,
    /// Whether the issuing key is a file here (not in a PKCS#11 token).
    issuing_key_is_file: bool,
    /// Whether the OCSP responder key is a file here.
    ocsp_key_is_file: bool,
}

impl HierarchyFiles {
    /// The layout for issuing CA `issuer_id` in `dir`, under the root `root`
    /// ([`HierarchyFiles::with_root`] with the root id `root`).
    pub fn new(dir: &Path, issuer_id: &str) -> HierarchyFiles {
        HierarchyFiles::with_root(dir, "root", issuer_id)
    }

    /// The layout for issuing CA `issuer_id` in `dir` under the root `root_id`: the root's
    /// certificate `<root_id>.pem` and key `<root_id>.key.pem`, the rest as [`HierarchyFiles::new`]
    /// names them.
    pub fn with_root(dir: &Path, root_id: &str, issuer_id: &str) -> HierarchyFiles {
        HierarchyFiles {
            dir: dir.to_path_buf(),
            root_cert: dir.join(format!("{root_id}.pem")),
            root_key: dir.join(format!("{root_id}.key.pem")),
            issuing_cert: dir.join(format!("{issuer_id}.pem")),
            issuing_key: dir.join(format!("{issuer_id}.key.pem")),
            ocsp_cert: dir.join(format!("ocsp_{issuer_id}.pem")),
            ocsp_key: dir.join(format!("ocsp_{issuer_id}.key.pem")),
            digital_id_key: dir.join("digital_id_dev.key.pem"),
            digital_id_pub: dir.join("digital_id_dev.pub.pem"),
            // `root.development` (`ceremony::DEV_ROOT_MARKER`) for the root `root`.
            dev_root_marker: dir.join(format!("{root_id}.development")),
            root_id: root_id.to_owned(),
            issuer_id: issuer_id.to_owned(),
            issuing_key_is_file: true,
            ocsp_key_is_file: true,
        }
    }

    /// The layout `[ca]` describes (or a view of one of its issuers,
    /// `CaConfig::per_issuer`): key files only for keys that are not in a token.
    pub fn for_config(ca: &CaConfig) -> HierarchyFiles {
        HierarchyFiles {
            issuing_key_is_file: ca.issuing_key.kind == KeyKind::File,
            ocsp_key_is_file: ca.ocsp_key.kind == KeyKind::File,
            ..HierarchyFiles::with_root(&ca.dir, &ca.root_id, &ca.issuer_id)
        }
    }

    /// The same layout in another directory (a staging directory).
    pub fn in_dir(&self, dir: &Path) -> HierarchyFiles {
        HierarchyFiles {
            issuing_key_is_file: self.issuing_key_is_file,
            ocsp_key_is_file: self.ocsp_key_is_file,
            ..HierarchyFiles::with_root(dir, &self.root_id, &self.issuer_id)
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

/// Write `bytes` to a new file with `mode`, durably (the file, then its directory entry);
/// fails if the file exists. A file this call created is removed again when a later step
/// (writing, syncing) fails: nothing half-written stays behind.
pub fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), CaError> {
    write_new_file(path, bytes, mode)?;
    sync_parent(path)
}

/// Write `bytes` to `path` with `mode` through a temporary file in the same directory, a
/// rename and a sync of the directory: a reader sees the old file or the new one, never half of
/// one, and the temporary file is removed on any failure (writing, syncing, renaming).
pub(crate) fn write_replacing(path: &Path, bytes: &[u8], mode: u32) -> Result<(), CaError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    write_new_file(&tmp, bytes, mode)?;
    if let Err(source) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(CaError::Write {
            path: path.to_path_buf(),
            source,
        });
    }
    sync_parent(path)
}

/// Create `path` (it must not exist) with `mode`, write and sync it; the file is removed when
/// writing or syncing fails.
fn write_new_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), CaError> {
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
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    drop(file);
    written.map_err(|source| {
        let _ = std::fs::remove_file(path);
        err(source)
    })
}

/// Sync the directory holding `path`, so that a file created or renamed there survives a
/// crash.
pub(crate) fn sync_parent(path: &Path) -> Result<(), CaError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| CaError::Write {
            path: dir.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_layout_under_another_root_names_only_the_root_files_after_it() {
        let dir = Path::new("/ca");
        let legacy = HierarchyFiles::new(dir, "nca_gost_dev");
        let gost = HierarchyFiles::with_root(dir, "root_gost", "nca_gost_dev");
        assert_eq!(legacy.root_cert, dir.join("root.pem"));
        assert_eq!(legacy.root_key, dir.join("root.key.pem"));
        assert_eq!(
            legacy.dev_root_marker,
            dir.join(crate::ca::ceremony::DEV_ROOT_MARKER)
        );
        assert_eq!(gost.root_cert, dir.join("root_gost.pem"));
        assert_eq!(gost.root_key, dir.join("root_gost.key.pem"));
        assert_eq!(gost.dev_root_marker, dir.join("root_gost.development"));
        for (a, b) in [
            (&legacy.issuing_cert, &gost.issuing_cert),
            (&legacy.issuing_key, &gost.issuing_key),
            (&legacy.ocsp_cert, &gost.ocsp_cert),
            (&legacy.ocsp_key, &gost.ocsp_key),
            (&legacy.digital_id_key, &gost.digital_id_key),
            (&legacy.digital_id_pub, &gost.digital_id_pub),
        ] {
            assert_eq!(a, b);
        }
        assert_eq!(gost.issuing_cert, dir.join("nca_gost_dev.pem"));
        // A staging copy keeps the root's id.
        let staged = gost.in_dir(Path::new("/staging"));
        assert_eq!(staged.root_cert, Path::new("/staging/root_gost.pem"));
    }

    #[test]
    fn write_replacing_replaces_the_file_with_its_mode_and_leaves_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        std::fs::write(&path, b"old").unwrap();
        write_replacing(&path, b"new", 0o600).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(entries(dir.path()), ["key.pem"]);
    }

    #[test]
    fn a_failed_rename_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        // A non-empty directory where the file should go: the rename fails.
        let target = dir.path().join("root.pem");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("inside"), b"x").unwrap();
        let err = write_replacing(&target, b"certificate", 0o644).unwrap_err();
        assert!(matches!(err, CaError::Write { .. }), "{err}");
        assert_eq!(entries(dir.path()), ["root.pem"]);
        assert_eq!(entries(&target), ["inside"]);
    }

    #[test]
    fn write_new_never_touches_a_file_that_is_there() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ocsp.pem");
        std::fs::write(&path, b"kept").unwrap();
        assert!(write_new(&path, b"other", 0o644).is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"kept");
        let fresh = dir.path().join("fresh.pem");
        write_new(&fresh, b"fresh", 0o644).unwrap();
        assert_eq!(std::fs::read(&fresh).unwrap(), b"fresh");
    }
}
