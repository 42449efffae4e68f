//! `POST /ocsp` and `GET /ocsp/{base64}` (RFC 6960 Appendix A, RFC 5019 §5), also at a base
//! URL written with a trailing slash (`POST /ocsp/`, `GET /ocsp//{base64}`); caching headers
//! (RFC 5019 §6) and `304 Not Modified` on GET for pre-signed answers.

use actix_web::http::header::{self, HeaderMap};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;

use super::conditional::{http_date, not_modified};
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
///
/// RFC 5019 §5 has the client join the responder's base URL and the encoded request with a
/// `/`: a base URL that ends in `/` itself (`…/ocsp/`, as NCA publishes it) gives
/// `/ocsp//{base64}`. So one raw `/` right after `/ocsp/` is that separator, never part of the
/// request. This is unambiguous: a DER OCSPRequest begins with the SEQUENCE tag `0x30`, so its
/// base64 begins with `M`, never with `/` (nor `%2F`). Anything more (`/ocsp///…`) is not a
/// request. The rest is percent-decoded, then read as standard or URL-safe base64, padded or
/// not.
pub(crate) fn decode_get(path: &str) -> Option<Vec<u8>> {
    let raw = path.strip_prefix("/ocsp/")?;
    let raw = raw.strip_prefix('/').unwrap_or(raw);
    let encoded = percent_decode(raw)?;
    if encoded.len() > MAX_REQUEST_LEN * 2 {
        return None;
    }
    STANDARD_LENIENT
        .decode(&encoded)
        .or_else(|_| URL_SAFE_LENIENT.decode(&encoded))
        .ok()
}

/// The HTTP answer carrying `answer`. A pre-signed answer (no nonce, a successful status)
/// may be cached: `Cache-Control` (RFC 5019 §6.2: max-age at most [`HTTP_MAX_AGE`] and never
/// past nextUpdate), `ETag`, `Last-Modified` (thisUpdate) and `Expires` (nextUpdate); on a
/// GET whose `conditions` name it, `304 Not Modified` with the same headers and no body. Nonce
/// and error answers are `no-store` and never 304.
fn respond(state: &AppState, answer: Answer, conditions: Option<&HeaderMap>) -> HttpResponse {
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
    let (Some((this_update, next_update)), Some(digest)) =
        (answer.validity, answer.digest.as_deref())
    else {
        return HttpResponse::Ok()
            .content_type(OCSP_RESPONSE)
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .body(answer.der.as_ref().clone());
    };
    let now = state.clock.now().naive_utc();
    let max_age = (next_update - now).num_seconds().clamp(0, HTTP_MAX_AGE);
    let etag = format!("\"{digest}\"");
    let unchanged = conditions.is_some_and(|h| not_modified(h, &etag, this_update, now));
    let mut response = if unchanged {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((
            header::CACHE_CONTROL,
            format!("max-age={max_age}, public, no-transform, must-revalidate"),
        ))
        .insert_header((header::LAST_MODIFIED, http_date(this_update)))
        .insert_header((header::EXPIRES, http_date(next_update)))
        .insert_header((header::ETAG, etag));
    if unchanged {
        return response.finish();
    }
    response
        .content_type(OCSP_RESPONSE)
        .body(answer.der.as_ref().clone())
}

/// An OCSPResponse with only an error status (RFC 6960: internalError 2, tryLater 3).
fn error_status(state: &AppState, status: u8, name: &'static str) -> HttpResponse {
    state.metrics.ocsp_response(name);
    HttpResponse::Ok()
        .content_type(OCSP_RESPONSE)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(vec![0x30, 0x03, 0x0A, 0x01, status])
}

/// Answer `request` (`None`: no request could be read, so `malformedRequest`); a GET passes
/// its headers as `conditions`.
async fn answer(
    state: web::Data<AppState>,
    request: Option<Vec<u8>>,
    conditions: Option<&HeaderMap>,
) -> HttpResponse {
    let state = state.into_inner();
    let responder = std::sync::Arc::clone(&state.ocsp);
    let request = request.unwrap_or_default();
    // The hot path: a pre-signed answer straight from the cache, on this worker.
    if let Some(hit) = responder.cached(&request) {
        return respond(&state, hit, conditions);
    }
    let deadline =
        std::time::Duration::from_millis(u64::from(state.config.get().database.request_timeout_ms));
    match actix_web::rt::time::timeout(deadline, web::block(move || responder.respond(&request)))
        .await
    {
        Ok(Ok(answer)) => respond(&state, answer, conditions),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "OCSP request did not run");
            error_status(&state, 0x02, "internal_error")
        }
        Err(_) => error_status(&state, 0x03, "try_later"),
    }
}

