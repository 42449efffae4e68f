//! Rate limits over HTTP: the per-IIN limits on applications and revocations (429
//! `rate_limited_iin` with `Retry-After`, nothing written), counted in the database so that
//! two instances on one PostgreSQL enforce one limit together; and the per-address flood
//! guard (a burst, then 429 `rate_limited_client`), which leaves OCSP and CRLs alone.

use std::time::Duration;

use serde_json::{json, Value};

use crate::enroll::{body, claims, csr, fresh_iin, Env};
use crate::support::{client, post_json, postgres_url};

/// POST a JSON body with a bearer token; (status, Retry-After, body).
fn post(base: &str, path: &str, token: &str, body: &Value) -> (u16, Option<u64>, Value) {
    let resp = post_json(&format!("{base}{path}"), token, body);
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
    (status, retry, resp.json().unwrap())
}

/// A fresh application body (two new EC keys).
fn application(env: &Env) -> Value {
    let (a, _) = csr(env.dir(), "ec", &[]);
    let (s, _) = csr(env.dir(), "ec", &[]);
    body(&a, &s, None)
}

fn assert_iin_limited(status: u16, retry: Option<u64>, problem: &Value, what: &str) {
    assert_eq!(status, 429, "{problem}");
    assert_eq!(problem["code"], "rate_limited_iin", "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains(what),
        "{problem}"
    );
    // The oldest counted action leaves the 24-hour window in just under a day.
    let retry = retry.expect("Retry-After");
    assert!((86_000..=86_400).contains(&retry), "Retry-After {retry}");
}

