//! OCSP for the root's own CA certificates (the issuing CA, and earlier certificates of it
//! still valid): responses signed directly by the root, made ahead of time where the root key
//! is, imported and served by the online responder.
//!
//! Owns: signing a batch of such responses with the root alone (its certificate and key; the
//! root machine holds nothing else), one per certificate and CertID hash algorithm, `good` or
//! — for a certificate the authority revoked — `revoked` with its reason and time,
//! the batch file format (PEM blocks `OCSP RESPONSE`), verifying each response of a batch
//! before it is imported (signed by the root, for a CA certificate the root issued, valid at
//! most [`MAX_VALIDITY_DAYS`], not expired, newer than the one held), the import with its
//! `ocsp.root_responses_imported` audit entry, the development upkeep that keeps them fresh
//! where the root key is, and answering a request whose CertID names the root as issuer.
//! Must never: sign with anything but the root key (no delegated responder for the root),
//! serve a held `good` for a certificate the authority revoked (it answers the held `revoked`
//! or `tryLater`), serve a response past its nextUpdate, or import part of a batch.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime, Utc};
use const_oid::ObjectIdentifier;
use der::asn1::{BitString, Null, OctetString};
use der::{Decode, Encode};
use x509_cert::serial_number::SerialNumber;
use x509_ocsp::{
    BasicOcspResponse, CertId, CertStatus, OcspRequest, OcspResponse, OcspResponseStatus,
    ResponderId, ResponseBytes, ResponseData, RevokedInfo, SingleResponse,
};

use super::{
    crl_reason, error_answer, generalized, response_digest, serial_hex, Answer, CertState,
    IssuerHashes, Outcome, StatusSource, HASHES, OID_BASIC,
};
use crate::ca::{signature_algorithm, CaCertificate, CaError, Hierarchy, IssuerKey, Serial};
use crate::store::{db_time, AuditEntry, RevocationEntry, RootOcspResponse, Store, StoreError};
use crate::vocab::RevocationReason;

/// Longest validity of a root-signed response (CA/Browser Forum BR 4.9.10: at most twelve
/// months for responses about subordinate CA certificates).
pub const MAX_VALIDITY_DAYS: i64 = 365;

/// Most responses one batch file may hold.
pub const MAX_BATCH: usize = 256;

/// The PEM label of one response in a batch file.
const PEM_LABEL: &str = "OCSP RESPONSE";

/// Why a batch was not signed, or not imported.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RootOcspError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Building or signing failed.
    #[error(transparent)]
    Ca(#[from] CaError),
    /// This machine does not hold the root key.
    #[error("the root key is not on this machine (root.key.pem in [ca] dir)")]
    NoRootKey,
    /// The validity asked for is out of bounds.
    #[error("a root OCSP response may be valid for 1 to {MAX_VALIDITY_DAYS} days, not {0}")]
    Validity(i64),
    /// Not a batch of OCSP responses.
    #[error("not a root OCSP response batch: {0}")]
    Malformed(String),
    /// A response is not signed by our root.
    #[error("response {0} of the batch is not signed by the root CA certificate")]
    NotSignedByRoot(usize),
    /// A response answers for a certificate the root did not issue (as far as we know).
    #[error(
        "response {index} of the batch answers for serial {serial}, not a CA certificate the root issued"
    )]
    NotOurCertificate {
        /// Its place in the batch, from 1.
        index: usize,
        /// The serial it answers for.
        serial: String,
    },
    /// A response is not newer than the one held.
    #[error(
        "response {index} of the batch (serial {serial}) was produced at {found}, not after the held one ({held})"
    )]
    NotNewer {
        /// Its place in the batch, from 1.
        index: usize,
        /// The serial it answers for.
        serial: String,
        /// Its thisUpdate.
        found: NaiveDateTime,
        /// The held response's thisUpdate.
        held: NaiveDateTime,
    },
    /// A response is past its nextUpdate.
    #[error("response {0} of the batch expired at {1}")]
    Expired(usize, NaiveDateTime),
    /// A response is valid for longer than the bound.
    #[error("response {0} of the batch is valid for {1} days, more than {MAX_VALIDITY_DAYS}")]
    TooLong(usize, i64),
}

