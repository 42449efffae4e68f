//! Certificate revocation lists of the issuing CA: full CRLs and delta CRLs (RFC 5280 §5).
//!
//! Owns: the CRL number sequence (shared by full and delta CRLs, taken under a per-issuer
//! database lock so that with several instances exactly one produces each number), building
//! the TBSCertList by streaming revoked entries from the store in serial order into the one
//! buffer that becomes the signed CRL, and deciding when a new CRL is due. Must never: publish
//! a CRL that omits a committed revocation it claims to cover, reuse or lower a CRL number, or
//! sign with anything but the issuing CA through [`crate::ca::Issuer::sign_crl`].
//!
//! Coverage is tracked by the revocation counter: every revocation or release takes the next
//! counter value in commit order, and each CRL stores the highest value it reflects. A delta
//! CRL lists every change after its base full CRL's value (`removeFromCRL` for certificates
//! released from hold, dated with the hold's revocation date: the store keeps it in `held_at`
//! when the hold is released). Revocations known only by serial (a restore found them on
//! published CRLs, `restore`) come with the store's pages and take counter values too: they
//! are listed like any revocation, and never leave the full CRL (their expiry is unknown).

use std::sync::{Arc, Mutex};

use chrono::{DateTime, NaiveDateTime, Utc};
use der::asn1::{OctetString, Uint};
use der::{Encode, Tag};
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, BaseCrlNumber, CrlNumber, FreshestCrl};
use x509_cert::ext::Extension;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::Time;

use crate::ca::{carried_invalidity_date, CaError, Issuer, X509Time};
use crate::clock::Clock;
use crate::config::CrlConfig;
use crate::store::{db_time, CrlInfo, RevocationEntry, Store, StoreError, StoredCrl, Tx};
use crate::vocab::RevocationReason;

/// Entries read from the database per query while a CRL is built.
const PAGE: i64 = 5_000;
/// CRLReason removeFromCRL, for delta CRLs listing a certificate released from hold.
const REMOVE_FROM_CRL: u8 = 8;

const OID_CRL_REASON: const_oid::ObjectIdentifier =
    const_oid::ObjectIdentifier::new_unwrap("2.5.29.21");
const OID_INVALIDITY_DATE: const_oid::ObjectIdentifier =
    const_oid::ObjectIdentifier::new_unwrap("2.5.29.24");
const OID_CRL_NUMBER: const_oid::ObjectIdentifier =
    const_oid::ObjectIdentifier::new_unwrap("2.5.29.20");
const OID_DELTA_CRL_INDICATOR: const_oid::ObjectIdentifier =
    const_oid::ObjectIdentifier::new_unwrap("2.5.29.27");
const OID_FRESHEST_CRL: const_oid::ObjectIdentifier =
    const_oid::ObjectIdentifier::new_unwrap("2.5.29.46");
const OID_AUTHORITY_KEY_ID: const_oid::ObjectIdentifier =
    const_oid::ObjectIdentifier::new_unwrap("2.5.29.35");

/// Full or delta.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrlKind {
    /// Every revoked, unexpired certificate.
    Full,
    /// Changes since the newest full CRL.
    Delta,
}

/// A CRL failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CrlError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Encoding or signing failed.
    #[error(transparent)]
    Ca(#[from] CaError),
    /// An ASN.1 encoding failed.
    #[error("CRL encoding failed: {0}")]
    Der(#[from] der::Error),
    /// A stored serial or time could not be encoded.
    #[error("cannot encode CRL entry {0}")]
    Entry(String),
}

/// Makes and stores the issuing CA's CRLs.
#[derive(Clone)]
pub struct CrlPublisher {
    store: Store,
    issuer: Arc<Issuer>,
    clock: Arc<dyn Clock>,
    config: CrlConfig,
    health: Arc<Mutex<CrlHealth>>,
}

/// How this instance's CRL publication went: what `/readyz` and the metrics report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CrlHealth {
    /// Since when every attempt to publish failed (`None`: the last attempt succeeded).
    pub failing_since: Option<DateTime<Utc>>,
    /// The last failure, for the log and the operator (never sent to clients).
    pub last_error: Option<String>,
    /// Attempts that failed in a row.
    pub consecutive_failures: u64,
    /// The newest full CRL this instance made.
    pub full: Option<MadeCrl>,
    /// The newest delta CRL this instance made.
    pub delta: Option<MadeCrl>,
}

