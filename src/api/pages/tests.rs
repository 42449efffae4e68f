#![allow(clippy::unwrap_used, clippy::panic)]

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

/// Another method with a body on a pages route that takes one: 405 with the route's `Allow`,
/// as the router would answer, not 413 (GET with a body stays 413: GET takes none).
#[test]
fn another_method_with_a_body_is_not_allowed_rather_than_too_large() {
    let head = |method: &str, path: &str| {
        let mut head = actix_web::dev::RequestHead::default();
        head.method = actix_web::http::Method::from_bytes(method.as_bytes()).unwrap();
        head.uri = path.parse().unwrap();
        head.headers.insert(
            header::CONTENT_LENGTH,
            header::HeaderValue::from_static("10"),
        );
        head
    };
    let allow = |method: &str, path: &str| match super::super::body::refused(&head(method, path)) {
        Some(ApiError::MethodNotAllowed { allow }) => Some(allow),
        Some(other) => panic!("{method} {path}: {other:?}"),
        None => None,
    };
    assert_eq!(allow("TRACE", "/enroll/api/applications"), Some("POST"));
    assert_eq!(allow("PUT", "/enroll"), Some("GET, HEAD, POST"));
    assert_eq!(allow("DELETE", "/dev/digital-id"), Some("GET, HEAD, POST"));
    assert_eq!(allow("POST", "/enroll/api/applications"), None);
    assert!(matches!(
        super::super::body::refused(&head("GET", "/enroll")),
        Some(ApiError::BodyTooLarge(0))
    ));
}