/// The root as the issuer named in a CertID: its name and key hashes per hash algorithm.
#[derive(Debug)]
pub(super) struct RootIssuer {
    hashes: IssuerHashes,
    /// The current issuing CA certificate's serial, where this machine has one (a request
    /// for it without a held response is `tryLater`, for anything else `unauthorized`).
    issuing_serial: Option<String>,
}

fn serial_of(cert: &openssl::x509::X509Ref) -> Result<String, CaError> {
    let hex = cert.serial_number().to_bn()?.to_hex_str()?.to_string();
    Serial::parse(&hex)
        .map(|s| s.as_str().to_owned())
        .map_err(|e| CaError::Invalid {
            path: std::path::PathBuf::new(),
            message: e.to_string(),
        })
}

fn root_key_bits(root: &CaCertificate) -> Result<Vec<u8>, CaError> {
    let root = x509_cert::Certificate::from_der(root.der())?;
    Ok(root
        .tbs_certificate
        .subject_public_key_info
        .subject_public_key
        .raw_bytes()
        .to_vec())
}

impl RootIssuer {
    /// The root `root_cert` as an issuer; `issuing_serial`, the current issuing CA
    /// certificate's, where this machine serves one.
    pub(super) fn new(
        root_cert: &CaCertificate,
        issuing_serial: Option<String>,
    ) -> Result<RootIssuer, CaError> {
        let root = x509_cert::Certificate::from_der(root_cert.der())?;
        let name_der = root.tbs_certificate.subject.to_der()?;
        let key_bits = root_key_bits(root_cert)?;
        Ok(RootIssuer {
            hashes: IssuerHashes::new(&name_der, &key_bits),
            issuing_serial,
        })
    }

    /// Whether `id` names this root as issuer and the current issuing CA certificate as the
    /// certificate asked about (a request [`super::Responders`] sends to this issuer's
    /// responder).
    pub(super) fn names_issuing(&self, id: &CertId) -> bool {
        self.matches(id).is_some()
            && self.issuing_serial.as_deref() == Some(super::serial_hex(id).as_str())
    }

    /// The algorithm OID of `id` if it names the root as issuer.
    fn matches(&self, id: &CertId) -> Option<ObjectIdentifier> {
        let params_ok = id
            .hash_algorithm
            .parameters
            .as_ref()
            .is_none_or(|p| der::Tagged::tag(p) == der::Tag::Null);
        self.hashes
            .by_alg
            .iter()
            .find(|(oid, name, key)| {
                params_ok
                    && *oid == id.hash_algorithm.oid
                    && name.as_slice() == id.issuer_name_hash.as_bytes()
                    && key.as_slice() == id.issuer_key_hash.as_bytes()
            })
            .map(|(oid, _, _)| *oid)
    }

    /// The answer to `der` if its one CertID names the root as issuer; `None` when it does
    /// not (the caller answers `unauthorized`). A held response is served as it is (no
    /// nonce: it was signed ahead of time, RFC 5019 §2.1.1); `good` stops being served as
    /// soon as the authority revoked the certificate.
    pub(super) fn answer(
        &self,
        der: &[u8],
        source: &dyn StatusSource,
        now: NaiveDateTime,
    ) -> Option<Answer> {
        let request = OcspRequest::from_der(der).ok()?;
        let list = &request.tbs_request.request_list;
        let [only] = list.as_slice() else {
            return None;
        };
        let alg = self.matches(&only.req_cert)?;
        let serial = serial_hex(&only.req_cert);
        let held = match source.root_response(&serial, &alg.to_string()) {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(error = %e, "root OCSP response unavailable");
                return Some(error_answer(OcspResponseStatus::TryLater, "try_later"));
            }
        };
        let Some(response) = held.response else {
            return (held.revoked || self.issuing_serial.as_deref() == Some(serial.as_str()))
                .then(|| error_answer(OcspResponseStatus::TryLater, "try_later"));
        };
        let status = if response.status == "revoked" {
            "revoked"
        } else {
            "good"
        };
        if response.next_update <= now || (held.revoked && status != "revoked") {
            return Some(error_answer(OcspResponseStatus::TryLater, "try_later"));
        }
        let digest = response_digest(&response.der);
        Some(Answer {
            der: Arc::new(response.der),
            outcome: Outcome::CacheHit,
            statuses: vec![status],
            validity: Some((response.this_update, response.next_update)),
            digest: Some(digest),
        })
    }
}

