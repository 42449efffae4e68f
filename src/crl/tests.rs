#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::Arc;

use chrono::Utc;

use super::*;
use crate::ca::{dev, Hierarchy, Issuer};
use crate::clock::SystemClock;
use crate::config::{CaConfig, CrlConfig, DatabaseConfig, DatabaseUrl, Mode};
use crate::store::{Certificate, CertificateKind, CertificateStatus};

fn revoked_row(serial: String, not_after: NaiveDateTime, seq: i64) -> Certificate {
    let now = Utc::now().naive_utc();
    Certificate {
        spki_sha256: format!("{serial:0>64}"),
        serial,
        issuer_id: "nca_rsa_dev".into(),
        application_id: None,
        kind: CertificateKind::Auth,
        holder_iin: "900101300007".into(),
        not_before: now - chrono::Duration::days(400),
        not_after,
        tbs_der: vec![0],
        der: Some(vec![0]),
        status: CertificateStatus::Revoked,
        revoked_at: Some(now - chrono::Duration::hours(1)),
        revocation_reason: Some("superseded".into()),
        invalidity_date: None,
        created_at: now,
        issued_at: Some(now),
        revocation_seq: Some(seq),
    }
}

/// More entries than one page, some expired: every unexpired one is listed exactly once, in
/// order, and the CRL verifies with the issuing CA's key.
#[test]
fn a_full_crl_streams_every_unexpired_revocation_across_pages() {
    let dir = tempfile::tempdir().unwrap();
    let ca = CaConfig {
        dir: dir.path().join("ca"),
        ..CaConfig::default()
    };
    dev::init(&ca, "http://ca.test", false, Utc::now()).unwrap();
    let hierarchy = Arc::new(Hierarchy::load(&ca, Mode::Dev).unwrap());
    let store = Store::open(
        &DatabaseUrl::Sqlite(dir.path().join("t.db")),
        &DatabaseConfig::default(),
    )
    .unwrap();
    let issuer = Arc::new(
        Issuer::new(
            Arc::clone(&hierarchy),
            "http://ca.test",
            "http://ca.test/cps",
        )
        .unwrap(),
    );
    let now = Utc::now().naive_utc();
    let total = PAGE as usize * 2 + 17;
    store
        .write(|tx| -> Result<(), StoreError> {
            for i in 0..total {
                let seq = tx.next_revocation_seq()?;
                // Every tenth certificate expired yesterday and must leave the CRL.
                let not_after = if i % 10 == 0 {
                    now - chrono::Duration::days(1)
                } else {
                    now + chrono::Duration::days(30)
                };
                tx.insert_certificate(&revoked_row(
                    format!("{:032X}", 0x4000_0000u64 + i as u64 * 7919),
                    not_after,
                    seq,
                ))?;
            }
            Ok(())
        })
        .unwrap();
    let publisher = CrlPublisher::new(
        store.clone(),
        issuer,
        Arc::new(SystemClock),
        CrlConfig::default(),
    );
    let info = publisher.publish(CrlKind::Full, true).unwrap().unwrap();
    assert_eq!(info.crl_number, 1);
    let stored = store
        .read(|tx| tx.latest_crl("nca_rsa_dev", false))
        .unwrap()
        .unwrap();
    let crl = openssl::x509::X509Crl::from_der(&stored.der).unwrap();
    let key = hierarchy
        .issuing()
        .certificate()
        .x509()
        .public_key()
        .unwrap();
    assert!(crl.verify(&key).unwrap());
    let listed: Vec<String> = crl
        .get_revoked()
        .map(|stack| {
            stack
                .iter()
                .map(|r| {
                    r.serial_number()
                        .to_bn()
                        .unwrap()
                        .to_hex_str()
                        .unwrap()
                        .to_string()
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(listed.len(), total - total.div_ceil(10));
    let mut sorted = listed.clone();
    sorted.sort_by_key(|s| format!("{s:0>40}"));
    assert_eq!(listed, sorted, "serial order");
    sorted.dedup();
    assert_eq!(sorted.len(), listed.len(), "each once");

    // Nothing changed since: a delta is due only on its schedule, and lists nothing.
    assert!(
        publisher.publish(CrlKind::Full, false).unwrap().is_none(),
        "not due yet"
    );
    let delta = publisher.publish(CrlKind::Delta, false).unwrap().unwrap();
    assert_eq!(delta.crl_number, 2);
    let stored = store
        .read(|tx| tx.latest_crl("nca_rsa_dev", true))
        .unwrap()
        .unwrap();
    assert_eq!(stored.base_crl_number, Some(1));
    let delta_crl = openssl::x509::X509Crl::from_der(&stored.der).unwrap();
    assert!(delta_crl.get_revoked().is_none_or(|s| s.is_empty()));
    assert!(publisher.publish_due().unwrap().is_empty());
}

#[test]
fn der_headers() {
    assert_eq!(header(0x30, 5), vec![0x30, 5]);
    assert_eq!(header(0x30, 0x7f), vec![0x30, 0x7f]);
    assert_eq!(header(0x30, 0x80), vec![0x30, 0x81, 0x80]);
    assert_eq!(header(0x30, 0x1234), vec![0x30, 0x82, 0x12, 0x34]);
    assert_eq!(header(0xA0, 0x012345), vec![0xA0, 0x83, 0x01, 0x23, 0x45]);
}
