//! `tamga backup` and `tamga restore`: a consistent copy of a live SQLite database with its
//! manifest, the check of a database (`backup --verify`, either backend), and the restore,
//! which checks a backup before anything is put in place and re-applies the revocations of
//! the newest published CRLs (`crl::restore`).
//!
//! A backup is a directory, `tamga.db` (a SQLite database: open it with `sqlite3`) and
//! `manifest.json` (what it holds: schema version, audit head, CRL numbers, the database's
//! SHA-256), written under a temporary name, synced, and renamed into place: a backup that
//! exists is complete.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read as _;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::*;
use crate::config::DatabaseUrl;
use crate::crl::restore::{self as crl_restore, PublishedCrl};
use crate::store::{known_schema_version, Backend, DatabaseFacts, SqliteFile};

/// The database file inside a backup directory.
const DATABASE_FILE: &str = "tamga.db";
/// The manifest inside a backup directory.
const MANIFEST_FILE: &str = "manifest.json";
/// The manifest's `format`.
const FORMAT: &str = "tamga-backup/1";
/// The largest manifest read.
const MANIFEST_LIMIT: u64 = 1024 * 1024;

/// What `manifest.json` says about a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Manifest {
    /// `tamga-backup/1`.
    format: String,
    /// The Tamga version that made it.
    tamga_version: String,
    /// When (RFC 3339, UTC).
    created_at: String,
    /// `sqlite`.
    backend: String,
    /// The newest migration applied to the database.
    schema_version: String,
    /// The audit chain's newest entry.
    audit_head: Option<AuditHead>,
    /// Each issuer's highest CRL number (`root` for the root's CRLs).
    crl_numbers: BTreeMap<String, i64>,
    /// The database file.
    database: DatabaseFile,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct AuditHead {
    seq: i64,
    hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct DatabaseFile {
    file: String,
    bytes: u64,
    sha256: String,
}

fn facts_fields(facts: &DatabaseFacts) -> (Option<AuditHead>, BTreeMap<String, i64>) {
    (
        facts.audit_head.as_ref().map(|r| AuditHead {
            seq: r.seq,
            hash: r.hash.clone(),
        }),
        facts.crl_numbers.iter().cloned().collect(),
    )
}

fn io_failure(what: &str, path: &Path, e: std::io::Error) -> Failure {
    Failure::Internal(anyhow::anyhow!("{what} {}: {e}", path.display()))
}

/// SHA-256 (hex) and size of the file at `path`.
fn sha256_of(path: &Path) -> Result<(String, u64), Failure> {
    let mut file = File::open(path).map_err(|e| io_failure("reading", path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut bytes = 0u64;
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| io_failure("reading", path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(buf.get(..n).unwrap_or_default());
        bytes += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), bytes))
}

/// Flush a file or directory to disk.
fn sync(path: &Path) -> Result<(), Failure> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| io_failure("syncing", path, e))
}

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// A SQLite file's companions (`-wal`, `-shm`).
fn companion(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// After the last connection to `db` closed: its write-ahead log must be empty (everything
/// is in the file); the empty log and the shared-memory file are removed.
fn settle_companions(db: &Path) -> Result<(), Failure> {
    let wal = companion(db, "-wal");
    if std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0) {
        return Err(Failure::Internal(anyhow::anyhow!(
            "{} still holds changes that are not in the database file",
            wal.display()
        )));
    }
    for path in [wal, companion(db, "-shm")] {
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_failure("removing", &path, e)),
        }
    }
    Ok(())
}

pub(super) fn backup(config: &ValidConfig, args: BackupArgs) -> Result<(), Failure> {
    match args.out {
        Some(out) if !args.verify => backup_out(config, &out, args.json),
        _ => backup_verify(config, &args.published_crl, args.json),
    }
}

