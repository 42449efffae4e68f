//! The OCSP responder (RFC 6960, RFC 5019 profile): the hottest path of the system.
//!
//! Owns: parsing requests (bounded size and CertID count), matching CertIDs to the issuer we
//! operate (SHA-1, SHA-256, SHA-384 and SHA-512 CertIDs), reading status through a
//! [`StatusSource`] (`source`: the one trait through which OCSP reads), building and signing responses with the delegated responder key, the
//! per-instance cache of pre-signed responses and its invalidation by the revocation counter,
//! the bound on on-demand signing, and renewal of the responder certificate; `root` answers
//! for the issuing CA's own certificate with responses the root signed offline. Must never:
//! answer `good` for a certificate whose issuance is not committed (unknown answers are never
//! cached, and carry the short nextUpdate `[ocsp] unknown_validity`, so neither this instance
//! nor a relying party keeps one long after the issuance), serve a cached answer older than a
//! revocation it has seen, serve any answer past its nextUpdate, or panic on input.
//!
//! While the database is out of reach (the invalidation poll fails), pre-signed answers are
//! served until their nextUpdate even past the point where they would be re-signed, and what
//! the cache cannot answer gets `tryLater` at once: see [`Responder::invalidate_changed`].

mod cache;
pub mod root;
mod source;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDateTime, Utc};
use const_oid::ObjectIdentifier;
use der::asn1::{BitString, Null, OctetString};
use der::{Decode, Encode};
use x509_cert::ext::pkix::CrlReason;
use x509_cert::ext::Extension;
use x509_ocsp::{
    BasicOcspResponse, CertId, CertStatus, OcspGeneralizedTime, OcspRequest, OcspResponse,
    OcspResponseStatus, ResponderId, ResponseBytes, ResponseData, RevokedInfo, SingleResponse,
};

pub use cache::ResponseCache;
pub use source::{CertState, StatusSource};

use crate::ca::{CaError, Hierarchy, IssuerKey};
use crate::clock::Clock;
use crate::config::OcspConfig;
use crate::store::StoreError;
use crate::vocab::RevocationReason;

/// Largest request accepted.
pub const MAX_REQUEST_LEN: usize = 4 * 1024;
/// Most CertIDs in one request.
pub const MAX_CERT_IDS: usize = 16;
/// Longest nonce echoed (RFC 8954 allows 1-32 octets; some clients send more).
const MAX_NONCE_LEN: usize = 128;

const OID_NONCE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.2");
const OID_BASIC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.1");
/// A digest function over a byte string.
type Digest = fn(&[u8]) -> Vec<u8>;

/// CertID hash algorithms we answer for: OID and digest.
const HASHES: [(&str, Digest); 4] = [
    ("1.3.14.3.2.26", |d| openssl::sha::sha1(d).to_vec()),
    ("2.16.840.1.101.3.4.2.1", |d| {
        openssl::sha::sha256(d).to_vec()
    }),
    ("2.16.840.1.101.3.4.2.2", |d| {
        openssl::sha::sha384(d).to_vec()
    }),
    ("2.16.840.1.101.3.4.2.3", |d| {
        openssl::sha::sha512(d).to_vec()
    }),
];

/// What kind of answer was given (for metrics and HTTP headers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A pre-signed response from the cache.
    CacheHit,
    /// A pre-signed response past its refresh point but before its nextUpdate, served because
    /// the database cannot be reached to sign a new one.
    Degraded,
    /// A response signed for this request (and cached if it may be).
    Signed {
        /// Whether it went into the cache.
        cached: bool,
        /// Time spent signing.
        signing: Duration,
    },
    /// An OCSP error status (no signature).
    Error(&'static str),
}

