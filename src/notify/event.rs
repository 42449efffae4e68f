//! What an e-mail tells its recipient. The event's stable text is what the outbox row stores
//! (its `event` column) and is read back into an [`EmailEvent`] before rendering; a row whose
//! text is none of these fails to render (and is retried, then dead), it is never guessed.

use std::fmt;

/// An event the holder is told about by e-mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EmailEvent {
    /// An application is waiting for an operator's review.
    ApplicationReceived,
    /// The certificates of an application were issued.
    CertificatesIssued,
    /// An operator rejected an application.
    ApplicationRejected,
    /// A certificate was revoked (or put on hold).
    CertificateRevoked,
    /// A certificate reaches one of the expiry reminder thresholds.
    CertificateExpiring,
}

impl EmailEvent {
    /// Every event.
    pub const ALL: [EmailEvent; 5] = [
        EmailEvent::ApplicationReceived,
        EmailEvent::CertificatesIssued,
        EmailEvent::ApplicationRejected,
        EmailEvent::CertificateRevoked,
        EmailEvent::CertificateExpiring,
    ];

    /// The text stored in the outbox. Never change one: rows already queued carry it.
    pub const fn as_str(self) -> &'static str {
        match self {
            EmailEvent::ApplicationReceived => "application_received",
            EmailEvent::CertificatesIssued => "certificates_issued",
            EmailEvent::ApplicationRejected => "application_rejected",
            EmailEvent::CertificateRevoked => "certificate_revoked",
            EmailEvent::CertificateExpiring => "certificate_expiring",
        }
    }

    /// Read a stored event back; `None` for a text that is no event.
    pub fn parse(text: &str) -> Option<EmailEvent> {
        EmailEvent::ALL.into_iter().find(|e| e.as_str() == text)
    }
}

impl fmt::Display for EmailEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