#[test]
fn iin_limits_refuse_the_extra_application_and_revocation_and_write_nothing() {
    let env = Env::sqlite_with(&[
        ("TAMGA_LIMITS__APPLICATIONS_PER_IIN_PER_DAY", "2"),
        ("TAMGA_LIMITS__REVOCATIONS_PER_IIN_PER_DAY", "1"),
    ]);
    let base = env.server.base.clone();
    let iin = fresh_iin();
    let mut issued = Vec::new();
    for _ in 0..2 {
        let (status, _, created) = post(
            &base,
            "/api/v1/applications",
            &env.minted(&claims(&iin)),
            &application(&env),
        );
        assert_eq!(status, 201, "{created}");
        issued.push(created);
    }
    let before = env.counts();
    assert_eq!(before.rate_limit_events, 2);
    // The third, with a new valid token and new keys: refused, nothing stored, token unused.
    let token = env.minted(&claims(&iin));
    let (status, retry, problem) = post(&base, "/api/v1/applications", &token, &application(&env));
    assert_iin_limited(status, retry, &problem, "applications");
    assert_eq!(env.counts(), before);
    // Another citizen is not affected.
    let (status, _, created) = post(
        &base,
        "/api/v1/applications",
        &env.minted(&claims(&fresh_iin())),
        &application(&env),
    );
    assert_eq!(status, 201, "{created}");

    // Revocations: the first goes through, the second is refused and changes nothing.
    let serial = |i: usize, k: usize| {
        issued[i]["certificates"][k]["serial"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (status, _, revoked) = post(
        &base,
        "/api/v1/revocations",
        &env.revocation_token(&iin),
        &json!({"serial": serial(0, 0), "reason": "superseded"}),
    );
    assert_eq!(status, 200, "{revoked}");
    let before = env.counts();
    let (status, retry, problem) = post(
        &base,
        "/api/v1/revocations",
        &env.revocation_token(&iin),
        &json!({"serial": serial(0, 1), "reason": "keyCompromise"}),
    );
    assert_iin_limited(status, retry, &problem, "revocations");
    assert_eq!(env.counts(), before);
    let untouched = env
        .store
        .read(|tx| tx.certificate(&serial(0, 1)))
        .unwrap()
        .unwrap();
    assert_eq!(untouched.status.as_str(), "issued");
    let blocked = env
        .store
        .read(|tx| tx.blocked_key(&untouched.spki_sha256))
        .unwrap();
    assert!(blocked.is_none(), "no key blocked by a refused revocation");
    // Operators are not limited by the holder's count.
    let out = crate::support::run(crate::support::tamga(env.dir()).args([
        "certs",
        "revoke",
        &serial(0, 1),
        "--reason",
        "keyCompromise",
        "--operator",
        "test",
    ]));
    assert!(out.status.success(), "{}", crate::support::text(&out));

    let metrics = env.server.get("/metrics").text().unwrap();
    assert!(
        metrics.contains(r#"tamga_api_rejections_total{code="rate_limited_iin"} 2"#),
        "{metrics}"
    );
    assert!(tamga::audit::verify(&env.store).is_ok());
}

#[test]
fn client_address_limit_allows_a_burst_then_refuses_but_not_ocsp_or_crls() {
    let env = Env::sqlite_with(&[
        ("TAMGA_LIMITS__CLIENT_REQUESTS_PER_SECOND", "1"),
        ("TAMGA_LIMITS__CLIENT_BURST", "5"),
        ("TAMGA_LIMITS__TRUSTED_PROXIES", "127.0.0.1"),
    ]);
    let base = env.server.base.clone();
    let http = client();
    let get = |path: &str, forwarded: Option<&str>| {
        let mut req = http.get(format!("{base}{path}"));
        if let Some(f) = forwarded {
            req = req.header("X-Forwarded-For", f);
        }
        req.send().unwrap()
    };
    // The readiness wait spent some of the burst: let it refill.
    std::thread::sleep(Duration::from_millis(5_500));
    for i in 0..5 {
        assert_eq!(
            get("/healthz", None).status(),
            200,
            "request {i} of the burst"
        );
    }
    let refused = get("/healthz", None);
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "1");
    assert_eq!(
        refused.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = refused.json().unwrap();
    assert_eq!(problem["code"], "rate_limited_client", "{problem}");
    // Every route counts against the same address, the portal API included.
    let (status, retry, problem) = post(&base, "/api/v1/applications", "x", &json!({}));
    assert_eq!((status, retry), (429, Some(1)), "{problem}");
    // Relying parties are not limited: OCSP (junk still gets its OCSP answer) and CRLs.
    for _ in 0..20 {
        let ocsp = http
            .post(format!("{base}/ocsp"))
            .header("content-type", "application/ocsp-request")
            .body(vec![0x30, 0x00])
            .send()
            .unwrap();
        assert_eq!(ocsp.status(), 200);
        assert_eq!(get("/crl/nca_rsa_dev.crl", None).status(), 200);
    }
    // Behind a trusted proxy (127.0.0.1 here), X-Forwarded-For names the client: another
    // address has its own burst.
    for _ in 0..5 {
        assert_eq!(get("/healthz", Some("203.0.113.7")).status(), 200);
    }
    assert_eq!(get("/healthz", Some("203.0.113.7")).status(), 429);
    assert_eq!(get("/healthz", Some("203.0.113.8")).status(), 200);
    // A second later, one more request from the first address.
    std::thread::sleep(Duration::from_millis(1_100));
    assert_eq!(get("/healthz", None).status(), 200);
    let metrics = get("/metrics", Some("198.51.100.1")).text().unwrap();
    assert!(
        metrics.contains(r#"tamga_api_rejections_total{code="rate_limited_client"}"#),
        "{metrics}"
    );
}

#[test]
fn iin_limit_holds_across_two_instances_on_postgres() {
    let Some(admin) = postgres_url("iin_limit_holds_across_two_instances_on_postgres") else {
        return;
    };
    let limit = [("TAMGA_LIMITS__APPLICATIONS_PER_IIN_PER_DAY", "3")];
    let a = Env::postgres_with(&admin, &limit);
    // Instance B: the same CA hierarchy and database, its own process.
    let (_dir_b, b) = a.second_instance(&limit);
    // Eight applications for one IIN at once, alternating between the instances.
    let iin = fresh_iin();
    let jobs: Vec<(String, String, Value)> = (0..8)
        .map(|i| {
            let base = if i % 2 == 0 { &a.server.base } else { &b.base };
            (base.clone(), a.minted(&claims(&iin)), application(&a))
        })
        .collect();
    let results: Vec<(u16, Option<u64>, Value)> = std::thread::scope(|scope| {
        let handles: Vec<_> = jobs
            .iter()
            .map(|(base, token, body)| {
                scope.spawn(move || post(base, "/api/v1/applications", token, body))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let accepted = results.iter().filter(|(s, _, _)| *s == 201).count();
    assert_eq!(accepted, 3, "{results:?}");
    for (status, retry, problem) in results.iter().filter(|(s, _, _)| *s != 201) {
        assert_iin_limited(*status, *retry, problem, "applications");
    }
    let counts = a.counts();
    assert_eq!(counts.applications, 3);
    assert_eq!(counts.used_consent_tokens, 3);
    assert_eq!(counts.rate_limit_events, 3);
    // Both instances refuse the next one.
    for base in [&a.server.base, &b.base] {
        let (status, retry, problem) = post(
            base,
            "/api/v1/applications",
            &a.minted(&claims(&iin)),
            &application(&a),
        );
        assert_iin_limited(status, retry, &problem, "applications");
    }
    assert!(tamga::audit::verify(&a.store).is_ok());
}
