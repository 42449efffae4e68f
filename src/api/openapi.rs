//! `GET /api/v1/openapi.json`: the OpenAPI 3 document, generated from the route and type
//! definitions in this module tree.

use actix_web::HttpResponse;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::types::{
    ApplicationRequest, ApplicationResponse, ApplicationStatus, CertificateKind, CsrPair, Der,
    ErrorCode, IssuedCertificate, Language, ProblemDocument, RevocationReason, RevocationRequest,
    RevocationResponse, Storage,
};
use super::types::{
    ChallengeResponse, EnrollmentIdentity, EnrollmentSessionResponse, HolderCertificate,
    HolderCertificates, LoginRequest, ReissueRequest, SessionResponse,
};
use super::{cabinet, ocsp, ops, pages, portal, public};

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
        let mut session = Http::new(HttpAuthScheme::Bearer);
        session.description = Some(
            "The session_token of POST /cabinet/api/login (the holder signed a challenge with the AUTH key)"
                .to_owned(),
        );
        components.add_security_scheme("session_token", SecurityScheme::Http(session));
        components.add_security_scheme(
            "enrollment_session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "tamga_enroll",
                "The cookie of the citizen's pages' session, set by POST /enroll (Digital ID's hand-over)",
            ))),
        );
    }
}

/// The per-address flood guard and connection cap (`gate::flood`) wrap every route, so every
/// operation may answer 429; and a request with `Expect: 100-continue` declaring a body the
/// route does not take is answered 413 before any route runs. Added here to each operation
/// (to an existing 429's description, or as a new response), rather than repeated on each.
struct FloodGuard;

/// What the connection cap adds to every operation's 429.
const CONNECTIONS_429: &str = "`rate_limited_connections`: this address already holds `[limits] connections_per_address` open connections (the connection closes)";

impl Modify for FloodGuard {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::header::HeaderBuilder;
        use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder, Type};
        let problem = || {
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ProblemDocument")))
                .build()
        };
        for (path, item) in openapi.paths.paths.iter_mut() {
            let relying_party =
                path == "/ocsp" || path.starts_with("/ocsp/") || path.starts_with("/crl/");
            let description = if relying_party {
                format!("`rate_limited_client`: only with `[limits] client_limit_ocsp_crl = true`, when this address exceeds `[limits] client_requests_per_second`; {CONNECTIONS_429}")
            } else {
                format!("`rate_limited_client`: this address exceeds `[limits] client_requests_per_second`; {CONNECTIONS_429}")
            };
            for operation in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                let responses = &mut operation.responses.responses;
                match responses.get_mut("429") {
                    Some(RefOr::T(declared)) => {
                        declared.description =
                            format!("{}; {CONNECTIONS_429}", declared.description);
                    }
                    Some(RefOr::Ref(_)) => {}
                    None => {
                        let retry_after = HeaderBuilder::new()
                            .schema(
                                utoipa::openapi::ObjectBuilder::new().schema_type(Type::Integer),
                            )
                            .description(Some("Seconds until the request can succeed"))
                            .build();
                        let response = ResponseBuilder::new()
                            .description(description.as_str())
                            .content(super::problem::PROBLEM_JSON, problem())
                            .header("Retry-After", retry_after)
                            .build();
                        responses.insert("429".to_owned(), RefOr::T(response));
                    }
                }
                let expect = "`body_too_large`: a request with `Expect: 100-continue` declares a body larger than this route takes (any body, for a route that takes none); answered without `100 Continue`";
                match responses.get_mut("413") {
                    Some(RefOr::T(declared)) => {
                        declared.description = format!("{}; {expect}", declared.description);
                    }
                    Some(RefOr::Ref(_)) => {}
                    None => {
                        let response = ResponseBuilder::new()
                            .description(expect)
                            .content(super::problem::PROBLEM_JSON, problem())
                            .build();
                        responses.insert("413".to_owned(), RefOr::T(response));
                    }
                }
            }
        }
    }
}

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tamga",
        description = "Certification and registration authority of the national e-signature programme. Every error is an RFC 9457 problem document with a stable `code`. With `[server.tls] client_ca` configured, every `/api/v1` route answers only over a TLS connection whose client certificate chains to that CA (403 `client_certificate_required` / `client_certificate_untrusted`). Every route except `/ocsp` and `/crl/…` may answer 429 `rate_limited_client` with `Retry-After` when one address exceeds `[limits] client_requests_per_second`; every route may answer 429 `rate_limited_connections` when one address holds `[limits] connections_per_address` open connections, and 413 `body_too_large` without `100 Continue` to a request with `Expect: 100-continue` whose declared body the route does not take. A request body that does not arrive within `[server] body_timeout_ms` is answered 408 `body_timeout`. A path no route serves is answered 404 `not_found`, a method a route does not take 405 `method_not_allowed` (with `Allow`), and a failure the client cannot mend 500 `internal_error`. The codes `application_not_pending`, `reason_required`, `not_on_hold` and `not_revoked` come only from operator commands, never from this API. A client must accept a `code` it does not know (a newer server) and show the problem's `title` and `detail`."
    ),
    paths(
        portal::create_application,
        portal::get_application,
        portal::create_revocation,
        cabinet::challenge,
        cabinet::login,
        cabinet::certificates,
        cabinet::revoke,
        cabinet::reissue,
        pages::session,
        pages::create_application,
        public::crl,
        ocsp::post,
        ocsp::post_slash,
        ocsp::get_slash,
        ocsp::get,
        document,
        ops::healthz,
        ops::readyz,
        ops::metrics,
        ops::ca_certificate,
    ),
    components(schemas(
        ApplicationRequest,
        CsrPair,
        ApplicationResponse,
        IssuedCertificate,
        ProblemDocument,
        ErrorCode,
        RevocationRequest,
        RevocationResponse,
        Language,
        Storage,
        ApplicationStatus,
        CertificateKind,
        RevocationReason,
        Der,
        ChallengeResponse,
        LoginRequest,
        SessionResponse,
        HolderCertificates,
        HolderCertificate,
        ReissueRequest,
        EnrollmentSessionResponse,
        EnrollmentIdentity,
        ops::Readiness,
        ops::Checks
    )),
    modifiers(&BearerSchemes, &FloodGuard),
    tags(
        (name = "portal", description = "For the onboarding portal"),
        (name = "cabinet", description = "For the certificate holder: login with the AUTH key, the holder's certificates, revocation, re-issue with new keys"),
        (name = "pages", description = "Behind the citizen's pages (`/enroll`): authenticated by the `tamga_enroll` session cookie that Digital ID's hand-over (`POST /enroll`) sets; writes need the session's `X-CSRF-Token`"),
        (name = "public", description = "For relying parties"),
        (name = "operations", description = "For operators and orchestration"),
    )
)]
pub struct ApiDoc;

