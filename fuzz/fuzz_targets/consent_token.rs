//! Consent-token verification (`TrustedKeys::verify`) against the development Digital ID key:
//! JWS parsing, algorithm and key choice, the ES256 signature, then every claim.
//!
//! Input: a mode byte, 8 bytes of "now" (little-endian seconds, folded into 2000-2100), then
//! the rest. Mode bit 0 clear: the rest is the token as sent. Set: the rest is the payload,
//! signed here with the development key, so that the claims checks are reached. Mode bit 1
//! chooses the purpose the operation needs (issuance or revocation).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tamga::digital_id::{Purpose, CLOCK_SKEW_SECS, MAX_LIFETIME_SECS};

fuzz_target!(|data: &[u8]| {
    let (Some(&mode), Some(now), Some(rest)) = (
        data.first(),
        data.get(1..9).and_then(|b| <[u8; 8]>::try_from(b).ok()),
        data.get(9..),
    ) else {
        return;
    };
    let fixture = tamga_fuzz::fixture();
    let now = tamga_fuzz::now_from(now);
    let purpose = if mode & 2 == 0 {
        Purpose::EdsIssuance
    } else {
        Purpose::EdsRevocation
    };
    let token = if mode & 1 == 0 {
        match std::str::from_utf8(rest) {
            Ok(t) => t.to_owned(),
            Err(_) => return,
        }
    } else {
        tamga_fuzz::sign_es256(fixture, rest)
    };
    match fixture.trusted.verify(&token, purpose, now) {
        Ok(consent) => {
            assert_eq!(consent.purpose(), purpose);
            let skew = chrono::Duration::seconds(CLOCK_SKEW_SECS);
            assert!(
                consent.expires_at() > now - skew,
                "accepted an expired token"
            );
            assert!(
                consent.expires_at() <= now + skew + chrono::Duration::seconds(MAX_LIFETIME_SECS),
                "accepted a token that lives too long"
            );
            assert!((1..=128).contains(&consent.jti().len()));
            assert_eq!(consent.iin().birth_date(), consent.identity().birth_date);
            assert_eq!(consent.iin().sex(), consent.identity().sex);
            assert!(consent.iin().birth_date() >= tamga::digital_id::EARLIEST_BIRTH_DATE);
            assert!(consent.iin().birth_date() <= (now + chrono::Duration::days(1)).date_naive());
            let identity = consent.identity();
            for name in [&identity.surname, &identity.name]
                .into_iter()
                .chain(identity.patronymic.as_ref())
            {
                assert!(
                    tamga::digital_id::names::first_refused(name).is_none(),
                    "accepted a name with a refused character"
                );
            }
        }
        Err(e) => {
            assert!(!e.code().as_str().is_empty());
            // A refusal never repeats the token. The fixed wording of a message may happen to
            // contain a token the fuzzer wrote ("ent token is malformed: a com"), so a token
            // counts as repeated only when its twin (every letter's case swapped, every digit
            // moved on by one) is repeated in the twin's refusal too: no fixed wording holds both.
            if token.len() >= 16 && e.to_string().contains(&token) {
                let twin = twin_of(&token);
                if twin != token {
                    if let Err(twin_error) = fixture.trusted.verify(&twin, purpose, now) {
                        assert!(
                            !twin_error.to_string().contains(&twin),
                            "the message carries the token"
                        );
                    }
                }
            }
        }
    }
});

/// The token with every ASCII letter's case swapped and every digit moved on by one.
fn twin_of(token: &str) -> String {
    token
        .chars()
        .map(|c| match c {
            'a'..='z' => c.to_ascii_uppercase(),
            'A'..='Z' => c.to_ascii_lowercase(),
            '0'..='8' => char::from(c as u8 + 1),
            '9' => '0',
            other => other,
        })
        .collect()
}
