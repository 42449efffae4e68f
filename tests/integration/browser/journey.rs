//! The journey as a citizen walks it: from the Digital ID stand-in through every step in
//! Kazakh with RSA keys, then in Russian with EC keys and an e-mail; the pending path resumed
//! after an operator's approval; the hand-over POSTed from a page of another site.

use std::time::Duration;

use super::site::{handover_page, Site};
use super::webdriver::WAIT;
use super::{check_containers, desk_on_sqlite, fresh_iin, shown_section, tr};
use crate::support::{run, text};

#[test]
fn browser_journey_in_kazakh_with_rsa_then_in_russian_with_ec_and_an_email() {
    let test = "browser_journey";
    let Some((env, mut desk)) = desk_on_sqlite(test, true) else {
        return;
    };

    // Kazakh (the default), RSA-2048 (the default key type), no e-mail.
    let iin = fresh_iin();
    desk.digital_id(&iin, true);
    desk.language("kk");
    let (folder, result) = desk.walk("kk", None, "rsa2048", "kk-keys");
    let files = check_containers(
        desk.scratch.path(),
        &folder,
        &iin,
        "rsa2048",
        env.dir(),
        &env.server.base,
        true,
    );
    for shown in [&files[0], &files[1], &folder.display().to_string()] {
        assert!(result.contains(shown.as_str()), "{shown} in {result}");
    }

    // Russian, EC P-256, with an e-mail.
    let iin_ru = fresh_iin();
    desk.digital_id(&iin_ru, true);
    desk.language("ru");
    let (folder_ru, result_ru) = desk.walk("ru", Some("aigul@example.kz"), "ec-p256", "ru-keys");
    let files_ru = check_containers(
        desk.scratch.path(),
        &folder_ru,
        &iin_ru,
        "ec-p256",
        env.dir(),
        &env.server.base,
        true,
    );
    for shown in [&files_ru[0], &files_ru[1]] {
        assert!(result_ru.contains(shown.as_str()), "{shown} in {result_ru}");
    }

    // What the server recorded: two issued applications, each in its language, the e-mail.
    let apps = desk.applications();
    let find = |iin: &str| {
        apps.iter()
            .find(|a| a["holder_iin"] == iin)
            .unwrap_or_else(|| panic!("the application of {iin}: {apps:?}"))
            .clone()
    };
    let (kk, ru) = (find(&iin), find(&iin_ru));
    assert_eq!(apps.len(), 2, "{apps:?}");
    assert_eq!(kk["status"], "issued");
    assert_eq!(kk["language"], "kk");
    assert_eq!(kk["email"], serde_json::Value::Null);
    assert_eq!(ru["status"], "issued");
    assert_eq!(ru["language"], "ru");
    assert_eq!(ru["email"], "aigul@example.kz");
    assert_eq!(ru["storage"], "pkcs12");
    // The held keys are gone from the agent once written.
    let held: Vec<_> = std::fs::read_dir(&desk.state)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    assert!(held.is_empty(), "keys left in the agent's state: {held:?}");
}

#[test]
fn browser_pending_review_then_approved_and_resumed_with_the_agents_keys() {
    let test = "browser_pending_review";
    let Some((env, mut desk)) = desk_on_sqlite(test, true) else {
        return;
    };
    let iin = fresh_iin();
    desk.digital_id(&iin, false);
    desk.language("en");
    desk.agreement("en");
    let folder = desk.form(None, "rsa2048", "pending");
    let status = desk.submit();
    assert_eq!(status, "pending_review");
    let b = &mut desk.browser;
    let shown = b.text_of("status");
    assert!(
        shown.contains(&tr("en", "status.pending_review")),
        "pending_review in words: {shown}"
    );
    // Refreshing changes nothing until an operator decides.
    b.click_id("refresh");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        b.attribute_of("status", "data-status").as_deref(),
        Some("pending_review")
    );
    assert!(!b.is_visible("step-password"));
    // No e-mail was given: no letter is promised; the page shows the address to come back to.
    assert!(!b.is_visible("pending-note"));
    assert!(b.is_visible("resume-link"), "the resume link is shown");
    let resume_link = b.css("#resume-link");
    let link = b.property(&resume_link, "href");
    assert!(
        link.contains("/enroll/resume?application="),
        "the resume link: {link}"
    );
    b.screenshot("pending");

    let apps = desk.applications();
    assert_eq!(apps.len(), 1, "{apps:?}");
    assert_eq!(apps[0]["status"], "pending_review");
    let id = apps[0]["id"].as_str().unwrap().to_owned();
    assert!(
        link.ends_with(&format!("/enroll/resume?application={id}")),
        "{link}"
    );
    let out = run(desk
        .cli()
        .args(["applications", "approve", &id, "--operator", "ops1"]));
    assert!(out.status.success(), "{}", text(&out));

    // The e-mail's link: the application id only; a fresh page in the same browser, without
    // the session's cookie: the agent holds what the page needs.
    let b = &mut desk.browser;
    b.delete_cookies();
    b.new_tab();
    b.goto(&format!("{}/enroll/resume?application={id}", desk.base));
    b.wait_until("the resumed page", WAIT, |b| {
        b.is_visible("step-status") || b.is_visible("step-password")
    });
    b.screenshot("resumed");
    desk.refresh_until("issued");
    desk.open_password_step();
    let result = desk.download();
    let files = check_containers(
        desk.scratch.path(),
        &folder,
        &iin,
        "rsa2048",
        env.dir(),
        &env.server.base,
        true,
    );
    for file in &files {
        assert!(result.contains(file.as_str()), "{file} in {result}");
    }
    assert_eq!(desk.applications()[0]["status"], "issued");
}

#[test]
fn browser_cross_site_handover_keeps_the_session() {
    let test = "browser_cross_site_handover";
    let Some((env, mut desk)) = desk_on_sqlite(test, true) else {
        return;
    };
    let iin = fresh_iin();
    let token = desk.consent_token(&iin, &[]);
    // Digital ID on another site (localhost is not 127.0.0.1's site) POSTs the token.
    let digital_id = Site::start();
    let action = format!("{}/enroll", desk.base);
    digital_id.put("/consent", handover_page(&action, &token, "kk"));
    let b = &mut desk.browser;
    b.goto(&format!("{}/consent", digital_id.origin()));
    b.screenshot("digital-id-elsewhere");
    b.click_id("handover-go");
    desk.wait_enroll_page();
    let b = &mut desk.browser;
    assert_eq!(
        shown_section(b).as_deref(),
        Some("step-agreement"),
        "the session survived the cross-site POST and its redirect"
    );
    let cookie = b
        .cookie("tamga_enroll")
        .unwrap_or_else(|| panic!("the session cookie: {:?}", b.cookies()));
    assert_eq!(cookie["httpOnly"], true, "{cookie}");
    assert_eq!(cookie["sameSite"], "Lax", "{cookie}");
    assert_eq!(cookie["path"], "/enroll", "{cookie}");
    assert_eq!(cookie["secure"], false, "{cookie}");
    // The token is nowhere in the URL or the history.
    assert!(!b.url().contains(&token[..20]), "{}", b.url());
    desk.language("kk");
    let (folder, _) = desk.walk("kk", None, "rsa2048", "elsewhere");
    check_containers(
        desk.scratch.path(),
        &folder,
        &iin,
        "rsa2048",
        env.dir(),
        &env.server.base,
        false,
    );
    let posts: Vec<_> = digital_id
        .seen()
        .into_iter()
        .filter(|s| s.method == "POST")
        .collect();
    assert!(
        posts.is_empty(),
        "the form went to the CA, not here: {posts:?}"
    );
}
