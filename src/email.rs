//! The citizen's e-mail address, as the form gives it and as the certificate and the mailer
//! use it.
//!
//! Stands on the ground floor (it imports no other module), so the RA that checks the form
//! and the CA that puts the address in a certificate share one proof of it.
//!
//! Owns: the one check that turns the form's text into an [`EmailAddress`] — an RFC 5321
//! mailbox with a dot-atom local part (RFC 5322 `atext` characters, no leading, trailing or
//! double dot, at most 64 octets) and a domain name, at most 254 octets in all. An
//! internationalised domain is converted to its A-label (`xn--…`, UTS #46 with the STD3 rules),
//! which is what goes into the certificate's rfc822Name (an IA5String) and to the SMTP server;
//! ASCII domains are lower-cased. A non-ASCII local part is refused: SmtpUTF8Mailbox (RFC 9598)
//! is not supported yet, and neither is a quoted local part or an address literal. Every
//! accepted address also parses as the mailer's (lettre's) address and mailbox. Must never:
//! accept an address the certificate cannot carry or the mailer will refuse.

use std::fmt;

/// The longest address (RFC 5321's path limit less the angle brackets).
pub const MAX_LEN: usize = 254;
/// The longest local part (RFC 5321 §4.5.3.1.1).
pub const MAX_LOCAL_LEN: usize = 64;

/// Why a text is not an acceptable e-mail address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EmailError {
    /// Empty, or longer than 254 octets.
    #[error("an address has 1-254 characters")]
    Length,
    /// No `@`.
    #[error("missing @")]
    MissingAt,
    /// Before the `@`: empty, too long, a leading, trailing or double dot, or a character
    /// outside the dot-atom (`"`, `,`, `<`, a space…).
    #[error("the part before @ must be 1-64 letters, digits and !#$%&'*+-/=?^_`{{|}}~ in dot-separated words: {0}")]
    LocalPart(&'static str),
    /// Non-ASCII before the `@`.
    #[error("the part before @ must be ASCII: internationalised mailboxes (SMTPUTF8) are not supported yet")]
    NonAsciiLocalPart,
    /// After the `@`: not a domain name (or not convertible to one).
    #[error("the domain is not a valid domain name: {0}")]
    Domain(&'static str),
    /// The mailer would not take it (should not happen after the checks above).
    #[error("the mail system does not accept this address")]
    MailerRefused,
}

/// A checked e-mail address in the form the certificate and the mailer use: ASCII, the domain
/// lower-case with A-labels. Only [`EmailAddress::parse`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailAddress(String);

fn is_atext(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b)
}

fn check_local(local: &str) -> Result<(), EmailError> {
    if !local.is_ascii() {
        return Err(EmailError::NonAsciiLocalPart);
    }
    if local.is_empty() || local.len() > MAX_LOCAL_LEN {
        return Err(EmailError::LocalPart("1-64 characters"));
    }
    if local.starts_with('.') || local.ends_with('.') {
        return Err(EmailError::LocalPart("it starts or ends with a dot"));
    }
    if local.contains("..") {
        return Err(EmailError::LocalPart("two dots in a row"));
    }
    if !local.bytes().all(|b| b == b'.' || is_atext(b)) {
        return Err(EmailError::LocalPart(
            "quotes, spaces, commas, brackets, @ and backslashes are not allowed",
        ));
    }
    Ok(())
}

