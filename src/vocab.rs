//! The small words every authority shares: the CA's key types, the citizen's key storage and
//! language, the two certificate kinds, the states of an application, and the RFC 5280
//! revocation reasons.
//!
//! Owns: each of these enums once, with its stable text form (the one in configuration files,
//! the API and the database) and its parsing. Must never: import another module of the crate,
//! or hold behaviour beyond naming and parsing these values.

use std::fmt;

use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::PKey;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Key algorithms the CA can generate for its own keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyType {
    /// RSA, 2048-bit modulus, exponent 65537.
    #[serde(rename = "rsa2048")]
    Rsa2048,
    /// RSA, 3072-bit modulus.
    #[serde(rename = "rsa3072")]
    Rsa3072,
    /// RSA, 4096-bit modulus.
    #[serde(rename = "rsa4096")]
    Rsa4096,
    /// ECDSA on NIST P-256.
    #[serde(rename = "ec-p256")]
    EcP256,
    /// ECDSA on NIST P-384.
    #[serde(rename = "ec-p384")]
    EcP384,
    /// GOST R 34.10-2015 (= GOST R 34.10-2012), 512 bits, on TC26's 512-bit parameter set A:
    /// NCA's GOST keys. OpenSSL holds them only through its gost engine; they sign and verify
    /// through `gost::sign`/`gost::verify` (NCA's form), never through [`KeyType::digest`],
    /// and only in files (no PKCS#11 token here has GOST R 34.10-2012-512 mechanisms).
    #[serde(rename = "gost2015-512")]
    Gost2015_512,
}

/// OpenSSL's `NID_id_GostR3410_2012_512` (`gost2012_512`, OID `1.2.643.7.1.1.1.2`): the key
/// type the gost engine gives a GOST R 34.10-2012 512-bit key. openssl-sys does not name it;
/// the number is fixed in OpenSSL's object table (`obj_mac.h`).
const NID_GOST2012_512: i32 = 980;

impl KeyType {
    /// Whether this is an RSA key type.
    pub fn is_rsa(self) -> bool {
        matches!(self, KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096)
    }

    /// Whether this is a GOST key type (signed and verified through the `gost` module).
    pub fn is_gost(self) -> bool {
        matches!(self, KeyType::Gost2015_512)
    }

    /// The digest a key of this type signs with through OpenSSL's `Signer`: none for GOST,
    /// whose signatures are made and checked by `gost::sign`/`gost::verify` only (Streebog of
    /// the key's size, and NCA's byte order).
    pub fn digest(self) -> Option<MessageDigest> {
        match self {
            KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 | KeyType::EcP256 => {
                Some(MessageDigest::sha256())
            }
            KeyType::EcP384 => Some(MessageDigest::sha384()),
            KeyType::Gost2015_512 => None,
        }
    }

    /// Identify the type of an existing key, if it is one we support.
    pub fn of<T: openssl::pkey::HasPublic>(key: &PKey<T>) -> Option<KeyType> {
        // The engine's GOST keys: the parameter set (A) is checked where the key is used
        // (`gost::GostPublicKey`).
        if key.id() == openssl::pkey::Id::from_raw(NID_GOST2012_512) {
            return Some(KeyType::Gost2015_512);
        }
        if let Ok(rsa) = key.rsa() {
            return match rsa.n().num_bits() {
                2048 => Some(KeyType::Rsa2048),
                3072 => Some(KeyType::Rsa3072),
                4096 => Some(KeyType::Rsa4096),
                _ => None,
            };
        }
        let ec = key.ec_key().ok()?;
        match ec.group().curve_name()? {
            Nid::X9_62_PRIME256V1 => Some(KeyType::EcP256),
            Nid::SECP384R1 => Some(KeyType::EcP384),
            _ => None,
        }
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyType::Rsa2048 => "rsa2048",
            KeyType::Rsa3072 => "rsa3072",
            KeyType::Rsa4096 => "rsa4096",
            KeyType::EcP256 => "ec-p256",
            KeyType::EcP384 => "ec-p384",
            KeyType::Gost2015_512 => "gost2015-512",
        })
    }
}

/// The citizen's language for messages (`kk`, `ru` or `en`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Language {
    /// Kazakh.
    Kk,
    /// Russian.
    Ru,
    /// English.
    En,
}

impl Language {
    /// Every language, Kazakh (the default) first.
    pub const ALL: [Language; 3] = [Language::Kk, Language::Ru, Language::En];

