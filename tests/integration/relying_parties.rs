//! What `docs/relying-parties.md` recommends, run: OpenSSL, GnuTLS (certtool, ocsptool), the
//! JDK's PKIX validator (`tests/tools/PkixValidate.java`), NSS (vfychain, certutil, crlutil)
//! and pyhanko-certvalidator (`tests/tools/pyhanko_validate.py`) validate a citizen's
//! certificates from a live `tamga serve` through OCSP, full CRLs, and full + delta CRLs:
//! valid before revocation, revoked after. Where a tool's tempting setting accepts a revoked
//! certificate, the test shows that too, so the guide's warnings stay true.
//!
//! One server and one pair per tool. The revocations are arranged so that each kind of CRL
//! matters: the AUTH certificate is revoked and then a full CRL published (it is on the full
//! CRL), the SIGN certificate is revoked after that (it is on the delta CRL only).
//!
//! OCSP is checked over the whole chain: the end entity (answered by the delegated responder)
//! and the issuing CA (answered with responses the root signed, which the development server
//! makes itself). At the end of each OCSP test the issuing CA is revoked (`tamga ca
//! revoke-issuer`) and a SIGN certificate of a second holder, never revoked itself, must then
//! fail at the issuing CA.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::enroll::Env;
use crate::support::{
    answers_version, openssl, run, tamga, text, tool_present, DEV_ISSUING, DEV_ROOT,
};

/// A full CRL only when asked for (`tamga crl publish`), so that a revocation after it is on
/// the delta CRL alone.
const CRL_ENV: [(&str, &str); 2] = [
    ("TAMGA_CRL__FULL_INTERVAL", "30d"),
    ("TAMGA_CRL__VALIDITY", "31d"),
];

/// The two certificates of one holder, by the name of their files in the scene's directory.
const AUTH: &str = "auth";
const SIGN: &str = "sign";
/// A second holder's SIGN certificate, never revoked: it tells the issuing CA's revocation.
const KEPT: &str = "kept-sign";

/// A server with one issued pair and the files relying parties use: `root.pem`,
/// `issuing.pem`, `auth.pem`, `sign.pem`, `auth-chain.pem` / `sign-chain.pem` (the certificate
/// and the issuing CA), and CRLs fetched by `fetch_crls`.
struct Scene {
    env: Env,
    dir: PathBuf,
    base: String,
    auth_serial: String,
    sign_serial: String,
}

impl Scene {
    fn start() -> Scene {
        let env = Env::sqlite_with(&CRL_ENV);
        let dir = env.dir().to_path_buf();
        let base = env.server.base.clone();
        let (_, created) = env.enroll_holder(None);
        let mut serials = Vec::new();
        for c in created["certificates"].as_array().unwrap() {
            let kind = c["kind"].as_str().unwrap();
            let pem = c["pem"].as_str().unwrap();
            std::fs::write(dir.join(format!("{kind}.pem")), pem).unwrap();
            serials.push((kind.to_owned(), c["serial"].as_str().unwrap().to_owned()));
        }
        std::fs::copy(dir.join(DEV_ROOT), dir.join("root.pem")).unwrap();
        std::fs::copy(dir.join(DEV_ISSUING), dir.join("issuing.pem")).unwrap();
        let issuing = std::fs::read_to_string(dir.join("issuing.pem")).unwrap();
        for kind in [AUTH, SIGN] {
            let leaf = std::fs::read_to_string(dir.join(format!("{kind}.pem"))).unwrap();
            std::fs::write(dir.join(format!("{kind}-chain.pem")), leaf + &issuing).unwrap();
        }
        let serial = |kind: &str| {
            serials
                .iter()
                .find(|(k, _)| k == kind)
                .map(|(_, s)| s.clone())
                .unwrap()
        };
        let (_, kept) = env.enroll_holder(None);
        let kept = kept["certificates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["kind"] == SIGN)
            .unwrap()["pem"]
            .as_str()
            .unwrap()
            .to_owned();
        std::fs::write(dir.join(format!("{KEPT}.pem")), &kept).unwrap();
        std::fs::write(dir.join(format!("{KEPT}-chain.pem")), kept + &issuing).unwrap();
        let scene = Scene {
            auth_serial: serial(AUTH),
            sign_serial: serial(SIGN),
            env,
            dir,
            base,
        };
        scene.fetch("/crl/root.crl", "root-crl");
        // The development server signs the root's responses about the issuing CA itself,
        // within seconds of its start.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let resp = scene.env.server.get("/readyz");
            let ready: serde_json::Value = resp.json().unwrap();
            if ready["checks"]["root_ocsp"] == "ok" {
                break;
            }
            assert!(Instant::now() < deadline, "root_ocsp never ok: {ready}");
            std::thread::sleep(Duration::from_millis(250));
        }
        scene
    }

