//! The citizen's pages (`/enroll…`, and `/dev/digital-id` in dev mode): Digital ID's
//! hand-over (`POST /enroll`), the page shell, the session-authenticated page API behind it,
//! the embedded assets ([`assets`]), the security headers of every page and page API, the
//! session cookie and CSRF. The contract is `docs/citizen-pages.md`.
//!
//! Owns: the HTTP side only — reading the form and the cookie, choosing the language, the
//! refusal page in that language, the cookie's attributes (`Secure` under TLS), the
//! `X-CSRF-Token` and `Origin` checks. The sessions themselves and the single use of the
//! consent token are `ra::enrollment`'s. Must never: answer a hand-over with JSON or a stack
//! trace, log or echo a consent token (but into the hand-over form that carries it), set a
//! cookie readable by script, or take a page API write without the session's CSRF token.

pub mod assets;
mod i18n;
mod render;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{web, HttpRequest, HttpResponse};

use super::portal::{counted, read_body, submitted_response, APPLICATION_BODY_LIMIT};
use super::problem::ApiError;
use super::resources::{get, not_allowed};
use super::types::{
    ApplicationRequest, ApplicationResponse, EnrollmentIdentity, EnrollmentSessionResponse,
};
use super::AppState;
use crate::error_code::ErrorCode;
use crate::ra::{ApplicationForm, RaError};
use crate::vocab::Language;
use render::fill;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "tamga_enroll";
/// The language cookie's name (set by the pages' script).
pub const LANGUAGE_COOKIE: &str = "tamga_lang";
/// The header that carries the session's CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Largest hand-over form (a consent token is at most 8 KiB).
pub const HANDOVER_BODY_LIMIT: usize = 16 * 1024;
/// Largest form of the Digital ID stand-in.
pub const DIGITAL_ID_BODY_LIMIT: usize = 4 * 1024;

/// The body limit of the pages' POST routes, or `None` for another path.
pub fn post_body_limit(path: &str) -> Option<usize> {
    match path {
        "/enroll" => Some(HANDOVER_BODY_LIMIT),
        "/enroll/api/applications" => Some(APPLICATION_BODY_LIMIT),
        "/dev/digital-id" => Some(DIGITAL_ID_BODY_LIMIT),
        _ => None,
    }
}

/// The methods a pages route that takes a body answers (its `Allow`), or `None` for any other
/// path: another method with a body is refused as the router would refuse it (405), not as a
/// body too large for a method the route never takes.
pub fn body_route_methods(path: &str) -> Option<&'static str> {
    match path {
        "/enroll" | "/dev/digital-id" => Some("GET, HEAD, POST"),
        "/enroll/api/applications" => Some("POST"),
        _ => None,
    }
}

/// The routes of the pages, outside the portal's client-certificate gate.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/enroll")
            .wrap(actix_web::middleware::from_fn(security_headers))
            .service(
                web::resource("")
                    .route(web::post().to(handover))
                    .route(web::get().to(shell))
                    .route(web::head().to(shell))
                    .default_service(web::to(|| not_allowed("GET, HEAD, POST"))),
            )
            .service(get("/resume", resume))
            .service(get("/api/session", session))
            .service(
                web::resource("/api/applications")
                    .route(web::post().to(create_application))
                    .default_service(web::to(|| not_allowed("POST"))),
            )
            .service(get(
                "/api/applications/{id}",
                super::portal::get_application,
            ))
            .service(get("/agreement/{version}/{lang}", agreement))
            .service(get("/assets/{file:.*}", asset)),
    )
    .service(
        web::scope("/dev")
            .wrap(actix_web::middleware::from_fn(security_headers))
            .service(
                web::resource("/digital-id")
                    .route(web::get().to(digital_id_form))
                    .route(web::head().to(digital_id_form))
                    .route(web::post().to(digital_id_mint))
                    .default_service(web::to(|| not_allowed("GET, HEAD, POST"))),
            ),
    );
}

/// The Content-Security-Policy of every page: scripts and styles only from this server's
/// files, connections to this server and to the local agent, no framing.
fn content_security_policy(agent_port: u16) -> String {
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self' http://127.0.0.1:{agent_port} http://localhost:{agent_port}; \
         form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
}

