//! The requests every client sends, read without OpenSSL's decoders: a canonical RSA key
//! (`rsaEncryption` with NULL parameters) or an uncompressed point on P-256 or P-384 (named
//! curve), signed with PKCS#1 v1.5 or ECDSA over SHA-256/384/512. The key is built from the
//! components the strict DER parser read, and the signature checked over the exact bytes of
//! the CertificationRequestInfo it read. Anything else (PSS, compressed points, explicit
//! curves, other key types, odd parameters) is not for this path: [`key`] answers `None` and
//! the caller goes through OpenSSL's own parser. Must never: accept what OpenSSL's path
//! would refuse, or decide anything of the key policy (that is `key`'s and the caller's).

use std::sync::OnceLock;

use const_oid::db::rfc5912 as oids;
use der::{Decode, Reader, Tagged};
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey, EcPoint};
use openssl::ecdsa::EcdsaSig;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Public};
use openssl::rsa::Rsa;
use x509_cert::request::CertReq;

/// RSAPublicKey (RFC 8017 §A.1.1).
#[derive(der::Sequence)]
struct RsaPublicKey<'a> {
    n: der::asn1::UintRef<'a>,
    e: der::asn1::UintRef<'a>,
}

fn group(nid: Nid) -> Option<&'static EcGroup> {
    static P256: OnceLock<Option<EcGroup>> = OnceLock::new();
    static P384: OnceLock<Option<EcGroup>> = OnceLock::new();
    let cell = match nid {
        Nid::X9_62_PRIME256V1 => &P256,
        Nid::SECP384R1 => &P384,
        _ => return None,
    };
    cell.get_or_init(|| EcGroup::from_curve_name(nid).ok())
        .as_ref()
}

/// The digest of the request's signature, if it is one this path checks: PKCS#1 v1.5 with
/// NULL or absent parameters under an RSA key, ECDSA without parameters under an EC key.
fn digest(req: &CertReq) -> Option<MessageDigest> {
    let (digest, rsa) = match req.algorithm.oid {
        oids::SHA_256_WITH_RSA_ENCRYPTION => (MessageDigest::sha256(), true),
        oids::SHA_384_WITH_RSA_ENCRYPTION => (MessageDigest::sha384(), true),
        oids::SHA_512_WITH_RSA_ENCRYPTION => (MessageDigest::sha512(), true),
        oids::ECDSA_WITH_SHA_256 => (MessageDigest::sha256(), false),
        oids::ECDSA_WITH_SHA_384 => (MessageDigest::sha384(), false),
        oids::ECDSA_WITH_SHA_512 => (MessageDigest::sha512(), false),
        _ => return None,
    };
    let key_is_rsa = req.info.public_key.algorithm.oid == oids::RSA_ENCRYPTION;
    if rsa != key_is_rsa {
        return None;
    }
    match &req.algorithm.parameters {
        None => Some(digest),
        Some(p) if rsa && p.tag() == der::Tag::Null && p.value().is_empty() => Some(digest),
        Some(_) => None,
    }
}

/// A key of this path, as the low-level RSA or EC key that checks its request's signature
/// (no EVP context, no provider export, no algorithm fetch per request), and as the `PKey`
/// the key policy reads.
pub(super) struct DirectKey {
    low: Low,
    pkey: PKey<Public>,
}

enum Low {
    Rsa(Rsa<Public>),
    Ec(EcKey<Public>),
}

impl DirectKey {
    /// The key as the key policy reads it.
    pub(super) fn pkey(&self) -> &PKey<Public> {
        &self.pkey
    }
}

/// The request's key, if the request is in one of the forms of this path (its key canonical
/// and its signature one [`verify`] checks) and the key decodes. A point off its curve is
/// `None` too: OpenSSL's path names the refusal.
pub(super) fn key(req: &CertReq) -> Option<DirectKey> {
    digest(req)?;
    if !plain_subject(req) {
        return None;
    }
    let spki = &req.info.public_key;
    let bits = spki.subject_public_key.as_bytes()?;
    if spki.algorithm.oid == oids::RSA_ENCRYPTION {
        let null = spki.algorithm.parameters.as_ref()?;
        if null.tag() != der::Tag::Null || !null.value().is_empty() {
            return None;
        }
        let key = RsaPublicKey::from_der(bits).ok()?;
        let n = BigNum::from_slice(key.n.as_bytes()).ok()?;
        let e = BigNum::from_slice(key.e.as_bytes()).ok()?;
        let rsa = Rsa::from_public_components(n, e).ok()?;
        let pkey = PKey::from_rsa(rsa.clone()).ok()?;
        return Some(DirectKey {
            low: Low::Rsa(rsa),
            pkey,
        });
    }
    if spki.algorithm.oid == oids::ID_EC_PUBLIC_KEY {
        let curve: const_oid::ObjectIdentifier =
            spki.algorithm.parameters.as_ref()?.decode_as().ok()?;
        let (nid, len) = match curve {
            oids::SECP_256_R_1 => (Nid::X9_62_PRIME256V1, 65),
            oids::SECP_384_R_1 => (Nid::SECP384R1, 97),
            _ => return None,
        };
        if bits.len() != len || bits.first() != Some(&0x04) {
            return None;
        }
        let group = group(nid)?;
        let mut ctx = BigNumContext::new().ok()?;
        // Refuses coordinates outside the field and points off the curve.
        let point = EcPoint::from_bytes(group, bits, &mut ctx).ok()?;
        let ec = EcKey::from_public_key(group, &point).ok()?;
        let pkey = PKey::from_ec_key(ec.clone()).ok()?;
        return Some(DirectKey {
            low: Low::Ec(ec),
            pkey,
        });
    }
    None
}