    /// GET `path` into `{name}.der` and `{name}.pem`.
    fn fetch(&self, path: &str, name: &str) {
        let resp = self.env.server.get(path);
        assert_eq!(resp.status(), 200, "{path}");
        std::fs::write(self.dir.join(format!("{name}.der")), resp.bytes().unwrap()).unwrap();
        openssl(
            &self.dir,
            &[
                "crl",
                "-inform",
                "DER",
                "-in",
                &format!("{name}.der"),
                "-out",
                &format!("{name}.pem"),
            ],
        );
    }

    /// The issuing CA's newest full and delta CRLs as `full-{tag}` and `delta-{tag}`.
    fn fetch_crls(&self, tag: &str) {
        self.fetch("/crl/nca_rsa_dev.crl", &format!("full-{tag}"));
        self.fetch("/crl/nca_rsa_dev-delta.crl", &format!("delta-{tag}"));
    }

    fn tamga(&self, args: &[&str]) {
        let out = run(tamga(&self.dir).args(args).envs(CRL_ENV));
        assert!(out.status.success(), "tamga {args:?}: {}", text(&out));
    }

    /// Revoke AUTH and publish a full CRL; revoke SIGN and wait until the delta CRL and OCSP
    /// say so; fetch the CRLs as `full-after` (AUTH only) and `delta-after` (SIGN only).
    fn revoke_both(&self) {
        self.tamga(&[
            "certs",
            "revoke",
            &self.auth_serial,
            "--reason",
            "keyCompromise",
        ]);
        self.tamga(&["crl", "publish"]);
        self.tamga(&[
            "certs",
            "revoke",
            &self.sign_serial,
            "--reason",
            "keyCompromise",
        ]);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            self.fetch_crls("after");
            let delta = openssl(
                &self.dir,
                &["crl", "-in", "delta-after.pem", "-noout", "-text"],
            );
            let ocsp = self.openssl_ocsp(SIGN);
            if delta.contains(&self.sign_serial) && ocsp.contains("sign.pem: revoked") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "SIGN never reached the delta CRL and OCSP: {delta}\n{ocsp}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        let full = openssl(
            &self.dir,
            &["crl", "-in", "full-after.pem", "-noout", "-text"],
        );
        assert!(full.contains(&self.auth_serial), "{full}");
        assert!(!full.contains(&self.sign_serial), "{full}");
        let delta = openssl(
            &self.dir,
            &["crl", "-in", "delta-after.pem", "-noout", "-text"],
        );
        assert!(!delta.contains(&self.auth_serial), "{delta}");
    }

    /// Revoke the issuing CA and wait until its OCSP status says so (the development server
    /// signs the root's `revoked` response within seconds; meanwhile it answers `tryLater`).
    fn revoke_issuer(&self) {
        self.tamga(&["ca", "revoke-issuer", "--reason", "keyCompromise"]);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let shown = text(&self.ask_about_issuing());
            if shown.contains("issuing.pem: revoked") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the issuing CA's OCSP status never became revoked: {shown}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// `openssl ocsp` about the issuing CA: issuer the root, the URL of the issuing CA's AIA,
    /// the answer (signed by the root itself) verified against the root.
    fn ask_about_issuing(&self) -> Output {
        let url = format!("{}/ocsp", self.base);
        self.run(
            "openssl",
            &[
                "ocsp",
                "-issuer",
                "root.pem",
                "-cert",
                "issuing.pem",
                "-url",
                &url,
                "-CAfile",
                "root.pem",
            ],
        )
    }

    /// `program args` in the scene's directory.
    fn run(&self, program: &str, args: &[&str]) -> Output {
        Command::new(program)
            .current_dir(&self.dir)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"))
    }

    /// The recommended `openssl ocsp` query about `kind`: the response verified up to the
    /// root, the responder found through the issuing CA.
    fn openssl_ocsp(&self, kind: &str) -> String {
        let url = format!("{}/ocsp", self.base);
        let cert = format!("{kind}.pem");
        let out = self.run(
            "openssl",
            &[
                "ocsp",
                "-issuer",
                "issuing.pem",
                "-cert",
                &cert,
                "-url",
                &url,
                "-CAfile",
                "root.pem",
            ],
        );
        assert!(out.status.success(), "{}", text(&out));
        assert!(text(&out).contains("Response verify OK"), "{}", text(&out));
        text(&out)
    }
}

