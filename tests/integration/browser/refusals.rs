//! What the citizen sees when something is refused, in the language chosen: an expired
//! consent token, the same token handed over again after the submission, a password that
//! breaks the policy, the agent not running; and a page of another site calling the agent,
//! which refuses it. Nothing is left half-written on the server.

use std::time::Duration;

use serde_json::Value;

use super::site::{handover_page, Page, Site};
use super::webdriver::{Browser, WAIT};
use super::{desk_on_sqlite, fresh_iin, page_in, tr, Desk};

/// Hand `token` over from a Digital ID page on another site, with `lang`.
fn hand_over(desk: &mut Desk, site: &Site, token: &str, lang: &str) {
    let action = format!("{}/enroll", desk.base);
    site.put("/consent", handover_page(&action, token, lang));
    let b = &mut desk.browser;
    b.goto(&format!("{}/consent", site.origin()));
    b.click_id("handover-go");
}

/// The refusal page of `POST /enroll`: its `#error` names `code` in `lang`, links back to
/// Digital ID, and no session cookie was set.
fn assert_refusal_page(b: &mut Browser, code: &str, lang: &str) {
    let error = b.id("error");
    b.screenshot(&format!("refused-{code}"));
    assert_eq!(
        b.attribute(&error, "data-code").as_deref(),
        Some(code),
        "data-code of #error"
    );
    let shown = b.text(&error);
    let expected = tr(lang, &format!("error.{code}"));
    assert!(
        shown.contains(expected.trim()),
        "{code} in {lang}: {shown:?} should say {expected:?}"
    );
    let back = b.id("back-to-digital-id");
    assert!(
        b.attribute(&back, "href").is_some_and(|h| !h.is_empty()),
        "a way back to Digital ID"
    );
    let html: String = b
        .execute("return document.documentElement.outerHTML", &[])
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(!html.contains("\"type\":"), "not a JSON problem: {html}");
    assert!(!html.contains("panicked"), "{html}");
}

#[test]
fn browser_refuses_an_expired_token_in_the_citizens_language() {
    let test = "browser_expired_token";
    let Some((_server, mut desk)) = desk_on_sqlite(test, false) else {
        return;
    };
    let token = desk.consent_token(&fresh_iin(), &["--issued-ago", "1000"]);
    let site = Site::start();
    hand_over(&mut desk, &site, &token, "ru");
    assert_refusal_page(&mut desk.browser, "consent_token_expired", "ru");
    assert!(
        desk.browser.cookie("tamga_enroll").is_none(),
        "no session for an expired token"
    );
    // The enrollment page itself, without a session, says so.
    let b = &mut desk.browser;
    b.goto(&format!("{}/enroll", desk.base));
    b.visible("step-no-session");
    b.visible("back-to-digital-id");
    b.screenshot("no-session");
    assert!(desk.applications().is_empty(), "nothing written");
}

#[test]
fn browser_refuses_a_replayed_token_after_the_submission() {
    let test = "browser_replayed_token";
    let Some((_server, mut desk)) = desk_on_sqlite(test, true) else {
        return;
    };
    let token = desk.consent_token(&fresh_iin(), &[]);
    let site = Site::start();
    hand_over(&mut desk, &site, &token, "kk");
    desk.wait_enroll_page();
    desk.language("kk");
    desk.agreement("kk");
    desk.form(None, "rsa2048", "first");
    let status = desk.submit();
    assert_eq!(status, "issued");
    assert_eq!(desk.applications().len(), 1);

    // Digital ID's page POSTs the same token again.
    hand_over(&mut desk, &site, &token, "kk");
    assert_refusal_page(&mut desk.browser, "consent_token_replayed", "kk");
    assert_eq!(desk.applications().len(), 1, "no second application");
}