/// Serial of the issuing CA certificate (normalised hex).
pub fn issuing_serial(hierarchy: &Hierarchy) -> Result<String, CaError> {
    serial_of(hierarchy.issuing().certificate().x509())
}

/// Earlier issuing CA certificates kept beside the current one (`<issuer_id>.pem.<serial>.old`,
/// left by `tamga ca reissue-issuing`) that the root `root` signed and that are still valid at
/// `now`.
pub fn earlier_issuing(
    root: &CaCertificate,
    issuing_cert: &Path,
    now: DateTime<Utc>,
) -> Vec<openssl::x509::X509> {
    let (Some(dir), Some(name)) = (
        issuing_cert.parent(),
        issuing_cert.file_name().and_then(|n| n.to_str()),
    ) else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let Ok(root_key) = root.x509().public_key() else {
        return Vec::new();
    };
    let Ok(now) = openssl::asn1::Asn1Time::from_unix(now.timestamp()) else {
        return Vec::new();
    };
    let prefix = format!("{name}.");
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(file) = file.to_str() else { continue };
        if !(file.starts_with(&prefix) && file.ends_with(".old")) {
            continue;
        }
        let Ok(bytes) = crate::input::read_bounded(&entry.path(), 64 * 1024) else {
            continue;
        };
        let Ok(cert) = openssl::x509::X509::from_pem(&bytes) else {
            continue;
        };
        if cert.verify(&root_key).unwrap_or(false) && cert.not_after() > now {
            found.push(cert);
        }
    }
    found
}

/// The CA certificates the root issued that a batch answers for, by serial, with their state:
/// the `certificates` still valid (the register of the root machine; on a server, the current
/// issuing CA certificate and the earlier ones), and every certificate the authority revoked
/// (`revoked`, whether or not its certificate is at hand).
pub fn subjects(
    certificates: &[openssl::x509::X509],
    revoked: &[RevocationEntry],
) -> Result<Vec<(String, CertState)>, CaError> {
    let mut serials = Vec::with_capacity(certificates.len() + revoked.len());
    for cert in certificates {
        serials.push(serial_of(cert)?);
    }
    for r in revoked {
        serials.push(r.serial.clone());
    }
    serials.sort();
    serials.dedup();
    Ok(serials
        .into_iter()
        .map(|serial| {
            let state = match revoked.iter().find(|r| r.serial == serial) {
                Some(r) => CertState::Revoked {
                    at: r.revoked_at.unwrap_or_default(),
                    reason: r.reason.as_deref().and_then(RevocationReason::parse),
                    invalidity: None,
                },
                None => CertState::Good,
            };
            (serial, state)
        })
        .collect())
}

/// The serials a batch may answer for: those of [`subjects`].
pub fn known_serials(
    store: &Store,
    hierarchy: &Hierarchy,
    issuing_cert: &Path,
    now: DateTime<Utc>,
) -> Result<Vec<String>, RootOcspError> {
    let revoked = store.read(|tx| tx.authority_revocations())?;
    Ok(subjects(
        &current_certificates(hierarchy, issuing_cert, now),
        &revoked,
    )?
    .into_iter()
    .map(|(s, _)| s)
    .collect())
}

fn serial_number(hex_serial: &str) -> Result<SerialNumber, CaError> {
    let bytes = hex::decode(hex_serial).map_err(|e| CaError::Invalid {
        path: std::path::PathBuf::new(),
        message: format!("serial {hex_serial}: {e}"),
    })?;
    Ok(SerialNumber::new(&bytes)?)
}

