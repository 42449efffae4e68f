//! The `used_consent_tokens` table: consent-token ids already used, so a token is accepted
//! once. Must never: verify a token (`digital_id` does).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::*;
use super::{StoreError, Tx};

impl Tx<'_> {
    /// Record a consent token id as used. Returns `false` if it was already used (a replay);
    /// the unique key makes this hold when two transactions race. One statement (`ON
    /// CONFLICT DO NOTHING`, which both databases have but diesel's two-backend connection
    /// does not write): a replay inserts nothing and aborts nothing, so it needs no savepoint.
    pub fn record_consent_jti(
        &mut self,
        jti: &str,
        expires_at: NaiveDateTime,
        used_at: NaiveDateTime,
    ) -> Result<bool, StoreError> {
        let row = (
            used_consent_tokens::jti.eq(jti),
            used_consent_tokens::expires_at.eq(expires_at),
            used_consent_tokens::used_at.eq(used_at),
        );
        let insert = diesel::insert_into(used_consent_tokens::table).values(row);
        let inserted = native!(self.conn, |c| insert
            .on_conflict(used_consent_tokens::jti)
            .do_nothing()
            .execute(c))?;
        Ok(inserted == 1)
    }

    /// Whether a consent token id has been used.
    pub fn consent_jti_used(&mut self, jti: &str) -> Result<bool, StoreError> {
        let n: i64 = used_consent_tokens::table
            .filter(used_consent_tokens::jti.eq(jti))
            .count()
            .get_result(self.conn)?;
        Ok(n > 0)
    }

    /// Forget used token ids that expired before `before`. Returns how many.
    pub fn prune_consent_jtis(&mut self, before: NaiveDateTime) -> Result<usize, StoreError> {
        Ok(diesel::delete(
            used_consent_tokens::table.filter(used_consent_tokens::expires_at.lt(before)),
        )
        .execute(self.conn)?)
    }
}
