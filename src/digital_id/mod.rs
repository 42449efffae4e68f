//! Digital ID consent tokens: the JWS (compact JWT) that Digital ID signs when a citizen
//! agrees to hand their identity to the CA.
//!
//! Owns: the trusted Digital ID keys (PEM files, a JWKS file, and in dev mode the generated
//! development key), verification of a token into a [`VerifiedConsent`] — signature by `kid`
//! with ES256, RS256 or PS256 only, `iss`, `aud`, `nbf`/`iat`/`exp` with 60 s skew, a lifetime of
//! at most 15 minutes with `exp` after `iat` and `nbf`, `purpose`, the IIN (a real birth date,
//! not in the future, agreeing with the identity's birth date and sex) and the identity claims
//! (names without invisible, bidirectional or private-use characters, see [`names`]) — and
//! minting development tokens. Must never: accept a token it did not fully check, choose a key
//! or an algorithm from anything but its own configuration, or write a token into a log or an
//! error message.
//! Replay protection (the single use of `jti`) is enforced by the RA in the same database
//! transaction that creates the application.

mod iin;
mod jws;
pub mod names;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use chrono::{DateTime, NaiveDate, Utc};
use openssl::pkey::{PKey, Private, Public};
use serde::{Deserialize, Serialize};

use crate::error_code::ErrorCode;

pub use iin::{check_digit as iin_check_digit, Iin, IinError, EARLIEST_BIRTH_DATE};
pub use jws::Algorithm;

/// Largest token accepted before any parsing.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;
/// Allowed clock difference with Digital ID.
pub const CLOCK_SKEW_SECS: i64 = 60;
/// Longest lifetime (`exp - iat`) a consent token may have.
pub const MAX_LIFETIME_SECS: i64 = 15 * 60;

/// What a consent token allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// Issue the citizen's certificates.
    EdsIssuance,
    /// Revoke one of the citizen's certificates.
    EdsRevocation,
    /// Re-issue the citizen's pair from the cabinet (the optional second factor,
    /// `[ra] reissue_requires_consent`).
    EdsReissue,
}

impl Purpose {
    /// The claim value.
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::EdsIssuance => "eds_issuance",
            Purpose::EdsRevocation => "eds_revocation",
            Purpose::EdsReissue => "eds_reissue",
        }
    }
}

/// Why a consent token was refused. Each variant has a stable wire code (`consent_token_*`,
/// or `iin_invalid`). Messages never contain the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConsentError {
    /// No `Authorization: Bearer` header.
    #[error("no consent token: send it as Authorization: Bearer <token>")]
    Missing,
    /// Not a compact JWS with a JSON header and claims of the expected shape.
    #[error("the consent token is malformed: {0}")]
    Malformed(String),
    /// The header's `alg` is not ES256, RS256 or PS256, or does not fit the key.
    #[error("algorithm {0} is not allowed for consent tokens (ES256, RS256, PS256)")]
    AlgorithmNotAllowed(String),
    /// No trusted key has this `kid`.
    #[error("the consent token is signed with a key that is not trusted (kid {0:?})")]
    UntrustedKey(Option<String>),
    /// The signature does not verify.
    #[error("the consent token's signature does not verify")]
    SignatureInvalid,
    /// `iss` is not the configured issuer.
    #[error("the consent token was issued by {0:?}, not by the trusted Digital ID issuer")]
    WrongIssuer(String),
    /// `aud` does not contain the configured audience.
    #[error("the consent token is not addressed to this CA (aud)")]
    WrongAudience,
    /// `exp` is in the past (beyond the skew).
    #[error("the consent token expired at {0}")]
    Expired(DateTime<Utc>),
    /// `nbf` or `iat` is in the future (beyond the skew).
    #[error("the consent token is not valid before {0}")]
    NotYetValid(DateTime<Utc>),
    /// `exp - iat` exceeds 15 minutes.
    #[error("the consent token's lifetime of {0} s exceeds the maximum of 900 s")]
    LifetimeTooLong(i64),
    /// The token's own times contradict each other: `exp` not after `iat`, or `nbf` after
    /// `exp` (such a token was never valid, whatever the clock allowance).
    #[error("the consent token's lifetime is invalid: {0}")]
    LifetimeInvalid(&'static str),
    /// `purpose` is not the one this operation needs.
    #[error("the consent token's purpose is {found}, this operation needs {expected}")]
    WrongPurpose {
        /// What the operation needs.
        expected: &'static str,
        /// What the token says.
        found: String,
    },
    /// A name claim carries a character that never belongs in a name (see [`names`]).
    #[error("identity.{claim} contains U+{code_point:04X}, {what}, which a name may not contain")]
    NameInvalid {
        /// `surname`, `name` or `patronymic`.
        claim: &'static str,
        /// The first refused character.
        code_point: u32,
        /// What kind of character it is.
        what: &'static str,
    },
    /// `sub` is not a valid IIN (including an impossible birth date), or disagrees with the
    /// identity's birth date or sex.
    #[error("the consent token's IIN is invalid: {0}")]
    IinInvalid(String),
}