/// Whether a POST's body is to be read as an OCSP request: with `Content-Type:
/// application/ocsp-request` (parameters aside), or with no `Content-Type` at all, as some
/// clients send it. Any other declared type, or one that is not text, is not an OCSP request,
/// and is answered `malformedRequest` without reading the body.
fn takes_body(headers: &HeaderMap) -> bool {
    let mut declared = headers.get_all(header::CONTENT_TYPE);
    match (declared.next(), declared.next()) {
        (None, _) => true,
        (Some(value), None) => value.to_str().is_ok_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case(OCSP_REQUEST))
        }),
        (Some(_), Some(_)) => false,
    }
}

/// OCSP over POST.
#[utoipa::path(post, path = "/ocsp", tag = "public",
    request_body(content = super::types::Der, content_type = "application/ocsp-request", description = "DER OCSPRequest, at most 4 KiB. A body sent without `Content-Type` is read as one too; a body declared as any other type is answered `malformedRequest` unread. The same operation answers at `/ocsp/` (a base URL written with a trailing slash)."),
    responses(
        (status = 200, description = "DER OCSPResponse: successful, malformedRequest, unauthorized, tryLater or internalError. The same caching headers as over GET (a POST is never answered 304: HTTP caches do not keep POST answers, RFC 5019 §5 has clients use GET for that).", body = super::types::Der, content_type = "application/ocsp-response"),
        (status = 408, description = "`body_timeout` (the body did not arrive in full within `[server] body_timeout_ms`; the connection closes)", body = super::types::ProblemDocument, content_type = "application/problem+json"),
    ))]
pub async fn post(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let body = if takes_body(req.headers()) {
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
    answer(state, body, None).await
}

/// OCSP over POST at a base URL written with a trailing slash (`…/ocsp/`, as NCA publishes
/// it): the same as `POST /ocsp`.
#[utoipa::path(post, path = "/ocsp/", tag = "public",
    request_body(content = super::types::Der, content_type = "application/ocsp-request", description = "DER OCSPRequest, at most 4 KiB (as `POST /ocsp`)"),
    responses(
        (status = 200, description = "DER OCSPResponse, as `POST /ocsp`", body = super::types::Der, content_type = "application/ocsp-response"),
        (status = 408, description = "`body_timeout` (the body did not arrive in full within `[server] body_timeout_ms`; the connection closes)", body = super::types::ProblemDocument, content_type = "application/problem+json"),
    ))]
pub async fn post_slash(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    post(state, req, payload).await
}

/// `GET /ocsp/`: the base URL written with a trailing slash, asked without a request. The
/// route exists so that the base URL answers as an OCSP responder does (`malformedRequest`)
/// rather than 404; a request follows it as `GET /ocsp//{base64}`.
#[utoipa::path(get, path = "/ocsp/", tag = "public",
    responses(
        (status = 200, description = "DER OCSPResponse `malformedRequest` (no request was given), `Cache-Control: no-store`", body = super::types::Der, content_type = "application/ocsp-response"),
    ))]
pub async fn get_slash(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    get(state, req).await
}

