//! Background upkeep inside `tamga serve`: one loop per task, each on its own timer, each
//! turn's work a call into the authority that owns it (OCSP cache invalidation and responder
//! renewal in `ocsp`, the root's OCSP responses in `ocsp::root`, e-mail delivery and expiry reminders in `notify`, CRLs in `crl`,
//! postponed issuance and pruning in `ra`). Must never: do domain work itself, or block the
//! async runtime (every turn runs on the blocking pool).
//!
//! While the database is unreachable ([`Store::unreachable`]) only the OCSP invalidation poll
//! keeps trying (every 500 ms, so it notices the database's return); the other tasks skip
//! their turns instead of each waiting for the pool timeout and logging.

use std::sync::Arc;
use std::time::Duration;

use actix_web::web;

use super::{ops, AppState};
use crate::store::Store;

/// How often used consent-token ids are pruned.
const PRUNE_INTERVAL: Duration = Duration::from_secs(600);

/// How often the outbox is checked for due e-mails.
const MAIL_POLL: Duration = Duration::from_secs(1);

/// How often the OCSP cache looks for revocations (a revocation reaches every instance's
/// answers within about this long).
const OCSP_INVALIDATION_POLL: Duration = Duration::from_millis(500);
/// An invalidation poll that takes longer than this puts OCSP into its degraded mode.
const OCSP_POLL_DEADLINE: Duration = Duration::from_secs(2);
/// How often the OCSP responder certificate's remaining validity is checked.
const RESPONDER_RENEWAL_CHECK: Duration = Duration::from_secs(3600);

/// How often this instance checks whether a CRL is due (a revocation reaches the delta CRL
/// within about this long).
const CRL_POLL: Duration = Duration::from_secs(2);

/// How often this instance looks for applications whose signing was postponed (key
/// unavailable) or interrupted (database outage between the two transactions, a process that
/// died).
const RESUME_INTERVAL: Duration = Duration::from_secs(15);
/// How long an application stays `approved` before the background task finishes it; longer
/// than any issuance in flight takes.
const RESUME_AFTER: chrono::Duration = chrono::Duration::seconds(30);

/// Start every upkeep loop.
pub(super) fn spawn_maintenance(state: AppState) {
    spawn_ocsp_invalidation(&state);
    spawn_responder_renewal(&state);
    spawn_mail(&state);
    spawn_crl_publication(&state);
    spawn_resume(&state);
    spawn_pruning(&state);
}

/// Every `period`, unless the database is unreachable, run `work` on the blocking pool and
/// hand its result to `report`; a turn that cannot be run at all is logged as `what`.
fn every<T, W, R>(store: Store, period: Duration, what: &'static str, work: W, report: R)
where
    T: Send + 'static,
    W: Fn() -> T + Clone + Send + 'static,
    R: Fn(T) + 'static,
{
    actix_web::rt::spawn(async move {
        let mut tick = actix_web::rt::time::interval(period);
        loop {
            tick.tick().await;
            if store.unreachable() {
                continue;
            }
            match web::block(work.clone()).await {
                Ok(done) => report(done),
                Err(e) => tracing::warn!(error = %e, "{what} did not run"),
            }
        }
    });
}

/// OCSP cache invalidation by the revocation counter; also decides OCSP's degraded mode.
fn spawn_ocsp_invalidation(state: &AppState) {
    let responder = Arc::clone(&state.ocsp);
    actix_web::rt::spawn(async move {
        let mut tick = actix_web::rt::time::interval(OCSP_INVALIDATION_POLL);
        // A poll that does not finish in time (a frozen database) counts as failed, and is
        // awaited again at the next tick instead of starting another one beside it.
        let mut running = None;
        loop {
            tick.tick().await;
            let mut poll = running.take().unwrap_or_else(|| {
                let responder = Arc::clone(&responder);
                Box::pin(web::block(move || responder.invalidate_changed()))
            });
            match actix_web::rt::time::timeout(OCSP_POLL_DEADLINE, &mut poll).await {
                Ok(Ok(Ok(0))) => {}
                Ok(Ok(Ok(n))) => tracing::debug!(changed = n, "dropped cached OCSP responses"),
                // The responder logs entering and leaving its degraded mode.
                Ok(Ok(Err(e))) => tracing::debug!(error = %e, "OCSP invalidation failed"),
                Ok(Err(e)) => tracing::warn!(error = %e, "OCSP invalidation did not run"),
                Err(_) => {
                    responder.poll_overdue();
                    running = Some(poll);
                }
            }
        }
    });
}

/// Renewal of the OCSP responder certificate before it runs out.
fn spawn_responder_renewal(state: &AppState) {
    let renewal = state.clone();
    actix_web::rt::spawn(async move {
        let mut tick = actix_web::rt::time::interval(RESPONDER_RENEWAL_CHECK);
        loop {
            tick.tick().await;
            let s = renewal.clone();
            match web::block(move || s.ocsp.renew_if_due()).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "renewing the OCSP responder certificate failed")
                }
                Err(e) => tracing::error!(error = %e, "OCSP responder renewal did not run"),
            }
        }
    });
}

