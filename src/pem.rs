//! Writing PEM (RFC 7468): a label and the base64 of DER in lines of 64 characters.
//!
//! Owns: [`encode`], the one PEM writer of certificates, requests and OCSP responses. Must
//! never: parse or check what it wraps (its callers hold DER they made or checked).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// `der` as one PEM block labelled `label` (`CERTIFICATE`, `CERTIFICATE REQUEST`, …).
pub fn encode(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut pem = String::with_capacity(b64.len() + b64.len() / 64 + 2 * label.len() + 32);
    pem.push_str("-----BEGIN ");
    pem.push_str(label);
    pem.push_str("-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END ");
    pem.push_str(label);
    pem.push_str("-----\n");
    pem
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    #[test]
    fn a_certificate_reads_back_in_openssl() {
        let key = openssl::pkey::PKey::from_ec_key(
            openssl::ec::EcKey::generate(
                &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1)
                    .unwrap(),
            )
            .unwrap(),
        )
        .unwrap();
        let mut b = openssl::x509::X509ReqBuilder::new().unwrap();
        b.set_pubkey(&key).unwrap();
        b.sign(&key, openssl::hash::MessageDigest::sha256())
            .unwrap();
        let req = b.build();
        let pem = super::encode("CERTIFICATE REQUEST", &req.to_der().unwrap());
        assert_eq!(pem.as_bytes(), req.to_pem().unwrap());
    }
}