    /// Parse `kk`, `ru` or `en`.
    pub fn parse(s: &str) -> Option<Language> {
        match s {
            "kk" => Some(Language::Kk),
            "ru" => Some(Language::Ru),
            "en" => Some(Language::En),
            _ => None,
        }
    }
    /// The code.
    pub fn as_str(self) -> &'static str {
        match self {
            Language::Kk => "kk",
            Language::Ru => "ru",
            Language::En => "en",
        }
    }
}

/// Where the citizen keeps the keys; decides the certificates' validity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Storage {
    /// A password-protected file on the PC: 1 year.
    Pkcs12,
    /// The national ID card: 3 years.
    IdCard,
    /// KazToken: 3 years.
    Kaztoken,
    /// eToken: 3 years.
    Etoken,
    /// JaCarta: 3 years.
    Jacarta,
    /// aKey: 3 years.
    Akey,
}

impl Storage {
    /// Parse the form value.
    pub fn parse(s: &str) -> Option<Storage> {
        Some(match s {
            "pkcs12" => Storage::Pkcs12,
            "id_card" => Storage::IdCard,
            "kaztoken" => Storage::Kaztoken,
            "etoken" => Storage::Etoken,
            "jacarta" => Storage::Jacarta,
            "akey" => Storage::Akey,
            _ => return None,
        })
    }
    /// The form value.
    pub fn as_str(self) -> &'static str {
        match self {
            Storage::Pkcs12 => "pkcs12",
            Storage::IdCard => "id_card",
            Storage::Kaztoken => "kaztoken",
            Storage::Etoken => "etoken",
            Storage::Jacarta => "jacarta",
            Storage::Akey => "akey",
        }
    }
    /// Certificate validity in years: 1 for a file, 3 for hardware.
    pub fn validity_years(self) -> u32 {
        match self {
            Storage::Pkcs12 => 1,
            _ => 3,
        }
    }
}

/// Which of the citizen's two certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CertificateKind {
    /// Authentication certificate.
    Auth,
    /// Signing certificate.
    Sign,
}

impl CertificateKind {
    /// The stable name (database, API, e-mails).
    pub fn as_str(self) -> &'static str {
        match self {
            CertificateKind::Auth => "auth",
            CertificateKind::Sign => "sign",
        }
    }
    /// Parse the stable name.
    pub fn parse(s: &str) -> Option<CertificateKind> {
        match s {
            "auth" => Some(CertificateKind::Auth),
            "sign" => Some(CertificateKind::Sign),
            _ => None,
        }
    }
}

impl fmt::Display for CertificateKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where an application stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = ApplicationState)]
pub enum ApplicationStatus {
    /// Waiting for an operator's decision.
    PendingReview,
    /// Approved; its certificates are reserved and being signed.
    Approved,
    /// Both certificates were issued.
    Issued,
    /// An operator refused it.
    Rejected,
}

impl ApplicationStatus {
    /// All states.
    pub const ALL: [ApplicationStatus; 4] = [
        ApplicationStatus::PendingReview,
        ApplicationStatus::Approved,
        ApplicationStatus::Issued,
        ApplicationStatus::Rejected,
    ];

