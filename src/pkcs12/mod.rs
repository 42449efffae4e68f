//! PKCS#12 containers (RFC 7292), encoded and decoded by our own code: the layout NCA's
//! software writes and reads, with either NCA's own algorithms or modern ones.
//!
//! Owns: the container layout — a plain `data` safe holding the private key in one
//! `pkcs8ShroudedKeyBag`, then an `encryptedData` safe holding the holder's certificate (and,
//! for [`Protection::Modern`], the chain after it); both the key bag and the holder's
//! certificate bag carry `localKeyID` = the certificate's subject key identifier (its raw
//! octets) and `friendlyName` = the same in lower-case hex, as a BMPString — what NCA's
//! software looks keys up by; the algorithms of [`Protection`]; the PKCS#12 key derivation
//! (RFC 7292 B.2, over OpenSSL's digests: `kdf`); a BER reader for containers others wrote
//! (NCA's use indefinite lengths); [`decode`], which describes a container's structure and
//! opens it with the password.
//!
//! The private key is taken and returned as PKCS#8 `PrivateKeyInfo` DER, whatever its
//! algorithm (RSA, EC, GOST): nothing here looks inside it. Cryptography (digests, HMAC,
//! PBKDF2, ciphers, random salts) is OpenSSL's; RC2-40 needs OpenSSL 3's legacy provider,
//! loaded here when a container uses it.
//!
//! Must never: import another module of the crate (it stands on the ground floor); write a
//! container whose MAC is cheaper to test a password against than its encryption (the MAC
//! uses the same iteration count); run a key derivation with an iteration count above
//! [`MAX_ITERATIONS`] or read more than [`MAX_CONTAINER`] bytes from a container it is given.

mod ber;
mod decode;
mod encode;
mod kdf;

use der::asn1::ObjectIdentifier;

pub use decode::decode;
pub use encode::encode;

/// The default iteration count of modern containers (PBKDF2-HMAC-SHA256 and the MAC): OWASP's
/// figure for PBKDF2-HMAC-SHA256 (2023).
pub const DEFAULT_ITERATIONS: u32 = 600_000;
/// The fewest iterations a modern container may use.
pub const MIN_ITERATIONS: u32 = 100_000;
/// The most iterations a container may ask of us, written or read: a container from elsewhere
/// cannot make the reader spin for minutes.
pub const MAX_ITERATIONS: u32 = 10_000_000;
/// The iteration count of NCA's containers (key, certificates and MAC).
pub const LEGACY_ITERATIONS: u32 = 1024;
/// The largest container [`decode`] reads.
pub const MAX_CONTAINER: usize = 1 << 20;

/// How a container is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protection {
    /// PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC) for the key and the certificates, a MAC with
    /// HMAC-SHA256 (the key from RFC 7292's KDF with SHA-256), all with `iterations`
    /// ([`MIN_ITERATIONS`]..=[`MAX_ITERATIONS`]). The chain follows the holder's certificate.
    Modern {
        /// PBKDF2's and the MAC's iteration count.
        iterations: u32,
    },
    /// Exactly NCA's container: the key with pbeWithSHAAnd3-KeyTripleDES-CBC, the holder's
    /// certificate (alone: no chain) with pbeWithSHAAnd40BitRC2-CBC, a MAC with SHA-1, all
    /// with 1024 iterations and 20-byte salts.
    Legacy,
}

/// What goes into a container.
#[derive(Debug, Clone, Copy)]
pub struct Contents<'a> {
    /// The private key: PKCS#8 `PrivateKeyInfo`, DER.
    pub private_key: &'a [u8],
    /// The holder's certificate (DER); it must carry a subject key identifier.
    pub certificate: &'a [u8],
    /// The issuing chain (DER), written after the holder's certificate, without attributes
    /// (modern containers only).
    pub chain: &'a [Vec<u8>],
}

