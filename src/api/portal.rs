//! The portal API: applications for certificates (`/api/v1/applications`).

use std::time::{Duration, Instant};

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;

use super::problem::ApiError;
use super::types::{ApplicationRequest, ApplicationResponse, IssuedCertificate, RevocationRequest};
use super::AppState;
use crate::ca::Serial;
use crate::digital_id::{ConsentError, Purpose};
use crate::ra::{ApplicationForm, RaError};
use crate::store::{Application, Certificate};
use crate::vocab::RevocationReason;

/// Largest application body (two CSRs and a small form).
pub const APPLICATION_BODY_LIMIT: usize = 64 * 1024;

/// The bearer token of the `Authorization` header: `None` when absent, an error when present
/// but not a bearer token.
pub(super) fn bearer(req: &HttpRequest) -> Result<Option<String>, ConsentError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| ConsentError::Malformed("the Authorization header is not ASCII".to_owned()))?;
    let (scheme, token) = value.split_once(' ').ok_or_else(|| {
        ConsentError::Malformed("expected Authorization: Bearer <token>".to_owned())
    })?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(ConsentError::Malformed(
            "expected the Bearer scheme".to_owned(),
        ));
    }
    let token = token.trim();
    if token.is_empty() {
        return Ok(None);
    }
    Ok(Some(token.to_owned()))
}

