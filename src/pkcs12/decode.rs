//! Reading a container: its structure described, its MAC checked and its safes decrypted
//! with the password.

use openssl::symm::Mode;

use super::ber::{self, Reader, Tlv};
use super::{
    crypt, encode::hmac, oid, Attribute, AttributeValue, Bag, BagKind, Decoded, Digest, Encryption,
    Mac, Pbes2Cipher, Pkcs12Error, Pkcs12Scheme, Safe, MAX_CONTAINER, MAX_ITERATIONS,
};

fn iterations(tlv: &Tlv<'_>) -> Result<u32, Pkcs12Error> {
    let n = tlv.small_uint()?;
    if n == 0 || n > MAX_ITERATIONS {
        return Err(Pkcs12Error::Iterations(n));
    }
    Ok(n)
}

/// An AlgorithmIdentifier: its OID and its parameters (if any).
fn algorithm<'a>(
    tlv: &Tlv<'a>,
) -> Result<(der::asn1::ObjectIdentifier, Option<Tlv<'a>>), Pkcs12Error> {
    let mut r = tlv.children()?;
    let oid = r.next_tlv()?.oid()?;
    let params = if r.is_empty() {
        None
    } else {
        Some(r.next_tlv()?)
    };
    r.finish()?;
    Ok((oid, params))
}

fn is_null(params: &Option<Tlv<'_>>) -> bool {
    params
        .as_ref()
        .is_some_and(|p| p.tag == ber::NULL && p.content.is_empty())
}

fn digest_of(oid: der::asn1::ObjectIdentifier) -> Result<Digest, Pkcs12Error> {
    match oid {
        o if o == oid::SHA1 || o == oid::HMAC_SHA1 => Ok(Digest::Sha1),
        o if o == oid::SHA256 || o == oid::HMAC_SHA256 => Ok(Digest::Sha256),
        o => Err(Pkcs12Error::UnsupportedAlgorithm(o)),
    }
}

/// A password-based encryption's AlgorithmIdentifier.
fn encryption(tlv: &Tlv<'_>) -> Result<Encryption, Pkcs12Error> {
    let (alg, params) = algorithm(tlv)?;
    let params = params.ok_or(Pkcs12Error::Malformed("a PBE without parameters"))?;
    let scheme = match alg {
        o if o == oid::PBE_SHA1_3DES => Some(Pkcs12Scheme::Sha1TripleDesCbc),
        o if o == oid::PBE_SHA1_RC2_40 => Some(Pkcs12Scheme::Sha1Rc2_40Cbc),
        o if o == oid::PBES2 => None,
        o => return Err(Pkcs12Error::UnsupportedAlgorithm(o)),
    };
    if let Some(scheme) = scheme {
        let mut r = params.children()?;
        let salt = r.expect(ber::OCTET_STRING)?.octets()?.into_owned();
        let iterations = iterations(&r.next_tlv()?)?;
        r.finish()?;
        return Ok(Encryption::Pkcs12 {
            scheme,
            iterations,
            salt,
        });
    }
    let mut r = params.children()?;
    let (kdf, kdf_params) = algorithm(&r.expect(ber::SEQUENCE)?)?;
    let (cipher, iv) = algorithm(&r.expect(ber::SEQUENCE)?)?;
    r.finish()?;
    if kdf != oid::PBKDF2 {
        return Err(Pkcs12Error::UnsupportedAlgorithm(kdf));
    }
    let mut k = kdf_params
        .ok_or(Pkcs12Error::Malformed("PBKDF2 without parameters"))?
        .children()?;
    let salt = k.expect(ber::OCTET_STRING)?.octets()?.into_owned();
    let iterations = iterations(&k.next_tlv()?)?;
    let key_length = match k.peek_tag() {
        Some(ber::INTEGER) => Some(k.next_tlv()?.small_uint()?),
        _ => None,
    };
    let (prf, prf_null_parameters) = if k.is_empty() {
        (Digest::Sha1, false) // the DEFAULT, hmacWithSHA1
    } else {
        let (prf, params) = algorithm(&k.expect(ber::SEQUENCE)?)?;
        (digest_of(prf)?, is_null(&params))
    };
    k.finish()?;
    let cipher = match cipher {
        o if o == oid::AES_128_CBC => Pbes2Cipher::Aes128Cbc,
        o if o == oid::AES_256_CBC => Pbes2Cipher::Aes256Cbc,
        o => return Err(Pkcs12Error::UnsupportedAlgorithm(o)),
    };
    let iv = iv
        .filter(|t| t.tag & !0x20 == ber::OCTET_STRING)
        .ok_or(Pkcs12Error::Malformed("a cipher without its IV"))?
        .octets()?
        .into_owned();
    Ok(Encryption::Pbes2 {
        prf,
        prf_null_parameters,
        iterations,
        salt,
        key_length,
        cipher,
        iv,
    })
}

