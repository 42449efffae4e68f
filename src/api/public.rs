//! Public endpoints for relying parties: CRLs (`/crl/…`), with `304 Not Modified` to
//! `If-None-Match` and `If-Modified-Since` (see `conditional`).

use std::collections::HashMap;
use std::sync::RwLock;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use super::conditional::{http_date, not_modified};
use super::problem::ApiError;
use super::AppState;
use crate::store::StoredCrl;

/// Media type of DER CRLs (RFC 2585).
const PKIX_CRL: &str = "application/pkix-crl";
/// Longest time a cache may keep a full CRL / a delta CRL before asking again.
const FULL_MAX_AGE: i64 = 600;
const DELTA_MAX_AGE: i64 = 60;

/// The newest full and delta CRL of each issuer, and each root's CRL, this instance has read,
/// keyed by the id it is served under and whether it is a delta; each request asks the
/// database only for the newest number, and reads the bytes only when it changed.
#[derive(Debug, Default)]
pub struct CrlCache {
    slots: RwLock<HashMap<(String, bool), std::sync::Arc<StoredCrl>>>,
}

impl CrlCache {
    fn get(&self, id: &str, delta: bool) -> Option<std::sync::Arc<StoredCrl>> {
        self.slots
            .read()
            .ok()
            .and_then(|slots| slots.get(&(id.to_owned(), delta)).cloned())
    }

    /// Keep `crl` unless a newer one is kept already.
    fn offer(&self, id: &str, delta: bool, crl: &std::sync::Arc<StoredCrl>) {
        if let Ok(mut slots) = self.slots.write() {
            let slot = slots
                .entry((id.to_owned(), delta))
                .or_insert_with(|| std::sync::Arc::clone(crl));
            if slot.crl_number < crl.crl_number {
                *slot = std::sync::Arc::clone(crl);
            }
        }
    }
}

/// `GET /crl/{issuer_id}.crl` and `GET /crl/{issuer_id}-delta.crl`.
#[utoipa::path(get, path = "/crl/{file}", tag = "public",
    params(
        ("file" = String, Path, description = "`root.crl` (the root of the first issuer), `{root_id}.crl` (another issuer's root), `{issuer_id}.crl` (full) or `{issuer_id}-delta.crl`, for every issuer", example = "root.crl"),
        ("If-None-Match" = Option<String>, Header, description = "Entity tags (or `*`) of CRLs the client holds: `304` if one is the newest CRL's `ETag` (weak comparison)"),
        ("If-Modified-Since" = Option<String>, Header, description = "HTTP date: `304` if the newest CRL's thisUpdate (`Last-Modified`) is not later, at second precision; ignored when `If-None-Match` is sent, and when it is not a valid date or later than the server's clock"),
    ),
    responses(
        (status = 200, description = "The newest CRL, DER", body = super::types::Der, content_type = "application/pkix-crl",
            headers(
                ("ETag" = String, description = "`\"{issuer}-{CRL number}\"`"),
                ("Last-Modified" = String, description = "The CRL's thisUpdate"),
                ("Expires" = String, description = "The CRL's nextUpdate"),
                ("Cache-Control" = String, description = "`max-age=N, public, no-transform, must-revalidate`: N at most 600 s for a full or root CRL, 60 s for a delta, and never past nextUpdate"),
            )),
        (status = 304, description = "Not modified: the CRL the client names in `If-None-Match` (or holds since `If-Modified-Since`) is still the newest. No body; the same `ETag`, `Last-Modified`, `Expires` and `Cache-Control` as the 200.",
            headers(
                ("ETag" = String, description = "As on the 200"),
                ("Last-Modified" = String, description = "As on the 200"),
                ("Expires" = String, description = "As on the 200"),
                ("Cache-Control" = String, description = "As on the 200"),
            )),
        (status = 404, description = "`crl_not_found`", body = super::types::ProblemDocument, content_type = "application/problem+json"),
        (status = 503, description = "`service_unavailable` (none published, or expired), `database_unavailable` (and no copy cached by this instance), `database_error`", body = super::types::ProblemDocument, content_type = "application/problem+json"),
    ))]
