//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The environment variable with a PostgreSQL URL for the PostgreSQL tests.
pub const POSTGRES_ENV: &str = "TAMGA_TEST_POSTGRES_URL";

/// Path of the built `tamga` binary.
pub fn tamga_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tamga"))
}

/// A `tamga` command run in `dir`, with no `TAMGA_*` variables inherited from the caller.
pub fn tamga(dir: &Path) -> Command {
    let mut cmd = Command::new(tamga_bin());
    cmd.current_dir(dir);
    for (key, _) in std::env::vars() {
        if key.starts_with("TAMGA_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("RUST_LOG", "warn");
    // cargo points the test process's OpenSSL at the gost engine's configuration alone; the
    // binary starts OpenSSL itself, as it does for an operator (see `gost::init`).
    cmd.env_remove("OPENSSL_CONF");
    // A test directory with its own SoftHSM2 token (see `softhsm_hierarchy`).
    let softhsm_conf = dir.join("softhsm2.conf");
    if softhsm_conf.exists() {
        cmd.env("SOFTHSM2_CONF", softhsm_conf);
    }
    cmd
}

/// The `tamga-enroll` binary as a citizen runs it: it starts OpenSSL itself (see `tamga`).
pub fn tamga_enroll() -> Command {
    let mut cmd = Command::new(tamga_bin().with_file_name("tamga-enroll"));
    cmd.env_remove("OPENSSL_CONF");
    cmd
}

/// The SoftHSM2 PKCS#11 library, as Debian installs it.
pub const SOFTHSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// The user PIN of test tokens.
pub const SOFTHSM_PIN: &str = "246810";

/// Whether an outside tool `test` needs is `present`. When it is not, the test fails where
/// the CI variable `require` is set, and otherwise reports itself skipped, saying `missing`.
pub fn tool_present(present: bool, require: &str, test: &str, missing: &str) -> bool {
    if !present {
        assert!(
            std::env::var_os(require).is_none(),
            "{require} is set but {missing}"
        );
        skipped(test, missing);
    }
    present
}

/// Whether `program --version` runs and succeeds.
pub fn answers_version(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Whether SoftHSM2 is installed; otherwise report `test` skipped (or fail, where
/// `TAMGA_TEST_REQUIRE_SOFTHSM` is set, as in CI).
pub fn softhsm_available(test: &str) -> bool {
    tool_present(
        Path::new(SOFTHSM_MODULE).exists() && answers_version("softhsm2-util"),
        "TAMGA_TEST_REQUIRE_SOFTHSM",
        test,
        "SoftHSM2 is not installed (apt-get install softhsm2)",
    )
}

/// A SoftHSM2 token labelled `label` of its own in `dir` (`softhsm2.conf`, which `tamga(dir)`
/// points SoftHSM2 at), with the user PIN in `dir/hsm.pin`.
pub fn softhsm_token(dir: &Path, label: &str) {
    let tokens = dir.join("softhsm-tokens");
    std::fs::create_dir_all(&tokens).unwrap();
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        ),
    )
    .unwrap();
    let out = Command::new("softhsm2-util")
        .env("SOFTHSM2_CONF", &conf)
        .args(["--init-token", "--free", "--label", label])
        .args(["--pin", SOFTHSM_PIN, "--so-pin", "13579111"])
        .output()
        .expect("softhsm2-util");
    assert!(out.status.success(), "{}", text(&out));
    std::fs::write(dir.join("hsm.pin"), format!("{SOFTHSM_PIN}\n")).unwrap();
}

/// Make `dir` a Tamga working directory whose issuing CA and OCSP responder keys live in a
/// fresh SoftHSM2 token: `softhsm2.conf` with its own token directory, a token labelled
/// `tamga-test`, `config/tamga.toml` pointing both keys at it (PIN in `hsm.pin`), and the
/// hierarchy made by the real `tamga ca init --pkcs11`. `ca` holds extra `[ca]` lines (key
/// types).
pub fn softhsm_hierarchy(dir: &Path, ca: &str) {
    softhsm_token(dir, "tamga-test");
    let key = |label: &str| {
        format!(
            "kind = \"pkcs11\"\nmodule = \"{SOFTHSM_MODULE}\"\ntoken_label = \"tamga-test\"\n\
             key_label = \"{label}\"\npin_file = \"hsm.pin\"\n"
        )
    };
    std::fs::create_dir_all(dir.join("config")).unwrap();
    std::fs::write(
        dir.join("config/tamga.toml"),
        format!(
            "[ca]\n{ca}\n[ca.issuing_key]\n{}\n[ca.ocsp_key]\n{}",
            key("issuing"),
            key("ocsp")
        ),
    )
    .unwrap();
    let out = run(tamga(dir).args(["ca", "init", "--pkcs11"]));
    assert!(out.status.success(), "{}", text(&out));
}

/// Run and collect output.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run tamga")
}

/// stdout + stderr as text.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The PostgreSQL admin URL, or `None` after printing that the test was skipped.
pub fn postgres_url(test: &str) -> Option<String> {
    match std::env::var(POSTGRES_ENV) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            skipped(
                test,
                &format!("set {POSTGRES_ENV} to run it against PostgreSQL"),
            );
            None
        }
    }
}