/// A `ContentInfo` of type `data`: the octets it carries.
fn data_octets(tlv: &Tlv<'_>) -> Result<Vec<u8>, Pkcs12Error> {
    let mut r = tlv.children()?;
    let content_type = r.next_tlv()?.oid()?;
    if content_type != oid::DATA {
        return Err(Pkcs12Error::UnsupportedAlgorithm(content_type));
    }
    let mut explicit = r.expect(ber::CONTEXT_0)?.children()?;
    r.finish()?;
    let octets = explicit.next_tlv()?;
    explicit.finish()?;
    if octets.tag & !0x20 != ber::OCTET_STRING {
        return Err(Pkcs12Error::Malformed("data that is not an OCTET STRING"));
    }
    Ok(octets.octets()?.into_owned())
}

fn attributes(tlv: &Tlv<'_>) -> Result<Vec<Attribute>, Pkcs12Error> {
    let mut out = Vec::new();
    let mut set = tlv.children()?;
    while !set.is_empty() {
        let mut attr = set.expect(ber::SEQUENCE)?.children()?;
        let oid = attr.next_tlv()?.oid()?;
        let mut values = Vec::new();
        let mut vs = attr.expect(ber::SET)?.children()?;
        attr.finish()?;
        while !vs.is_empty() {
            let v = vs.next_tlv()?;
            values.push(match v.tag {
                ber::OCTET_STRING | 0x24 => AttributeValue::OctetString(v.octets()?.into_owned()),
                ber::BMP_STRING => AttributeValue::BmpString(v.bmp_text()?),
                tag => AttributeValue::Other(tag, v.content.to_vec()),
            });
        }
        out.push(Attribute { oid, values });
    }
    Ok(out)
}

fn safe_contents(bytes: &[u8], password: &str) -> Result<Vec<Bag>, Pkcs12Error> {
    let mut top = Reader::new(bytes);
    let mut bags_reader = top.expect(ber::SEQUENCE)?.children()?;
    top.finish()?;
    let mut bags = Vec::new();
    while !bags_reader.is_empty() {
        let mut r = bags_reader.expect(ber::SEQUENCE)?.children()?;
        let bag_id = r.next_tlv()?.oid()?;
        let mut explicit = r.expect(ber::CONTEXT_0)?.children()?;
        let value = explicit.next_tlv()?;
        explicit.finish()?;
        let attributes = if r.is_empty() {
            Vec::new()
        } else {
            attributes(&r.expect(ber::SET)?)?
        };
        r.finish()?;
        let (kind, content) = match bag_id {
            o if o == oid::SHROUDED_KEY_BAG => {
                let mut epki = value.children()?;
                let enc = encryption(&epki.expect(ber::SEQUENCE)?)?;
                let ciphertext = epki.next_tlv()?.octets()?.into_owned();
                epki.finish()?;
                let key = crypt(&enc, password, Mode::Decrypt, &ciphertext)?;
                check_der_sequence(&key)?;
                (BagKind::ShroudedKey(enc), key)
            }
            o if o == oid::KEY_BAG => (BagKind::Key, raw(&value)?),
            o if o == oid::CERT_BAG => {
                let mut cb = value.children()?;
                let cert_id = cb.next_tlv()?.oid()?;
                if cert_id != oid::X509_CERTIFICATE {
                    return Err(Pkcs12Error::UnsupportedAlgorithm(cert_id));
                }
                let mut explicit = cb.expect(ber::CONTEXT_0)?.children()?;
                cb.finish()?;
                let cert = explicit.next_tlv()?.octets()?.into_owned();
                explicit.finish()?;
                (BagKind::Certificate, cert)
            }
            o => (BagKind::Other(o), value.content.to_vec()),
        };
        bags.push(Bag {
            kind,
            attributes,
            content,
        });
    }
    Ok(bags)
}

/// Whether `bytes` has the shape of a PKCS#8 `PrivateKeyInfo` (or `OneAsymmetricKey`): one
/// definite-length SEQUENCE { version 0 or 1, AlgorithmIdentifier, OCTET STRING, … }.
pub(super) fn is_pkcs8(bytes: &[u8]) -> bool {
    let shape = || -> Result<bool, Pkcs12Error> {
        let mut top = Reader::new(bytes);
        let info = top.expect(ber::SEQUENCE)?;
        if !top.is_empty() || bytes.get(1) == Some(&0x80) {
            return Ok(false);
        }
        let mut r = info.children()?;
        let version = r.expect(ber::INTEGER)?.small_uint()?;
        algorithm(&r.expect(ber::SEQUENCE)?)?;
        r.expect(ber::OCTET_STRING)?;
        Ok(version <= 1)
    };
    shape().unwrap_or(false)
}