fn backup_out(config: &ValidConfig, out: &Path, json: bool) -> Result<(), Failure> {
    if !matches!(config.database(), DatabaseUrl::Sqlite(_)) {
        return Err(Failure::Refused(
            "the database is PostgreSQL: back it up with pg_dump (docs/operations.md, \
             \"3. Backup and restore\"); `tamga backup --verify` checks a restored one"
                .to_owned(),
        ));
    }
    if out.symlink_metadata().is_ok() {
        return Err(Failure::Refused(format!(
            "{} exists: a backup never replaces anything",
            out.display()
        )));
    }
    let name = out
        .file_name()
        .ok_or_else(|| Failure::Usage(format!("--out {}: not a directory name", out.display())))?
        .to_string_lossy()
        .into_owned();
    let parent = parent_of(out);
    std::fs::create_dir_all(&parent).map_err(|e| io_failure("creating", &parent, e))?;
    let staging = parent.join(format!(".{name}.partial-{}", std::process::id()));
    std::fs::create_dir(&staging).map_err(|e| io_failure("creating", &staging, e))?;
    let made = write_backup(config, &staging);
    let manifest = match made {
        Ok(m) => m,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    if let Err(e) = std::fs::rename(&staging, out) {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(io_failure("renaming the backup to", out, e));
    }
    sync(&parent)?;
    let head = manifest
        .audit_head
        .as_ref()
        .map_or("none".to_owned(), |h| format!("{}:{}", h.seq, h.hash));
    if json {
        let shown = serde_json::json!({ "path": out.display().to_string(), "manifest": manifest });
        out!("{shown}")?;
    } else {
        out!(
            "backup written to {} (schema {}, audit head {head}, CRL numbers {:?}, {} bytes)",
            out.display(),
            manifest.schema_version,
            manifest.crl_numbers,
            manifest.database.bytes
        )?;
    }
    Ok(())
}

/// Copy the live database into `staging`, check the copy, and write its manifest; every file
/// synced.
fn write_backup(config: &ValidConfig, staging: &Path) -> Result<Manifest, Failure> {
    let db = staging.join(DATABASE_FILE);
    {
        let store = open_store(config)?;
        store
            .backup_sqlite_into(&db)
            .map_err(|e| Failure::Internal(anyhow::anyhow!("copying the database: {e}")))?;
    }
    let (facts, verified) = {
        let mut file = SqliteFile::open(&db)
            .map_err(|e| Failure::Internal(anyhow::anyhow!("reading the copy: {e}")))?;
        let facts = file
            .facts()
            .map_err(|e| Failure::Internal(anyhow::anyhow!("reading the copy: {e}")))?;
        let verified = crate::audit::verify_with(|after, limit| {
            file.read(|tx| tx.audit_records(after, limit))
        });
        (facts, verified)
    };
    settle_companions(&db)?;
    let verified = verified
        .map_err(|e| Failure::Verification(format!("the database's audit chain is broken: {e}")))?;
    let (audit_head, crl_numbers) = facts_fields(&facts);
    if audit_head.as_ref().map_or(0, |h| h.seq) != verified.entries {
        return Err(Failure::Internal(anyhow::anyhow!(
            "the copy's audit head does not match its chain"
        )));
    }
    sync(&db)?;
    let (sha256, bytes) = sha256_of(&db)?;
    let manifest = Manifest {
        format: FORMAT.to_owned(),
        tamga_version: env!("CARGO_PKG_VERSION").to_owned(),
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        backend: Backend::Sqlite.to_string(),
        schema_version: facts.schema_version,
        audit_head,
        crl_numbers,
        database: DatabaseFile {
            file: DATABASE_FILE.to_owned(),
            bytes,
            sha256,
        },
    };
    let text = serde_json::to_string_pretty(&manifest)
        .map_err(|e| Failure::Internal(anyhow::Error::new(e)))?;
    let path = staging.join(MANIFEST_FILE);
    std::fs::write(&path, format!("{text}\n")).map_err(|e| io_failure("writing", &path, e))?;
    sync(&path)?;
    sync(staging)?;
    Ok(manifest)
}

/// Read and verify the published CRLs named on the command line.
fn published_crls(hierarchy: &Hierarchy, files: &[PathBuf]) -> Result<Vec<PublishedCrl>, Failure> {
    files
        .iter()
        .map(|file| {
            let shown = file.display().to_string();
            let bytes = crate::input::read_bounded(file, crate::input::CRL_LIMIT)
                .map_err(|e| Failure::Usage(format!("--published-crl {shown}: {e}")))?;
            crl_restore::verify(hierarchy, &shown, &bytes).map_err(|e| match e {
                crl_restore::RestoreError::Store(_) => Failure::Internal(anyhow::Error::new(e)),
                other => Failure::Refused(other.to_string()),
            })
        })
        .collect()
}

fn backup_verify(config: &ValidConfig, crl_files: &[PathBuf], json: bool) -> Result<(), Failure> {
    let crls = if crl_files.is_empty() {
        Vec::new()
    } else {
        published_crls(&load_hierarchy(config)?, crl_files)?
    };
    let store = open_store(config)?;
    let internal = |e: crate::store::StoreError| Failure::Internal(anyhow::Error::new(e));
    let facts = store.facts().map_err(internal)?;
    let known = known_schema_version(store.backend()).map_err(internal)?;
    let mut problems = Vec::new();
    if facts.schema_version != known {
        problems.push(format!(
            "schema version {} is not this Tamga's ({known})",
            facts.schema_version
        ));
    }
    let audit = match crate::audit::verify(&store) {
        Ok(v) => Some(v),
        Err(crate::audit::AuditError::Store(e)) => return Err(internal(e)),
        Err(e) => {
            problems.push(e.to_string());
            None
        }
    };
    let numbers: BTreeMap<String, i64> = facts.crl_numbers.iter().cloned().collect();
    let mut published: BTreeMap<String, i64> = BTreeMap::new();
    for crl in &crls {
        let n = published.entry(crl.issuer_id.clone()).or_insert(crl.number);
        *n = (*n).max(crl.number);
    }
    for (issuer, n) in &published {
        let held = numbers.get(issuer).copied().unwrap_or(0);
        if held < *n {
            problems.push(format!(
                "{issuer}: the newest CRL held is number {held}, relying parties hold {n}: the next CRL would not be above theirs (`tamga restore --published-crl …`)"
            ));
        }
    }
    let missing = crl_restore::missing_revocations(&store, &crls)
        .map_err(|e| Failure::Internal(anyhow::Error::new(e)))?;
    if !missing.is_empty() {
        problems.push(format!(
            "{} certificate(s) revoked in the published CRLs are not revoked here: {} (`tamga restore --published-crl …`)",
            missing.len(),
            missing.join(", ")
        ));
    }
    let head = audit
        .as_ref()
        .map(|v| format!("{}:{}", v.entries, v.head))
        .unwrap_or_default();
    let text = if json {
        serde_json::json!({
            "ok": problems.is_empty(),
            "backend": store.backend().to_string(),
            "schema_version": facts.schema_version,
            "audit_head": head,
            "crl_numbers": numbers,
            "published_crl_numbers": published,
            "problems": problems,
        })
        .to_string()
    } else {
        let mut lines = vec![format!(
            "{} database: schema {}, audit head {head}, CRL numbers {numbers:?}",
            store.backend(),
            facts.schema_version
        )];
        if problems.is_empty() {
            lines.push("database verified".to_owned());
        }
        lines.join("\n")
    };
    let verdict = if problems.is_empty() {
        Ok(())
    } else {
        Err(Failure::Verification(problems.join("; ")))
    };
    report(&text, verdict)
}

pub(super) fn restore(config: &ValidConfig, args: RestoreArgs) -> Result<(), Failure> {
    if args.published_crl.is_empty() && !args.accept_revocation_loss {
        return Err(Failure::Refused(
            "no published CRL given: without the newest CRLs relying parties hold, certificates \
             revoked after the backup would answer `good` again. Give the newest full and delta \
             CRL with --published-crl FILE… (from the CDN or any instance), or, only if no CRL \
             was published since the backup, --accept-revocation-loss (audited)"
                .to_owned(),
        ));
    }
    let hierarchy = load_hierarchy(config)?;
    let crls = published_crls(&hierarchy, &args.published_crl)?;
    let actor = operator_actor(args.operator);
    match &args.from {
        Some(dir) => restore_from(config, dir, hierarchy, &crls, args.force, &actor),
        None => {
            let store = open_store(config)?;
            if let Err(e) = crate::audit::verify(&store) {
                return Err(Failure::Verification(format!(
                    "the configured database's audit chain: {e}"
                )));
            }
            let summary = apply(config, &store, hierarchy, &crls, &actor, None)?;
            out!("{summary}")?;
            Ok(())
        }
    }
}

/// Read a backup's manifest and check the backup against it: the database file's digest, its
/// schema, audit head and CRL numbers, and its whole audit chain. Nothing is written.
fn check_backup(dir: &Path) -> Result<Manifest, Failure> {
    let path = dir.join(MANIFEST_FILE);
    let text = crate::input::read_bounded_text(&path, MANIFEST_LIMIT)
        .map_err(|e| Failure::Usage(format!("--from {}: {e}", path.display())))?;
    let manifest: Manifest = serde_json::from_str(&text).map_err(|e| {
        Failure::Verification(format!(
            "{}: not a Tamga backup manifest: {e}",
            path.display()
        ))
    })?;
    if manifest.format != FORMAT || manifest.backend != Backend::Sqlite.to_string() {
        return Err(Failure::Verification(format!(
            "{}: format {} of backend {}, expected {FORMAT} of sqlite",
            path.display(),
            manifest.format,
            manifest.backend
        )));
    }
    let db = dir.join(DATABASE_FILE);
    let (sha256, bytes) = sha256_of(&db)?;
    if sha256 != manifest.database.sha256 || bytes != manifest.database.bytes {
        return Err(Failure::Verification(format!(
            "manifest mismatch: {} is not the database the manifest describes (SHA-256 {sha256}, manifest {})",
            db.display(),
            manifest.database.sha256
        )));
    }
    let known = known_schema_version(Backend::Sqlite)
        .map_err(|e| Failure::Internal(anyhow::Error::new(e)))?;
    if manifest.schema_version > known {
        return Err(Failure::Refused(format!(
            "the backup's schema {} is newer than this Tamga's ({known}): restore it with the version that made it ({})",
            manifest.schema_version, manifest.tamga_version
        )));
    }
    let mut file = SqliteFile::open(&db)
        .map_err(|e| Failure::Verification(format!("{}: {e}", db.display())))?;
    let facts = file
        .facts()
        .map_err(|e| Failure::Verification(format!("{}: {e}", db.display())))?;
    let verified =
        crate::audit::verify_with(|after, limit| file.read(|tx| tx.audit_records(after, limit)));
    drop(file);
    let (audit_head, crl_numbers) = facts_fields(&facts);
    if facts.schema_version != manifest.schema_version
        || audit_head != manifest.audit_head
        || crl_numbers != manifest.crl_numbers
    {
        return Err(Failure::Verification(format!(
            "manifest mismatch: the database holds schema {}, audit head {:?}, CRL numbers {crl_numbers:?}; the manifest says schema {}, {:?}, {:?}",
            facts.schema_version,
            audit_head,
            manifest.schema_version,
            manifest.audit_head,
            manifest.crl_numbers
        )));
    }
    let verified =
        verified.map_err(|e| Failure::Verification(format!("the backup's audit chain: {e}")))?;
    if verified.entries != manifest.audit_head.as_ref().map_or(0, |h| h.seq) {
        return Err(Failure::Verification(
            "the backup's audit chain does not end at the manifest's head".to_owned(),
        ));
    }
    Ok(manifest)
}

fn restore_from(
    config: &ValidConfig,
    dir: &Path,
    hierarchy: Hierarchy,
    crls: &[PublishedCrl],
    force: bool,
    actor: &str,
) -> Result<(), Failure> {
    let DatabaseUrl::Sqlite(target) = config.database() else {
        return Err(Failure::Refused(
            "the configured database is PostgreSQL: restore it with pg_restore \
             (docs/operations.md, \"3. Backup and restore\"), then run `tamga restore \
             --published-crl FILE…` without --from and `tamga backup --verify`"
                .to_owned(),
        ));
    };
    let manifest = check_backup(dir)?;
    if target.symlink_metadata().is_ok() && !force {
        return Err(Failure::Refused(format!(
            "{} exists: restore into a fresh data location, or say --force to replace it (the \
             old file is kept beside it)",
            target.display()
        )));
    }
    let parent = parent_of(target);
    std::fs::create_dir_all(&parent).map_err(|e| io_failure("creating", &parent, e))?;
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| DATABASE_FILE.to_owned());
    let staging = parent.join(format!(".{name}.restore-{}", std::process::id()));
    let cleanup = |staging: &Path| {
        for path in [
            staging.to_path_buf(),
            companion(staging, "-wal"),
            companion(staging, "-shm"),
        ] {
            let _ = std::fs::remove_file(path);
        }
    };
    let summary = match restore_staged(config, dir, &staging, hierarchy, crls, actor, &manifest) {
        Ok(summary) => summary,
        Err(e) => {
            cleanup(&staging);
            return Err(e);
        }
    };
    if target.symlink_metadata().is_ok() {
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
        for suffix in ["", "-wal", "-shm"] {
            let from = companion(target, suffix);
            if from.symlink_metadata().is_ok() {
                let to = companion(&parent.join(format!("{name}.replaced-{stamp}")), suffix);
                std::fs::rename(&from, &to).map_err(|e| io_failure("moving aside", &from, e))?;
            }
        }
    }
    std::fs::rename(&staging, target).map_err(|e| io_failure("renaming into", target, e))?;
    sync(&parent)?;
    out!(
        "restored {} into {}\n{summary}",
        dir.display(),
        target.display()
    )?;
    Ok(())
}

