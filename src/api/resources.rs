//! Resources by the methods they answer: GET (and HEAD) or POST, and 405 with `Allow` for any
//! other method. Owns: nothing but that shape, shared by the route tables of the API and the
//! pages.

use actix_web::{web, HttpResponse};

use super::problem::ApiError;

/// A resource that answers GET (and HEAD, its headers only) with `handler`, and any other
/// method with 405.
pub(super) fn get<F, Args>(path: &str, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    web::resource(path)
        .route(web::get().to(handler.clone()))
        .route(web::head().to(handler))
        .default_service(web::to(|| not_allowed("GET, HEAD")))
}

/// A resource that answers POST with `handler`, and any other method with 405.
pub(super) fn post<F, Args>(path: &str, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    web::resource(path)
        .route(web::post().to(handler))
        .default_service(web::to(|| not_allowed("POST")))
}

/// 405 with `Allow: allow`.
pub(super) async fn not_allowed(allow: &'static str) -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed { allow })
}