/// What a validator said about one certificate.
#[derive(Debug, PartialEq)]
enum Verdict {
    Valid,
    /// The end entity is revoked.
    Revoked,
    /// The issuing CA is revoked (said by whole-chain OCSP checks only).
    IssuerRevoked,
}

/// Valid or revoked by exit code and output; anything else fails the test with the output.
fn verdict(out: &Output, valid: bool, revoked: bool) -> Verdict {
    match (valid, revoked) {
        (true, false) => Verdict::Valid,
        (false, true) => Verdict::Revoked,
        _ => panic!("neither valid nor revoked: {:?} {}", out.status, text(out)),
    }
}

// ---- OpenSSL ----

fn openssl_verify(scene: &Scene, kind: &str, extra: &[&str]) -> Verdict {
    let leaf = format!("{kind}.pem");
    let mut args = vec!["verify", "-CAfile", "root.pem", "-untrusted", "issuing.pem"];
    args.extend_from_slice(extra);
    args.push(&leaf);
    let out = scene.run("openssl", &args);
    let shown = text(&out);
    verdict(
        &out,
        out.status.success() && shown.contains(&format!("{leaf}: OK")),
        !out.status.success() && shown.contains("certificate revoked"),
    )
}

/// The path first, then the status of the end entity and of the issuing CA (two queries).
fn openssl_ocsp_verdict(scene: &Scene, kind: &str) -> Verdict {
    assert_eq!(openssl_verify(scene, kind, &[]), Verdict::Valid);
    let shown = scene.openssl_ocsp(kind);
    let (good, revoked) = (format!("{kind}.pem: good"), format!("{kind}.pem: revoked"));
    let leaf = Verdict::verdict_text(&shown, &good, &revoked);
    let out = scene.ask_about_issuing();
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(shown.contains("Response verify OK"), "{shown}");
    let issuing = Verdict::verdict_text(&shown, "issuing.pem: good", "issuing.pem: revoked");
    Verdict::of_chain(leaf, issuing)
}

impl Verdict {
    /// The whole chain's verdict from the end entity's and the issuing CA's own.
    fn of_chain(leaf: Verdict, issuing: Verdict) -> Verdict {
        match (leaf, issuing) {
            (leaf, Verdict::Valid) => leaf,
            (_, _) => Verdict::IssuerRevoked,
        }
    }

    /// From text that names one of two outcomes.
    fn verdict_text(shown: &str, valid: &str, revoked: &str) -> Verdict {
        match (shown.contains(valid), shown.contains(revoked)) {
            (true, false) => Verdict::Valid,
            (false, true) => Verdict::Revoked,
            _ => panic!("neither {valid:?} nor {revoked:?}: {shown}"),
        }
    }
}

fn full(tag: &str) -> [String; 4] {
    [
        "-CRLfile".into(),
        "root-crl.pem".into(),
        "-CRLfile".into(),
        format!("full-{tag}.pem"),
    ]
}

