//! The server side of the citizen's pages over HTTP (no browser): Digital ID's hand-over
//! (`POST /enroll`) and its cookie, the refusal pages in kk/ru/en, the session API, CSRF on
//! the submission, the security headers of every page, a session opened on one instance and
//! submitted through another (PostgreSQL), the Digital ID stand-in (dev mode only) and the
//! `Secure` cookie under TLS.

use reqwest::blocking::{Client, Response};
use serde_json::Value;

use crate::enroll::{body, csr, fresh_iin, Env};
use crate::support::{free_port, postgres_url, run, tamga, text, Server};

/// A client that does not follow redirects (the hand-over's 303 is what is tested).
pub(crate) fn no_redirects() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap()
}

/// POST the hand-over form to `base`.
fn hand_over(
    http: &Client,
    base: &str,
    fields: &[(&str, &str)],
    extra: &[(&str, &str)],
) -> Response {
    let mut req = http.post(format!("{base}/enroll")).form(fields);
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    req.send().unwrap()
}

/// The `tamga_enroll` cookie's value and its whole `Set-Cookie` line.
fn session_cookie(resp: &Response) -> (String, String) {
    let line = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|l| l.starts_with("tamga_enroll="))
        .expect("a tamga_enroll cookie");
    let value = line
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("tamga_enroll=")
        .to_owned();
    (value, line)
}

/// A successful hand-over of `token` to `base`: its session cookie.
pub(crate) fn open_session(http: &Client, base: &str, token: &str) -> String {
    let resp = hand_over(http, base, &[("consent_token", token)], &[]);
    assert_eq!(resp.status(), 303, "{}", resp.text().unwrap_or_default());
    session_cookie(&resp).0
}