impl ConsentError {
    /// The stable code of this refusal.
    pub fn code(&self) -> ErrorCode {
        match self {
            ConsentError::Missing => ErrorCode::ConsentTokenMissing,
            ConsentError::Malformed(_) => ErrorCode::ConsentTokenMalformed,
            ConsentError::AlgorithmNotAllowed(_) => ErrorCode::ConsentTokenAlgorithmNotAllowed,
            ConsentError::UntrustedKey(_) => ErrorCode::ConsentTokenUntrustedKey,
            ConsentError::SignatureInvalid => ErrorCode::ConsentTokenSignatureInvalid,
            ConsentError::WrongIssuer(_) => ErrorCode::ConsentTokenWrongIssuer,
            ConsentError::WrongAudience => ErrorCode::ConsentTokenWrongAudience,
            ConsentError::Expired(_) => ErrorCode::ConsentTokenExpired,
            ConsentError::NotYetValid(_) => ErrorCode::ConsentTokenNotYetValid,
            ConsentError::LifetimeTooLong(_) => ErrorCode::ConsentTokenLifetimeTooLong,
            ConsentError::LifetimeInvalid(_) => ErrorCode::ConsentTokenLifetimeInvalid,
            ConsentError::WrongPurpose { .. } => ErrorCode::ConsentTokenWrongPurpose,
            ConsentError::IinInvalid(_) => ErrorCode::IinInvalid,
            ConsentError::NameInvalid { .. } => ErrorCode::NameInvalid,
        }
    }
}

/// The citizen's document, as Digital ID checked it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Document {
    /// Document type, e.g. `id_card` or `passport`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Document number.
    pub number: String,
    /// Expiry date.
    pub expires: NaiveDate,
}

/// The identity claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    /// Surname as the register gives it (upper case).
    pub surname: String,
    /// Given name.
    pub name: String,
    /// Patronymic, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patronymic: Option<String>,
    /// Birth date.
    pub birth_date: NaiveDate,
    /// `M` or `F`.
    pub sex: String,
    /// Identity document.
    pub document: Document,
}

/// How Digital ID verified the person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verification {
    /// Always `digital_id_biometric`.
    pub method: VerificationMethod,
    /// Video liveness passed.
    pub liveness: bool,
    /// The person matched the state register.
    pub register_match: bool,
}

/// The verification method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerificationMethod {
    /// SMS, selfie, liveness and register check.
    DigitalIdBiometric,
}

/// `aud` may be a string or an array of strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// One audience.
    One(String),
    /// Several.
    Many(Vec<String>),
}

impl Audience {
    fn contains(&self, expected: &str) -> bool {
        match self {
            Audience::One(a) => a == expected,
            Audience::Many(v) => v.iter().any(|a| a == expected),
        }
    }
}

/// The claims of a consent token (SPEC §3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: Audience,
    /// The citizen's IIN.
    pub sub: String,
    /// Unique token id.
    pub jti: String,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Not before (Unix seconds); `iat` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Expires (Unix seconds).
    pub exp: i64,
    /// What the consent is for.
    pub purpose: String,
    /// Who.
    pub identity: Identity,
    /// How they were verified.
    pub verification: Verification,
}