/// A response ready to send.
#[derive(Debug, Clone)]
pub struct Answer {
    /// DER of the OCSPResponse.
    pub der: Arc<Vec<u8>>,
    /// How it was produced.
    pub outcome: Outcome,
    /// Per-CertID statuses (`good`, `revoked`, `unknown`), empty for errors.
    pub statuses: Vec<&'static str>,
    /// thisUpdate and nextUpdate, for caching headers; `None` for errors and nonce answers.
    pub validity: Option<(NaiveDateTime, NaiveDateTime)>,
    /// Hex of the first 16 bytes of SHA-256 of `der`, where `validity` is set (an ETag),
    /// computed once when the answer was signed.
    pub digest: Option<Arc<str>>,
}

/// Hex of the first 16 bytes of SHA-256 of a response. (`openssl::sha::Sha256`, not the
/// one-shot `sha256()`, which in OpenSSL 3 looks the algorithm up by name on every call.)
fn response_digest(der: &[u8]) -> Arc<str> {
    let mut hasher = openssl::sha::Sha256::new();
    hasher.update(der);
    let full = hasher.finish();
    Arc::from(hex::encode(full.get(..16).unwrap_or(&full)))
}

/// The issuer's CertID hashes, per supported hash algorithm: (algorithm, name hash, key hash).
#[derive(Debug)]
pub(super) struct IssuerHashes {
    pub(super) by_alg: Vec<(ObjectIdentifier, Vec<u8>, Vec<u8>)>,
}

impl IssuerHashes {
    /// The hashes of an issuer whose subject name encodes as `name_der` and whose public key's
    /// bits are `key_bits`.
    pub(super) fn new(name_der: &[u8], key_bits: &[u8]) -> IssuerHashes {
        let by_alg = HASHES
            .iter()
            .map(|(oid, hash)| {
                (
                    ObjectIdentifier::new_unwrap(oid),
                    hash(name_der),
                    hash(key_bits),
                )
            })
            .collect();
        IssuerHashes { by_alg }
    }
}

/// The responder key and what goes into every response with it.
struct Signer {
    key: IssuerKey,
    key_hash: Vec<u8>,
    cert: x509_cert::Certificate,
    expires: NaiveDateTime,
}

impl Signer {
    fn new(key: IssuerKey) -> Result<Signer, CaError> {
        let key_hash = openssl::sha::sha1(&key.public_key_bits()?).to_vec();
        let cert = x509_cert::Certificate::from_der(key.certificate().der())?;
        let not_after =
            openssl::asn1::Asn1Time::from_unix(0)?.diff(key.certificate().x509().not_after())?;
        let expires = DateTime::<Utc>::from_timestamp(
            i64::from(not_after.days) * 86_400 + i64::from(not_after.secs),
            0,
        )
        .map(|d| d.naive_utc())
        .unwrap_or_default();
        Ok(Signer {
            key,
            key_hash,
            cert,
            expires,
        })
    }
}

/// A request that parsed: its CertIDs (all for our issuer) and its nonce extension, if any.
struct Parsed {
    ids: Vec<(CertId, usize, String)>,
    nonce: Option<Extension>,
}

enum Refusal {
    Malformed,
    Unauthorized,
}

/// The OCSP responder of the issuing CA.
pub struct Responder {
    issuer_id: String,
    issuer: IssuerHashes,
    signer: RwLock<Arc<Signer>>,
    source: Arc<dyn StatusSource>,
    cache: ResponseCache,
    config: OcspConfig,
    inflight: AtomicUsize,
    clock: Arc<dyn Clock>,
    /// The last invalidation poll failed: the database is out of reach.
    degraded: AtomicBool,
    /// The root as issuer: requests for the issuing CA certificate (see `root`).
    root: root::RootIssuer,
}

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Responder")
            .field("issuer", &self.issuer_id)
            .finish_non_exhaustive()
    }
}

fn error_response(status: OcspResponseStatus) -> Vec<u8> {
    // OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED } with no responseBytes.
    vec![0x30, 0x03, 0x0A, 0x01, status as u8]
}