/// Why a container could not be written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Pkcs12Error {
    /// The input is not a PKCS#12 container we can read (what was wrong is named).
    #[error("malformed container: {0}")]
    Malformed(&'static str),
    /// An element carried another tag than the structure wants there.
    #[error("malformed container: tag {found:#04x} where {expected:#04x} belongs")]
    UnexpectedTag {
        /// The tag the structure wants.
        expected: u8,
        /// The tag found.
        found: u8,
    },
    /// An algorithm this reader does not implement.
    #[error("unsupported algorithm {0}")]
    UnsupportedAlgorithm(ObjectIdentifier),
    /// The MAC does not match, or the decrypted data is not valid: a wrong password (or a
    /// damaged file).
    #[error("wrong password, or a damaged container")]
    WrongPassword,
    /// An iteration count outside what we write or read.
    #[error("an iteration count of {0} (containers are written with {MIN_ITERATIONS} to {MAX_ITERATIONS}, read with at most {MAX_ITERATIONS})")]
    Iterations(u32),
    /// The container is larger than [`MAX_CONTAINER`].
    #[error("the container is larger than {} bytes", MAX_CONTAINER)]
    TooLarge,
    /// The private key given is not PKCS#8 `PrivateKeyInfo` DER.
    #[error("the private key is not PKCS#8 DER")]
    PrivateKey,
    /// The certificate is not DER, or has no subject key identifier.
    #[error("the certificate cannot name the key: {0}")]
    Certificate(&'static str),
    /// OpenSSL's legacy provider (RC2) could not be loaded.
    #[error("the OpenSSL legacy provider is needed for RC2: {0}")]
    LegacyProvider(String),
    /// Encoding failed.
    #[error("cannot encode: {0}")]
    Encoding(#[from] der::Error),
    /// OpenSSL failed.
    #[error("OpenSSL: {0}")]
    OpenSsl(#[from] openssl::error::ErrorStack),
}

/// A container's structure as [`decode`] found it, with the key and certificates it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// `PFX.version` (3).
    pub version: u32,
    /// The integrity MAC, if there is one (it has been checked).
    pub mac: Option<Mac>,
    /// The safes of the `AuthenticatedSafe`, in order.
    pub safes: Vec<Safe>,
}

/// `MacData`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mac {
    /// The HMAC's digest (also the KDF's).
    pub digest: Digest,
    /// Whether the digest's AlgorithmIdentifier carried NULL parameters (rather than none).
    pub null_parameters: bool,
    /// The iteration count.
    pub iterations: u32,
    /// The salt.
    pub salt: Vec<u8>,
    /// The MAC's length in bytes.
    pub length: usize,
}

/// Digests of MACs and PBKDF2's PRF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Digest {
    /// SHA-1.
    Sha1,
    /// SHA-256.
    Sha256,
}

/// One `ContentInfo` of the `AuthenticatedSafe`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Safe {
    /// `None` for a plain `data` safe; how an `encryptedData` safe is encrypted.
    pub encryption: Option<Encryption>,
    /// `EncryptedData.version`, for an encrypted safe.
    pub encrypted_data_version: Option<u32>,
    /// Its bags, in order.
    pub bags: Vec<Bag>,
}

/// A password-based encryption with its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Encryption {
    /// One of RFC 7292's own PBE schemes (appendix C).
    Pkcs12 {
        /// The scheme.
        scheme: Pkcs12Scheme,
        /// Its iteration count.
        iterations: u32,
        /// Its salt.
        salt: Vec<u8>,
    },
    /// PBES2 (RFC 8018) with PBKDF2.
    Pbes2 {
        /// PBKDF2's PRF (HMAC with this digest).
        prf: Digest,
        /// Whether the PRF's AlgorithmIdentifier carried NULL parameters.
        prf_null_parameters: bool,
        /// PBKDF2's iteration count.
        iterations: u32,
        /// PBKDF2's salt.
        salt: Vec<u8>,
        /// PBKDF2's optional keyLength.
        key_length: Option<u32>,
        /// The cipher.
        cipher: Pbes2Cipher,
        /// The cipher's IV.
        iv: Vec<u8>,
    },
}