#[test]
fn openssl_validates_through_ocsp_full_and_delta_crls() {
    let scene = Scene::start();
    scene.fetch_crls("before");
    let with = |tag: &str, extra: &[&str], more: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
        v.extend(full(tag));
        v.extend(more.iter().map(|s| (*s).to_owned()));
        v
    };
    let check = |kind: &str, args: &[String]| {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        openssl_verify(&scene, kind, &refs)
    };
    let full_only = |tag: &str| with(tag, &["-crl_check_all"], &[]);
    let full_delta = |tag: &str| {
        let delta = format!("delta-{tag}.pem");
        with(
            tag,
            &["-crl_check_all", "-use_deltas"],
            &["-CRLfile", &delta],
        )
    };
    for kind in [AUTH, SIGN] {
        assert_eq!(openssl_ocsp_verdict(&scene, kind), Verdict::Valid);
        assert_eq!(check(kind, &full_only("before")), Verdict::Valid);
        assert_eq!(check(kind, &full_delta("before")), Verdict::Valid);
    }
    scene.revoke_both();
    for kind in [AUTH, SIGN] {
        assert_eq!(
            openssl_ocsp_verdict(&scene, kind),
            Verdict::Revoked,
            "{kind}"
        );
        assert_eq!(
            check(kind, &full_delta("after")),
            Verdict::Revoked,
            "{kind}"
        );
        // The same, CRLs fetched by openssl from the URLs in the certificates.
        let download = ["-crl_check_all", "-use_deltas", "-crl_download"];
        assert_eq!(
            openssl_verify(&scene, kind, &download),
            Verdict::Revoked,
            "{kind}"
        );
    }
    // A full CRL alone: AUTH is on it; SIGN, revoked since, is not yet.
    assert_eq!(check(AUTH, &full_only("after")), Verdict::Revoked);
    assert_eq!(check(SIGN, &full_only("after")), Verdict::Valid);
    // Traps. -use_deltas without -crl_check(_all) checks no CRL at all.
    let no_check = with("after", &["-use_deltas"], &["-CRLfile", "delta-after.pem"]);
    assert_eq!(check(SIGN, &no_check), Verdict::Valid);
    // -crl_check_all without -use_deltas: the delta is loaded and ignored.
    let ignored = with(
        "after",
        &["-crl_check_all"],
        &["-CRLfile", "delta-after.pem"],
    );
    assert_eq!(check(SIGN, &ignored), Verdict::Valid);
    // An old full CRL with a new delta: the delta extends a newer full CRL, openssl drops
    // it and the old full CRL does not list AUTH.
    let stale = with(
        "before",
        &["-crl_check_all", "-use_deltas"],
        &["-CRLfile", "delta-after.pem"],
    );
    assert_eq!(check(AUTH, &stale), Verdict::Valid);
    // The issuing CA revoked: the second query says so for a certificate never revoked.
    assert_eq!(openssl_ocsp_verdict(&scene, KEPT), Verdict::Valid);
    scene.revoke_issuer();
    assert_eq!(openssl_ocsp_verdict(&scene, KEPT), Verdict::IssuerRevoked);
}

// ---- GnuTLS ----

fn gnutls_present(test: &str) -> bool {
    tool_present(
        answers_version("certtool") && answers_version("ocsptool"),
        "TAMGA_TEST_REQUIRE_GNUTLS",
        test,
        "GnuTLS's certtool and ocsptool are not installed (apt-get install gnutls-bin)",
    )
}

/// `certtool --verify` of `{kind}-chain.pem` up to the root with the CRLs in `crls` (one PEM
/// file, several CRLs), if any.
fn certtool_verify(scene: &Scene, kind: &str, crls: &[&str]) -> Verdict {
    let chain = format!("{kind}-chain.pem");
    let mut args = vec!["--verify", "--load-ca-certificate", "root.pem"];
    let bundle = format!("crls-{}.pem", crls.join("+"));
    if !crls.is_empty() {
        let mut all = String::new();
        for crl in crls {
            all += &std::fs::read_to_string(scene.dir.join(format!("{crl}.pem"))).unwrap();
        }
        std::fs::write(scene.dir.join(&bundle), all).unwrap();
        args.extend(["--load-crl", &bundle]);
    }
    args.extend(["--infile", &chain]);
    let out = scene.run("certtool", &args);
    let shown = text(&out);
    verdict(
        &out,
        out.status.success() && shown.contains("Chain verification output: Verified."),
        !out.status.success() && shown.contains("The certificate chain is revoked."),
    )
}

