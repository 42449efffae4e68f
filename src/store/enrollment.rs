//! The citizen's pages' table `enrollment_sessions`: a session opened by Digital ID's
//! hand-over, found by the SHA-256 of its cookie, holding the consent token until an
//! application is submitted through it, and pruned after the token expires. Must never: store
//! the cookie itself, or decide whether a token may be used (the RA does).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::OptionalExtension;

use super::rows::touched_the_row;
use super::schema::*;
use super::{StoreError, Tx};

/// An enrollment session, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = enrollment_sessions)]
pub struct EnrollmentSession {
    /// SHA-256 of the cookie's value.
    pub cookie_sha256: Vec<u8>,
    /// The token the pages send back in `X-CSRF-Token`.
    pub csrf_token: String,
    /// The consent token the session holds until the application is submitted.
    pub consent_token: String,
    /// Its `jti`.
    pub consent_jti: String,
    /// Its IIN.
    pub holder_iin: String,
    /// Opened (UTC).
    pub created_at: NaiveDateTime,
    /// Ends (UTC): the consent token's `exp`.
    pub expires_at: NaiveDateTime,
    /// The application submitted through the session, once it is.
    pub application_id: Option<String>,
}

impl Tx<'_> {
    /// Record a new session.
    pub fn insert_enrollment_session(
        &mut self,
        session: &EnrollmentSession,
    ) -> Result<(), StoreError> {
        diesel::insert_into(enrollment_sessions::table)
            .values(session)
            .execute(self.conn)?;
        Ok(())
    }

    /// The session whose cookie hashes to `cookie_sha256`, expired or not (the RA tells the
    /// two apart: an expired one sends the citizen back to Digital ID).
    pub fn enrollment_session(
        &mut self,
        cookie_sha256: &[u8],
    ) -> Result<Option<EnrollmentSession>, StoreError> {
        Ok(enrollment_sessions::table
            .filter(enrollment_sessions::cookie_sha256.eq(cookie_sha256))
            .select(EnrollmentSession::as_select())
            .first(self.conn)
            .optional()?)
    }

    /// Record the application submitted through the session.
    pub fn mark_enrollment_submitted(
        &mut self,
        cookie_sha256: &[u8],
        application_id: &str,
    ) -> Result<(), StoreError> {
        let updated = diesel::update(
            enrollment_sessions::table.filter(enrollment_sessions::cookie_sha256.eq(cookie_sha256)),
        )
        .set(enrollment_sessions::application_id.eq(Some(application_id)))
        .execute(self.conn);
        touched_the_row(updated)
    }

    /// Forget sessions that ended before `before`. Returns how many rows went.
    pub fn prune_enrollment_sessions(
        &mut self,
        before: NaiveDateTime,
    ) -> Result<usize, StoreError> {
        Ok(diesel::delete(
            enrollment_sessions::table.filter(enrollment_sessions::expires_at.lt(before)),
        )
        .execute(self.conn)?)
    }
}
