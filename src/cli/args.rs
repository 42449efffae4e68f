//! The `tamga` command line as clap types: every command, flag and help text. No command
//! code here: what each command does lives in the file of its group.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config;

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  internal error (I/O, database, cryptography)
  2  usage error (bad arguments)
  3  invalid configuration
  4  not found
  5  refused (the operation is not allowed in this state)
  6  verification failed (a broken audit chain, a backup or database that fails its checks)";

/// Tamga: certification and registration authority server.
#[derive(Debug, Parser)]
#[command(name = "tamga", version, about, after_help = EXIT_CODES)]
pub struct Cli {
    /// Configuration file [default: config/tamga.toml, or the embedded defaults if absent]
    #[arg(long, global = true, env = config::CONFIG_PATH_ENV, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (in dev mode, generates the CA hierarchy on first start).
    Serve,
    /// Configuration commands.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// CA hierarchy commands.
    Ca {
        #[command(subcommand)]
        command: CaCommand,
    },
    /// The offline root: its key and certificate, signing an issuing CA, the root CRL and
    /// the root-signed OCSP responses (run on the root machine, where the root key is).
    Root {
        #[command(subcommand)]
        command: RootCommand,
    },
    /// Certificates.
    Certs {
        #[command(subcommand)]
        command: CertsCommand,
    },
    /// Certificate revocation lists.
    Crl {
        #[command(subcommand)]
        command: CrlCommand,
    },
    /// OCSP for the issuing CA certificate (responses signed offline by the root).
    Ocsp {
        #[command(subcommand)]
        command: OcspCommand,
    },
    /// Applications and the moderation queue.
    Applications {
        #[command(subcommand)]
        command: ApplicationsCommand,
    },
    /// The e-mail outbox.
    Outbox {
        #[command(subcommand)]
        command: OutboxCommand,
    },
    /// The hash-chained audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Back up the database while the server runs (SQLite), or check a database with
    /// --verify (SQLite or PostgreSQL).
    Backup(BackupArgs),
    /// Restore a backup made by `tamga backup` into the configured database, re-applying the
    /// revocations of the newest published CRLs.
    Restore(RestoreArgs),
    /// Development helpers (refused unless mode = "dev").
    Dev {
        #[command(subcommand)]
        command: DevCommand,
    },
    /// Print a shell completion script (e.g. `tamga completions bash >
    /// /etc/bash_completion.d/tamga`). Needs no configuration.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
        /// The script for `tamga-enroll` instead.
        #[arg(long)]
        enroll: bool,
    },
}

