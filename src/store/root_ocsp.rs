//! The `root_ocsp_responses` table: OCSP responses for the root's CA certificates, signed
//! offline by the root and imported, one per certificate serial and CertID hash algorithm.
//! Must never: build, sign or verify a response (the `ocsp` module does), or keep two
//! responses for the same serial and algorithm.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::OptionalExtension;

use super::schema::*;
use super::{StoreError, Tx};

/// A stored root-signed OCSP response.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = root_ocsp_responses)]
pub struct RootOcspResponse {
    /// Serial of the CA certificate it answers for, upper-case hex.
    pub serial: String,
    /// OID of the CertID hash algorithm (dotted).
    pub hash_alg: String,
    /// `good` or `revoked`.
    pub status: String,
    /// thisUpdate.
    pub this_update: NaiveDateTime,
    /// nextUpdate.
    pub next_update: NaiveDateTime,
    /// DER of the OCSPResponse.
    pub der: Vec<u8>,
    /// When it was imported.
    pub imported_at: NaiveDateTime,
}

/// A root-signed response as the responder serves it, and whether the authority revoked the
/// certificate it answers for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldRootResponse {
    /// The response, if one is held for this serial and algorithm.
    pub response: Option<RootOcspResponse>,
    /// Whether the certificate is listed as revoked by the authority (`ca revoke-issuer`).
    pub revoked: bool,
}

impl Tx<'_> {
    /// Serialise imports of root OCSP responses across instances.
    pub fn lock_root_ocsp(&mut self) -> Result<(), StoreError> {
        self.lock_named("tamga-root-ocsp")
    }

    /// The held response for `serial` and `hash_alg`.
    pub fn root_ocsp_response(
        &mut self,
        serial: &str,
        hash_alg: &str,
    ) -> Result<Option<RootOcspResponse>, StoreError> {
        Ok(root_ocsp_responses::table
            .find((serial, hash_alg))
            .select(RootOcspResponse::as_select())
            .first(self.conn)
            .optional()?)
    }

    /// The held response for `serial` and `hash_alg`, and whether that serial is revoked by
    /// the authority.
    pub fn held_root_response(
        &mut self,
        serial: &str,
        hash_alg: &str,
    ) -> Result<HeldRootResponse, StoreError> {
        let response = self.root_ocsp_response(serial, hash_alg)?;
        let revoked: i64 = authority_revocations::table
            .filter(authority_revocations::serial.eq(serial))
            .count()
            .get_result(self.conn)?;
        Ok(HeldRootResponse {
            response,
            revoked: revoked > 0,
        })
    }

    /// Store `response`, replacing the one held for its serial and algorithm.
    pub fn put_root_ocsp_response(
        &mut self,
        response: &RootOcspResponse,
    ) -> Result<(), StoreError> {
        diesel::delete(
            root_ocsp_responses::table.find((response.serial.as_str(), response.hash_alg.as_str())),
        )
        .execute(self.conn)?;
        diesel::insert_into(root_ocsp_responses::table)
            .values(response)
            .execute(self.conn)?;
        Ok(())
    }

    /// Every held response without its bytes: (serial, hash_alg, status, thisUpdate,
    /// nextUpdate).
    #[allow(clippy::type_complexity)]
    pub fn root_ocsp_summary(
        &mut self,
    ) -> Result<Vec<(String, String, String, NaiveDateTime, NaiveDateTime)>, StoreError> {
        Ok(root_ocsp_responses::table
            .order((
                root_ocsp_responses::serial.asc(),
                root_ocsp_responses::hash_alg.asc(),
            ))
            .select((
                root_ocsp_responses::serial,
                root_ocsp_responses::hash_alg,
                root_ocsp_responses::status,
                root_ocsp_responses::this_update,
                root_ocsp_responses::next_update,
            ))
            .load(self.conn)?)
    }
}
