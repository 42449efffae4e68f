//! What the CA signs and what it gives back: [`ApprovedRequest`] (a key from a validated CSR
//! and a subject the RA verified), [`PreparedCertificate`] (the fixed to-be-signed bytes with
//! their reserved serial) and [`ToBeSigned`] (the part the signature needs). These are the
//! CA's own types: the caller decides how to store them. Must never: take a raw CSR, or be
//! made from anything but a [`ValidatedCsr`] and a verified subject.

use chrono::{DateTime, Utc};

use crate::csr::{SubjectKeyType, ValidatedCsr};
use crate::email::EmailAddress;
use crate::key_identity::KeyIdentity;
use crate::vocab::CertificateKind;

/// The subject of a certificate, as the RA verified it (from a verified consent token, or an
/// application stored from one). The e-mail, if any, is an [`EmailAddress`]: checked, ASCII,
/// the domain in A-labels.
#[derive(Debug, Clone)]
pub(crate) struct VerifiedSubject {
    iin: String,
    surname: String,
    given_name: String,
    patronymic: Option<String>,
    email: Option<EmailAddress>,
}

impl VerifiedSubject {
    /// The identity the RA verified: IIN and names from the consent token (or the application
    /// stored from it), and the checked e-mail address.
    pub(crate) fn new(
        iin: &str,
        surname: &str,
        given_name: &str,
        patronymic: Option<&str>,
        email: Option<EmailAddress>,
    ) -> VerifiedSubject {
        VerifiedSubject {
            iin: iin.to_owned(),
            surname: surname.to_owned(),
            given_name: given_name.to_owned(),
            patronymic: patronymic.map(str::to_owned),
            email,
        }
    }
}

/// A certificate request the RA approved: the identity it verified, a key from a validated
/// CSR, and the profile choices. Only crate code holding a [`ValidatedCsr`] and a
/// [`VerifiedSubject`] makes one; the CA signs nothing else.
#[derive(Debug, Clone)]
pub struct ApprovedRequest {
    application_id: String,
    kind: CertificateKind,
    subject: VerifiedSubject,
    key: KeyIdentity,
    key_type: SubjectKeyType,
    validity_years: u32,
}

impl ApprovedRequest {
    /// A request for a key given as its identity (tests of profiles whose keys the RA's
    /// parsing does not give yet).
    #[cfg(test)]
    pub(crate) fn for_test(
        application_id: &str,
        kind: CertificateKind,
        subject: VerifiedSubject,
        key: KeyIdentity,
        key_type: SubjectKeyType,
        validity_years: u32,
    ) -> Self {
        ApprovedRequest {
            application_id: application_id.to_owned(),
            kind,
            subject,
            key,
            key_type,
            validity_years,
        }
    }
    /// The request for the certificate of `kind` of application `application_id`.
    pub(crate) fn new(
        application_id: &str,
        kind: CertificateKind,
        subject: VerifiedSubject,
        csr: &ValidatedCsr,
        validity_years: u32,
    ) -> Self {
        ApprovedRequest {
            application_id: application_id.to_owned(),
            kind,
            subject,
            key: csr.identity().clone(),
            key_type: csr.key_type(),
            validity_years,
        }
    }
    /// The application.
    pub fn application_id(&self) -> &str {
        &self.application_id
    }
    /// AUTH or SIGN.
    pub fn kind(&self) -> CertificateKind {
        self.kind
    }
    /// Holder's IIN.
    pub fn iin(&self) -> &str {
        &self.subject.iin
    }
    /// Surname.
    pub fn surname(&self) -> &str {
        &self.subject.surname
    }
    /// Given name.
    pub fn given_name(&self) -> &str {
        &self.subject.given_name
    }
    /// Patronymic.
    pub fn patronymic(&self) -> Option<&str> {
        self.subject.patronymic.as_deref()
    }
    /// E-mail for the SAN: checked, ASCII, the domain in A-labels.
    pub fn email(&self) -> Option<&str> {
        self.subject.email.as_ref().map(EmailAddress::as_str)
    }
    /// SubjectPublicKeyInfo, DER: always the canonical encoding.
    pub fn spki_der(&self) -> &[u8] {
        self.key.canonical_der()
    }
    /// The key's identity.
    pub fn key_identity(&self) -> &KeyIdentity {
        &self.key
    }
    /// Key type (decides key usage).
    pub fn key_type(&self) -> SubjectKeyType {
        self.key_type
    }
    /// Validity in years.
    pub fn validity_years(&self) -> u32 {
        self.validity_years
    }
}