/// Read a body of at most `limit` bytes that arrives in full within `[server]
/// body_timeout_ms` (a whole-body deadline, so a client trickling bytes cannot hold the
/// request open longer).
pub async fn read_body(
    state: &AppState,
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<Vec<u8>, ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::BodyTooLarge(limit));
    }
    let ms = state.config.get().server.body_timeout_ms;
    let deadline = Instant::now() + Duration::from_millis(u64::from(ms));
    let mut body = Vec::with_capacity(declared.unwrap_or(0).min(limit));
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let next = actix_web::rt::time::timeout(left, payload.next())
            .await
            .map_err(|_| ApiError::BodyTimeout(ms))?;
        let Some(chunk) = next else {
            break;
        };
        let chunk =
            chunk.map_err(|e| ApiError::RequestMalformed(format!("reading the body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::BodyTooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The portal's write requests: a consent token for `purpose` (checked first), then a JSON
/// body of at most `limit` bytes.
async fn consented_request<T: serde::de::DeserializeOwned>(
    state: &AppState,
    req: &HttpRequest,
    payload: web::Payload,
    purpose: Purpose,
    limit: usize,
) -> Result<(crate::digital_id::VerifiedConsent, T), ApiError> {
    let token = bearer(req)?.ok_or(ConsentError::Missing)?;
    let body = read_body(state, req, payload, limit).await?;
    let consent = state
        .trusted_keys
        .verify(&token, purpose, state.clock.now())?;
    let request =
        serde_json::from_slice(&body).map_err(|e| ApiError::RequestMalformed(e.to_string()))?;
    Ok((consent, request))
}

pub(super) fn rfc3339(t: chrono::NaiveDateTime) -> String {
    t.and_utc()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// RFC 7468 PEM of a DER certificate (64-character lines), without parsing it again.
pub(super) fn certificate_pem(der: &[u8]) -> String {
    crate::pem::encode("CERTIFICATE", der)
}

fn certificate_json(cert: &Certificate) -> Result<IssuedCertificate, ApiError> {
    let der = cert
        .der
        .as_deref()
        .ok_or_else(|| ApiError::Internal(format!("certificate {} has no DER", cert.serial)))?;
    Ok(IssuedCertificate {
        kind: cert.kind.as_str().to_owned(),
        serial: cert.serial.clone(),
        not_before: rfc3339(cert.not_before),
        not_after: rfc3339(cert.not_after),
        pem: certificate_pem(der),
    })
}

fn application_json(
    state: &AppState,
    app: &Application,
    certs: &[Certificate],
    access_token: Option<String>,
) -> Result<ApplicationResponse, ApiError> {
    let certificates = certs
        .iter()
        .map(certificate_json)
        .collect::<Result<Vec<_>, _>>()?;
    // The chain of each issuing CA that signed one of the certificates (the AUTH and SIGN
    // certificates may come from two: RSA and GOST), issuing CA then root, once each.
    let chain_pem = if certificates.is_empty() {
        None
    } else {
        let mut ids: Vec<&str> = Vec::new();
        for c in certs {
            if !ids.contains(&c.issuer_id.as_str()) {
                ids.push(&c.issuer_id);
            }
        }
        let mut pem = String::new();
        for id in ids {
            let issuer = state.issuers.get(id).unwrap_or(&state.issuer);
            pem.push_str(
                &issuer
                    .chain_pem()
                    .map_err(|e| ApiError::Internal(format!("chain: {e}")))?,
            );
        }
        Some(pem)
    };
    Ok(ApplicationResponse {
        id: app.id.clone(),
        status: app.status.as_str().to_owned(),
        access_token,
        reason: app.reason.clone(),
        created_at: rfc3339(app.created_at),
        certificates,
        chain_pem,
        replaces: app.replaces_application_id.clone(),
    })
}

/// Count a refusal under its code, then pass it on.
pub(super) fn counted(state: &AppState, e: ApiError) -> ApiError {
    state.metrics.rejection(e.code());
    e
}

/// Submit an application for the AUTH and SIGN certificates.
#[utoipa::path(
    post,
    path = "/api/v1/applications",
    tag = "portal",
    request_body(content = ApplicationRequest, content_type = "application/json"),
    security(("consent_token" = [])),
    responses(
        (status = 201, description = "Stored; `status` is `issued` (certificates included) or `pending_review`", body = ApplicationResponse),
        (status = 200, description = "The same request again (same consent token, form and CSRs) after its answer was lost: the application as it stands — an interrupted issuance completed — under a new `access_token` (the previous one stops working). Nothing new is created.", body = ApplicationResponse),
        (status = 400, description = "`request_malformed`, `csr_malformed`", body = super::types::ProblemDocument, content_type = "application/problem+json"),
        (status = 401, description = "`consent_token_missing`, `consent_token_malformed`, `consent_token_signature_invalid`, `consent_token_untrusted_key`, `consent_token_algorithm_not_allowed`, `consent_token_expired`, `consent_token_not_yet_valid`, `consent_token_lifetime_too_long`, `consent_token_lifetime_invalid`, `consent_token_wrong_audience`, `consent_token_wrong_issuer`", body = super::types::ProblemDocument, content_type = "application/problem+json"),
        (status = 403, description = "`consent_token_wrong_purpose`; `client_certificate_required`, `client_certificate_untrusted` (only with `[server.tls] client_ca`: the connection's TLS client certificate must chain to it)", body = super::types::ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "`consent_token_replayed` (a used token with a different request), `key_reused`, `key_blocked`", body = super::types::ProblemDocument, content_type = "application/problem+json"),
        (status = 408, description = "`body_timeout` (the body did not arrive in full within `[server] body_timeout_ms`; the connection closes)", body = super::types::ProblemDocument, content_type = "application/problem+json"),
        (status = 413, description = "`body_too_large` (limit 64 KiB)", body = super::types::ProblemDocument, content_type = "application/problem+json"),
        (status = 422, description = "`iin_invalid`, `name_invalid`, `agreement_not_accepted`, `agreement_version_mismatch`, `email_invalid`, `language_invalid`, `storage_type_invalid`, `csr_signature_invalid`, `csr_signature_algorithm_not_allowed`, `csr_email_mismatch`, `key_algorithm_not_allowed`, `key_too_small`, `key_weak`, `key_encoding_invalid`, `gost_key_not_for_auth`, `gost_parameter_set_unknown`, `gost_point_invalid`, `same_key_for_auth_and_sign`", body = super::types::ProblemDocument, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited_iin` (the consent token's IIN has `[limits] applications_per_iin_per_day` applications in the last 24 hours; nothing was stored and the token was not used), `rate_limited_client` (`[limits] client_requests_per_second` from this address)", body = super::types::ProblemDocument, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds until the request can succeed"))),
        (status = 503, description = "`database_unavailable` (the database cannot be reached; nothing was stored unless the work finished after the answer — repeat the same request), `database_error`, `signing_key_unavailable` (the issuing key's HSM token cannot be reached; nothing was stored), `gost_unavailable` (a GOST SIGN request, and this server's OpenSSL has no gost engine; RSA and EC work); with `Retry-After`", body = super::types::ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn create_application(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let state = state.into_inner();
    let result = async {
        let (consent, request): (_, ApplicationRequest) = consented_request(
            &state,
            &req,
            payload,
            Purpose::EdsIssuance,
            APPLICATION_BODY_LIMIT,
        )
        .await?;
        let form = ApplicationForm::from(request);
        let registrar = state.registrar.clone();
        let submitted = super::blocking(&state, move || registrar.submit(&consent, form)).await?;
        let outcome = submitted.application.status.as_str();
        submitted_response(&state, submitted, outcome)
    }
    .await;
    result.map_err(|e| counted(&state, e))
}

/// An application's status and, once issued, its certificates and chain.
#[utoipa::path(
    get,
    path = "/api/v1/applications/{id}",
    tag = "portal",
    params(("id" = String, Path, description = "Application id")),
    security(("access_token" = [])),
    responses(
        (status = 200, body = ApplicationResponse),
        (status = 401, description = "`access_token_invalid`", body = super::types::ProblemDocument, content_type = "application/problem+json"),
        (status = 403, description = "`client_certificate_required`, `client_certificate_untrusted` (only with `[server.tls] client_ca`: the connection's TLS client certificate must chain to it)", body = super::types::ProblemDocument, content_type = "application/problem+json"),
        (status = 404, description = "`application_not_found`", body = super::types::ProblemDocument, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited_client`", body = super::types::ProblemDocument, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds until the request can succeed"))),
        (status = 503, description = "`database_unavailable`, `database_error`; with `Retry-After`", body = super::types::ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn get_application(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let state = state.into_inner();
    let result = async {
        let token = match bearer(&req) {
            Ok(Some(t)) => t,
            _ => return Err(ApiError::Ra(RaError::AccessTokenInvalid)),
        };
        let id = id.into_inner();
        if id.len() > 64 {
            return Err(ApiError::Ra(RaError::ApplicationNotFound));
        }
        let registrar = state.registrar.clone();
        let view = super::blocking(&state, move || registrar.view(&id, &token)).await?;
        let body = application_json(&state, &view.application, &view.certificates, None)?;
        Ok(HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(body))
    }
    .await;
    result.map_err(|e| counted(&state, e))
}

/// The answer to a submission or a re-issue, counted under `outcome` when it created the
/// application: `201` for a new application, `200` for the same request repeated after a lost
/// answer, with `Location` and the access token.
pub(super) fn submitted_response(
    state: &AppState,
    submitted: crate::ra::Submitted,
    outcome: &'static str,
) -> Result<HttpResponse, ApiError> {
    if submitted.created {
        state.metrics.application(outcome);
        for cert in &submitted.certificates {
            state.metrics.certificate_issued(cert.kind.as_str());
        }
    } else {
        state.metrics.application("repeated");
    }
    let body = application_json(
        state,
        &submitted.application,
        &submitted.certificates,
        Some(submitted.access_token),
    )?;
    let mut response = if submitted.created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(response
        .insert_header((
            header::LOCATION,
            format!("/api/v1/applications/{}", body.id),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body))
}

/// Revoke one of the holder's own certificates.
#[utoipa::path(
    post,
    path = "/api/v1/revocations",
    tag = "portal",
    request_body(content = super::types::RevocationRequest, content_type = "application/json"),
    security(("consent_token" = [])),
    responses(
        (status = 200, description = "Revoked", body = super::types::RevocationResponse),
        (status = 400, description = "`request_malformed`, `serial_invalid`", body = super::types::ProblemDocument, content_type = "application/problem+json"),
        (status = 401, description = "consent-token refusals as for applications", body = super::types::ProblemDocument, content_type = "application/problem+json"),
        (status = 403, description = "`consent_token_wrong_purpose` (needs eds_revocation), `not_certificate_holder`; `client_certificate_required`, `client_certificate_untrusted` (only with `[server.tls] client_ca`: the connection's TLS client certificate must chain to it)", body = super::types::ProblemDocument, content_type = "application/problem+json"),
        (status = 404, description = "`certificate_not_found`", body = super::types::ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "`already_revoked`, `consent_token_replayed`", body = super::types::ProblemDocument, content_type = "application/problem+json"),
        (status = 408, description = "`body_timeout` (the body did not arrive in full within `[server] body_timeout_ms`; the connection closes)", body = super::types::ProblemDocument, content_type = "application/problem+json"),
        (status = 413, description = "`body_too_large`", body = super::types::ProblemDocument, content_type = "application/problem+json"),
        (status = 422, description = "`iin_invalid`, `name_invalid`, `revocation_reason_invalid`, `invalidity_date_invalid`", body = super::types::ProblemDocument, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited_iin` (the holder's IIN has `[limits] revocations_per_iin_per_day` revocations in the last 24 hours; nothing was changed and the token was not used), `rate_limited_client`", body = super::types::ProblemDocument, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds until the request can succeed"))),
        (status = 503, description = "`database_unavailable`, `database_error`; with `Retry-After`", body = super::types::ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn create_revocation(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let state = state.into_inner();
    let result = async {
        let (consent, request): (_, RevocationRequest) = consented_request(
            &state,
            &req,
            payload,
            Purpose::EdsRevocation,
            REVOCATION_BODY_LIMIT,
        )
        .await?;
        let (serial, reason, invalidity) = revocation_fields(&request)?;
        let registrar = state.registrar.clone();
        let cert = super::blocking(&state, move || {
            registrar.revoke(
                crate::ra::Revoker::Holder(&consent),
                &serial,
                reason,
                invalidity,
            )
        })
        .await?;
        state.metrics.revocation(reason.as_str());
        Ok::<_, ApiError>(
            HttpResponse::Ok()
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .json(revocation_json(&cert)),
        )
    }
    .await;
    result.map_err(|e| counted(&state, e))
}

/// The form of an application body, for the RA's checks.
impl From<ApplicationRequest> for ApplicationForm {
    fn from(request: ApplicationRequest) -> ApplicationForm {
        ApplicationForm {
            agreement_version: request.agreement_version,
            agreement_accepted: request.agreement_accepted,
            email: request.email,
            language: request.language,
            storage: request.storage,
            auth_csr: request.csrs.auth,
            sign_csr: request.csrs.sign,
        }
    }
}

/// The serial, reason and invalidity date of a revocation body, read and checked (whether
/// the date is in the future is the RA's check, against its clock).
pub(crate) fn revocation_fields(
    request: &RevocationRequest,
) -> Result<(Serial, RevocationReason, Option<DateTime<Utc>>), RaError> {
    let serial = Serial::parse(&request.serial)?;
    let reason =
        RevocationReason::parse(&request.reason).ok_or(RaError::RevocationReasonInvalid)?;
    let invalidity = request
        .invalidity_date
        .as_deref()
        .map(crate::ra::InvalidityDate::parse)
        .transpose()?;
    Ok((serial, reason, invalidity))
}

/// Largest revocation body.
pub const REVOCATION_BODY_LIMIT: usize = 4 * 1024;

/// The revocation state of a certificate, as the API and the CLI show it.
pub fn revocation_json(cert: &Certificate) -> super::types::RevocationResponse {
    super::types::RevocationResponse {
        serial: cert.serial.clone(),
        status: cert.status.as_str().to_owned(),
        reason: cert.revocation_reason.clone().unwrap_or_default(),
        revoked_at: cert.revoked_at.map(rfc3339).unwrap_or_default(),
        invalidity_date: cert.invalidity_date.map(rfc3339),
    }
}
