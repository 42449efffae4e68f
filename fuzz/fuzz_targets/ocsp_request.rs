//! The OCSP responder on a DER request, as `POST /ocsp` hands it over: the cache lookup, then
//! parsing (size, CertID count, hash algorithms, issuer match, nonce, critical extensions),
//! status and signing.
//!
//! Input: the request body.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tamga_fuzz::answer(data);
});
