//! The store on SQLite and on PostgreSQL: migrations apply (twice), every table round-trips,
//! constraints hold, transactions roll back whole, and the audit chain survives concurrency.

use std::sync::Arc;

use chrono::{NaiveDate, TimeZone, Utc};
use tamga::config::{DatabaseConfig, DatabaseUrl};
use tamga::store::{
    db_time, Application, ApplicationStatus, AuditEntry, BlockedKey, Certificate, CertificateKind,
    CertificateStatus, OutboxMessage, OutboxStatus, Store, StoreError, StoredCrl,
};

use crate::support::{postgres_url, PgDatabase};

fn config() -> DatabaseConfig {
    DatabaseConfig {
        pool_size: 8,
        ..DatabaseConfig::default()
    }
}

fn t(h: u32, m: u32) -> chrono::NaiveDateTime {
    db_time(
        Utc.with_ymd_and_hms(2026, 11, 25, h, m, 7).unwrap()
            + chrono::Duration::microseconds(123_456),
    )
}

fn application(id: &str, jti: &str) -> Application {
    Application {
        id: id.to_owned(),
        status: ApplicationStatus::PendingReview,
        holder_iin: "900101300001".to_owned(),
        surname: "ӘБІЛҚАСЫМОВА".to_owned(),
        given_name: "АЙГҮЛ".to_owned(),
        patronymic: Some("НҰРЛАНҚЫЗЫ".to_owned()),
        birth_date: NaiveDate::from_ymd_opt(1990, 1, 1).unwrap(),
        email: Some("aigul@example.kz".to_owned()),
        language: "kk".to_owned(),
        storage: "pkcs12".to_owned(),
        agreement_version: "2026-01".to_owned(),
        access_token_hash: vec![0xAB; 32],
        consent_jti: jti.to_owned(),
        register_match: true,
        liveness: false,
        auth_csr: vec![0x30, 0x82, 0x01],
        sign_csr: vec![0x30, 0x82, 0x02, 0x00],
        reason: None,
        decided_by: None,
        created_at: t(10, 0),
        updated_at: t(10, 1),
        review_reasons: vec!["Digital ID: the liveness check did not pass".to_owned()],
        replaces_application_id: None,
        through_pages: false,
    }
}

fn certificate(serial: &str, app: Option<&str>, spki: &str) -> Certificate {
    Certificate {
        serial: serial.to_owned(),
        issuer_id: "nca_rsa_dev".to_owned(),
        application_id: app.map(str::to_owned),
        kind: CertificateKind::Sign,
        holder_iin: "900101300001".to_owned(),
        not_before: t(10, 2),
        not_after: t(11, 2),
        tbs_der: vec![1, 2, 3, 0, 255],
        der: None,
        spki_sha256: spki.to_owned(),
        status: CertificateStatus::Reserved,
        revoked_at: None,
        revocation_reason: None,
        invalidity_date: None,
        created_at: t(10, 2),
        issued_at: None,
        revocation_seq: None,
    }
}