/// The headers of every page and page API answer, refusals included: CSP, no referrer, no
/// sniffing, and `no-store` unless the answer chose its own caching (the assets).
async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let agent_port = req
        .app_data::<web::Data<AppState>>()
        .map_or(13580, |s| s.config.get().pages.agent_port);
    let mut res = next.call(req).await?;
    let headers = res.headers_mut();
    if let Ok(csp) = HeaderValue::from_str(&content_security_policy(agent_port)) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    Ok(res)
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"').to_owned())
}

/// The language of a page: `explicit` (a form's `lang`), else the `tamga_lang` cookie, else
/// the best of `Accept-Language`, else Kazakh.
fn language(req: &HttpRequest, explicit: Option<&str>) -> Language {
    if let Some(lang) = explicit.and_then(Language::parse) {
        return lang;
    }
    if let Some(lang) = cookie(req, LANGUAGE_COOKIE)
        .as_deref()
        .and_then(Language::parse)
    {
        return lang;
    }
    req.headers()
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .and_then(accepted_language)
        .unwrap_or(Language::Kk)
}

/// The language of `Accept-Language` with the highest weight among kk, ru and en (the first
/// of equal weights).
fn accepted_language(header: &str) -> Option<Language> {
    let mut best: Option<(Language, f32)> = None;
    for item in header.split(',').take(32) {
        let mut parts = item.trim().split(';');
        let tag = parts.next().unwrap_or_default().trim();
        let primary = tag
            .split('-')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let Some(lang) = Language::parse(&primary) else {
            continue;
        };
        let weight = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if weight > 0.0 && best.is_none_or(|(_, w)| weight > w) {
            best = Some((lang, weight));
        }
    }
    best.map(|(lang, _)| lang)
}

/// An HTML answer.
fn html(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(body)
}

/// The refusal page of a hand-over: the problem in words in `lang`, its code, and the way
/// back to Digital ID, with the status the API would answer.
fn refusal_page(state: &AppState, lang: Language, code: ErrorCode) -> HttpResponse {
    let body = fill(
        assets::ERROR_HTML,
        &[
            ("lang", lang.as_str()),
            ("title", i18n::text(lang, "error_page.title")),
            ("message", i18n::error_message(lang, code.as_str())),
            ("code", code.as_str()),
            ("digital_id_url", &state.config.get().pages.digital_id_url),
            ("back", i18n::text(lang, "error_page.back")),
        ],
    );
    html(super::problem::status_of(code), body)
}

/// The fields of a form body (`application/x-www-form-urlencoded`).
fn form_fields(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body)
        .take(64)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// `POST /enroll`: Digital ID's hand-over. The token is verified and checked unused, not
/// consumed; a session is opened and its cookie set; `303` to `/enroll`. A refusal is an
/// HTML page in the citizen's language.
async fn handover(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let state = state.into_inner();
    let body = match read_body(&state, &req, payload, HANDOVER_BODY_LIMIT).await {
        Ok(body) => body,
        Err(e) => {
            let lang = language(&req, None);
            return Ok(refusal_page(&state, lang, counted(&state, e).code()));
        }
    };
    let fields = form_fields(&body);
    let lang = language(&req, field(&fields, "lang"));
    let token = field(&fields, "consent_token")
        .map(str::trim)
        .unwrap_or_default()
        .to_owned();
    if token.is_empty() {
        let e = counted(
            &state,
            ApiError::Consent(crate::digital_id::ConsentError::Missing),
        );
        return Ok(refusal_page(&state, lang, e.code()));
    }
    let registrar = state.registrar.clone();
    let keys = std::sync::Arc::clone(&state.trusted_keys);
    let opened = super::blocking(&state, move || registrar.open_enrollment(&keys, &token)).await;
    match opened {
        Ok(opened) => {
            let max_age = (opened.expires_at - state.clock.now()).num_seconds().max(0);
            let secure = if secure_cookies(&state) {
                "; Secure"
            } else {
                ""
            };
            let mut response = HttpResponse::SeeOther();
            response.insert_header((header::LOCATION, "/enroll")).append_header((
                header::SET_COOKIE,
                format!(
                    "{SESSION_COOKIE}={}; Path=/enroll; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}",
                    opened.cookie
                ),
            ));
            // The language Digital ID's page was in, when it said: the pages open in it.
            if let Some(chosen) = field(&fields, "lang").and_then(Language::parse) {
                response.append_header((
                    header::SET_COOKIE,
                    format!(
                        "{LANGUAGE_COOKIE}={}; Path=/; SameSite=Lax{secure}",
                        chosen.as_str()
                    ),
                ));
            }
            Ok(response.finish())
        }
        Err(e) => {
            let e = counted(&state, e);
            if super::problem::status_of(e.code()).is_server_error() {
                tracing::warn!(code = e.code().as_str(), error = %e, "hand-over failed");
            }
            Ok(refusal_page(&state, lang, e.code()))
        }
    }
}