/// Whether every value of the request's subject is a UTF8String, PrintableString or
/// IA5String whose content is valid for its type. The DER parser reads those values as any
/// type; OpenSSL refuses a name value of a non-string type or a malformed string, so such a
/// request goes through OpenSSL's parser (the subject is never copied into a certificate, but
/// the request is stored and must read back).
fn plain_subject(req: &CertReq) -> bool {
    req.info.subject.0.iter().all(|rdn| {
        rdn.0.iter().all(|atv| {
            let value = atv.value.value();
            match atv.value.tag() {
                der::Tag::Utf8String => der::asn1::Utf8StringRef::new(value).is_ok(),
                der::Tag::PrintableString => der::asn1::PrintableStringRef::new(value).is_ok(),
                der::Tag::Ia5String => der::asn1::Ia5StringRef::new(value).is_ok(),
                _ => false,
            }
        })
    })
}

/// DigestInfo of SHA-256, SHA-384 and SHA-512 before the hash (RFC 8017 §9.2, note 1).
const DIGEST_INFO: [(usize, [u8; 19]); 3] = [
    (
        32,
        [
            0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x01, 0x05, 0x00, 0x04, 0x20,
        ],
    ),
    (
        48,
        [
            0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x02, 0x05, 0x00, 0x04, 0x30,
        ],
    ),
    (
        64,
        [
            0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x03, 0x05, 0x00, 0x04, 0x40,
        ],
    ),
];

/// Whether the signature of a request [`key`] took verifies with its key over its
/// CertificationRequestInfo as it arrived, checked as OpenSSL checks it: PKCS#1 v1.5 by
/// encoding the expected DigestInfo and comparing it whole with what the signature holds
/// (the signature exactly as long as the modulus); ECDSA only over a DER signature with
/// nothing after it. `false` for a signature BIT STRING with unused bits.
pub(super) fn verify(der: &[u8], req: &CertReq, key: &DirectKey) -> bool {
    let (Some(digest), Some(signature), Some(info)) =
        (digest(req), req.signature.as_bytes(), info_bytes(der))
    else {
        return false;
    };
    let hash: Vec<u8> = match digest.size() {
        32 => openssl::sha::sha256(info).to_vec(),
        48 => openssl::sha::sha384(info).to_vec(),
        64 => openssl::sha::sha512(info).to_vec(),
        _ => return false,
    };
    match &key.low {
        Low::Rsa(rsa) => {
            let Some((_, prefix)) = DIGEST_INFO.iter().find(|(len, _)| *len == hash.len()) else {
                return false;
            };
            let size = rsa.size() as usize;
            if signature.len() != size {
                return false;
            }
            let mut out = vec![0u8; size];
            let Ok(n) = rsa.public_decrypt(signature, &mut out, openssl::rsa::Padding::PKCS1)
            else {
                return false;
            };
            let expected: Vec<u8> = prefix.iter().chain(hash.iter()).copied().collect();
            out.get(..n) == Some(expected.as_slice())
        }
        Low::Ec(ec) => {
            let Ok(sig) = EcdsaSig::from_der(signature) else {
                return false;
            };
            if sig.to_der().ok().as_deref() != Some(signature) {
                return false;
            }
            sig.verify(&hash, ec).unwrap_or(false)
        }
    }
}

