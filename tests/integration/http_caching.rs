//! HTTP caching of what relying parties fetch: `304 Not Modified` to `If-None-Match` and
//! `If-Modified-Since` on OCSP GET and on every kind of CRL (and `200` once the answer or the
//! CRL changed); OCSP at a base URL written with a trailing slash, a POST without
//! `Content-Type`, and an `unknown` answer's short nextUpdate until the serial is issued.

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine;
use der::Decode;
use reqwest::blocking::Response;
use x509_ocsp::{BasicOcspResponse, OcspResponse, OcspResponseStatus};

use crate::enroll::Env;
use crate::ocsp::{enroll, ocsp};
use crate::support::{client, run, tamga, text, Server};

/// GET (or HEAD) `path` with extra request headers.
fn request(server: &Server, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut req = client().request(method.parse().unwrap(), format!("{}{path}", server.base));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    req.send().unwrap()
}

fn header(resp: &Response, name: &str) -> String {
    resp.headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} in {:?}", resp.headers()))
        .to_str()
        .unwrap()
        .to_owned()
}

/// An HTTP date `secs` seconds from the HTTP date `date`.
fn shifted(date: &str, secs: i64) -> String {
    let t = chrono::DateTime::parse_from_rfc2822(date).unwrap() + chrono::Duration::seconds(secs);
    t.with_timezone(&chrono::Utc)
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

/// What a cacheable resource at `path` answers to conditional requests: `304` with the 200's
/// `ETag`, `Last-Modified`, `Expires` and `Cache-Control` and no body when the client holds
/// the current representation, else `200` with it. Returns its ETag and Last-Modified.
fn assert_conditional(server: &Server, path: &str) -> (String, String) {
    let first = request(server, "GET", path, &[]);
    assert_eq!(first.status(), 200, "{path}");
    let etag = header(&first, "etag");
    let modified = header(&first, "last-modified");
    let expires = header(&first, "expires");
    let cache_control = header(&first, "cache-control");
    assert!(
        cache_control.contains("max-age=") && cache_control.contains("public"),
        "{path}: {cache_control}"
    );
    let body = first.bytes().unwrap().to_vec();
    assert!(!body.is_empty());
    let weak = format!("W/{etag}");
    let listed = format!("\"elsewhere\", {etag}");
    let later = shifted(&modified, 1);
    let earlier = shifted(&modified, -1);
    let future = shifted(&modified, 86_400);
    // A representation made this very second: `later` would be ahead of the server's clock,
    // which ignores such a date. Wait until it is past.
    let later_at = chrono::DateTime::parse_from_rfc2822(&later).unwrap();
    while chrono::Utc::now() <= later_at {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    for (headers, want) in [
        (vec![("If-None-Match", etag.as_str())], 304),
        (vec![("If-None-Match", weak.as_str())], 304),
        (vec![("If-None-Match", listed.as_str())], 304),
        (vec![("If-None-Match", "*")], 304),
        (vec![("If-None-Match", "\"elsewhere\"")], 200),
        (vec![("If-Modified-Since", modified.as_str())], 304),
        (vec![("If-Modified-Since", later.as_str())], 304),
        (vec![("If-Modified-Since", earlier.as_str())], 200),
        // Later than the server's clock, or not a date: ignored.
        (vec![("If-Modified-Since", future.as_str())], 200),
        (vec![("If-Modified-Since", "yesterday")], 200),
        // If-None-Match decides when present, whatever the date says.
        (
            vec![
                ("If-None-Match", "\"elsewhere\""),
                ("If-Modified-Since", modified.as_str()),
            ],
            200,
        ),
        (
            vec![
                ("If-None-Match", etag.as_str()),
                ("If-Modified-Since", earlier.as_str()),
            ],
            304,
        ),
    ] {
        for method in ["GET", "HEAD"] {
            let resp = request(server, method, path, &headers);
            assert_eq!(resp.status(), want, "{method} {path} {headers:?}");
            assert_eq!(header(&resp, "etag"), etag, "{method} {path} {headers:?}");
            assert_eq!(header(&resp, "last-modified"), modified);
            assert_eq!(header(&resp, "expires"), expires);
            assert!(header(&resp, "cache-control").contains("public"));
            let got = resp.bytes().unwrap();
            if want == 304 || method == "HEAD" {
                assert!(got.is_empty(), "{method} {path} {headers:?}: a body");
            } else {
                assert_eq!(got.to_vec(), body, "{path} {headers:?}");
            }
        }
    }
    (etag, modified)
}

fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{what} did not happen within 20 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// thisUpdate and nextUpdate (Unix seconds) and the status of the one SingleResponse in a
/// DER OCSPResponse.
fn single_response(der: &[u8]) -> (u64, u64, String) {
    let response = OcspResponse::from_der(der).unwrap();
    assert_eq!(response.response_status, OcspResponseStatus::Successful);
    let basic =
        BasicOcspResponse::from_der(response.response_bytes.unwrap().response.as_bytes()).unwrap();
    let [single] = &basic.tbs_response_data.responses[..] else {
        panic!("one SingleResponse");
    };
    let status = match single.cert_status {
        x509_ocsp::CertStatus::Good(_) => "good",
        x509_ocsp::CertStatus::Revoked(_) => "revoked",
        x509_ocsp::CertStatus::Unknown(_) => "unknown",
    };
    (
        single.this_update.0.to_unix_duration().as_secs(),
        single.next_update.unwrap().0.to_unix_duration().as_secs(),
        status.to_owned(),
    )
}

/// The responseStatus of a DER OCSPResponse.
fn response_status(der: &[u8]) -> OcspResponseStatus {
    OcspResponse::from_der(der).unwrap().response_status
}

/// `path` of a file in `dir`, as base64 (raw) and percent-encoded base64.
fn get_forms(dir: &Path, file: &str) -> (String, String) {
    let req = std::fs::read(dir.join(file)).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&req);
    let encoded = b64
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D");
    (b64, encoded)
}

/// `max-age` of a Cache-Control value.
fn max_age(cache_control: &str) -> i64 {
    cache_control
        .split(',')
        .find_map(|d| d.trim().strip_prefix("max-age="))
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn ocsp_get_is_conditional_takes_a_trailing_slash_base_url_and_unknown_is_short_lived() {
    let env = Env::sqlite_with(&[("TAMGA_OCSP__UNKNOWN_VALIDITY", "2m")]);
    let dir = env.dir().to_path_buf();
    let base = env.server.base.clone();
    let (iin, _, sign_serial) = enroll(&env);
    let sign = format!("sign-{iin}.pem");

    // A pre-signed answer over GET: 304 to both conditional headers.
    ocsp(
        &dir,
        &base,
        &["-cert", &sign, "-no_nonce", "-reqout", "sign-req.der"],
    );
    let (b64, encoded) = get_forms(&dir, "sign-req.der");
    let path = format!("/ocsp/{encoded}");
    let (etag, modified) = assert_conditional(&env.server, &path);
    let good = request(&env.server, "GET", &path, &[]).bytes().unwrap();
    assert_eq!(single_response(&good).2, "good");

    // A base URL written with a trailing slash: `GET /ocsp//{request}` (raw and
    // percent-encoded) and `POST /ocsp/` give the same pre-signed answer.
    for form in [&b64, &encoded] {
        let resp = request(&env.server, "GET", &format!("/ocsp//{form}"), &[]);
        assert_eq!(resp.status(), 200);
        assert_eq!(header(&resp, "etag"), etag);
        assert_eq!(resp.bytes().unwrap(), good);
        let resp = request(
            &env.server,
            "GET",
            &format!("/ocsp//{form}"),
            &[("If-None-Match", etag.as_str())],
        );
        assert_eq!(resp.status(), 304);
    }
    let req = std::fs::read(dir.join("sign-req.der")).unwrap();
    let post = |path: &str, content_type: Option<&str>| {
        let mut r = client().post(format!("{base}{path}")).body(req.clone());
        if let Some(t) = content_type {
            r = r.header("Content-Type", t);
        }
        let resp = r.send().unwrap();
        assert_eq!(resp.status(), 200, "POST {path} {content_type:?}");
        assert_eq!(header(&resp, "content-type"), "application/ocsp-response");
        (header(&resp, "cache-control"), resp.bytes().unwrap())
    };
    for path in ["/ocsp", "/ocsp/"] {
        // With the media type, and without any Content-Type: answered.
        for content_type in [Some("application/ocsp-request"), None] {
            let (cache_control, answer) = post(path, content_type);
            assert_eq!(answer, good, "POST {path} {content_type:?}");
            assert!(cache_control.contains("max-age="), "{cache_control}");
        }
        // Another declared type: malformedRequest, as before.
        let (_, answer) = post(path, Some("application/json"));
        assert_eq!(
            response_status(&answer),
            OcspResponseStatus::MalformedRequest
        );
    }
    // openssl's client at the trailing-slash URL (it POSTs to `/ocsp/`).
    let out = crate::support::run(crate::support::openssl_command().current_dir(&dir).args([
        "ocsp",
        "-issuer",
        "certs-dev/nca_rsa_dev.pem",
        "-VAfile",
        "certs-dev/ocsp_nca_rsa_dev.pem",
        "-url",
        &format!("{base}/ocsp/"),
        "-cert",
        &sign,
    ]));
    let shown = text(&out);
    assert!(
        shown.contains("Response verify OK") && shown.contains(&format!("{sign}: good")),
        "{shown}"
    );
    // The base URL alone, asked without a request: malformedRequest (status 1), not stored.
    let resp = request(&env.server, "GET", "/ocsp/", &[]);
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "cache-control"), "no-store");
    assert_eq!(
        resp.bytes().unwrap().as_ref(),
        [0x30, 0x03, 0x0a, 0x01, 0x01]
    );
    // Other methods at `/ocsp/`: 405 naming the ones it takes.
    let resp = request(&env.server, "DELETE", "/ocsp/", &[]);
    assert_eq!(resp.status(), 405);
    assert_eq!(header(&resp, "allow"), "GET, HEAD, POST");
    // … also when it carries a body, which no method but POST may bring to `/ocsp/`: the
    // method is what is wrong, not the body's size.
    for method in ["TRACE", "PUT"] {
        let resp = client()
            .request(method.parse().unwrap(), format!("{base}/ocsp/"))
            .header("Content-Type", "application/ocsp-request")
            .body(vec![0x30u8, 0x03, 0x02, 0x01, 0x01])
            .send()
            .unwrap();
        assert_eq!(resp.status(), 405, "{method}");
        assert_eq!(header(&resp, "allow"), "GET, HEAD, POST", "{method}");
    }

    // Nonce answers and error answers are not cacheable: never 304, always no-store.
    ocsp(&dir, &base, &["-cert", &sign, "-reqout", "nonce-req.der"]);
    let (_, nonce_encoded) = get_forms(&dir, "nonce-req.der");
    for junk_or_nonce in [format!("/ocsp/{nonce_encoded}"), "/ocsp/!!!".to_owned()] {
        let resp = request(
            &env.server,
            "GET",
            &junk_or_nonce,
            &[
                ("If-None-Match", "*"),
                ("If-Modified-Since", modified.as_str()),
            ],
        );
        assert_eq!(resp.status(), 200, "{junk_or_nonce}");
        assert_eq!(header(&resp, "cache-control"), "no-store");
        assert!(resp.headers().get("etag").is_none());
    }

    // Revoked: the answer changed, so the client's copy is not current any more.
    let resp = env.revoke_as_holder(&iin, &sign_serial, "keyCompromise");
    assert_eq!(resp.status(), 200, "{}", resp.text().unwrap());
    wait_until("the revocation on OCSP GET", || {
        let der = request(&env.server, "GET", &path, &[]).bytes().unwrap();
        single_response(&der).2 == "revoked"
    });
    for (name, value) in [("If-None-Match", &etag), ("If-Modified-Since", &modified)] {
        let resp = request(&env.server, "GET", &path, &[(name, value.as_str())]);
        assert_eq!(resp.status(), 200, "{name} after the revocation");
        assert_ne!(header(&resp, "etag"), etag);
        assert_eq!(single_response(&resp.bytes().unwrap()).2, "revoked");
    }

    // A serial reserved but not yet issued (the CA stores it before it signs): `unknown`, with
    // the short nextUpdate; the moment the issuance is committed: `good`.
    let issued = env
        .store
        .read(|tx| tx.list_certificates(Some(&iin), 10))
        .unwrap()
        .into_iter()
        .find(|c| c.status == tamga::store::CertificateStatus::Issued)
        .unwrap();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let serial = format!("7E{:030X}", nanos ^ (u128::from(std::process::id()) << 64));
    let reserved = tamga::store::Certificate {
        serial: serial.clone(),
        der: None,
        status: tamga::store::CertificateStatus::Reserved,
        issued_at: None,
        spki_sha256: format!("{:064x}", nanos),
        application_id: None,
        ..issued.clone()
    };
    env.store
        .write(|tx| tx.insert_certificate(&reserved))
        .unwrap();
    let ask = |file: &str| {
        let out = ocsp(
            &dir,
            &base,
            &[
                "-serial",
                &format!("0x{serial}"),
                "-no_nonce",
                "-reqout",
                "reserved-req.der",
                "-respout",
                file,
            ],
        );
        assert!(out.contains("Response verify OK"), "{out}");
        std::fs::read(dir.join(file)).unwrap()
    };
    let (this, next, status) = single_response(&ask("unknown.der"));
    assert_eq!(status, "unknown");
    assert_eq!(next - this, 120, "[ocsp] unknown_validity = 2m");
    let (_, reserved_path) = get_forms(&dir, "reserved-req.der");
    let resp = request(&env.server, "GET", &format!("/ocsp/{reserved_path}"), &[]);
    assert!(max_age(&header(&resp, "cache-control")) <= 120);
    assert_eq!(single_response(&resp.bytes().unwrap()).2, "unknown");

    let der = issued.der.clone().unwrap();
    let now = chrono::Utc::now().naive_utc();
    let marked = env
        .store
        .write(|tx| tx.mark_certificate_issued(&serial, &der, now))
        .unwrap();
    assert!(marked);
    let (this, next, status) = single_response(&ask("good.der"));
    assert_eq!(status, "good", "the first answer after the issuance");
    assert_eq!(next - this, 86_400, "[ocsp] validity");
}