/// E-mail delivery from the outbox, and queueing expiry reminders every
/// `[notify] reminder_interval`.
fn spawn_mail(state: &AppState) {
    let mail = state.clone();
    actix_web::rt::spawn(async move {
        let mut tick = actix_web::rt::time::interval(MAIL_POLL);
        let mut last_reminders: Option<std::time::Instant> = None;
        loop {
            tick.tick().await;
            if mail.store.unreachable() {
                continue;
            }
            let s = mail.clone();
            let interval = mail.config.get().notify.reminder_interval.0;
            let remind = last_reminders.is_none_or(|t| t.elapsed() >= interval);
            if remind {
                last_reminders = Some(std::time::Instant::now());
            }
            let result = web::block(move || {
                let queued = if remind {
                    s.mailer.queue_expiry_reminders().map(Some)
                } else {
                    Ok(None)
                };
                let round = s.mailer.deliver_due();
                let depth = s.mailer.depth();
                (queued, round, depth, s)
            })
            .await;
            let Ok((queued, round, depth, s)) = result else {
                tracing::warn!("e-mail delivery did not run");
                continue;
            };
            match queued {
                Ok(Some(n)) if n > 0 => {
                    tracing::info!(queued = n, "queued certificate expiry reminders")
                }
                Err(e) => tracing::warn!(error = %e, "queueing expiry reminders failed"),
                _ => {}
            }
            match round {
                Ok(r) => s.metrics.outbox_round(r.sent, r.failed, r.dead),
                Err(e) => tracing::warn!(error = %e, "e-mail delivery failed; retrying"),
            }
            if let Ok(depth) = depth {
                s.metrics.outbox_depth(&depth);
            }
        }
    });
}

