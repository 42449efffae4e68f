//! The holder's cabinet: login challenges, login by a CMS signature of the AUTH key,
//! sessions, the holder's certificates, and re-issue of the pair with new keys confirmed by a
//! CMS signature of the SIGN key. Identity always comes from the application whose
//! certificates signed, never from the request; the signer is always looked up among the
//! certificates this CA issued (by issuer and serial) and the signature checked with that
//! stored certificate, never with one the message carries. Must never: trust a certificate
//! inside a CMS, keep a challenge or a session token (only their SHA-256), or give one
//! lineage two valid pairs (the old pair is superseded in the transaction that records the new
//! one as issued: [`super::issuance`] with [`super::lineage`]).

use chrono::{DateTime, Duration, Utc};

use super::form::CheckedForm;
use super::intake::Submitted;
use super::issuance::{check_keys_unused, reserve};
use super::limits::Limited;
use super::{hash_token, new_access_token, ApplicationForm, RaError, Registrar};
use crate::ca::{CaError, PreparedCertificate};
use crate::cms::{SignedMessage, SignerId};
use crate::digital_id::{ConsentError, VerifiedConsent};
use crate::store::{
    db_time, Application, ApplicationStatus, AuditEntry, CabinetSession, Certificate,
    CertificateKind, CertificateStatus, Tx,
};
use crate::vocab::RevocationReason;

/// How long a login challenge may be signed and sent back.
pub const CHALLENGE_LIFETIME: Duration = Duration::minutes(5);
/// How long a cabinet session lives.
pub const SESSION_LIFETIME: Duration = Duration::minutes(15);
/// The length of a challenge, in bytes.
pub const CHALLENGE_LEN: usize = 32;

/// A login challenge, to be signed by the holder's AUTH key.
#[derive(Debug, Clone)]
pub struct Challenge {
    /// The random bytes.
    pub bytes: [u8; CHALLENGE_LEN],
    /// When it stops being accepted.
    pub expires_at: DateTime<Utc>,
}

/// A session opened by a login.
#[derive(Debug, Clone)]
pub struct Session {
    /// The bearer token, shown once; only its hash is stored.
    pub token: String,
    /// When it ends.
    pub expires_at: DateTime<Utc>,
    /// The application whose AUTH certificate logged in.
    pub application_id: String,
}

/// Proof of a live cabinet session: made only by [`Registrar::cabinet_session`].
#[derive(Debug, Clone)]
pub struct CabinetHolder {
    session: CabinetSession,
}

impl CabinetHolder {
    /// The holder's IIN.
    pub fn iin(&self) -> &str {
        &self.session.holder_iin
    }

    /// The application whose AUTH certificate opened the session.
    pub fn application_id(&self) -> &str {
        &self.session.application_id
    }
}

/// One of the holder's certificates with what the cabinet shows of its application.
#[derive(Debug, Clone)]
pub struct HolderCertificate {
    /// The certificate.
    pub certificate: Certificate,
    /// Its application's key storage.
    pub storage: String,
}

/// A re-issue request: the body's exact bytes, their confirmation, the form read from them,
/// and the consent token when the CA asks for one.
#[derive(Debug)]
pub struct Reissue<'a> {
    /// The body as received: what the confirmation signs.
    pub body: &'a [u8],
    /// The detached CMS over `body`, signed with the SIGN key of the pair that logged in.
    pub confirmation: &'a SignedMessage,
    /// The form of the new pair (the agreement fields are the replaced application's).
    pub email: Option<String>,
    /// `kk`, `ru` or `en`.
    pub language: String,
    /// Key storage.
    pub storage: String,
    /// AUTH CSR.
    pub auth_csr: String,
    /// SIGN CSR.
    pub sign_csr: String,
    /// When `[ra] reissue_requires_consent`: the `eds_reissue` consent token as verified
    /// (or why not). Looked at only for a new re-issue, not for a repeated one.
    pub consent: Option<Result<VerifiedConsent, ConsentError>>,
}

