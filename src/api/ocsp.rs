//! `POST /ocsp` and `GET /ocsp/{base64}` (RFC 6960 Appendix A, RFC 5019 §5).

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;

use super::portal::read_body;
use super::problem::ApiError;
use super::AppState;
use crate::ocsp::{Answer, Outcome, MAX_REQUEST_LEN};

/// Media type of requests.
const OCSP_REQUEST: &str = "application/ocsp-request";
/// Media type of responses.
const OCSP_RESPONSE: &str = "application/ocsp-response";
/// Longest time an HTTP cache (CDN) may keep a pre-signed response: relying parties behind
/// a cache see a revocation within this long.
const HTTP_MAX_AGE: i64 = 300;

/// Standard or URL-safe alphabet, padding optional.
const LENIENT: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_decode_padding_mode(DecodePaddingMode::Indifferent)
    .with_decode_allow_trailing_bits(false);
const STANDARD_LENIENT: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::STANDARD, LENIENT);
const URL_SAFE_LENIENT: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::URL_SAFE, LENIENT);

fn http_date(t: chrono::NaiveDateTime) -> String {
    let secs = u64::try_from(t.and_utc().timestamp()).unwrap_or(0);
    header::HttpDate::from(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs)).to_string()
}

/// Percent-decode a path (only what base64 needs; anything else undecodable is an error).
fn percent_decode(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            // Two hex digits: `from_str_radix` alone would also take a sign ("%+1").
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            let value = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
            out.push(value);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The DER request of a `GET /ocsp/{base64}` path, or `None` when it cannot be decoded.
pub(crate) fn decode_get(path: &str) -> Option<Vec<u8>> {
    let encoded = percent_decode(path.strip_prefix("/ocsp/")?)?;
    if encoded.len() > MAX_REQUEST_LEN * 2 {
        return None;
    }
    STANDARD_LENIENT
        .decode(&encoded)
        .or_else(|_| URL_SAFE_LENIENT.decode(&encoded))
        .ok()
}

fn respond(state: &AppState, answer: Answer) -> HttpResponse {
    let metrics = &state.metrics;
    match &answer.outcome {
        Outcome::CacheHit => metrics.ocsp_cache("hit"),
        Outcome::Degraded => metrics.ocsp_cache("degraded"),
        Outcome::Signed { cached, signing } => {
            metrics.ocsp_cache("miss");
            metrics.ocsp_signing(signing.as_secs_f64());
            let _ = cached;
        }
        Outcome::Error(status) => metrics.ocsp_response(status),
    }
    for status in &answer.statuses {
        metrics.ocsp_response(status);
    }
    let mut response = HttpResponse::Ok();
    response.content_type(OCSP_RESPONSE);
    match answer.validity {
        Some((this_update, next_update)) => {
            let remaining = (next_update - state.clock.now().naive_utc()).num_seconds();
            let max_age = remaining.clamp(0, HTTP_MAX_AGE);
            let etag = answer.digest.as_deref().unwrap_or_default();
            response
                .insert_header((
                    header::CACHE_CONTROL,
                    format!("max-age={max_age}, public, no-transform, must-revalidate"),
                ))
                .insert_header((header::LAST_MODIFIED, http_date(this_update)))
                .insert_header((header::EXPIRES, http_date(next_update)))
                .insert_header((header::ETAG, format!("\"{etag}\"")));
        }
        None => {
            response.insert_header((header::CACHE_CONTROL, "no-store"));
        }
    }
    response.body(answer.der.as_ref().clone())
}

/// An OCSPResponse with only an error status (RFC 6960: internalError 2, tryLater 3).
fn error_status(state: &AppState, status: u8, name: &'static str) -> HttpResponse {
    state.metrics.ocsp_response(name);
    HttpResponse::Ok()
        .content_type(OCSP_RESPONSE)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(vec![0x30, 0x03, 0x0A, 0x01, status])
}

async fn answer(state: web::Data<AppState>, request: Option<Vec<u8>>) -> HttpResponse {
    let state = state.into_inner();
    let responder = std::sync::Arc::clone(&state.ocsp);
    let request = request.unwrap_or_default();
    // The hot path: a pre-signed answer straight from the cache, on this worker.
    if let Some(hit) = responder.cached(&request) {
        return respond(&state, hit);
    }
    let deadline =
        std::time::Duration::from_millis(u64::from(state.config.get().database.request_timeout_ms));
    match actix_web::rt::time::timeout(deadline, web::block(move || responder.respond(&request)))
        .await
    {
        Ok(Ok(answer)) => respond(&state, answer),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "OCSP request did not run");
            error_status(&state, 0x02, "internal_error")
        }
        Err(_) => error_status(&state, 0x03, "try_later"),
    }
}

/// OCSP over POST.
#[utoipa::path(post, path = "/ocsp", tag = "public",
    request_body(content = super::types::Der, content_type = "application/ocsp-request", description = "DER OCSPRequest, at most 4 KiB"),
    responses(
        (status = 200, description = "DER OCSPResponse: successful, malformedRequest, unauthorized, tryLater or internalError", body = super::types::Der, content_type = "application/ocsp-response"),
        (status = 408, description = "`body_timeout` (the body did not arrive in full within `[server] body_timeout_ms`; the connection closes)", body = super::types::ProblemDocument, content_type = "application/problem+json"),
    ))]
pub async fn post(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let content_type_ok = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case(OCSP_REQUEST))
        });
    let body = if content_type_ok {
        match read_body(&state, &req, payload, MAX_REQUEST_LEN).await {
            Ok(body) => Some(body),
            // A body that never arrives is no OCSP client's: 408 and the connection closed.
            Err(e @ ApiError::BodyTimeout(_)) => {
                state.metrics.rejection(e.code());
                return e.error_response();
            }
            Err(_) => None,
        }
    } else {
        None
    };
    answer(state, body).await
}

/// OCSP over GET: the base64 DER request as the last path segment (percent-encoded or not).
#[utoipa::path(get, path = "/ocsp/{request}", tag = "public",
    params(("request" = String, Path, description = "base64 of the DER OCSPRequest, URL-encoded")),
    responses((status = 200, description = "DER OCSPResponse; pre-signed answers carry Cache-Control, ETag, Last-Modified and Expires", body = super::types::Der, content_type = "application/ocsp-response")))]
pub async fn get(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let request = decode_get(req.uri().path());
    answer(state, request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_paths_decode_with_and_without_percent_encoding() {
        let der = vec![0x30, 0x3e, 0xfb, 0xff, 0x01];
        let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
        assert!(
            b64.contains('+') || b64.contains('/') || b64.contains('='),
            "{b64}"
        );
        let encoded = b64
            .replace('+', "%2B")
            .replace('/', "%2F")
            .replace('=', "%3D");
        assert_eq!(decode_get(&format!("/ocsp/{encoded}")), Some(der.clone()));
        assert_eq!(decode_get(&format!("/ocsp/{b64}")), Some(der.clone()));
        assert_eq!(
            decode_get(&format!("/ocsp/{}", b64.trim_end_matches('='))),
            Some(der.clone())
        );
        let url_safe = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&der);
        assert_eq!(decode_get(&format!("/ocsp/{url_safe}")), Some(der));
        assert_eq!(decode_get("/ocsp/%ZZ"), None);
        // An escape is exactly two hex digits, never a signed number.
        assert_eq!(percent_decode("%+1"), None);
        assert_eq!(percent_decode("%-1"), None);
        assert_eq!(percent_decode("%2b%2F"), Some("+/".to_owned()));
        assert_eq!(decode_get("/ocsp/!!!"), None);
    }
}
