//! Invalidity dates (RFC 5280 §5.3.2) as holders and operators give them.
//!
//! Owns the rules an invalidity date must meet before it is stored, because a stored date goes
//! into every later CRL and must never be one the encoders refuse: an RFC 3339 time, not in
//! the future, not before the certificate's notBefore (a certificate cannot have become invalid
//! before it was valid; "compromised before issuance" is said with notBefore itself), and in
//! the range a CRL can carry. Must never: let a date through unchecked, or clamp one silently.

use chrono::{DateTime, Utc};

use super::RaError;
use crate::ca::X509Time;
use crate::store::Certificate;

/// An invalidity date checked against its certificate and the clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidityDate(X509Time);

impl InvalidityDate {
    /// Read an RFC 3339 time as given on the wire or the command line.
    pub fn parse(text: &str) -> Result<DateTime<Utc>, RaError> {
        DateTime::parse_from_rfc3339(text.trim())
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| {
                RaError::InvalidityDateInvalid(
                    "must be an RFC 3339 time such as 2026-11-29T10:00:00Z".to_owned(),
                )
            })
    }

    /// Check `date` for `cert`, revoked at `now`.
    pub fn check(
        date: DateTime<Utc>,
        cert: &Certificate,
        now: DateTime<Utc>,
    ) -> Result<Self, RaError> {
        Self::check_until(date, cert, now, "now")
    }

    /// Check a corrected `date` for `cert`, which was revoked at `revoked_at`.
    pub fn check_correction(
        date: DateTime<Utc>,
        cert: &Certificate,
        revoked_at: DateTime<Utc>,
    ) -> Result<Self, RaError> {
        Self::check_until(date, cert, revoked_at, "the revocation")
    }

    fn check_until(
        date: DateTime<Utc>,
        cert: &Certificate,
        latest: DateTime<Utc>,
        what: &str,
    ) -> Result<Self, RaError> {
        let not_before = cert.not_before.and_utc();
        if date > latest {
            return Err(RaError::InvalidityDateInvalid(format!(
                "{} is later than {what} ({})",
                date.to_rfc3339(),
                latest.to_rfc3339()
            )));
        }
        if date < not_before {
            return Err(RaError::InvalidityDateInvalid(format!(
                "{} is before the certificate's notBefore {}; give notBefore for a key that was \
                 compromised before the certificate was issued",
                date.to_rfc3339(),
                not_before.to_rfc3339()
            )));
        }
        X509Time::new(date)
            .map(InvalidityDate)
            .map_err(|e| RaError::InvalidityDateInvalid(e.to_string()))
    }

    /// The date, in whole seconds.
    pub fn get(self) -> DateTime<Utc> {
        self.0.get()
    }
}

/// A stored revocation that CRLs cannot carry as it is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RevocationDefect {
    /// The certificate.
    pub serial: String,
    /// Its issuer.
    pub issuer_id: String,
    /// What is wrong.
    pub problem: &'static str,
    /// The stored value at fault (RFC 3339, or the text as stored).
    pub value: String,
    /// Whether `tamga crl check --repair` corrects it (by removing the invalidity date).
    pub repairable: bool,
}

impl super::Registrar {
    /// Every stored revocation a CRL cannot carry as it is: an invalidity date outside the
    /// encodable range or after the revocation (rows written before dates were checked where
    /// they enter; such an entry is published without its invalidity date), a revocation date
    /// a CRL cannot encode (that CRL fails: the CRL module never leaves a revocation out).
    pub fn revocation_defects(&self) -> Result<Vec<RevocationDefect>, RaError> {
        const PAGE: i64 = 5_000;
        let mut defects = Vec::new();
        let mut after = String::new();
        loop {
            let page = self
                .store
                .read(|tx| tx.revoked_certificates_page(&after, PAGE))?;
            let Some(last) = page.last() else { break };
            after.clone_from(&last.serial);
            for cert in &page {
                if let Some(at) = cert.revoked_at {
                    if X509Time::from_naive(at).is_err() {
                        defects.push(RevocationDefect {
                            serial: cert.serial.clone(),
                            issuer_id: cert.issuer_id.clone(),
                            problem: "revocation_date_unencodable",
                            value: at.and_utc().to_rfc3339(),
                            repairable: false,
                        });
                    }
                }
                if let Some(inv) = cert.invalidity_date {
                    if crate::ca::carried_invalidity_date(inv, cert.revoked_at).is_none() {
                        defects.push(RevocationDefect {
                            serial: cert.serial.clone(),
                            issuer_id: cert.issuer_id.clone(),
                            problem: if X509Time::from_naive(inv).is_err() {
                                "invalidity_date_unencodable"
                            } else {
                                "invalidity_date_after_revocation"
                            },
                            value: inv.and_utc().to_rfc3339(),
                            repairable: true,
                        });
                    }
                }
            }
            if (page.len() as i64) < PAGE {
                break;
            }
        }
        Ok(defects)
    }

    /// Correct a revoked certificate's invalidity date (`None` removes it), as an operator:
    /// the new date must meet the rules of [`InvalidityDate::check_correction`]. One transaction takes a new revocation-counter value (the next delta CRL lists
    /// the corrected entry, OCSP caches drop it) and appends `certificate.revocation_corrected`
    /// with the old and new values to the audit log.
    pub fn correct_invalidity_date(
        &self,
        serial: &crate::ca::Serial,
        date: Option<DateTime<Utc>>,
        operator: &str,
    ) -> Result<Certificate, RaError> {
        let at = crate::store::db_time(self.clock.now());
        self.store.write(|tx| -> Result<Certificate, RaError> {
            let cert = tx
                .certificate(serial.as_str())?
                .filter(|c| c.status != crate::store::CertificateStatus::Reserved)
                .ok_or_else(|| RaError::CertificateNotFound(serial.to_string()))?;
            let Some(revoked_at) = cert
                .revoked_at
                .filter(|_| cert.status == crate::store::CertificateStatus::Revoked)
            else {
                return Err(RaError::NotRevoked(serial.to_string()));
            };
            let new = date
                .map(|d| InvalidityDate::check_correction(d, &cert, revoked_at.and_utc()))
                .transpose()?
                .map(|d| crate::store::db_time(d.get()));
            let seq = tx.next_revocation_seq()?;
            if !tx.set_invalidity_date(&cert.serial, new, seq)? {
                return Err(RaError::NotRevoked(serial.to_string()));
            }
            tx.append_audit(&crate::store::AuditEntry {
                at,
                actor: format!("operator:{operator}"),
                action: "certificate.revocation_corrected".to_owned(),
                subject: cert.serial.clone(),
                details: serde_json::json!({
                    "issuer": cert.issuer_id,
                    "invalidity_date_was": cert.invalidity_date.map(|d| d.and_utc().to_rfc3339()),
                    "invalidity_date": new.map(|d| d.and_utc().to_rfc3339()),
                    "revocation_seq": seq,
                }),
            })?;
            tx.certificate(&cert.serial)?
                .ok_or_else(|| RaError::CertificateNotFound(serial.to_string()))
        })
    }
}
