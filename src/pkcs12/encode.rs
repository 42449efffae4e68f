//! Writing a container: DER throughout (NCA's software writes BER with indefinite lengths; DER
//! is a form of BER every reader takes).

use der::asn1::{Any, BmpString, ObjectIdentifier, OctetString, SetOfVec};
use der::{Encode, Sequence};
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::sign::Signer;
use openssl::symm::Mode;
use spki::AlgorithmIdentifierOwned;
use x509_cert::attr::Attribute;

use super::{
    crypt, kdf, oid, subject_key_id, Contents, Digest, Encryption, Pbes2Cipher, Pkcs12Error,
    Pkcs12Scheme, Protection, LEGACY_ITERATIONS, MAX_ITERATIONS, MIN_ITERATIONS,
};

/// `PFX`.
#[derive(Sequence)]
struct Pfx {
    version: u8,
    auth_safe: ContentInfo,
    mac_data: MacData,
}

/// PKCS#7 `ContentInfo`.
#[derive(Sequence)]
struct ContentInfo {
    content_type: ObjectIdentifier,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    content: Any,
}

/// `MacData` (the iteration count always written, also when it is 1).
#[derive(Sequence)]
struct MacData {
    mac: DigestInfo,
    mac_salt: OctetString,
    iterations: u32,
}

#[derive(Sequence)]
struct DigestInfo {
    algorithm: AlgorithmIdentifierOwned,
    digest: OctetString,
}

/// `SafeBag`.
#[derive(Sequence)]
struct SafeBag {
    bag_id: ObjectIdentifier,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    bag_value: Any,
    bag_attributes: Option<SetOfVec<Attribute>>,
}

/// `CertBag`.
#[derive(Sequence)]
struct CertBag {
    cert_id: ObjectIdentifier,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    cert_value: OctetString,
}

/// PKCS#8 `EncryptedPrivateKeyInfo`.
#[derive(Sequence)]
struct EncryptedPrivateKeyInfo {
    algorithm: AlgorithmIdentifierOwned,
    encrypted_data: OctetString,
}

/// PKCS#7 `EncryptedData`.
#[derive(Sequence)]
struct EncryptedData {
    version: u8,
    encrypted_content_info: EncryptedContentInfo,
}

#[derive(Sequence)]
struct EncryptedContentInfo {
    content_type: ObjectIdentifier,
    algorithm: AlgorithmIdentifierOwned,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT")]
    encrypted_content: OctetString,
}

/// `pkcs-12PbeParams`.
#[derive(Sequence)]
struct Pkcs12PbeParams {
    salt: OctetString,
    iterations: u32,
}

/// `PBES2-params`.
#[derive(Sequence)]
struct Pbes2Params {
    key_derivation_func: AlgorithmIdentifierOwned,
    encryption_scheme: AlgorithmIdentifierOwned,
}

/// `PBKDF2-params` (salt `specified`, no keyLength, as OpenSSL writes them).
#[derive(Sequence)]
struct Pbkdf2Params {
    salt: OctetString,
    iteration_count: u32,
    prf: AlgorithmIdentifierOwned,
}

/// Salt lengths: NCA's 20 bytes for legacy containers, 16 (128 bits) for PBKDF2.
const LEGACY_SALT: usize = 20;
const PBKDF2_SALT: usize = 16;

fn random(n: usize) -> Result<Vec<u8>, Pkcs12Error> {
    let mut out = vec![0; n];
    openssl::rand::rand_bytes(&mut out)?;
    Ok(out)
}

fn algorithm(oid: ObjectIdentifier, parameters: Option<Any>) -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned { oid, parameters }
}