/// `ocsptool --ask` about `cert` (the URL from its AIA), the response verified with `issuer`.
fn ocsptool_ask(scene: &Scene, cert: &str, issuer: &str) -> Verdict {
    let out = scene.run(
        "ocsptool",
        &["--ask", "--load-cert", cert, "--load-issuer", issuer],
    );
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(
        shown.contains("Verifying OCSP Response: Success."),
        "{shown}"
    );
    Verdict::verdict_text(
        &shown,
        "Certificate Status: good",
        "Certificate Status: revoked",
    )
}

/// After `certtool --verify` of the path: `ocsptool` about the end entity (the response
/// verified with the issuing CA, which delegated the responder) and about the issuing CA (the
/// response verified with the root, which signs it itself).
fn ocsptool_verdict(scene: &Scene, kind: &str) -> Verdict {
    assert_eq!(certtool_verify(scene, kind, &[]), Verdict::Valid);
    let leaf = ocsptool_ask(scene, &format!("{kind}.pem"), "issuing.pem");
    Verdict::of_chain(leaf, ocsptool_ask(scene, "issuing.pem", "root.pem"))
}

/// The delta CRL checked in a pass of its own, after the full CRL's.
fn certtool_full_then_delta(scene: &Scene, kind: &str, tag: &str) -> Verdict {
    let full = format!("full-{tag}");
    let delta = format!("delta-{tag}");
    match certtool_verify(scene, kind, &["root-crl", &full]) {
        Verdict::Valid => certtool_verify(scene, kind, &["root-crl", &delta]),
        refused => refused,
    }
}

#[test]
fn gnutls_validates_through_ocsp_full_and_delta_crls() {
    let test = "gnutls_validates_through_ocsp_full_and_delta_crls";
    if !gnutls_present(test) {
        return;
    }
    let scene = Scene::start();
    scene.fetch_crls("before");
    for kind in [AUTH, SIGN] {
        assert_eq!(ocsptool_verdict(&scene, kind), Verdict::Valid);
        let crls = ["root-crl", "full-before"];
        assert_eq!(certtool_verify(&scene, kind, &crls), Verdict::Valid);
        assert_eq!(
            certtool_full_then_delta(&scene, kind, "before"),
            Verdict::Valid
        );
    }
    scene.revoke_both();
    for kind in [AUTH, SIGN] {
        assert_eq!(ocsptool_verdict(&scene, kind), Verdict::Revoked, "{kind}");
        let two_passes = certtool_full_then_delta(&scene, kind, "after");
        assert_eq!(two_passes, Verdict::Revoked, "{kind}");
    }
    let crls = ["root-crl", "full-after"];
    assert_eq!(certtool_verify(&scene, AUTH, &crls), Verdict::Revoked);
    // The trap: full and delta loaded together, the delta replaces the full CRL (GnuTLS
    // ignores its critical Delta CRL Indicator), and AUTH, on the full CRL only, passes.
    let together = ["root-crl", "full-after", "delta-after"];
    assert_eq!(certtool_verify(&scene, AUTH, &together), Verdict::Valid);
    assert_eq!(certtool_verify(&scene, SIGN, &together), Verdict::Revoked);
    // The issuing CA revoked: the second ocsptool run says so.
    assert_eq!(ocsptool_verdict(&scene, KEPT), Verdict::Valid);
    scene.revoke_issuer();
    assert_eq!(ocsptool_verdict(&scene, KEPT), Verdict::IssuerRevoked);
}

// ---- The JDK ----

fn jdk_present(test: &str) -> bool {
    tool_present(
        answers_version("java"),
        "TAMGA_TEST_REQUIRE_JDK",
        test,
        "java is not installed (apt-get install openjdk-17-jdk-headless)",
    )
}

/// `tests/tools/PkixValidate.java` about `kind` with `args` after the anchor and the path.
fn pkix_validate(scene: &Scene, kind: &str, args: &[&str]) -> Verdict {
    let tool = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/PkixValidate.java");
    let cert = format!("{kind}.pem");
    let mut all = vec![
        tool.to_str().unwrap(),
        "--anchor",
        "root.pem",
        "--cert",
        &cert,
        "--cert",
        "issuing.pem",
    ];
    all.extend_from_slice(args);
    let out = scene.run("java", &all);
    let shown = text(&out);
    if out.status.code() == Some(2) && shown.starts_with("REVOKED index=1") {
        return Verdict::IssuerRevoked;
    }
    verdict(
        &out,
        out.status.code() == Some(0) && shown.starts_with("VALID"),
        out.status.code() == Some(2) && shown.starts_with("REVOKED index=0"),
    )
}