/// The issuing CA's full and delta CRLs and the root's CRL: 304 to both conditional headers;
/// 200 once a newer CRL is published.
#[test]
fn crls_answer_304_to_both_conditional_headers_until_a_newer_one_is_published() {
    let crl_env = [
        ("TAMGA_CRL__FULL_INTERVAL", "30d"),
        ("TAMGA_CRL__VALIDITY", "31d"),
    ];
    let env = Env::sqlite_with(&crl_env);
    let paths = [
        "/crl/nca_rsa_dev.crl",
        "/crl/nca_rsa_dev-delta.crl",
        "/crl/root.crl",
    ];
    for path in paths {
        wait_until(&format!("{path} published"), || {
            env.server.get(path).status() == 200
        });
    }
    let mut held = Vec::new();
    for path in paths {
        held.push(assert_conditional(&env.server, path));
    }
    // Every CRL published from now on has a later thisUpdate than the ones held.
    std::thread::sleep(Duration::from_millis(1100));

    // A revocation: a new delta CRL within seconds; the operator publishes a full CRL; a
    // newer root CRL is imported.
    let (iin, _, sign_serial) = enroll(&env);
    let resp = env.revoke_as_holder(&iin, &sign_serial, "superseded");
    assert_eq!(resp.status(), 200, "{}", resp.text().unwrap());
    let out = run(tamga(env.dir()).args(["crl", "publish"]).envs(crl_env));
    assert!(out.status.success(), "{}", text(&out));
    let out = run(tamga(env.dir()).args(["ca", "root-crl", "--out", "next-root.crl"]));
    assert!(out.status.success(), "{}", text(&out));
    let out = run(tamga(env.dir()).args(["crl", "import", "next-root.crl"]));
    assert!(out.status.success(), "{}", text(&out));

    for (path, (etag, modified)) in paths.iter().zip(&held) {
        wait_until(&format!("a newer {path}"), || {
            header(&env.server.get(path), "etag") != *etag
        });
        for (name, value) in [("If-None-Match", etag), ("If-Modified-Since", modified)] {
            let resp = request(&env.server, "GET", path, &[(name, value.as_str())]);
            assert_eq!(resp.status(), 200, "{path} {name}: {value}");
            assert_ne!(header(&resp, "etag"), *etag);
            assert!(!resp.bytes().unwrap().is_empty());
        }
        // And the new one is conditional in turn.
        assert_conditional(&env.server, path);
    }
}
