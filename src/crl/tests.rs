#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::Arc;

use chrono::Utc;
use der::Decode;

use super::*;
use crate::ca::Hierarchy;
use crate::clock::SystemClock;
use crate::config::CrlConfig;
use crate::dev::test_ca;
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
    let now = Utc::now().naive_utc();
    let total = PAGE as usize * 2 + 17;
    let rows = (0..total)
        .map(|i| {
            // Every tenth certificate expired yesterday and must leave the CRL.
            let not_after = if i % 10 == 0 {
                now - chrono::Duration::days(1)
            } else {
                now + chrono::Duration::days(30)
            };
            revoked_row(
                format!("{:032X}", 0x4000_0000u64 + i as u64 * 7919),
                not_after,
                0,
            )
        })
        .collect();
    let (_dir, hierarchy, store, publisher) = publisher_with(rows);
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

/// A publisher for a fresh development hierarchy over a database holding `rows`, each given
/// the next revocation-counter value.
fn publisher_with(
    rows: Vec<Certificate>,
) -> (tempfile::TempDir, Arc<Hierarchy>, Store, CrlPublisher) {
    let ca = test_ca::dev_ca();
    let store = ca.store();
    let issuer = ca.issuer();
    store
        .write(|tx| -> Result<(), StoreError> {
            for mut row in rows {
                row.revocation_seq = Some(tx.next_revocation_seq()?);
                tx.insert_certificate(&row)?;
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
    (ca.dir, ca.hierarchy, store, publisher)
}

fn at(s: &str) -> NaiveDateTime {
    DateTime::parse_from_rfc3339(s).unwrap().naive_utc()
}

/// A row written by code that did not check dates (an invalidity date of 1969, one after the
/// revocation) once stopped every CRL. Now the revocation is listed without that date, the
/// others keep theirs, and the publisher reports what it left out.
#[test]
fn an_invalidity_date_no_crl_can_carry_does_not_stop_publication() {
    let now = Utc::now().naive_utc();
    let later = now + chrono::Duration::days(30);
    let mut pre_epoch = revoked_row("0A01".repeat(8), later, 0);
    pre_epoch.invalidity_date = Some(at("1969-12-31T23:59:59Z"));
    let mut after_revocation = revoked_row("0A02".repeat(8), later, 0);
    after_revocation.invalidity_date = Some(now + chrono::Duration::days(1));
    let mut fine = revoked_row("0A03".repeat(8), later, 0);
    let fine_date = now - chrono::Duration::days(2);
    fine.invalidity_date = Some(fine_date);
    let (_dir, _, store, publisher) = publisher_with(vec![pre_epoch, after_revocation, fine]);

    let full = publisher.publish(CrlKind::Full, true).unwrap().unwrap();
    let health = publisher.health();
    assert_eq!(health.omitted_invalidity_dates(), 2);
    assert!(health.failing_since.is_none());
    assert!(health.newest_is_degraded(Some(full.crl_number), None));
    // A delta that changes nothing leaves nothing out, but the full CRL still does.
    let delta = publisher.publish(CrlKind::Delta, true).unwrap().unwrap();
    let health = publisher.health();
    assert_eq!(health.delta.unwrap().omitted_invalidity_dates, 0);
    assert!(health.newest_is_degraded(Some(full.crl_number), Some(delta.crl_number)));
    // A newer full CRL made elsewhere is not known to be degraded.
    assert!(!health.newest_is_degraded(Some(full.crl_number + 2), Some(delta.crl_number)));
    let stored = store
        .read(|tx| tx.latest_crl("nca_rsa_dev", false))
        .unwrap()
        .unwrap();
    let crl = x509_cert::crl::CertificateList::from_der(&stored.der).unwrap();
    let entries = crl.tbs_cert_list.revoked_certificates.unwrap();
    assert_eq!(entries.len(), 3, "every revocation is listed");
    let invalidity: Vec<_> = entries
        .iter()
        .map(|e| {
            e.crl_entry_extensions
                .iter()
                .flatten()
                .find(|x| x.extn_id == OID_INVALIDITY_DATE)
                .map(|x| der::asn1::GeneralizedTime::from_der(x.extn_value.as_bytes()).unwrap())
        })
        .collect();
    assert_eq!(invalidity[0], None);
    assert_eq!(invalidity[1], None);
    let kept = invalidity[2].expect("the good date stays");
    assert_eq!(
        kept.to_unix_duration().as_secs(),
        u64::try_from(fine_date.and_utc().timestamp()).unwrap()
    );
}

/// A revocation date no CRL can encode cannot be left out (that would hide a revocation):
/// the CRL fails, the publisher reports failing, and the next good attempt clears it.
#[test]
fn a_revocation_date_no_crl_can_carry_fails_loudly_and_is_reported() {
    let now = Utc::now().naive_utc();
    let mut bad = revoked_row("0B01".repeat(8), now + chrono::Duration::days(30), 0);
    bad.revoked_at = Some(at("1960-01-01T00:00:00Z"));
    let (_dir, _, store, publisher) = publisher_with(vec![bad]);
    let err = publisher.publish(CrlKind::Full, true).unwrap_err();
    assert!(err.to_string().contains("0B01"), "{err}");
    let health = publisher.health();
    assert!(health.failing_since.is_some());
    assert_eq!(health.consecutive_failures, 1);
    assert!(publisher.publish_due().is_err());
    assert_eq!(publisher.health().consecutive_failures, 2);
    assert!(store
        .read(|tx| tx.latest_crl("nca_rsa_dev", false))
        .unwrap()
        .is_none());
}

/// The delta CRL's entries, by serial (upper-case hex as stored).
fn delta_entries(store: &Store) -> Vec<x509_cert::crl::RevokedCert> {
    let stored = store
        .read(|tx| tx.latest_crl("nca_rsa_dev", true))
        .unwrap()
        .unwrap();
    let crl = x509_cert::crl::CertificateList::from_der(&stored.der).unwrap();
    crl.tbs_cert_list.revoked_certificates.unwrap_or_default()
}

fn reason_code(entry: &x509_cert::crl::RevokedCert) -> Option<u8> {
    entry
        .crl_entry_extensions
        .iter()
        .flatten()
        .find(|x| x.extn_id == OID_CRL_REASON)
        .map(|x| *x.extn_value.as_bytes().last().unwrap())
}

fn unix(t: NaiveDateTime) -> u64 {
    u64::try_from(t.and_utc().timestamp()).unwrap()
}

/// A hold, then its release: the delta lists the release as removeFromCRL dated with the
/// hold's own revocation date (RFC 5280 knows no placeholder date; it once said 1970).
#[test]
fn a_released_hold_keeps_its_date_in_the_delta_crl() {
    let now = Utc::now().naive_utc();
    let serial = "0C01".repeat(8);
    let mut held = revoked_row(serial.clone(), now + chrono::Duration::days(30), 0);
    held.revocation_reason = Some("certificateHold".into());
    let hold_date = held.revoked_at.unwrap();
    let (_dir, _, store, publisher) = publisher_with(vec![held]);
    publisher.publish(CrlKind::Full, true).unwrap().unwrap();

    store
        .write(|tx| -> Result<(), StoreError> {
            let seq = tx.next_revocation_seq()?;
            assert!(tx.release_certificate(&serial, seq)?);
            Ok(())
        })
        .unwrap();
    let released = store.read(|tx| tx.certificate(&serial)).unwrap().unwrap();
    assert_eq!(released.status, CertificateStatus::Issued);
    assert_eq!(released.revoked_at, None);

    publisher.publish(CrlKind::Delta, true).unwrap().unwrap();
    let entries = delta_entries(&store);
    assert_eq!(entries.len(), 1, "the release is listed");
    let entry = &entries[0];
    assert_eq!(reason_code(entry), Some(REMOVE_FROM_CRL));
    assert_eq!(
        entry.revocation_date.to_unix_duration().as_secs(),
        unix(hold_date),
        "the hold's date, not 1970"
    );
}

/// A released row without a hold date (as a release before `held_at` existed left it, when the
/// migration had not filled it) fails the CRL, naming the serial: no date is made up.
#[test]
fn a_release_without_a_hold_date_is_never_dated_1970() {
    let now = Utc::now().naive_utc();
    let serial = "0D01".repeat(8);
    let mut released = revoked_row(serial.clone(), now + chrono::Duration::days(30), 0);
    released.status = CertificateStatus::Issued;
    released.revoked_at = None;
    released.revocation_reason = None;
    let (_dir, _, store, publisher) = publisher_with(vec![]);
    publisher.publish(CrlKind::Full, true).unwrap().unwrap();
    // Changed after the full CRL, so the delta must list it.
    store
        .write(|tx| -> Result<(), StoreError> {
            released.revocation_seq = Some(tx.next_revocation_seq()?);
            tx.insert_certificate(&released)
        })
        .unwrap();
    let err = publisher.publish(CrlKind::Delta, true).unwrap_err();
    assert!(err.to_string().contains(&serial), "{err}");
    assert!(store
        .read(|tx| tx.latest_crl("nca_rsa_dev", true))
        .unwrap()
        .is_none());
}

fn orphan(serial: String, reason: &str, seq: i64) -> crate::store::RevokedSerial {
    let now = Utc::now().naive_utc();
    crate::store::RevokedSerial {
        issuer_id: "nca_rsa_dev".into(),
        serial,
        revoked_at: now - chrono::Duration::hours(2),
        reason: reason.into(),
        invalidity_date: Some(now - chrono::Duration::hours(3)),
        source: "published CRL 7".into(),
        recorded_at: now,
        revocation_seq: seq,
    }
}

fn listed(der: &[u8]) -> Vec<x509_cert::crl::RevokedCert> {
    x509_cert::crl::CertificateList::from_der(der)
        .unwrap()
        .tbs_cert_list
        .revoked_certificates
        .unwrap_or_default()
}

fn entry_serial(entry: &x509_cert::crl::RevokedCert) -> String {
    let bytes = entry.serial_number.as_bytes();
    // The test's serials are 32 hex digits; DER drops their leading zero octets.
    format!("{:0>32}", hex::encode_upper(bytes))
}

/// Revocations known only by serial (a restore found them on published CRLs) are listed by the
/// full CRL among the revoked certificates, across page boundaries, in serial order, each once,
/// with their reason, date and invalidity date; one recorded after the base full CRL is in the
/// next delta, like any revocation.
#[test]
fn revocations_known_only_by_serial_are_listed_by_full_and_delta_crls() {
    let now = Utc::now().naive_utc();
    let total = PAGE as usize + 5;
    let serial = |n: usize| format!("{:032X}", 0x5000_0000u64 + n as u64);
    let rows = (0..total)
        .map(|i| revoked_row(serial(i * 2), now + chrono::Duration::days(30), 0))
        .collect();
    let (_dir, _, store, publisher) = publisher_with(rows);
    let odd = [0, 7, PAGE as usize - 1, PAGE as usize, total + 3];
    let orphans: Vec<String> = odd.iter().map(|i| serial(i * 2 + 1)).collect();
    store
        .write(|tx| -> Result<(), StoreError> {
            for s in &orphans {
                let seq = tx.next_revocation_seq()?;
                assert!(tx.record_revoked_serial(&orphan(s.clone(), "affiliationChanged", seq))?);
                // Recorded once: a second restore changes nothing.
                assert!(!tx.record_revoked_serial(&orphan(s.clone(), "superseded", seq))?);
            }
            Ok(())
        })
        .unwrap();

    publisher.publish(CrlKind::Full, true).unwrap().unwrap();
    let full = store
        .read(|tx| tx.latest_crl("nca_rsa_dev", false))
        .unwrap()
        .unwrap();
    let entries = listed(&full.der);
    let serials: Vec<String> = entries.iter().map(entry_serial).collect();
    assert_eq!(serials.len(), total + orphans.len(), "each listed once");
    let mut sorted = serials.clone();
    sorted.sort();
    assert_eq!(serials, sorted, "serial order");
    for s in &orphans {
        let entry = entries.iter().find(|e| entry_serial(e) == *s).unwrap();
        assert_eq!(
            reason_code(entry),
            Some(RevocationReason::AffiliationChanged.code())
        );
        let recorded = store
            .read(|tx| tx.revoked_serial("nca_rsa_dev", s))
            .unwrap()
            .unwrap();
        assert_eq!(
            entry.revocation_date.to_unix_duration().as_secs(),
            unix(recorded.revoked_at)
        );
        let invalidity = entry
            .crl_entry_extensions
            .iter()
            .flatten()
            .find(|x| x.extn_id == OID_INVALIDITY_DATE)
            .map(|x| der::asn1::GeneralizedTime::from_der(x.extn_value.as_bytes()).unwrap());
        assert_eq!(
            invalidity.map(|t| t.to_unix_duration().as_secs()),
            recorded.invalidity_date.map(unix)
        );
    }

    // Recorded after the full CRL: the next delta lists it (and only it); a hold made final
    // by a newer published CRL is a change too.
    let later = serial(total * 2 + 11);
    store
        .write(|tx| -> Result<(), StoreError> {
            let seq = tx.next_revocation_seq()?;
            assert!(tx.record_revoked_serial(&orphan(later.clone(), "certificateHold", seq))?);
            Ok(())
        })
        .unwrap();
    publisher.publish(CrlKind::Delta, true).unwrap().unwrap();
    let delta = delta_entries(&store);
    assert_eq!(
        delta.iter().map(entry_serial).collect::<Vec<_>>(),
        std::slice::from_ref(&later)
    );
    assert_eq!(
        reason_code(&delta[0]),
        Some(RevocationReason::CertificateHold.code())
    );
    store
        .write(|tx| -> Result<(), StoreError> {
            let seq = tx.next_revocation_seq()?;
            assert!(tx.finalise_serial_hold(&orphan(later.clone(), "keyCompromise", seq))?);
            assert!(
                !tx.finalise_serial_hold(&orphan(later.clone(), "superseded", seq))?,
                "no longer on hold"
            );
            Ok(())
        })
        .unwrap();
    publisher.publish(CrlKind::Delta, true).unwrap().unwrap();
    let delta = delta_entries(&store);
    assert_eq!(delta.len(), 1);
    assert_eq!(
        reason_code(&delta[0]),
        Some(RevocationReason::KeyCompromise.code())
    );
    // The OCSP caches learn of both changes by the revocation counter.
    let changed = store
        .read(|tx| {
            let upto = tx.current_revocation_seq()?;
            tx.serials_changed(0, upto)
        })
        .unwrap();
    assert!(orphans.iter().chain([&later]).all(|s| changed.contains(s)));
}

/// NCA's CRL of its test GOST CA: the structure a GOST CRL of ours is compared with.
const NCA_GOST_CRL: &[u8] = include_bytes!("../../tests/data/nca-gost-2015/nca_gost2022_test.crl");

/// A GOST issuing CA's full and delta CRLs are signed in NCA's form through its key, verify
/// with our code and with the `openssl` command and the engine (the TBS unchanged, the CA's
/// key in the TC26 form, the signature reversed), fail with a byte flipped, and carry the
/// structural fields of NCA's CRL: its signature algorithm (NULL parameters) in both places,
/// version 2, its issuer's name as encoded, its CRL extensions (CRL number, AKI), reason codes
/// on entries; the restore path recognises them as the CA's. Intended differences: ours carry
/// the CRL extensions every CRL of ours has beside NCA's two (the delta's indicator, the full
/// CRL's freshestCRL), and 20-octet random serials stand where NCA lists its SKI-derived ones.
#[test]
fn gost_full_and_delta_crls_verify_independently_with_ncas_structure() {
    let Some(ca) =
        test_ca::gost_ca("gost_full_and_delta_crls_verify_independently_with_ncas_structure")
    else {
        return;
    };
    let store = ca.store();
    let now = Utc::now().naive_utc();
    let revoke = |serial: &str| {
        let mut row = revoked_row(serial.to_owned(), now + chrono::Duration::days(30), 0);
        row.issuer_id = "nca_gost_dev".into();
        row.kind = CertificateKind::Sign;
        row.revocation_reason = Some("keyCompromise".into());
        store
            .write(|tx| -> Result<(), StoreError> {
                let mut row = row.clone();
                row.revocation_seq = Some(tx.next_revocation_seq()?);
                tx.insert_certificate(&row)?;
                Ok(())
            })
            .unwrap();
    };
    let publisher = CrlPublisher::new(
        store.clone(),
        ca.issuer(),
        Arc::new(SystemClock),
        CrlConfig::default(),
    );
    // One revocation before the full CRL, one after it (the delta's).
    let in_full = format!("7{:039X}", 0x1234_5678u64);
    let in_delta = format!("7{:039X}", 0x8765_4321u64);
    revoke(&in_full);
    publisher.publish(CrlKind::Full, true).unwrap().unwrap();
    revoke(&in_delta);
    publisher.publish(CrlKind::Delta, true).unwrap().unwrap();
    let issuing = ca.hierarchy.issuing().certificate();
    let ca_key = crate::gost::subject_public_key_info(issuing.der()).unwrap();
    let ca_subject = x509_cert::Certificate::from_der(issuing.der())
        .unwrap()
        .tbs_certificate
        .subject;
    let nca = x509_cert::crl::CertificateList::from_der(NCA_GOST_CRL).unwrap();
    let extension_ids =
        |crl: &x509_cert::crl::CertificateList| -> Vec<const_oid::ObjectIdentifier> {
            crl.tbs_cert_list
                .crl_extensions
                .iter()
                .flatten()
                .map(|e| e.extn_id)
                .collect()
        };
    for (delta, listed) in [(false, &in_full), (true, &in_delta)] {
        let stored = store
            .read(|tx| tx.latest_crl("nca_gost_dev", delta))
            .unwrap()
            .unwrap();
        let artefact = crate::gost::SignedArtefact::crl(&stored.der).unwrap();
        test_ca::assert_openssl_verifies_gost(&artefact, &ca_key);
        let ours = x509_cert::crl::CertificateList::from_der(&stored.der).unwrap();
        use der::Encode;
        assert_eq!(
            ours.signature_algorithm.to_der().unwrap(),
            nca.signature_algorithm.to_der().unwrap()
        );
        assert_eq!(ours.tbs_cert_list.signature, ours.signature_algorithm);
        assert_eq!(ours.tbs_cert_list.version, nca.tbs_cert_list.version);
        assert_eq!(ours.tbs_cert_list.issuer, ca_subject);
        let ours_ids = extension_ids(&ours);
        for id in extension_ids(&nca) {
            assert!(ours_ids.contains(&id), "{id} missing (delta: {delta})");
        }
        let entries = ours.tbs_cert_list.revoked_certificates.unwrap_or_default();
        let [entry] = &entries[..] else {
            panic!("one entry: {entries:?}");
        };
        assert_eq!(hex::encode_upper(entry.serial_number.as_bytes()), *listed);
        let nca_entry = &nca.tbs_cert_list.revoked_certificates.as_ref().unwrap()[0];
        let reason_id = |e: &x509_cert::crl::RevokedCert| {
            e.crl_entry_extensions
                .iter()
                .flatten()
                .map(|x| x.extn_id)
                .next()
        };
        assert_eq!(reason_id(entry), reason_id(nca_entry));
        // GnuTLS reads the TC26 form (signed again with the same keys) of the CRL and of the
        // issuing CA certificate; not with a byte of the CRL's signature changed.
        if test_ca::certtool_present(
            "gost_full_and_delta_crls_verify_independently_with_ncas_structure",
        ) {
            let issuing_pem = test_ca::in_tc26_form(
                issuing.der(),
                &test_ca::file_key(ca.hierarchy.root_key().unwrap()),
            );
            let issuing_key = test_ca::file_key(ca.hierarchy.issuing());
            let crl_pem = test_ca::in_tc26_form(&stored.der, &issuing_key);
            let args = [
                "--verify-crl",
                "--load-ca-certificate",
                "ca.pem",
                "--infile",
                "crl.pem",
            ];
            let (good, said) = test_ca::certtool(
                &args,
                &[("ca.pem", &issuing_pem), ("crl.pem", &crl_pem)],
                "Verified",
            );
            assert!(good, "{said}");
            let mut der = openssl::x509::X509Crl::from_pem(crl_pem.as_bytes())
                .unwrap()
                .to_der()
                .unwrap();
            let last = der.len() - 1;
            der[last] ^= 1;
            let tampered = crate::pem::encode("X509 CRL", &der);
            let (good, said) = test_ca::certtool(
                &args,
                &[("ca.pem", &issuing_pem), ("crl.pem", &tampered)],
                "Verified",
            );
            assert!(!good, "{said}");
        }
        // What a restore checks: signed by the issuing CA; a flipped byte is not.
        assert!(issuing.signed_crl(&stored.der));
        let mut tampered = stored.der.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(!issuing.signed_crl(&tampered));
    }
}
