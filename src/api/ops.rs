//! The operations and public CA endpoints: liveness, readiness, metrics and the CA
//! certificates (`/healthz`, `/readyz`, `/metrics`, `/ca/{file}`).

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use serde::Serialize;

use super::problem::ApiError;
use super::AppState;

/// Media type of DER certificates (RFC 2585).
const PKIX_CERT: &str = "application/pkix-cert";

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses(
    (status = 200, description = "Alive: `{\"status\": \"alive\"}`", body = Object, content_type = "application/json")
))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "alive" }))
}

/// The readiness report.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// `ready` or `not_ready`.
    #[schema(example = "ready")]
    status: &'static str,
    /// Each check.
    checks: Checks,
}

/// The result of each readiness check.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Checks {
    /// `ok` or `failed`.
    database: &'static str,
    /// `ok` or `failed`.
    issuing_key: &'static str,
    /// `ok` or `failed`.
    ocsp_key: &'static str,
    /// `ok`, `expiring` (within 14 days), `expired` or `missing` (`unknown` when the database
    /// does not answer). Reported, but not a reason to take the instance out of service: OCSP
    /// and the issuing CA's CRLs still work.
    root_crl: &'static str,
    /// The root-signed OCSP responses for the issuing CA certificate (`tamga ca root-ocsp`,
    /// `tamga ocsp import`): `ok`, `expiring` (within 30 days), `expired`, `missing` (none
    /// imported; OCSP answers `tryLater` for the issuing CA) or `unknown` (no database).
    /// Reported, not a reason to leave the load balancer.
    root_ocsp: &'static str,
    /// The issuing CA's newest CRLs: `ok`, `expired` (the full or the delta CRL is past its
    /// nextUpdate, so `/crl/…` answers 503 for it), `missing` (none published yet), `unknown`
    /// (no database). Reported, not a reason to leave the load balancer: every instance
    /// serves the same CRLs from the same database.
    crl: &'static str,
    /// This instance's CRL publication: `ok`, `failing` (its attempts fail: the log and `tamga
    /// crl check` say why), `degraded` (the newest CRL left out invalidity dates no CRL can
    /// carry; `tamga crl check --repair`).
    crl_publication: &'static str,
    /// The OCSP responder: `ok`, or `degraded` (it cannot read the database: pre-signed
    /// answers are served until their nextUpdate, the rest gets `tryLater`).
    ocsp: &'static str,
    /// Each issuing CA by its id (`[ca]`'s and every `[[ca.issuers]]` entry): `ok`, `failed`
    /// (its issuing or OCSP key cannot sign: `issuing_key` or `ocsp_key` says `failed` too),
    /// or `degraded` (configured but not loaded: a GOST issuer without the gost engine; the
    /// other issuers keep working, and the instance stays ready).
    #[schema(value_type = Object)]
    issuers: std::collections::BTreeMap<String, &'static str>,
}

fn check_label(ok: bool) -> &'static str {
    if ok {
        "ok"
    } else {
        "failed"
    }
}