/// The security headers every page and page API carries.
fn assert_secured(resp: &Response, what: &str) {
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_else(|| panic!("{what}: no {name}"))
    };
    let csp = header("content-security-policy");
    assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
    assert!(!csp.contains("unsafe-eval"), "{what}: {csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
    assert!(csp.contains("script-src 'self'"), "{what}: {csp}");
    assert!(
        csp.contains("connect-src 'self' http://127.0.0.1:13580 http://localhost:13580"),
        "{what}: {csp}"
    );
    assert_eq!(header("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(header("referrer-policy"), "no-referrer", "{what}");
    assert!(resp.headers().contains_key("cache-control"), "{what}");
}

/// An HTML refusal page: its status, language and code.
fn assert_refusal_page(resp: Response, status: u16, lang: &str, code: &str) -> String {
    assert_eq!(resp.status().as_u16(), status);
    assert_secured(&resp, code);
    let content_type = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let page = resp.text().unwrap();
    assert!(!page.trim_start().starts_with('{'), "never JSON: {page}");
    assert!(page.contains(&format!("lang=\"{lang}\"")), "{page}");
    assert!(page.contains("id=\"error\""), "{page}");
    assert!(page.contains(&format!("data-code=\"{code}\"")), "{page}");
    assert!(page.contains("id=\"back-to-digital-id\""), "{page}");
    assert!(page.contains("href=\"/dev/digital-id\""), "{page}");
    page
}

/// The problem code of a JSON refusal.
fn problem(resp: Response, status: u16) -> String {
    assert_eq!(resp.status().as_u16(), status);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "application/problem+json"
    );
    let doc: Value = resp.json().unwrap();
    doc["code"].as_str().unwrap().to_owned()
}

pub(crate) fn get_session(http: &Client, base: &str, cookie: Option<&str>) -> Response {
    let mut req = http.get(format!("{base}/enroll/api/session"));
    if let Some(c) = cookie {
        req = req.header("cookie", format!("tamga_lang=ru; tamga_enroll={c}"));
    }
    req.send().unwrap()
}

pub(crate) fn submit(
    http: &Client,
    base: &str,
    cookie: &str,
    csrf: Option<&str>,
    origin: Option<&str>,
    application: &Value,
) -> Response {
    let mut req = http
        .post(format!("{base}/enroll/api/applications"))
        .header("cookie", format!("tamga_enroll={cookie}"))
        .json(application);
    if let Some(t) = csrf {
        req = req.header("x-csrf-token", t);
    }
    if let Some(o) = origin {
        req = req.header("origin", o);
    }
    req.send().unwrap()
}

/// A fresh application body with two new keys.
fn application(env_dir: &std::path::Path) -> Value {
    let (a, _) = csr(env_dir, "rsa:2048", &[]);
    let (s, _) = csr(env_dir, "ec", &[]);
    body(&a, &s, None)
}

#[test]
fn pages_hand_over_opens_a_session_and_the_submission_needs_its_csrf_token() {
    let env = Env::sqlite();
    let base = env.server.base.clone();
    let http = no_redirects();
    let iin = fresh_iin();
    let token = env.cli_token(&iin, &[]);

    let resp = hand_over(
        &http,
        &base,
        &[("consent_token", &token), ("lang", "ru")],
        &[],
    );
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/enroll");
    assert_secured(&resp, "POST /enroll");
    let (cookie, line) = session_cookie(&resp);
    assert_eq!(cookie.len(), 43, "{line}");
    assert!(cookie
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    let attributes: Vec<&str> = line.split("; ").skip(1).collect();
    assert!(attributes.contains(&"HttpOnly"), "{line}");
    assert!(attributes.contains(&"SameSite=Lax"), "{line}");
    assert!(attributes.contains(&"Path=/enroll"), "{line}");
    assert!(!attributes.contains(&"Secure"), "plain HTTP: {line}");
    let max_age: i64 = attributes
        .iter()
        .find_map(|a| a.strip_prefix("Max-Age="))
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (250..=300).contains(&max_age),
        "as long as the token: {line}"
    );
    // The language Digital ID's page was in: the pages open in it.
    let lang_line = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|l| l.starts_with("tamga_lang="))
        .expect("a tamga_lang cookie");
    assert_eq!(lang_line, "tamga_lang=ru; Path=/; SameSite=Lax");

    // The session API.
    let resp = get_session(&http, &base, Some(&cookie));
    assert_eq!(resp.status(), 200);
    assert_secured(&resp, "GET /enroll/api/session");
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let session: Value = resp.json().unwrap();
    assert_eq!(session["agreement_version"], "2026-1");
    assert_eq!(session["application_id"], Value::Null);
    assert_eq!(session["identity"]["surname"], "ӘБІЛҚАСЫМОВА");
    assert_eq!(session["identity"]["name"], "АЙГҮЛ");
    assert!(session["expires_at"].as_str().unwrap().ends_with('Z'));
    let csrf = session["csrf_token"].as_str().unwrap().to_owned();
    assert_eq!(csrf.len(), 43);
    let no_cookie = get_session(&http, &base, None);
    assert_secured(&no_cookie, "session refused");
    assert_eq!(problem(no_cookie, 401), "session_invalid");
    assert_eq!(
        problem(get_session(&http, &base, Some("forged")), 401),
        "session_invalid"
    );

    // Writes without the CSRF token, with a wrong one, or from another origin: refused, and
    // nothing written (the token is still unused).
    let before = env.counts();
    let app = application(env.dir());
    let own = base.as_str();
    for (csrf_sent, origin, why) in [
        (None, Some(own), "no X-CSRF-Token"),
        (Some("A".repeat(43)), Some(own), "a wrong X-CSRF-Token"),
        (
            Some(csrf.clone()),
            Some("http://evil.example"),
            "a foreign Origin",
        ),
        (Some(csrf.clone()), Some("null"), "an opaque Origin"),
    ] {
        let resp = submit(&http, &base, &cookie, csrf_sent.as_deref(), origin, &app);
        assert_secured(&resp, why);
        assert_eq!(problem(resp, 403), "csrf_invalid", "{why}");
    }
    let after = env.counts();
    assert_eq!(after.applications, before.applications);
    assert_eq!(after.used_consent_tokens, before.used_consent_tokens);
    // No session at all: session_invalid.
    assert_eq!(
        problem(submit(&http, &base, "forged", Some(&csrf), None, &app), 401),
        "session_invalid"
    );
    // A body that is not JSON: refused before it is read as one.
    let resp = http
        .post(format!("{base}/enroll/api/applications"))
        .header("cookie", format!("tamga_enroll={cookie}"))
        .header("x-csrf-token", &csrf)
        .header("content-type", "text/plain")
        .body(app.to_string())
        .send()
        .unwrap();
    assert_eq!(problem(resp, 400), "request_malformed");
    // A hardware storage type: the agent keeps its keys in files, and a file key never gets a
    // hardware certificate's three years.
    let mut hardware = app.clone();
    hardware["storage"] = serde_json::json!("kaztoken");
    assert_eq!(
        problem(
            submit(&http, &base, &cookie, Some(&csrf), None, &hardware),
            422
        ),
        "storage_type_invalid"
    );
    let after = env.counts();
    assert_eq!(after.applications, before.applications);
    assert_eq!(after.used_consent_tokens, before.used_consent_tokens);

    // With the header and the server's own origin: the application, under the session's token.
    let resp = submit(&http, &base, &cookie, Some(&csrf), Some(own), &app);
    assert_eq!(resp.status(), 201);
    assert_secured(&resp, "POST /enroll/api/applications");
    let created: Value = resp.json().unwrap();
    assert_eq!(created["status"], "issued", "{created}");
    assert_eq!(created["certificates"].as_array().unwrap().len(), 2);
    let id = created["id"].as_str().unwrap();
    let access = created["access_token"].as_str().unwrap();
    assert_eq!(
        env.counts().used_consent_tokens,
        before.used_consent_tokens + 1
    );
    // The session records it; the page reads the application with its access token.
    let session: Value = get_session(&http, &base, Some(&cookie)).json().unwrap();
    assert_eq!(session["application_id"], id);
    let resp = http
        .get(format!("{base}/enroll/api/applications/{id}"))
        .bearer_auth(access)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_secured(&resp, "GET /enroll/api/applications/{id}");
    let shown: Value = resp.json().unwrap();
    assert_eq!(shown["status"], "issued");
    // The same request again (a lost answer): the same application; another: replayed.
    let resp = submit(&http, &base, &cookie, Some(&csrf), None, &app);
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().unwrap()["id"], id);
    let other = application(env.dir());
    assert_eq!(
        problem(
            submit(&http, &base, &cookie, Some(&csrf), None, &other),
            409
        ),
        "consent_token_replayed"
    );
    assert_eq!(env.counts().applications, before.applications + 1);

    // The used token handed over again: a page, in the language asked for.
    let replayed = hand_over(
        &http,
        &base,
        &[("consent_token", &token), ("lang", "en")],
        &[],
    );
    assert!(replayed.headers().get("set-cookie").is_none());
    assert_refusal_page(replayed, 409, "en", "consent_token_replayed");
}