/// To-be-signed certificate bytes under their reserved serial: what [`super::Issuer::sign`]
/// needs, whether just prepared or read back from where the caller stored them.
#[derive(Debug, Clone)]
pub struct ToBeSigned {
    issuer_id: String,
    serial: String,
    der: Vec<u8>,
}

impl ToBeSigned {
    /// TBS bytes stored earlier with their reserved serial, for the issuing CA `issuer_id`
    /// (crash recovery). The signature checks them again: issuer and algorithm must be this
    /// CA's.
    pub fn reserved(issuer_id: &str, serial: &str, der: &[u8]) -> ToBeSigned {
        ToBeSigned {
            issuer_id: issuer_id.to_owned(),
            serial: serial.to_owned(),
            der: der.to_vec(),
        }
    }
    /// The id of the issuing CA that is to sign it.
    pub fn issuer_id(&self) -> &str {
        &self.issuer_id
    }
    /// The reserved serial, upper-case hex.
    pub fn serial(&self) -> &str {
        &self.serial
    }
    /// The TBSCertificate, DER.
    pub fn der(&self) -> &[u8] {
        &self.der
    }
}

impl AsRef<ToBeSigned> for ToBeSigned {
    fn as_ref(&self) -> &ToBeSigned {
        self
    }
}

/// A certificate whose serial is reserved and whose to-be-signed bytes are fixed, ready to be
/// stored (by the caller, before anything is signed) and then signed.
#[derive(Debug, Clone)]
pub struct PreparedCertificate {
    pub(super) tbs: ToBeSigned,
    pub(super) issuer_id: String,
    pub(super) application_id: String,
    pub(super) kind: CertificateKind,
    pub(super) holder_iin: String,
    pub(super) not_before: DateTime<Utc>,
    pub(super) not_after: DateTime<Utc>,
    pub(super) spki_sha256: String,
    pub(super) prepared_at: DateTime<Utc>,
}

impl PreparedCertificate {
    /// The reserved serial, upper-case hex.
    pub fn serial(&self) -> &str {
        self.tbs.serial()
    }
    /// The bytes to sign.
    pub fn tbs(&self) -> &ToBeSigned {
        &self.tbs
    }
    /// The issuing CA's id.
    pub fn issuer_id(&self) -> &str {
        &self.issuer_id
    }
    /// The application.
    pub fn application_id(&self) -> &str {
        &self.application_id
    }
    /// AUTH or SIGN.
    pub fn kind(&self) -> CertificateKind {
        self.kind
    }
    /// Holder's IIN.
    pub fn holder_iin(&self) -> &str {
        &self.holder_iin
    }
    /// Start of validity.
    pub fn not_before(&self) -> DateTime<Utc> {
        self.not_before
    }
    /// End of validity.
    pub fn not_after(&self) -> DateTime<Utc> {
        self.not_after
    }
    /// SHA-256 of the canonical SubjectPublicKeyInfo, hex.
    pub fn spki_sha256(&self) -> &str {
        &self.spki_sha256
    }
    /// When it was prepared.
    pub fn prepared_at(&self) -> DateTime<Utc> {
        self.prepared_at
    }
}

impl AsRef<ToBeSigned> for PreparedCertificate {
    fn as_ref(&self) -> &ToBeSigned {
        &self.tbs
    }
}