fn hit_answer(hit: cache::Cached, outcome: Outcome) -> Answer {
    Answer {
        der: hit.der,
        outcome,
        statuses: vec![hit.status],
        validity: Some((hit.this_update, hit.next_update)),
        digest: Some(hit.digest),
    }
}

fn error_answer(status: OcspResponseStatus, name: &'static str) -> Answer {
    Answer {
        der: Arc::new(error_response(status)),
        outcome: Outcome::Error(name),
        statuses: Vec::new(),
        validity: None,
        digest: None,
    }
}

/// An OCSP time; one the encoders cannot carry (a stored row altered by hand) fails this
/// answer, never silently becomes another time.
fn generalized(t: NaiveDateTime) -> Result<OcspGeneralizedTime, der::Error> {
    let t = crate::ca::X509Time::from_naive(t)
        .map_err(|_| der::Error::from(der::ErrorKind::DateTime))?;
    Ok(OcspGeneralizedTime(t.to_generalized()?))
}

fn crl_reason(r: RevocationReason) -> CrlReason {
    match r {
        RevocationReason::Unspecified => CrlReason::Unspecified,
        RevocationReason::KeyCompromise => CrlReason::KeyCompromise,
        RevocationReason::AffiliationChanged => CrlReason::AffiliationChanged,
        RevocationReason::Superseded => CrlReason::Superseded,
        RevocationReason::CessationOfOperation => CrlReason::CessationOfOperation,
        RevocationReason::CertificateHold => CrlReason::CertificateHold,
        RevocationReason::PrivilegeWithdrawn => CrlReason::PrivilegeWithdrawn,
    }
}

/// Serial bytes of a CertID as our normalised hex (no leading zero octets).
fn serial_hex(id: &CertId) -> String {
    let bytes = id.serial_number.as_bytes();
    let significant: &[u8] = {
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        bytes.get(skip..).unwrap_or(&[])
    };
    if significant.is_empty() {
        "00".to_owned()
    } else {
        hex::encode_upper(significant)
    }
}