/// Ready when this instance can do its core job: the database answers and every issuer's
/// issuing and OCSP keys can sign. Parts that every instance shares (CRLs, the root CRL) and a degraded
/// OCSP responder are reported in `checks` with status 200: taking every instance out of the
/// load balancer over one of them would also take OCSP out.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses(
    (status = 200, description = "Ready: database and every issuer's keys usable; `checks` also reports `root_crl`, `root_ocsp`, `crl`, `crl_publication` and `ocsp`, which may be degraded, and each issuer under `issuers` (`degraded`: a GOST issuer not loaded, the gost engine missing)", body = Readiness),
    (status = 503, description = "Not ready (database, or an issuer's issuing_key or ocsp_key failed); the body names the failing check", body = Readiness),
))]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let state = state.into_inner();
    let checks = Arc::clone(&state);
    let result = super::blocking(&state, move || {
        let database = checks.store.ping();
        // Every issuer's keys: the first failure of each kind is reported (and logged).
        let mut issuing = Ok(());
        let mut ocsp = Ok(());
        let mut issuers = std::collections::BTreeMap::new();
        for issuer in checks.issuers.iter() {
            let h = issuer.hierarchy();
            let own_issuing = h.issuing().self_test();
            let own_ocsp = h.ocsp_responder().self_test();
            issuers.insert(
                issuer.id().to_owned(),
                check_label(own_issuing.is_ok() && own_ocsp.is_ok()),
            );
            if issuing.is_ok() {
                issuing = own_issuing;
            }
            if ocsp.is_ok() {
                ocsp = own_ocsp;
            }
        }
        for (id, _) in checks.issuers.unavailable() {
            issuers.insert(id.clone(), "degraded");
        }
        // Without the database the root CRL's state is unknown; asking would only wait for
        // the pool timeout a second time.
        let (root_crl, root_ocsp, (crl, newest_crl)) = if database.is_ok() {
            (
                root_crl_state(&checks),
                root_ocsp_state(&checks),
                crl_state(&checks),
            )
        } else {
            ("unknown", "unknown", ("unknown", Vec::new()))
        };
        let crl_publication = crl_publication_state(&checks.crls, &newest_crl);
        Ok::<_, ApiError>((
            database,
            issuing,
            ocsp,
            (root_crl, root_ocsp),
            crl,
            (crl_publication, issuers),
        ))
    })
    .await;
    let (database, issuing, ocsp, (root_crl, root_ocsp), crl, (crl_publication, issuers)) =
        match result {
            Ok(checks) => checks,
            Err(e) => {
                tracing::warn!(error = %e, "readiness check did not finish");
                return HttpResponse::ServiceUnavailable()
                .insert_header((header::RETRY_AFTER, "5"))
                .json(serde_json::json!({ "status": "not_ready", "checks": { "database": "failed" } }));
            }
        };
    for (what, err) in [
        ("database", database.as_ref().err().map(ToString::to_string)),
        (
            "issuing_key",
            issuing.as_ref().err().map(ToString::to_string),
        ),
        ("ocsp_key", ocsp.as_ref().err().map(ToString::to_string)),
    ] {
        if let Some(err) = err {
            tracing::warn!(check = what, error = %err, "not ready");
        }
    }
    let ready = database.is_ok() && issuing.is_ok() && ocsp.is_ok();
    let body = Readiness {
        status: if ready { "ready" } else { "not_ready" },
        checks: Checks {
            database: check_label(database.is_ok()),
            issuing_key: check_label(issuing.is_ok()),
            ocsp_key: check_label(ocsp.is_ok()),
            root_crl,
            root_ocsp,
            crl,
            crl_publication,
            ocsp: if state.ocsp.degraded() {
                "degraded"
            } else {
                "ok"
            },
            issuers,
        },
    };
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable()
            .insert_header((header::RETRY_AFTER, "5"))
            .json(body)
    }
}

/// The numbers of an issuer's newest full and delta CRL, where it has them.
type CrlNumbers = (Option<i64>, Option<i64>);

/// This instance's CRL publication for /readyz, over every issuer's publisher (`newest`: the
/// numbers of each one's newest full and delta CRL, in the same order).
fn crl_publication_state(
    publishers: &[crate::crl::CrlPublisher],
    newest: &[CrlNumbers],
) -> &'static str {
    let healths: Vec<_> = publishers.iter().map(|p| p.health()).collect();
    if healths.iter().any(|h| h.failing_since.is_some()) {
        "failing"
    } else if healths
        .iter()
        .zip(
            newest
                .iter()
                .copied()
                .chain(std::iter::repeat((None, None))),
        )
        .any(|(h, (full, delta))| h.newest_is_degraded(full, delta))
    {
        "degraded"
    } else {
        "ok"
    }
}