/// The state of one certificate of a pair for the cabinet: usable, or why not.
fn usable(cert: &Certificate, now: DateTime<Utc>) -> Result<(), RaError> {
    match cert.status {
        CertificateStatus::Issued => {}
        CertificateStatus::Revoked => {
            let reason = cert.revocation_reason.clone().unwrap_or_default();
            if reason == RevocationReason::CertificateHold.as_str() {
                return Err(RaError::CertificateOnHold(cert.serial.clone()));
            }
            return Err(RaError::CertificateRevoked {
                serial: cert.serial.clone(),
                reason,
            });
        }
        CertificateStatus::Reserved => return Err(RaError::CmsSignerUnknown),
    }
    let now = now.naive_utc();
    if now < cert.not_before || now > cert.not_after {
        return Err(RaError::CertificateExpired(cert.serial.clone()));
    }
    Ok(())
}

/// The `(issuer Name DER, SubjectKeyIdentifier)` of a DER certificate.
fn issuer_and_ski(der: &[u8]) -> Option<(Vec<u8>, Option<Vec<u8>>)> {
    let x509 = openssl::x509::X509::from_der(der).ok()?;
    let issuer = x509.issuer_name().to_der().ok()?;
    let ski = x509.subject_key_id().map(|k| k.as_slice().to_vec());
    Some((issuer, ski))
}

/// The certificate this CA issued that `signer` names, with its DER. A certificate the
/// message carries is used only to find a serial when the signer is named by its key
/// identifier; the stored certificate must then carry that same identifier.
fn our_certificate(
    tx: &mut Tx<'_>,
    message: &SignedMessage,
) -> Result<(Certificate, Vec<u8>), RaError> {
    let (serial, wanted_ski) = match message.signer() {
        SignerId::IssuerSerial { serial_hex, .. } => (serial_hex.clone(), None),
        SignerId::SubjectKeyId(ski) => {
            let serial = message
                .embedded_certificates()
                .iter()
                .filter_map(|der| openssl::x509::X509::from_der(der).ok())
                .find(|c| {
                    c.subject_key_id()
                        .is_some_and(|k| k.as_slice() == ski.as_slice())
                })
                .and_then(|c| c.serial_number().to_bn().ok())
                .and_then(|bn| bn.to_hex_str().ok().map(|h| h.to_string()))
                .ok_or(RaError::CmsSignerUnknown)?;
            (serial, Some(ski.clone()))
        }
    };
    let serial = crate::ca::Serial::parse(&serial).map_err(|_| RaError::CmsSignerUnknown)?;
    let cert = tx
        .certificate(serial.as_str())?
        .filter(|c| c.status != CertificateStatus::Reserved && c.application_id.is_some())
        .ok_or(RaError::CmsSignerUnknown)?;
    let der = cert.der.clone().ok_or(RaError::CmsSignerUnknown)?;
    let (issuer, ski) = issuer_and_ski(&der).ok_or(RaError::CmsSignerUnknown)?;
    let matches = match message.signer() {
        SignerId::IssuerSerial { issuer_der, .. } => *issuer_der == issuer,
        SignerId::SubjectKeyId(_) => wanted_ski.is_some() && ski == wanted_ski,
    };
    if !matches {
        return Err(RaError::CmsSignerUnknown);
    }
    Ok((cert, der))
}

fn kind_name(kind: CertificateKind) -> &'static str {
    match kind {
        CertificateKind::Auth => "AUTH",
        CertificateKind::Sign => "SIGN",
    }
}

/// The SHA-256 of `bytes`, hex: how a re-issue body is named in the replay store.
fn body_jti(body: &[u8]) -> String {
    format!("reissue:{}", hex::encode(openssl::sha::sha256(body)))
}

impl Registrar {
    /// A new login challenge: 32 random bytes, stored by their hash, single use, valid for
    /// five minutes.
    pub fn new_challenge(&self) -> Result<Challenge, RaError> {
        let mut bytes = [0u8; CHALLENGE_LEN];
        openssl::rand::rand_bytes(&mut bytes).map_err(CaError::from)?;
        let now = self.clock.now();
        let expires_at = now + CHALLENGE_LIFETIME;
        let hash = openssl::sha::sha256(&bytes);
        self.store.write(|tx| -> Result<(), RaError> {
            if !tx.insert_challenge(&hash, db_time(now), db_time(expires_at))? {
                return Err(RaError::ChallengeInvalid);
            }
            Ok(())
        })?;
        Ok(Challenge { bytes, expires_at })
    }