impl Responder {
    /// The responder for `hierarchy`'s issuing CA, answering from `source`.
    pub fn new(
        hierarchy: &Hierarchy,
        source: Arc<dyn StatusSource>,
        config: OcspConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Responder, CaError> {
        let issuing = hierarchy.issuing();
        let cert = x509_cert::Certificate::from_der(issuing.certificate().der())?;
        let name_der = cert.tbs_certificate.subject.to_der()?;
        let key_bits = issuing.public_key_bits()?;
        Ok(Responder {
            issuer_id: issuing.id().to_owned(),
            issuer: IssuerHashes::new(&name_der, &key_bits),
            signer: RwLock::new(Arc::new(Signer::new(hierarchy.ocsp_responder().clone())?)),
            source,
            cache: ResponseCache::new(config.cache_capacity as usize),
            config,
            inflight: AtomicUsize::new(0),
            clock,
            degraded: AtomicBool::new(false),
            root: root::RootIssuer::new(hierarchy.root(), Some(root::issuing_serial(hierarchy)?))?,
        })
    }

    /// The cache (the invalidation task drives it).
    pub fn cache(&self) -> &ResponseCache {
        &self.cache
    }

    fn signer(&self) -> Arc<Signer> {
        match self.signer.read() {
            Ok(s) => Arc::clone(&s),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// When the responder certificate expires.
    pub fn responder_expires(&self) -> NaiveDateTime {
        self.signer().expires
    }

    /// Renew the responder certificate (same key) if less than `renew_before` is left.
    /// Returns whether it did.
    pub fn renew_if_due(
        &self,
        hierarchy: &Hierarchy,
        validity: chrono::Duration,
    ) -> Result<bool, CaError> {
        let now = self.clock.now();
        let signer = self.signer();
        if signer.expires - now.naive_utc() > self.config.renew_before.chrono() {
            return Ok(false);
        }
        let renewed = signer
            .key
            .renew_ocsp_responder(hierarchy.issuing(), validity, now)?;
        let next = Arc::new(Signer::new(renewed)?);
        if let Ok(mut guard) = self.signer.write() {
            *guard = next;
        }
        // Responses carry the responder certificate: drop those with the old one.
        self.cache.clear();
        tracing::info!("renewed the OCSP responder certificate");
        Ok(true)
    }

    fn parse(&self, der: &[u8]) -> Result<Parsed, Refusal> {
        if der.is_empty() || der.len() > MAX_REQUEST_LEN {
            return Err(Refusal::Malformed);
        }
        let request = OcspRequest::from_der(der).map_err(|_| Refusal::Malformed)?;
        let list = &request.tbs_request.request_list;
        if list.is_empty() || list.len() > MAX_CERT_IDS {
            return Err(Refusal::Malformed);
        }
        let nonce = match &request.tbs_request.request_extensions {
            Some(exts) => {
                let mut found = None;
                for ext in exts {
                    if ext.extn_id == OID_NONCE {
                        if ext.extn_value.as_bytes().len() > MAX_NONCE_LEN || found.is_some() {
                            return Err(Refusal::Malformed);
                        }
                        found = Some(Extension {
                            extn_id: OID_NONCE,
                            critical: false,
                            extn_value: ext.extn_value.clone(),
                        });
                    } else if ext.critical {
                        return Err(Refusal::Malformed);
                    }
                }
                found
            }
            None => None,
        };
        let mut ids = Vec::with_capacity(list.len());
        for req in list {
            let id = &req.req_cert;
            let params_ok = id
                .hash_algorithm
                .parameters
                .as_ref()
                .is_none_or(|p| der::Tagged::tag(p) == der::Tag::Null);
            let alg = self.issuer.by_alg.iter().position(|(oid, name, key)| {
                *oid == id.hash_algorithm.oid
                    && name.as_slice() == id.issuer_name_hash.as_bytes()
                    && key.as_slice() == id.issuer_key_hash.as_bytes()
            });
            match alg {
                Some(i) if params_ok => ids.push((id.clone(), i, serial_hex(id))),
                _ => return Err(Refusal::Unauthorized),
            }
        }
        Ok(Parsed { ids, nonce })
    }

    /// Whether `id` names this responder's issuing CA as issuer.
    fn serves(&self, id: &CertId) -> bool {
        self.issuer.by_alg.iter().any(|(oid, name, key)| {
            *oid == id.hash_algorithm.oid
                && name.as_slice() == id.issuer_name_hash.as_bytes()
                && key.as_slice() == id.issuer_key_hash.as_bytes()
        })
    }

    /// The id of the issuing CA it answers for.
    pub fn issuer_id(&self) -> &str {
        &self.issuer_id
    }

    /// Whether the last invalidation poll failed (the database is out of reach).
    pub fn degraded(&self) -> bool {
        self.degraded.load(Ordering::Relaxed)
    }

    /// The cached answer for a single-CertID request without nonce: a fresh one, or, while
    /// degraded, any that is still valid.
    fn cached_answer(&self, alg: usize, serial: &str) -> Option<Answer> {
        let now = self.clock.now().naive_utc();
        if let Some(hit) = self
            .cache
            .get(alg, serial, now, self.config.validity.chrono() / 2)
        {
            return Some(hit_answer(hit, Outcome::CacheHit));
        }
        if self.degraded() {
            return self
                .cache
                .get_valid(alg, serial, now)
                .map(|hit| hit_answer(hit, Outcome::Degraded));
        }
        None
    }

    /// The pre-signed answer to `der`, if the cache has a fresh one (or, while degraded, a
    /// valid one): no database, no signing, nothing that blocks, so the HTTP worker can answer
    /// it without a thread hop. `None` means "ask [`Responder::respond`]".
    pub fn cached(&self, der: &[u8]) -> Option<Answer> {
        self.cached_parsed(&self.parse(der).ok()?)
    }

    /// [`Responder::cached`] of a request this responder parsed.
    fn cached_parsed(&self, parsed: &Parsed) -> Option<Answer> {
        if parsed.nonce.is_some() || parsed.ids.len() != 1 {
            return None;
        }
        let (_, alg, serial) = parsed.ids.first()?;
        self.cached_answer(*alg, serial)
    }

    /// Answer one request (DER). Never fails: junk gets `malformedRequest`, a CertID naming
    /// the root gets the root's own response (see `root`), foreign issuers `unauthorized`, a database outage `tryLater` (unless a valid pre-signed answer is
    /// cached), overload of on-demand signing `tryLater`.
    pub fn respond(&self, der: &[u8]) -> Answer {
        self.respond_parsed(der, self.parse(der))
    }

    /// [`Responder::respond`] with the request (`der`) as this responder parsed it.
    fn respond_parsed(&self, der: &[u8], parsed: Result<Parsed, Refusal>) -> Answer {
        let parsed = match parsed {
            Ok(p) => p,
            Err(Refusal::Malformed) => {
                return error_answer(OcspResponseStatus::MalformedRequest, "malformed_request")
            }
            Err(Refusal::Unauthorized) => {
                // The issuing CA's own certificate: answered with the root's responses.
                let now = self.clock.now().naive_utc();
                return self
                    .root
                    .answer(der, self.source.as_ref(), now)
                    .unwrap_or_else(|| {
                        error_answer(OcspResponseStatus::Unauthorized, "unauthorized")
                    });
            }
        };
        let cacheable = parsed.nonce.is_none() && parsed.ids.len() == 1;
        if let (true, Some((_, alg, serial))) = (cacheable, parsed.ids.first()) {
            if let Some(hit) = self.cached_answer(*alg, serial) {
                return hit;
            }
        }
        if self.degraded() {
            // The status cannot be read: say so at once rather than wait for the pool.
            return error_answer(OcspResponseStatus::TryLater, "try_later");
        }
        if !cacheable
            && self.inflight.fetch_add(1, Ordering::AcqRel)
                >= self.config.max_inflight_signing as usize
        {
            self.inflight.fetch_sub(1, Ordering::AcqRel);
            return error_answer(OcspResponseStatus::TryLater, "try_later");
        }
        let answer = self.sign_fresh(&parsed, cacheable);
        if !cacheable {
            self.inflight.fetch_sub(1, Ordering::AcqRel);
        }
        answer
    }

    fn sign_fresh(&self, parsed: &Parsed, cacheable: bool) -> Answer {
        // Read the invalidation mark before the status: an answer is cached only if no
        // revocation was processed in between (see ResponseCache::insert).
        let mark = self.cache.mark();
        let mut states = Vec::with_capacity(parsed.ids.len());
        for (_, _, serial) in &parsed.ids {
            match self.source.status(&self.issuer_id, serial) {
                Ok(s) => states.push(s),
                Err(e) => {
                    tracing::warn!(error = %e, "OCSP status unavailable");
                    // Before the poll has noticed the outage: a still-valid pre-signed answer
                    // is as good as it was a moment ago.
                    let now = self.clock.now().naive_utc();
                    let kept = parsed
                        .ids
                        .first()
                        .filter(|_| cacheable)
                        .and_then(|(_, alg, serial)| self.cache.get_valid(*alg, serial, now));
                    return match kept {
                        Some(hit) => hit_answer(hit, Outcome::Degraded),
                        None => error_answer(OcspResponseStatus::TryLater, "try_later"),
                    };
                }
            }
        }
        let now = self.clock.now();
        let this_update = DateTime::<Utc>::from_timestamp(now.timestamp(), 0)
            .unwrap_or(now)
            .naive_utc();
        let started = Instant::now();
        let der = match self.build(parsed, &states, this_update) {
            Ok(d) => Arc::new(d),
            // The responder key's token is away: ask the client to come back.
            Err(e @ CaError::KeyUnavailable(_)) => {
                tracing::warn!(error = %e, "OCSP signing key unavailable");
                return error_answer(OcspResponseStatus::TryLater, "try_later");
            }
            Err(e) => {
                tracing::error!(error = %e, "OCSP signing failed");
                return error_answer(OcspResponseStatus::InternalError, "internal_error");
            }
        };
        let signing = started.elapsed();
        let statuses: Vec<&'static str> = states
            .iter()
            .map(|s| match s {
                CertState::Good => "good",
                CertState::Revoked { .. } => "revoked",
                CertState::Unknown => "unknown",
            })
            .collect();
        // The earliest nextUpdate of the answer bounds how long any cache may keep it.
        let next_update = states
            .iter()
            .map(|state| self.next_update(this_update, state))
            .min()
            .unwrap_or(this_update);
        let validity = parsed.nonce.is_none().then_some((this_update, next_update));
        let digest = validity.map(|_| response_digest(&der));
        let mut cached = false;
        if let (true, Some((_, alg, serial)), Some(state), Some(digest)) =
            (cacheable, parsed.ids.first(), states.first(), &digest)
        {
            // Unknown is never cached: the certificate may be committed a moment later.
            if *state != CertState::Unknown {
                cached = self.cache.insert(
                    *alg,
                    serial,
                    cache::Cached {
                        der: Arc::clone(&der),
                        status: statuses.first().copied().unwrap_or("unknown"),
                        this_update,
                        next_update,
                        digest: Arc::clone(digest),
                    },
                    mark,
                );
            }
        }
        Answer {
            der,
            outcome: Outcome::Signed { cached, signing },
            statuses,
            validity,
            digest,
        }
    }

    /// nextUpdate of an answer of `state` made at `this_update`: `unknown` answers get the short
    /// `unknown_validity` (never longer than `validity`, when that is set shorter still), since
    /// the serial may be issued a moment later.
    fn next_update(&self, this_update: NaiveDateTime, state: &CertState) -> NaiveDateTime {
        let validity = match state {
            CertState::Unknown => self.config.unknown_validity.min(self.config.validity),
            CertState::Good | CertState::Revoked { .. } => self.config.validity,
        };
        this_update + validity.chrono()
    }

    fn build(
        &self,
        parsed: &Parsed,
        states: &[CertState],
        this_update: NaiveDateTime,
    ) -> Result<Vec<u8>, CaError> {
        let signer = self.signer();
        let mut responses = Vec::with_capacity(states.len());
        for ((id, _, _), state) in parsed.ids.iter().zip(states) {
            let cert_status = match state {
                CertState::Good => CertStatus::Good(Null),
                CertState::Unknown => CertStatus::Unknown(Null),
                CertState::Revoked { at, reason, .. } => CertStatus::Revoked(RevokedInfo {
                    revocation_time: generalized(*at)?,
                    revocation_reason: reason
                        .filter(|r| *r != RevocationReason::Unspecified)
                        .map(crl_reason),
                }),
            };
            responses.push(SingleResponse {
                cert_id: id.clone(),
                cert_status,
                this_update: generalized(this_update)?,
                next_update: Some(generalized(self.next_update(this_update, state))?),
                single_extensions: None,
            });
        }
        let data = ResponseData {
            version: x509_ocsp::Version::V1,
            responder_id: ResponderId::ByKey(OctetString::new(signer.key_hash.clone())?),
            produced_at: generalized(this_update)?,
            responses,
            response_extensions: parsed.nonce.clone().map(|n| vec![n]),
        };
        let tbs = data.to_der()?;
        let signature = signer.key.sign(&tbs)?;
        let basic = BasicOcspResponse {
            tbs_response_data: data,
            signature_algorithm: signer.key.signature_algorithm(),
            signature: BitString::from_bytes(&signature)?,
            certs: Some(vec![signer.cert.clone()]),
        };
        let response = OcspResponse {
            response_status: OcspResponseStatus::Successful,
            response_bytes: Some(ResponseBytes {
                response_type: OID_BASIC,
                response: OctetString::new(basic.to_der()?)?,
            }),
        };
        Ok(response.to_der()?)
    }

    /// Drop cached answers for certificates whose revocation state changed since the last
    /// call, by the status source's revocation counter. Returns how many serials changed.
    ///
    /// Its outcome decides the degraded mode. When it fails, the cache can no longer learn of
    /// revocations, and the database that would sign new answers is out of reach: the
    /// responder then serves every cached answer until its nextUpdate (never later) and
    /// answers `tryLater` for everything else without trying the database. That exposes no
    /// more than a relying party's own copy of the same response would (RFC 5019 lets it keep
    /// the response until nextUpdate), and a revocation cannot be committed while the one
    /// database is down. The first successful poll applies every change since the last one
    /// and ends the degraded mode.
    pub fn invalidate_changed(&self) -> Result<usize, StoreError> {
        let result = self.apply_changes();
        self.set_degraded(result.is_err());
        result
    }

    /// The invalidation poll did not finish in time: the database does not answer, which
    /// is as good as failed (degraded mode until a poll succeeds).
    pub fn poll_overdue(&self) {
        self.set_degraded(true);
    }

    fn set_degraded(&self, degraded: bool) {
        if self.degraded.swap(degraded, Ordering::Relaxed) != degraded {
            if degraded {
                tracing::warn!(
                    "OCSP: the database is out of reach; serving pre-signed answers until their nextUpdate, tryLater for the rest"
                );
            } else {
                tracing::info!("OCSP: the database is back; signing again");
            }
        }
    }

    fn apply_changes(&self) -> Result<usize, StoreError> {
        let seen = self.cache.seen_seq();
        let current = self.source.revocation_mark()?;
        if current <= seen {
            return Ok(0);
        }
        let changed = self.source.changed_between(seen, current)?;
        self.cache.invalidate(&changed, current);
        Ok(changed.len())
    }

    /// Start the invalidation mark at the status source's current revocation counter.
    pub fn prime(&self) -> Result<(), StoreError> {
        let current = self.source.revocation_mark()?;
        self.cache.invalidate(&[], current);
        Ok(())
    }
}

/// One issuer's responder, with its hierarchy (the responder certificate is renewed by its
/// issuing CA) and the validity of a renewed responder certificate.
struct IssuerResponder {
    hierarchy: Arc<Hierarchy>,
    renewal_validity: chrono::Duration,
    responder: Responder,
}

/// The OCSP responders of every issuing CA this instance operates, behind the one `/ocsp`
/// URL: a request goes to the responder of the issuer its first CertID names — by the
/// issuer's name and key hashes, or, for an issuing CA's own certificate, by its root's and
/// its serial — each answering with its own delegated responder. A request is parsed once on
/// its common way: each responder in turn reads it as its own or says it is not
/// (`unauthorized`), and the first that reads it answers from what it read. A request no
/// issuer of ours reads as its own (another CA's, an issuing CA's own certificate, CertIDs
/// of several issuers at once) is parsed again to find the root that answers for it, or gets
/// `unauthorized` from `[ca]`'s responder.
pub struct Responders {
    list: Vec<IssuerResponder>,
}

impl std::fmt::Debug for Responders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.list.iter().map(|r| &r.responder))
            .finish()
    }
}

