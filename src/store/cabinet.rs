//! The cabinet's tables: `cabinet_challenges` (the SHA-256 of each login challenge, used at
//! most once before it expires) and `cabinet_sessions` (the SHA-256 of each session token,
//! with the application and AUTH certificate that opened it), and the lookups a re-issue
//! needs (the application that replaced a pair). Must never: store a challenge or a token
//! itself, or verify a signature (the RA does).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::OptionalExtension;

use super::rows::touched_one;
use super::schema::*;
use super::{Application, StoreError, Tx};

/// A cabinet session, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = cabinet_sessions)]
pub struct CabinetSession {
    /// SHA-256 of the bearer token.
    pub token_sha256: Vec<u8>,
    /// The application whose AUTH certificate signed the challenge.
    pub application_id: String,
    /// That AUTH certificate's serial.
    pub auth_serial: String,
    /// The holder's IIN (from the application).
    pub holder_iin: String,
    /// Opened (UTC).
    pub created_at: NaiveDateTime,
    /// Ends (UTC).
    pub expires_at: NaiveDateTime,
}

impl Tx<'_> {
    /// Record a new login challenge by its hash. Returns `false` if the hash exists already
    /// (32 random bytes: never, in practice).
    pub fn insert_challenge(
        &mut self,
        challenge_sha256: &[u8],
        created_at: NaiveDateTime,
        expires_at: NaiveDateTime,
    ) -> Result<bool, StoreError> {
        self.insert_first(|conn| {
            diesel::insert_into(cabinet_challenges::table)
                .values((
                    cabinet_challenges::challenge_sha256.eq(challenge_sha256),
                    cabinet_challenges::created_at.eq(created_at),
                    cabinet_challenges::expires_at.eq(expires_at),
                ))
                .execute(conn)
        })
    }

    /// Use a challenge: `true` only for the one transaction that finds it unused and not
    /// expired at `now` (a conditional update, so two racing logins cannot both succeed, on
    /// one instance or several).
    pub fn consume_challenge(
        &mut self,
        challenge_sha256: &[u8],
        now: NaiveDateTime,
    ) -> Result<bool, StoreError> {
        let updated = diesel::update(
            cabinet_challenges::table
                .filter(cabinet_challenges::challenge_sha256.eq(challenge_sha256))
                .filter(cabinet_challenges::used_at.is_null())
                .filter(cabinet_challenges::expires_at.gt(now)),
        )
        .set(cabinet_challenges::used_at.eq(Some(now)))
        .execute(self.conn);
        touched_one(updated)
    }

    /// Record a session.
    pub fn insert_session(&mut self, session: &CabinetSession) -> Result<(), StoreError> {
        diesel::insert_into(cabinet_sessions::table)
            .values(session)
            .execute(self.conn)?;
        Ok(())
    }

    /// The session whose token hashes to `token_sha256`, if it has not ended at `now`.
    pub fn live_session(
        &mut self,
        token_sha256: &[u8],
        now: NaiveDateTime,
    ) -> Result<Option<CabinetSession>, StoreError> {
        Ok(cabinet_sessions::table
            .filter(cabinet_sessions::token_sha256.eq(token_sha256))
            .filter(cabinet_sessions::expires_at.gt(now))
            .select(CabinetSession::as_select())
            .first(self.conn)
            .optional()?)
    }

    /// Forget challenges and sessions that ended before `before`. Returns how many rows went.
    pub fn prune_cabinet(&mut self, before: NaiveDateTime) -> Result<usize, StoreError> {
        let challenges = diesel::delete(
            cabinet_challenges::table.filter(cabinet_challenges::expires_at.lt(before)),
        )
        .execute(self.conn)?;
        let sessions =
            diesel::delete(cabinet_sessions::table.filter(cabinet_sessions::expires_at.lt(before)))
                .execute(self.conn)?;
        Ok(challenges + sessions)
    }

    /// The application that replaced application `id`'s pair (a re-issue), if any.
    pub fn application_replacing(&mut self, id: &str) -> Result<Option<Application>, StoreError> {
        self.first_application(
            applications::table
                .filter(applications::replaces_application_id.eq(id.to_owned()))
                .into_boxed(),
        )
    }
}