    /// Log in with an attached CMS over a challenge, signed by the holder's AUTH key.
    ///
    /// The signer is looked up among the certificates this CA issued and the signature
    /// checked with the stored certificate; it must be an AUTH certificate, valid now, neither
    /// revoked nor on hold. Then one transaction uses the challenge (once, on any instance),
    /// records the session and appends the audit entry.
    pub fn login(&self, message: &SignedMessage) -> Result<Session, RaError> {
        let now = self.clock.now();
        let (cert, der) = self.store.read(|tx| our_certificate(tx, message))?;
        let content = message.verify_attached(&der)?;
        if cert.kind != CertificateKind::Auth {
            return Err(RaError::CmsSignerWrongKind {
                expected: "AUTH",
                found: kind_name(cert.kind),
            });
        }
        usable(&cert, now)?;
        if content.len() != CHALLENGE_LEN {
            return Err(RaError::ChallengeInvalid);
        }
        let application_id = cert
            .application_id
            .clone()
            .ok_or(RaError::CmsSignerUnknown)?;
        let token = new_access_token()?;
        let at = db_time(now);
        let expires_at = now + SESSION_LIFETIME;
        let session = CabinetSession {
            token_sha256: hash_token(&token),
            application_id: application_id.clone(),
            auth_serial: cert.serial.clone(),
            holder_iin: cert.holder_iin.clone(),
            created_at: at,
            expires_at: db_time(expires_at),
        };
        self.store.write(|tx| -> Result<(), RaError> {
            if !tx.consume_challenge(&openssl::sha::sha256(&content), at)? {
                return Err(RaError::ChallengeInvalid);
            }
            // Read again under the write lock: a revocation committed since the check wins.
            let now_cert = tx
                .certificate(&cert.serial)?
                .ok_or(RaError::CmsSignerUnknown)?;
            usable(&now_cert, now)?;
            tx.insert_session(&session)?;
            tx.append_audit(&AuditEntry {
                at,
                actor: format!("holder:{}", cert.holder_iin),
                action: "cabinet.login".to_owned(),
                subject: cert.serial.clone(),
                details: serde_json::json!({
                    "application_id": application_id,
                    "session_expires_at": session.expires_at.and_utc().to_rfc3339(),
                }),
            })?;
            Ok(())
        })?;
        tracing::info!(application = %application_id, serial = %cert.serial, "cabinet login");
        Ok(Session {
            token,
            expires_at,
            application_id,
        })
    }

    /// The live session a bearer token opens, while the AUTH certificate that opened it is
    /// still valid (a revocation or hold of it ends its sessions at once).
    pub fn cabinet_session(&self, token: &str) -> Result<CabinetHolder, RaError> {
        let now = self.clock.now();
        let hash = hash_token(token);
        let (session, auth) = self.store.read(|tx| -> Result<_, RaError> {
            let session = tx
                .live_session(&hash, db_time(now))?
                .ok_or(RaError::SessionInvalid)?;
            let auth = tx
                .certificate(&session.auth_serial)?
                .ok_or(RaError::SessionInvalid)?;
            Ok((session, auth))
        })?;
        usable(&auth, now)?;
        Ok(CabinetHolder { session })
    }

    /// Every signed certificate of the session's holder, newest first, with its storage.
    pub fn holder_certificates(
        &self,
        holder: &CabinetHolder,
    ) -> Result<Vec<HolderCertificate>, RaError> {
        self.store.read(|tx| -> Result<_, RaError> {
            let certs = tx.list_certificates(Some(holder.iin()), 1000)?;
            let mut storages: Vec<(String, String)> = Vec::new();
            let mut out = Vec::with_capacity(certs.len());
            for certificate in certs {
                let Some(app_id) = certificate.application_id.clone() else {
                    continue;
                };
                let storage = match storages.iter().find(|(id, _)| *id == app_id) {
                    Some((_, s)) => s.clone(),
                    None => {
                        let s = tx
                            .application(&app_id)?
                            .map(|a| a.storage)
                            .unwrap_or_default();
                        storages.push((app_id, s.clone()));
                        s
                    }
                };
                out.push(HolderCertificate {
                    certificate,
                    storage,
                });
            }
            Ok(out)
        })
    }