impl Responders {
    /// Every issuer's responder: `(hierarchy, validity of a renewed responder certificate,
    /// responder)`, `[ca]`'s first. `None` when the list is empty.
    pub fn new(list: Vec<(Arc<Hierarchy>, chrono::Duration, Responder)>) -> Option<Responders> {
        if list.is_empty() {
            return None;
        }
        Some(Responders {
            list: list
                .into_iter()
                .map(|(hierarchy, renewal_validity, responder)| IssuerResponder {
                    hierarchy,
                    renewal_validity,
                    responder,
                })
                .collect(),
        })
    }

    /// Every responder, `[ca]`'s first.
    pub fn iter(&self) -> impl Iterator<Item = &Responder> {
        self.list.iter().map(|r| &r.responder)
    }

    /// The responder of the issuer with id `issuer_id`.
    pub fn get(&self, issuer_id: &str) -> Option<&Responder> {
        self.iter().find(|r| r.issuer_id == issuer_id)
    }

    /// The responder that answers `der`, with the request as that responder parsed it: the
    /// first that reads it as its own, or the first that refuses it as malformed; else (no
    /// issuer of ours names it) [`Responders::pick`]'s choice and its refusal.
    fn route(&self, der: &[u8]) -> Option<(&Responder, Result<Parsed, Refusal>)> {
        for r in self.iter() {
            match r.parse(der) {
                Err(Refusal::Unauthorized) => continue,
                parsed => return Some((r, parsed)),
            }
        }
        Some((self.pick(der)?, Err(Refusal::Unauthorized)))
    }