#[test]
fn the_jdk_validates_through_ocsp_full_and_delta_crls() {
    let test = "the_jdk_validates_through_ocsp_full_and_delta_crls";
    if !jdk_present(test) {
        return;
    }
    let scene = Scene::start();
    scene.fetch_crls("before");
    // OCSP only, for the whole path.
    let ocsp = ["--revocation", "ocsp"];
    let crl_dp = ["--revocation", "crl", "--crl-dp"];
    let files = |tag: &str| {
        [
            "--revocation".to_owned(),
            "crl".to_owned(),
            "--crl".to_owned(),
            "root-crl.der".to_owned(),
            "--crl".to_owned(),
            format!("full-{tag}.der"),
            "--delta-crl".to_owned(),
            format!("delta-{tag}.der"),
        ]
    };
    let with_delta = |kind: &str, tag: &str| {
        let args = files(tag);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        pkix_validate(&scene, kind, &refs)
    };
    // Both before, in one process each; SIGN alone after, for the checks that differ.
    assert_eq!(pkix_validate(&scene, AUTH, &ocsp), Verdict::Valid);
    assert_eq!(pkix_validate(&scene, AUTH, &crl_dp), Verdict::Valid);
    assert_eq!(with_delta(SIGN, "before"), Verdict::Valid);
    scene.revoke_both();
    assert_eq!(pkix_validate(&scene, AUTH, &ocsp), Verdict::Revoked);
    assert_eq!(pkix_validate(&scene, SIGN, &ocsp), Verdict::Revoked);
    assert_eq!(pkix_validate(&scene, AUTH, &crl_dp), Verdict::Revoked);
    assert_eq!(with_delta(AUTH, "after"), Verdict::Revoked);
    assert_eq!(with_delta(SIGN, "after"), Verdict::Revoked);
    // The trap: the delta given as an ordinary CRL is skipped without a word (its Delta CRL
    // Indicator is critical and unknown to the JDK), and SIGN passes.
    let skipped = [
        "--revocation",
        "crl",
        "--crl",
        "root-crl.der",
        "--crl",
        "full-after.der",
        "--crl",
        "delta-after.der",
    ];
    assert_eq!(pkix_validate(&scene, SIGN, &skipped), Verdict::Valid);
    // The issuing CA revoked: OCSP says so at index 1.
    assert_eq!(pkix_validate(&scene, KEPT, &ocsp), Verdict::Valid);
    scene.revoke_issuer();
    assert_eq!(pkix_validate(&scene, KEPT, &ocsp), Verdict::IssuerRevoked);
}

// ---- NSS ----

fn nss_present(test: &str) -> bool {
    let runs = |program: &str| Command::new(program).arg("-H").output().is_ok();
    tool_present(
        runs("vfychain") && runs("certutil") && runs("crlutil"),
        "TAMGA_TEST_REQUIRE_NSS",
        test,
        "NSS's vfychain, certutil and crlutil are not installed (apt-get install libnss3-tools)",
    )
}

/// A fresh NSS database `nssdb` with the root trusted to issue (`CT,C,C`) and the issuing CA
/// known (`,,`: no trust of its own; crlutil needs it to check the issuing CA's CRLs).
fn nss_database(scene: &Scene) {
    std::fs::create_dir_all(scene.dir.join("nssdb")).unwrap();
    for args in [
        &["-N", "-d", "sql:nssdb", "--empty-password"][..],
        &[
            "-A",
            "-d",
            "sql:nssdb",
            "-n",
            "root",
            "-t",
            "CT,C,C",
            "-a",
            "-i",
            "root.pem",
        ],
        &[
            "-A",
            "-d",
            "sql:nssdb",
            "-n",
            "issuing",
            "-t",
            ",,",
            "-a",
            "-i",
            "issuing.pem",
        ],
    ] {
        let out = scene.run("certutil", args);
        assert!(out.status.success(), "certutil {args:?}: {}", text(&out));
    }
}