#[test]
fn browser_refuses_a_password_that_breaks_the_policy() {
    let test = "browser_password_policy";
    let Some((_server, mut desk)) = desk_on_sqlite(test, true) else {
        return;
    };
    desk.digital_id(&fresh_iin(), true);
    desk.language("en");
    desk.agreement("en");
    let folder = desk.form(None, "rsa2048", "weak");
    if desk.submit() != "issued" {
        desk.refresh_until("issued");
    }
    desk.open_password_step();

    // Too short, no upper case, no digit: the rules say so as the citizen types.
    desk.passwords("abc", "abc");
    let met = wait_rules(&mut desk, &["lower", "same"]);
    desk.browser.screenshot("weak-password");
    try_download(&mut desk, "password_policy", "en");
    assert_eq!(met, ["lower", "same"]);
    assert!(
        no_containers(&folder),
        "nothing written for a weak password"
    );

    // Strong, but not repeated exactly.
    desk.passwords("Secret2026", "Secret2027");
    wait_rules(&mut desk, &["length", "upper", "lower", "digit"]);
    try_download(&mut desk, "password_mismatch", "en");
    assert!(no_containers(&folder), "nothing written for a mismatch");

    // Then a good one is taken.
    let result = desk.download();
    assert!(result.contains(".p12"), "{result}");
    assert!(!no_containers(&folder));
}