    /// Forget challenges and sessions that ended (kept a while longer than their lifetime, so
    /// an answer about them stays precise). Returns how many rows went.
    pub fn prune_cabinet(&self) -> Result<usize, RaError> {
        let before = db_time(self.clock.now() - SESSION_LIFETIME);
        Ok(self.store.write(|tx| tx.prune_cabinet(before))?)
    }

    /// Re-issue the session's pair with new keys.
    ///
    /// The confirmation must verify over the exact body with the SIGN certificate of the
    /// application that logged in (looked up among ours). The same body again — an answer
    /// that was lost — returns the application it created, under a new access token, on the
    /// strength of the confirmation alone: the session may have ended and the old pair is
    /// superseded by then. Otherwise the session must be live, both certificates of the pair
    /// valid now and the pair not yet replaced; the new
    /// keys must never have been certified or blocked; the identity is the replaced
    /// application's. One transaction records the body's use (and the consent token's), the
    /// application, its reserved certificates and the audit entry; the signatures follow, and
    /// the transaction that records them as issued revokes the old pair `superseded`.
    pub fn reissue(
        &self,
        session_token: Option<&str>,
        request: Reissue<'_>,
    ) -> Result<Submitted, RaError> {
        self.first_issuer().key_ready()?;
        let now = self.clock.now();
        let (sign_cert, sign_der) = self
            .store
            .read(|tx| our_certificate(tx, request.confirmation))?;
        request
            .confirmation
            .verify_detached(&sign_der, request.body)?;
        if sign_cert.kind != CertificateKind::Sign {
            return Err(RaError::CmsSignerWrongKind {
                expected: "SIGN",
                found: kind_name(sign_cert.kind),
            });
        }
        let signer_application = sign_cert
            .application_id
            .clone()
            .ok_or(RaError::CmsSignerUnknown)?;
        let jti = body_jti(request.body);
        if let Some(done) = self.repeated_reissue(&jti, &signer_application)? {
            return Ok(done);
        }
        let holder = self.cabinet_session(session_token.ok_or(RaError::SessionInvalid)?)?;
        let old_id = holder.application_id().to_owned();
        if signer_application != old_id {
            return Err(RaError::CmsSignerNotHolder);
        }
        let consent = request.consent.transpose()?;
        if let Some(consent) = &consent {
            if consent.iin().as_str() != holder.iin() {
                return Err(RaError::ConsentWrongHolder);
            }
        }
        let old = self.store.read(|tx| -> Result<Application, RaError> {
            let old = tx
                .application(&old_id)?
                .ok_or(RaError::ApplicationNotFound)?;
            if let Some(newer) = tx.application_replacing(&old_id)? {
                return Err(RaError::AlreadyReissued(format!(
                    "application {}",
                    newer.id
                )));
            }
            for cert in tx.certificates_of_application(&old_id)? {
                usable(&cert, now)?;
            }
            // Over the limit already: refuse before the CSR work (counted in the transaction).
            self.check_iin_limit(tx, Limited::Application, &old.holder_iin, now, false)?;
            Ok(old)
        })?;
        let form = ApplicationForm {
            agreement_version: old.agreement_version.clone(),
            agreement_accepted: true,
            email: request.email,
            language: request.language,
            storage: request.storage,
            auth_csr: request.auth_csr,
            sign_csr: request.sign_csr,
        }
        .check(&old.agreement_version)?;
        self.issuers_for(&form)?;
        let (application, access_token, prepared) =
            match self.accept_reissue(&old, &sign_cert, &jti, consent.as_ref(), &form) {
                Ok(accepted) => accepted,
                Err(RaError::ConsentReplayed) => {
                    return self
                        .repeated_reissue(&jti, &old_id)?
                        .ok_or(RaError::ConsentReplayed)
                }
                Err(e) => return Err(e),
            };
        tracing::info!(application = %application.id, replaces = %old_id, "re-issue accepted");
        let (application, certificates) = self.sign_or_postpone(application, &prepared)?;
        Ok(Submitted {
            application,
            access_token,
            certificates,
            created: true,
        })
    }

