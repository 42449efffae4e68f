//! E-mail notifications: delivery of the transactional outbox over SMTP (or into .eml files),
//! the templates in Kazakh, Russian and English, and the expiry reminders.
//!
//! Owns: the e-mail events ([`EmailEvent`], stored in the outbox as their stable text and read
//! back before rendering), leasing due outbox rows (one worker per row; a dead worker's lease
//! expires and the row is retried), rendering, sending with a stable Message-ID per row, retries with exponential
//! back-off and jitter, the `dead` state after `max_attempts`, and queueing the 30/14/7-day
//! expiry reminders once per certificate and threshold. Must never: send anything that is not
//! in the outbox (events are written by the authorities in the transaction of the state change
//! itself), lose a row, or log a password.

mod event;
pub mod outbox;
mod templates;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDateTime;
use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{Message, SmtpTransport, Transport as _};

pub use event::EmailEvent;
pub use templates::{render, render_event, Rendered};

use crate::clock::Clock;
use crate::config::NotifyConfig;
use crate::store::{db_time, OutboxMessage, Store, StoreError};

/// How long a worker holds a row while it sends it.
const LEASE: Duration = Duration::from_secs(60);
/// Rows leased per round.
const BATCH: i64 = 20;
/// Days before notAfter at which holders are reminded.
pub const EXPIRY_THRESHOLDS: [i32; 3] = [30, 14, 7];

/// Where messages go.
enum Sink {
    Smtp(Box<SmtpTransport>),
    Files(PathBuf),
}

/// Why a delivery round failed as a whole (single messages fail into their rows instead).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NotifyError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The transport could not be built from the configuration.
    #[error("e-mail transport: {0}")]
    Transport(String),
}

/// What one delivery round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    /// Messages delivered.
    pub sent: usize,
    /// Attempts that failed (to be retried).
    pub failed: usize,
    /// Messages that became dead.
    pub dead: usize,
}

/// Check `[notify]` without connecting anywhere.
pub fn check_config(config: &NotifyConfig) -> Result<(), String> {
    config
        .from
        .parse::<Mailbox>()
        .map_err(|e| format!("from `{}` is not an e-mail address: {e}", config.from))?;
    if !config.smtp_url.is_empty() {
        parse_smtp_url(&config.smtp_url)?;
    }
    if config.max_attempts == 0 {
        return Err("max_attempts must be at least 1".to_owned());
    }
    if config.retry_max.0 < config.retry_base.0 {
        return Err("retry_max must be at least retry_base".to_owned());
    }
    if !config.username.is_empty() {
        password(config)?;
    }
    Ok(())
}

#[derive(Debug, PartialEq, Eq)]
enum Security {
    Plain,
    StartTls,
    Implicit,
}

fn parse_smtp_url(raw: &str) -> Result<(Security, String, u16), String> {
    let url = url::Url::parse(raw).map_err(|e| format!("smtp_url `{raw}`: {e}"))?;
    let host = url
        .host_str()
        .ok_or_else(|| format!("smtp_url `{raw}` has no host"))?
        .to_owned();
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "smtp_url must not carry credentials: use username and password_env/password_file"
                .to_owned(),
        );
    }
    let tls = url
        .query_pairs()
        .find(|(k, _)| k == "tls")
        .map(|(_, v)| v.into_owned());
    let security = match (url.scheme(), tls.as_deref()) {
        ("smtp", None | Some("none")) => Security::Plain,
        ("smtp", Some("starttls")) => Security::StartTls,
        ("smtps", None) => Security::Implicit,
        (scheme, tls) => {
            return Err(format!(
                "smtp_url `{raw}`: unsupported scheme {scheme} with tls={tls:?} (smtp://, smtp://…?tls=starttls, smtps://)"
            ))
        }
    };
    let port = url.port().unwrap_or(match security {
        Security::Implicit => 465,
        Security::StartTls => 587,
        Security::Plain => 25,
    });
    Ok((security, host, port))
}