    fn pick(&self, der: &[u8]) -> Option<&Responder> {
        let first = self.list.first().map(|r| &r.responder)?;
        if self.list.len() == 1 || der.len() > MAX_REQUEST_LEN {
            return Some(first);
        }
        let Ok(request) = OcspRequest::from_der(der) else {
            return Some(first);
        };
        let Some(id) = request
            .tbs_request
            .request_list
            .first()
            .map(|r| &r.req_cert)
        else {
            return Some(first);
        };
        self.iter()
            .find(|r| r.serves(id))
            .or_else(|| self.iter().find(|r| r.root.names_issuing(id)))
            .or(Some(first))
    }

    /// [`Responder::cached`] of the responder the request names.
    pub fn cached(&self, der: &[u8]) -> Option<Answer> {
        match self.route(der)? {
            (r, Ok(parsed)) => r.cached_parsed(&parsed),
            (_, Err(_)) => None,
        }
    }

    /// [`Responder::respond`] of the responder the request names.
    pub fn respond(&self, der: &[u8]) -> Answer {
        match self.route(der) {
            Some((r, parsed)) => r.respond_parsed(der, parsed),
            None => error_answer(OcspResponseStatus::InternalError, "internal_error"),
        }
    }

    /// [`Responder::invalidate_changed`] of every responder; the first failure, after all
    /// ran.
    pub fn invalidate_changed(&self) -> Result<usize, StoreError> {
        let mut changed = 0;
        let mut failed = None;
        for r in self.iter() {
            match r.invalidate_changed() {
                Ok(n) => changed += n,
                Err(e) => failed = failed.or(Some(e)),
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(changed),
        }
    }

    /// [`Responder::poll_overdue`] of every responder.
    pub fn poll_overdue(&self) {
        self.iter().for_each(Responder::poll_overdue);
    }

    /// Whether any responder is degraded (they share the database).
    pub fn degraded(&self) -> bool {
        self.iter().any(Responder::degraded)
    }

    /// [`Responder::prime`] of every responder.
    pub fn prime(&self) -> Result<(), StoreError> {
        self.iter().try_for_each(Responder::prime)
    }

    /// [`Responder::renew_if_due`] of every responder, by its own issuing CA; the ids of those
    /// renewed.
    pub fn renew_if_due(&self) -> Result<Vec<String>, CaError> {
        let mut renewed = Vec::new();
        for r in &self.list {
            if r.responder.renew_if_due(&r.hierarchy, r.renewal_validity)? {
                renewed.push(r.responder.issuer_id.clone());
            }
        }
        Ok(renewed)
    }
}

#[cfg(test)]
mod tests;