/// Report a skipped test where the person running the suite sees it: straight to the
/// process's stderr, which the test harness does not capture (unlike `eprintln!`).
pub fn skipped(test: &str, why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
}

/// A fresh PostgreSQL database, dropped when this guard is dropped.
pub struct PgDatabase {
    admin_url: String,
    name: String,
    /// URL of the new database.
    pub url: String,
}

impl PgDatabase {
    /// Create `tamga_test_<random>` through `psql`.
    pub fn create(admin_url: &str) -> PgDatabase {
        let name = format!("tamga_test_{}", uuid::Uuid::new_v4().simple());
        psql(admin_url, &format!("CREATE DATABASE {name}"));
        let mut url = url::Url::parse(admin_url).expect("postgres URL");
        url.set_path(&format!("/{name}"));
        PgDatabase {
            admin_url: admin_url.to_owned(),
            name,
            url: url.to_string(),
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        psql(
            &self.admin_url,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

fn psql(url: &str, sql: &str) {
    let out = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
        .output()
        .expect("psql must be installed for the PostgreSQL tests");
    assert!(out.status.success(), "psql {sql}: {}", text(&out));
}

/// The `openssl` command with the system's configuration, as a user runs it: without the
/// `OPENSSL_CONF` cargo gives the test process (the gost engine's configuration alone, which
/// would leave out the system's defaults, such as the extensions of `req -x509`).
pub fn openssl_command() -> Command {
    let mut cmd = Command::new("openssl");
    cmd.env_remove("OPENSSL_CONF");
    cmd
}

/// Run the `openssl` CLI, asserting success; returns stdout.
pub fn openssl(dir: &Path, args: &[&str]) -> String {
    let out = openssl_command()
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl CLI");
    assert!(
        out.status.success(),
        "openssl {}: {}",
        args.join(" "),
        text(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The development root certificate, in a directory after `tamga ca init --dev`.
pub const DEV_ROOT: &str = "certs-dev/root.pem";
/// The development issuing CA's certificate.
pub const DEV_ISSUING: &str = "certs-dev/nca_rsa_dev.pem";
/// The development OCSP responder's certificate.
pub const DEV_OCSP: &str = "certs-dev/ocsp_nca_rsa_dev.pem";

/// What `openssl x509 -text` prints about the certificate in `file`.
pub fn x509_text(dir: &Path, file: &str) -> String {
    openssl(dir, &["x509", "-in", file, "-noout", "-text"])
}

/// `x509_text` with names printed as UTF-8.
pub fn x509_text_utf8(dir: &Path, file: &str) -> String {
    openssl(
        dir,
        &["x509", "-in", file, "-noout", "-text", "-nameopt", "utf8"],
    )
}

/// `openssl verify` of `certs` up to the development root through the intermediates in
/// `untrusted`, asserting that openssl ran; returns what it printed.
pub fn verify_chain(dir: &Path, untrusted: &str, certs: &[&str]) -> String {
    verify_chain_to(dir, DEV_ROOT, untrusted, certs)
}

/// `verify_chain` up to the root certificate in `root`.
pub fn verify_chain_to(dir: &Path, root: &str, untrusted: &str, certs: &[&str]) -> String {
    let mut args = vec!["verify", "-CAfile", root, "-untrusted", untrusted];
    args.extend_from_slice(certs);
    openssl(dir, &args)
}

/// `tamga serve` in `dir` listening on 127.0.0.1:`port`, its public URL speaking `scheme`.
pub fn serve_command(dir: &Path, port: u16, scheme: &str) -> Command {
    let mut cmd = tamga(dir);
    cmd.arg("serve")
        .env("TAMGA_SERVER__BIND", format!("127.0.0.1:{port}"))
        .env(
            "TAMGA_SERVER__PUBLIC_URL",
            format!("{scheme}://127.0.0.1:{port}"),
        );
    cmd
}

/// Makes HTTP clients for talking to a server.
type HttpClients = std::sync::Arc<dyn Fn() -> reqwest::blocking::Client + Send + Sync>;

/// A `tamga serve` child process, killed when dropped.
pub struct Server {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT` (`https://…` for a TLS listener)
    pub base: String,
    /// Working directory.
    pub dir: PathBuf,
    /// Makes the client `get` and the readiness wait use (a new one each time: a pooled
    /// connection the server closes while idle would fail the next request).
    http: HttpClients,
    /// Where its stderr goes, when not piped.
    log: Option<PathBuf>,
}

impl Server {
    /// Start `tamga serve` in `dir` on a free port with extra environment, and wait for
    /// `/readyz` to answer 200.
    pub fn start(dir: &Path, env: &[(&str, &str)]) -> Server {
        Server::start_with(dir, env, "http", client)
    }

    /// Start `tamga serve` whose listener speaks `scheme` (`https` when the environment
    /// configures `[server.tls]`), checking readiness through `http`.
    pub fn start_with(
        dir: &Path,
        env: &[(&str, &str)],
        scheme: &str,
        http: impl Fn() -> reqwest::blocking::Client + Send + Sync + 'static,
    ) -> Server {
        let mut server = Server::spawn(
            dir,
            free_port(),
            env,
            scheme,
            std::sync::Arc::new(http),
            None,
        );
        server.wait_ready();
        server
    }

    /// Start `tamga serve` (plain HTTP) in `dir` on `port` (so a restarted server keeps the
    /// URLs written into certificates), its stderr appended to `log`; does not wait for
    /// readiness.
    pub fn spawn_logged(dir: &Path, port: u16, env: &[(&str, &str)], log: &Path) -> Server {
        Server::spawn(
            dir,
            port,
            env,
            "http",
            std::sync::Arc::new(client),
            Some(log),
        )
    }

    fn spawn(
        dir: &Path,
        port: u16,
        env: &[(&str, &str)],
        scheme: &str,
        http: HttpClients,
        log: Option<&Path>,
    ) -> Server {
        let mut cmd = serve_command(dir, port, scheme);
        cmd.env("TAMGA_SERVER__WORKERS", "2").stdout(Stdio::null());
        match log {
            Some(path) => {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .expect("server log file");
                cmd.stderr(Stdio::from(file));
            }
            None => {
                cmd.stderr(Stdio::piped());
            }
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn tamga serve");
        Server {
            child: Some(child),
            base: format!("{scheme}://127.0.0.1:{port}"),
            dir: dir.to_path_buf(),
            http,
            log: log.map(Path::to_path_buf),
        }
    }

    /// Wait (up to 90 s) until `/readyz` answers 200; panics if the process exits first.
    pub fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(90);
        let client = (self.http)();
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    let out = self.child.take().unwrap().wait_with_output().unwrap();
                    let log = self
                        .log
                        .as_ref()
                        .and_then(|p| std::fs::read_to_string(p).ok())
                        .unwrap_or_default();
                    panic!("tamga serve exited early ({status}): {}{log}", text(&out));
                }
            }
            if let Ok(r) = client.get(format!("{}/readyz", self.base)).send() {
                if r.status() == 200 {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("tamga serve did not become ready within 90 s");
    }

    /// Kill the process with SIGKILL (no shutdown of any kind) and reap it.
    pub fn kill(mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL tamga serve");
            let _ = child.wait();
        }
    }

    /// The process id of the running server.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// GET a path.
    pub fn get(&self, path: &str) -> reqwest::blocking::Response {
        (self.http)()
            .get(format!("{}{path}", self.base))
            .send()
            .expect("GET")
    }

    /// Send SIGTERM and wait for the exit; returns whether it exited successfully and its
    /// stderr.
    pub fn terminate(mut self) -> (bool, String) {
        let child = self.child.take().expect("running");
        let pid = child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success());
        let out = child.wait_with_output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// POST `body` as JSON to `url` with the bearer `token`.
pub fn post_json(url: &str, token: &str, body: &serde_json::Value) -> reqwest::blocking::Response {
    client()
        .post(url)
        .bearer_auth(token)
        .json(body)
        .send()
        .unwrap()
}

/// An HTTP client with short timeouts.
pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// A PostgreSQL instance of one test's own (initdb in a temporary directory, its own port),
/// so that the test may stop and start it without disturbing anyone. Stopped when dropped.
pub struct OwnPostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Run the PostgreSQL programs as the `postgres` user (they refuse to run as root).
    as_postgres: bool,
}

impl OwnPostgres {
    /// Where `initdb` and `pg_ctl` are: the newest `/usr/lib/postgresql/*/bin`, else `PATH`.
    fn bin_dir() -> Option<PathBuf> {
        let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join("bin"))
            .filter(|b| b.join("pg_ctl").exists() && b.join("initdb").exists())
            .collect();
        versions.sort_by_key(|p| {
            p.parent()
                .and_then(|v| v.file_name())
                .and_then(|v| v.to_str())
                .and_then(|v| v.parse::<u32>().ok())
        });
        if let Some(newest) = versions.pop() {
            return Some(newest);
        }
        let found = Command::new("sh")
            .args(["-c", "command -v pg_ctl"])
            .output()
            .ok()?;
        let path = String::from_utf8_lossy(&found.stdout).trim().to_owned();
        (!path.is_empty())
            .then(|| PathBuf::from(path).parent().map(Path::to_path_buf))
            .flatten()
    }

    /// initdb and start a new instance; `None` (the test reports itself skipped) when
    /// `TAMGA_TEST_POSTGRES_URL` is not set, as for every PostgreSQL test.
    pub fn start(test: &str) -> Option<OwnPostgres> {
        postgres_url(test)?;
        let bin = Self::bin_dir().expect("PostgreSQL server programs (initdb, pg_ctl)");
        let as_postgres = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false);
        let dir = tempfile::Builder::new()
            .prefix("tamga-own-pg")
            .tempdir()
            .unwrap();
        if as_postgres {
            let out = Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(dir.path())
                .output()
                .unwrap();
            assert!(out.status.success(), "chown: {}", text(&out));
        }
        let pg = OwnPostgres {
            dir,
            bin,
            port: free_port(),
            as_postgres,
        };
        let data = pg.dir.path().join("data");
        let out = pg
            .command("initdb")
            .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "-D"])
            .arg(&data)
            .output()
            .unwrap();
        assert!(out.status.success(), "initdb: {}", text(&out));
        pg.pg_ctl_start();
        Some(pg)
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(path);
            cmd
        } else {
            Command::new(path)
        }
    }

    /// URL of its `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// `pg_ctl start`, waiting until it accepts connections.
    pub fn pg_ctl_start(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {}",
            self.port,
            self.dir.path().display()
        );
        let out = self
            .command("pg_ctl")
            .args(["-w", "-t", "60", "-o", &options, "-l"])
            .arg(self.dir.path().join("log"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .arg("start")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl start: {}{}",
            text(&out),
            std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
        );
    }

    /// `pg_ctl stop -m immediate`: every server process exits at once, as in a crash.
    pub fn stop_immediate(&self) {
        let out = self
            .command("pg_ctl")
            .args(["-w", "-m", "immediate", "-D"])
            .arg(self.dir.path().join("data"))
            .arg("stop")
            .output()
            .unwrap();
        assert!(out.status.success(), "pg_ctl stop: {}", text(&out));
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .args(["-w", "-m", "immediate", "-D"])
            .arg(self.dir.path().join("data"))
            .arg("stop")
            .output();
    }
}

/// The environment of a server in production mode over the hierarchy `production_hierarchy`
/// wrote (its Digital ID key the development one).
pub const PRODUCTION: [(&str, &str); 3] = [
    ("TAMGA_MODE", "production"),
    ("TAMGA_CA__DIR", "certs-dev"),
    (
        "TAMGA_DIGITAL_ID__KEYS",
        "[\"certs-dev/digital_id_dev.pub.pem\"]",
    ),
];

/// A production server's `certs-dev/` in `dir`, from the development hierarchy in `root_dir`:
/// every file but the root key and the marker of a development root, which production
/// refuses. Run the server with [`PRODUCTION`].
pub fn production_hierarchy(root_dir: &Path, dir: &Path) {
    std::fs::create_dir_all(dir.join("certs-dev")).unwrap();
    for entry in std::fs::read_dir(root_dir.join("certs-dev")).unwrap() {
        let name = entry.unwrap().file_name();
        if name != "root.key.pem" && name != "root.development" {
            std::fs::copy(
                root_dir.join("certs-dev").join(&name),
                dir.join("certs-dev").join(&name),
            )
            .unwrap();
        }
    }
}

/// The group-commit counters of one server's `/metrics`: shared write transactions committed
/// and the writes they held (`tamga_store_group_commits_total`,
/// `tamga_store_grouped_writes_total`). Sums over several servers, or over the incarnations of
/// one, add up with `+`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct GroupCommits {
    pub commits: u64,
    pub writes: u64,
}

