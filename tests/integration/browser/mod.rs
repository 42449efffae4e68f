//! The citizen's journey in a real browser: Debian's Chromium driven through `chromedriver`
//! (W3C WebDriver, `webdriver`) against `tamga serve` and `tamga-enroll agent`, using only the
//! routes and element ids of `docs/citizen-pages.md`. Every step leaves a screenshot under
//! `target/browser-screenshots/<test>/`. Without Chromium or chromedriver the tests report
//! themselves skipped, except where `TAMGA_TEST_REQUIRE_BROWSER` is set (CI).
//!
//! `journey`: the whole journey in Kazakh (RSA) and in Russian (EC, e-mail), the pending
//! path resumed after an operator's approval, the hand-over POSTed from another site.
//! `refusals`: expired and replayed tokens, a password breaking the policy, the agent not
//! running, a foreign page calling the agent. `deployments`: HTTPS with `Secure` cookies, and
//! two instances on one PostgreSQL.

mod client_check;
pub mod site;
pub mod webdriver;

use webdriver::Browser;

/// Check or uncheck the checkbox `id`.
pub fn set_checkbox(b: &mut Browser, id: &str, checked: bool) {
    let element = b.visible(id);
    if (b.property(&element, "checked") == "true") != checked {
        b.click(&element);
    }
    assert_eq!(b.property(&element, "checked") == "true", checked, "#{id}");
}

/// The id of the section shown, if any.
pub fn shown_section(b: &Browser) -> Option<String> {
    b.all_css("section[id^=\"step-\"]")
        .iter()
        .find(|s| b.displayed(s))
        .and_then(|s| b.attribute(s, "id"))
}