/// RFC 7292's PBE schemes we read and write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pkcs12Scheme {
    /// pbeWithSHAAnd3-KeyTripleDES-CBC.
    Sha1TripleDesCbc,
    /// pbeWithSHAAnd40BitRC2-CBC.
    Sha1Rc2_40Cbc,
}

/// PBES2's ciphers we read (we write AES-256-CBC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pbes2Cipher {
    /// AES-128-CBC.
    Aes128Cbc,
    /// AES-256-CBC.
    Aes256Cbc,
}

/// A `SafeBag`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bag {
    /// What it holds, and how.
    pub kind: BagKind,
    /// Its `bagAttributes`, in order.
    pub attributes: Vec<Attribute>,
    /// The PKCS#8 key (decrypted) or the certificate, DER.
    pub content: Vec<u8>,
}

/// Bag types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BagKind {
    /// `pkcs8ShroudedKeyBag`, encrypted so.
    ShroudedKey(Encryption),
    /// `keyBag` (an unencrypted key).
    Key,
    /// `certBag` with an X.509 certificate.
    Certificate,
    /// Any other bag, kept undecoded.
    Other(ObjectIdentifier),
}

/// A bag attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// Its type.
    pub oid: ObjectIdentifier,
    /// Its values, in order.
    pub values: Vec<AttributeValue>,
}

/// A bag attribute's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttributeValue {
    /// An OCTET STRING (`localKeyID`).
    OctetString(Vec<u8>),
    /// A BMPString (`friendlyName`).
    BmpString(String),
    /// Anything else: its tag and contents.
    Other(u8, Vec<u8>),
}

impl Decoded {
    /// The structure alone: salts, IVs and the values of bag attributes blanked (their
    /// lengths kept), keys and certificates emptied. Two containers written the same way
    /// have the same structure, whatever their keys.
    pub fn structure(&self) -> Decoded {
        let blank = |e: &Encryption| match e.clone() {
            Encryption::Pkcs12 {
                scheme,
                iterations,
                salt,
            } => Encryption::Pkcs12 {
                scheme,
                iterations,
                salt: vec![0; salt.len()],
            },
            Encryption::Pbes2 {
                prf,
                prf_null_parameters,
                iterations,
                salt,
                key_length,
                cipher,
                iv,
            } => Encryption::Pbes2 {
                prf,
                prf_null_parameters,
                iterations,
                salt: vec![0; salt.len()],
                key_length,
                cipher,
                iv: vec![0; iv.len()],
            },
        };
        let mut out = self.clone();
        if let Some(mac) = &mut out.mac {
            mac.salt = vec![0; mac.salt.len()];
        }
        for safe in &mut out.safes {
            safe.encryption = safe.encryption.as_ref().map(blank);
            for bag in &mut safe.bags {
                bag.content.clear();
                for attribute in &mut bag.attributes {
                    for value in &mut attribute.values {
                        *value = match value {
                            AttributeValue::OctetString(v) => {
                                AttributeValue::OctetString(vec![0; v.len()])
                            }
                            AttributeValue::BmpString(v) => {
                                AttributeValue::BmpString("x".repeat(v.chars().count()))
                            }
                            AttributeValue::Other(tag, v) => {
                                AttributeValue::Other(*tag, vec![0; v.len()])
                            }
                        };
                    }
                }
                if let BagKind::ShroudedKey(e) = &bag.kind {
                    bag.kind = BagKind::ShroudedKey(blank(e));
                }
            }
        }
        out
    }

    /// Every bag, in order.
    pub fn bags(&self) -> impl Iterator<Item = &Bag> {
        self.safes.iter().flat_map(|s| s.bags.iter())
    }

    /// The private keys (PKCS#8 DER), in order.
    pub fn private_keys(&self) -> Vec<&[u8]> {
        self.bags()
            .filter(|b| matches!(b.kind, BagKind::ShroudedKey(_) | BagKind::Key))
            .map(|b| b.content.as_slice())
            .collect()
    }