    /// The stable name (database, API).
    pub fn as_str(self) -> &'static str {
        match self {
            ApplicationStatus::PendingReview => "pending_review",
            ApplicationStatus::Approved => "approved",
            ApplicationStatus::Issued => "issued",
            ApplicationStatus::Rejected => "rejected",
        }
    }
    /// Parse the stable name.
    pub fn parse(s: &str) -> Option<ApplicationStatus> {
        ApplicationStatus::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

impl fmt::Display for ApplicationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The revocation reasons Tamga accepts (RFC 5280 §5.3.1); case and underscores are not
/// significant in requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Reason)]
pub enum RevocationReason {
    /// No reason given.
    Unspecified,
    /// The private key is (suspected to be) compromised: the key is blocked for ever.
    KeyCompromise,
    /// The holder's affiliation changed.
    AffiliationChanged,
    /// Replaced by a new certificate.
    Superseded,
    /// No longer needed.
    CessationOfOperation,
    /// Suspended; can be lifted with `tamga certs release`.
    CertificateHold,
    /// The right to use it was withdrawn.
    PrivilegeWithdrawn,
}

impl RevocationReason {
    /// All accepted reasons.
    pub const ALL: [RevocationReason; 7] = [
        RevocationReason::Unspecified,
        RevocationReason::KeyCompromise,
        RevocationReason::AffiliationChanged,
        RevocationReason::Superseded,
        RevocationReason::CessationOfOperation,
        RevocationReason::CertificateHold,
        RevocationReason::PrivilegeWithdrawn,
    ];

    /// The RFC 5280 name.
    pub fn as_str(self) -> &'static str {
        match self {
            RevocationReason::Unspecified => "unspecified",
            RevocationReason::KeyCompromise => "keyCompromise",
            RevocationReason::AffiliationChanged => "affiliationChanged",
            RevocationReason::Superseded => "superseded",
            RevocationReason::CessationOfOperation => "cessationOfOperation",
            RevocationReason::CertificateHold => "certificateHold",
            RevocationReason::PrivilegeWithdrawn => "privilegeWithdrawn",
        }
    }

    /// The CRLReason code.
    pub fn code(self) -> u8 {
        match self {
            RevocationReason::Unspecified => 0,
            RevocationReason::KeyCompromise => 1,
            RevocationReason::AffiliationChanged => 3,
            RevocationReason::Superseded => 4,
            RevocationReason::CessationOfOperation => 5,
            RevocationReason::CertificateHold => 6,
            RevocationReason::PrivilegeWithdrawn => 9,
        }
    }

    /// Parse the RFC 5280 name (also accepted in snake_case).
    pub fn parse(s: &str) -> Option<RevocationReason> {
        let folded: String = s
            .chars()
            .filter(|c| *c != '_')
            .collect::<String>()
            .to_ascii_lowercase();
        RevocationReason::ALL
            .into_iter()
            .find(|r| r.as_str().to_ascii_lowercase() == folded)
    }
}

impl fmt::Display for RevocationReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons() {
        assert_eq!(
            RevocationReason::parse("keyCompromise"),
            Some(RevocationReason::KeyCompromise)
        );
        assert_eq!(
            RevocationReason::parse("key_compromise"),
            Some(RevocationReason::KeyCompromise)
        );
        assert_eq!(RevocationReason::parse("removeFromCRL"), None);
        assert_eq!(RevocationReason::parse("caCompromise"), None);
        assert_eq!(RevocationReason::PrivilegeWithdrawn.code(), 9);
    }

    #[test]
    fn wire_names_are_the_text_forms() {
        for storage in [
            Storage::Pkcs12,
            Storage::IdCard,
            Storage::Kaztoken,
            Storage::Etoken,
            Storage::Jacarta,
            Storage::Akey,
        ] {
            let wire = serde_json::to_value(storage).ok();
            assert_eq!(wire, Some(serde_json::Value::from(storage.as_str())));
            assert_eq!(Storage::parse(storage.as_str()), Some(storage));
        }
        for reason in RevocationReason::ALL {
            let wire = serde_json::to_value(reason).ok();
            assert_eq!(wire, Some(serde_json::Value::from(reason.as_str())));
        }
        for key_type in [
            KeyType::Rsa2048,
            KeyType::Rsa3072,
            KeyType::Rsa4096,
            KeyType::EcP256,
            KeyType::EcP384,
            KeyType::Gost2015_512,
        ] {
            let wire = serde_json::to_value(key_type).ok();
            assert_eq!(wire, Some(serde_json::Value::from(key_type.to_string())));
            let back: Option<KeyType> = serde_json::from_value(key_type.to_string().into()).ok();
            assert_eq!(back, Some(key_type));
            // GOST signs through the gost module only, never with OpenSSL's digest of a type.
            assert_eq!(key_type.digest().is_none(), key_type.is_gost());
        }
        assert_eq!(KeyType::Gost2015_512.to_string(), "gost2015-512");
        for kind in [CertificateKind::Auth, CertificateKind::Sign] {
            let wire = serde_json::to_value(kind).ok();
            assert_eq!(wire, Some(serde_json::Value::from(kind.as_str())));
            assert_eq!(CertificateKind::parse(kind.as_str()), Some(kind));
        }
        for status in ApplicationStatus::ALL {
            let wire = serde_json::to_value(status).ok();
            assert_eq!(wire, Some(serde_json::Value::from(status.as_str())));
            assert_eq!(ApplicationStatus::parse(status.as_str()), Some(status));
        }
        for language in [Language::Kk, Language::Ru, Language::En] {
            let wire = serde_json::to_value(language).ok();
            assert_eq!(wire, Some(serde_json::Value::from(language.as_str())));
        }
    }
}
