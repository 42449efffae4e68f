//! `GET /ocsp/{base64}`: percent-decoding and base64 (standard or URL-safe, padding optional)
//! of the last path segment, then the responder on what it decodes to.
//!
//! Input: the path after `/ocsp/`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(segment) = std::str::from_utf8(data) else {
        return;
    };
    let request = tamga::dev::fuzzing::ocsp_get_path(&format!("/ocsp/{segment}"));
    if let Some(der) = &request {
        assert!(der.len() <= 2 * tamga::ocsp::MAX_REQUEST_LEN);
    }
    // The handler answers an undecodable path as an empty (malformed) request.
    tamga_fuzz::answer(&request.unwrap_or_default());
});