/// The current issuing CA certificate of `hierarchy` and the earlier ones still valid at
/// `now` (see [`earlier_issuing`]).
pub fn current_certificates(
    hierarchy: &Hierarchy,
    issuing_cert: &Path,
    now: DateTime<Utc>,
) -> Vec<openssl::x509::X509> {
    let mut certificates = vec![hierarchy.issuing().certificate().x509().clone()];
    certificates.extend(earlier_issuing(hierarchy.root(), issuing_cert, now));
    certificates
}

/// Sign a batch with the root `root_key` (its certificate and key): for each of `subjects`,
/// one response per CertID hash algorithm, valid from `now` for `validity`. Returns the DER
/// responses.
pub fn sign(
    root_key: &IssuerKey,
    subjects: &[(String, CertState)],
    now: DateTime<Utc>,
    validity: chrono::Duration,
) -> Result<Vec<Vec<u8>>, RootOcspError> {
    let days = validity.num_days();
    if validity <= chrono::Duration::zero() || validity > chrono::Duration::days(MAX_VALIDITY_DAYS)
    {
        return Err(RootOcspError::Validity(days));
    }
    let root = root_key.certificate();
    let issuer = RootIssuer::new(root, None)?;
    let key_hash = openssl::sha::sha1(&root_key_bits(root)?).to_vec();
    let root_cert = x509_cert::Certificate::from_der(root.der()).map_err(CaError::from)?;
    let this_update = DateTime::<Utc>::from_timestamp(now.timestamp(), 0)
        .unwrap_or(now)
        .naive_utc();
    let next_update = this_update + validity;
    let mut batch = Vec::with_capacity(subjects.len() * issuer.hashes.by_alg.len());
    for (serial, state) in subjects {
        let serial_number = serial_number(serial)?;
        let cert_status = match state {
            CertState::Revoked { at, reason, .. } => CertStatus::Revoked(RevokedInfo {
                revocation_time: generalized(*at).map_err(CaError::from)?,
                revocation_reason: reason
                    .filter(|r| *r != RevocationReason::Unspecified)
                    .map(crl_reason),
            }),
            _ => CertStatus::Good(Null),
        };
        for (oid, name_hash, key_hash_alg) in &issuer.hashes.by_alg {
            let id = CertId {
                hash_algorithm: spki::AlgorithmIdentifierOwned {
                    oid: *oid,
                    parameters: Some(der::asn1::Any::null()),
                },
                issuer_name_hash: OctetString::new(name_hash.clone()).map_err(CaError::from)?,
                issuer_key_hash: OctetString::new(key_hash_alg.clone()).map_err(CaError::from)?,
                serial_number: serial_number.clone(),
            };
            let data = ResponseData {
                version: x509_ocsp::Version::V1,
                responder_id: ResponderId::ByKey(
                    OctetString::new(key_hash.clone()).map_err(CaError::from)?,
                ),
                produced_at: generalized(this_update).map_err(CaError::from)?,
                responses: vec![SingleResponse {
                    cert_id: id,
                    cert_status,
                    this_update: generalized(this_update).map_err(CaError::from)?,
                    next_update: Some(generalized(next_update).map_err(CaError::from)?),
                    single_extensions: None,
                }],
                response_extensions: None,
            };
            let tbs = data.to_der().map_err(CaError::from)?;
            let signature = root_key.sign(&tbs)?;
            let basic = BasicOcspResponse {
                tbs_response_data: data,
                signature_algorithm: root_key.signature_algorithm(),
                signature: BitString::from_bytes(&signature).map_err(CaError::from)?,
                // The root itself, so that a client that looks for the signer among the
                // response's certificates (OpenSSL) finds it.
                certs: Some(vec![root_cert.clone()]),
            };
            let response = OcspResponse {
                response_status: OcspResponseStatus::Successful,
                response_bytes: Some(ResponseBytes {
                    response_type: OID_BASIC,
                    response: OctetString::new(basic.to_der().map_err(CaError::from)?)
                        .map_err(CaError::from)?,
                }),
            };
            batch.push(response.to_der().map_err(CaError::from)?);
        }
    }
    Ok(batch)
}