/// A decrypted key must be PKCS#8 (what a wrong key decrypts to, even when its padding
/// happens to look valid, is not).
fn check_der_sequence(bytes: &[u8]) -> Result<(), Pkcs12Error> {
    if is_pkcs8(bytes) {
        Ok(())
    } else {
        Err(Pkcs12Error::WrongPassword)
    }
}

/// The DER of a SEQUENCE given by its contents (for a key bag's PrivateKeyInfo).
fn raw(tlv: &Tlv<'_>) -> Result<Vec<u8>, Pkcs12Error> {
    use der::Encode;
    let header = der::Header::new(
        der::Tag::Sequence,
        der::Length::try_from(tlv.content.len())?,
    )?;
    let mut out = header.to_der()?;
    out.extend_from_slice(tlv.content);
    Ok(out)
}

/// Read the container `bytes` with `password`: check its MAC, decrypt its safes and describe
/// what it holds and how. A wrong password gives [`Pkcs12Error::WrongPassword`].
pub fn decode(bytes: &[u8], password: &str) -> Result<Decoded, Pkcs12Error> {
    if bytes.len() > MAX_CONTAINER {
        return Err(Pkcs12Error::TooLarge);
    }
    let mut top = Reader::new(bytes);
    let mut pfx = top.expect(ber::SEQUENCE)?.children()?;
    top.finish()?;
    let version = pfx.expect(ber::INTEGER)?.small_uint()?;
    if version != 3 {
        return Err(Pkcs12Error::Malformed("a PFX version other than 3"));
    }
    let auth_safe = data_octets(&pfx.expect(ber::SEQUENCE)?)?;
    let mac = if pfx.is_empty() {
        None
    } else {
        let mut mac_data = pfx.expect(ber::SEQUENCE)?.children()?;
        let mut digest_info = mac_data.expect(ber::SEQUENCE)?.children()?;
        let (alg, params) = algorithm(&digest_info.expect(ber::SEQUENCE)?)?;
        let value = digest_info.next_tlv()?.octets()?.into_owned();
        digest_info.finish()?;
        let salt = mac_data.next_tlv()?.octets()?.into_owned();
        let iterations = if mac_data.is_empty() {
            1
        } else {
            iterations(&mac_data.next_tlv()?)?
        };
        mac_data.finish()?;
        let digest = digest_of(alg)?;
        let expected = hmac(digest, password, &salt, iterations, &auth_safe)?;
        if !(expected.len() == value.len() && openssl::memcmp::eq(&expected, &value)) {
            return Err(Pkcs12Error::WrongPassword);
        }
        Some(Mac {
            digest,
            null_parameters: is_null(&params),
            iterations,
            salt,
            length: value.len(),
        })
    };
    pfx.finish()?;

    let mut safes = Vec::new();
    let mut outer = Reader::new(&auth_safe);
    let mut infos = outer.expect(ber::SEQUENCE)?.children()?;
    outer.finish()?;
    while !infos.is_empty() {
        let info = infos.expect(ber::SEQUENCE)?;
        let mut r = info.children()?;
        let content_type = r.next_tlv()?.oid()?;
        if content_type == oid::DATA {
            safes.push(Safe {
                encryption: None,
                encrypted_data_version: None,
                bags: safe_contents(&data_octets(&info)?, password)?,
            });
        } else if content_type == oid::ENCRYPTED_DATA {
            let mut explicit = r.expect(ber::CONTEXT_0)?.children()?;
            r.finish()?;
            let mut ed = explicit.expect(ber::SEQUENCE)?.children()?;
            explicit.finish()?;
            let version = ed.expect(ber::INTEGER)?.small_uint()?;
            let mut eci = ed.expect(ber::SEQUENCE)?.children()?;
            ed.finish()?;
            let inner_type = eci.next_tlv()?.oid()?;
            if inner_type != oid::DATA {
                return Err(Pkcs12Error::UnsupportedAlgorithm(inner_type));
            }
            let enc = encryption(&eci.expect(ber::SEQUENCE)?)?;
            let content = eci.next_tlv()?;
            eci.finish()?;
            if content.tag != ber::CONTEXT_0_PRIMITIVE && content.tag != ber::CONTEXT_0 {
                return Err(Pkcs12Error::Malformed("encrypted data without its content"));
            }
            let plain = crypt(&enc, password, Mode::Decrypt, &content.octets()?)?;
            let bags = safe_contents(&plain, password).map_err(|e| match e {
                // What a wrong key decrypts to is not a SafeContents.
                Pkcs12Error::Malformed(_) | Pkcs12Error::UnexpectedTag { .. } if mac.is_none() => {
                    Pkcs12Error::WrongPassword
                }
                e => e,
            })?;
            safes.push(Safe {
                encryption: Some(enc),
                encrypted_data_version: Some(version),
                bags,
            });
        } else {
            return Err(Pkcs12Error::UnsupportedAlgorithm(content_type));
        }
    }
    Ok(Decoded {
        version,
        mac,
        safes,
    })
}