/// The page shell in `mode`, for `application` (resume mode).
fn shell_page(state: &AppState, req: &HttpRequest, mode: &str, application: &str) -> HttpResponse {
    let cfg = state.config.get();
    let lang = language(req, None);
    let agent_url = format!("http://127.0.0.1:{}", cfg.pages.agent_port);
    let body = fill(
        assets::ENROLL_HTML,
        &[
            ("mode", mode),
            ("agent_url", &agent_url),
            ("digital_id_url", &cfg.pages.digital_id_url),
            ("lang", lang.as_str()),
            ("application", application),
        ],
    );
    html(StatusCode::OK, body)
}

/// `GET /enroll`: the page shell; the page asks for its session itself.
async fn shell(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    shell_page(&state, &req, "enroll", "")
}

/// `GET /enroll/resume?application=ID`: the shell, finishing a pending application with the
/// keys the agent holds.
async fn resume(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let application = url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == "application")
        .map(|(_, v)| v.chars().take(64).collect::<String>())
        .unwrap_or_default();
    shell_page(&state, &req, "resume", &application)
}

/// The session cookie of the request, or `session_invalid`.
fn session_cookie(req: &HttpRequest) -> Result<String, ApiError> {
    cookie(req, SESSION_COOKIE).ok_or(ApiError::Ra(RaError::EnrollmentSessionInvalid))
}