/// A batch as a file: one PEM block `OCSP RESPONSE` per response.
pub fn to_pem(batch: &[Vec<u8>]) -> String {
    batch
        .iter()
        .map(|der| crate::pem::encode(PEM_LABEL, der))
        .collect()
}

/// The responses of a batch file (PEM blocks `OCSP RESPONSE`, or one DER response).
pub fn from_file(bytes: &[u8]) -> Result<Vec<Vec<u8>>, RootOcspError> {
    use base64::Engine;
    if bytes.first() == Some(&0x30) {
        return Ok(vec![bytes.to_vec()]);
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|_| RootOcspError::Malformed("neither PEM nor DER".to_owned()))?;
    let begin = format!("-----BEGIN {PEM_LABEL}-----");
    let end = format!("-----END {PEM_LABEL}-----");
    let mut batch = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(&begin) {
        let after = rest.get(start + begin.len()..).unwrap_or("");
        let stop = after
            .find(&end)
            .ok_or_else(|| RootOcspError::Malformed(format!("a block without {end}")))?;
        let body: String = after
            .get(..stop)
            .unwrap_or("")
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|e| RootOcspError::Malformed(format!("block {}: {e}", batch.len() + 1)))?;
        batch.push(der);
        if batch.len() > MAX_BATCH {
            return Err(RootOcspError::Malformed(format!(
                "more than {MAX_BATCH} responses"
            )));
        }
        rest = after.get(stop + end.len()..).unwrap_or("");
    }
    if batch.is_empty() {
        return Err(RootOcspError::Malformed(format!("no {PEM_LABEL} block")));
    }
    Ok(batch)
}

/// One response of a batch, verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedResponse {
    /// The serial it answers for.
    pub serial: String,
    /// Its CertID hash algorithm (dotted OID).
    pub hash_alg: String,
    /// `good` or `revoked`.
    pub status: &'static str,
    /// thisUpdate.
    pub this_update: NaiveDateTime,
    /// nextUpdate.
    pub next_update: NaiveDateTime,
    /// The DER.
    pub der: Vec<u8>,
}

/// The earliest nextUpdate of `responses` (RFC 3339), when the batch as a whole stops being
/// valid; empty for no responses.
pub fn valid_until(responses: &[VerifiedResponse]) -> String {
    responses
        .iter()
        .map(|r| r.next_update)
        .min()
        .map(|t| t.and_utc().to_rfc3339())
        .unwrap_or_default()
}

fn naive(t: &x509_ocsp::OcspGeneralizedTime) -> NaiveDateTime {
    DateTime::<Utc>::from_timestamp(
        i64::try_from(t.0.to_unix_duration().as_secs()).unwrap_or(0),
        0,
    )
    .unwrap_or_default()
    .naive_utc()
}