impl Encryption {
    /// A fresh encryption of this protection's kind for the key (`for_key`) or the
    /// certificates.
    fn fresh(protection: Protection, for_key: bool) -> Result<Encryption, Pkcs12Error> {
        Ok(match protection {
            Protection::Legacy => Encryption::Pkcs12 {
                scheme: if for_key {
                    Pkcs12Scheme::Sha1TripleDesCbc
                } else {
                    Pkcs12Scheme::Sha1Rc2_40Cbc
                },
                iterations: LEGACY_ITERATIONS,
                salt: random(LEGACY_SALT)?,
            },
            Protection::Modern { iterations } => Encryption::Pbes2 {
                prf: Digest::Sha256,
                prf_null_parameters: true,
                iterations,
                salt: random(PBKDF2_SALT)?,
                key_length: None,
                cipher: Pbes2Cipher::Aes256Cbc,
                iv: random(16)?,
            },
        })
    }

    /// Its AlgorithmIdentifier.
    fn algorithm(&self) -> Result<AlgorithmIdentifierOwned, Pkcs12Error> {
        Ok(match self {
            Encryption::Pkcs12 {
                scheme,
                iterations,
                salt,
            } => algorithm(
                scheme.oid(),
                Some(Any::encode_from(&Pkcs12PbeParams {
                    salt: OctetString::new(salt.clone())?,
                    iterations: *iterations,
                })?),
            ),
            Encryption::Pbes2 {
                prf,
                iterations,
                salt,
                cipher,
                iv,
                ..
            } => {
                let prf = match prf {
                    Digest::Sha1 => oid::HMAC_SHA1,
                    Digest::Sha256 => oid::HMAC_SHA256,
                };
                let cipher = match cipher {
                    Pbes2Cipher::Aes128Cbc => oid::AES_128_CBC,
                    Pbes2Cipher::Aes256Cbc => oid::AES_256_CBC,
                };
                let kdf = Pbkdf2Params {
                    salt: OctetString::new(salt.clone())?,
                    iteration_count: *iterations,
                    prf: algorithm(prf, Some(Any::null())),
                };
                let params = Pbes2Params {
                    key_derivation_func: algorithm(oid::PBKDF2, Some(Any::encode_from(&kdf)?)),
                    encryption_scheme: algorithm(
                        cipher,
                        Some(Any::encode_from(&OctetString::new(iv.clone())?)?),
                    ),
                };
                algorithm(oid::PBES2, Some(Any::encode_from(&params)?))
            }
        })
    }
}

/// The bag attributes NCA's software finds a key by: `localKeyID` = the SKI's octets,
/// `friendlyName` = the SKI in lower-case hex as a BMPString.
fn key_attributes(ski: &[u8]) -> Result<SetOfVec<Attribute>, Pkcs12Error> {
    let local_key_id = Attribute {
        oid: oid::LOCAL_KEY_ID,
        values: SetOfVec::try_from(vec![Any::encode_from(&OctetString::new(ski)?)?])?,
    };
    let friendly_name = Attribute {
        oid: oid::FRIENDLY_NAME,
        values: SetOfVec::try_from(vec![Any::encode_from(&BmpString::from_utf8(
            &hex::encode(ski),
        )?)?])?,
    };
    // A SET OF is written in DER order; localKeyID's encoding is the shorter, and comes first
    // as in NCA's containers.
    Ok(SetOfVec::try_from(vec![local_key_id, friendly_name])?)
}

fn cert_bag(der: &[u8], attributes: Option<SetOfVec<Attribute>>) -> Result<SafeBag, Pkcs12Error> {
    Ok(SafeBag {
        bag_id: oid::CERT_BAG,
        bag_value: Any::encode_from(&CertBag {
            cert_id: oid::X509_CERTIFICATE,
            cert_value: OctetString::new(der)?,
        })?,
        bag_attributes: attributes,
    })
}

