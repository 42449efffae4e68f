//! The dates inside CRL entries are real dates: every revocationDate and invalidityDate of
//! every full CRL, delta CRL and root CRL made in a scenario with revocations, a hold, its
//! release and a keyCompromise with an invalidity date lies within the life of the
//! certificate and its CA and not in the future; a released hold's removeFromCRL entry carries
//! the hold's own date (it once carried 1970-01-01). And a hold released before that date was
//! kept gets it back from the audit log when the database is migrated.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDateTime, Utc};
use der::Decode;
use diesel::connection::SimpleConnection;
use diesel::Connection;
use diesel_migrations::{FileBasedMigrations, MigrationHarness};
use serde_json::Value;
use tamga::config::{DatabaseConfig, DatabaseUrl};
use tamga::store::{Certificate, RevocationEntry, Store};
use x509_cert::crl::{CertificateList, RevokedCert};

use crate::enroll::Env;
use crate::support::{postgres_url, run, tamga, text, PgDatabase, DEV_ISSUING, DEV_ROOT};

/// A full CRL only when asked for (`tamga crl publish`), so that changes show in deltas.
const CRL_ENV: [(&str, &str); 2] = [
    ("TAMGA_CRL__FULL_INTERVAL", "30d"),
    ("TAMGA_CRL__VALIDITY", "31d"),
];

const OID_CRL_REASON: const_oid::ObjectIdentifier =
    const_oid::ObjectIdentifier::new_unwrap("2.5.29.21");
const OID_INVALIDITY_DATE: const_oid::ObjectIdentifier =
    const_oid::ObjectIdentifier::new_unwrap("2.5.29.24");
/// CRLReason removeFromCRL.
const REMOVE_FROM_CRL: u8 = 8;
/// The migration that keeps a released hold's date.
const HOLD_DATE_MIGRATION: &str = "2026-12-06-000001";

/// `tamga ARGS` in `env`'s directory, on `env`'s database; asserts success.
fn cli(env: &Env, args: &[&str]) -> String {
    let mut cmd = tamga(env.dir());
    cmd.args(args).envs(CRL_ENV);
    if let Some(db) = &env.db {
        cmd.env("TAMGA_DATABASE__URL", &db.url);
    }
    let out = run(&mut cmd);
    assert!(out.status.success(), "tamga {args:?}: {}", text(&out));
    text(&out)
}