/// Verify every response of `batch` (index from 1 in errors): a successful basic response
/// with one SingleResponse whose CertID names the root, signed by the root key (responder
/// id by the root's key hash or name), `good` or `revoked`, for one of `known` serials, valid
/// at most [`MAX_VALIDITY_DAYS`] and not expired at `now`.
pub fn verify(
    root: &CaCertificate,
    batch: &[Vec<u8>],
    known: &[String],
    now: DateTime<Utc>,
) -> Result<Vec<VerifiedResponse>, RootOcspError> {
    let issuer = RootIssuer::new(root, None)?;
    let key_type = root
        .key_type()
        .ok_or_else(|| RootOcspError::Malformed("the root key type is not supported".into()))?;
    let algorithm = signature_algorithm(key_type);
    let root_key_hash = openssl::sha::sha1(&root_key_bits(root)?).to_vec();
    let root_cert = x509_cert::Certificate::from_der(root.der()).map_err(CaError::from)?;
    let mut verified = Vec::with_capacity(batch.len());
    for (i, der) in batch.iter().enumerate() {
        let index = i + 1;
        let malformed = |what: &str| RootOcspError::Malformed(format!("response {index}: {what}"));
        let response = OcspResponse::from_der(der).map_err(|e| malformed(&e.to_string()))?;
        if response.response_status != OcspResponseStatus::Successful {
            return Err(malformed("not a successful response"));
        }
        let bytes = response
            .response_bytes
            .as_ref()
            .filter(|b| b.response_type == OID_BASIC)
            .ok_or_else(|| malformed("not a basic OCSP response"))?;
        let basic = BasicOcspResponse::from_der(bytes.response.as_bytes())
            .map_err(|e| malformed(&e.to_string()))?;
        let data = &basic.tbs_response_data;
        let by_root = match &data.responder_id {
            ResponderId::ByKey(k) => k.as_bytes() == root_key_hash.as_slice(),
            ResponderId::ByName(n) => *n == root_cert.tbs_certificate.subject,
        };
        let tbs = data.to_der().map_err(|e| malformed(&e.to_string()))?;
        let signature_ok = basic.signature_algorithm.oid == algorithm.oid
            && basic
                .signature
                .as_bytes()
                .is_some_and(|sig| root.verifies_signature(&tbs, sig));
        if !by_root || !signature_ok {
            return Err(RootOcspError::NotSignedByRoot(index));
        }
        let [single] = data.responses.as_slice() else {
            return Err(malformed("not exactly one SingleResponse"));
        };
        let alg = issuer
            .matches(&single.cert_id)
            .ok_or(RootOcspError::NotSignedByRoot(index))?;
        let serial = serial_hex(&single.cert_id);
        if !known.contains(&serial) {
            return Err(RootOcspError::NotOurCertificate { index, serial });
        }
        let status = match single.cert_status {
            CertStatus::Good(_) => "good",
            CertStatus::Revoked(_) => "revoked",
            CertStatus::Unknown(_) => return Err(malformed("status unknown")),
        };
        let this_update = naive(&single.this_update);
        let next_update = single
            .next_update
            .as_ref()
            .map(naive)
            .ok_or_else(|| malformed("no nextUpdate"))?;
        let days = (next_update - this_update).num_days();
        if next_update - this_update > chrono::Duration::days(MAX_VALIDITY_DAYS) {
            return Err(RootOcspError::TooLong(index, days));
        }
        if next_update <= now.naive_utc() {
            return Err(RootOcspError::Expired(index, next_update));
        }
        verified.push(VerifiedResponse {
            serial,
            hash_alg: alg.to_string(),
            status,
            this_update,
            next_update,
            der: der.clone(),
        });
    }
    Ok(verified)
}

/// Import a verified batch, all or nothing: every response must be newer than the one held
/// for its serial and algorithm. Audited as `ocsp.root_responses_imported` by `actor`.
pub fn import(
    store: &Store,
    batch: &[VerifiedResponse],
    now: DateTime<Utc>,
    actor: &str,
) -> Result<(), RootOcspError> {
    let at = db_time(now);
    store.write(|tx| -> Result<(), RootOcspError> {
        tx.lock_root_ocsp()?;
        for (i, r) in batch.iter().enumerate() {
            if let Some(held) = tx.root_ocsp_response(&r.serial, &r.hash_alg)? {
                if r.this_update <= held.this_update {
                    return Err(RootOcspError::NotNewer {
                        index: i + 1,
                        serial: r.serial.clone(),
                        found: r.this_update,
                        held: held.this_update,
                    });
                }
            }
            tx.put_root_ocsp_response(&RootOcspResponse {
                serial: r.serial.clone(),
                hash_alg: r.hash_alg.clone(),
                status: r.status.to_owned(),
                this_update: r.this_update,
                next_update: r.next_update,
                der: r.der.clone(),
                imported_at: at,
            })?;
        }
        let mut certificates: Vec<serde_json::Value> = Vec::new();
        for r in batch {
            if !certificates
                .iter()
                .any(|c| c["serial"] == r.serial.as_str())
            {
                certificates.push(serde_json::json!({ "serial": r.serial, "status": r.status }));
            }
        }
        let next_update = batch.iter().map(|r| r.next_update).min();
        tx.append_audit(&AuditEntry {
            at,
            actor: actor.to_owned(),
            action: "ocsp.root_responses_imported".to_owned(),
            subject: "root".to_owned(),
            details: serde_json::json!({
                "responses": batch.len(),
                "certificates": certificates,
                "next_update": next_update.map(|t| t.and_utc().to_rfc3339()),
            }),
        })?;
        Ok(())
    })
}