/// The session of the page.
#[utoipa::path(
    get,
    path = "/enroll/api/session",
    tag = "pages",
    operation_id = "enrollment_session",
    security(("enrollment_session" = [])),
    responses(
        (status = 200, description = "The session of the `tamga_enroll` cookie", body = EnrollmentSessionResponse),
        (status = 401, description = "`session_invalid` (no cookie, or one that opens no session), `consent_token_expired` (the session's consent token expired: back to Digital ID), `consent_token_untrusted_key` (its key is no longer trusted)", body = super::types::ProblemDocument, content_type = "application/problem+json"),
        (status = 503, description = "`database_unavailable`, `database_error`; with `Retry-After`", body = super::types::ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn session(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let state = state.into_inner();
    let result = async {
        let cookie = session_cookie(&req)?;
        let registrar = state.registrar.clone();
        let keys = std::sync::Arc::clone(&state.trusted_keys);
        let view = super::blocking(&state, move || registrar.enrollment(&keys, &cookie)).await?;
        Ok(HttpResponse::Ok().json(EnrollmentSessionResponse {
            csrf_token: view.csrf_token,
            expires_at: view
                .expires_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            agreement_version: state.config.get().ra.agreement_version.clone(),
            application_id: view.application_id,
            identity: EnrollmentIdentity {
                surname: view.identity.surname,
                name: view.identity.name,
            },
        }))
    }
    .await;
    result.map_err(|e| counted(&state, e))
}

/// The origin (`scheme://host[:port]`) of `[server] public_url`.
fn own_origin(state: &AppState) -> Option<String> {
    url::Url::parse(state.config.public_url())
        .ok()
        .map(|u| u.origin().ascii_serialization())
}

/// A page write comes from this server's pages: its `Origin`, when sent, is the server's
/// own.
/// Whether cookies get `Secure`: under `[server.tls]`, and behind a TLS proxy (an `https://`
/// public URL).
fn secure_cookies(state: &AppState) -> bool {
    let cfg = state.config.get();
    cfg.server.tls.enabled() || cfg.server.public_url.starts_with("https://")
}

fn check_origin(state: &AppState, req: &HttpRequest) -> Result<(), ApiError> {
    let Some(origin) = req.headers().get(header::ORIGIN) else {
        return Ok(());
    };
    match (origin.to_str().ok(), own_origin(state)) {
        (Some(sent), Some(own)) if sent == own => Ok(()),
        _ => Err(ApiError::CsrfInvalid(
            "the Origin header is not this server's",
        )),
    }
}

/// Submit the application through the session.
#[utoipa::path(
    post,
    path = "/enroll/api/applications",
    tag = "pages",
    operation_id = "submit_enrollment",
    security(("enrollment_session" = [])),
    request_body(content = ApplicationRequest, content_type = "application/json"),
    params(("X-CSRF-Token" = String, Header, description = "The session's `csrf_token`")),
    responses(
        (status = 201, description = "Stored, under the session's consent token (used here, once); as `POST /api/v1/applications`", body = ApplicationResponse),
        (status = 200, description = "The same request again: the application as it stands, under a new `access_token`", body = ApplicationResponse),
        (status = 400, description = "`request_malformed` (also a body that is not `application/json`), `csr_malformed`", body = super::types::ProblemDocument, content_type = "application/problem+json"),
        (status = 401, description = "`session_invalid`, `consent_token_expired`, `consent_token_untrusted_key`", body = super::types::ProblemDocument, content_type = "application/problem+json"),
        (status = 403, description = "`csrf_invalid` (no or a wrong `X-CSRF-Token`, or an `Origin` that is not the server's own; nothing is written)", body = super::types::ProblemDocument, content_type = "application/problem+json"),
        (status = 408, description = "`body_timeout`", body = super::types::ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "`consent_token_replayed` (the session's token was used for another request), `key_reused`, `key_blocked`", body = super::types::ProblemDocument, content_type = "application/problem+json"),
        (status = 413, description = "`body_too_large` (limit 64 KiB)", body = super::types::ProblemDocument, content_type = "application/problem+json"),
        (status = 422, description = "`agreement_not_accepted`, `agreement_version_mismatch`, `email_invalid`, `language_invalid`, `storage_type_invalid` (any storage but `pkcs12`: the local agent keeps its keys in files), `csr_signature_invalid`, `csr_signature_algorithm_not_allowed`, `csr_email_mismatch`, `key_algorithm_not_allowed`, `key_too_small`, `key_weak`, `key_encoding_invalid`, `gost_key_not_for_auth`, `gost_parameter_set_unknown`, `gost_point_invalid`, `same_key_for_auth_and_sign`", body = super::types::ProblemDocument, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited_iin`, `rate_limited_client`", body = super::types::ProblemDocument, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds until the request can succeed"))),
        (status = 503, description = "`database_unavailable`, `database_error`, `signing_key_unavailable`, `gost_unavailable`; with `Retry-After`", body = super::types::ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn create_application(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let state = state.into_inner();
    let result = async {
        check_origin(&state, &req)?;
        let cookie = session_cookie(&req)?;
        let csrf = req
            .headers()
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        // The session and its CSRF token before the body: a request without them is refused
        // without reading it.
        let registrar = state.registrar.clone();
        let keys = std::sync::Arc::clone(&state.trusted_keys);
        let live = super::blocking(&state, move || -> Result<_, ApiError> {
            let live = registrar.live_enrollment_of(&keys, &cookie)?;
            let expected = live.csrf_token();
            let presented = csrf.ok_or(ApiError::CsrfInvalid("no X-CSRF-Token header"))?;
            if presented.len() != expected.len()
                || !openssl::memcmp::eq(presented.as_bytes(), expected.as_bytes())
            {
                return Err(ApiError::CsrfInvalid(
                    "the X-CSRF-Token is not the session's",
                ));
            }
            Ok(live)
        })
        .await?;
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
        if !json {
            return Err(ApiError::RequestMalformed(
                "the body must be application/json".to_owned(),
            ));
        }
        let body = read_body(&state, &req, payload, APPLICATION_BODY_LIMIT).await?;
        let registrar = state.registrar.clone();
        let submitted = super::blocking(&state, move || -> Result<_, ApiError> {
            let request: ApplicationRequest = serde_json::from_slice(&body)
                .map_err(|e| ApiError::RequestMalformed(e.to_string()))?;
            let form = ApplicationForm::from(request);
            Ok(registrar.submit_enrollment(&live, form)?)
        })
        .await?;
        let outcome = submitted.application.status.as_str();
        submitted_response(&state, submitted, outcome)
    }
    .await;
    result.map_err(|e| counted(&state, e))
}

/// `GET /enroll/agreement/{version}/{lang}`: the agreement's text.
async fn agreement(path: web::Path<(String, String)>) -> Result<HttpResponse, ApiError> {
    let (version, lang) = path.into_inner();
    let text = Language::parse(&lang)
        .and_then(|lang| assets::agreement(&version, lang))
        .ok_or_else(|| ApiError::NotFound {
            code: ErrorCode::NotFound,
            detail: "no such agreement version or language".to_owned(),
        })?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(text))
}

/// `GET /enroll/assets/{file}`: an embedded file.
async fn asset(file: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let file = assets::static_file(&file).ok_or_else(|| ApiError::NotFound {
        code: ErrorCode::NotFound,
        detail: "no such asset".to_owned(),
    })?;
    Ok(HttpResponse::Ok()
        .content_type(file.content_type)
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .body(file.body))
}

/// The stand-in answers only in dev mode.
fn dev_only(state: &AppState, req: &HttpRequest) -> Result<(), ApiError> {
    if state.config.get().mode == crate::config::Mode::Dev {
        Ok(())
    } else {
        Err(ApiError::NotFound {
            code: ErrorCode::NotFound,
            detail: format!("no route for {} {}", req.method(), req.path()),
        })
    }
}

/// The stand-in's form, with `message` (empty, or why the last input was refused).
fn digital_id_page(status: StatusCode, lang: Language, message: &str) -> HttpResponse {
    html(
        status,
        fill(
            assets::DIGITAL_ID_HTML,
            &[("lang", lang.as_str()), ("message", message)],
        ),
    )
}

/// `GET /dev/digital-id`: the Digital ID stand-in's form (dev mode only).
async fn digital_id_form(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    dev_only(&state, &req)?;
    Ok(digital_id_page(StatusCode::OK, language(&req, None), ""))
}

/// `POST /dev/digital-id`: mint an `eds_issuance` token with the development key, as `tamga
/// dev consent-token` does, and hand it over to `POST /enroll` (dev mode only).
async fn digital_id_mint(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    dev_only(&state, &req)?;
    let state = state.into_inner();
    let body = read_body(&state, &req, payload, DIGITAL_ID_BODY_LIMIT).await?;
    let fields = form_fields(&body);
    let lang = language(&req, field(&fields, "lang"));
    let refused = |code: ErrorCode| {
        digital_id_page(
            StatusCode::UNPROCESSABLE_ENTITY,
            lang,
            i18n::error_message(lang, code.as_str()),
        )
    };
    let text = |name: &str| {
        field(&fields, name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let Ok(iin) =
        crate::digital_id::Iin::parse(&text("iin").unwrap_or_default(), state.clock.now())
    else {
        return Ok(refused(ErrorCode::IinInvalid));
    };
    let (Some(surname), Some(name)) = (text("surname"), text("name")) else {
        return Ok(refused(ErrorCode::NameInvalid));
    };
    let birth_date = match text("birth_date") {
        None => None,
        Some(raw) => match chrono::NaiveDate::parse_from_str(&raw, "%Y-%m-%d") {
            Ok(date) => Some(date),
            Err(_) => return Ok(refused(ErrorCode::IinInvalid)),
        },
    };
    let consent = crate::digital_id::DevelopmentConsent {
        iin,
        surname,
        name,
        patronymic: text("patronymic"),
        birth_date,
        purpose: crate::digital_id::Purpose::EdsIssuance,
        liveness: field(&fields, "liveness").is_some(),
        register_match: field(&fields, "register_match").is_some(),
        ttl_secs: 600,
        issued_ago_secs: 0,
    };
    let cfg = state.config.get();
    let claims = consent.claims(
        &cfg.digital_id.issuer,
        &cfg.digital_id.audience,
        state.clock.now(),
    );
    let key_path = crate::ca::HierarchyFiles::new(&cfg.ca.dir, &cfg.ca.issuer_id).digital_id_key;
    let token = super::blocking(&state, move || {
        crate::digital_id::read_signing_key(&key_path)
            .and_then(|key| crate::digital_id::mint_es256(&key, &claims))
            .map_err(ApiError::Internal)
    })
    .await?;
    Ok(html(
        StatusCode::OK,
        fill(
            assets::HANDOVER_HTML,
            &[("lang", lang.as_str()), ("consent_token", &token)],
        ),
    ))
}

#[cfg(test)]
mod tests;