    /// The re-issue a body already created, if it replaces `old_id`: a new access token
    /// (audited), an interrupted issuance completed.
    fn repeated_reissue(&self, jti: &str, old_id: &str) -> Result<Option<Submitted>, RaError> {
        let Some(app) = self.store.read(|tx| tx.application_by_consent_jti(jti))? else {
            return Ok(None);
        };
        if app.replaces_application_id.as_deref() != Some(old_id) {
            // The same keys under another pair: they are certified (or reserved) already.
            return Err(RaError::KeyReused);
        }
        self.answer_again(app).map(Some)
    }

    /// The durable first half of a re-issue: one transaction with every check repeated under
    /// the write lock.
    #[allow(clippy::type_complexity)]
    fn accept_reissue(
        &self,
        old: &Application,
        sign_cert: &Certificate,
        jti: &str,
        consent: Option<&VerifiedConsent>,
        form: &CheckedForm,
    ) -> Result<(Application, String, Vec<PreparedCertificate>), RaError> {
        let keys = [
            form.auth.identity().sha256_hex().to_owned(),
            form.sign.identity().sha256_hex().to_owned(),
        ];
        self.store
            .read(|tx| -> Result<(), RaError> { check_keys_unused(tx, &keys) })?;
        let now = self.clock.now();
        let at = db_time(now);
        let access_token = new_access_token()?;
        let application = Application {
            id: uuid::Uuid::new_v4().to_string(),
            status: ApplicationStatus::Approved,
            holder_iin: old.holder_iin.clone(),
            surname: old.surname.clone(),
            given_name: old.given_name.clone(),
            patronymic: old.patronymic.clone(),
            birth_date: old.birth_date,
            email: form.email.as_ref().map(|e| e.as_str().to_owned()),
            language: form.language.as_str().to_owned(),
            storage: form.storage.as_str().to_owned(),
            agreement_version: old.agreement_version.clone(),
            access_token_hash: hash_token(&access_token),
            consent_jti: jti.to_owned(),
            register_match: old.register_match,
            liveness: old.liveness,
            auth_csr: form.auth.der().to_vec(),
            sign_csr: form.sign.der().to_vec(),
            reason: None,
            decided_by: None,
            created_at: at,
            updated_at: at,
            review_reasons: Vec::new(),
            replaces_application_id: Some(old.id.clone()),
            through_pages: false,
        };
        let prepared = self.prepare_pair(&application, form, now)?;
        let session_end = db_time(now + SESSION_LIFETIME);
        let actor = format!("holder:{}", application.holder_iin);
        self.store.write(|tx| -> Result<(), RaError> {
            self.check_iin_limit(tx, Limited::Application, &old.holder_iin, now, true)?;
            if !tx.record_consent_jti(jti, session_end, at)? {
                return Err(RaError::ConsentReplayed);
            }
            if let Some(consent) = consent {
                if !tx.record_consent_jti(consent.jti(), db_time(consent.expires_at()), at)? {
                    return Err(RaError::ConsentReplayed);
                }
            }
            if let Some(newer) = tx.application_replacing(&old.id)? {
                return Err(RaError::AlreadyReissued(format!(
                    "application {}",
                    newer.id
                )));
            }
            for cert in tx.certificates_of_application(&old.id)? {
                usable(&cert, now)?;
            }
            check_keys_unused(tx, &keys)?;
            tx.insert_application(&application).map_err(|e| {
                if e.is_unique_violation() {
                    RaError::AlreadyReissued("by a re-issue committed at the same time".to_owned())
                } else {
                    e.into()
                }
            })?;
            reserve(tx, &prepared)?;
            tx.append_audit(&AuditEntry {
                at,
                actor: actor.clone(),
                action: "application.reissue_submitted".to_owned(),
                subject: application.id.clone(),
                details: serde_json::json!({
                    "replaces": old.id,
                    "confirmed_by": sign_cert.serial,
                    "storage": application.storage,
                    "consent_token": consent.is_some(),
                    "reserved_serials": prepared.iter().map(|p| p.serial()).collect::<Vec<_>>(),
                }),
            })?;
            Ok(())
        })?;
        Ok((application, access_token, prepared))
    }
}