/// Copy the backup's database to `staging`, open it (migrating an older schema), check its
/// chain again, apply the published CRLs and publish new CRLs; leaves `staging` complete and
/// synced, with no write-ahead log.
fn restore_staged(
    config: &ValidConfig,
    dir: &Path,
    staging: &Path,
    hierarchy: Hierarchy,
    crls: &[PublishedCrl],
    actor: &str,
    manifest: &Manifest,
) -> Result<String, Failure> {
    let source = dir.join(DATABASE_FILE);
    std::fs::copy(&source, staging).map_err(|e| io_failure("copying", &source, e))?;
    let (sha256, _) = sha256_of(staging)?;
    if sha256 != manifest.database.sha256 {
        return Err(Failure::Verification(format!(
            "{} changed while it was being restored",
            source.display()
        )));
    }
    let summary = {
        let url = DatabaseUrl::Sqlite(staging.to_path_buf());
        let store = Store::open(&url, &config.get().database)
            .map_err(|e| Failure::Internal(anyhow::anyhow!("opening the restored copy: {e}")))?;
        crate::audit::verify(&store)
            .map_err(|e| Failure::Verification(format!("the restored copy's audit chain: {e}")))?;
        let manifest_json =
            serde_json::to_value(manifest).map_err(|e| Failure::Internal(anyhow::Error::new(e)))?;
        let summary = apply(config, &store, hierarchy, crls, actor, Some(manifest_json))?;
        crate::audit::verify(&store)
            .map_err(|e| Failure::Verification(format!("the restored copy's audit chain: {e}")))?;
        store
            .checkpoint()
            .map_err(|e| Failure::Internal(anyhow::anyhow!("checkpointing the copy: {e}")))?;
        summary
    };
    settle_companions(staging)?;
    sync(staging)?;
    Ok(summary)
}