    /// The certificates (DER), in order.
    pub fn certificates(&self) -> Vec<&[u8]> {
        self.bags()
            .filter(|b| b.kind == BagKind::Certificate)
            .map(|b| b.content.as_slice())
            .collect()
    }
}

impl Bag {
    /// The value of `localKeyID`, if the bag has exactly one such OCTET STRING.
    pub fn local_key_id(&self) -> Option<&[u8]> {
        match self.attribute(oid::LOCAL_KEY_ID) {
            Some([AttributeValue::OctetString(v)]) => Some(v),
            _ => None,
        }
    }

    /// The value of `friendlyName`, if the bag has exactly one such BMPString.
    pub fn friendly_name(&self) -> Option<&str> {
        match self.attribute(oid::FRIENDLY_NAME) {
            Some([AttributeValue::BmpString(v)]) => Some(v),
            _ => None,
        }
    }

    fn attribute(&self, oid: ObjectIdentifier) -> Option<&[AttributeValue]> {
        self.attributes
            .iter()
            .find(|a| a.oid == oid)
            .map(|a| a.values.as_slice())
    }
}

/// The subject key identifier of a DER certificate: the key's name in NCA's containers.
pub fn subject_key_id(certificate: &[u8]) -> Result<Vec<u8>, Pkcs12Error> {
    use der::Decode;
    let cert = x509_cert::Certificate::from_der(certificate)
        .map_err(|_| Pkcs12Error::Certificate("not a DER certificate"))?;
    let ext = cert
        .tbs_certificate
        .extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_SUBJECT_KEY_IDENTIFIER)
        .ok_or(Pkcs12Error::Certificate("no subject key identifier"))?;
    let ski = der::asn1::OctetString::from_der(ext.extn_value.as_bytes())
        .map_err(|_| Pkcs12Error::Certificate("a malformed subject key identifier"))?;
    Ok(ski.into_bytes())
}