/// Everything the store promises, against one database.
fn exercise(url: &DatabaseUrl) {
    let store = Store::open(url, &config()).expect("open");
    store.ping().expect("ping");
    // Migrations are idempotent: opening again applies nothing and fails nothing.
    let store = {
        drop(store);
        Store::open(url, &config()).expect("reopen")
    };

    // applications
    let app = application("2b1c6f0e-0000-4000-8000-000000000001", "jti-1");
    store.write(|tx| tx.insert_application(&app)).unwrap();
    let back = store.read(|tx| tx.application(&app.id)).unwrap();
    assert_eq!(back.as_ref(), Some(&app));
    assert_eq!(store.read(|tx| tx.application("nope")).unwrap(), None);

    // certificates, with the foreign key and the one-key-one-holder constraint
    let mut cert = certificate("7F00AA", Some(&app.id), "aa".repeat(32).as_str());
    store.write(|tx| tx.insert_certificate(&cert)).unwrap();
    assert_eq!(
        store.read(|tx| tx.certificate("7F00AA")).unwrap().as_ref(),
        Some(&cert)
    );
    assert_eq!(
        store
            .read(|tx| tx.certificate_by_key(&"aa".repeat(32)))
            .unwrap()
            .map(|c| c.serial),
        Some("7F00AA".to_owned())
    );
    let auth = Certificate {
        kind: CertificateKind::Auth,
        status: CertificateStatus::Revoked,
        der: Some(vec![9; 700]),
        revoked_at: Some(t(10, 30)),
        revocation_reason: Some("keyCompromise".to_owned()),
        invalidity_date: Some(t(10, 29)),
        issued_at: Some(t(10, 3)),
        ..certificate("01", Some(&app.id), &"bb".repeat(32))
    };
    store.write(|tx| tx.insert_certificate(&auth)).unwrap();
    let of_app = store
        .read(|tx| tx.certificates_of_application(&app.id))
        .unwrap();
    assert_eq!(of_app, vec![auth.clone(), cert.clone()]);

    let same_key = certificate("02", None, &"aa".repeat(32));
    let err = store
        .write(|tx| tx.insert_certificate(&same_key))
        .unwrap_err();
    assert!(err.is_unique_violation(), "{err}");
    cert.serial = "03".to_owned();
    cert.spki_sha256 = "cc".repeat(32);
    cert.application_id = Some("no-such-application".to_owned());
    let err = store.write(|tx| tx.insert_certificate(&cert)).unwrap_err();
    assert!(
        matches!(err, StoreError::Query(_)),
        "foreign key must hold: {err}"
    );

    // blocked keys
    let blocked = BlockedKey {
        spki_sha256: "bb".repeat(32),
        reason: "keyCompromise".to_owned(),
        serial: Some("01".to_owned()),
        created_at: t(10, 30),
    };
    store.write(|tx| tx.block_key(&blocked)).unwrap();
    store
        .write(|tx| {
            tx.block_key(&BlockedKey {
                reason: "again".into(),
                ..blocked.clone()
            })
        })
        .unwrap();
    assert_eq!(
        store
            .read(|tx| tx.blocked_key(&blocked.spki_sha256))
            .unwrap(),
        Some(blocked)
    );
    assert_eq!(store.read(|tx| tx.blocked_key("ff")).unwrap(), None);

    // used consent-token ids: once, then a replay; pruned after expiry
    assert!(store
        .write(|tx| tx.record_consent_jti("jti-1", t(10, 15), t(10, 0)))
        .unwrap());
    assert!(!store
        .write(|tx| tx.record_consent_jti("jti-1", t(10, 15), t(10, 0)))
        .unwrap());
    assert!(store
        .write(|tx| tx.record_consent_jti("jti-2", t(11, 15), t(11, 0)))
        .unwrap());
    assert_eq!(
        store.write(|tx| tx.prune_consent_jtis(t(11, 0))).unwrap(),
        1
    );
    assert!(!store.read(|tx| tx.consent_jti_used("jti-1")).unwrap());
    assert!(store.read(|tx| tx.consent_jti_used("jti-2")).unwrap());

    // CRLs
    for (n, delta) in [(1, false), (2, true), (3, false), (4, true)] {
        let crl = StoredCrl {
            issuer_id: "nca_rsa_dev".to_owned(),
            crl_number: n,
            is_delta: delta,
            base_crl_number: delta.then_some(n - 1),
            this_update: t(12, n as u32),
            next_update: t(13, n as u32),
            der: vec![n as u8; 64],
            created_at: t(12, n as u32),
            covered_seq: n,
        };
        store.write(|tx| tx.insert_crl(&crl)).unwrap();
    }
    let full = store
        .read(|tx| tx.latest_crl("nca_rsa_dev", false))
        .unwrap()
        .unwrap();
    let delta = store
        .read(|tx| tx.latest_crl("nca_rsa_dev", true))
        .unwrap()
        .unwrap();
    assert_eq!(
        (full.crl_number, delta.crl_number, delta.base_crl_number),
        (3, 4, Some(3))
    );
    assert_eq!(
        store.read(|tx| tx.latest_crl("other", false)).unwrap(),
        None
    );

    // outbox
    let message = OutboxMessage {
        id: "6d7c7b0e-0000-4000-8000-000000000009".to_owned(),
        event: "application_received".to_owned(),
        recipient: "aigul@example.kz".to_owned(),
        language: "kk".to_owned(),
        payload: r#"{"application_id":"x","name":"АЙГҮЛ"}"#.to_owned(),
        status: OutboxStatus::Pending,
        attempts: 0,
        next_attempt_at: t(10, 0),
        lease_owner: None,
        lease_until: None,
        last_error: None,
        created_at: t(10, 0),
        sent_at: None,
    };
    store.write(|tx| tx.enqueue_message(&message)).unwrap();
    assert_eq!(
        store.read(|tx| tx.message(&message.id)).unwrap(),
        Some(message)
    );

    // A failing transaction leaves nothing behind.
    let half = application("2b1c6f0e-0000-4000-8000-000000000002", "jti-3");
    let failed: Result<(), StoreError> = store.write(|tx| {
        tx.insert_application(&half)?;
        assert!(tx.record_consent_jti("jti-3", t(10, 15), t(10, 0))?);
        tx.insert_certificate(&certificate("04", Some(&half.id), &"aa".repeat(32)))
    });
    assert!(failed.unwrap_err().is_unique_violation());
    assert_eq!(store.read(|tx| tx.application(&half.id)).unwrap(), None);
    assert!(!store.read(|tx| tx.consent_jti_used("jti-3")).unwrap());

    // The same token id raced by two writers is recorded exactly once.
    let store = Arc::new(store);
    for round in 0..5 {
        let jti = format!("race-{round}");
        let winners: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    let store = Arc::clone(&store);
                    let jti = jti.clone();
                    s.spawn(move || {
                        store
                            .write(|tx| tx.record_consent_jti(&jti, t(11, 15), t(11, 0)))
                            .unwrap()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| usize::from(h.join().unwrap()))
                .sum()
        });
        assert_eq!(winners, 1, "{jti} recorded {winners} times");
    }

    // The audit chain: concurrent appends never fork it, and it verifies.
    std::thread::scope(|s| {
        for worker in 0..4 {
            let store = Arc::clone(&store);
            s.spawn(move || {
                for i in 0..10 {
                    let entry = AuditEntry {
                        at: Utc::now().naive_utc(),
                        actor: format!("worker-{worker}"),
                        action: "test.append".to_owned(),
                        subject: format!("{worker}-{i}"),
                        details: serde_json::json!({"i": i, "name": "ҰЛТТЫҚ"}),
                    };
                    store.write(|tx| tx.append_audit(&entry)).unwrap();
                }
            });
        }
    });
    let verified = tamga::audit::verify(&store).unwrap();
    assert_eq!(verified.entries, 40);
    let records = store.read(|tx| tx.audit_records(0, 100)).unwrap();
    assert_eq!(records.len(), 40);
    assert_eq!(records.last().map(|r| r.hash.clone()), Some(verified.head));
    assert_eq!(records[0].prev_hash, tamga::audit::GENESIS_HASH);

    // Shared transactions with refused members: every third write appends an entry and counts
    // an event, then fails. What it wrote is undone (its savepoint), the others' work stays,
    // and the chain carried from member to member still verifies.
    let before = store.group_commit_stats();
    std::thread::scope(|s| {
        for worker in 0..16 {
            let store = Arc::clone(&store);
            s.spawn(move || {
                for i in 0..12 {
                    let refused = (worker + i) % 3 == 0;
                    let subject =
                        format!("{}-{worker}-{i}", if refused { "refused" } else { "kept" });
                    let entry = AuditEntry {
                        at: Utc::now().naive_utc(),
                        actor: format!("worker-{worker}"),
                        action: "test.grouped".to_owned(),
                        subject: subject.clone(),
                        details: serde_json::json!({"i": i}),
                    };
                    let result = store.write(|tx| -> Result<(), StoreError> {
                        tx.append_audit(&entry)?;
                        tx.record_rate_event("test", &subject, t(12, 0))?;
                        if refused {
                            return Err(StoreError::Corrupt {
                                table: "test",
                                message: "refused".to_owned(),
                            });
                        }
                        Ok(())
                    });
                    assert_eq!(result.is_err(), refused, "{subject}: {result:?}");
                }
            });
        }
    });
    let kept = (0..16)
        .flat_map(|w| (0..12).map(move |i| (w + i) % 3 != 0))
        .filter(|k| *k)
        .count();
    let after = store.group_commit_stats();
    assert_eq!(after.writes - before.writes, kept as u64);
    let verified = tamga::audit::verify(&store).unwrap();
    assert_eq!(verified.entries, 40 + kept as i64);
    let records = store.read(|tx| tx.audit_records(40, 1000)).unwrap();
    assert_eq!(records.len(), kept);
    assert!(records.iter().all(|r| r.subject.starts_with("kept-")));
    let counted: i64 = store
        .read(|tx| tx.table_counts())
        .unwrap()
        .rate_limit_events;
    assert_eq!(counted, kept as i64, "a refused member's event was undone");
}

