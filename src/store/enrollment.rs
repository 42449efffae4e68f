//! The citizen's pages' table `enrollment_sessions`: a session opened by Digital ID's
//! hand-over, found by the SHA-256 of its cookie, holding the consent token until an
//! application is submitted through it (the application is then found by the token's `jti`), and pruned after the token expires. Must never: store
//! the cookie itself, or decide whether a token may be used (the RA does).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::OptionalExtension;

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
}

impl Tx<'_> {
    /// Record a new session, in place of any earlier one of the same consent token (a token
    /// handed over again opens one session, not one more each time).
    pub fn insert_enrollment_session(
        &mut self,
        session: &EnrollmentSession,
    ) -> Result<(), StoreError> {
        diesel::delete(
            enrollment_sessions::table
                .filter(enrollment_sessions::consent_jti.eq(&session.consent_jti)),
        )
        .execute(self.conn)?;
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