/// `tamga certs …`
#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// List signed certificates, newest first.
    List {
        /// Only this holder's.
        #[arg(long)]
        iin: Option<String>,
        /// valid, revoked or expired.
        #[arg(long, value_enum)]
        status: Option<CertFilter>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: i64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one certificate, with its PEM.
    Show {
        /// Serial number.
        serial: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a certificate (exit 4 if unknown, 5 if already revoked).
    Revoke {
        /// Serial number: hex in any case, with or without colons or 0x.
        serial: String,
        /// unspecified, keyCompromise, affiliationChanged, superseded, cessationOfOperation,
        /// certificateHold or privilegeWithdrawn.
        #[arg(long)]
        reason: String,
        /// When the key was compromised (RFC 3339, e.g. 2026-11-20T08:00:00Z).
        #[arg(long)]
        invalidity_date: Option<String>,
        /// Operator recorded in the audit log [default: $USER, else $LOGNAME, else `unknown` with a
        /// warning].
        #[arg(long)]
        operator: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Correct a revoked certificate's invalidity date (audited; the next delta CRL lists the
    /// corrected entry). Exit 5 if it is not revoked, 2 for a date that breaks the rules.
    CorrectRevocation {
        /// Serial number.
        serial: String,
        /// The invalidity date (RFC 3339): not before the certificate's notBefore, not after
        /// its revocation.
        #[arg(
            long,
            conflicts_with = "no_invalidity_date",
            required_unless_present = "no_invalidity_date"
        )]
        invalidity_date: Option<String>,
        /// Remove the stored invalidity date.
        #[arg(long)]
        no_invalidity_date: bool,
        /// Operator recorded in the audit log [default: $USER, else $LOGNAME, else `unknown` with a
        /// warning].
        #[arg(long)]
        operator: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Lift a certificateHold (exit 5 if the certificate is not on hold).
    Release {
        /// Serial number.
        serial: String,
        /// Operator recorded in the audit log [default: $USER, else $LOGNAME, else `unknown` with a
        /// warning].
        #[arg(long)]
        operator: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `--status` of `certs list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CertFilter {
    /// Issued, not revoked, not expired.
    Valid,
    /// Revoked (including on hold).
    Revoked,
    /// Past notAfter and not revoked.
    Expired,
}

/// `tamga applications …`
#[derive(Debug, Subcommand)]
pub enum ApplicationsCommand {
    /// List applications, newest first.
    List {
        /// pending_review, approved, issued or rejected.
        #[arg(long)]
        status: Option<String>,
        /// Only this holder's.
        #[arg(long)]
        iin: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: i64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one application and its certificates.
    Show {
        /// Application id.
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Approve a pending_review application: its certificates are issued (exit 5 if it is
    /// not pending review).
    Approve {
        /// Application id.
        id: String,
        /// Operator recorded in the audit log [default: $USER, else $LOGNAME, else `unknown` with a
        /// warning].
        #[arg(long)]
        operator: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Reject a pending_review application with a reason the holder will read.
    Reject {
        /// Application id.
        id: String,
        /// Why (shown to the holder).
        #[arg(long)]
        reason: String,
        /// Operator recorded in the audit log [default: $USER, else $LOGNAME, else `unknown` with a
        /// warning].
        #[arg(long)]
        operator: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `tamga outbox …`
#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// List queued, sent and dead e-mails, newest first.
    List {
        /// pending, sent or dead.
        #[arg(long)]
        status: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: i64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Queue a dead e-mail again (exit 5 if it is not dead).
    Retry {
        /// Outbox row id.
        id: String,
        /// Operator recorded in the audit log [default: $USER, else $LOGNAME, else `unknown` with a
        /// warning].
        #[arg(long)]
        operator: Option<String>,
    },
}

/// `tamga audit …`
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the hash chain; exit 6 naming the first entry that was altered, removed or
    /// reordered.
    Verify {
        /// A head recorded earlier, `SEQ:HASH` (as `audit verify` prints it): the chain must
        /// still contain that entry with that hash, which detects a truncated or rewritten log.
        #[arg(long, value_name = "SEQ:HASH")]
        expect: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The newest entries.
    Tail {
        /// How many.
        #[arg(short = 'n', default_value_t = 20)]
        n: i64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `tamga crl …`
#[derive(Debug, Subcommand)]
pub enum CrlCommand {
    /// Publish a new full CRL and a delta CRL now.
    Publish {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List stored revocations that CRLs cannot carry as they are (exit 6 if any is left);
    /// with --repair, remove every invalidity date a CRL cannot carry (audited, one entry per
    /// certificate) and publish new CRLs.
    Check {
        /// Correct what can be corrected.
        #[arg(long)]
        repair: bool,
        /// Operator recorded in the audit log [default: $USER, else $LOGNAME, else `unknown` with a
        /// warning].
        #[arg(long)]
        operator: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Verify a root CRL file (signed offline by `tamga root crl`) against the root
    /// certificate and publish it at /crl/root.crl (exit 5 if it is not newer, expired, or
    /// not signed by the root).
    Import {
        /// The CRL file, DER or PEM.
        file: PathBuf,
        /// Operator recorded in the audit log [default: $USER, else $LOGNAME, else `unknown` with a
        /// warning].
        #[arg(long)]
        operator: Option<String>,
    },
}

/// `tamga ocsp …`
#[derive(Debug, Subcommand)]
pub enum OcspCommand {
    /// Verify a batch of root-signed OCSP responses (made by `tamga root ocsp`) and serve
    /// them for the issuing CA certificate: each must be signed by the root, answer for a CA
    /// certificate the root issued, be unexpired and newer than the one held (exit 5
    /// otherwise, and nothing is imported).
    Import {
        /// The batch file (PEM blocks `OCSP RESPONSE`, or one DER response).
        file: PathBuf,
        /// Operator recorded in the audit log [default: $USER, else $LOGNAME, else `unknown` with a
        /// warning].
        #[arg(long)]
        operator: Option<String>,
    },
}

/// `tamga dev …`
#[derive(Debug, Subcommand)]
pub enum DevCommand {
    /// Print a consent token signed with the development Digital ID key (and nothing else).
    ConsentToken(ConsentTokenArgs),
    /// Fill the database with applications issued through the real RA path (benchmarks),
    /// revoke a share of their certificates, and write OCSP requests and an `openssl ocsp`
    /// index for the same certificates into --out.
    Seed {
        /// Applications (each has two certificates).
        #[arg(long, default_value_t = 5000)]
        applications: u32,
        /// Percentage of the certificates to revoke.
        #[arg(long, default_value_t = 10)]
        revoked_percent: u32,
        /// Directory for ocsp-requests.txt, ocsp-requests-nonce.txt and index.txt.
        #[arg(long)]
        out: PathBuf,
    },
    /// Benchmark load: send complete applications (tokens and CSRs made beforehand) to a
    /// running server over several connections; print applications/s and latency as JSON.
    LoadIssuance {
        /// Base URL of the server (not needed with --pool-only).
        #[arg(long, required_unless_present = "pool_only")]
        url: Option<String>,
        /// Applications to send.
        #[arg(long, default_value_t = 1000)]
        applications: u32,
        /// Concurrent connections.
        #[arg(long, default_value_t = 16)]
        concurrency: u32,
        /// Number of the first benchmark holder (runs use different holders).
        #[arg(long, default_value_t = 0)]
        first: u32,
        /// Key type of the two CSRs of each application (`rsa2048` is what `tamga-enroll`
        /// sends).
        #[arg(long, value_enum, default_value = "ec-p256")]
        csr_key: CsrKeyArg,
        /// File of CSR pairs (pair n for holder n): read from it, generated first (on all
        /// cores) and written there when it is missing or holds fewer than --first +
        /// --applications pairs.
        #[arg(long)]
        csr_pool: Option<PathBuf>,
        /// Only make sure --csr-pool holds --first + --applications pairs; send nothing.
        #[arg(long, requires = "csr_pool")]
        pool_only: bool,
    },
    /// Benchmark data: insert revoked certificate rows straight into the database (for CRL
    /// generation) and write an `openssl ca` index.txt with the same entries into --out.
    SeedRevoked {
        /// Revoked certificates to insert.
        #[arg(long)]
        count: u32,
        /// Directory for index.txt.
        #[arg(long)]
        out: PathBuf,
    },
    /// Benchmark baseline: GOST R 34.10-2015 512-bit signatures per second through OpenSSL's
    /// gost engine, on several threads at once; print JSON. Needs no configuration or
    /// database.
    BenchGost {
        /// Threads signing at once (the number of cores, for a ceiling).
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// Seconds to sign for.
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
    },
    /// Benchmark: time the weak-RSA-key checks per key (2048/3072/4096 bits) against one RSA
    /// public and one private operation; print JSON. Needs no configuration or database.
    BenchKeys {
        /// Keys per size.
        #[arg(long, default_value_t = 50)]
        keys: u32,
    },
}

/// `tamga dev consent-token`
#[derive(Debug, Args)]
pub struct ConsentTokenArgs {
    /// The citizen's IIN (12 digits with a valid check digit).
    #[arg(long)]
    pub iin: String,
    /// Surname, as the register gives it.
    #[arg(long)]
    pub surname: String,
    /// Given name.
    #[arg(long)]
    pub name: String,
    /// Patronymic.
    #[arg(long)]
    pub patronymic: Option<String>,
    /// What the consent is for.
    #[arg(long, value_enum, default_value = "eds_issuance")]
    pub purpose: PurposeArg,
    /// Digital ID's state-register match.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub register_match: bool,
    /// Digital ID's liveness check.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub liveness: bool,
    /// Lifetime in seconds (more than 900 makes a token the server refuses).
    #[arg(long, default_value_t = 300)]
    pub ttl: u32,
    /// Seconds the token was issued before now: `iat`, `nbf` and `exp` move back together
    /// (more than the lifetime plus 60 s makes an expired token).
    #[arg(long, default_value_t = 0)]
    pub issued_ago: u32,
}

/// `dev load-issuance --csr-key` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum CsrKeyArg {
    /// EC P-256.
    #[value(name = "ec-p256")]
    EcP256,
    /// RSA-2048.
    #[value(name = "rsa2048")]
    Rsa2048,
    /// EC P-256 AUTH, GOST R 34.10-2015 512-bit SIGN (NCA's form).
    #[value(name = "gost2015-512")]
    Gost2015_512,
}

/// `--purpose` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum PurposeArg {
    /// Issue certificates.
    #[value(name = "eds_issuance")]
    EdsIssuance,
    /// Revoke a certificate.
    #[value(name = "eds_revocation")]
    EdsRevocation,
    /// Re-issue the pair from the cabinet (with `[ra] reissue_requires_consent`).
    #[value(name = "eds_reissue")]
    EdsReissue,
}

/// `tamga config …`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration; exits 3 with a message naming the problem if it is bad.
    Check,
}

/// `tamga ca …`
#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// Generate a CA hierarchy in `[ca] dir`.
    Init(CaInit),
    /// Same as `tamga root crl`.
    RootCrl {
        /// Where to write the CRL (DER).
        #[arg(long)]
        out: PathBuf,
        /// CRL number [default: the last root CRL number signed or published here + 1];
        /// never below the last one.
        #[arg(long)]
        number: Option<i64>,
        /// Operator recorded in the audit log [default: the OS user].
        #[arg(long)]
        operator: Option<String>,
    },
    /// Same as `tamga root ocsp`.
    RootOcsp {
        /// Where to write the batch (PEM blocks `OCSP RESPONSE`).
        #[arg(long)]
        out: PathBuf,
        /// Validity in days, 1 to 365 [default: `[crl] root_validity`, at most 365 days].
        #[arg(long)]
        validity_days: Option<i64>,
        /// Operator recorded in the audit log [default: the OS user].
        #[arg(long)]
        operator: Option<String>,
    },
    /// Key ceremony, on the server: generate the issuing CA key where `[ca.issuing_key]` says
    /// (in the token, or a file with mode 0600) and write a PKCS#10 request for it, to be
    /// signed on the root machine with `tamga root sign-issuing`.
    RequestIssuing {
        /// Where to write the request (PEM).
        #[arg(long)]
        out: PathBuf,
        /// The issuing CA's common name [default: ҰЛТТЫҚ КУӘЛАНДЫРУШЫ ОРТАЛЫҚ (RSA), or
        /// (ECDSA) for an EC key].
        #[arg(long)]
        name: Option<String>,
        /// Replace an existing issuing key: the old key is destroyed (the key file, or the
        /// token's objects with the label) and an installed issuing CA certificate is moved
        /// aside as `<issuer_id>.pem.<serial>.old`; the server then does not start until the
        /// new certificate is installed and `ca init-ocsp --force` has run.
        #[arg(long)]
        force: bool,
        /// Operator recorded in the audit log [default: $USER, else $LOGNAME, else `unknown` with a
        /// warning].
        #[arg(long)]
        operator: Option<String>,
    },
    /// Key ceremony, on the server: check the issuing CA certificate the root signed (for the
    /// issuing key, signed by `root.pem` in `[ca] dir`, the issuing-CA profile, valid now) and
    /// install it (exit 5, nothing installed, if a check fails).
    InstallIssuing {
        /// The certificate, PEM or DER.
        #[arg(long)]
        cert: PathBuf,
        /// Replace an installed issuing CA certificate (kept as `<issuer_id>.pem.<serial>.old`).
        #[arg(long)]
        force: bool,
        /// Operator recorded in the audit log [default: $USER, else $LOGNAME, else `unknown` with a
        /// warning].
        #[arg(long)]
        operator: Option<String>,
    },
    /// Key ceremony, on the server: generate the OCSP responder key where `[ca.ocsp_key]` says
    /// and certify it with the installed issuing CA.
    InitOcsp {
        /// Replace an existing responder key (it is lost) and certificate.
        #[arg(long)]
        force: bool,
        /// Operator recorded in the audit log [default: $USER, else $LOGNAME, else `unknown` with a
        /// warning].
        #[arg(long)]
        operator: Option<String>,
    },
    /// Reissue the issuing CA certificate with the same key (adds the root CRL distribution
    /// point, the OCSP URL and caIssuers to an older hierarchy). Needs the root key.
    ReissueIssuing,
    /// Revoke the issuing CA certificate through the root CRL (the day its key is
    /// compromised; see docs/architecture.md for the whole procedure).
    RevokeIssuer {
        /// keyCompromise (the usual case), cessationOfOperation, superseded, …
        #[arg(long)]
        reason: String,
        /// Operator recorded in the audit log [default: $USER, else $LOGNAME, else `unknown` with a
        /// warning].
        #[arg(long)]
        operator: Option<String>,
    },
    /// Show the hierarchy: names, validity, key types and where each key lives.
    Show {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// `tamga ca init`
#[derive(Debug, Args)]
pub struct CaInit {
    /// Generate a development hierarchy (root, issuing CA, OCSP responder, Digital ID key).
    #[arg(long)]
    pub dev: bool,
    /// Replace an existing hierarchy (its keys are lost).
    #[arg(long)]
    pub force: bool,
    /// Generate the keys that `[ca.issuing_key]` / `[ca.ocsp_key]` place in a PKCS#11 token
    /// (kind = "pkcs11") inside that token: sensitive, not extractable. The root is a
    /// development root, as with --dev.
    #[arg(long)]
    pub pkcs11: bool,
    /// Operator recorded in the audit log [default: $USER, else $LOGNAME, else `unknown` with a
    /// warning].
    #[arg(long)]
    pub operator: Option<String>,
}

/// `tamga backup`
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The backup directory to create (it must not exist): `tamga.db` and `manifest.json`.
    /// SQLite only; a PostgreSQL database is backed up with pg_dump.
    #[arg(long, value_name = "DIR", required_unless_present = "verify")]
    pub out: Option<PathBuf>,
    /// Check the configured database instead (after a restore, or after pg_restore): schema
    /// version, audit chain, and with --published-crl the CRL numbers and revocations (exit 6
    /// if a check fails).
    #[arg(long, conflicts_with = "out")]
    pub verify: bool,
    /// With --verify: the newest CRLs relying parties hold (DER or PEM); the database must
    /// hold every revocation they list and a CRL number at least as high.
    #[arg(long, value_name = "FILE", num_args = 1.., requires = "verify")]
    pub published_crl: Vec<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `tamga restore`
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup directory made by `tamga backup --out` (SQLite). Without it, the published
    /// CRLs are applied to the configured database as it stands (after pg_restore).
    #[arg(long, value_name = "DIR")]
    pub from: Option<PathBuf>,
    /// The newest CRLs relying parties hold (full and delta, from the CDN or any instance;
    /// DER or PEM), verified against the CA certificates: every revocation they list that the
    /// backup lacks is applied again, and the next CRL number is above theirs.
    /// Without it (or --accept-revocation-loss) the restore is refused (exit 5).
    #[arg(long, value_name = "FILE", num_args = 1..)]
    pub published_crl: Vec<PathBuf>,
    /// Restore without published CRLs: certificates revoked after the backup answer `good`
    /// again (audited). Only when no CRL was ever published since the backup.
    #[arg(long, conflicts_with = "published_crl")]
    pub accept_revocation_loss: bool,
    /// Replace an existing database (it is kept beside, renamed `….replaced-<time>`).
    #[arg(long)]
    pub force: bool,
    /// Operator recorded in the audit log [default: $USER, else $LOGNAME, else `unknown` with a
    /// warning].
    #[arg(long)]
    pub operator: Option<String>,
}

/// `tamga root …`: everything the offline root does, on the root machine.
#[derive(Debug, Subcommand)]
pub enum RootCommand {
    /// Generate the root key where `[ca.root_key]` says (root.key.pem with mode 0600 in
    /// `[ca] dir`, or in the token) and the self-signed root certificate root.pem.
    Init {
        /// The root's common name.
        #[arg(long, default_value = "ҚР ТҮБІРЛІК КУӘЛАНДЫРУШЫ ОРТАЛЫҒЫ (RSA)")]
        name: String,
        /// Validity in years, 1 to 30.
        #[arg(long, default_value_t = 20)]
        validity_years: i64,
        /// Replace an existing root (its key is lost).
        #[arg(long)]
        force: bool,
        /// Operator recorded in the audit log [default: $USER, else $LOGNAME, else `unknown` with a
        /// warning].
        #[arg(long)]
        operator: Option<String>,
    },
    /// Certify an issuing CA from its PKCS#10 request (made by `tamga ca request-issuing`)
    /// with the issuing-CA profile; refuses (exit 5) a request whose signature does not verify
    /// or whose key is weak or of a type an issuing CA may not have.
    SignIssuing {
        /// The request, PEM.
        #[arg(long)]
        csr: PathBuf,
        /// Where to write the certificate (PEM).
        #[arg(long)]
        out: PathBuf,
        /// The issuing CA's common name [default: the request's].
        #[arg(long)]
        name: Option<String>,
        /// Validity in years, 1 to 30, never past the root's.
        #[arg(long, default_value_t = 10)]
        validity_years: i64,
        /// Operator recorded in the audit log [default: $USER, else $LOGNAME, else `unknown` with a
        /// warning].
        #[arg(long)]
        operator: Option<String>,
    },
    /// Sign the next root CRL with the root key on this machine (the root alone suffices),
    /// listing the CA certificates revoked in this machine's database, record it there and
    /// write it to a file (publish it with `tamga crl import FILE`). Also `tamga ca root-crl`.
    Crl {
        /// Where to write the CRL (DER).
        #[arg(long)]
        out: PathBuf,
        /// CRL number [default: the last root CRL number signed or published here + 1];
        /// never below the last one.
        #[arg(long)]
        number: Option<i64>,
        /// Operator recorded in the audit log [default: the OS user].
        #[arg(long)]
        operator: Option<String>,
    },
    /// Sign OCSP responses for the root's CA certificates (those in its register `[ca]
    /// dir/issued/` still valid, the issuing CA certificates in `[ca] dir` where this machine
    /// has them, and any revoked in this machine's database) with the root key and write them
    /// to a file (serve them with `tamga ocsp import FILE`). Also `tamga ca root-ocsp`.
    Ocsp {
        /// Where to write the batch (PEM blocks `OCSP RESPONSE`).
        #[arg(long)]
        out: PathBuf,
        /// Validity in days, 1 to 365 [default: `[crl] root_validity`, at most 365 days].
        #[arg(long)]
        validity_days: Option<i64>,
        /// Operator recorded in the audit log [default: the OS user].
        #[arg(long)]
        operator: Option<String>,
    },
    /// Revoke a CA certificate the root signed (one in its register, or an issuing CA
    /// certificate in `[ca] dir`), in this machine's database: the next `root crl` lists it
    /// and the next `root ocsp` answers `revoked` for it. Exit 4 if the root did not sign it
    /// (as far as this machine knows), 5 if it is already revoked.
    RevokeIssuing {
        /// The certificate's serial number (hex).
        #[arg(long)]
        serial: String,
        /// keyCompromise, cACompromise, affiliationChanged, superseded,
        /// cessationOfOperation, …
        #[arg(long)]
        reason: String,
        /// Operator recorded in the audit log [default: the OS user].
        #[arg(long)]
        operator: Option<String>,
    },
}
