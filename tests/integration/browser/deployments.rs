//! The journey as deployed: over HTTPS (`[server.tls]`), where the session cookie is
//! `Secure`; and on two instances behind one PostgreSQL, the session opened on one and the
//! application submitted on the other.

use super::webdriver::{browser_available, Options};
use super::{agent_port, check_containers, fresh_iin, shown_section, Desk};
use crate::enroll::Env;
use crate::support::postgres_url;
use crate::tls::pki_and_workdir;

#[test]
fn browser_journey_over_https_with_a_secure_cookie() {
    let test = "browser_https";
    if !browser_available(test) {
        return;
    }
    let port = agent_port();
    let (_tmp, pki, work) = pki_and_workdir();
    let server = pki.server(
        &work,
        false,
        &[("TAMGA_PAGES__AGENT_PORT", &port.to_string())],
    );
    assert!(server.base.starts_with("https://"), "{}", server.base);
    let options = Options {
        ignore_certificate_errors: true,
    };
    let mut desk = Desk::new(test, &server.base, &work, port, options);
    desk.start_agent(&[]);
    let iin = fresh_iin();
    desk.digital_id(&iin, true);
    let b = &mut desk.browser;
    assert!(b.url().starts_with("https://"), "{}", b.url());
    let cookie = b
        .cookie("tamga_enroll")
        .unwrap_or_else(|| panic!("the session cookie: {:?}", b.cookies()));
    assert_eq!(cookie["secure"], true, "{cookie}");
    assert_eq!(cookie["httpOnly"], true, "{cookie}");
    assert_eq!(cookie["sameSite"], "Lax", "{cookie}");
    desk.language("kk");
    let (folder, result) = desk.walk("kk", None, "rsa2048", "https");
    let files = check_containers(
        desk.scratch.path(),
        &folder,
        &iin,
        "rsa2048",
        &work,
        &server.base,
        false,
    );
    for file in &files {
        assert!(result.contains(file.as_str()), "{file} in {result}");
    }
}

#[test]
fn browser_session_on_one_instance_submitted_on_another_postgres() {
    let test = "browser_two_instances_postgres";
    if !browser_available(test) {
        return;
    }
    let Some(admin) = postgres_url(test) else {
        return;
    };
    let port = agent_port();
    let agent_port_env = port.to_string();
    let env_vars = [("TAMGA_PAGES__AGENT_PORT", agent_port_env.as_str())];
    let a = Env::postgres_with(&admin, &env_vars);
    let (_b_dir, b) = a.second_instance(&env_vars);
    let mut desk = Desk::new(test, &a.server.base, a.dir(), port, Options::default());
    desk.cli_env = vec![(
        "TAMGA_DATABASE__URL".to_owned(),
        a.db.as_ref().unwrap().url.clone(),
    )];
    desk.start_agent(&[&a.server.base, &b.base]);

    // The hand-over at A opens the session there.
    let iin = fresh_iin();
    desk.digital_id(&iin, true);
    assert!(desk.browser.url().starts_with(&a.server.base));
    assert_eq!(
        shown_section(&desk.browser).as_deref(),
        Some("step-agreement")
    );
    // A cookie belongs to a host and a path, not a port: B's page gets it too, and B finds
    // the session A wrote.
    desk.base = b.base.clone();
    desk.browser.goto(&format!("{}/enroll", b.base));
    desk.wait_enroll_page();
    assert_eq!(
        shown_section(&desk.browser).as_deref(),
        Some("step-agreement"),
        "B knows the session opened on A"
    );
    desk.language("kk");
    let (folder, _) = desk.walk("kk", None, "rsa2048", "two-instances");
    check_containers(
        desk.scratch.path(),
        &folder,
        &iin,
        "rsa2048",
        a.dir(),
        &b.base,
        true,
    );
    let apps = desk.applications();
    assert_eq!(apps.len(), 1, "{apps:?}");
    assert_eq!(apps[0]["status"], "issued");
}
