//! Entry points for the fuzz targets in `fuzz/` (see `docs/fuzzing.md`): the code paths that
//! read untrusted input but sit behind an HTTP handler, reachable without a server. Not part of
//! the crate's API.
//!
//! Owns nothing: each function calls the same code the handler calls and returns the stable
//! error code of a refusal. Must never: copy a check of the code it stands for, or touch a
//! database or a key.

use crate::api::ocsp::decode_get;
use crate::api::portal::revocation_fields;
use crate::api::types::{ApplicationRequest, RevocationRequest};
use crate::ra::ApplicationForm;

/// The code a handler answers a body that is not the JSON it expects with.
const REQUEST_MALFORMED: &str = crate::error_code::ErrorCode::RequestMalformed.as_str();

/// `POST /api/v1/applications` after the consent token: the JSON body, then every rule of the
/// form and both CSRs (everything the RA checks before it reads the database).
pub fn application_body(body: &[u8], current_agreement: &str) -> Result<(), &'static str> {
    let request: ApplicationRequest =
        serde_json::from_slice(body).map_err(|_| REQUEST_MALFORMED)?;
    ApplicationForm::from(request)
        .check(current_agreement)
        .map(|_| ())
        .map_err(|e| e.code().as_str())
}

/// `POST /api/v1/revocations` after the consent token: the JSON body, then its serial, reason
/// and invalidity date.
pub fn revocation_body(body: &[u8]) -> Result<(), &'static str> {
    let request: RevocationRequest = serde_json::from_slice(body).map_err(|_| REQUEST_MALFORMED)?;
    revocation_fields(&request)
        .map(|_| ())
        .map_err(|e| e.code().as_str())
}

/// `GET /ocsp/{base64}`: the DER request of a request path, as the handler decodes it.
pub fn ocsp_get_path(path: &str) -> Option<Vec<u8>> {
    decode_get(path)
}
