//! The WebDriver client itself, against Chromium on a static page of the test site: typing,
//! choosing, clicking, a script's work read back, a cookie, a screenshot, and a wait that
//! gives up with the page's state.

use super::site::{Page, Site};
use super::webdriver::{browser_available, Browser, Options, WAIT};

#[test]
fn browser_webdriver_client_drives_chromium_on_a_static_page() {
    let test = "browser_webdriver_client";
    if !browser_available(test) {
        return;
    }
    let site = Site::start();
    site.put(
        "/",
        Page::html(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>probe</title>\
             <script src=\"/page.js\" defer></script></head><body>\
             <section id=\"step-one\"><label for=\"name\">Name</label><input id=\"name\">\
             <label for=\"kind\">Kind</label><select id=\"kind\"><option value=\"a\">A</option>\
             <option value=\"b\">B</option><option value=\"c\" disabled>C</option></select>\
             <label for=\"agree\">Agree</label><input type=\"checkbox\" id=\"agree\">\
             <button id=\"go\" type=\"button\">Go</button></section>\
             <section id=\"step-two\" hidden><p id=\"out\" data-status=\"\"></p></section>\
             <p id=\"message\" data-code=\"\"></p></body></html>",
        ),
    );
    site.put(
        "/page.js",
        Page::script(
            "document.cookie = 'probe=1; path=/';\n\
             document.getElementById('go').addEventListener('click', function () {\n\
               var out = document.getElementById('out');\n\
               out.textContent = document.getElementById('name').value + '/' +\n\
                 document.getElementById('kind').value + '/' +\n\
                 document.getElementById('agree').checked;\n\
               out.dataset.status = 'done';\n\
               document.getElementById('step-one').hidden = true;\n\
               document.getElementById('step-two').hidden = false;\n\
             });\n",
        ),
    );
    let mut b = Browser::start(test, Options::default());
    b.goto(&format!("{}/", site.origin()));
    b.fill("name", "Әлия");
    b.select("kind", "b");
    super::set_checkbox(&mut b, "agree", true);
    let first = b.screenshot("filled");
    b.click_id("go");
    b.visible("step-two");
    assert_eq!(super::shown_section(&b).as_deref(), Some("step-two"));
    assert_eq!(b.text_of("out"), "Әлия/b/true");
    assert_eq!(
        b.attribute_of("out", "data-status").as_deref(),
        Some("done")
    );
    let disabled = b.css("[id=\"kind\"] option[value=\"c\"]");
    assert_eq!(b.property(&disabled, "disabled"), "true");
    assert_eq!(b.execute("return document.cookie", &[]), "probe=1");
    assert_eq!(b.cookie("probe").unwrap()["value"], "1");
    assert_eq!(
        b.execute("return arguments[0] + 1", &[serde_json::json!(41)]),
        42
    );
    assert!(!b.is_visible("step-one"));
    let png = std::fs::read(&first).unwrap();
    assert!(png.starts_with(b"\x89PNG"), "{}", first.display());
    assert!(first.starts_with(super::webdriver::screenshot_dir(test)));
    // A new tab shares the cookies.
    b.new_tab();
    b.goto(&format!("{}/", site.origin()));
    assert_eq!(b.cookie("probe").unwrap()["value"], "1");
    assert!(site.seen().iter().any(|s| s.path == "/page.js"));

    // A wait that fails says what it waited for, where, with a screenshot.
    let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        b.wait_until("something that never comes", WAIT / 30, |b| {
            b.is_visible("nowhere")
        });
    }));
    let why = failed.expect_err("the wait gives up");
    let why = why.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(why.contains("something that never comes"), "{why}");
    assert!(why.contains("failure.png"), "{why}");
    assert!(why.contains(&site.origin()), "{why}");
}