/// A CRL this instance made, and how many entries it listed without their stored invalidity
/// date (`tamga crl check --repair` corrects such rows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MadeCrl {
    /// Its number.
    pub number: i64,
    /// Entries listed without their invalidity date.
    pub omitted_invalidity_dates: u64,
}

impl CrlHealth {
    /// Entries listed without their invalidity date in the newest full or delta CRL this
    /// instance made (the larger count).
    pub fn omitted_invalidity_dates(&self) -> u64 {
        [self.full, self.delta]
            .iter()
            .flatten()
            .map(|m| m.omitted_invalidity_dates)
            .max()
            .unwrap_or(0)
    }

    /// Whether the newest full CRL (numbered `newest_full`) or delta CRL (`newest_delta`)
    /// left out invalidity dates, as far as this instance knows: it knows only the CRLs it made
    /// itself, so one made since by another instance or `tamga crl publish` counts as clean.
    pub fn newest_is_degraded(&self, newest_full: Option<i64>, newest_delta: Option<i64>) -> bool {
        let degraded = |made: Option<MadeCrl>, newest: Option<i64>| {
            made.is_some_and(|m| m.omitted_invalidity_dates > 0 && Some(m.number) >= newest)
        };
        degraded(self.full, newest_full) || degraded(self.delta, newest_delta)
    }
}

impl std::fmt::Debug for CrlPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CrlPublisher")
            .field("issuer", &self.issuer.id())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// DER tag + length header.
fn header(tag: u8, len: usize) -> Vec<u8> {
    let mut out = vec![tag];
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        let significant = bytes.get(skip..).unwrap_or(&[]);
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
    out
}

/// thisUpdate, nextUpdate and revocationDate: UTCTime up to 2049, GeneralizedTime after.
fn crl_time(t: NaiveDateTime) -> Result<Time, CrlError> {
    Ok(X509Time::from_naive(t)
        .map_err(|e| CrlError::Entry(e.to_string()))?
        .to_time()?)
}

fn ext<T: Encode>(
    oid: const_oid::ObjectIdentifier,
    critical: bool,
    value: &T,
) -> Result<Extension, CrlError> {
    Ok(Extension {
        extn_id: oid,
        critical,
        extn_value: OctetString::new(value.to_der()?)?,
    })
}