#[test]
fn store_round_trips_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = DatabaseUrl::Sqlite(dir.path().join("nested/dir/tamga.db"));
    exercise(&url);
}

#[test]
fn store_round_trips_on_postgres() {
    let Some(admin) = postgres_url("store_round_trips_on_postgres") else {
        return;
    };
    let db = PgDatabase::create(&admin);
    exercise(&DatabaseUrl::Postgres(db.url.clone()));
}

#[test]
fn postgres_migrations_tolerate_instances_starting_together() {
    let Some(admin) = postgres_url("postgres_migrations_tolerate_instances_starting_together")
    else {
        return;
    };
    let db = PgDatabase::create(&admin);
    let url = DatabaseUrl::Postgres(db.url.clone());
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..3)
            .map(|_| s.spawn(|| Store::open(&url, &config()).map(|_| ())))
            .collect();
        for h in handles {
            h.join().unwrap().expect("concurrent open");
        }
    });
}

/// Commands that open only the database (no key, so nothing of ours touches OpenSSL before
/// libpq does) finish with their own exit code: OpenSSL's exit-time clean-up once crashed
/// them (SIGSEGV) while a pooled connection was closing its TLS session, in about one run in
/// three, and Kerberos (libpq's default GSSAPI attempt) aborted about one in a hundred while
/// the pool re-opened its idle connection in the background.
#[test]
fn database_only_commands_exit_cleanly_on_postgres() {
    let Some(admin) = postgres_url("database_only_commands_exit_cleanly_on_postgres") else {
        return;
    };
    let db = PgDatabase::create(&admin);
    let dir = tempfile::tempdir().unwrap();
    for round in 0..25 {
        for args in [["audit", "verify"], ["outbox", "list"]] {
            let out = crate::support::run(
                crate::support::tamga(dir.path())
                    .env("TAMGA_DATABASE__URL", &db.url)
                    .args(args),
            );
            assert_eq!(
                out.status.code(),
                Some(0),
                "round {round}, `tamga {}`: {}",
                args.join(" "),
                crate::support::text(&out)
            );
        }
    }
}

#[test]
fn unreachable_database_is_a_clear_error() {
    let url = DatabaseUrl::Postgres("postgres://tamga:secret@127.0.0.1:1/none".to_owned());
    let err = Store::open(&url, &config()).unwrap_err().to_string();
    assert!(err.contains("cannot connect"), "{err}");
    assert!(!err.contains("secret"), "the password leaked: {err}");
}