/// What a batch holds for the current issuing CA certificate: the earliest nextUpdate of its
/// held responses, `None` if none is held.
pub fn issuing_expiry(
    store: &Store,
    hierarchy: &Hierarchy,
) -> Result<Option<NaiveDateTime>, RootOcspError> {
    let serial = issuing_serial(hierarchy)?;
    let held = store.read(|tx| tx.root_ocsp_summary())?;
    Ok(held
        .into_iter()
        .filter(|(s, ..)| *s == serial)
        .map(|(.., next)| next)
        .min())
}

/// Development upkeep: when this machine holds the root key, sign and import a new batch if
/// a certificate of [`subjects`] has no response for some algorithm, if half the validity of
/// one has passed, or if one still says `good` for a certificate the authority revoked.
/// Returns whether it imported one.
pub fn keep_fresh(
    store: &Store,
    hierarchy: &Hierarchy,
    issuing_cert: &Path,
    now: DateTime<Utc>,
    validity: chrono::Duration,
) -> Result<bool, RootOcspError> {
    let Some(root_key) = hierarchy.root_key() else {
        return Ok(false);
    };
    let validity = validity.min(chrono::Duration::days(MAX_VALIDITY_DAYS));
    let (revoked, held) = store.read(|tx| -> Result<_, StoreError> {
        Ok((tx.authority_revocations()?, tx.root_ocsp_summary()?))
    })?;
    let subjects = subjects(
        &current_certificates(hierarchy, issuing_cert, now),
        &revoked,
    )?;
    let now_naive = now.naive_utc();
    let due = subjects.iter().any(|(serial, state)| {
        let rows: Vec<_> = held.iter().filter(|(s, ..)| s == serial).collect();
        rows.len() < HASHES.len()
            || rows.iter().any(|(_, _, status, this, next)| {
                now_naive - *this >= validity / 2
                    || *next <= now_naive
                    || (matches!(state, CertState::Revoked { .. }) && status != "revoked")
            })
    });
    if !due {
        return Ok(false);
    }
    let batch = sign(root_key, &subjects, now, validity)?;
    let known: Vec<String> = subjects.into_iter().map(|(s, _)| s).collect();
    let verified = verify(hierarchy.root(), &batch, &known, now)?;
    match import(store, &verified, now, "system") {
        Ok(()) => Ok(true),
        // Another instance imported one in the same second.
        Err(RootOcspError::NotNewer { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )]

    use openssl::hash::MessageDigest;
    use openssl::ocsp::{OcspCertId, OcspRequest as OpensslRequest};

    use super::*;
    use crate::dev::test_ca;

    fn request(hierarchy: &Hierarchy, digest: MessageDigest) -> Vec<u8> {
        let mut req = OpensslRequest::new().unwrap();
        let id = OcspCertId::from_cert(
            digest,
            hierarchy.issuing().certificate().x509(),
            hierarchy.root().x509(),
        )
        .unwrap();
        req.add_id(id).unwrap();
        req.to_der().unwrap()
    }

    #[test]
    fn a_batch_is_verified_imported_and_served_until_the_issuer_is_revoked() {
        let ca = test_ca::dev_ca();
        let (h, store) = (&ca.hierarchy, ca.store());
        let issuing_cert = crate::ca::HierarchyFiles::for_config(&ca.ca).issuing_cert;
        let now = Utc::now();
        let issuer = RootIssuer::new(h.root(), Some(issuing_serial(h).unwrap())).unwrap();
        let ask = |digest| {
            issuer.answer(
                &request(h, digest),
                &store,
                now.naive_utc() + chrono::Duration::seconds(5),
            )
        };
        assert_eq!(
            ask(MessageDigest::sha1()).unwrap().outcome,
            Outcome::Error("try_later")
        );

        assert!(keep_fresh(&store, h, &issuing_cert, now, chrono::Duration::days(400)).unwrap());
        for digest in [MessageDigest::sha1(), MessageDigest::sha256()] {
            let answer = ask(digest).unwrap();
            assert_eq!(answer.statuses, vec!["good"]);
            let (this, next) = answer.validity.unwrap();
            assert_eq!((next - this).num_days(), MAX_VALIDITY_DAYS);
        }
        // Fresh: nothing due.
        assert!(!keep_fresh(&store, h, &issuing_cert, now, chrono::Duration::days(90)).unwrap());

        // Verification: a serial we do not know of, a signature that does not verify, a
        // response that is not newer.
        let serial = issuing_serial(h).unwrap();
        let subjects = vec![(serial.clone(), CertState::Good)];
        let later = now + chrono::Duration::seconds(2);
        let root_key = h.root_key().unwrap();
        let batch = sign(root_key, &subjects, later, chrono::Duration::days(30)).unwrap();
        assert_eq!(batch.len(), HASHES.len());
        assert!(matches!(
            verify(h.root(), &batch, &["01".to_owned()], later),
            Err(RootOcspError::NotOurCertificate { index: 1, .. })
        ));
        // producedAt moved by ten minutes: the signature no longer covers it.
        let mut tampered = batch.clone();
        let produced = later.format("%Y%m%d%H%M%SZ").to_string();
        let at = tampered[0]
            .windows(produced.len())
            .position(|w| w == produced.as_bytes())
            .unwrap()
            + 10;
        tampered[0][at] = if tampered[0][at] == b'0' { b'1' } else { b'0' };
        let refused = verify(h.root(), &tampered, std::slice::from_ref(&serial), later);
        assert!(
            matches!(refused, Err(RootOcspError::NotSignedByRoot(1))),
            "{refused:?}"
        );
        let older = sign(root_key, &subjects, now, chrono::Duration::days(30)).unwrap();
        let older = verify(h.root(), &older, std::slice::from_ref(&serial), now).unwrap();
        assert!(matches!(
            import(&store, &older, now, "test"),
            Err(RootOcspError::NotNewer { .. })
        ));
        assert!(matches!(
            sign(root_key, &subjects, now, chrono::Duration::days(366)),
            Err(RootOcspError::Validity(366))
        ));
        // The batch file round trip.
        assert_eq!(from_file(to_pem(&batch).as_bytes()).unwrap(), batch);
        assert!(from_file(b"junk").is_err());

        // Revoked by the authority: the held `good` is never served again.
        crate::crl::issuer::revoke_issuer(&store, h, RevocationReason::KeyCompromise, "test", now)
            .unwrap();
        assert_eq!(
            ask(MessageDigest::sha1()).unwrap().outcome,
            Outcome::Error("try_later")
        );
        let later = now + chrono::Duration::seconds(3);
        assert!(keep_fresh(&store, h, &issuing_cert, later, chrono::Duration::days(90)).unwrap());
        let answer = ask(MessageDigest::sha1()).unwrap();
        assert_eq!(answer.statuses, vec!["revoked"]);
        let parsed = OcspResponse::from_der(&answer.der).unwrap();
        let basic = BasicOcspResponse::from_der(parsed.response_bytes.unwrap().response.as_bytes())
            .unwrap();
        let CertStatus::Revoked(info) = &basic.tbs_response_data.responses[0].cert_status else {
            panic!("not revoked");
        };
        assert_eq!(
            info.revocation_reason,
            Some(x509_cert::ext::pkix::CrlReason::KeyCompromise)
        );
    }
}
