#![allow(clippy::unwrap_used)]

use super::*;

#[test]
fn accept_language_picks_the_heaviest_of_our_languages() {
    assert_eq!(
        accepted_language("ru-RU,ru;q=0.9,en;q=0.8"),
        Some(Language::Ru)
    );
    assert_eq!(
        accepted_language("de, en;q=0.5, kk;q=0.7"),
        Some(Language::Kk)
    );
    assert_eq!(accepted_language("EN-gb"), Some(Language::En));
    assert_eq!(accepted_language("de, fr;q=0.2"), None);
    assert_eq!(accepted_language("ru;q=0, en;q=0.1"), Some(Language::En));
}

#[test]
fn the_policy_allows_no_inline_script_and_no_framing() {
    let csp = content_security_policy(13999);
    assert!(!csp.contains("unsafe-inline"));
    assert!(csp.contains("frame-ancestors 'none'"));
    assert!(csp.contains("connect-src 'self' http://127.0.0.1:13999 http://localhost:13999;"));
}

#[test]
fn the_pages_post_routes_take_bodies_and_others_none() {
    assert_eq!(post_body_limit("/enroll"), Some(HANDOVER_BODY_LIMIT));
    assert_eq!(
        post_body_limit("/enroll/api/applications"),
        Some(APPLICATION_BODY_LIMIT)
    );
    assert_eq!(post_body_limit("/enroll/api/session"), None);
}