/// Load OpenSSL 3's legacy provider (RC2) once, keeping the default one.
fn legacy_provider() -> Result<(), Pkcs12Error> {
    static LOADED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    LOADED
        .get_or_init(|| {
            openssl::provider::Provider::try_load(None, "legacy", true)
                .map(std::mem::forget)
                .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(Pkcs12Error::LegacyProvider)
}

/// The object identifiers of PKCS#12 and what it uses.
mod oid {
    use der::asn1::ObjectIdentifier as Oid;

    pub const DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.1");
    pub const ENCRYPTED_DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.6");
    pub const KEY_BAG: Oid = Oid::new_unwrap("1.2.840.113549.1.12.10.1.1");
    pub const SHROUDED_KEY_BAG: Oid = Oid::new_unwrap("1.2.840.113549.1.12.10.1.2");
    pub const CERT_BAG: Oid = Oid::new_unwrap("1.2.840.113549.1.12.10.1.3");
    pub const X509_CERTIFICATE: Oid = Oid::new_unwrap("1.2.840.113549.1.9.22.1");
    pub const FRIENDLY_NAME: Oid = Oid::new_unwrap("1.2.840.113549.1.9.20");
    pub const LOCAL_KEY_ID: Oid = Oid::new_unwrap("1.2.840.113549.1.9.21");
    pub const PBE_SHA1_3DES: Oid = Oid::new_unwrap("1.2.840.113549.1.12.1.3");
    pub const PBE_SHA1_RC2_40: Oid = Oid::new_unwrap("1.2.840.113549.1.12.1.6");
    pub const PBES2: Oid = Oid::new_unwrap("1.2.840.113549.1.5.13");
    pub const PBKDF2: Oid = Oid::new_unwrap("1.2.840.113549.1.5.12");
    pub const HMAC_SHA1: Oid = Oid::new_unwrap("1.2.840.113549.2.7");
    pub const HMAC_SHA256: Oid = Oid::new_unwrap("1.2.840.113549.2.9");
    pub const AES_128_CBC: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.1.2");
    pub const AES_256_CBC: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.1.42");
    pub const SHA1: Oid = Oid::new_unwrap("1.3.14.3.2.26");
    pub const SHA256: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.1");
}

impl Digest {
    fn openssl(self) -> openssl::hash::MessageDigest {
        match self {
            Digest::Sha1 => openssl::hash::MessageDigest::sha1(),
            Digest::Sha256 => openssl::hash::MessageDigest::sha256(),
        }
    }
}

impl Pkcs12Scheme {
    fn cipher(self) -> openssl::symm::Cipher {
        match self {
            Pkcs12Scheme::Sha1TripleDesCbc => openssl::symm::Cipher::des_ede3_cbc(),
            Pkcs12Scheme::Sha1Rc2_40Cbc => openssl::symm::Cipher::rc2_40_cbc(),
        }
    }

    fn oid(self) -> ObjectIdentifier {
        match self {
            Pkcs12Scheme::Sha1TripleDesCbc => oid::PBE_SHA1_3DES,
            Pkcs12Scheme::Sha1Rc2_40Cbc => oid::PBE_SHA1_RC2_40,
        }
    }
}

impl Pbes2Cipher {
    fn cipher(self) -> openssl::symm::Cipher {
        match self {
            Pbes2Cipher::Aes128Cbc => openssl::symm::Cipher::aes_128_cbc(),
            Pbes2Cipher::Aes256Cbc => openssl::symm::Cipher::aes_256_cbc(),
        }
    }
}

/// Decrypt or encrypt with a password-based scheme and its parameters.
fn crypt(
    encryption: &Encryption,
    password: &str,
    mode: openssl::symm::Mode,
    data: &[u8],
) -> Result<Vec<u8>, Pkcs12Error> {
    let (cipher, key, iv) = match encryption {
        Encryption::Pkcs12 {
            scheme,
            iterations,
            salt,
        } => {
            if *scheme == Pkcs12Scheme::Sha1Rc2_40Cbc {
                legacy_provider()?;
            }
            let cipher = scheme.cipher();
            let bmp = kdf::bmp_password(password);
            let sha1 = openssl::hash::MessageDigest::sha1();
            let key = kdf::derive(
                sha1,
                &bmp,
                salt,
                kdf::Purpose::Key,
                *iterations,
                cipher.key_len(),
            )?;
            let iv_len = cipher.iv_len().unwrap_or(0);
            let iv = kdf::derive(sha1, &bmp, salt, kdf::Purpose::Iv, *iterations, iv_len)?;
            (cipher, key, iv)
        }
        Encryption::Pbes2 {
            prf,
            iterations,
            salt,
            key_length,
            cipher,
            iv,
            ..
        } => {
            let cipher = cipher.cipher();
            if key_length.is_some_and(|l| usize::try_from(l).ok() != Some(cipher.key_len())) {
                return Err(Pkcs12Error::Malformed(
                    "a PBKDF2 key length that is not the cipher's",
                ));
            }
            if iv.len() != cipher.iv_len().unwrap_or(0) {
                return Err(Pkcs12Error::Malformed("an IV of the wrong length"));
            }
            let mut key = vec![0; cipher.key_len()];
            let rounds =
                usize::try_from(*iterations).map_err(|_| Pkcs12Error::Iterations(*iterations))?;
            openssl::pkcs5::pbkdf2_hmac(
                password.as_bytes(),
                salt,
                rounds,
                prf.openssl(),
                &mut key,
            )?;
            (cipher, key, iv.clone())
        }
    };
    match mode {
        openssl::symm::Mode::Encrypt => Ok(openssl::symm::encrypt(cipher, &key, Some(&iv), data)?),
        // Bad padding after decryption: the key (the password) was wrong.
        openssl::symm::Mode::Decrypt => openssl::symm::decrypt(cipher, &key, Some(&iv), data)
            .map_err(|_| Pkcs12Error::WrongPassword),
    }
}

#[cfg(test)]
mod tests;