/// Every issuer's newest CRLs for /readyz — the worst of them: `expired`, then `missing`,
/// then `ok` — and the numbers of each one's newest full and delta CRL (in the order of
/// `issuers`), updating the expiry gauge with `[ca]`'s issuer's on the way.
fn crl_state(state: &AppState) -> (&'static str, Vec<CrlNumbers>) {
    let now = state.clock.now().naive_utc();
    let mut worst = "ok";
    let mut numbers = Vec::new();
    for (n, issuer) in state.issuers.iter().enumerate() {
        let id = issuer.id();
        let latest = state.store.read(|tx| {
            Ok::<_, crate::store::StoreError>((
                tx.latest_crl_info(id, false)?,
                tx.latest_crl_info(id, true)?,
            ))
        });
        let (label, these) = match latest {
            Ok((Some(full), delta)) => {
                if n == 0 {
                    state
                        .metrics
                        .crl_expires_in((full.next_update - now).num_seconds());
                }
                let expired =
                    full.next_update <= now || delta.as_ref().is_some_and(|d| d.next_update <= now);
                let these = (Some(full.crl_number), delta.map(|d| d.crl_number));
                (if expired { "expired" } else { "ok" }, these)
            }
            Ok((None, _)) => ("missing", (None, None)),
            Err(_) => return ("unknown", Vec::new()),
        };
        let rank = |l: &str| match l {
            "expired" => 2,
            "missing" => 1,
            _ => 0,
        };
        if rank(label) > rank(worst) {
            worst = label;
        }
        numbers.push(these);
    }
    (worst, numbers)
}

/// The root CRL's state for /readyz, updating its expiry gauge on the way.
pub fn root_crl_state(state: &AppState) -> &'static str {
    let latest = state
        .store
        .read(|tx| tx.latest_crl_info(crate::crl::root::ROOT_ID, false));
    match latest {
        Ok(Some(info)) => {
            let left = (info.next_update - state.clock.now().naive_utc()).num_seconds();
            state.metrics.root_crl_expires_in(left);
            if left <= 0 {
                "expired"
            } else if left < 14 * 86_400 {
                "expiring"
            } else {
                "ok"
            }
        }
        Ok(None) => "missing",
        Err(_) => "unknown",
    }
}

/// The root-signed OCSP responses for the issuing CA certificate, for /readyz.
fn root_ocsp_state(state: &AppState) -> &'static str {
    match crate::ocsp::root::issuing_expiry(&state.store, &state.hierarchy) {
        Ok(Some(next_update)) => {
            let left = (next_update - state.clock.now().naive_utc()).num_seconds();
            if left <= 0 {
                "expired"
            } else if left < 30 * 86_400 {
                "expiring"
            } else {
                "ok"
            }
        }
        Ok(None) => "missing",
        Err(_) => "unknown",
    }
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses(
    (status = 200, description = "Prometheus text exposition format", content_type = "text/plain")
))]
pub async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    state.metrics.store_groups(state.store.group_commit_stats());
    let text = state
        .metrics
        .render()
        .map_err(|e| ApiError::Internal(format!("rendering metrics: {e}")))?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(text))
}

/// `GET /ca/root.crt` and `GET /ca/{issuer_id}.crt`: DER certificates.
#[utoipa::path(get, path = "/ca/{file}", tag = "public",
    params(("file" = String, Path, description = "`root.crt` (the root of the first issuer), `{root_id}.crt` (another issuer's root) or `{issuer_id}.crt`, for every issuer", example = "root.crt")),
    responses(
        (status = 200, description = "The certificate, DER", body = super::types::Der, content_type = "application/pkix-cert"),
        (status = 404, description = "`ca_certificate_not_found`", body = super::types::ProblemDocument, content_type = "application/problem+json"),
    ))]
pub async fn ca_certificate(
    state: web::Data<AppState>,
    file: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = file.as_str();
    let id = name.strip_suffix(".crt").unwrap_or_default();
    // An issuing CA by its id, or a root by its (`root` for `[ca]`'s).
    let cert = match state.issuers.get(id) {
        Some(issuer) => issuer.hierarchy().issuing().certificate(),
        None => match state.issuers.root(id) {
            Some(h) => h.root(),
            None => {
                return Err(ApiError::NotFound {
                    code: crate::error_code::ErrorCode::CaCertificateNotFound,
                    detail: format!("no CA certificate named {name}"),
                })
            }
        },
    };
    Ok(HttpResponse::Ok()
        .content_type(PKIX_CERT)
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(cert.der().to_vec()))
}