impl GroupCommits {
    /// The counters a server at `base` shows now, or `None` when it does not answer (not
    /// started yet, being killed): a scrape of a server under test must not fail the test.
    pub fn scrape(base: &str) -> Option<GroupCommits> {
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let resp = http.get(format!("{base}/metrics")).send().ok()?;
        if resp.status() != 200 {
            return None;
        }
        GroupCommits::parse(&resp.text().ok()?)
    }

    /// The counters in a Prometheus text exposition; `None` unless both are there.
    pub fn parse(metrics: &str) -> Option<GroupCommits> {
        let value = |name: &str| {
            metrics.lines().find_map(|line| {
                let rest = line.strip_prefix(name)?.strip_prefix(' ')?;
                rest.trim().parse::<u64>().ok()
            })
        };
        Some(GroupCommits {
            commits: value("tamga_store_group_commits_total")?,
            writes: value("tamga_store_grouped_writes_total")?,
        })
    }

    /// Writes per committed transaction (0 when nothing was committed).
    pub fn per_commit(&self) -> f64 {
        if self.commits == 0 {
            0.0
        } else {
            self.writes as f64 / self.commits as f64
        }
    }
}

impl std::ops::Add for GroupCommits {
    type Output = GroupCommits;

    fn add(self, other: GroupCommits) -> GroupCommits {
        GroupCommits {
            commits: self.commits + other.commits,
            writes: self.writes + other.writes,
        }
    }
}

/// A new key of `kind` (`ec`: P-256, `rsa:2048`), its PKCS#10 request (PEM, the subject a
/// placeholder the CA ignores) and the key as PKCS#8 PEM, made in-process: for tests that
/// need hundreds, where starting `openssl req` for each costs more than the key.
pub fn csr_in_process(kind: &str) -> (String, Vec<u8>) {
    use openssl::pkey::PKey;
    let key = match kind {
        "ec" => {
            let group =
                openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
            PKey::from_ec_key(openssl::ec::EcKey::generate(&group).unwrap()).unwrap()
        }
        "rsa:2048" => PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap(),
        other => panic!("no key of kind {other}"),
    };
    let mut name = openssl::x509::X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "Requested Name Is Ignored")
        .unwrap();
    let mut req = openssl::x509::X509ReqBuilder::new().unwrap();
    req.set_subject_name(&name.build()).unwrap();
    req.set_pubkey(&key).unwrap();
    req.sign(&key, openssl::hash::MessageDigest::sha256())
        .unwrap();
    let pem = String::from_utf8(req.build().to_pem().unwrap()).unwrap();
    (pem, key.private_key_to_pem_pkcs8().unwrap())
}
