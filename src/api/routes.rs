//! The route table: which handler answers which method and path.

use std::sync::Arc;

use actix_web::{web, HttpResponse};

use super::gate::{self, Admission};
use super::ops::{ca_certificate, healthz, metrics, readyz};
use super::problem::ApiError;
use super::resources::{get, not_allowed, post};
use super::{cabinet, ocsp, openapi, pages, portal, public};

/// The route table. Everything under `/api/v1` is the portal's: its scope checks the client
/// certificate when `[server.tls] client_ca` is set (the router matches the scope, so no
/// spelling of a path reaches a portal handler around the check).
pub fn configure(admission: Arc<Admission>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg: &mut web::ServiceConfig| {
        cfg.service(
            web::scope(gate::PORTAL_PREFIX)
                .wrap(gate::portal(admission))
                .service(post("/applications", portal::create_application))
                .service(get("/applications/{id}", portal::get_application))
                .service(post("/revocations", portal::create_revocation))
                .service(get("/openapi.json", openapi::document)),
        )
        // The holder's cabinet: outside the portal's gate, authenticated by the holder's keys.
        .service(
            web::scope(CABINET_PREFIX)
                .service(post("/challenge", cabinet::challenge))
                .service(post("/login", cabinet::login))
                .service(get("/certificates", cabinet::certificates))
                .service(post("/revocations", cabinet::revoke))
                .service(post("/reissues", cabinet::reissue)),
        )
        // The citizen's pages: outside the portal's gate, authenticated by their session.
        .configure(pages::configure)
        .service(get("/crl/{file}", public::crl))
        .service(post("/ocsp", ocsp::post))
        // A base URL written with a trailing slash (`…/ocsp/`): POST there, and GET there
        // with nothing after it (no request: `malformedRequest`, as at `/ocsp/{request}`).
        .service(
            web::resource("/ocsp/")
                .route(web::post().to(ocsp::post_slash))
                .route(web::get().to(ocsp::get_slash))
                .route(web::head().to(ocsp::get_slash))
                .default_service(web::to(|| not_allowed("GET, HEAD, POST"))),
        )
        .service(get("/ocsp/{request:.*}", ocsp::get))
        .service(get("/healthz", healthz))
        .service(get("/readyz", readyz))
        .service(get("/metrics", metrics))
        .service(get("/ca/{file}", ca_certificate))
        .default_service(web::to(not_found));
    }
}

/// The path prefix of the holder's cabinet.
pub const CABINET_PREFIX: &str = "/cabinet/api";

async fn not_found(req: actix_web::HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound {
        code: crate::error_code::ErrorCode::NotFound,
        detail: format!("no route for {} {}", req.method(), req.path()),
    })
}
