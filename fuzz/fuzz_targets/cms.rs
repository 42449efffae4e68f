//! CMS SignedData (`tamga::cms`), as the cabinet reads a login and a re-issue confirmation:
//! size, base64 or PEM, OpenSSL's parse and its DER, one signer, content types, algorithms,
//! signed attributes; then OpenSSL's verification with a certificate.
//!
//! Input: a mode byte, then the rest. Mode 0 (mod 2): the rest is text (base64 or PEM), as it
//! arrives in the JSON body or the `Tamga-Confirmation` header. Mode 1: the rest is DER, so
//! that mutations work on the ASN.1 itself. A message that is read is verified with each
//! certificate it carries (only here: the server verifies with the certificate it issued), a
//! detached one over `DETACHED_CONTENT` — the content of the detached seeds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tamga::cms::{SignedMessage, SignerId};

const DETACHED_CONTENT: &[u8] = b"tamga cms fuzz seed\n";

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let read = if mode % 2 == 0 {
        match std::str::from_utf8(rest) {
            Ok(text) => SignedMessage::from_text(text),
            Err(_) => return,
        }
    } else {
        SignedMessage::from_der(rest)
    };
    let message = match read {
        Ok(message) => message,
        Err(e) => {
            assert!(!e.code().as_str().is_empty());
            return;
        }
    };
    if let SignerId::IssuerSerial { serial_hex, .. } = message.signer() {
        // `ca::Serial`'s form: upper-case hex digit pairs.
        assert!(serial_hex.len() >= 2 && serial_hex.len() % 2 == 0);
        assert!(serial_hex.chars().all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()));
    }
    for cert in message.embedded_certificates() {
        match message.content() {
            Some(content) => {
                if let Ok(verified) = message.verify_attached(cert) {
                    assert_eq!(verified, content);
                }
                assert!(message.verify_detached(cert, content).is_err());
            }
            None => {
                let _ = message.verify_detached(cert, DETACHED_CONTENT);
                assert!(message.verify_attached(cert).is_err());
            }
        }
    }
});
