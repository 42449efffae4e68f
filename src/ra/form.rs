//! Application intake, the form: the rules of the submitted form and of its two CSRs taken
//! together (agreement, e-mail, language, storage; both requests valid by [`crate::csr`],
//! an e-mail SAN only if equal to the form's, different keys for AUTH and SIGN). Must never:
//! touch the database, or trust a CSR's subject or requested extensions.

use super::{EmailAddress, RaError};
use crate::csr::{self, ValidatedCsr};
use crate::vocab::{Language, Storage};

/// The application form as submitted (already parsed from JSON, not yet checked).
#[derive(Debug, Clone)]
pub struct ApplicationForm {
    /// Version of the user agreement shown.
    pub agreement_version: String,
    /// Whether the citizen accepted it.
    pub agreement_accepted: bool,
    /// Optional e-mail.
    pub email: Option<String>,
    /// `kk`, `ru` or `en`.
    pub language: String,
    /// Storage type.
    pub storage: String,
    /// AUTH CSR (PEM or base64 DER).
    pub auth_csr: String,
    /// SIGN CSR.
    pub sign_csr: String,
}

/// A form that passed every check.
pub(crate) struct CheckedForm {
    pub(super) agreement_version: String,
    pub(super) email: Option<EmailAddress>,
    pub(super) language: Language,
    pub(super) storage: Storage,
    pub(super) auth: ValidatedCsr,
    pub(super) sign: ValidatedCsr,
}

impl ApplicationForm {
    /// Every rule of the form and both CSRs, in the order the RA applies them.
    pub(crate) fn check(self, current_agreement: &str) -> Result<CheckedForm, RaError> {
        if !self.agreement_accepted {
            return Err(RaError::AgreementNotAccepted);
        }
        if self.agreement_version != current_agreement {
            return Err(RaError::AgreementVersionMismatch {
                current: current_agreement.to_owned(),
                found: self.agreement_version.chars().take(64).collect(),
            });
        }
        let email = self.email.as_deref().map(EmailAddress::parse).transpose()?;
        let language = Language::parse(&self.language).ok_or(RaError::LanguageInvalid)?;
        let storage = Storage::parse(&self.storage).ok_or(RaError::StorageTypeInvalid)?;
        let auth = csr::validate(&self.auth_csr)?;
        let sign = csr::validate_sign(&self.sign_csr)?;
        for req in [&auth, &sign] {
            if let Some(requested) = req.email() {
                // Both normalised: an A-label in the CSR matches the form's U-label domain.
                let requested = EmailAddress::parse(requested).ok();
                let same = email
                    .as_ref()
                    .zip(requested.as_ref())
                    .is_some_and(|(e, r)| e.same_mailbox(r));
                if !same {
                    return Err(RaError::CsrEmailMismatch);
                }
            }
        }
        if auth.identity() == sign.identity() {
            return Err(RaError::SameKeyForAuthAndSign);
        }
        Ok(CheckedForm {
            agreement_version: self.agreement_version,
            email,
            language,
            storage,
            auth,
            sign,
        })
    }
}
