//! The holder's cabinet (`/cabinet/api/…`): challenge, login by a CMS signature of the AUTH
//! key, the holder's certificates, revocation and re-issue under a session. Outside the
//! portal's client-certificate gate: the holder authenticates with their own keys. Must never:
//! decide anything itself (the RA does), or log a session token or a signature.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::portal::{
    bearer, certificate_pem, counted, read_body, revocation_fields, rfc3339, submitted_response,
    REVOCATION_BODY_LIMIT,
};
use super::problem::ApiError;
use super::types::{
    ChallengeResponse, HolderCertificate, HolderCertificates, LoginRequest, ReissueRequest,
    RevocationRequest, SessionResponse, CONFIRMATION_HEADER, CONSENT_HEADER,
};
use super::AppState;
use crate::cms::{CmsError, SignedMessage};
use crate::digital_id::{ConsentError, Purpose};
use crate::ra::{CabinetHolder, RaError, Reissue, Revoker};
use crate::store::CertificateStatus;

/// Largest challenge request body (none is needed; a small one is read and ignored).
pub const CHALLENGE_BODY_LIMIT: usize = 1024;
/// Largest login body (a CMS with the signer's certificate, in base64).
pub const LOGIN_BODY_LIMIT: usize = 64 * 1024;
/// Largest re-issue body (two CSRs and a small form).
pub const REISSUE_BODY_LIMIT: usize = super::portal::APPLICATION_BODY_LIMIT;

/// The live session the request's bearer token opens.
async fn session(state: &AppState, req: &HttpRequest) -> Result<CabinetHolder, ApiError> {
    let token = match bearer(req) {
        Ok(Some(t)) if t.len() <= 256 => t,
        _ => return Err(ApiError::Ra(RaError::SessionInvalid)),
    };
    let registrar = state.registrar.clone();
    super::blocking(state, move || registrar.cabinet_session(&token)).await
}

fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::RequestMalformed(e.to_string()))
}

fn no_store(mut response: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    response.insert_header((header::CACHE_CONTROL, "no-store"));
    response
}