fn password(config: &NotifyConfig) -> Result<String, String> {
    if !config.password_env.is_empty() {
        return std::env::var(&config.password_env).map_err(|_| {
            format!(
                "password_env: the variable {} is not set",
                config.password_env
            )
        });
    }
    if !config.password_file.is_empty() {
        return crate::input::read_secret_line(std::path::Path::new(&config.password_file))
            .map_err(|e| format!("password_file {}: {e}", config.password_file));
    }
    Err("username is set but neither password_env nor password_file is".to_owned())
}

/// Delivers the outbox.
pub struct Mailer {
    store: Store,
    sink: Sink,
    from: Mailbox,
    config: NotifyConfig,
    owner: String,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("owner", &self.owner)
            .field("smtp", &!self.config.smtp_url.is_empty())
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// A mailer for `config` (SMTP if `smtp_url` is set, .eml files otherwise).
    pub fn new(
        store: Store,
        config: &NotifyConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Mailer, NotifyError> {
        check_config(config).map_err(NotifyError::Transport)?;
        let from = config
            .from
            .parse::<Mailbox>()
            .map_err(|e| NotifyError::Transport(e.to_string()))?;
        let sink = if config.smtp_url.is_empty() {
            Sink::Files(config.mail_dir.clone())
        } else {
            let (security, host, port) =
                parse_smtp_url(&config.smtp_url).map_err(NotifyError::Transport)?;
            let builder = match security {
                Security::Plain => SmtpTransport::builder_dangerous(&host),
                Security::StartTls => SmtpTransport::starttls_relay(&host)
                    .map_err(|e| NotifyError::Transport(e.to_string()))?,
                Security::Implicit => SmtpTransport::relay(&host)
                    .map_err(|e| NotifyError::Transport(e.to_string()))?,
            };
            let mut builder = builder.port(port).timeout(Some(Duration::from_secs(15)));
            if !config.username.is_empty() {
                let secret = password(config).map_err(NotifyError::Transport)?;
                builder = builder.credentials(Credentials::new(config.username.clone(), secret));
            }
            Sink::Smtp(Box::new(builder.build()))
        };
        Ok(Mailer {
            store,
            sink,
            from,
            config: config.clone(),
            owner: format!("mailer-{}", uuid::Uuid::new_v4().simple()),
            clock,
        })
    }

    /// The Message-ID of an outbox row: stable across retries.
    pub fn message_id(row_id: &str) -> String {
        format!("<{row_id}@outbox.tamga>")
    }

    fn build(&self, row: &OutboxMessage) -> Result<Message, String> {
        let rendered = render(&row.event, &row.language, &row.payload)?;
        let to: Mailbox = row
            .recipient
            .parse()
            .map_err(|e| format!("recipient {}: {e}", row.recipient))?;
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(rendered.subject)
            .message_id(Some(Self::message_id(&row.id)))
            .multipart(
                MultiPart::alternative()
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_PLAIN)
                            .body(rendered.text),
                    )
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_HTML)
                            .body(rendered.html),
                    ),
            )
            .map_err(|e| e.to_string())
    }

    fn send(&self, row: &OutboxMessage, message: &Message) -> Result<(), String> {
        match &self.sink {
            Sink::Smtp(transport) => transport
                .send(message)
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Sink::Files(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                let path = dir.join(format!("{}.eml", row.id));
                let tmp = dir.join(format!(".{}.eml.tmp", row.id));
                std::fs::write(&tmp, message.formatted())
                    .map_err(|e| format!("{}: {e}", tmp.display()))?;
                std::fs::rename(&tmp, &path).map_err(|e| format!("{}: {e}", path.display()))
            }
        }
    }

    /// The delay before attempt `attempts + 1`: base·2^attempts, at most max, ±25 % jitter.
    fn backoff(&self, attempts: i32) -> chrono::Duration {
        let base = self.config.retry_base.0.as_secs_f64();
        let max = self.config.retry_max.0.as_secs_f64();
        let exp = base * 2f64.powi(attempts.clamp(0, 30));
        let mut jitter = [0u8; 2];
        let _ = openssl::rand::rand_bytes(&mut jitter);
        let factor = 0.75 + f64::from(u16::from_be_bytes(jitter)) / f64::from(u16::MAX) * 0.5;
        let secs = (exp.min(max) * factor).max(0.1);
        chrono::Duration::milliseconds((secs * 1000.0) as i64)
    }

    /// Lease due rows, send them, and record each outcome.
    pub fn deliver_due(&self) -> Result<Round, NotifyError> {
        let now = self.clock.now();
        let lease = db_time(now + chrono::Duration::from_std(LEASE).unwrap_or_default());
        let rows = self
            .store
            .write(|tx| tx.claim_due_messages(&self.owner, db_time(now), lease, BATCH))?;
        let mut round = Round::default();
        for row in rows {
            let outcome = self
                .build(&row)
                .and_then(|m| self.send(&row, &m).map(|()| m));
            let at = db_time(self.clock.now());
            match outcome {
                Ok(_) => {
                    self.store
                        .write(|tx| tx.mark_message_sent(&row.id, &self.owner, at))?;
                    tracing::info!(id = %row.id, event = %row.event, "e-mail delivered");
                    round.sent += 1;
                }
                Err(error) => {
                    let dead = row.attempts + 1
                        >= i32::try_from(self.config.max_attempts).unwrap_or(i32::MAX);
                    let next: NaiveDateTime = at + self.backoff(row.attempts);
                    self.store.write(|tx| {
                        tx.mark_message_failed(&row.id, &self.owner, &error, next, dead)
                    })?;
                    tracing::warn!(id = %row.id, attempts = row.attempts + 1, dead, %error, "e-mail not delivered");
                    round.failed += 1;
                    round.dead += usize::from(dead);
                }
            }
        }
        Ok(round)
    }

    /// Outbox rows per status, for metrics.
    pub fn depth(&self) -> Result<Vec<(String, i64)>, StoreError> {
        self.store.read(|tx| tx.outbox_depth())
    }

    /// Queue the expiry reminders that are due: for each issued certificate whose notAfter is
    /// at most 30 days away, the smallest threshold it has reached, once. Returns how many
    /// reminders were queued.
    pub fn queue_expiry_reminders(&self) -> Result<usize, NotifyError> {
        let now = self.clock.now();
        let until = db_time(now + chrono::Duration::days(i64::from(EXPIRY_THRESHOLDS[0])));
        let expiring = self
            .store
            .read(|tx| tx.expiring_certificates(db_time(now), until, 10_000))?;
        let mut queued = 0;
        for cert in expiring {
            let days_left = (cert.not_after - now.naive_utc()).num_days();
            // Thresholds reached: those ≥ days_left. Remind once, at the smallest.
            let reached: Vec<i32> = EXPIRY_THRESHOLDS
                .iter()
                .copied()
                .filter(|t| i64::from(*t) >= days_left)
                .collect();
            let Some(&smallest) = reached.iter().min() else {
                continue;
            };
            let at = db_time(now);
            let done = self.store.write(|tx| -> Result<bool, StoreError> {
                let already = tx.expiry_notices(&cert.serial)?;
                if already.contains(&smallest) {
                    return Ok(false);
                }
                for t in &reached {
                    if !already.contains(t) && !tx.record_expiry_notice(&cert.serial, *t, at)? {
                        return Ok(false);
                    }
                }
                let app = match &cert.application_id {
                    Some(id) => tx.application(id)?,
                    None => None,
                };
                let Some(app) = app else { return Ok(false) };
                let Some(email) = app.email.clone() else {
                    return Ok(false);
                };
                tx.enqueue_message(&OutboxMessage::pending(
                    EmailEvent::CertificateExpiring.as_str(),
                    &email,
                    &app.language,
                    serde_json::json!({
                        "serial": cert.serial,
                        "kind": cert.kind.as_str(),
                        "not_after": cert.not_after.and_utc().to_rfc3339(),
                        "days": smallest,
                    })
                    .to_string(),
                    at,
                ))?;
                Ok(true)
            })?;
            queued += usize::from(done);
        }
        Ok(queued)
    }
}

#[cfg(test)]
mod tests;