/// Wait until exactly the rules `expected` are met; returns them.
fn wait_rules(desk: &mut Desk, expected: &[&str]) -> Vec<String> {
    let mut met = Vec::new();
    let deadline = std::time::Instant::now() + WAIT;
    while std::time::Instant::now() < deadline {
        met = desk.rules_met();
        if met == expected {
            return met;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    desk.browser
        .fail(&format!("rules met {met:?}, expected {expected:?}"));
}

/// "Download" with a password the page must refuse: pressing it shows `code` in `lang`, and
/// the page stays on the password step.
fn try_download(desk: &mut Desk, code: &str, lang: &str) {
    let b = &mut desk.browser;
    b.click_id("download");
    b.wait_until(&format!("message {code}"), WAIT, |b| b.message().1 == code);
    let (shown, _) = b.message();
    assert_eq!(
        shown.trim(),
        tr(lang, &format!("agent_error.{code}")).trim(),
        "{code} in {lang}"
    );
    b.screenshot(&format!("refused-{code}"));
    assert!(b.is_visible("step-password"), "still at the password step");
    assert!(!b.is_visible("step-done"));
}

fn no_containers(folder: &std::path::Path) -> bool {
    std::fs::read_dir(folder)
        .unwrap()
        .flatten()
        .all(|e| !e.file_name().to_string_lossy().ends_with(".p12"))
}

#[test]
fn browser_without_the_agent_says_how_to_start_it() {
    let test = "browser_no_agent";
    let Some((_server, mut desk)) = desk_on_sqlite(test, false) else {
        return;
    };
    desk.digital_id(&fresh_iin(), true);
    desk.language("ru");
    let b = &mut desk.browser;
    let section = b.visible("step-no-agent");
    let shown = b.text(&section);
    let command = format!("tamga-enroll agent --origin {} --allow-dir", desk.base);
    assert!(shown.contains(&command), "{command} in {shown}");
    page_in(b, "ru").unwrap_or_else(|e| panic!("the page in Russian: {e}"));
    let (message, code) = b.message();
    assert_eq!(code, "agent_unreachable");
    assert_eq!(
        message.trim(),
        tr("ru", "agent_error.agent_unreachable").trim()
    );
    b.screenshot("no-agent");

    // Started as the page says, the agent is found on "retry".
    desk.start_agent(&[]);
    let b = &mut desk.browser;
    b.click_id("retry-agent");
    b.visible("step-agreement");
    b.screenshot("agent-found");
    assert!(desk.applications().is_empty(), "nothing written");
}

/// The agent's HTTP statuses the browser saw (Chromium's network log), for URLs starting
/// with `prefix`.
fn statuses_seen(b: &Browser, prefix: &str) -> Vec<i64> {
    let events: Vec<Value> = b
        .log("performance")
        .iter()
        .filter_map(|e| e["message"].as_str())
        .filter_map(|m| serde_json::from_str::<Value>(m).ok())
        .map(|m| m["message"].clone())
        .collect();
    let ids: Vec<Value> = events
        .iter()
        .filter(|e| e["method"] == "Network.requestWillBeSent")
        .filter(|e| {
            e["params"]["request"]["url"]
                .as_str()
                .is_some_and(|u| u.starts_with(prefix))
        })
        .map(|e| e["params"]["requestId"].clone())
        .collect();
    events
        .iter()
        .filter(|e| ids.contains(&e["params"]["requestId"]))
        .filter_map(|e| match e["method"].as_str() {
            Some("Network.responseReceivedExtraInfo") => e["params"]["statusCode"].as_i64(),
            Some("Network.responseReceived") => e["params"]["response"]["status"].as_i64(),
            _ => None,
        })
        .collect()
}

/// A foreign page's script calling the agent, and what it got (`#simple`: a plain GET;
/// `#keys`: a POST that needs a preflight).
fn foreign_page(site: &Site, agent: &str) {
    site.put(
        "/",
        Page::html(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>elsewhere</title>\
             <script src=\"/probe.js\" defer></script></head><body>\
             <p id=\"simple\"></p><p id=\"keys\"></p></body></html>",
        ),
    );
    site.put(
        "/probe.js",
        Page::script(format!(
            "function show(id, p) {{ p.then(function (r) {{ document.getElementById(id)\
             .textContent = 'answered ' + r.status; }}, function (e) {{ document\
             .getElementById(id).textContent = 'refused ' + e; }}); }}\n\
             show('simple', fetch('{agent}/agent/v1/version'));\n\
             show('keys', fetch('{agent}/agent/v1/keys', {{method: 'POST', headers: \
             {{'Content-Type': 'application/json'}}, body: JSON.stringify({{auth: {{key_type: \
             'rsa2048'}}, sign: {{key_type: 'rsa2048'}}, email: null}})}}));\n"
        )),
    );
}

#[test]
fn browser_page_of_another_origin_is_refused_by_the_agent() {
    let test = "browser_foreign_origin";
    let Some((_server, mut desk)) = desk_on_sqlite(test, true) else {
        return;
    };
    let agent_base = format!("http://127.0.0.1:{}", desk.agent_port);
    let site = Site::start();
    foreign_page(&site, &agent_base);
    let b = &mut desk.browser;
    b.log("performance");
    b.goto(&format!("{}/", site.origin()));
    b.wait_until("both calls ended", WAIT, |b| {
        !b.text_of("simple").is_empty() && !b.text_of("keys").is_empty()
    });
    b.screenshot("foreign-page");
    let (simple, keys) = (b.text_of("simple"), b.text_of("keys"));
    assert!(simple.starts_with("refused"), "{simple}");
    assert!(keys.starts_with("refused"), "{keys}");
    let seen = statuses_seen(b, &agent_base);
    assert!(
        !seen.is_empty() && seen.iter().all(|s| *s == 403),
        "the agent answered the foreign page 403 only: {seen:?}"
    );

    // The same requests outside a browser: 403 origin_not_allowed, no CORS header, and the
    // Private Network Access preflight answered for the allowed origin only.
    let http = crate::support::client();
    let foreign = site.origin();
    let answer = http
        .get(format!("{agent_base}/agent/v1/version"))
        .header("Origin", &foreign)
        .send()
        .unwrap();
    assert_eq!(answer.status(), 403);
    assert!(answer
        .headers()
        .get("access-control-allow-origin")
        .is_none());
    let body: Value = answer.json().unwrap();
    assert_eq!(body["code"], "origin_not_allowed", "{body}");
    for (origin, allowed) in [(desk.base.as_str(), true), (foreign.as_str(), false)] {
        let answer = http
            .request(
                reqwest::Method::OPTIONS,
                format!("{agent_base}/agent/v1/keys"),
            )
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header("Access-Control-Request-Headers", "content-type")
            .header("Access-Control-Request-Private-Network", "true")
            .send()
            .unwrap();
        let header = |name: &str| {
            answer
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        if allowed {
            assert_eq!(answer.status(), 204, "{origin}");
            assert_eq!(
                header("access-control-allow-origin").as_deref(),
                Some(origin)
            );
            assert_eq!(
                header("access-control-allow-private-network").as_deref(),
                Some("true")
            );
        } else {
            assert_eq!(answer.status(), 403, "{origin}");
            assert_eq!(header("access-control-allow-origin"), None);
            assert_eq!(header("access-control-allow-private-network"), None);
        }
    }
    // The foreign page made no keys in the agent, and nothing reached the server.
    let held: Vec<_> = std::fs::read_dir(&desk.state)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".json"))
                .collect()
        })
        .unwrap_or_default();
    assert!(held.is_empty(), "{held:?}");
    assert!(desk.applications().is_empty());
}