/// Write a container holding `contents`, protected by `password` as `protection` says.
pub fn encode(
    contents: &Contents<'_>,
    password: &str,
    protection: Protection,
) -> Result<Vec<u8>, Pkcs12Error> {
    let (mac_digest, mac_iterations, mac_salt_len) = match protection {
        Protection::Legacy => (Digest::Sha1, LEGACY_ITERATIONS, LEGACY_SALT),
        Protection::Modern { iterations } => {
            if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
                return Err(Pkcs12Error::Iterations(iterations));
            }
            (Digest::Sha256, iterations, PBKDF2_SALT)
        }
    };
    if !super::decode::is_pkcs8(contents.private_key) {
        return Err(Pkcs12Error::PrivateKey);
    }
    let ski = subject_key_id(contents.certificate)?;
    let attributes = key_attributes(&ski)?;

    // The key, shrouded, in a plain data safe.
    let key_encryption = Encryption::fresh(protection, true)?;
    let shrouded = EncryptedPrivateKeyInfo {
        algorithm: key_encryption.algorithm()?,
        encrypted_data: OctetString::new(crypt(
            &key_encryption,
            password,
            Mode::Encrypt,
            contents.private_key,
        )?)?,
    };
    let key_safe = vec![SafeBag {
        bag_id: oid::SHROUDED_KEY_BAG,
        bag_value: Any::encode_from(&shrouded)?,
        bag_attributes: Some(attributes.clone()),
    }]
    .to_der()?;

    // The certificates in an encrypted data safe: the holder's first, named like the key.
    let mut certs = vec![cert_bag(contents.certificate, Some(attributes))?];
    if let Protection::Modern { .. } = protection {
        for c in contents.chain {
            certs.push(cert_bag(c, None)?);
        }
    }
    let cert_encryption = Encryption::fresh(protection, false)?;
    let encrypted = EncryptedData {
        version: 0,
        encrypted_content_info: EncryptedContentInfo {
            content_type: oid::DATA,
            algorithm: cert_encryption.algorithm()?,
            encrypted_content: OctetString::new(crypt(
                &cert_encryption,
                password,
                Mode::Encrypt,
                &certs.to_der()?,
            )?)?,
        },
    };

    let authenticated_safe = vec![
        ContentInfo {
            content_type: oid::DATA,
            content: Any::encode_from(&OctetString::new(key_safe)?)?,
        },
        ContentInfo {
            content_type: oid::ENCRYPTED_DATA,
            content: Any::encode_from(&encrypted)?,
        },
    ]
    .to_der()?;

    let mac_salt = random(mac_salt_len)?;
    let mac = hmac(
        mac_digest,
        password,
        &mac_salt,
        mac_iterations,
        &authenticated_safe,
    )?;
    let digest_oid = match mac_digest {
        Digest::Sha1 => oid::SHA1,
        Digest::Sha256 => oid::SHA256,
    };
    let pfx = Pfx {
        version: 3,
        auth_safe: ContentInfo {
            content_type: oid::DATA,
            content: Any::encode_from(&OctetString::new(authenticated_safe)?)?,
        },
        mac_data: MacData {
            mac: DigestInfo {
                algorithm: algorithm(digest_oid, Some(Any::null())),
                digest: OctetString::new(mac)?,
            },
            mac_salt: OctetString::new(mac_salt)?,
            iterations: mac_iterations,
        },
    };
    Ok(pfx.to_der()?)
}

/// The PKCS#12 MAC (RFC 7292 B.3 key, HMAC with the same digest).
pub(super) fn hmac(
    digest: Digest,
    password: &str,
    salt: &[u8],
    iterations: u32,
    data: &[u8],
) -> Result<Vec<u8>, Pkcs12Error> {
    let md: MessageDigest = digest.openssl();
    let key = kdf::derive(
        md,
        &kdf::bmp_password(password),
        salt,
        kdf::Purpose::Mac,
        iterations,
        md.size(),
    )?;
    let key = PKey::hmac(&key)?;
    let mut signer = Signer::new(md, &key)?;
    Ok(signer.sign_oneshot_to_vec(data)?)
}