/// The OpenAPI document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "operations", responses(
    (status = 200, description = "This API's OpenAPI 3 document", body = Object, content_type = "application/json"),
    (status = 403, description = "`client_certificate_required`, `client_certificate_untrusted` (only with `[server.tls] client_ca`: the connection's TLS client certificate must chain to it)", body = ProblemDocument, content_type = "application/problem+json"),
    (status = 429, description = "`rate_limited_client`", body = ProblemDocument, content_type = "application/problem+json",
        headers(("Retry-After" = u64, description = "Seconds until the request can succeed"))),
))]
pub async fn document() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use serde_json::{json, Value};

    use super::*;

    fn doc() -> Value {
        serde_json::to_value(ApiDoc::openapi()).unwrap()
    }

    /// Follow a `$ref` into `components/schemas`.
    fn schema<'a>(doc: &'a Value, at: &'a Value) -> &'a Value {
        match at["$ref"].as_str() {
            Some(r) => &doc["components"]["schemas"][r.trim_start_matches("#/components/schemas/")],
            None => at,
        }
    }

    /// What the schemathesis runs found the document to get wrong, kept right.
    #[test]
    fn the_document_describes_what_the_server_does() {
        let doc = doc();
        // Every operation has its own id (clients and test tools select operations by it).
        let mut ids = std::collections::BTreeSet::new();
        for (path, operations) in doc["paths"].as_object().unwrap() {
            for (method, operation) in operations.as_object().unwrap() {
                if let Some(id) = operation["operationId"].as_str() {
                    assert!(ids.insert(id.to_owned()), "{method} {path}: {id} twice");
                }
            }
        }
        // The pages' API is authenticated by the session cookie of the hand-over.
        for (path, method) in [
            ("/enroll/api/session", "get"),
            ("/enroll/api/applications", "post"),
        ] {
            assert_eq!(
                doc["paths"][path][method]["security"],
                json!([{ "enrollment_session": [] }]),
                "{method} {path}"
            );
        }
        assert_eq!(
            doc["components"]["securitySchemes"]["enrollment_session"]["in"],
            json!("cookie")
        );
        // The OCSP request is DER bytes, not an array of integers.
        let ocsp = &doc["paths"]["/ocsp"]["post"]["requestBody"]["content"]
            ["application/ocsp-request"]["schema"];
        let ocsp = schema(&doc, ocsp);
        assert_eq!(ocsp["type"], json!("string"), "{ocsp}");
        assert_eq!(ocsp["format"], json!("binary"), "{ocsp}");
        // The form's closed vocabularies are enumerated, as the RA enforces them.
        let request = &doc["components"]["schemas"]["ApplicationRequest"]["properties"];
        assert_eq!(
            schema(&doc, &request["language"])["enum"],
            json!(["kk", "ru", "en"])
        );
        assert_eq!(
            schema(&doc, &request["storage"])["enum"],
            json!(["pkcs12", "id_card", "kaztoken", "etoken", "jacarta", "akey"])
        );
        let reasons = &doc["components"]["schemas"]["RevocationRequest"]["properties"]["reason"];
        assert_eq!(schema(&doc, reasons)["enum"][1], json!("keyCompromise"));
        // A revocation meets the database, so it can answer 503 like the other portal routes.
        assert!(doc["paths"]["/api/v1/revocations"]["post"]["responses"]["503"].is_object());
        // The flood guard covers every route, and every route says so.
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                assert!(
                    operation["responses"]["429"].is_object(),
                    "{method} {path} does not declare 429"
                );
                let too_many = operation["responses"]["429"]["description"].as_str();
                assert!(
                    too_many.is_some_and(|d| d.contains("rate_limited_connections")),
                    "{method} {path}: {too_many:?}"
                );
                assert!(
                    operation["responses"]["413"].is_object(),
                    "{method} {path} does not declare 413"
                );
            }
        }
        // A re-issue repeated after a lost answer needs no session: the document says the
        // session is optional there (and required on the cabinet's other session routes).
        assert_eq!(
            doc["paths"]["/cabinet/api/reissues"]["post"]["security"],
            json!([{}, { "session_token": [] }])
        );
        assert_eq!(
            doc["paths"]["/cabinet/api/certificates"]["get"]["security"],
            json!([{ "session_token": [] }])
        );
        // The routes that read a body say it must arrive in time.
        for (path, method) in [
            ("/api/v1/applications", "post"),
            ("/api/v1/revocations", "post"),
            ("/cabinet/api/challenge", "post"),
            ("/cabinet/api/login", "post"),
            ("/cabinet/api/revocations", "post"),
            ("/cabinet/api/reissues", "post"),
            ("/ocsp", "post"),
            ("/ocsp/", "post"),
        ] {
            let timeout = doc["paths"][path][method]["responses"]["408"]["description"].as_str();
            assert!(
                timeout.is_some_and(|d| d.contains("body_timeout")),
                "{method} {path}: {timeout:?}"
            );
        }
        // What relying parties fetch again and again says when it answers 304, with which
        // headers, and to which preconditions; OCSP at a base URL with a trailing slash.
        for path in ["/ocsp/{request}", "/crl/{file}"] {
            let operation = &doc["paths"][path]["get"];
            for status in ["200", "304"] {
                for name in ["ETag", "Last-Modified", "Expires", "Cache-Control"] {
                    assert!(
                        operation["responses"][status]["headers"][name].is_object(),
                        "GET {path} {status} does not declare {name}"
                    );
                }
            }
            let names: Vec<&str> = operation["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["in"] == "header")
                .filter_map(|p| p["name"].as_str())
                .collect();
            assert_eq!(names, ["If-None-Match", "If-Modified-Since"], "GET {path}");
        }
        assert!(doc["paths"]["/ocsp/"]["post"]["responses"]["200"].is_object());
        // Health and readiness answer JSON bodies, and say so.
        assert!(
            doc["paths"]["/healthz"]["get"]["responses"]["200"]["content"]["application/json"]
                .is_object()
        );
        for status in ["200", "503"] {
            let body = &doc["paths"]["/readyz"]["get"]["responses"][status]["content"]
                ["application/json"]["schema"];
            assert_eq!(schema(&doc, body)["required"], json!(["status", "checks"]));
        }
    }
}