/// OCSP over GET: the base64 DER request as the last path segment (percent-encoded or not).
#[utoipa::path(get, path = "/ocsp/{request}", tag = "public",
    params(
        ("request" = String, Path, description = "base64 (standard or URL-safe, padded or not) of the DER OCSPRequest, percent-encoded or not. It may be preceded by one `/`: a base URL written with a trailing slash (`…/ocsp/`) joined to the request with `/` as RFC 5019 §5 says, i.e. `GET /ocsp//{base64}` (a request's base64 always begins with `M`, never `/`)."),
        ("If-None-Match" = Option<String>, Header, description = "Entity tags (or `*`) of answers the client holds: `304` if one is the current answer's `ETag` (weak comparison)"),
        ("If-Modified-Since" = Option<String>, Header, description = "HTTP date: `304` if the current answer's thisUpdate (`Last-Modified`) is not later, at second precision; ignored when `If-None-Match` is sent, and when it is not a valid date or later than the server's clock"),
    ),
    responses(
        (status = 200, description = "DER OCSPResponse. A pre-signed answer (a request without a nonce) carries `Cache-Control: max-age=N, public, no-transform, must-revalidate` (N at most 300 and never past nextUpdate), `ETag`, `Last-Modified` (thisUpdate) and `Expires` (nextUpdate); nonce answers and error statuses carry `Cache-Control: no-store`. `unknown` answers have the short nextUpdate `[ocsp] unknown_validity`.", body = super::types::Der, content_type = "application/ocsp-response",
            headers(
                ("Cache-Control" = String, description = "RFC 5019 §6.2 directives, or `no-store`"),
                ("ETag" = String, description = "Strong entity tag of this answer (pre-signed answers only)"),
                ("Last-Modified" = String, description = "thisUpdate (pre-signed answers only)"),
                ("Expires" = String, description = "nextUpdate (pre-signed answers only)"),
            )),
        (status = 304, description = "Not modified: the pre-signed answer the client names in `If-None-Match` (or holds since `If-Modified-Since`) is still the current one. No body; the same `Cache-Control`, `ETag`, `Last-Modified` and `Expires` as the 200.",
            headers(
                ("Cache-Control" = String, description = "As on the 200"),
                ("ETag" = String, description = "As on the 200"),
                ("Last-Modified" = String, description = "As on the 200"),
                ("Expires" = String, description = "As on the 200"),
            )),
    ))]
pub async fn get(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let request = decode_get(req.uri().path());
    answer(state, request, Some(req.headers())).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

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

    /// A base URL with a trailing slash, joined to the request with `/` (RFC 5019 §5): one
    /// raw `/` after `/ocsp/` is the separator, in the raw and the percent-encoded forms.
    #[test]
    fn get_paths_from_a_base_url_with_a_trailing_slash() {
        // A DER SEQUENCE whose base64 holds `+`, `/` and `=`.
        let der = vec![0x30, 0x3e, 0xfb, 0xff, 0x01];
        let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
        assert!(b64.starts_with('M') && b64.contains('/'), "{b64}");
        let encoded = b64
            .replace('+', "%2B")
            .replace('/', "%2F")
            .replace('=', "%3D");
        for request in [&b64, &encoded] {
            assert_eq!(decode_get(&format!("/ocsp/{request}")), Some(der.clone()));
            assert_eq!(decode_get(&format!("/ocsp//{request}")), Some(der.clone()));
            // One separator only.
            assert_ne!(decode_get(&format!("/ocsp///{request}")), Some(der.clone()));
        }
        // An encoded `/` is data, not the separator: what follows is not this request.
        assert_ne!(decode_get(&format!("/ocsp/%2F{b64}")), Some(der.clone()));
        // Every base64 of a DER request begins with `M` (0x30 = 001100..), never `/` (63):
        // the separator can never be mistaken for the first character of a request.
        for second in [0x00u8, 0x3e, 0x81, 0xff] {
            let b = base64::engine::general_purpose::STANDARD.encode([0x30, second, 0x00]);
            assert!(b.starts_with('M'), "{b}");
        }
        assert_eq!(decode_get("/ocsp//"), Some(Vec::new()));
        assert_eq!(decode_get("/ocsp/"), Some(Vec::new()));
        assert_eq!(decode_get("/ocspMAA="), None);
    }

    #[test]
    fn a_post_body_is_read_without_content_type_but_not_under_another_type() {
        let with = |values: &[&str]| {
            let mut map = HeaderMap::new();
            for v in values {
                map.append(header::CONTENT_TYPE, v.parse().unwrap());
            }
            takes_body(&map)
        };
        assert!(with(&[]));
        assert!(with(&["application/ocsp-request"]));
        assert!(with(&["Application/OCSP-Request; charset=binary"]));
        assert!(!with(&["application/json"]));
        assert!(!with(&["text/plain"]));
        assert!(!with(&[""]));
        assert!(!with(&[
            "application/ocsp-request",
            "application/ocsp-request"
        ]));
    }
}