#[test]
fn pages_refuse_bad_and_expired_tokens_with_a_page_in_the_citizens_language() {
    let env = Env::sqlite();
    let base = env.server.base.clone();
    let http = no_redirects();
    let iin = fresh_iin();
    // `--issued-ago` makes an expired token without waiting.
    let expired = env.cli_token(&iin, &["--ttl", "300", "--issued-ago", "400"]);
    let page = assert_refusal_page(
        hand_over(
            &http,
            &base,
            &[("consent_token", &expired), ("lang", "kk")],
            &[],
        ),
        401,
        "kk",
        "consent_token_expired",
    );
    assert!(!page.contains(&expired), "the token is never echoed");
    // The language: the form's, else the tamga_lang cookie, else Accept-Language, else kk.
    assert_refusal_page(
        hand_over(
            &http,
            &base,
            &[("consent_token", "junk")],
            &[("cookie", "tamga_lang=ru")],
        ),
        401,
        "ru",
        "consent_token_malformed",
    );
    assert_refusal_page(
        hand_over(
            &http,
            &base,
            &[("consent_token", "junk")],
            &[("accept-language", "de, en;q=0.8, ru;q=0.5")],
        ),
        401,
        "en",
        "consent_token_malformed",
    );
    assert_refusal_page(
        hand_over(&http, &base, &[("lang", "xx")], &[]),
        401,
        "kk",
        "consent_token_missing",
    );
    // A token for another purpose.
    let revocation = env.cli_token(&iin, &["--purpose", "eds_revocation"]);
    assert_refusal_page(
        hand_over(
            &http,
            &base,
            &[("consent_token", &revocation), ("lang", "ru")],
            &[],
        ),
        403,
        "ru",
        "consent_token_wrong_purpose",
    );
    assert_eq!(env.counts().applications, 0);
    assert_eq!(env.counts().used_consent_tokens, 0);
}