/// One revokedCertificates entry, DER, and whether its invalidity date had to be left out.
///
/// One stored row must not stop every CRL: an invalidity date the encoders cannot carry (a
/// row written before dates were checked where they enter) is left out of the entry — the
/// revocation itself is listed — and reported; `tamga crl check --repair` corrects the row. A
/// serial or revocation date that cannot be encoded fails the CRL: leaving a revocation out
/// is never an option.
fn entry_der(e: &RevocationEntry, released: bool) -> Result<(Vec<u8>, bool), CrlError> {
    let bad = || CrlError::Entry(e.serial.clone());
    let serial_bytes = hex::decode(&e.serial).map_err(|_| bad())?;
    let mut encoded = Vec::with_capacity(serial_bytes.len() + 1);
    if serial_bytes.first().is_some_and(|b| b & 0x80 != 0) {
        encoded.push(0);
    }
    encoded.extend_from_slice(&serial_bytes);
    let serial = SerialNumber::new(&encoded)?;
    let mut extensions = Vec::new();
    let (date, code) = if released {
        // removeFromCRL: the hold is lifted. RFC 5280 has no placeholder date: the entry
        // carries the hold's own revocation date, kept when the hold was released.
        (e.held_at, Some(REMOVE_FROM_CRL))
    } else {
        let reason = e
            .reason
            .as_deref()
            .and_then(RevocationReason::parse)
            .ok_or_else(bad)?;
        // RFC 5280: reasonCode unspecified SHOULD be absent.
        let code = (reason != RevocationReason::Unspecified).then(|| reason.code());
        (e.revoked_at, code)
    };
    if let Some(code) = code {
        // CRLReason ::= ENUMERATED
        let enumerated = der::asn1::AnyRef::new(Tag::Enumerated, std::slice::from_ref(&code))?;
        extensions.push(ext(OID_CRL_REASON, false, &enumerated)?);
    }
    let mut omitted = false;
    if let (Some(inv), false) = (e.invalidity_date, released) {
        match carried_invalidity_date(inv, e.revoked_at) {
            Some(t) => extensions.push(ext(OID_INVALIDITY_DATE, false, &t.to_generalized()?)?),
            None => omitted = true,
        }
    }
    // Never a made-up date: a row without one (no release writes one, and the migration that
    // brought `held_at` filled it for every earlier release) fails the CRL, like a date no CRL
    // can encode.
    let date = date.ok_or_else(|| CrlError::Entry(format!("{}: no revocation date", e.serial)))?;
    let revoked = x509_cert::crl::RevokedCert {
        serial_number: serial,
        revocation_date: crl_time(date)
            .map_err(|_| CrlError::Entry(format!("{}: revocation date {date}", e.serial)))?,
        crl_entry_extensions: (!extensions.is_empty()).then_some(extensions),
    };
    Ok((revoked.to_der()?, omitted))
}

impl CrlPublisher {
    /// A publisher for `issuer`'s CRLs.
    pub fn new(
        store: Store,
        issuer: Arc<Issuer>,
        clock: Arc<dyn Clock>,
        config: CrlConfig,
    ) -> Self {
        CrlPublisher {
            store,
            issuer,
            clock,
            config,
            health: Arc::new(Mutex::new(CrlHealth::default())),
        }
    }