/// Complete interrupted issuances, apply the published CRLs to `store` (or record the accepted
/// loss), record the restore, and publish a new full and delta CRL, numbered above every published one. Returns what to tell
/// the operator.
fn apply(
    config: &ValidConfig,
    store: &Store,
    hierarchy: Hierarchy,
    crls: &[PublishedCrl],
    actor: &str,
    manifest: Option<serde_json::Value>,
) -> Result<String, Failure> {
    let failed = |e: crl_restore::RestoreError| Failure::Internal(anyhow::Error::new(e));
    let now = SystemClock.now();
    if let Some(manifest) = manifest {
        crl_restore::record_restored(store, manifest, actor, now).map_err(failed)?;
    }
    let mut lines = Vec::new();
    let issuer = Arc::new(
        Issuer::new(Arc::new(hierarchy), config.public_url(), config.cps_url())
            .map_err(|e| Failure::Internal(anyhow::anyhow!("issuing CA: {e}")))?,
    );
    // An issuance the backup caught between its two transactions is completed first, so that
    // a published revocation of its certificates can be applied.
    let registrar = Registrar::new(
        store.clone(),
        Arc::clone(&issuer),
        Arc::new(SystemClock),
        &config.get().ra.agreement_version,
    );
    let resumed = registrar.resume_approved().map_err(ra_failure)?;
    if resumed > 0 {
        lines.push(format!("{resumed} interrupted issuance(s) completed"));
    }
    let published = if crls.is_empty() {
        crl_restore::record_revocation_loss(store, actor, now).map_err(failed)?;
        lines.push(
            "no published CRL applied (--accept-revocation-loss, audited): certificates revoked \
             after the backup are not revoked here"
                .to_owned(),
        );
        BTreeMap::new()
    } else {
        let done = crl_restore::reapply(store, crls, actor, now).map_err(failed)?;
        lines.push(format!(
            "published CRLs applied: {} revocation(s) applied again, {} already in the backup",
            done.revoked.len(),
            done.already_revoked
        ));
        if !done.recorded_by_serial.is_empty() {
            lines.push(format!(
                "{} revoked serial(s) have no certificate in the backup (issued after it): their \
                 revocations are kept by serial, listed on every CRL and answered by OCSP \
                 (audited as restore.revoked_serial_recorded): {}",
                done.recorded_by_serial.len(),
                done.recorded_by_serial.join(", ")
            ));
        }
        done.published_numbers
    };
    let publisher = CrlPublisher::new(
        store.clone(),
        issuer,
        Arc::new(SystemClock),
        config.get().crl.clone(),
    );
    for kind in [CrlKind::Full, CrlKind::Delta] {
        let info = publisher
            .publish(kind, true)
            .map_err(|e| Failure::Internal(anyhow::anyhow!("publishing the CRL: {e}")))?;
        if let Some(info) = info {
            let above = published
                .get(publisher.issuer_id())
                .copied()
                .unwrap_or_default();
            if info.crl_number <= above {
                return Err(Failure::Internal(anyhow::anyhow!(
                    "CRL number {} is not above the published {above}",
                    info.crl_number
                )));
            }
            lines.push(format!(
                "published {} CRL number {} for {}",
                if kind == CrlKind::Full {
                    "full"
                } else {
                    "delta"
                },
                info.crl_number,
                publisher.issuer_id()
            ));
        }
    }
    Ok(lines.join("\n"))
}