/// `vfychain -pp` (libpkix) of `kind` and the issuing CA with the revocation flags `flags`.
fn vfychain(scene: &Scene, kind: &str, flags: &[&str]) -> Verdict {
    // AUTH: SSL client (clientAuth); SIGN: e-mail signer (emailProtection).
    let usage = if kind == AUTH { "0" } else { "4" };
    let cert = format!("{kind}.pem");
    let mut args = vec!["-d", "sql:nssdb", "-pp", "-u", usage];
    args.extend_from_slice(flags);
    args.extend(["-a", &cert, "-a", "issuing.pem"]);
    let out = scene.run("vfychain", &args);
    let shown = text(&out);
    verdict(
        &out,
        out.status.success() && shown.contains("Chain is good!"),
        !out.status.success() && shown.contains("ERROR -8180"),
    )
}

#[test]
fn nss_validates_through_ocsp_and_full_crls() {
    let test = "nss_validates_through_ocsp_and_full_crls";
    if !nss_present(test) {
        return;
    }
    let scene = Scene::start();
    nss_database(&scene);
    // OCSP for the leaf and for the CA certificates above it.
    let ocsp = [
        "-g",
        "leaf",
        "-m",
        "ocsp",
        "-s",
        "failIfNoInfo",
        "-g",
        "chain",
        "-m",
        "ocsp",
        "-s",
        "failIfNoInfo",
    ];
    // The full CRL fetched from the certificate's distribution point.
    let crl = ["-g", "leaf", "-m", "crl"];
    for kind in [AUTH, SIGN] {
        assert_eq!(vfychain(&scene, kind, &ocsp), Verdict::Valid);
        assert_eq!(vfychain(&scene, kind, &crl), Verdict::Valid);
    }
    scene.revoke_both();
    for kind in [AUTH, SIGN] {
        assert_eq!(vfychain(&scene, kind, &ocsp), Verdict::Revoked, "{kind}");
    }
    assert_eq!(vfychain(&scene, AUTH, &crl), Verdict::Revoked);
    // NSS has no delta CRLs: crlutil refuses one, and the CRL check, which reads the full
    // CRL only, passes SIGN.
    let out = scene.run(
        "crlutil",
        &["-I", "-d", "sql:nssdb", "-t", "1", "-i", "delta-after.der"],
    );
    assert!(
        !out.status.success() && text(&out).contains("SEC_ERROR_CRL_UNKNOWN_CRITICAL_EXTENSION"),
        "{}",
        text(&out)
    );
    assert_eq!(vfychain(&scene, SIGN, &crl), Verdict::Valid);
    // Traps. CRL before OCSP for the same test: the CRL answers first and SIGN passes.
    let crl_then_ocsp = [
        "-g",
        "leaf",
        "-m",
        "crl",
        "-m",
        "ocsp",
        "-s",
        "failIfNoInfo",
    ];
    assert_eq!(vfychain(&scene, SIGN, &crl_then_ocsp), Verdict::Valid);
    // "-g chain" alone sets the flags of the CA certificates, not of the leaf.
    let chain_only = ["-g", "chain", "-m", "ocsp", "-s", "failIfNoInfo"];
    assert_eq!(vfychain(&scene, SIGN, &chain_only), Verdict::Valid);
    // The issuing CA revoked: whole-chain OCSP refuses a certificate never revoked itself.
    assert_eq!(vfychain(&scene, KEPT, &ocsp), Verdict::Valid);
    scene.revoke_issuer();
    assert_eq!(vfychain(&scene, KEPT, &ocsp), Verdict::Revoked);
    // The trap: "-g leaf" alone does not ask about the issuing CA.
    let leaf_only = ["-g", "leaf", "-m", "ocsp", "-s", "failIfNoInfo"];
    assert_eq!(vfychain(&scene, KEPT, &leaf_only), Verdict::Valid);
}

// ---- pyhanko-certvalidator ----

