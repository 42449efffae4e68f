//! Generation of a development CA hierarchy: root, issuing CA, delegated OCSP responder and the
//! Digital ID development key pair. Used by `tamga ca init --dev`, by `tamga serve` in dev
//! mode when `[ca] dir` holds no hierarchy yet, and by tests. The certificates are built by
//! the production builders of [`crate::ca::build`] and the keys by the ceremony's generator
//! ([`crate::ca::ceremony::NewCaKey`], a file or a token object); only the file layout and the
//! marker that says the root is a development root (`root.development`, which production
//! refuses) are made here. A GOST `[ca] issuing_key_type` (`gost2015-512`) gets a GOST root
//! and issuing CA in NCA's form instead ([`crate::ca::init_gost_hierarchy`]).
//!
//! Everything is written first into a staging directory inside `[ca] dir` and then renamed
//! into place, so an interrupted run leaves either nothing or a complete hierarchy (and a
//! stale staging directory that the next run removes).

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;

use crate::ca::build::{
    add_years, build_issuing, build_root, generate_key, issue_ocsp_responder, utf8_name,
    IssuingUrls, RootSigner, ISSUING_VALIDITY_YEARS, ROOT_KEY_TYPE, ROOT_VALIDITY_YEARS,
};
use crate::ca::ceremony::{dev_root_marker_text, NewCaKey};
use crate::ca::{write_new, CaError, HierarchyFiles, SigningKey};
use crate::config::CaConfig;
use crate::vocab::KeyType;

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
        // The marker first: a root is never in place unmarked, whatever rename fails. A marker
        // left without a root is harmless (production refuses it; `root init` replaces it).
        let marker = [(
            staged.dev_root_marker.as_path(),
            files.dev_root_marker.as_path(),
        )];
        for (from, to) in marker
            .into_iter()
            .chain(staged.all().into_iter().zip(files.all()))
        {
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

/// Generate a further issuer's hierarchy (an entry of `[[ca.issuers]]`, `ca` its view from
/// [`CaConfig::per_issuer`]) in `ca.dir`: its issuing CA and delegated OCSP responder, under
/// its root — the one already there (`<root_id>.pem` and `<root_id>.key.pem`, made by `init`
/// or for an earlier issuer under the same root), or a new development root. Files are written
/// new (never over an existing one); when a step fails, the files this call wrote are removed.
///
/// Refuses (with [`CaError::AlreadyExists`]) when the issuer's files are there, unless `force`
/// is set: then they are replaced, and its root too when `replace_root` is set (the first
/// issuer under a root of its own in a forced run).
pub fn init_further(
    ca: &CaConfig,
    public_url: &str,
    cps_url: &str,
    force: bool,
    replace_root: bool,
    now: DateTime<Utc>,
) -> Result<InitOutcome, CaError> {
    let files = HierarchyFiles::for_config(ca);
    std::fs::create_dir_all(&ca.dir).map_err(|source| CaError::Write {
        path: ca.dir.clone(),
        source,
    })?;
    let own = [
        &files.issuing_cert,
        &files.issuing_key,
        &files.ocsp_cert,
        &files.ocsp_key,
    ];
    let replaced = own.iter().any(|p| p.exists());
    if replaced && !force {
        return Err(CaError::AlreadyExists(ca.dir.clone()));
    }
    if force {
        let mut old: Vec<&std::path::PathBuf> = own.to_vec();
        if replace_root {
            old.extend([&files.root_cert, &files.root_key, &files.dev_root_marker]);
        }
        for path in old {
            let _ = std::fs::remove_file(path);
        }
    }
    let mut written = Vec::new();
    let result = generate_further(&files, ca, public_url, cps_url, now, &mut written);
    if result.is_err() {
        for path in written {
            let _ = std::fs::remove_file(path);
        }
    }
    result?;
    Ok(InitOutcome { files, replaced })
}

fn generate_further(
    files: &HierarchyFiles,
    ca: &CaConfig,
    public_url: &str,
    cps_url: &str,
    now: DateTime<Utc>,
    written: &mut Vec<std::path::PathBuf>,
) -> Result<(), CaError> {
    if ca.issuing_key_type.is_gost() {
        // A GOST issuing CA under a GOST root of its own, in NCA's form (`ca::gost_ca`).
        if files.root_cert.exists() {
            return Err(CaError::Invalid {
                path: files.root_cert.clone(),
                message: format!(
                    "a development GOST issuing CA is generated with a GOST root of its own: \
                     give {} a root_id no other issuer uses",
                    ca.issuer_id
                ),
            });
        }
        let own = [
            &files.dev_root_marker,
            &files.root_key,
            &files.root_cert,
            &files.issuing_key,
            &files.issuing_cert,
            &files.ocsp_key,
            &files.ocsp_cert,
        ];
        let before: Vec<bool> = own.iter().map(|p| p.exists()).collect();
        let made = crate::ca::init_gost_hierarchy(
            files,
            crate::ca::gost_ca::GOST_ISSUING_DEV_NAME,
            &crate::ca::GostUrls {
                public_url,
                cps_url,
                root_id: &ca.root_id,
            },
            chrono::Duration::days(i64::from(ca.ocsp_validity_days)),
            now,
        );
        // What it wrote is taken away again by the caller when it failed.
        for (path, existed) in own.iter().zip(before) {
            if !existed && path.exists() {
                written.push((*path).clone());
            }
        }
        return made;
    }
    let not_before = now - BACKDATE;
    let (root_key, root_cert) = if files.root_cert.exists() && files.root_key.exists() {
        (
            crate::ca::read_private_key(&files.root_key)?,
            crate::ca::read_cert(&files.root_cert)?,
        )
    } else {
        let root_key = generate_key(ROOT_KEY_TYPE)?;
        let root_name = utf8_name(&format!(
            "ҚР ТҮБІРЛІК КУӘЛАНДЫРУШЫ ОРТАЛЫҒЫ (RSA) DEV {}",
            ca.root_id
        ))?;
        let signer = SigningKey::File {
            key: root_key.clone(),
            path: files.root_key.clone(),
        };
        let root_cert = build_root(
            &root_name,
            &root_key,
            &signer,
            ROOT_KEY_TYPE,
            not_before,
            add_years(not_before, ROOT_VALIDITY_YEARS),
        )?;
        // The marker first, as `init` writes it: a root is never in place unmarked.
        if !files.dev_root_marker.exists() {
            write_new(
                &files.dev_root_marker,
                dev_root_marker_text(&root_cert)?.as_bytes(),
                0o644,
            )?;
            written.push(files.dev_root_marker.clone());
        }
        write_key(&files.root_key, &root_key)?;
        written.push(files.root_key.clone());
        write_cert(&files.root_cert, &root_cert)?;
        written.push(files.root_cert.clone());
        (root_key, root_cert)
    };
    let root_type = KeyType::of(&root_key).ok_or_else(|| CaError::Invalid {
        path: files.root_key.clone(),
        message: "unsupported root key type".to_owned(),
    })?;
    let root_signer = SigningKey::File {
        key: root_key,
        path: files.root_key.clone(),
    };
    let issuing = NewCaKey::generate(&ca.issuing_key, "issuing", ca.issuing_key_type)?;
    let algorithm = if ca.issuing_key_type.is_rsa() {
        "RSA"
    } else {
        "ECDSA"
    };
    let issuing_name = utf8_name(&format!(
        "ҰЛТТЫҚ КУӘЛАНДЫРУШЫ ОРТАЛЫҚ ({algorithm}) DEV {}",
        ca.issuer_id
    ))?;
    let issuing_cert = build_issuing(
        &issuing_name,
        issuing.public(),
        &RootSigner {
            cert: &root_cert,
            key: &root_signer,
            key_type: root_type,
        },
        &IssuingUrls {
            public_url,
            cps_url,
            root_id: &ca.root_id,
        },
        not_before,
        add_years(not_before, ISSUING_VALIDITY_YEARS),
    )?;
    let ocsp = NewCaKey::generate(&ca.ocsp_key, "OCSP responder", ca.ocsp_key_type)?;
    let ocsp_cert = issue_ocsp_responder(
        ocsp.public(),
        &issuing_cert,
        issuing.signer(),
        ca.issuing_key_type,
        not_before,
        chrono::Duration::days(i64::from(ca.ocsp_validity_days)),
    )?;
    if !files.issuing_key.exists() {
        issuing.write(&files.issuing_key)?;
        written.push(files.issuing_key.clone());
    }
    write_cert(&files.issuing_cert, &issuing_cert)?;
    written.push(files.issuing_cert.clone());
    if !files.ocsp_key.exists() {
        ocsp.write(&files.ocsp_key)?;
        written.push(files.ocsp_key.clone());
    }
    write_cert(&files.ocsp_cert, &ocsp_cert)?;
    written.push(files.ocsp_cert.clone());
    Ok(())
}

/// What [`init_all`] did: the hierarchies it made, `[ca]`'s first, in configuration order, and
/// the issuers it left out with why (a GOST issuer while the gost engine is not loaded).
#[derive(Debug)]
pub struct InitAllOutcome {
    /// The hierarchies made.
    pub made: Vec<InitOutcome>,
    /// The issuers left out: (id, why).
    pub skipped: Vec<(String, String)>,
}

/// Generate every issuer's development hierarchy `ca` lists: `[ca]`'s with [`init`], then each
/// `[[ca.issuers]]` entry with [`init_further`] (a root id other than `root` gets a root of its
/// own, made for the first issuer under it); a GOST issuer is left out while the gost engine
/// is not loaded (`crate::ca::issuers::skipped`).
pub fn init_all(
    ca: &CaConfig,
    public_url: &str,
    cps_url: &str,
    force: bool,
    now: DateTime<Utc>,
) -> Result<InitAllOutcome, CaError> {
    let mut views = ca.per_issuer().into_iter();
    let mut outcomes = InitAllOutcome {
        made: Vec::new(),
        skipped: Vec::new(),
    };
    let Some(first) = views.next() else {
        return Ok(outcomes);
    };
    outcomes
        .made
        .push(init(&first, public_url, cps_url, force, now)?);
    let mut roots_made = vec![first.root_id.clone()];
    for view in views {
        if crate::ca::issuers::skipped(&view, false) {
            outcomes.skipped.push((
                view.issuer_id.clone(),
                crate::ca::issuers::not_loaded_reason(),
            ));
            continue;
        }
        let replace_root = !roots_made.contains(&view.root_id);
        outcomes.made.push(init_further(
            &view,
            public_url,
            cps_url,
            force,
            replace_root,
            now,
        )?);
        roots_made.push(view.root_id.clone());
    }
    Ok(outcomes)
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

    if ca.issuing_key_type.is_gost() {
        // A GOST issuing CA under a GOST root, in NCA's form (`ca::gost_ca`).
        crate::ca::init_gost_hierarchy(
            files,
            crate::ca::gost_ca::GOST_ISSUING_DEV_NAME,
            &crate::ca::GostUrls {
                public_url,
                cps_url,
                root_id: &ca.root_id,
            },
            chrono::Duration::days(i64::from(ca.ocsp_validity_days)),
            now,
        )?;
        return write_digital_id_key(files);
    }

    let root_key = generate_key(ROOT_KEY_TYPE)?;
    let root_name = utf8_name("ҚР ТҮБІРЛІК КУӘЛАНДЫРУШЫ ОРТАЛЫҒЫ (RSA) DEV")?;
    let root_signer = SigningKey::File {
        key: root_key.clone(),
        path: files.root_key.clone(),
    };
    let root_cert = build_root(
        &root_name,
        &root_key,
        &root_signer,
        ROOT_KEY_TYPE,
        not_before,
        add_years(not_before, ROOT_VALIDITY_YEARS),
    )?;

    let issuing = NewCaKey::generate(&ca.issuing_key, "issuing", ca.issuing_key_type)?;
    let algorithm = if ca.issuing_key_type.is_rsa() {
        "RSA"
    } else {
        "ECDSA"
    };
    let issuing_name = utf8_name(&format!("ҰЛТТЫҚ КУӘЛАНДЫРУШЫ ОРТАЛЫҚ ({algorithm}) DEV"))?;
    let issuing_cert = build_issuing(
        &issuing_name,
        issuing.public(),
        &RootSigner {
            cert: &root_cert,
            key: &root_signer,
            key_type: ROOT_KEY_TYPE,
        },
        &IssuingUrls {
            public_url,
            cps_url,
            root_id: &ca.root_id,
        },
        not_before,
        add_years(not_before, ISSUING_VALIDITY_YEARS),
    )?;

    let ocsp = NewCaKey::generate(&ca.ocsp_key, "OCSP responder", ca.ocsp_key_type)?;
    let ocsp_cert = issue_ocsp_responder(
        ocsp.public(),
        &issuing_cert,
        issuing.signer(),
        ca.issuing_key_type,
        not_before,
        chrono::Duration::days(i64::from(ca.ocsp_validity_days)),
    )?;

    write_key(&files.root_key, &root_key)?;
    write_cert(&files.root_cert, &root_cert)?;
    write_new(
        &files.dev_root_marker,
        dev_root_marker_text(&root_cert)?.as_bytes(),
        0o644,
    )?;
    issuing.write(&files.issuing_key)?;
    write_cert(&files.issuing_cert, &issuing_cert)?;
    ocsp.write(&files.ocsp_key)?;
    write_cert(&files.ocsp_cert, &ocsp_cert)?;
    write_digital_id_key(files)
}

/// The development Digital ID key pair: a fresh EC P-256 key and its public key.
fn write_digital_id_key(files: &HierarchyFiles) -> Result<(), CaError> {
    let digital_id_key = generate_key(KeyType::EcP256)?;
    write_key(&files.digital_id_key, &digital_id_key)?;
    write_new(
        &files.digital_id_pub,
        &digital_id_key.public_key_to_pem()?,
        0o644,
    )
}

fn write_key(path: &Path, key: &PKey<Private>) -> Result<(), CaError> {
    write_new(path, &key.private_key_to_pem_pkcs8()?, 0o600)
}

fn write_cert(path: &Path, cert: &X509) -> Result<(), CaError> {
    write_new(path, &cert.to_pem()?, 0o644)
}