pub async fn crl(
    state: web::Data<AppState>,
    req: HttpRequest,
    file: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = file.into_inner();
    let not_found = || ApiError::NotFound {
        code: crate::error_code::ErrorCode::CrlNotFound,
        detail: format!("no CRL named {name}"),
    };
    let stem = name.strip_suffix(".crl").ok_or_else(not_found)?;
    // An issuer's full or delta CRL, or a root's (ids of issuers and roots never clash, and
    // none ends in `-delta`: `config::checks`).
    let (issuer, delta) = if state.issuers.get(stem).is_some() {
        (stem.to_owned(), false)
    } else if let Some(base) = stem
        .strip_suffix("-delta")
        .filter(|b| state.issuers.get(b).is_some())
    {
        (base.to_owned(), true)
    } else if state.issuers.root(stem).is_some() {
        (stem.to_owned(), false)
    } else {
        return Err(not_found());
    };
    let state = state.into_inner();
    let reader = std::sync::Arc::clone(&state);
    let id = issuer.clone();
    let current = super::blocking(
        &state,
        move || -> Result<Option<std::sync::Arc<StoredCrl>>, ApiError> {
            let cached = || reader.crl_cache.get(&id, delta);
            // With the database out of reach, the CRL this instance last read is still a
            // signed CRL (its expiry is checked below); a newer one may exist, as it may for
            // any relying party's cached copy. Do not wait for the pool timeout to say so.
            if reader.store.unreachable() {
                if let Some(c) = cached() {
                    return Ok(Some(c));
                }
            }
            let newest = match reader.store.read(|tx| tx.latest_crl_info(&id, delta)) {
                Ok(newest) => newest,
                Err(e) if e.is_unavailable() => match cached() {
                    Some(c) => return Ok(Some(c)),
                    None => return Err(e.into()),
                },
                Err(e) => return Err(e.into()),
            };
            let Some(newest) = newest else {
                return Ok(None);
            };
            if let Some(c) = cached().filter(|c| c.crl_number == newest.crl_number) {
                return Ok(Some(c));
            }
            let loaded = reader.store.read(|tx| tx.latest_crl(&id, delta))?;
            let loaded = loaded.map(std::sync::Arc::new);
            if let Some(l) = &loaded {
                reader.crl_cache.offer(&id, delta, l);
            }
            Ok(loaded)
        },
    )
    .await?;
    let Some(crl) = current else {
        return Err(ApiError::Unavailable(format!(
            "no CRL published yet for {issuer}"
        )));
    };
    let now = state.clock.now().naive_utc();
    if crl.next_update <= now {
        // An expired CRL is refused loudly rather than served: /readyz and the metrics say so.
        return Err(ApiError::Unavailable(format!(
            "the newest CRL of {issuer} expired at {}",
            crl.next_update
        )));
    }
    let etag = format!("\"{issuer}-{}\"", crl.crl_number);
    let remaining = (crl.next_update - now).num_seconds();
    let max_age = remaining.clamp(0, if delta { DELTA_MAX_AGE } else { FULL_MAX_AGE });
    let cache_control = format!("max-age={max_age}, public, no-transform, must-revalidate");
    let unchanged = not_modified(req.headers(), &etag, crl.this_update, now);
    let mut response = if unchanged {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::ETAG, etag))
        .insert_header((header::LAST_MODIFIED, http_date(crl.this_update)))
        .insert_header((header::EXPIRES, http_date(crl.next_update)))
        .insert_header((header::CACHE_CONTROL, cache_control));
    if unchanged {
        return Ok(response.finish());
    }
    Ok(response.content_type(PKIX_CRL).body(crl.der.clone()))
}