/// The domain as A-labels, lower case, checked label by label.
fn ascii_domain(domain: &str) -> Result<String, EmailError> {
    if domain.is_empty() {
        return Err(EmailError::Domain("empty"));
    }
    let ascii = idna::domain_to_ascii_strict(domain)
        .map_err(|_| EmailError::Domain("not convertible to an ASCII (A-label) name"))?;
    let labels: Vec<&str> = ascii.split('.').collect();
    if labels.len() < 2 {
        return Err(EmailError::Domain("it needs at least two labels"));
    }
    for label in &labels {
        let ldh = label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if label.is_empty() || label.len() > 63 || !ldh {
            return Err(EmailError::Domain(
                "labels are 1-63 letters, digits and hyphens",
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(EmailError::Domain(
                "a label may not start or end with a hyphen",
            ));
        }
    }
    if labels
        .last()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(EmailError::Domain("the last label is all digits"));
    }
    Ok(ascii)
}

impl EmailAddress {
    /// Check the form's text (surrounding white space is ignored) and normalise its domain.
    pub fn parse(raw: &str) -> Result<EmailAddress, EmailError> {
        let raw = raw.trim();
        if raw.is_empty() || raw.len() > MAX_LEN * 4 {
            return Err(EmailError::Length);
        }
        let (local, domain) = raw.rsplit_once('@').ok_or(EmailError::MissingAt)?;
        check_local(local)?;
        let domain = ascii_domain(domain)?;
        let address = format!("{local}@{domain}");
        if address.len() > MAX_LEN {
            return Err(EmailError::Length);
        }
        // What the mailer will do with it: the checks above are stricter, this keeps them so.
        let mailer_address =
            lettre::Address::new(local, &domain).map_err(|_| EmailError::MailerRefused)?;
        let mailbox: lettre::message::Mailbox =
            address.parse().map_err(|_| EmailError::MailerRefused)?;
        if mailbox.email != mailer_address {
            return Err(EmailError::MailerRefused);
        }
        Ok(EmailAddress(address))
    }

    /// `local@domain`, ASCII.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `other` is the same mailbox: the domain is already normalised; the local part
    /// is compared without regard to ASCII case, as mail systems do in practice.
    pub fn same_mailbox(&self, other: &EmailAddress) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_addresses_are_refused_with_the_reason() {
        let cases: &[(&str, EmailError)] = &[
            ("a,b@x.kz", EmailError::LocalPart("")),
            ("a\"b@x.kz", EmailError::LocalPart("")),
            ("\"a b\"@x.kz", EmailError::LocalPart("")),
            (".a@x.kz", EmailError::LocalPart("")),
            ("a.@x.kz", EmailError::LocalPart("")),
            ("a..b@x.kz", EmailError::LocalPart("")),
            ("a<b@x.kz", EmailError::LocalPart("")),
            ("a>b@x.kz", EmailError::LocalPart("")),
            ("a(b)@x.kz", EmailError::LocalPart("")),
            ("a;b@x.kz", EmailError::LocalPart("")),
            ("a:b@x.kz", EmailError::LocalPart("")),
            ("a\\b@x.kz", EmailError::LocalPart("")),
            ("a b@x.kz", EmailError::LocalPart("")),
            ("a@b@x.kz", EmailError::LocalPart("")),
            ("@x.kz", EmailError::LocalPart("")),
            ("a\r\nBcc: e@x.kz", EmailError::LocalPart("")),
            ("иван@пример.қаз", EmailError::NonAsciiLocalPart),
            ("ivan\u{202E}@x.kz", EmailError::NonAsciiLocalPart),
            ("ax.kz", EmailError::MissingAt),
            ("", EmailError::Length),
            ("a@", EmailError::Domain("")),
            ("a@kz", EmailError::Domain("")),
            ("a@x..kz", EmailError::Domain("")),
            ("a@-x.kz", EmailError::Domain("")),
            ("a@x_y.kz", EmailError::Domain("")),
            ("a@[127.0.0.1]", EmailError::Domain("")),
            ("a@1.2.3.4", EmailError::Domain("")),
            ("a@x.kz>", EmailError::Domain("")),
            ("a@xn--zz.kz", EmailError::Domain("")),
            ("a@пример\u{202E}.kz", EmailError::Domain("")),
        ];
        let kind = |e: &EmailError| std::mem::discriminant(e);
        for (raw, expected) in cases {
            let got = EmailAddress::parse(raw);
            assert!(
                got.as_ref().is_err_and(|e| kind(e) == kind(expected)),
                "{raw:?}: {got:?}"
            );
        }
        let long_local = format!("{}@x.kz", "a".repeat(65));
        assert!(EmailAddress::parse(&long_local).is_err());
        let long = format!("a@{}.kz", vec!["b".repeat(60); 5].join("."));
        assert!(
            matches!(
                EmailAddress::parse(&long),
                Err(EmailError::Domain(_) | EmailError::Length)
            ),
            "a domain over 253 octets"
        );
    }

    #[test]
    fn good_addresses_are_normalised_and_taken_by_the_mailer() {
        let cases = [
            ("ivan@example.kz", "ivan@example.kz"),
            ("  Ivan.Petrov@Example.KZ ", "Ivan.Petrov@example.kz"),
            ("ivan@пример.kz", "ivan@xn--e1afmkfd.kz"),
            ("ivan@мысал.қаз", "ivan@xn--80awbu3c.xn--80ao21a"),
            ("o'neil+tag@mail.example.kz", "o'neil+tag@mail.example.kz"),
            ("a!#$%&'*+-/=?^_`{|}~z@x.kz", "a!#$%&'*+-/=?^_`{|}~z@x.kz"),
            ("user@xn--e1afmkfd.kz", "user@xn--e1afmkfd.kz"),
        ];
        for (raw, normal) in cases {
            let email = EmailAddress::parse(raw);
            assert_eq!(
                email.as_ref().map(EmailAddress::as_str),
                Ok(normal),
                "{raw}"
            );
            // The mailer's own parsers take the normalised form as it is.
            let address: Result<lettre::Address, _> = normal.parse();
            assert_eq!(address.map(|a| a.to_string()), Ok(normal.to_owned()));
            let mailbox: Result<lettre::message::Mailbox, _> = normal.parse();
            assert!(mailbox.is_ok(), "{normal}");
            // Normalising is idempotent (the stored form checks again on approval).
            assert_eq!(
                EmailAddress::parse(normal).map(|e| e.to_string()),
                Ok(normal.to_owned())
            );
        }
        let a = EmailAddress::parse("Ivan@ПРИМЕР.kz");
        let b = EmailAddress::parse("ivan@xn--e1afmkfd.KZ");
        assert!(matches!((a, b), (Ok(a), Ok(b)) if a.same_mailbox(&b)));
    }
}