/// A consent token whose signature, issuer, audience, times, IIN and identity all checked.
/// Only [`TrustedKeys::verify`] makes one.
#[derive(Debug, Clone)]
pub struct VerifiedConsent {
    iin: Iin,
    jti: String,
    expires_at: DateTime<Utc>,
    purpose: Purpose,
    identity: Identity,
    verification: Verification,
}

impl VerifiedConsent {
    /// The citizen's IIN.
    pub fn iin(&self) -> &Iin {
        &self.iin
    }
    /// Token id, for the replay store.
    pub fn jti(&self) -> &str {
        &self.jti
    }
    /// When the token expires (the replay record can be pruned after that).
    pub fn expires_at(&self) -> DateTime<Utc> {
        self.expires_at
    }
    /// What it allows.
    pub fn purpose(&self) -> Purpose {
        self.purpose
    }
    /// Who.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }
    /// How they were verified.
    pub fn verification(&self) -> Verification {
        self.verification
    }
    /// Why an operator must look at the application before issuance: Digital ID's liveness
    /// or register check not passed, a name word mixing scripts. Empty when nothing stands in
    /// the way of automatic issuance.
    pub fn review_reasons(&self) -> Vec<String> {
        let mut reasons = Vec::new();
        if !self.verification.liveness {
            reasons.push("Digital ID: the liveness check did not pass".to_owned());
        }
        if !self.verification.register_match {
            reasons.push("Digital ID: the person did not match the state register".to_owned());
        }
        let identity = &self.identity;
        reasons.extend(names::mixed_script_words("surname", &identity.surname));
        reasons.extend(names::mixed_script_words("name", &identity.name));
        if let Some(p) = &identity.patronymic {
            reasons.extend(names::mixed_script_words("patronymic", p));
        }
        reasons
    }
    /// Whether the application may be issued without an operator ([`Self::review_reasons`]
    /// is empty).
    pub fn allows_automatic_issuance(&self) -> bool {
        self.review_reasons().is_empty()
    }
}

/// Why the trusted keys could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct KeyLoadError {
    /// The file.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

/// The Digital ID keys this CA trusts, by `kid`, with the expected issuer and audience.
pub struct TrustedKeys {
    keys: BTreeMap<String, jws::VerifyingKey>,
    issuer: String,
    audience: String,
}

impl fmt::Debug for TrustedKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrustedKeys")
            .field("kids", &self.keys.keys().collect::<Vec<_>>())
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish()
    }
}

impl TrustedKeys {
    /// Load the keys listed in `[digital_id] keys` plus any extra (the dev key). A PEM key's
    /// `kid` is its RFC 7638 JWK thumbprint; a JWKS key's `kid` is the one it declares. Every
    /// key passes the same acceptance check (`tamga config check` runs this too).
    pub fn load(
        files: &[std::path::PathBuf],
        extra: &[PKey<Public>],
        issuer: &str,
        audience: &str,
    ) -> Result<TrustedKeys, KeyLoadError> {
        let mut keys = BTreeMap::new();
        for path in files {
            for (kid, key) in jws::load_key_file(path)? {
                if keys.insert(kid.clone(), key).is_some() {
                    return Err(KeyLoadError {
                        path: path.display().to_string(),
                        message: format!("kid {kid} is also used by a key of an earlier file"),
                    });
                }
            }
        }
        for pkey in extra {
            let key =
                jws::VerifyingKey::from_pkey(pkey.clone()).map_err(|message| KeyLoadError {
                    path: "development Digital ID key".to_owned(),
                    message,
                })?;
            keys.insert(key.thumbprint(), key);
        }
        Ok(TrustedKeys {
            keys,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
        })
    }