#[test]
fn pages_every_page_carries_the_security_headers() {
    let env = Env::sqlite();
    let base = env.server.base.clone();
    let http = no_redirects();
    for (path, status, content_type) in [
        ("/enroll", 200, "text/html"),
        ("/enroll/resume?application=abc", 200, "text/html"),
        ("/enroll/assets/enroll.js", 200, "text/javascript"),
        ("/enroll/assets/enroll.css", 200, "text/css"),
        ("/enroll/assets/handover.js", 200, "text/javascript"),
        ("/enroll/assets/i18n/kk.json", 200, "application/json"),
        ("/enroll/assets/i18n/ru.json", 200, "application/json"),
        ("/enroll/assets/i18n/en.json", 200, "application/json"),
        ("/enroll/agreement/2026-1/kk", 200, "text/plain"),
        ("/enroll/agreement/2026-1/en", 200, "text/plain"),
        (
            "/enroll/agreement/1999-1/en",
            404,
            "application/problem+json",
        ),
        (
            "/enroll/agreement/2026-1/de",
            404,
            "application/problem+json",
        ),
        ("/enroll/assets/nothing.js", 404, "application/problem+json"),
        (
            "/enroll/assets/enroll.html",
            404,
            "application/problem+json",
        ),
        (
            "/enroll/assets/i18n%2F..%2F..%2Fenroll.js",
            404,
            "application/problem+json",
        ),
        ("/dev/digital-id", 200, "text/html"),
    ] {
        let resp = http.get(format!("{base}{path}")).send().unwrap();
        assert_eq!(resp.status().as_u16(), status, "{path}");
        assert_secured(&resp, path);
        let ct = resp.headers()["content-type"].to_str().unwrap();
        assert!(ct.starts_with(content_type), "{path}: {ct}");
        let cache = resp.headers()["cache-control"].to_str().unwrap();
        if path.starts_with("/enroll/assets/") && status == 200 {
            assert_eq!(cache, "public, max-age=300", "{path}");
        } else {
            assert_eq!(cache, "no-store", "{path}");
        }
    }
    // The shell is filled, its values escaped.
    let page = http
        .get(format!("{base}/enroll/resume?application=%3Cb%3E%22x"))
        .header("accept-language", "ru")
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(page.contains("data-mode=\"resume\""), "{page}");
    assert!(
        page.contains("data-application=\"&lt;b&gt;&quot;x\""),
        "{page}"
    );
    assert!(
        page.contains("data-agent-url=\"http://127.0.0.1:13580\""),
        "{page}"
    );
    assert!(page.contains("data-lang=\"ru\""), "{page}");
    assert!(!page.contains("{{"), "{page}");
    let page = http
        .get(format!("{base}/enroll"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(page.contains("data-mode=\"enroll\""), "{page}");
    assert!(page.contains("data-lang=\"kk\""), "{page}");
}

/// The token inside the stand-in's hand-over page (a JWS: it starts with `eyJ`).
fn handed_token(page: &str) -> String {
    let start = page.find("eyJ").expect("a token in the hand-over page");
    page[start..]
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'))
        .next()
        .unwrap()
        .to_owned()
}

#[test]
fn pages_digital_id_stand_in_mints_a_token_that_the_hand_over_takes() {
    let env = Env::sqlite();
    let base = env.server.base.clone();
    let http = no_redirects();
    let iin = fresh_iin();
    let resp = http
        .post(format!("{base}/dev/digital-id"))
        .form(&[
            ("iin", iin.as_str()),
            ("surname", "ТЕСТОВА"),
            ("name", "ӘСЕЛ"),
            ("patronymic", ""),
            ("register_match", "on"),
            ("lang", "ru"),
        ])
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_secured(&resp, "POST /dev/digital-id");
    let page = resp.text().unwrap();
    assert!(page.contains("id=\"handover\""), "{page}");
    assert!(page.contains("action=\"/enroll\""), "{page}");
    assert!(page.contains("lang=\"ru\""), "{page}");
    let token = handed_token(&page);
    let cookie = open_session(&http, &base, &token);
    let session: Value = get_session(&http, &base, Some(&cookie)).json().unwrap();
    assert_eq!(session["identity"]["surname"], "ТЕСТОВА");
    // Without liveness the application waits for an operator.
    let csrf = session["csrf_token"].as_str().unwrap();
    let resp = submit(
        &http,
        &base,
        &cookie,
        Some(csrf),
        None,
        &application(env.dir()),
    );
    assert_eq!(resp.status(), 201);
    assert_eq!(resp.json::<Value>().unwrap()["status"], "pending_review");

    // Bad input: the form again, with the message.
    for fields in [
        vec![("iin", "123"), ("surname", "A"), ("name", "B")],
        vec![("iin", iin.as_str()), ("surname", ""), ("name", "B")],
        vec![
            ("iin", iin.as_str()),
            ("surname", "A"),
            ("name", "B"),
            ("birth_date", "1990-13-40"),
        ],
    ] {
        let resp = http
            .post(format!("{base}/dev/digital-id"))
            .form(&fields)
            .send()
            .unwrap();
        assert_eq!(resp.status(), 422, "{fields:?}");
        let page = resp.text().unwrap();
        assert!(page.contains("id=\"iin\""), "{page}");
        assert!(!page.contains("eyJ"), "{page}");
    }
}

#[test]
fn pages_digital_id_stand_in_is_absent_outside_dev_mode() {
    // A server in production mode: the development hierarchy's certificates without its root
    // key or its marker.
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let root_machine = tempfile::tempdir().unwrap();
    let out = run(tamga(root_machine.path())
        .args(["ca", "init", "--dev"])
        .env("TAMGA_SERVER__PUBLIC_URL", &base));
    assert!(out.status.success(), "{}", text(&out));
    let server_machine = tempfile::tempdir().unwrap();
    let dir = server_machine.path();
    crate::support::production_hierarchy(root_machine.path(), dir);
    let log = dir.join("server.log");
    let mut server = Server::spawn_logged(dir, port, &crate::support::PRODUCTION, &log);
    server.wait_ready();
    let http = no_redirects();
    for method in ["GET", "POST"] {
        let req = http.request(method.parse().unwrap(), format!("{base}/dev/digital-id"));
        let req = if method == "POST" {
            req.form(&[
                ("iin", fresh_iin().as_str()),
                ("surname", "A"),
                ("name", "B"),
            ])
        } else {
            req
        };
        assert_eq!(problem(req.send().unwrap(), 404), "not_found", "{method}");
    }
    // The pages themselves are there.
    assert_eq!(
        http.get(format!("{base}/enroll")).send().unwrap().status(),
        200
    );
}

#[test]
fn pages_session_opened_on_one_instance_is_submitted_through_another_on_postgres() {
    let Some(admin) = postgres_url(
        "pages_session_opened_on_one_instance_is_submitted_through_another_on_postgres",
    ) else {
        return;
    };
    let env = Env::postgres(&admin);
    let (_dir2, second) = env.second_instance(&[]);
    let http = no_redirects();
    let iin = fresh_iin();
    let token = env.cli_token(&iin, &[]);
    let cookie = open_session(&http, &env.server.base, &token);
    // The second instance knows the session and takes the submission.
    let session: Value = get_session(&http, &second.base, Some(&cookie))
        .json()
        .unwrap();
    let csrf = session["csrf_token"].as_str().unwrap();
    let resp = submit(
        &http,
        &second.base,
        &cookie,
        Some(csrf),
        Some(&second.base),
        &application(env.dir()),
    );
    assert_eq!(resp.status(), 201);
    let created: Value = resp.json().unwrap();
    // The first instance sees the application on the session, and refuses the used token.
    let session: Value = get_session(&http, &env.server.base, Some(&cookie))
        .json()
        .unwrap();
    assert_eq!(session["application_id"], created["id"]);
    assert_refusal_page(
        hand_over(
            &http,
            &env.server.base,
            &[("consent_token", &token), ("lang", "kk")],
            &[],
        ),
        409,
        "kk",
        "consent_token_replayed",
    );
    assert_eq!(env.counts().applications, 1);
}

#[test]
fn pages_cookie_is_secure_under_tls() {
    let (_tmp, pki, work) = crate::tls::pki_and_workdir();
    let server = pki.server(&work, false, &[]);
    let ca = std::fs::read(pki.dir.join("server-ca.pem")).unwrap();
    let http = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .build()
        .unwrap();
    let out = run(tamga(&work).args([
        "dev",
        "consent-token",
        "--iin",
        &fresh_iin(),
        "--surname",
        "ТЕСТОВ",
        "--name",
        "ТЕСТ",
    ]));
    assert!(out.status.success(), "{}", text(&out));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let resp = hand_over(&http, &server.base, &[("consent_token", &token)], &[]);
    assert_eq!(resp.status(), 303);
    let (cookie, line) = session_cookie(&resp);
    assert!(line.split("; ").any(|a| a == "Secure"), "{line}");
    let session = get_session(&http, &server.base, Some(&cookie));
    assert_eq!(session.status(), 200);
}

#[test]
fn pages_follow_the_configured_agent_port_and_digital_id_url() {
    let env = Env::sqlite_with(&[
        ("TAMGA_PAGES__AGENT_PORT", "13999"),
        ("TAMGA_PAGES__DIGITAL_ID_URL", "https://idp.example/consent"),
    ]);
    let http = no_redirects();
    let resp = http
        .get(format!("{}/enroll", env.server.base))
        .send()
        .unwrap();
    let csp = resp.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("connect-src 'self' http://127.0.0.1:13999 http://localhost:13999;"),
        "{csp}"
    );
    let page = resp.text().unwrap();
    assert!(
        page.contains("data-agent-url=\"http://127.0.0.1:13999\""),
        "{page}"
    );
    assert!(
        page.contains("data-digital-id-url=\"https://idp.example/consent\""),
        "{page}"
    );
    let refused = hand_over(&http, &env.server.base, &[("consent_token", "junk")], &[]);
    let page = refused.text().unwrap();
    assert!(
        page.contains("href=\"https://idp.example/consent\""),
        "{page}"
    );
}