/// Every root's CRL and the root-signed OCSP responses for every issuing CA kept fresh (where
/// the root key is: development), and every issuing CA's full and delta CRLs published when
/// due.
fn spawn_crl_publication(state: &AppState) {
    let root_state = state.clone();
    actix_web::rt::spawn(async move {
        let mut tick = actix_web::rt::time::interval(CRL_POLL);
        loop {
            tick.tick().await;
            if root_state.store.unreachable() {
                continue;
            }
            let s = root_state.clone();
            let root = web::block(move || keep_roots_fresh(&s)).await;
            if let Ok(failures) = root {
                for (what, e) in failures {
                    tracing::warn!(error = %e, "keeping {what} fresh failed");
                }
            }
            for (n, publisher) in root_state.crls.iter().enumerate() {
                let health_of = publisher.clone();
                let publisher = publisher.clone();
                let first = n == 0;
                match web::block(move || publisher.publish_due()).await {
                    Ok(Ok(_)) if first => root_state
                        .metrics
                        .crl_publication(&health_of.health(), false),
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => {
                        let health = health_of.health();
                        if first {
                            root_state.metrics.crl_publication(&health, true);
                        }
                        // Every 2 s while it lasts would drown the log: the first failure,
                        // then one line about every five minutes.
                        if health.consecutive_failures % 150 == 1 {
                            tracing::error!(
                                error = %e,
                                issuer = health_of.issuer_id(),
                                failures = health.consecutive_failures,
                                "CRL publication failed; retrying (see /readyz; tamga crl check)"
                            );
                        } else {
                            tracing::debug!(error = %e, "CRL publication failed again");
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "CRL publication did not run"),
                }
            }
        }
    });
}

/// One turn of the roots' upkeep: each root's CRL, and each issuing CA's root-signed OCSP
/// responses, where this machine holds the root key. Returns what failed.
pub(crate) fn keep_roots_fresh(s: &AppState) -> Vec<(String, String)> {
    let cfg = s.config.get();
    let now = s.clock.now();
    let validity = cfg.crl.root_validity.chrono();
    let mut failures = Vec::new();
    for root in s.issuers.roots() {
        let fresh = if root.root_id() == crate::crl::root::ROOT_ID {
            crate::crl::root::keep_fresh(&s.store, root, s.config.public_url(), now, validity)
        } else {
            let serials: Vec<String> = s
                .issuers
                .iter()
                .filter(|i| i.hierarchy().root_id() == root.root_id())
                .filter_map(|i| crate::ocsp::root::issuing_serial(i.hierarchy()).ok())
                .collect();
            crate::crl::root::keep_fresh_further(
                &s.store,
                root,
                &serials,
                s.config.public_url(),
                now,
                validity,
            )
        };
        if let Err(e) = fresh {
            failures.push((
                format!("the CRL of the root {}", root.root_id()),
                e.to_string(),
            ));
        }
    }
    ops::root_crl_state(s);
    for view in cfg.ca.per_issuer() {
        let Some(issuer) = s.issuers.get(&view.issuer_id) else {
            continue;
        };
        let issuing_cert = crate::ca::HierarchyFiles::for_config(&view).issuing_cert;
        if let Err(e) = crate::ocsp::root::keep_fresh(
            &s.store,
            issuer.hierarchy(),
            &issuing_cert,
            now,
            validity,
        ) {
            failures.push((
                format!("the root OCSP responses for {}", view.issuer_id),
                e.to_string(),
            ));
        }
    }
    failures
}

/// Completing issuance that was postponed (key unavailable) or interrupted.
fn spawn_resume(state: &AppState) {
    let registrar = state.registrar.clone();
    every(
        state.store.clone(),
        RESUME_INTERVAL,
        "finishing postponed issuance",
        move || registrar.resume_approved_since(Some(RESUME_AFTER)),
        |finished| match finished {
            Ok(0) => {}
            Ok(n) => tracing::warn!(applications = n, "finished postponed issuance"),
            Err(e) => tracing::warn!(error = %e, "finishing postponed issuance failed"),
        },
    );
}

/// Forgetting used consent-token ids once they expired, old per-IIN rate-limit counts, the
/// cabinet's ended challenges and sessions, and the pages' ended enrollment sessions.
fn spawn_pruning(state: &AppState) {
    let registrar = state.registrar.clone();
    every(
        state.store.clone(),
        PRUNE_INTERVAL,
        "pruning",
        move || {
            (
                registrar.prune_used_tokens(),
                registrar.prune_rate_events(),
                registrar.prune_cabinet(),
                registrar.prune_enrollments(),
            )
        },
        |(tokens, rates, cabinet, enrollments)| {
            match enrollments {
                Ok(0) => {}
                Ok(n) => tracing::debug!(pruned = n, "pruned ended enrollment sessions"),
                Err(e) => tracing::warn!(error = %e, "pruning enrollment sessions failed"),
            }
            match cabinet {
                Ok(0) => {}
                Ok(n) => {
                    tracing::debug!(pruned = n, "pruned ended cabinet challenges and sessions")
                }
                Err(e) => {
                    tracing::warn!(error = %e, "pruning cabinet challenges and sessions failed")
                }
            }
            match tokens {
                Ok(0) => {}
                Ok(n) => tracing::info!(pruned = n, "pruned expired consent-token ids"),
                Err(e) => tracing::warn!(error = %e, "pruning consent-token ids failed"),
            }
            match rates {
                Ok(0) => {}
                Ok(n) => tracing::debug!(pruned = n, "pruned per-IIN rate-limit counts"),
                Err(e) => tracing::warn!(error = %e, "pruning rate-limit counts failed"),
            }
        },
    );
}