    /// How many keys are trusted.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is trusted (every token will be refused).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Verify a token for `purpose` at time `now`.
    pub fn verify(
        &self,
        token: &str,
        purpose: Purpose,
        now: DateTime<Utc>,
    ) -> Result<VerifiedConsent, ConsentError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(ConsentError::Malformed(format!(
                "longer than {MAX_TOKEN_LEN} bytes"
            )));
        }
        let parsed = jws::Compact::parse(token)?;
        let alg = parsed.algorithm()?;
        let kid = parsed.header.kid.clone();
        let key = kid
            .as_deref()
            .and_then(|k| self.keys.get(k))
            .ok_or(ConsentError::UntrustedKey(kid.clone()))?;
        parsed.verify(alg, key)?;
        let claims: Claims = serde_json::from_slice(&parsed.payload)
            .map_err(|e| ConsentError::Malformed(format!("claims: {e}")))?;
        self.check_claims(claims, purpose, now)
    }

    fn check_claims(
        &self,
        claims: Claims,
        purpose: Purpose,
        now: DateTime<Utc>,
    ) -> Result<VerifiedConsent, ConsentError> {
        if claims.iss != self.issuer {
            return Err(ConsentError::WrongIssuer(claims.iss));
        }
        if !claims.aud.contains(&self.audience) {
            return Err(ConsentError::WrongAudience);
        }
        let time = |secs: i64, claim: &str| {
            DateTime::<Utc>::from_timestamp(secs, 0)
                .ok_or_else(|| ConsentError::Malformed(format!("{claim} is out of range")))
        };
        let exp = time(claims.exp, "exp")?;
        let iat = time(claims.iat, "iat")?;
        let nbf = time(claims.nbf.unwrap_or(claims.iat), "nbf")?;
        // Checked before the clock: the skew allowance is for clocks that differ, not for a
        // token that was never valid.
        if exp <= iat {
            return Err(ConsentError::LifetimeInvalid("exp is not after iat"));
        }
        if nbf > exp {
            return Err(ConsentError::LifetimeInvalid("nbf is after exp"));
        }
        let skew = chrono::Duration::seconds(CLOCK_SKEW_SECS);
        if now - skew >= exp {
            return Err(ConsentError::Expired(exp));
        }
        let starts = nbf.max(iat);
        if now + skew < starts {
            return Err(ConsentError::NotYetValid(starts));
        }
        let lifetime = claims.exp - claims.iat.min(claims.nbf.unwrap_or(claims.iat));
        if lifetime > MAX_LIFETIME_SECS {
            return Err(ConsentError::LifetimeTooLong(lifetime));
        }
        if claims.purpose != purpose.as_str() {
            return Err(ConsentError::WrongPurpose {
                expected: purpose.as_str(),
                found: claims.purpose,
            });
        }
        let iin =
            Iin::parse(&claims.sub, now).map_err(|e| ConsentError::IinInvalid(e.to_string()))?;
        if iin.birth_date() != claims.identity.birth_date {
            return Err(ConsentError::IinInvalid(
                "it does not encode the identity's birth_date".to_owned(),
            ));
        }
        check_identity(&claims.identity)?;
        if iin.sex() != claims.identity.sex {
            return Err(ConsentError::IinInvalid(format!(
                "its century digit means sex {}, the identity's sex is {}",
                iin.sex(),
                claims.identity.sex
            )));
        }
        if claims.jti.is_empty() || claims.jti.len() > 128 {
            return Err(ConsentError::Malformed(
                "jti must be 1-128 characters".to_owned(),
            ));
        }
        Ok(VerifiedConsent {
            iin,
            jti: claims.jti,
            expires_at: exp,
            purpose,
            identity: claims.identity,
            verification: claims.verification,
        })
    }
}

