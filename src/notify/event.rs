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
    /// A certificate was revoked for good. (Rows queued before [`EmailEvent::CertificateHeld`]
    /// existed carry this event for a hold too, with the reason `certificateHold`: they are
    /// rendered as the hold's message.)
    CertificateRevoked,
    /// A certificate reaches one of the expiry reminder thresholds.
    CertificateExpiring,
    /// A certificate was put on hold (`certificateHold`): suspended until it is released or
    /// revoked for good.
    CertificateHeld,
    /// A certificate's hold was released: it is valid again.
    CertificateReleased,
    /// The holder re-issued their keys with the current pair: a new pair was issued and the
    /// pair it replaces was revoked `superseded` (sent instead of
    /// [`EmailEvent::CertificatesIssued`] for a re-issue).
    CertificatesReissued,
}

impl EmailEvent {
    /// Every event.
    pub const ALL: [EmailEvent; 8] = [
        EmailEvent::ApplicationReceived,
        EmailEvent::CertificatesIssued,
        EmailEvent::ApplicationRejected,
        EmailEvent::CertificateRevoked,
        EmailEvent::CertificateExpiring,
        EmailEvent::CertificateHeld,
        EmailEvent::CertificateReleased,
        EmailEvent::CertificatesReissued,
    ];

    /// The text stored in the outbox. Never change one: rows already queued carry it.
    pub const fn as_str(self) -> &'static str {
        match self {
            EmailEvent::ApplicationReceived => "application_received",
            EmailEvent::CertificatesIssued => "certificates_issued",
            EmailEvent::ApplicationRejected => "application_rejected",
            EmailEvent::CertificateRevoked => "certificate_revoked",
            EmailEvent::CertificateExpiring => "certificate_expiring",
            EmailEvent::CertificateHeld => "certificate_held",
            EmailEvent::CertificateReleased => "certificate_released",
            EmailEvent::CertificatesReissued => "certificates_reissued",
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
