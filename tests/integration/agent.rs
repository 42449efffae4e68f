//! `tamga-enroll agent`, the local signing agent the citizen's pages call, as a running
//! process spoken to over HTTP: the origin gate on every request (no `Origin`, a foreign one,
//! preflights with and without Private Network Access), folders listed and made within the
//! allowed directories only, key pairs whose requests `openssl req -verify` accepts, and a
//! full round trip with a real `tamga serve`: the application submitted with the agent's
//! requests, bound, held encrypted across a restart of the agent, and written as two
//! containers `openssl pkcs12` opens, both or none, never over an existing file.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::enroll::{body, fresh_iin, Env};
use crate::support::{client, free_port, openssl};

const ORIGIN: &str = "http://127.0.0.1:8080";
/// Allowed too: used to show that keys bound by one page are not another's.
const OTHER: &str = "http://localhost:8080";
const FOREIGN: &str = "http://evil.example";
const PASSWORD: &str = "Secret2026";

/// A running `tamga-enroll agent`, killed when dropped.
struct Agent {
    child: Child,
    base: String,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A refusal or answer: status, headers, JSON body (`Null` when there is none).
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Answer {
    fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }

    /// No `Access-Control-*` header at all.
    fn no_cors(&self) -> bool {
        !self
            .headers
            .keys()
            .any(|k| k.as_str().starts_with("access-control-"))
    }
}