/// Names go into certificates: they must be present, of sane length, and free of characters
/// that never belong in a name ([`names::refused`]).
fn check_identity(identity: &Identity) -> Result<(), ConsentError> {
    let claims = [
        ("surname", Some(&identity.surname)),
        ("name", Some(&identity.name)),
        ("patronymic", identity.patronymic.as_ref()),
    ];
    for (claim, value) in claims {
        let Some(value) = value else { continue };
        if let Some((c, kind)) = names::first_refused(value) {
            return Err(ConsentError::NameInvalid {
                claim,
                code_point: u32::from(c),
                what: kind.describe(),
            });
        }
        let len = value.chars().count();
        if !(1..=64).contains(&len) || value.trim() != value {
            return Err(ConsentError::Malformed(format!(
                "identity.{claim} must be 1-64 printable characters"
            )));
        }
    }
    // The certificate's CN is "SURNAME NAME" and may not exceed 64 characters.
    if identity.surname.chars().count() + 1 + identity.name.chars().count() > 64 {
        return Err(ConsentError::Malformed(
            "identity.surname and identity.name together exceed the 64 characters of a certificate name".to_owned(),
        ));
    }
    if identity.sex != "M" && identity.sex != "F" {
        return Err(ConsentError::Malformed(
            "identity.sex must be M or F".to_owned(),
        ));
    }
    Ok(())
}

/// Mint a token signed ES256 with `key` (development only: `tamga dev consent-token`).
pub fn mint_es256(key: &PKey<Private>, claims: &Claims) -> Result<String, String> {
    jws::sign_es256(key, claims)
}

/// What a development consent token says (`tamga dev consent-token`, the `/dev/digital-id`
/// stand-in): one place that turns it into claims, so both mint the same tokens.
#[derive(Debug, Clone)]
pub struct DevelopmentConsent {
    /// The citizen's IIN.
    pub iin: Iin,
    /// Surname.
    pub surname: String,
    /// Given name.
    pub name: String,
    /// Patronymic.
    pub patronymic: Option<String>,
    /// Birth date; `None`: the IIN's.
    pub birth_date: Option<NaiveDate>,
    /// What the consent is for.
    pub purpose: Purpose,
    /// Digital ID's liveness check.
    pub liveness: bool,
    /// Digital ID's state-register match.
    pub register_match: bool,
    /// Seconds from `iat` to `exp`.
    pub ttl_secs: i64,
    /// Seconds `iat` (and `nbf`, `exp` with it) lies before `now`: an expired token without
    /// waiting.
    pub issued_ago_secs: i64,
}

impl DevelopmentConsent {
    /// The claims of this consent, issued by `issuer` for `audience`, at `now` less
    /// `issued_ago_secs`, with a fresh `jti` and a random document number.
    pub fn claims(&self, issuer: &str, audience: &str, now: DateTime<Utc>) -> Claims {
        let iat = now.timestamp().saturating_sub(self.issued_ago_secs);
        let mut document_number = [0u8; 4];
        // A document number is decoration: all-zero bytes if the generator fails.
        let _ = openssl::rand::rand_bytes(&mut document_number);
        let birth_date = self.birth_date.unwrap_or_else(|| self.iin.birth_date());
        Claims {
            iss: issuer.to_owned(),
            aud: Audience::One(audience.to_owned()),
            sub: self.iin.as_str().to_owned(),
            jti: uuid::Uuid::new_v4().to_string(),
            iat,
            nbf: Some(iat),
            exp: iat.saturating_add(self.ttl_secs),
            purpose: self.purpose.as_str().to_owned(),
            identity: Identity {
                surname: self.surname.clone(),
                name: self.name.clone(),
                patronymic: self.patronymic.clone(),
                birth_date,
                sex: self.iin.sex().to_owned(),
                document: Document {
                    kind: "id_card".to_owned(),
                    number: format!("{:09}", u32::from_be_bytes(document_number) % 1_000_000_000),
                    expires: birth_date.max(now.date_naive()) + chrono::Duration::days(5 * 365),
                },
            },
            verification: Verification {
                method: VerificationMethod::DigitalIdBiometric,
                liveness: self.liveness,
                register_match: self.register_match,
            },
        }
    }
}

/// Read a PKCS#8 PEM private key (the development Digital ID key).
pub fn read_signing_key(path: &Path) -> Result<PKey<Private>, String> {
    let pem = crate::input::read_bounded(path, crate::input::PEM_LIMIT)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    PKey::private_key_from_pem(&pem)
        .map_err(|_| format!("{}: not a PEM private key", path.display()))
}

#[cfg(test)]
mod tests;
