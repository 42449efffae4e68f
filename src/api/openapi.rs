//! `GET /api/v1/openapi.json`: the OpenAPI 3 document, generated from the route and type
//! definitions in this module tree.

use actix_web::HttpResponse;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::types::{
    ApplicationRequest, ApplicationResponse, CsrPair, ErrorCode, IssuedCertificate,
    ProblemDocument, RevocationRequest, RevocationResponse,
};
use super::{ocsp, portal, public, routes};

struct BearerSchemes;

impl Modify for BearerSchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut consent = Http::new(HttpAuthScheme::Bearer);
        consent.bearer_format = Some("JWT".to_owned());
        consent.description = Some(
            "Digital ID consent token (JWS, ES256/RS256/PS256) with purpose eds_issuance"
                .to_owned(),
        );
        components.add_security_scheme("consent_token", SecurityScheme::Http(consent));
        let mut access = Http::new(HttpAuthScheme::Bearer);
        access.description =
            Some("The access_token returned when the application was created".to_owned());
        components.add_security_scheme("access_token", SecurityScheme::Http(access));
    }
}

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tamga",
        description = "Certification and registration authority of the national e-signature programme. Every error is an RFC 9457 problem document with a stable `code`. With `[server.tls] client_ca` configured, every `/api/v1` route answers only over a TLS connection whose client certificate chains to that CA (403 `client_certificate_required` / `client_certificate_untrusted`). Every route except `/ocsp` and `/crl/…` may answer 429 `rate_limited_client` with `Retry-After` when one address exceeds `[limits] client_requests_per_second`."
    ),
    paths(
        portal::create_application,
        portal::get_application,
        portal::create_revocation,
        public::crl,
        ocsp::post,
        ocsp::get,
        document,
        routes::healthz,
        routes::readyz,
        routes::metrics,
        routes::ca_certificate,
    ),
    components(schemas(
        ApplicationRequest,
        CsrPair,
        ApplicationResponse,
        IssuedCertificate,
        ProblemDocument,
        ErrorCode,
        RevocationRequest,
        RevocationResponse
    )),
    modifiers(&BearerSchemes),
    tags(
        (name = "portal", description = "For the onboarding portal"),
        (name = "public", description = "For relying parties"),
        (name = "operations", description = "For operators and orchestration"),
    )
)]
pub struct ApiDoc;

/// The OpenAPI document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "operations", responses(
    (status = 200, description = "This API's OpenAPI 3 document", content_type = "application/json"),
    (status = 403, description = "`client_certificate_required`, `client_certificate_untrusted` (only with `[server.tls] client_ca`: the connection's TLS client certificate must chain to it)", body = ProblemDocument, content_type = "application/problem+json"),
    (status = 429, description = "`rate_limited_client`", body = ProblemDocument, content_type = "application/problem+json",
        headers(("Retry-After" = u64, description = "Seconds until the request can succeed"))),
))]
pub async fn document() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}