fn pyhanko_present(test: &str) -> bool {
    let importable = Command::new("python3")
        .args(["-c", "import pyhanko_certvalidator"])
        .output()
        .is_ok_and(|o| o.status.success());
    tool_present(
        importable,
        "TAMGA_TEST_REQUIRE_PYHANKO",
        test,
        "pyhanko-certvalidator is not installed (pip install pyhanko-certvalidator)",
    )
}

/// `tests/tools/pyhanko_validate.py` about `kind` with `args`.
fn pyhanko(scene: &Scene, kind: &str, args: &[&str]) -> Verdict {
    let tool = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/pyhanko_validate.py");
    let cert = format!("{kind}.pem");
    let mut all = vec![
        tool.to_str().unwrap(),
        "--anchor",
        "root.pem",
        "--intermediate",
        "issuing.pem",
        "--cert",
        &cert,
    ];
    all.extend_from_slice(args);
    let out = scene.run("python3", &all);
    let shown = text(&out);
    let revoked = out.status.code() == Some(2) && shown.starts_with("REVOKED");
    if revoked && shown.contains("intermediate certificate") {
        return Verdict::IssuerRevoked;
    }
    verdict(
        &out,
        out.status.code() == Some(0) && shown.starts_with("VALID"),
        revoked && shown.contains("end-entity certificate"),
    )
}

#[test]
fn pyhanko_certvalidator_validates_through_ocsp_full_and_delta_crls() {
    let test = "pyhanko_certvalidator_validates_through_ocsp_full_and_delta_crls";
    if !pyhanko_present(test) {
        return;
    }
    let scene = Scene::start();
    scene.fetch_crls("before");
    // OCSP required for the whole path, fetched from the certificates' AIA.
    let ocsp = ["--revocation", "ocsp", "--fetch"];
    // Full and delta CRLs from the certificates' URLs, for the whole path.
    let crl = ["--revocation", "crl", "--fetch"];
    let files = |full: &str, delta: &str| {
        [
            "--revocation".to_owned(),
            "crl".to_owned(),
            "--crl".to_owned(),
            "root-crl.der".to_owned(),
            "--crl".to_owned(),
            format!("full-{full}.der"),
            "--crl".to_owned(),
            format!("delta-{delta}.der"),
        ]
    };
    let offline = |kind: &str, full: &str, delta: &str| {
        let args = files(full, delta);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        pyhanko(&scene, kind, &refs)
    };
    for kind in [AUTH, SIGN] {
        assert_eq!(pyhanko(&scene, kind, &ocsp), Verdict::Valid);
    }
    assert_eq!(pyhanko(&scene, AUTH, &crl), Verdict::Valid);
    assert_eq!(offline(SIGN, "before", "before"), Verdict::Valid);
    scene.revoke_both();
    for kind in [AUTH, SIGN] {
        assert_eq!(pyhanko(&scene, kind, &ocsp), Verdict::Revoked, "{kind}");
        assert_eq!(pyhanko(&scene, kind, &crl), Verdict::Revoked, "{kind}");
        assert_eq!(offline(kind, "after", "after"), Verdict::Revoked, "{kind}");
    }
    // A full CRL without the delta its Freshest CRL names is not enough: no verdict.
    let full_only = [
        "--revocation",
        "crl",
        "--crl",
        "root-crl.der",
        "--crl",
        "full-after.der",
    ];
    let tool = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/pyhanko_validate.py");
    let mut args = vec![
        tool.to_str().unwrap(),
        "--anchor",
        "root.pem",
        "--intermediate",
        "issuing.pem",
        "--cert",
        "auth.pem",
    ];
    args.extend_from_slice(&full_only);
    let out = scene.run("python3", &args);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("Delta CRL"), "{}", text(&out));
    // The trap: an old full CRL with a new delta. pyhanko applies the delta without
    // comparing its base CRL number with the full CRL's, and AUTH (revoked between the
    // two full CRLs) passes.
    assert_eq!(offline(AUTH, "before", "after"), Verdict::Valid);
    // The issuing CA revoked: OCSP says so for the intermediate certificate.
    assert_eq!(pyhanko(&scene, KEPT, &ocsp), Verdict::Valid);
    scene.revoke_issuer();
    assert_eq!(pyhanko(&scene, KEPT, &ocsp), Verdict::IssuerRevoked);
}