    /// How this instance's publication is going.
    pub fn health(&self) -> CrlHealth {
        self.health
            .lock()
            .map(|h| h.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    /// Record one attempt to publish a CRL of `kind`: the CRL it made (if one was due), or
    /// its failure.
    fn record(&self, kind: CrlKind, outcome: Result<Option<MadeCrl>, &CrlError>) {
        let mut health = self
            .health
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match outcome {
            Ok(made) => {
                health.failing_since = None;
                health.last_error = None;
                health.consecutive_failures = 0;
                if made.is_some() {
                    match kind {
                        CrlKind::Full => health.full = made,
                        CrlKind::Delta => health.delta = made,
                    }
                }
            }
            // A database outage is the database's problem, reported as such; it says nothing
            // about whether CRLs can be made.
            Err(CrlError::Store(e)) if e.is_unavailable() => {}
            Err(e) => {
                health.failing_since.get_or_insert_with(|| self.clock.now());
                health.last_error = Some(e.to_string());
                health.consecutive_failures += 1;
            }
        }
    }

    /// The issuing CA's id.
    pub fn issuer_id(&self) -> &str {
        self.issuer.id()
    }

    /// Whether a new CRL of `kind` is due, judged from what is stored.
    fn due(&self, tx: &mut Tx<'_>, kind: CrlKind, now: NaiveDateTime) -> Result<bool, CrlError> {
        let id = self.issuer.id();
        let full = tx.latest_crl_info(id, false)?;
        match kind {
            CrlKind::Full => Ok(match full {
                None => true,
                Some(f) => now - f.this_update >= self.config.full_interval.chrono(),
            }),
            CrlKind::Delta => {
                let Some(full) = full else { return Ok(false) };
                let seq = tx.current_revocation_seq()?;
                Ok(match tx.latest_crl_info(id, true)? {
                    None => true,
                    Some(d) => {
                        d.crl_number < full.crl_number
                            || d.covered_seq < seq
                            || now - d.this_update >= self.config.delta_interval.chrono()
                    }
                })
            }
        }
    }

    /// Publish whatever is due: the full CRL on its schedule, the delta CRL after a revocation
    /// or on its schedule. Cheap when nothing is due (one read). Returns what was published.
    pub fn publish_due(&self) -> Result<Vec<(CrlKind, CrlInfo)>, CrlError> {
        let now = db_time(self.clock.now());
        let (full_due, delta_due) = self.store.read(|tx| -> Result<_, CrlError> {
            Ok((
                self.due(tx, CrlKind::Full, now)?,
                self.due(tx, CrlKind::Delta, now)?,
            ))
        })?;
        let mut published = Vec::new();
        if full_due {
            if let Some(info) = self.publish(CrlKind::Full, false)? {
                published.push((CrlKind::Full, info));
            }
        }
        if full_due || delta_due {
            if let Some(info) = self.publish(CrlKind::Delta, false)? {
                published.push((CrlKind::Delta, info));
            }
        }
        Ok(published)
    }

    /// Make, sign and store the next CRL of `kind` (a delta needs a full CRL to refer to:
    /// without one, a full CRL is made first). Unless `force`, does nothing when another
    /// instance already made one that is not due yet. Runs under the issuer's CRL lock, so
    /// every number is produced exactly once.
    pub fn publish(&self, kind: CrlKind, force: bool) -> Result<Option<CrlInfo>, CrlError> {
        if kind == CrlKind::Delta
            && self
                .store
                .read(|tx| tx.latest_crl_info(self.issuer.id(), false))?
                .is_none()
        {
            self.publish(CrlKind::Full, true)?;
        }
        let result = self.publish_one(kind, force);
        let made = result.as_ref().map(|made| {
            made.as_ref().map(|(info, omitted)| MadeCrl {
                number: info.crl_number,
                omitted_invalidity_dates: *omitted,
            })
        });
        self.record(kind, made);
        result.map(|made| made.map(|(info, _)| info))
    }

    /// Make, sign and store one CRL of `kind`, with the count of entries listed without their
    /// invalidity date.
    fn publish_one(&self, kind: CrlKind, force: bool) -> Result<Option<(CrlInfo, u64)>, CrlError> {
        // Alone: a CRL of many entries takes a while to build and sign, and the writes before
        // it (issuances) should not wait for it to be answered.
        self.store
            .write_alone(|tx| -> Result<Option<(CrlInfo, u64)>, CrlError> {
                let id = self.issuer.id();
                tx.lock_crl_issuer(id)?;
                let now = self.clock.now();
                let now = DateTime::<Utc>::from_timestamp(now.timestamp(), 0).unwrap_or(now);
                if !force && !self.due(tx, kind, now.naive_utc())? {
                    return Ok(None);
                }
                let number = tx.last_crl_number(id)?.unwrap_or(0) + 1;
                let covered = tx.current_revocation_seq()?;
                let base = match kind {
                    CrlKind::Full => None,
                    CrlKind::Delta => tx.latest_crl_info(id, false)?,
                };
                let validity = match kind {
                    CrlKind::Full => self.config.validity,
                    CrlKind::Delta => self.config.delta_validity,
                };
                let this_update = now.naive_utc();
                let next_update = (now + validity.chrono()).naive_utc();
                let AssembledCrl {
                    der,
                    omitted_invalidity_dates,
                } = self.build(tx, number, base.as_ref(), covered, this_update, next_update)?;
                let stored = StoredCrl {
                    issuer_id: id.to_owned(),
                    crl_number: number,
                    is_delta: kind == CrlKind::Delta,
                    base_crl_number: base.as_ref().map(|b| b.crl_number),
                    this_update,
                    next_update,
                    der,
                    created_at: db_time(self.clock.now()),
                    covered_seq: covered,
                };
                tx.insert_crl(&stored)?;
                tx.append_audit(&crate::store::AuditEntry {
                    at: stored.created_at,
                    actor: "system".to_owned(),
                    action: "crl.published".to_owned(),
                    subject: id.to_owned(),
                    details: serde_json::json!({
                        "crl_number": number,
                        "delta": stored.is_delta,
                        "base_crl_number": stored.base_crl_number,
                        "covered_seq": covered,
                    }),
                })?;
                tracing::info!(
                    issuer = id,
                    number,
                    delta = stored.is_delta,
                    covered,
                    "published a CRL"
                );
                Ok(Some((
                    CrlInfo {
                        crl_number: number,
                        this_update,
                        next_update,
                        covered_seq: covered,
                    },
                    omitted_invalidity_dates,
                )))
            })
    }

    /// Build and sign this issuer's CRL number `number`: a full CRL (`base` = None) or a
    /// delta on `base`.
    fn build(
        &self,
        tx: &mut Tx<'_>,
        number: i64,
        base: Option<&CrlInfo>,
        covered: i64,
        this_update: NaiveDateTime,
        next_update: NaiveDateTime,
    ) -> Result<AssembledCrl, CrlError> {
        let id = self.issuer.id().to_owned();
        let extra = match base {
            None => ext(
                OID_FRESHEST_CRL,
                false,
                &FreshestCrl(vec![DistributionPoint {
                    distribution_point: Some(DistributionPointName::FullName(vec![
                        GeneralName::UniformResourceIdentifier(der::asn1::Ia5String::new(
                            self.issuer.delta_crl_url(),
                        )?),
                    ])),
                    reasons: None,
                    crl_issuer: None,
                }]),
            )?,
            Some(b) => ext(
                OID_DELTA_CRL_INDICATOR,
                true,
                &BaseCrlNumber(Uint::new(&b.crl_number.to_be_bytes())?),
            )?,
        };
        let signer = CrlSigner {
            name: self.issuer.issuer_name(),
            authority_key_id: self.issuer.authority_key_id(),
            algorithm: self.issuer.signature_algorithm(),
            sign: &|tbs| self.issuer.sign_crl(tbs),
        };
        let base_seq = base.map(|b| b.covered_seq);
        assemble(
            &signer,
            number,
            this_update,
            next_update,
            vec![extra],
            |after| {
                Ok(match base_seq {
                    None => tx.revoked_page(&id, after, covered, this_update, PAGE)?,
                    Some(s) => tx.changed_page(&id, after, s, covered, this_update, PAGE)?,
                })
            },
        )
    }
}

/// Signs a to-be-signed structure.
pub type SignFn<'a> = dyn Fn(&[u8]) -> Result<Vec<u8>, CaError> + 'a;

/// Who signs a CRL: the name and key identifier it is issued under, and the signing call.
pub struct CrlSigner<'a> {
    /// The issuer's name, as its certificate encodes it.
    pub name: &'a x509_cert::name::Name,
    /// The issuer's subject key identifier (the CRL's AKI).
    pub authority_key_id: &'a [u8],
    /// The signature algorithm.
    pub algorithm: &'a spki::AlgorithmIdentifierOwned,
    /// Signs the TBSCertList.
    pub sign: &'a SignFn<'a>,
}

/// Build and sign a CRL into one buffer: entries come page by page from `next_page` (given
/// the last serial of the previous page) and are appended after a reserved prefix; the
/// headers are written into the prefix at the end and its unused part dropped in place, so
/// the CRL is never held twice.
pub fn assemble(
    signer: &CrlSigner<'_>,
    number: i64,
    this_update: NaiveDateTime,
    next_update: NaiveDateTime,
    extra_extensions: Vec<Extension>,
    mut next_page: impl FnMut(&str) -> Result<Vec<RevocationEntry>, CrlError>,
) -> Result<AssembledCrl, CrlError> {
    let mut small = Vec::new();
    small.extend(1u8.to_der()?); // version v2
    small.extend(signer.algorithm.to_der()?);
    small.extend(signer.name.to_der()?);
    small.extend(crl_time(this_update)?.to_der()?);
    small.extend(crl_time(next_update)?.to_der()?);
    // tbs header (≤ 6) + small + entries header (≤ 6), plus room for the outer header.
    let reserve = 6 + small.len() + 6 + 6;
    let mut buf = vec![0u8; reserve];
    let mut omitted_invalidity_dates = 0u64;
    let mut first_omitted = String::new();
    let mut after = String::new();
    loop {
        let page = next_page(&after)?;
        let Some(last) = page.last() else { break };
        after.clone_from(&last.serial);
        for e in &page {
            let released = e.status != "revoked";
            let (entry, omitted) = entry_der(e, released)?;
            if omitted {
                if omitted_invalidity_dates == 0 {
                    first_omitted.clone_from(&e.serial);
                }
                omitted_invalidity_dates += 1;
            }
            buf.extend(entry);
        }
        if (page.len() as i64) < PAGE {
            break;
        }
    }
    let entries_len = buf.len() - reserve;
    if omitted_invalidity_dates > 0 {
        tracing::warn!(
            entries = omitted_invalidity_dates,
            first = %first_omitted,
            "stored invalidity dates no CRL can carry: these entries are listed without them (tamga crl check --repair)"
        );
    }

    let mut extensions = vec![
        ext(
            OID_AUTHORITY_KEY_ID,
            false,
            &AuthorityKeyIdentifier {
                key_identifier: Some(OctetString::new(signer.authority_key_id.to_vec())?),
                authority_cert_issuer: None,
                authority_cert_serial_number: None,
            },
        )?,
        ext(
            OID_CRL_NUMBER,
            false,
            &CrlNumber(Uint::new(&number.to_be_bytes())?),
        )?,
    ];
    extensions.extend(extra_extensions);
    let mut ext_seq = Vec::new();
    for e in &extensions {
        ext_seq.extend(e.to_der()?);
    }
    let mut ext_block = header(0x30, ext_seq.len());
    ext_block.extend(ext_seq);
    let mut tagged = header(0xA0, ext_block.len());
    tagged.extend(ext_block);
    buf.extend(tagged.iter());

    let entries_header = if entries_len > 0 {
        header(0x30, entries_len)
    } else {
        Vec::new()
    };
    let content_len = small.len() + entries_header.len() + entries_len + tagged.len();
    let mut prefix = header(0x30, content_len);
    prefix.extend(&small);
    prefix.extend(&entries_header);
    let start = reserve - prefix.len();
    buf.get_mut(start..reserve)
        .ok_or_else(|| CrlError::Entry("prefix".to_owned()))?
        .copy_from_slice(&prefix);

    let signature = (signer.sign)(
        buf.get(start..)
            .ok_or_else(|| CrlError::Entry("tbs".to_owned()))?,
    )?;
    buf.extend(signer.algorithm.to_der()?);
    buf.extend(der::asn1::BitString::from_bytes(&signature)?.to_der()?);
    let outer = header(0x30, buf.len() - start);
    let begin = start - outer.len();
    buf.get_mut(begin..start)
        .ok_or_else(|| CrlError::Entry("outer".to_owned()))?
        .copy_from_slice(&outer);
    buf.drain(..begin);
    Ok(AssembledCrl {
        der: buf,
        omitted_invalidity_dates,
    })
}

/// A signed CRL, and what it had to leave out.
#[derive(Debug)]
pub struct AssembledCrl {
    /// The CRL, DER.
    pub der: Vec<u8>,
    /// Entries listed without their stored invalidity date (see
    /// [`carried_invalidity_date`]).
    pub omitted_invalidity_dates: u64,
}

pub mod issuer;
pub mod restore;
pub mod root;

#[cfg(test)]
mod tests;