fn serial_of(created: &Value, index: usize) -> String {
    created["certificates"][index]["serial"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn certificate(env: &Env, serial: &str) -> Certificate {
    env.store
        .read(|tx| tx.certificate(serial))
        .unwrap()
        .unwrap()
}

/// Seconds since 1970 of a stored time.
fn unix(t: NaiveDateTime) -> u64 {
    u64::try_from(t.and_utc().timestamp()).unwrap()
}

/// notBefore of the PEM certificate `file` in `dir`, seconds since 1970.
fn not_before_of(dir: &Path, file: &str) -> u64 {
    let pem = std::fs::read(dir.join(file)).unwrap();
    let der = openssl::x509::X509::from_pem(&pem)
        .unwrap()
        .to_der()
        .unwrap();
    let cert = x509_cert::Certificate::from_der(&der).unwrap();
    cert.tbs_certificate
        .validity
        .not_before
        .to_unix_duration()
        .as_secs()
}

/// A serial written one way: upper-case hex without leading zeros.
fn canonical(serial: &str) -> String {
    serial.trim_start_matches('0').to_uppercase()
}

/// An entry's serial, as [`canonical`] writes it.
fn serial_hex(entry: &RevokedCert) -> String {
    canonical(&hex::encode(entry.serial_number.as_bytes()))
}

fn reason_code(entry: &RevokedCert) -> Option<u8> {
    entry
        .crl_entry_extensions
        .iter()
        .flatten()
        .find(|x| x.extn_id == OID_CRL_REASON)
        .map(|x| *x.extn_value.as_bytes().last().unwrap())
}

fn invalidity_date(entry: &RevokedCert) -> Option<u64> {
    entry
        .crl_entry_extensions
        .iter()
        .flatten()
        .find(|x| x.extn_id == OID_INVALIDITY_DATE)
        .map(|x| {
            der::asn1::GeneralizedTime::from_der(x.extn_value.as_bytes())
                .unwrap()
                .to_unix_duration()
                .as_secs()
        })
}

/// Every CRL stored for `issuer`, oldest first: (number, whether delta, the CRL).
fn every_crl(store: &Store, issuer: &str) -> Vec<(i64, bool, CertificateList)> {
    let history = store.read(|tx| tx.crl_history(issuer)).unwrap();
    history
        .into_iter()
        .map(|(number, delta, _)| {
            let stored = store.read(|tx| tx.crl(issuer, number)).unwrap().unwrap();
            assert_eq!(stored.is_delta, delta);
            (
                number,
                delta,
                CertificateList::from_der(&stored.der).unwrap(),
            )
        })
        .collect()
}

fn entries(crl: &CertificateList) -> &[RevokedCert] {
    crl.tbs_cert_list
        .revoked_certificates
        .as_deref()
        .unwrap_or(&[])
}

/// Wait until a CRL of `issuer` (a delta if `delta`) lists `serial` with the reason `code`;
/// returns its entry.
fn wait_for_entry(store: &Store, issuer: &str, delta: bool, serial: &str, code: u8) -> RevokedCert {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let found = every_crl(store, issuer)
            .into_iter()
            .filter(|(_, d, _)| *d == delta)
            .flat_map(|(_, _, crl)| entries(&crl).to_vec())
            .find(|e| serial_hex(e) == canonical(serial) && reason_code(e) == Some(code));
        if let Some(entry) = found {
            return entry;
        }
        assert!(
            Instant::now() < deadline,
            "no CRL of {issuer} listed {serial} with reason {code}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn every_crl_entry_date_is_real(env: Env) {
    let dir = env.dir().to_path_buf();
    let (iin1, c1) = env.enroll_holder(None);
    let (_, c2) = env.enroll_holder(None);
    let (_, c3) = env.enroll_holder(None);
    let superseded = serial_of(&c1, 0);
    let compromised = serial_of(&c2, 1);
    let held = serial_of(&c3, 0);

    // A holder's revocation, through the API.
    let resp = env.revoke_as_holder(&iin1, &superseded, "superseded");
    assert_eq!(resp.status(), 200, "{}", resp.text().unwrap());
    // A keyCompromise with an invalidity date: the second after notBefore, already past.
    let cert = certificate(&env, &compromised);
    let invalid_since =
        DateTime::<Utc>::from_timestamp(cert.not_before.and_utc().timestamp() + 1, 0).unwrap();
    while Utc::now() <= invalid_since {
        std::thread::sleep(Duration::from_millis(100));
    }
    cli(
        &env,
        &[
            "certs",
            "revoke",
            &compromised,
            "--reason",
            "keyCompromise",
            "--invalidity-date",
            &invalid_since.to_rfc3339(),
        ],
    );
    // A hold, published in a full CRL and a delta.
    cli(
        &env,
        &["certs", "revoke", &held, "--reason", "certificateHold"],
    );
    let hold_date = certificate(&env, &held).revoked_at.unwrap();
    cli(&env, &["crl", "publish"]);
    // Later, its release: the next delta says removeFromCRL, with the hold's date.
    std::thread::sleep(Duration::from_millis(1100));
    cli(&env, &["certs", "release", &held]);
    let released = certificate(&env, &held);
    assert_eq!(released.revoked_at, None);
    let removal = wait_for_entry(&env.store, "nca_rsa_dev", true, &held, REMOVE_FROM_CRL);
    assert_eq!(
        removal.revocation_date.to_unix_duration().as_secs(),
        unix(hold_date),
        "removeFromCRL carries the hold's date"
    );
    cli(&env, &["crl", "publish"]);

    // The issuing CA's key compromised: the root's CRL lists its certificate.
    let out = cli(
        &env,
        &[
            "ca",
            "revoke-issuer",
            "--reason",
            "keyCompromise",
            "--operator",
            "ciso",
        ],
    );
    assert!(!out.is_empty());
    let deadline = Instant::now() + Duration::from_secs(20);
    while !every_crl(&env.store, "root")
        .iter()
        .any(|(_, _, crl)| !entries(crl).is_empty())
    {
        assert!(
            Instant::now() < deadline,
            "the root CRL never listed the issuing CA"
        );
        std::thread::sleep(Duration::from_millis(250));
    }

    // Every entry date of every CRL made: within the certificate's and its CA's life, never
    // in the future.
    let now = u64::try_from(Utc::now().timestamp()).unwrap();
    let issuing_not_before = not_before_of(&dir, DEV_ISSUING);
    let root_not_before = not_before_of(&dir, DEV_ROOT);
    let ours: HashMap<String, Certificate> = [&superseded, &compromised, &held]
        .into_iter()
        .map(|s| (canonical(s), certificate(&env, s)))
        .collect();
    let mut seen = HashMap::<&str, usize>::new();
    for (issuer, ca_not_before) in [
        ("nca_rsa_dev", issuing_not_before),
        ("root", root_not_before),
    ] {
        let crls = every_crl(&env.store, issuer);
        assert!(!crls.is_empty(), "{issuer} made CRLs");
        for (number, delta, crl) in &crls {
            for entry in entries(crl) {
                let serial = serial_hex(entry);
                let at = entry.revocation_date.to_unix_duration().as_secs();
                let what = format!("{issuer} CRL {number} (delta: {delta}), entry {serial}");
                assert!(at >= ca_not_before, "{what}: revoked {at} before its CA");
                assert!(at <= now, "{what}: revoked {at}, in the future");
                let cert_not_before = match issuer {
                    "root" => issuing_not_before,
                    _ => unix(ours.get(&serial).unwrap().not_before),
                };
                assert!(
                    at >= cert_not_before,
                    "{what}: revoked {at} before notBefore"
                );
                if let Some(inv) = invalidity_date(entry) {
                    assert!(
                        inv >= cert_not_before,
                        "{what}: invalid {inv} before notBefore"
                    );
                    assert!(inv <= at, "{what}: invalid {inv} after its revocation");
                    *seen.entry("invalidity").or_default() += 1;
                }
                if reason_code(entry) == Some(REMOVE_FROM_CRL) {
                    *seen.entry("removeFromCRL").or_default() += 1;
                }
                *seen.entry(issuer).or_default() += 1;
            }
            *seen
                .entry(if *delta { "delta" } else { "full" })
                .or_default() += 1;
        }
    }
    // The scenario made what it is meant to check.
    for kind in [
        "nca_rsa_dev",
        "root",
        "invalidity",
        "removeFromCRL",
        "delta",
        "full",
    ] {
        assert!(
            seen.get(kind).copied().unwrap_or(0) > 0,
            "no {kind}: {seen:?}"
        );
    }
}

#[test]
fn every_crl_entry_date_is_real_on_sqlite() {
    every_crl_entry_date_is_real(Env::sqlite_with(&CRL_ENV));
}

#[test]
fn every_crl_entry_date_is_real_on_postgres() {
    let Some(admin) = postgres_url("every_crl_entry_date_is_real_on_postgres") else {
        return;
    };
    every_crl_entry_date_is_real(Env::postgres_with(&admin, &CRL_ENV));
}

/// Times written into the old database (whole seconds: SQLite and PostgreSQL alike).
fn t(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
}

/// The statements that build what an old database holds: certificates as a release before
/// `held_at` left them, and the audit entries of their holds (chained as the audit log
/// chains them).
fn old_rows() -> String {
    let cert = |serial: &str, status: &str, revoked: Option<&str>, reason: Option<&str>, seq| {
        let quoted = |v: Option<&str>| v.map_or("NULL".to_owned(), |v| format!("'{v}'"));
        format!(
            "INSERT INTO certificates (serial, issuer_id, application_id, kind, holder_iin, \
             not_before, not_after, tbs_der, der, spki_sha256, status, revoked_at, \
             revocation_reason, invalidity_date, created_at, issued_at, revocation_seq) VALUES \
             ('{serial}', 'nca_rsa_dev', NULL, 'AUTH', '900101300007', '2026-01-10 08:00:00', \
             '2029-01-10 08:00:00', '00', NULL, '{serial:0>64}', '{status}', {}, {}, NULL, \
             '2026-01-10 08:00:00', '2026-01-10 08:00:00', {seq});\n",
            quoted(revoked),
            quoted(reason),
        )
    };
    let mut sql = String::new();
    // 0A: held once, released. 0B: held, released, held again later, released again.
    // 0C: released, but its hold is not in the audit log. 0D: revoked for good.
    sql += &cert("0A", "issued", None, None, 2);
    sql += &cert("0B", "issued", None, None, 5);
    sql += &cert("0C", "issued", None, None, 6);
    sql += &cert(
        "0D",
        "revoked",
        Some("2026-03-04 05:06:07"),
        Some("superseded"),
        7,
    );
    let audit = [
        (
            "2026-02-01 09:00:00",
            "certificate.revoked",
            "0A",
            r#"{"invalidity_date":null,"issuer":"nca_rsa_dev","reason":"certificateHold","revocation_seq":1}"#,
        ),
        (
            "2026-02-02 09:00:00",
            "certificate.revoked",
            "0B",
            r#"{"invalidity_date":null,"issuer":"nca_rsa_dev","reason":"certificateHold","revocation_seq":2}"#,
        ),
        (
            "2026-02-03 09:00:00",
            "certificate.released",
            "0A",
            r#"{"issuer":"nca_rsa_dev","revocation_seq":3}"#,
        ),
        (
            "2026-02-04 09:00:00",
            "certificate.released",
            "0B",
            r#"{"issuer":"nca_rsa_dev","revocation_seq":4}"#,
        ),
        (
            "2026-02-05 10:30:00",
            "certificate.revoked",
            "0B",
            r#"{"invalidity_date":null,"issuer":"nca_rsa_dev","reason":"certificateHold","revocation_seq":5}"#,
        ),
        (
            "2026-02-06 09:00:00",
            "certificate.released",
            "0B",
            r#"{"issuer":"nca_rsa_dev","revocation_seq":6}"#,
        ),
        (
            "2026-02-07 09:00:00",
            "certificate.released",
            "0C",
            r#"{"issuer":"nca_rsa_dev","revocation_seq":7}"#,
        ),
        (
            "2026-03-04 05:06:07",
            "certificate.revoked",
            "0D",
            r#"{"invalidity_date":null,"issuer":"nca_rsa_dev","reason":"superseded","revocation_seq":8}"#,
        ),
    ];
    let mut prev = tamga::audit::GENESIS_HASH.to_owned();
    for (seq, (at, action, subject, details)) in (1i64..).zip(audit) {
        let hash = tamga::audit::chain_hash(
            &prev,
            seq,
            t(at),
            "operator:aliya",
            action,
            subject,
            details,
        );
        sql += &format!(
            "INSERT INTO audit_log (seq, at, actor, action, subject, details, prev_hash, hash) \
             VALUES ({seq}, '{at}', 'operator:aliya', '{action}', '{subject}', '{details}', \
             '{prev}', '{hash}');\n"
        );
        prev = hash;
    }
    sql += "UPDATE counters SET value = 8 WHERE name = 'revocation';\n";
    sql
}

/// The database at `url`, built with the migrations before the hold date's and holding
/// `old_rows`, is opened (migrated) by the store: each released hold has its date back.
fn hold_dates_are_recovered(url: &DatabaseUrl, store_before: impl FnOnce(&str)) {
    store_before(&old_rows());
    let store = Store::open(url, &DatabaseConfig::default()).unwrap();
    let changed: HashMap<String, RevocationEntry> = store
        .read(|tx| {
            tx.changed_page(
                "nca_rsa_dev",
                "",
                0,
                i64::MAX,
                t("2026-06-01 00:00:00"),
                100,
            )
        })
        .unwrap()
        .into_iter()
        .map(|e| (e.serial.clone(), e))
        .collect();
    let held_at = |serial: &str| changed.get(serial).unwrap().held_at;
    assert_eq!(
        held_at("0A"),
        Some(t("2026-02-01 09:00:00")),
        "from its hold's audit entry"
    );
    assert_eq!(
        held_at("0B"),
        Some(t("2026-02-05 10:30:00")),
        "the hold that was released last"
    );
    assert_eq!(
        held_at("0C"),
        Some(t("2026-01-10 08:00:00")),
        "no audit entry: the certificate's notBefore, never 1970"
    );
    assert_eq!(held_at("0D"), None, "never released");
    assert_eq!(
        changed.get("0D").unwrap().revoked_at,
        Some(t("2026-03-04 05:06:07"))
    );
    // The audit log read, not changed.
    assert_eq!(tamga::audit::verify(&store).unwrap().entries, 8);
}

/// Apply the migrations in `folder` older than the hold date's.
fn migrate_to_before_hold_dates<C>(conn: &mut C, folder: &str)
where
    C: MigrationHarness<C::Backend> + Connection,
{
    let source = FileBasedMigrations::from_path(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(folder),
    )
    .unwrap();
    let pending = conn.pending_migrations(source).unwrap();
    let older: Vec<_> = pending
        .into_iter()
        .filter(|m| m.name().to_string().as_str() < HOLD_DATE_MIGRATION)
        .collect();
    assert!(!older.is_empty());
    for m in &older {
        conn.run_migration(m.as_ref()).unwrap();
    }
}

#[test]
fn holds_released_before_their_date_was_kept_get_it_back_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tamga.db");
    hold_dates_are_recovered(&DatabaseUrl::Sqlite(path.clone()), |sql| {
        let mut conn = diesel::SqliteConnection::establish(path.to_str().unwrap()).unwrap();
        migrate_to_before_hold_dates(&mut conn, "sqlite");
        conn.batch_execute(sql).unwrap();
    });
}

#[test]
fn holds_released_before_their_date_was_kept_get_it_back_on_postgres() {
    let Some(admin) =
        postgres_url("holds_released_before_their_date_was_kept_get_it_back_on_postgres")
    else {
        return;
    };
    let db = PgDatabase::create(&admin);
    hold_dates_are_recovered(&DatabaseUrl::Postgres(db.url.clone()), |sql| {
        let mut conn = diesel::PgConnection::establish(&db.url).unwrap();
        migrate_to_before_hold_dates(&mut conn, "postgres");
        conn.batch_execute(sql).unwrap();
    });
}
