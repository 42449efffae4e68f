//! The citizen's pages' enrollment sessions: Digital ID's hand-over opens one that holds the
//! consent token (verified for `eds_issuance` and checked unused, but not consumed), the pages
//! find it by the SHA-256 of their cookie, and the application is submitted through it with
//! the ordinary [`Registrar::submit`], which uses the token once. Every instance on one
//! database reads the same rows. Must never: consume a token when a session opens, keep a
//! session past its token's `exp`, or store the cookie itself.

use chrono::{DateTime, Utc};

use super::{hash_token, new_access_token, ApplicationForm, RaError, Registrar, Submitted};
use crate::digital_id::{ConsentError, Identity, Purpose, TrustedKeys, VerifiedConsent};
use crate::store::{db_time, EnrollmentSession};

/// A session just opened: the cookie's value goes to the browser, only its hash is stored.
#[derive(Debug, Clone)]
pub struct OpenedEnrollment {
    /// The cookie's value: 32 random bytes, base64url without padding (43 characters).
    pub cookie: String,
    /// When the session ends: the consent token's `exp`.
    pub expires_at: DateTime<Utc>,
}

/// A live session, as the pages see it.
#[derive(Debug, Clone)]
pub struct EnrollmentView {
    /// What the pages send back in `X-CSRF-Token`.
    pub csrf_token: String,
    /// When the session ends.
    pub expires_at: DateTime<Utc>,
    /// The application submitted through it, once it is.
    pub application_id: Option<String>,
    /// Who Digital ID says the citizen is.
    pub identity: Identity,
}

/// A live session whose consent token verified, found by [`Registrar::live_enrollment_of`]:
/// only this module makes one, so a submission through the pages cannot skip the lookup.
#[derive(Debug)]
pub struct LiveEnrollment {
    csrf_token: String,
    consent: VerifiedConsent,
}

impl LiveEnrollment {
    /// What the pages must send back in `X-CSRF-Token`.
    pub fn csrf_token(&self) -> &str {
        &self.csrf_token
    }
}

impl Registrar {
    /// Open a session for a consent token handed over by Digital ID: verified as the API
    /// verifies it (`eds_issuance`), refused if its `jti` was used already
    /// (`consent_token_replayed`), and not consumed.
    pub fn open_enrollment(
        &self,
        keys: &TrustedKeys,
        token: &str,
    ) -> Result<OpenedEnrollment, RaError> {
        let now = self.clock.now();
        let consent = keys.verify(token, Purpose::EdsIssuance, now)?;
        let cookie = new_access_token()?;
        let csrf_token = new_access_token()?;
        let session = EnrollmentSession {
            cookie_sha256: hash_token(&cookie),
            csrf_token,
            consent_token: token.to_owned(),
            consent_jti: consent.jti().to_owned(),
            holder_iin: consent.iin().as_str().to_owned(),
            created_at: db_time(now),
            expires_at: db_time(consent.expires_at()),
        };
        self.store.write(|tx| -> Result<(), RaError> {
            if tx.consent_jti_used(consent.jti())? {
                return Err(RaError::ConsentReplayed);
            }
            tx.insert_enrollment_session(&session)?;
            Ok(())
        })?;
        Ok(OpenedEnrollment {
            cookie,
            expires_at: consent.expires_at(),
        })
    }

    /// The session of `cookie`: `EnrollmentSessionInvalid` when there is none, the token's
    /// `consent_token_expired` once it has expired.
    pub fn enrollment(&self, keys: &TrustedKeys, cookie: &str) -> Result<EnrollmentView, RaError> {
        let (session, consent) = self.live_enrollment(keys, cookie)?;
        let application_id = self
            .store
            .read(|tx| tx.application_by_consent_jti(&session.consent_jti))?
            .map(|app| app.id);
        Ok(EnrollmentView {
            csrf_token: session.csrf_token,
            expires_at: session.expires_at.and_utc(),
            application_id,
            identity: consent.identity().clone(),
        })
    }

    /// `cookie`'s live session with its consent token verified: what a submission through it
    /// needs, found once per request (the pages compare its CSRF token first).
    pub fn live_enrollment_of(
        &self,
        keys: &TrustedKeys,
        cookie: &str,
    ) -> Result<LiveEnrollment, RaError> {
        let (session, consent) = self.live_enrollment(keys, cookie)?;
        Ok(LiveEnrollment {
            csrf_token: session.csrf_token,
            consent,
        })
    }

    /// Submit the application through `cookie`'s session: its consent token is used here, by
    /// [`Registrar::submit`] (the same request again answers the repeat, any other
    /// `consent_token_replayed`), in the one transaction that records the application; the
    /// session finds it later by the token's `jti`. The local agent keeps its keys in files,
    /// so only `pkcs12` storage is taken: a file key never gets a hardware certificate's
    /// three years (`storage_type_invalid`).
    pub fn submit_enrollment(
        &self,
        live: &LiveEnrollment,
        form: ApplicationForm,
    ) -> Result<Submitted, RaError> {
        if form.storage != crate::vocab::Storage::Pkcs12.as_str() {
            return Err(RaError::StorageTypeInvalid);
        }
        self.submit_from(&live.consent, form, true)
    }

    /// Forget sessions whose token expired longer ago than the clock allowance. Returns how
    /// many went.
    pub fn prune_enrollments(&self) -> Result<usize, RaError> {
        let horizon =
            self.clock.now() - chrono::Duration::seconds(crate::digital_id::CLOCK_SKEW_SECS);
        Ok(self
            .store
            .write(|tx| tx.prune_enrollment_sessions(db_time(horizon)))?)
    }

    /// The row of `cookie`'s session and its token verified again (the token is what the
    /// application is submitted under; a key no longer trusted ends the session).
    fn live_enrollment(
        &self,
        keys: &TrustedKeys,
        cookie: &str,
    ) -> Result<(EnrollmentSession, VerifiedConsent), RaError> {
        // A cookie is 43 characters; anything much longer is not one of ours.
        if cookie.is_empty() || cookie.len() > 128 {
            return Err(RaError::EnrollmentSessionInvalid);
        }
        let hash = hash_token(cookie);
        let session = self
            .store
            .read(|tx| tx.enrollment_session(&hash))?
            .ok_or(RaError::EnrollmentSessionInvalid)?;
        let now = self.clock.now();
        if db_time(now) >= session.expires_at {
            return Err(ConsentError::Expired(session.expires_at.and_utc()).into());
        }
        let consent = keys.verify(&session.consent_token, Purpose::EdsIssuance, now)?;
        Ok((session, consent))
    }
}