/// A new login challenge.
#[utoipa::path(
    post,
    path = "/cabinet/api/challenge",
    tag = "cabinet",
    responses(
        (status = 200, description = "32 random bytes to sign with the AUTH key (attached CMS); single use, 5 minutes. No body is needed (one of at most 1 KiB is read and ignored)", body = ChallengeResponse),
        (status = 408, description = "`body_timeout`", body = super::types::ProblemDocument, content_type = "application/problem+json"),
        (status = 503, description = "`database_unavailable`, `database_error`; with `Retry-After`", body = super::types::ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn challenge(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let state = state.into_inner();
    let result = async {
        // Any body is ignored, but it must be small and arrive.
        read_body(&state, &req, payload, CHALLENGE_BODY_LIMIT).await?;
        let registrar = state.registrar.clone();
        let challenge = super::blocking(&state, move || registrar.new_challenge()).await?;
        Ok::<_, ApiError>(
            no_store(HttpResponse::Ok()).json(ChallengeResponse {
                challenge: STANDARD.encode(challenge.bytes),
                expires_at: challenge
                    .expires_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            }),
        )
    }
    .await;
    result.map_err(|e| counted(&state, e))
}

/// Log in with a CMS signature of a challenge by the holder's AUTH key.
#[utoipa::path(
    post,
    path = "/cabinet/api/login",
    tag = "cabinet",
    request_body(content = LoginRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "A session of at most 15 minutes", body = SessionResponse),
        (status = 400, description = "`request_malformed`, `cms_malformed`", body = super::types::ProblemDocument, content_type = "application/problem+json"),
        (status = 401, description = "`challenge_invalid` (unknown, expired or used), `cms_signature_invalid`, `cms_signer_unknown` (the signer is no certificate this CA issued)", body = super::types::ProblemDocument, content_type = "application/problem+json"),
        (status = 403, description = "`cms_signer_wrong_kind` (signed with the SIGN key), `certificate_revoked`, `certificate_on_hold`, `certificate_expired`", body = super::types::ProblemDocument, content_type = "application/problem+json"),
        (status = 408, description = "`body_timeout`", body = super::types::ProblemDocument, content_type = "application/problem+json"),
        (status = 413, description = "`body_too_large` (limit 64 KiB)", body = super::types::ProblemDocument, content_type = "application/problem+json"),
        (status = 422, description = "`cms_algorithm_not_allowed` (a digest other than SHA-256, SHA-384 or SHA-512)", body = super::types::ProblemDocument, content_type = "application/problem+json"),
        (status = 503, description = "`database_unavailable`, `database_error`; with `Retry-After`", body = super::types::ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let state = state.into_inner();
    let result = async {
        let body = read_body(&state, &req, payload, LOGIN_BODY_LIMIT).await?;
        let request: LoginRequest = json_body(&body)?;
        let message = SignedMessage::from_text(&request.cms).map_err(RaError::from)?;
        let registrar = state.registrar.clone();
        let session = super::blocking(&state, move || registrar.login(&message)).await?;
        Ok::<_, ApiError>(
            no_store(HttpResponse::Ok()).json(SessionResponse {
                session_token: session.token,
                expires_at: session
                    .expires_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                application_id: session.application_id,
            }),
        )
    }
    .await;
    result.map_err(|e| counted(&state, e))
}

/// The holder's certificates.
#[utoipa::path(
    get,
    path = "/cabinet/api/certificates",
    tag = "cabinet",
    security(("session_token" = [])),
    responses(
        (status = 200, description = "Every certificate issued to the holder, newest first", body = HolderCertificates),
        (status = 401, description = "`session_invalid`", body = super::types::ProblemDocument, content_type = "application/problem+json"),
        (status = 403, description = "`certificate_revoked`, `certificate_on_hold`, `certificate_expired`: the AUTH certificate that opened the session is no longer valid (its sessions end with it)", body = super::types::ProblemDocument, content_type = "application/problem+json"),
        (status = 503, description = "`database_unavailable`, `database_error`; with `Retry-After`", body = super::types::ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn certificates(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let state = state.into_inner();
    let result = async {
        let holder = session(&state, &req).await?;
        let registrar = state.registrar.clone();
        let listed =
            super::blocking(&state, move || registrar.holder_certificates(&holder)).await?;
        let now = state.clock.now().naive_utc();
        let certificates = listed
            .into_iter()
            .filter_map(|h| {
                let c = h.certificate;
                let der = c.der.as_deref()?;
                let on_hold = c.revocation_reason.as_deref()
                    == Some(crate::vocab::RevocationReason::CertificateHold.as_str());
                let status = match c.status {
                    CertificateStatus::Revoked if on_hold => "on_hold",
                    CertificateStatus::Revoked => "revoked",
                    _ if now > c.not_after => "expired",
                    _ => "issued",
                };
                Some(HolderCertificate {
                    serial: c.serial.clone(),
                    kind: c.kind.as_str().to_owned(),
                    status: status.to_owned(),
                    revocation_reason: c.revocation_reason.clone(),
                    revoked_at: c.revoked_at.map(rfc3339),
                    not_before: rfc3339(c.not_before),
                    not_after: rfc3339(c.not_after),
                    storage: h.storage,
                    application_id: c.application_id.clone().unwrap_or_default(),
                    pem: certificate_pem(der),
                })
            })
            .collect();
        Ok::<_, ApiError>(no_store(HttpResponse::Ok()).json(HolderCertificates { certificates }))
    }
    .await;
    result.map_err(|e| counted(&state, e))
}

/// Revoke one of the holder's certificates.
#[utoipa::path(
    post,
    path = "/cabinet/api/revocations",
    tag = "cabinet",
    security(("session_token" = [])),
    request_body(content = RevocationRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Revoked", body = super::types::RevocationResponse),
        (status = 400, description = "`request_malformed`, `serial_invalid`", body = super::types::ProblemDocument, content_type = "application/problem+json"),
        (status = 401, description = "`session_invalid`", body = super::types::ProblemDocument, content_type = "application/problem+json"),
        (status = 403, description = "`not_certificate_holder`; `certificate_revoked`, `certificate_on_hold`, `certificate_expired` (the AUTH certificate that opened the session is no longer valid)", body = super::types::ProblemDocument, content_type = "application/problem+json"),
        (status = 404, description = "`certificate_not_found`", body = super::types::ProblemDocument, content_type = "application/problem+json"),
        (status = 408, description = "`body_timeout`", body = super::types::ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "`already_revoked`", body = super::types::ProblemDocument, content_type = "application/problem+json"),
        (status = 413, description = "`body_too_large`", body = super::types::ProblemDocument, content_type = "application/problem+json"),
        (status = 422, description = "`revocation_reason_invalid`, `invalidity_date_invalid`", body = super::types::ProblemDocument, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited_iin` (`[limits] revocations_per_iin_per_day`, counted with the holder's revocations under a consent token)", body = super::types::ProblemDocument, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds until the request can succeed"))),
        (status = 503, description = "`database_unavailable`, `database_error`; with `Retry-After`", body = super::types::ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn revoke(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let state = state.into_inner();
    let result = async {
        let holder = session(&state, &req).await?;
        let body = read_body(&state, &req, payload, REVOCATION_BODY_LIMIT).await?;
        let request: RevocationRequest = json_body(&body)?;
        let (serial, reason, invalidity) = revocation_fields(&request)?;
        let registrar = state.registrar.clone();
        let cert = super::blocking(&state, move || {
            registrar.revoke(Revoker::Cabinet(&holder), &serial, reason, invalidity)
        })
        .await?;
        state.metrics.revocation(reason.as_str());
        Ok::<_, ApiError>(no_store(HttpResponse::Ok()).json(super::revocation_json(&cert)))
    }
    .await;
    result.map_err(|e| counted(&state, e))
}

/// Re-issue the logged-in pair with new keys.
#[utoipa::path(
    post,
    path = "/cabinet/api/reissues",
    tag = "cabinet",
    // A new re-issue needs the session; the same request repeated after a lost answer is
    // answered on its confirmation alone, so the session is optional in the document.
    security((), ("session_token" = [])),
    request_body(content = ReissueRequest, content_type = "application/json"),
    params(
        ("Tamga-Confirmation" = String, Header, description = "Standard base64 of a detached CMS SignedData over the exact body bytes, signed with the SIGN key of the pair that logged in"),
        ("Tamga-Consent" = Option<String>, Header, description = "A Digital ID consent token with purpose eds_reissue for the same IIN; required only with `[ra] reissue_requires_consent = true`"),
    ),
    responses(
        (status = 201, description = "The new pair, issued; the old pair is revoked `superseded`", body = super::types::ApplicationResponse),
        (status = 200, description = "The same body and confirmation again after a lost answer: the application it created, under a new `access_token` — accepted on the confirmation alone (the session may have ended, the old pair is superseded by then; a consent token is not checked again)", body = super::types::ApplicationResponse),
        (status = 400, description = "`request_malformed`, `cms_malformed`, `csr_malformed`", body = super::types::ProblemDocument, content_type = "application/problem+json"),
        (status = 401, description = "`session_invalid`, `confirmation_missing`, `cms_signature_invalid` (also: a body that is not the one signed), `cms_signer_unknown`; with `reissue_requires_consent`: `consent_token_missing` and the other consent-token refusals", body = super::types::ProblemDocument, content_type = "application/problem+json"),
        (status = 403, description = "`cms_signer_wrong_kind` (signed with the AUTH key), `cms_signer_not_holder` (the SIGN key of another pair), `certificate_revoked`, `certificate_on_hold`, `certificate_expired`, `consent_token_wrong_purpose`, `consent_token_wrong_holder`", body = super::types::ProblemDocument, content_type = "application/problem+json"),
        (status = 408, description = "`body_timeout`", body = super::types::ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "`already_reissued`, `key_reused` (a key certified before, the current ones included), `key_blocked`, `consent_token_replayed`", body = super::types::ProblemDocument, content_type = "application/problem+json"),
        (status = 413, description = "`body_too_large` (limit 64 KiB)", body = super::types::ProblemDocument, content_type = "application/problem+json"),
        (status = 422, description = "`cms_algorithm_not_allowed`, `email_invalid`, `language_invalid`, `storage_type_invalid`, `csr_signature_invalid`, `csr_signature_algorithm_not_allowed`, `csr_email_mismatch`, `key_algorithm_not_allowed`, `key_too_small`, `key_weak`, `key_encoding_invalid`, `gost_key_not_for_auth`, `gost_parameter_set_unknown`, `gost_point_invalid`, `same_key_for_auth_and_sign`, `iin_invalid`, `name_invalid`", body = super::types::ProblemDocument, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited_iin` (a re-issue counts as an application)", body = super::types::ProblemDocument, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds until the request can succeed"))),
        (status = 503, description = "`database_unavailable`, `database_error`, `signing_key_unavailable`, `gost_unavailable`; with `Retry-After`", body = super::types::ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn reissue(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let state = state.into_inner();
    let result = async {
        // The session is checked by the RA, after the confirmation: the same body and
        // confirmation repeated after a lost answer need no live session.
        let session_token = match bearer(&req) {
            Ok(Some(t)) if t.len() <= 256 => Some(t),
            Ok(None) => None,
            _ => return Err(ApiError::Ra(RaError::SessionInvalid)),
        };
        let Some(confirmation) = req.headers().get(CONFIRMATION_HEADER) else {
            return Err(ApiError::ConfirmationMissing);
        };
        let confirmation = confirmation.to_str().map_err(|_| {
            RaError::Cms(CmsError::Malformed(format!(
                "the {CONFIRMATION_HEADER} header is not ASCII"
            )))
        })?;
        let confirmation = SignedMessage::from_text(confirmation).map_err(RaError::from)?;
        // Verified here, refused (if so) by the RA only for a new re-issue: a repeat after a lost
        // answer must not fail because the token has expired since.
        let consent = if state.config.get().ra.reissue_requires_consent {
            Some(
                match req.headers().get(CONSENT_HEADER).map(|v| v.to_str()) {
                    None => Err(ConsentError::Missing),
                    Some(Err(_)) => Err(ConsentError::Malformed(format!(
                        "the {CONSENT_HEADER} header is not ASCII"
                    ))),
                    Some(Ok(token)) if token.trim().is_empty() => Err(ConsentError::Missing),
                    Some(Ok(token)) => state.trusted_keys.verify(
                        token.trim(),
                        Purpose::EdsReissue,
                        state.clock.now(),
                    ),
                },
            )
        } else {
            None
        };
        let body = read_body(&state, &req, payload, REISSUE_BODY_LIMIT).await?;
        let request: ReissueRequest = json_body(&body)?;
        let registrar = state.registrar.clone();
        let submitted = super::blocking(&state, move || {
            registrar.reissue(
                session_token.as_deref(),
                Reissue {
                    body: &body,
                    confirmation: &confirmation,
                    email: request.email,
                    language: request.language,
                    storage: request.storage,
                    auth_csr: request.csrs.auth,
                    sign_csr: request.csrs.sign,
                    consent,
                },
            )
        })
        .await?;
        submitted_response(&state, submitted, "reissued")
    }
    .await;
    result.map_err(|e| counted(&state, e))
}
