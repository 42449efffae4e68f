//! The portal API's JSON bodies after the consent token: `POST /api/v1/applications` (the JSON,
//! then the form's rules and both CSRs) and `POST /api/v1/revocations` (the JSON, then serial,
//! reason and invalidity date).
//!
//! Input: a body; both routes read it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let agreement = tamga::config::RaConfig::default().agreement_version;
    if let Err(code) = tamga::dev::fuzzing::application_body(data, &agreement) {
        assert!(!code.is_empty());
    }
    if let Err(code) = tamga::dev::fuzzing::revocation_body(data) {
        assert!(!code.is_empty());
    }
});
