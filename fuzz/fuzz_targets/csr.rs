//! The CSR policy (`tamga::csr::validate`): size, PEM or base64 DER, both parsers,
//! proof of possession, key types and sizes, weak keys, the requested e-mail.
//!
//! Input: a mode byte, then the rest. Mode 0 (mod 3): the rest is the submitted text (PEM or
//! base64), as it arrives in the JSON body. Mode 1: the rest is a DER request, base64-encoded
//! here, so that mutations work on the ASN.1 itself. Mode 2: the rest is a DER
//! SubjectPublicKeyInfo for the key policy alone (`check_key`): a mutated key cannot come with
//! a valid proof of possession, so this is how the weak-key checks meet odd keys.
#![no_main]

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use libfuzzer_sys::fuzz_target;
use tamga::csr::{check_key, validate};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let text = match mode % 3 {
        0 => match std::str::from_utf8(rest) {
            Ok(t) => t.to_owned(),
            Err(_) => return,
        },
        1 => STANDARD.encode(rest),
        _ => {
            if let Ok(key) = openssl::pkey::PKey::public_key_from_der(rest) {
                if let Err(e) = check_key(&key) {
                    assert!(!e.code().as_str().is_empty());
                }
            }
            return;
        }
    };
    match validate(&text) {
        Ok(csr) => {
            // What survives is consistent: the key's identity is the hash of its SPKI, the SPKI
            // is canonical (decoding and re-encoding it gives the same identity), and the
            // stored request is one OpenSSL reads back.
            assert_eq!(
                csr.identity().sha256_hex(),
                hex(&openssl::sha::sha256(csr.spki_der()))
            );
            assert_eq!(
                tamga::key_identity::KeyIdentity::of_spki_der(csr.spki_der()).ok().as_ref(),
                Some(csr.identity())
            );
            assert!(openssl::x509::X509Req::from_der(csr.der()).is_ok());
            assert!(openssl::pkey::PKey::public_key_from_der(csr.spki_der()).is_ok());
        }
        Err(e) => assert!(!e.code().as_str().is_empty()),
    }
});

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