/// Start the agent on a free port for `ORIGIN` and `OTHER`, writing under `allow`, keeping
/// its keys in `state`; wait until it answers.
fn start_agent(state: &Path, allow: &[&Path]) -> Agent {
    let port = free_port();
    let mut cmd = crate::support::tamga_enroll();
    cmd.args(["agent", "--origin", ORIGIN, "--origin", OTHER])
        .args(["--port", &port.to_string()])
        .arg("--state-dir")
        .arg(state)
        .args(["--p12-iterations", "100000"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for dir in allow {
        cmd.arg("--allow-dir").arg(dir);
    }
    let mut agent = Agent {
        child: cmd.spawn().unwrap(),
        base: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = agent.child.try_wait() {
            panic!("tamga-enroll agent exited early: {status}");
        }
        if call(&agent, "GET", "/agent/v1/version", Some(ORIGIN), None).status == 200 {
            return agent;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("tamga-enroll agent did not answer within 30 s");
}

/// One request to the agent, with `origin` as its `Origin` header (none for `None`).
fn call(
    agent: &Agent,
    method: &str,
    path: &str,
    origin: Option<&str>,
    body: Option<Value>,
) -> Answer {
    let mut req = client().request(method.parse().unwrap(), format!("{}{path}", agent.base));
    if let Some(origin) = origin {
        req = req.header("Origin", origin);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    match req.send() {
        Ok(resp) => Answer {
            status: resp.status().as_u16(),
            headers: resp.headers().clone(),
            body: resp.json().unwrap_or(Value::Null),
        },
        Err(_) => Answer {
            status: 0,
            headers: reqwest::header::HeaderMap::new(),
            body: Value::Null,
        },
    }
}

fn post(agent: &Agent, path: &str, body: Value) -> Answer {
    call(agent, "POST", path, Some(ORIGIN), Some(body))
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Every file in `dir`, sorted by name.
fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Keys of `key_type` for both certificates; the handle and the two CSRs (PEM).
fn make_keys(agent: &Agent, key_type: &str) -> (String, String, String) {
    let made = post(
        agent,
        "/agent/v1/keys",
        json!({"auth": {"key_type": key_type}, "sign": {"key_type": key_type}, "email": null}),
    );
    assert_eq!(made.status, 200, "{}", made.body);
    assert_eq!(made.headers["access-control-allow-origin"], ORIGIN);
    let csr = |kind: &str| made.body["csrs"][kind].as_str().unwrap().to_owned();
    (
        made.body["handle"].as_str().unwrap().to_owned(),
        csr("auth"),
        csr("sign"),
    )
}

/// `openssl req -verify` accepts the request (its output read: the exit code alone proves
/// nothing for every build) and names the key's algorithm.
fn assert_csr_verifies(dir: &Path, pem: &str, algorithm: &str) {
    let file = dir.join("check.csr");
    std::fs::write(&file, pem).unwrap();
    let out = crate::support::openssl_command()
        .args(["req", "-in"])
        .arg(&file)
        .args(["-verify", "-noout", "-text"])
        .output()
        .unwrap();
    let shown = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{shown}");
    assert!(shown.contains("verify OK"), "{shown}");
    assert!(shown.contains(algorithm), "{shown}");
}

/// The origin gate on every request and the preflights; folders; keys; the refusals that
/// need no server.
#[test]
fn agent_gate_preflight_folders_and_keys() {
    let base = tempfile::tempdir().unwrap();
    let allowed = base.path().join("allowed");
    let outside = base.path().join("outside");
    for dir in [
        allowed.join("keys"),
        allowed.join(".hidden"),
        outside.clone(),
    ] {
        std::fs::create_dir_all(dir).unwrap();
    }
    std::os::unix::fs::symlink(&outside, allowed.join("link-out")).unwrap();
    let agent = start_agent(&base.path().join("state"), &[&allowed]);
    let root = allowed.canonicalize().unwrap();
    let root_text = root.to_str().unwrap().to_owned();

    // The version, for an allowed origin.
    let version = call(&agent, "GET", "/agent/v1/version", Some(ORIGIN), None);
    assert_eq!(version.status, 200);
    assert_eq!(version.body["name"], "tamga-enroll");
    assert_eq!(version.body["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(version.body["protocol"], 1);
    assert_eq!(version.body["key_types"], json!(["rsa2048", "ec-p256"]));
    assert_eq!(version.headers["access-control-allow-origin"], ORIGIN);
    assert_eq!(version.headers["vary"], "Origin");

    // No Origin, a foreign one, one that differs only by a trailing slash or a port: refused
    // on every path, with no Access-Control-* header.
    for origin in [
        None,
        Some(FOREIGN),
        Some("http://127.0.0.1:8080/"),
        Some("http://127.0.0.1:8081"),
        Some("null"),
    ] {
        for (method, path) in [
            ("GET", "/agent/v1/version"),
            ("GET", "/agent/v1/folders"),
            ("POST", "/agent/v1/keys"),
            ("GET", "/nowhere"),
        ] {
            let refused = call(&agent, method, path, origin, Some(json!({})));
            assert_eq!(refused.status, 403, "{origin:?} {path}");
            assert_eq!(refused.code(), "origin_not_allowed", "{origin:?} {path}");
            assert!(
                refused.no_cors(),
                "{origin:?} {path}: {:?}",
                refused.headers
            );
        }
    }

    // The Private Network Access preflight: answered for an allowed origin only.
    let preflight = |origin: &str, private_network: bool| {
        let mut req = client()
            .request(
                reqwest::Method::OPTIONS,
                format!("{}/agent/v1/keys", agent.base),
            )
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header("Access-Control-Request-Headers", "content-type");
        if private_network {
            req = req.header("Access-Control-Request-Private-Network", "true");
        }
        req.send().unwrap()
    };
    let allowed_pna = preflight(ORIGIN, true);
    assert_eq!(allowed_pna.status(), 204);
    let h = allowed_pna.headers();
    assert_eq!(h["access-control-allow-private-network"], "true");
    assert_eq!(h["access-control-allow-origin"], ORIGIN);
    assert_eq!(h["access-control-allow-methods"], "GET, POST");
    assert_eq!(h["access-control-allow-headers"], "content-type");
    assert_eq!(h["access-control-max-age"], "600");
    let plain = preflight(ORIGIN, false);
    assert_eq!(plain.status(), 204);
    assert!(plain
        .headers()
        .get("access-control-allow-private-network")
        .is_none());
    let foreign_pna = preflight(FOREIGN, true);
    assert_eq!(foreign_pna.status(), 403);
    assert!(foreign_pna
        .headers()
        .keys()
        .all(|k| !k.as_str().starts_with("access-control-")));

    // Unknown operations.
    let missing = call(&agent, "GET", "/agent/v1/nothing", Some(ORIGIN), None);
    assert_eq!((missing.status, missing.code()), (404, "not_found"));
    let wrong_method = call(&agent, "DELETE", "/agent/v1/version", Some(ORIGIN), None);
    assert_eq!(
        (wrong_method.status, wrong_method.code()),
        (404, "not_found")
    );

    // Folders: the allowed directory and its plain subfolders only.
    let listed = call(&agent, "GET", "/agent/v1/folders", Some(ORIGIN), None);
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(
        listed.body,
        json!({"roots": [{"path": root_text, "folders": [format!("{root_text}/keys")]}]})
    );
    let made = post(
        &agent,
        "/agent/v1/folders",
        json!({"parent": format!("{root_text}/keys"), "name": "Менің кілттерім"}),
    );
    assert_eq!(made.status, 200, "{}", made.body);
    assert_eq!(
        made.body["path"],
        format!("{root_text}/keys/Менің кілттерім")
    );
    assert!(root.join("keys/Менің кілттерім").is_dir());
    let again = post(
        &agent,
        "/agent/v1/folders",
        json!({"parent": format!("{root_text}/keys"), "name": "Менің кілттерім"}),
    );
    assert_eq!(again.code(), "folder_exists");
    for (parent, name, code) in [
        (format!("{root_text}/.."), "x", "folder_not_allowed"),
        (
            format!("{root_text}/keys/../../outside"),
            "x",
            "folder_not_allowed",
        ),
        (
            outside.to_str().unwrap().to_owned(),
            "x",
            "folder_not_allowed",
        ),
        (format!("{root_text}/link-out"), "x", "folder_not_allowed"),
        ("keys".to_owned(), "x", "folder_not_allowed"),
        (root_text.clone(), "..", "folder_name_invalid"),
        (root_text.clone(), "../outside", "folder_name_invalid"),
        (root_text.clone(), "/tmp/x", "folder_name_invalid"),
        (root_text.clone(), ".hidden2", "folder_name_invalid"),
    ] {
        let refused = post(
            &agent,
            "/agent/v1/folders",
            json!({"parent": parent, "name": name}),
        );
        assert_eq!(refused.code(), code, "{parent} {name}: {}", refused.body);
    }
    assert_eq!(
        files(&outside),
        Vec::<String>::new(),
        "nothing made outside"
    );

    // Keys: requests openssl verifies, RSA and EC; an unknown type refused.
    for (key_type, algorithm) in [("rsa2048", "rsaEncryption"), ("ec-p256", "id-ecPublicKey")] {
        let (handle, auth, sign) = make_keys(&agent, key_type);
        assert!(uuid::Uuid::parse_str(&handle).is_ok(), "{handle}");
        assert_ne!(auth, sign);
        assert_csr_verifies(base.path(), &auth, algorithm);
        assert_csr_verifies(base.path(), &sign, algorithm);
    }
    for bad in ["gost2015", "rsa3072", "RSA2048"] {
        let refused = post(
            &agent,
            "/agent/v1/keys",
            json!({"auth": {"key_type": bad}, "sign": {"key_type": "rsa2048"}}),
        );
        assert_eq!(
            (refused.status, refused.code()),
            (422, "key_type_not_supported"),
            "{bad}"
        );
    }
    let malformed = post(&agent, "/agent/v1/keys", json!({"auth": "rsa2048"}));
    assert_eq!(
        (malformed.status, malformed.code()),
        (400, "request_malformed")
    );
    let huge = post(
        &agent,
        "/agent/v1/keys",
        json!({"auth": {"key_type": "x".repeat(70_000)}, "sign": {"key_type": "rsa2048"}}),
    );
    assert_eq!(huge.code(), "request_malformed");

    // Binding: the folder must be allowed; the handle must exist.
    let (handle, _, _) = make_keys(&agent, "ec-p256");
    for folder in [
        outside.to_str().unwrap().to_owned(),
        format!("{root_text}/link-out"),
    ] {
        let refused = post(
            &agent,
            "/agent/v1/applications",
            json!({"handle": handle, "application_id": "A1", "access_token": "t", "folder": folder}),
        );
        assert_eq!(refused.code(), "folder_not_allowed", "{folder}");
    }
    let unknown = post(
        &agent,
        "/agent/v1/applications",
        json!({"handle": uuid::Uuid::new_v4().to_string(), "application_id": "A1", "access_token": "t", "folder": root_text}),
    );
    assert_eq!(unknown.code(), "keys_not_found");
    // A refusal is readable by the page: it carries the CORS answer too.
    assert_eq!(unknown.headers["access-control-allow-origin"], ORIGIN);
    assert_eq!(malformed.headers["access-control-allow-origin"], ORIGIN);
    let other = call(
        &agent,
        "POST",
        "/agent/v1/applications",
        Some(OTHER),
        Some(
            json!({"handle": handle, "application_id": "A1", "access_token": "t", "folder": root_text}),
        ),
    );
    assert_eq!(
        other.code(),
        "keys_not_found",
        "keys made for one page are not another's"
    );
    let not_held = call(
        &agent,
        "GET",
        "/agent/v1/applications/A1",
        Some(ORIGIN),
        None,
    );
    assert_eq!(
        (not_held.status, not_held.code()),
        (404, "application_not_held")
    );

    // A weak password: every broken rule named, before anything else is looked at.
    let weak = post(
        &agent,
        "/agent/v1/containers",
        json!({"application_id": "A1", "password": "abc", "certificates": [], "chain_pem": ""}),
    );
    assert_eq!((weak.status, weak.code()), (422, "password_policy"));
    let detail = weak.body["detail"].as_str().unwrap();
    for rule in ["6 to 32 characters", "upper-case", "digit"] {
        assert!(detail.contains(rule), "{rule}: {detail}");
    }
    assert!(!detail.contains("lower-case"), "{detail}");
}

/// The held-key files of a state directory (each 0600, the directory 0700, `agent.key`
/// 0600) and their contents.
fn held_files(state: &Path) -> Vec<(PathBuf, String)> {
    assert_eq!(mode(state), 0o700);
    assert_eq!(mode(&state.join("agent.key")), 0o600);
    files(state)
        .into_iter()
        .filter(|f| f.ends_with(".json"))
        .map(|f| {
            let file = state.join(f);
            assert_eq!(mode(&file), 0o600, "{}", file.display());
            let text = std::fs::read_to_string(&file).unwrap();
            assert!(!text.contains("PRIVATE KEY"), "{text}");
            (file, text)
        })
        .collect()
}

/// `text` holds the private key `key_pem` in none of its clear forms: PEM body, DER (PKCS#8
/// or the traditional form), or the DER in base64.
fn assert_key_not_in(text: &str, key_pem: &str) {
    use base64::Engine as _;
    let key = openssl::pkey::PKey::private_key_from_pem(key_pem.as_bytes()).unwrap();
    let pkcs8 = key.private_key_to_pkcs8().unwrap();
    let traditional = key.private_key_to_der().unwrap();
    for der in [&pkcs8, &traditional] {
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        assert!(!text.contains(&b64[..64]), "the key in base64");
        assert!(
            !text.as_bytes().windows(64).any(|w| w == &der[..64]),
            "the key's DER"
        );
    }
    let pem_body: String = key_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .take(2)
        .collect();
    assert!(!text.contains(&pem_body), "the key's PEM");
}

/// What `openssl pkcs12` reads out of the container `file` with the password: its
/// certificate and private key (PEM), the key's public half checked against the certificate.
fn container_contents(dir: &Path, file: &Path) -> (String, String) {
    let path = file.to_str().unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec!["pkcs12", "-in", path, "-passin", "pass:Secret2026"];
        args.extend_from_slice(extra);
        openssl(dir, &args)
    };
    let cert = run(&["-nokeys", "-clcerts"]);
    let key = run(&["-nocerts", "-nodes"]);
    std::fs::write(dir.join("c.pem"), &cert).unwrap();
    std::fs::write(dir.join("k.pem"), &key).unwrap();
    let from_cert = openssl(dir, &["x509", "-in", "c.pem", "-noout", "-pubkey"]);
    let from_key = openssl(dir, &["pkey", "-in", "k.pem", "-pubout"]);
    assert_eq!(
        from_cert, from_key,
        "the container's key is its certificate's"
    );
    // The wrong password opens nothing.
    let wrong = crate::support::openssl_command()
        .current_dir(dir)
        .args([
            "pkcs12",
            "-in",
            path,
            "-passin",
            "pass:Wrong2026",
            "-nokeys",
        ])
        .output()
        .unwrap();
    assert!(!wrong.status.success());
    (
        openssl(dir, &["x509", "-in", "c.pem"]),
        openssl(dir, &["pkey", "-in", "k.pem"]),
    )
}

/// The whole path with a real server: keys from the agent, the application submitted with its
/// requests, bound, kept across a restart, written as two containers, both or none.
#[test]
fn agent_round_trip_with_a_real_server() {
    let env = Env::sqlite();
    let base = tempfile::tempdir().unwrap();
    let allowed = base.path().join("allowed");
    std::fs::create_dir_all(&allowed).unwrap();
    let state = base.path().join("state");
    let mut agent = start_agent(&state, &[&allowed]);
    let root = allowed.canonicalize().unwrap();

    for (key_type, prefix) in [("rsa2048", "RSA256"), ("ec-p256", "ECDSA256")] {
        let folder = post(
            &agent,
            "/agent/v1/folders",
            json!({"parent": root.to_str().unwrap(), "name": key_type}),
        );
        assert_eq!(folder.status, 200, "{}", folder.body);
        let folder = PathBuf::from(folder.body["path"].as_str().unwrap());

        let (handle, auth_csr, sign_csr) = make_keys(&agent, key_type);
        let token = env.cli_token(&fresh_iin(), &[]);
        let (status, app) = env.post(Some(&token), &body(&auth_csr, &sign_csr, None));
        assert_eq!(status, 201, "{app}");
        assert_eq!(app["status"], "issued", "{app}");
        let id = app["id"].as_str().unwrap();
        let access_token = app["access_token"].as_str().unwrap();

        let bound = post(
            &agent,
            "/agent/v1/applications",
            json!({"handle": handle, "application_id": id, "access_token": access_token, "folder": folder.to_str().unwrap()}),
        );
        assert_eq!(bound.status, 200, "{}", bound.body);
        assert_eq!(bound.body, json!({}));
        let held = held_files(&state);
        assert_eq!(
            held.len(),
            1,
            "{:?}",
            held.iter().map(|h| &h.0).collect::<Vec<_>>()
        );
        let (_, held_text) = held.into_iter().next().unwrap();

        // Held for the page that bound it only.
        let path = format!("/agent/v1/applications/{id}");
        let other = call(&agent, "GET", &path, Some(OTHER), None);
        assert_eq!(other.code(), "application_not_held");

        // The resume case: a restarted agent with the same state directory still holds it.
        drop(agent);
        agent = start_agent(&state, &[&allowed]);
        let resumed = call(&agent, "GET", &path, Some(ORIGIN), None);
        assert_eq!(resumed.status, 200, "{}", resumed.body);
        assert_eq!(
            resumed.body,
            json!({"application_id": id, "access_token": access_token, "folder": folder.to_str().unwrap()})
        );

        let certificates = app["certificates"].clone();
        let chain = app["chain_pem"].clone();
        let write = |password: &str| {
            post(
                &agent,
                "/agent/v1/containers",
                json!({"application_id": id, "password": password, "certificates": certificates, "chain_pem": chain}),
            )
        };

        // Certificates that do not carry the held keys (AUTH and SIGN swapped): refused.
        let swapped = json!([
            {"kind": "auth", "pem": certificates[1]["pem"]},
            {"kind": "sign", "pem": certificates[0]["pem"]},
        ]);
        let mismatch = post(
            &agent,
            "/agent/v1/containers",
            json!({"application_id": id, "password": PASSWORD, "certificates": swapped, "chain_pem": chain}),
        );
        assert_eq!(
            mismatch.code(),
            "certificate_key_mismatch",
            "{}",
            mismatch.body
        );
        assert!(files(&folder).is_empty());

        // A file already under the SIGN container's name: nothing written, keys still held.
        let sign_pem = certificates[1]["pem"].as_str().unwrap();
        let der = openssl::x509::X509::from_pem(sign_pem.as_bytes())
            .unwrap()
            .to_der()
            .unwrap();
        let ski = hex::encode(tamga::pkcs12::subject_key_id(&der).unwrap());
        let blocker = folder.join(format!("{prefix}_{ski}.p12"));
        std::fs::write(&blocker, "someone's file").unwrap();
        let blocked = write(PASSWORD);
        assert_eq!(
            (blocked.status, blocked.code()),
            (409, "file_exists"),
            "{}",
            blocked.body
        );
        assert_eq!(
            files(&folder),
            [format!("{prefix}_{ski}.p12")],
            "nothing new written"
        );
        assert_eq!(std::fs::read_to_string(&blocker).unwrap(), "someone's file");
        assert_eq!(held_files(&state).len(), 1, "the keys are still held");
        std::fs::remove_file(&blocker).unwrap();

        // Written: two files, 0600, opened by openssl with the password, each holding its
        // certificate and key; the held keys are gone.
        let written = write(PASSWORD);
        assert_eq!(written.status, 200, "{}", written.body);
        assert_eq!(written.body["folder"], folder.to_str().unwrap());
        let names: Vec<String> = written.body["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(names.len(), 2);
        assert!(
            names[0].starts_with(&format!("AUTH_{prefix}_")),
            "{names:?}"
        );
        assert_eq!(names[1], format!("{prefix}_{ski}.p12"));
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(files(&folder), sorted);
        for (name, cert) in names.iter().zip(certificates.as_array().unwrap()) {
            let file = folder.join(name);
            assert_eq!(mode(&file), 0o600, "{name}");
            let (inside, key) = container_contents(base.path(), &file);
            assert_key_not_in(&held_text, &key);
            let expected =
                openssl::x509::X509::from_pem(cert["pem"].as_str().unwrap().as_bytes()).unwrap();
            let found = openssl::x509::X509::from_pem(inside.as_bytes()).unwrap();
            assert_eq!(
                found.to_der().unwrap(),
                expected.to_der().unwrap(),
                "{name}"
            );
        }
        assert!(held_files(&state).is_empty(), "held keys gone");
        let gone = call(&agent, "GET", &path, Some(ORIGIN), None);
        assert_eq!(gone.code(), "application_not_held");

        // A second write: nothing held any more, nothing new written.
        let second = write(PASSWORD);
        assert_eq!(second.code(), "application_not_held");
        assert_eq!(files(&folder), sorted);
    }
}

/// The folder bound can be replaced at the write: a bound folder since deleted is refused
/// until the page names another one, which is checked as the binding's folder is (outside
/// the allowed directories: refused, nothing written) and then holds both containers.
#[test]
fn agent_containers_go_to_another_folder_when_asked() {
    let env = Env::sqlite();
    let base = tempfile::tempdir().unwrap();
    let allowed = base.path().join("allowed");
    let outside = base.path().join("outside");
    std::fs::create_dir_all(&allowed).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    let state = base.path().join("state");
    let agent = start_agent(&state, &[&allowed]);
    let root = allowed.canonicalize().unwrap();
    let first = root.join("first");
    let second = root.join("second");
    std::fs::create_dir(&first).unwrap();
    std::fs::create_dir(&second).unwrap();

    let (handle, auth_csr, sign_csr) = make_keys(&agent, "ec-p256");
    let token = env.cli_token(&fresh_iin(), &[]);
    let (status, app) = env.post(Some(&token), &body(&auth_csr, &sign_csr, None));
    assert_eq!(status, 201, "{app}");
    let id = app["id"].as_str().unwrap();
    let bound = post(
        &agent,
        "/agent/v1/applications",
        json!({"handle": handle, "application_id": id, "access_token": app["access_token"], "folder": first.to_str().unwrap()}),
    );
    assert_eq!(bound.status, 200, "{}", bound.body);

    let write = |folder: Option<&Path>| {
        let mut request = json!({"application_id": id, "password": PASSWORD,
            "certificates": app["certificates"], "chain_pem": app["chain_pem"]});
        if let Some(folder) = folder {
            request["folder"] = json!(folder.to_str().unwrap());
        }
        post(&agent, "/agent/v1/containers", request)
    };

    // The bound folder deleted while the application waited: refused, and again without a
    // new folder.
    std::fs::remove_dir(&first).unwrap();
    for _ in 0..2 {
        let lost = write(None);
        assert_eq!(
            (lost.status, lost.code()),
            (403, "folder_not_allowed"),
            "{}",
            lost.body
        );
    }
    // Another folder outside the allowed directories: refused, nothing written there.
    let foreign = write(Some(&outside));
    assert_eq!(
        (foreign.status, foreign.code()),
        (403, "folder_not_allowed"),
        "{}",
        foreign.body
    );
    assert!(files(&outside).is_empty());
    assert_eq!(held_files(&state).len(), 1, "the keys are still held");

    // Another allowed folder: both containers there, the held keys gone.
    let written = write(Some(&second));
    assert_eq!(written.status, 200, "{}", written.body);
    assert_eq!(written.body["folder"], second.to_str().unwrap());
    let names = written.body["files"].as_array().unwrap();
    assert_eq!(names.len(), 2, "{}", written.body);
    let mut expected: Vec<String> = names
        .iter()
        .map(|n| n.as_str().unwrap().to_owned())
        .collect();
    expected.sort();
    assert_eq!(files(&second), expected);
    assert!(expected[0].starts_with("AUTH_ECDSA256_"), "{expected:?}");
    assert!(held_files(&state).is_empty());
}