/// The bytes of the CertificationRequestInfo as they arrived: the first element of the
/// request's outer SEQUENCE.
fn info_bytes(der: &[u8]) -> Option<&[u8]> {
    let mut reader = der::SliceReader::new(der).ok()?;
    let header = der::Header::decode(&mut reader).ok()?;
    if header.tag != der::Tag::Sequence {
        return None;
    }
    reader.tlv_bytes().ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;
    use openssl::ec::PointConversionForm;
    use openssl::pkey::Private;
    use openssl::x509::{X509Req, X509ReqBuilder};

    fn request(key: &PKey<Private>, digest: MessageDigest) -> Vec<u8> {
        let mut b = X509ReqBuilder::new().unwrap();
        b.set_pubkey(key).unwrap();
        b.sign(key, digest).unwrap();
        b.build().to_der().unwrap()
    }

    /// This path's answer: `None` when it does not take the request, else whether it verifies.
    fn direct(der: &[u8]) -> Option<bool> {
        let req = CertReq::from_der(der).ok()?;
        let key = key(&req)?;
        Some(verify(der, &req, &key))
    }

    fn openssl(der: &[u8]) -> bool {
        X509Req::from_der(der)
            .and_then(|r| r.public_key().and_then(|k| r.verify(&k)))
            .unwrap_or(false)
    }

    #[test]
    fn it_agrees_with_openssl_on_every_request_it_takes_and_on_tampered_ones() {
        let ec = |nid| {
            PKey::from_ec_key(EcKey::generate(&EcGroup::from_curve_name(nid).unwrap()).unwrap())
                .unwrap()
        };
        let keys = [
            PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap(),
            ec(Nid::X9_62_PRIME256V1),
            ec(Nid::SECP384R1),
        ];
        let mut taken = 0;
        for key in &keys {
            for digest in [
                MessageDigest::sha256(),
                MessageDigest::sha384(),
                MessageDigest::sha512(),
            ] {
                let der = request(key, digest);
                assert_eq!(direct(&der), Some(true));
                assert!(openssl(&der));
                taken += 1;
                // Every byte flipped in turn: where this path still takes the request, it
                // answers as OpenSSL does.
                for i in 0..der.len() {
                    let mut bad = der.clone();
                    bad[i] ^= 0x01;
                    if let Some(answer) = direct(&bad) {
                        assert_eq!(answer, openssl(&bad), "byte {i} of {der:02x?}");
                    }
                }
            }
        }
        assert_eq!(taken, 9);
    }

    #[test]
    fn a_subject_openssl_would_refuse_goes_through_openssl() {
        let key = PKey::from_ec_key(
            EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap(),
        )
        .unwrap();
        let with_cn = |cn: &str| {
            let mut name = openssl::x509::X509NameBuilder::new().unwrap();
            name.append_entry_by_text("CN", cn).unwrap();
            let mut b = X509ReqBuilder::new().unwrap();
            b.set_subject_name(&name.build()).unwrap();
            b.set_pubkey(&key).unwrap();
            b.sign(&key, MessageDigest::sha256()).unwrap();
            b.build().to_der().unwrap()
        };
        let plain = with_cn("Requested Name Is Ignored");
        assert_eq!(direct(&plain), Some(true));
        // The CN's value re-tagged as an INTEGER: DER still, but not a name OpenSSL reads.
        let mut bad = plain.clone();
        let at = bad
            .windows(2)
            .position(|w| w == [0x0c, 25] || w == [0x13, 25])
            .unwrap();
        bad[at] = 0x02;
        assert!(CertReq::from_der(&bad).is_ok());
        assert_eq!(direct(&bad), None);
    }

    #[test]
    fn other_forms_go_through_openssl() {
        // A compressed point: the same key, not this path's form.
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        let ec = EcKey::generate(&group).unwrap();
        let mut ctx = BigNumContext::new().unwrap();
        let compressed = ec
            .public_key()
            .to_bytes(&group, PointConversionForm::COMPRESSED, &mut ctx)
            .unwrap();
        let key = PKey::from_ec_key(ec.clone()).unwrap();
        let der = request(&key, MessageDigest::sha256());
        let mut req = CertReq::from_der(&der).unwrap();
        req.info.public_key.subject_public_key =
            der::asn1::BitString::from_bytes(&compressed).unwrap();
        assert!(key_of(&req).is_none());
        // Another curve, and another key type.
        let k1 = PKey::from_ec_key(
            EcKey::generate(&EcGroup::from_curve_name(Nid::SECP256K1).unwrap()).unwrap(),
        )
        .unwrap();
        assert_eq!(direct(&request(&k1, MessageDigest::sha256())), None);
        let ed = PKey::generate_ed25519().unwrap();
        let mut b = X509ReqBuilder::new().unwrap();
        b.set_pubkey(&ed).unwrap();
        b.sign(&ed, MessageDigest::null()).unwrap();
        assert_eq!(direct(&b.build().to_der().unwrap()), None);
    }

    fn key_of(req: &CertReq) -> Option<DirectKey> {
        key(req)
    }
}
