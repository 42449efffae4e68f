//! The `tamga` command line: argument parsing (clap) and the commands, with one place that
//! turns errors into exit codes.
//!
//! Owns: what each subcommand prints and which exit code it returns. Must never: reach into
//! the database or keys other than through the store and the CA module's APIs.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};

use crate::api::{self, AppState, CrlCache, Metrics};
use crate::ca::{self, Hierarchy, HierarchyFiles, Issuer};
use crate::clock::{Clock, SystemClock};
use crate::config::{self, LogFormat, Mode, ValidConfig};
use crate::crl::{CrlKind, CrlPublisher};
use crate::digital_id::{self, TrustedKeys};
use crate::ra::Registrar;
use crate::store::{AuditEntry, Store};
use crate::vocab::{KeyType, RevocationReason};

/// `println!` that returns a write error (stdout closed: `tamga certs list | head -1`) as
/// [`Failure::Output`] instead of panicking; use as `out!(…)?`.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*).map_err(Failure::Output)
    }};
}

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  internal error (I/O, database, cryptography)
  2  usage error (bad arguments)
  3  invalid configuration
  4  not found
  5  refused (the operation is not allowed in this state)
  6  verification failed (audit verify found a broken chain)";

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
    /// Development helpers (refused unless mode = "dev").
    Dev {
        #[command(subcommand)]
        command: DevCommand,
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
        /// Operator recorded in the audit log [default: the OS user].
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
        /// Operator recorded in the audit log [default: the OS user].
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
        /// Operator recorded in the audit log [default: the OS user].
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
        /// Operator recorded in the audit log [default: the OS user].
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
        /// Operator recorded in the audit log [default: the OS user].
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
        /// Operator recorded in the audit log [default: the OS user].
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
        /// Operator recorded in the audit log [default: the OS user].
        #[arg(long)]
        operator: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Verify a root CRL file (signed offline by `tamga ca root-crl`) against the root
    /// certificate and publish it at /crl/root.crl (exit 5 if it is not newer, expired, or
    /// not signed by the root).
    Import {
        /// The CRL file, DER or PEM.
        file: PathBuf,
        /// Operator recorded in the audit log [default: the OS user].
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
        /// Base URL of the server.
        #[arg(long)]
        url: String,
        /// Applications to send.
        #[arg(long, default_value_t = 1000)]
        applications: u32,
        /// Concurrent connections.
        #[arg(long, default_value_t = 16)]
        concurrency: u32,
        /// Number of the first benchmark holder (runs use different holders).
        #[arg(long, default_value_t = 0)]
        first: u32,
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
    /// Sign the next root CRL with the root key on this machine and write it to a file
    /// (publish it with `tamga crl import FILE`).
    RootCrl {
        /// Where to write the CRL (DER).
        #[arg(long)]
        out: PathBuf,
        /// CRL number [default: the published root CRL's number + 1].
        #[arg(long)]
        number: Option<i64>,
    },
    /// Reissue the issuing CA certificate with the same key (adds the root CRL distribution
    /// point and caIssuers to an older development hierarchy). Needs the root key.
    ReissueIssuing,
    /// Revoke the issuing CA certificate through the root CRL (the day its key is
    /// compromised; see docs/architecture.md for the whole procedure).
    RevokeIssuer {
        /// keyCompromise (the usual case), cessationOfOperation, superseded, …
        #[arg(long)]
        reason: String,
        /// Operator recorded in the audit log [default: the OS user].
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
}

/// A command's failure, carrying its exit code.
#[derive(Debug)]
pub enum Failure {
    /// Exit 1.
    Internal(anyhow::Error),
    /// Exit 2.
    Usage(String),
    /// Exit 3.
    Config(config::ConfigError),
    /// Exit 4.
    NotFound(String),
    /// Exit 5.
    Refused(String),
    /// Exit 6.
    Verification(String),
    /// Standard output could not be written: exit 0 without a word when the reader went
    /// away (a closed pipe), exit 1 for any other error (a full disk).
    Output(std::io::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Internal(e)
    }
}

impl Failure {
    fn exit_code(&self) -> u8 {
        match self {
            Failure::Internal(_) => 1,
            Failure::Usage(_) => 2,
            Failure::Config(_) => 3,
            Failure::NotFound(_) => 4,
            Failure::Refused(_) => 5,
            Failure::Verification(_) => 6,
            Failure::Output(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
            Failure::Output(_) => 1,
        }
    }
}

/// Parse arguments, run the command, and map the outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            match &failure {
                Failure::Internal(e) => eprintln!("tamga: error: {e:#}"),
                Failure::Usage(m) => eprintln!("tamga: {m}"),
                Failure::Config(e) => eprintln!("tamga: invalid configuration: {e}"),
                Failure::NotFound(m) => eprintln!("tamga: not found: {m}"),
                Failure::Refused(m) => eprintln!("tamga: refused: {m}"),
                Failure::Verification(m) => eprintln!("tamga: verification failed: {m}"),
                // Whoever read the output stopped reading: nothing to report.
                Failure::Output(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                Failure::Output(e) => eprintln!("tamga: error: writing to standard output: {e}"),
            }
            ExitCode::from(failure.exit_code())
        }
    }
}

fn load_config(cli: &Cli) -> Result<ValidConfig, Failure> {
    let (path, explicit) = match &cli.config {
        Some(p) => (p.clone(), true),
        None => (PathBuf::from(config::DEFAULT_CONFIG_PATH), false),
    };
    let env = config::environment().map_err(Failure::Config)?;
    config::load(&path, explicit, env).map_err(Failure::Config)
}

fn run(cli: Cli) -> Result<(), Failure> {
    let config = load_config(&cli)?;
    init_logging(&config);
    match cli.command {
        Command::Serve => serve(config),
        Command::Config {
            command: ConfigCommand::Check,
        } => config_check(&config),
        Command::Ca {
            command: CaCommand::Init(args),
        } => ca_init(&config, &args),
        Command::Ca {
            command: CaCommand::Show { json },
        } => ca_show(&config, json),
        Command::Dev {
            command: DevCommand::ConsentToken(args),
        } => dev_consent_token(&config, &args),
        Command::Dev {
            command:
                DevCommand::Seed {
                    applications,
                    revoked_percent,
                    out,
                },
        } => crate::dev::bench::seed(&config, applications, revoked_percent, &out)
            .map_err(|e| Failure::Internal(anyhow::anyhow!("{e}"))),
        Command::Dev {
            command:
                DevCommand::LoadIssuance {
                    url,
                    applications,
                    concurrency,
                    first,
                },
        } => {
            let report =
                crate::dev::bench::load_issuance(&config, &url, applications, concurrency, first)
                    .map_err(|e| Failure::Internal(anyhow::anyhow!("{e}")))?;
            out!(
                "{}",
                serde_json::to_string(&report).map_err(|e| Failure::Internal(e.into()))?
            )?;
            Ok(())
        }
        Command::Dev {
            command: DevCommand::SeedRevoked { count, out },
        } => crate::dev::bench::seed_revoked(&config, count, &out)
            .map_err(|e| Failure::Internal(anyhow::anyhow!("{e}"))),
        Command::Dev {
            command: DevCommand::BenchKeys { keys },
        } => {
            let report = crate::dev::bench::key_checks(keys)
                .map_err(|e| Failure::Internal(anyhow::anyhow!("{e}")))?;
            out!("{report}")
        }
        Command::Certs { command } => certs(&config, command),
        Command::Applications { command } => applications(&config, command),
        Command::Outbox { command } => outbox(&config, command),
        Command::Audit { command } => audit(&config, command),
        Command::Crl {
            command: CrlCommand::Publish { json },
        } => crl_publish(&config, json),
        Command::Crl {
            command: CrlCommand::Import { file, operator },
        } => crl_import(&config, &file, operator),
        Command::Crl {
            command:
                CrlCommand::Check {
                    repair,
                    operator,
                    json,
                },
        } => crl_check(&config, repair, operator, json),
        Command::Ca {
            command: CaCommand::RootCrl { out, number },
        } => ca_root_crl(&config, &out, number),
        Command::Ca {
            command: CaCommand::ReissueIssuing,
        } => ca_reissue_issuing(&config),
        Command::Ca {
            command: CaCommand::RevokeIssuer { reason, operator },
        } => ca_revoke_issuer(&config, &reason, operator),
    }
}

fn init_logging(config: &ValidConfig) {
    let log = &config.get().log;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&log.level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    // A second initialisation (only possible in tests) is harmless: keep the first.
    let _ = match log.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// The authorities over one database and hierarchy, as `serve` and the operator commands use
/// them.
struct Services {
    store: Store,
    hierarchy: Arc<Hierarchy>,
    issuer: Arc<Issuer>,
    registrar: Registrar,
    crl: CrlPublisher,
    clock: Arc<dyn Clock>,
}

impl Services {
    fn open(config: &ValidConfig, clock: Arc<dyn Clock>) -> Result<Services, Failure> {
        let cfg = config.get();
        let hierarchy = Hierarchy::load(&cfg.ca, cfg.mode)
            .map_err(|e| Failure::Internal(anyhow::anyhow!("loading the CA hierarchy: {e}")))?;
        let store = Store::open(config.database(), &cfg.database).map_err(|e| {
            Failure::Internal(anyhow::anyhow!(
                "opening {}: {e}",
                config.database().redacted()
            ))
        })?;
        let hierarchy = Arc::new(hierarchy);
        let issuer = Arc::new(
            Issuer::new(
                Arc::clone(&hierarchy),
                config.public_url(),
                config.cps_url(),
            )
            .map_err(|e| Failure::Internal(anyhow::anyhow!("issuing CA: {e}")))?,
        );
        let registrar = Registrar::new(
            store.clone(),
            Arc::clone(&issuer),
            Arc::clone(&clock),
            &cfg.ra.agreement_version,
        )
        .with_iin_limits(crate::ra::IinLimits {
            applications_per_day: cfg.limits.applications_per_iin_per_day,
            revocations_per_day: cfg.limits.revocations_per_iin_per_day,
        });
        let crl = CrlPublisher::new(
            store.clone(),
            Arc::clone(&issuer),
            Arc::clone(&clock),
            cfg.crl.clone(),
        );
        Ok(Services {
            store,
            hierarchy,
            issuer,
            registrar,
            crl,
            clock,
        })
    }
}

fn serve(config: ValidConfig) -> Result<(), Failure> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let cfg = config.get();
    let generated = ensure_dev_hierarchy(&config, clock.as_ref())?;
    let services = Services::open(&config, clock)?;
    tracing::info!(
        mode = %cfg.mode,
        database = %config.database().redacted(),
        backend = %services.store.backend(),
        issuer = services.issuer.id(),
        "starting"
    );
    if generated {
        record_hierarchy_generated(
            &services.store,
            &services.hierarchy,
            services.clock.as_ref(),
            "system",
        )?;
    }
    let metrics = Metrics::new().map_err(|e| Failure::Internal(anyhow::anyhow!("metrics: {e}")))?;
    let trusted_keys = trusted_keys(&config, &services.hierarchy)?;
    if trusted_keys.is_empty() {
        tracing::warn!("no Digital ID key is trusted: every application will be refused");
    }
    let resumed = services
        .registrar
        .resume_approved()
        .map_err(|e| Failure::Internal(anyhow::anyhow!("completing interrupted issuance: {e}")))?;
    if resumed > 0 {
        tracing::warn!(applications = resumed, "completed interrupted issuance");
    }
    // Relying parties should find CRLs from the first request on; but a CRL that cannot be
    // made must not keep the server (and its OCSP responder) down: the failure is logged,
    // reported on /readyz and in the metrics, and retried by the publication task.
    if let Err(e) = services.crl.publish_due() {
        tracing::error!(
            error = %e,
            "publishing CRLs failed at start-up; serving anyway (see /readyz; tamga crl check)"
        );
    }
    if let Err(e) = crate::crl::root::keep_fresh(
        &services.store,
        &services.hierarchy,
        config.public_url(),
        services.clock.now(),
        cfg.crl.root_validity.chrono(),
    ) {
        tracing::error!(error = %e, "publishing the root CRL failed at start-up; serving anyway (see /readyz)");
    }
    if services.hierarchy.root_key().is_none() {
        warn_root_crl_expiry(&services.store);
    }
    let responder = crate::ocsp::Responder::new(
        &services.hierarchy,
        Arc::new(services.store.clone()),
        cfg.ocsp.clone(),
        Arc::clone(&services.clock),
    )
    .map_err(|e| Failure::Internal(anyhow::anyhow!("OCSP responder: {e}")))?;
    responder
        .prime(&services.store)
        .map_err(|e| Failure::Internal(anyhow::anyhow!("OCSP responder: {e}")))?;
    let validity = chrono::Duration::days(i64::from(cfg.ca.ocsp_validity_days));
    if responder
        .renew_if_due(&services.hierarchy, validity)
        .map_err(|e| Failure::Internal(anyhow::anyhow!("renewing the OCSP responder: {e}")))?
    {
        tracing::info!("the OCSP responder certificate was renewed at start-up");
    }
    let mailer = crate::notify::Mailer::new(
        services.store.clone(),
        &cfg.notify,
        Arc::clone(&services.clock),
    )
    .map_err(|e| Failure::Internal(anyhow::anyhow!("{e}")))?;
    let metrics = Arc::new(metrics);
    let admission = Arc::new(api::Admission::new(&config, Arc::clone(&metrics)));
    let state = AppState {
        admission,
        mailer: Arc::new(mailer),
        ocsp: Arc::new(responder),
        store: services.store,
        hierarchy: services.hierarchy,
        config: Arc::new(config),
        metrics,
        clock: services.clock,
        trusted_keys: Arc::new(trusted_keys),
        issuer: services.issuer,
        registrar: services.registrar,
        crl: services.crl,
        crl_cache: Arc::new(CrlCache::default()),
    };
    actix_web::rt::System::new()
        .block_on(api::run(state))
        .map_err(|e| Failure::Internal(anyhow::anyhow!("HTTP server: {e}")))
}

/// The Digital ID keys from `[digital_id] keys`, plus the development key in dev mode.
fn trusted_keys(config: &ValidConfig, hierarchy: &Hierarchy) -> Result<TrustedKeys, Failure> {
    let cfg = config.get();
    let extra: Vec<_> = hierarchy
        .digital_id_dev_key()
        .into_iter()
        .cloned()
        .collect();
    TrustedKeys::load(
        &cfg.digital_id.keys,
        &extra,
        &cfg.digital_id.issuer,
        &cfg.digital_id.audience,
    )
    .map_err(|e| {
        Failure::Config(config::ConfigError::Invalid {
            key: "digital_id.keys",
            message: e.to_string(),
        })
    })
}

/// In dev mode, generate the hierarchy when `[ca] dir` has none. Returns whether it did.
fn ensure_dev_hierarchy(config: &ValidConfig, clock: &dyn Clock) -> Result<bool, Failure> {
    let cfg = config.get();
    if cfg.mode != Mode::Dev {
        return Ok(false);
    }
    let files = HierarchyFiles::for_config(&cfg.ca);
    if files.all().iter().any(|p| p.exists()) {
        return Ok(false);
    }
    let in_token = keys_in_token(&cfg.ca);
    if !in_token.is_empty() {
        return Err(Failure::Refused(format!(
            "no CA hierarchy in {} and {} kind = \"pkcs11\": keys are not generated in a \
             token on start; run `tamga ca init --pkcs11` first",
            cfg.ca.dir.display(),
            in_token.join(" and ")
        )));
    }
    tracing::info!(dir = %cfg.ca.dir.display(), "generating the development CA hierarchy");
    crate::dev::hierarchy::init(&cfg.ca, config.public_url(), false, clock.now())
        .map_err(|e| Failure::Internal(anyhow::anyhow!("generating the CA hierarchy: {e}")))?;
    Ok(true)
}

/// The `[ca.*_key]` sections whose key lives in a PKCS#11 token.
fn keys_in_token(ca: &crate::config::CaConfig) -> Vec<&'static str> {
    [
        ("[ca.issuing_key]", &ca.issuing_key),
        ("[ca.ocsp_key]", &ca.ocsp_key),
    ]
    .into_iter()
    .filter(|(_, k)| k.kind == crate::config::KeyKind::Pkcs11)
    .map(|(name, _)| name)
    .collect()
}

fn record_hierarchy_generated(
    store: &Store,
    hierarchy: &Hierarchy,
    clock: &dyn Clock,
    actor: &str,
) -> Result<(), Failure> {
    let details = serde_json::json!({
        "root": ca::display_name(hierarchy.root().x509().subject_name()),
        "issuing": ca::display_name(hierarchy.issuing().certificate().x509().subject_name()),
        "issuing_key_type": hierarchy.issuing().key_type().to_string(),
        "ocsp_key_type": hierarchy.ocsp_responder().key_type().to_string(),
    });
    let entry = AuditEntry {
        at: clock.now().naive_utc(),
        actor: actor.to_owned(),
        action: "ca.hierarchy_generated".to_owned(),
        subject: hierarchy.issuing().id().to_owned(),
        details,
    };
    store
        .write(|tx| tx.append_audit(&entry))
        .map_err(|e| Failure::Internal(anyhow::anyhow!("writing the audit record: {e}")))?;
    Ok(())
}

fn config_check(config: &ValidConfig) -> Result<(), Failure> {
    let cfg = config.get();
    let files = HierarchyFiles::new(&cfg.ca.dir, &cfg.ca.issuer_id);
    let hierarchy = if files.all().iter().any(|p| p.exists()) || cfg.mode == Mode::Production {
        format!("present in {}", cfg.ca.dir.display())
    } else {
        format!(
            "absent; `tamga serve` will generate a development hierarchy in {}",
            cfg.ca.dir.display()
        )
    };
    out!("configuration OK ({})", config.source())?;
    out!("  mode          {}", cfg.mode)?;
    out!("  bind          {}", config.bind())?;
    let tls = &cfg.server.tls;
    let listener = match (tls.enabled(), tls.client_auth()) {
        (false, _) => "plain HTTP (no [server.tls])".to_owned(),
        (true, false) => format!(
            "HTTPS: certificate {} (key {} matches)",
            tls.cert.display(),
            tls.key.display()
        ),
        (true, true) => format!(
            "HTTPS: certificate {} (key {} matches); /api/v1 needs a client certificate from {}",
            tls.cert.display(),
            tls.key.display(),
            tls.client_ca.display()
        ),
    };
    out!("  listener      {listener}")?;
    out!("  public_url    {}", config.public_url())?;
    let limits = &cfg.limits;
    let per = |n: u32| {
        if n == 0 {
            "no limit".to_owned()
        } else {
            n.to_string()
        }
    };
    out!(
        "  limits        per IIN in 24 h: {} applications, {} revocations; per address: {} req/s, burst {}{}",
        per(limits.applications_per_iin_per_day),
        per(limits.revocations_per_iin_per_day),
        per(limits.client_requests_per_second),
        limits.client_burst,
        if limits.client_limit_ocsp_crl { " (OCSP and CRLs included)" } else { "" }
    )?;
    out!("  database      {}", config.database().redacted())?;
    out!("  issuer_id     {}", cfg.ca.issuer_id)?;
    out!("  CA hierarchy  {hierarchy}")?;
    if let Some(warning) = config.warning() {
        out!("warning: {warning}")?;
    }
    Ok(())
}

fn ca_init(config: &ValidConfig, args: &CaInit) -> Result<(), Failure> {
    let cfg = config.get();
    if !args.dev && !args.pkcs11 {
        return Err(Failure::Refused(
            "pass --dev (every key in a file) or --pkcs11 (the keys configured with \
             kind = \"pkcs11\" generated inside their token)"
                .to_owned(),
        ));
    }
    if cfg.mode != Mode::Dev {
        return Err(Failure::Refused(
            "`ca init` generates a development root and runs only with mode = \"dev\"".to_owned(),
        ));
    }
    let in_token = keys_in_token(&cfg.ca);
    if args.pkcs11 && in_token.is_empty() {
        return Err(Failure::Refused(
            "--pkcs11: neither [ca.issuing_key] nor [ca.ocsp_key] has kind = \"pkcs11\"".to_owned(),
        ));
    }
    if !args.pkcs11 && !in_token.is_empty() {
        return Err(Failure::Refused(format!(
            "{} kind = \"pkcs11\": pass --pkcs11 to generate {} inside the token",
            in_token.join(" and "),
            if in_token.len() == 1 {
                "that key"
            } else {
                "those keys"
            }
        )));
    }
    let clock = SystemClock;
    let outcome =
        match crate::dev::hierarchy::init(&cfg.ca, config.public_url(), args.force, clock.now()) {
            Ok(o) => o,
            Err(e @ ca::CaError::AlreadyExists(_)) => return Err(Failure::Refused(e.to_string())),
            Err(e) => return Err(Failure::Internal(e.into())),
        };
    let hierarchy = Hierarchy::load(&cfg.ca, cfg.mode).map_err(anyhow::Error::from)?;
    match Store::open(config.database(), &cfg.database) {
        Ok(store) => record_hierarchy_generated(&store, &hierarchy, &clock, &operator_name())?,
        Err(e) => tracing::warn!(error = %e, "the database is unavailable: generation not audited"),
    }
    out!(
        "{} development CA hierarchy in {}",
        if outcome.replaced {
            "Replaced the"
        } else {
            "Generated a"
        },
        outcome.files.dir.display()
    )?;
    print_described(&describe_hierarchy(&hierarchy, &outcome.files, cfg.mode))?;
    Ok(())
}

fn dev_consent_token(config: &ValidConfig, args: &ConsentTokenArgs) -> Result<(), Failure> {
    let cfg = config.get();
    if cfg.mode != Mode::Dev {
        return Err(Failure::Refused(
            "`dev consent-token` runs only with mode = \"dev\"".to_owned(),
        ));
    }
    let iin = digital_id::Iin::parse(&args.iin, SystemClock.now())
        .map_err(|e| Failure::Usage(format!("--iin {}: {e}", args.iin)))?;
    let files = HierarchyFiles::new(&cfg.ca.dir, &cfg.ca.issuer_id);
    let key = digital_id::read_signing_key(&files.digital_id_key).map_err(|e| {
        Failure::Refused(format!(
            "no development Digital ID key ({e}); run `tamga serve` or `tamga ca init --dev` first"
        ))
    })?;
    let now = SystemClock.now().timestamp();
    let mut document_number = [0u8; 4];
    openssl::rand::rand_bytes(&mut document_number).map_err(anyhow::Error::from)?;
    let claims = digital_id::Claims {
        iss: cfg.digital_id.issuer.clone(),
        aud: digital_id::Audience::One(cfg.digital_id.audience.clone()),
        sub: iin.as_str().to_owned(),
        jti: uuid::Uuid::new_v4().to_string(),
        iat: now,
        nbf: Some(now),
        exp: now + i64::from(args.ttl),
        purpose: match args.purpose {
            PurposeArg::EdsIssuance => digital_id::Purpose::EdsIssuance,
            PurposeArg::EdsRevocation => digital_id::Purpose::EdsRevocation,
        }
        .as_str()
        .to_owned(),
        identity: digital_id::Identity {
            surname: args.surname.clone(),
            name: args.name.clone(),
            patronymic: args.patronymic.clone(),
            birth_date: iin.birth_date(),
            sex: iin.sex().to_owned(),
            document: digital_id::Document {
                kind: "id_card".to_owned(),
                number: format!("{:09}", u32::from_be_bytes(document_number) % 1_000_000_000),
                expires: iin.birth_date().max(chrono::Utc::now().date_naive())
                    + chrono::Duration::days(5 * 365),
            },
        },
        verification: digital_id::Verification {
            method: digital_id::VerificationMethod::DigitalIdBiometric,
            liveness: args.liveness,
            register_match: args.register_match,
        },
    };
    let token = digital_id::mint_es256(&key, &claims)
        .map_err(|e| Failure::Internal(anyhow::anyhow!("signing the token: {e}")))?;
    out!("{token}")?;
    Ok(())
}

/// Map an RA error to the CLI's exit codes.
fn ra_failure(e: crate::ra::RaError) -> Failure {
    use crate::ra::RaError;
    match e {
        RaError::CertificateNotFound(_) | RaError::ApplicationNotFound => {
            Failure::NotFound(e.to_string())
        }
        RaError::SerialInvalid(_)
        | RaError::RevocationReasonInvalid
        | RaError::InvalidityDateInvalid(_) => Failure::Usage(e.to_string()),
        RaError::Store(_) | RaError::Ca(_) => Failure::Internal(anyhow::Error::new(e)),
        other => Failure::Refused(other.to_string()),
    }
}

/// `--invalidity-date`, read as the portal reads it (its rules are the RA's, at revocation).
fn invalidity_arg(text: Option<&str>) -> Result<Option<chrono::DateTime<chrono::Utc>>, Failure> {
    text.map(crate::ra::InvalidityDate::parse)
        .transpose()
        .map_err(ra_failure)
}

fn certs(config: &ValidConfig, command: CertsCommand) -> Result<(), Failure> {
    let services = Services::open(config, Arc::new(SystemClock))?;
    let (cert, json) = match command {
        CertsCommand::List {
            iin,
            status,
            limit,
            json,
        } => {
            let now = services.clock.now().naive_utc();
            let certs = services
                .store
                .read(|tx| tx.list_certificates(iin.as_deref(), limit.clamp(1, 100_000)))
                .map_err(|e| Failure::Internal(e.into()))?;
            let shown: Vec<serde_json::Value> = certs
                .iter()
                .filter(|c| match status {
                    None => true,
                    Some(CertFilter::Revoked) => {
                        c.status == crate::store::CertificateStatus::Revoked
                    }
                    Some(CertFilter::Expired) => {
                        c.status == crate::store::CertificateStatus::Issued && c.not_after < now
                    }
                    Some(CertFilter::Valid) => {
                        c.status == crate::store::CertificateStatus::Issued && c.not_after >= now
                    }
                })
                .map(|c| certificate_json(c, now, false))
                .collect();
            return print_rows(
                &shown,
                json,
                &[
                    "serial",
                    "kind",
                    "holder_iin",
                    "status",
                    "not_after",
                    "application_id",
                ],
            );
        }
        CertsCommand::Show { serial, json } => {
            let serial = ca::Serial::parse(&serial).map_err(|e| Failure::Usage(e.to_string()))?;
            let cert = services
                .store
                .read(|tx| tx.certificate(serial.as_str()))
                .map_err(|e| Failure::Internal(e.into()))?
                .filter(|c| c.der.is_some())
                .ok_or_else(|| Failure::NotFound(format!("no certificate with serial {serial}")))?;
            let shown = certificate_json(&cert, services.clock.now().naive_utc(), true);
            return print_one(&shown, json);
        }
        CertsCommand::Revoke {
            serial,
            reason,
            invalidity_date,
            operator,
            json,
        } => {
            let serial = ca::Serial::parse(&serial).map_err(|e| Failure::Usage(e.to_string()))?;
            let reason = RevocationReason::parse(&reason)
                .ok_or_else(|| ra_failure(crate::ra::RaError::RevocationReasonInvalid))?;
            let invalidity = invalidity_arg(invalidity_date.as_deref())?;
            let operator = operator.unwrap_or_else(operator_name);
            let cert = services
                .registrar
                .revoke(
                    crate::ra::Revoker::Operator(&operator),
                    &serial,
                    reason,
                    invalidity,
                )
                .map_err(ra_failure)?;
            (cert, json)
        }
        CertsCommand::CorrectRevocation {
            serial,
            invalidity_date,
            no_invalidity_date: _,
            operator,
            json,
        } => {
            let serial = ca::Serial::parse(&serial).map_err(|e| Failure::Usage(e.to_string()))?;
            let date = invalidity_arg(invalidity_date.as_deref())?;
            let operator = operator.unwrap_or_else(operator_name);
            let cert = services
                .registrar
                .correct_invalidity_date(&serial, date, &operator)
                .map_err(ra_failure)?;
            (cert, json)
        }
        CertsCommand::Release {
            serial,
            operator,
            json,
        } => {
            let serial = ca::Serial::parse(&serial).map_err(|e| Failure::Usage(e.to_string()))?;
            let operator = operator.unwrap_or_else(operator_name);
            let cert = services
                .registrar
                .release(&serial, &operator)
                .map_err(ra_failure)?;
            (cert, json)
        }
    };
    let shown = api::revocation_json(&cert);
    if json {
        out!(
            "{}",
            serde_json::to_string_pretty(&shown).map_err(anyhow::Error::from)?
        )?;
    } else if cert.status == crate::store::CertificateStatus::Revoked {
        out!(
            "certificate {} revoked ({}) at {}",
            shown.serial,
            shown.reason,
            shown.revoked_at
        )?;
    } else {
        out!(
            "certificate {} released from hold; it is valid again",
            shown.serial
        )?;
    }
    Ok(())
}

fn certificate_json(
    c: &crate::store::Certificate,
    now: chrono::NaiveDateTime,
    with_pem: bool,
) -> serde_json::Value {
    let status = match c.status {
        crate::store::CertificateStatus::Issued if c.not_after < now => "expired",
        crate::store::CertificateStatus::Issued => "valid",
        other => other.as_str(),
    };
    let mut v = serde_json::json!({
        "serial": c.serial,
        "issuer_id": c.issuer_id,
        "kind": c.kind.as_str(),
        "holder_iin": c.holder_iin,
        "status": status,
        "not_before": c.not_before.and_utc().to_rfc3339(),
        "not_after": c.not_after.and_utc().to_rfc3339(),
        "application_id": c.application_id,
        "revoked_at": c.revoked_at.map(|t| t.and_utc().to_rfc3339()),
        "revocation_reason": c.revocation_reason,
        "invalidity_date": c.invalidity_date.map(|t| t.and_utc().to_rfc3339()),
    });
    if with_pem {
        let pem = c
            .der
            .as_deref()
            .and_then(|d| openssl::x509::X509::from_der(d).ok())
            .and_then(|x| x.to_pem().ok())
            .map(|p| String::from_utf8_lossy(&p).into_owned());
        if let Some(obj) = v.as_object_mut() {
            obj.insert("pem".to_owned(), serde_json::json!(pem));
        }
    }
    v
}

fn application_json(a: &crate::store::Application) -> serde_json::Value {
    serde_json::json!({
        "id": a.id,
        "status": a.status.as_str(),
        "holder_iin": a.holder_iin,
        "surname": a.surname,
        "given_name": a.given_name,
        "patronymic": a.patronymic,
        "email": a.email,
        "language": a.language,
        "storage": a.storage,
        "register_match": a.register_match,
        "liveness": a.liveness,
        "review_reasons": a.review_reasons,
        "reason": a.reason,
        "decided_by": a.decided_by,
        "created_at": a.created_at.and_utc().to_rfc3339(),
        "updated_at": a.updated_at.and_utc().to_rfc3339(),
    })
}

/// Print rows as a table of `columns`, or all of them as a JSON array.
/// A list of strings on one line, separated by "; " (the review reasons).
fn joined(values: &[serde_json::Value]) -> String {
    values
        .iter()
        .map(|v| {
            v.as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| v.to_string())
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn print_rows(rows: &[serde_json::Value], json: bool, columns: &[&str]) -> Result<(), Failure> {
    if json {
        out!(
            "{}",
            serde_json::to_string_pretty(rows).map_err(anyhow::Error::from)?
        )?;
        return Ok(());
    }
    let cell = |row: &serde_json::Value, col: &str| match row.get(col) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Null) | None => "-".to_owned(),
        Some(serde_json::Value::Array(a)) if a.is_empty() => "-".to_owned(),
        Some(serde_json::Value::Array(a)) => joined(a),
        Some(other) => other.to_string(),
    };
    let widths: Vec<usize> = columns
        .iter()
        .map(|c| {
            rows.iter()
                .map(|r| cell(r, c).chars().count())
                .chain(std::iter::once(c.len()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |values: Vec<String>| {
        values
            .iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    out!(
        "{}",
        line(columns.iter().map(|c| c.to_uppercase()).collect())
    )?;
    for row in rows {
        out!("{}", line(columns.iter().map(|c| cell(row, c)).collect()))?;
    }
    if rows.is_empty() {
        out!("(none)")?;
    }
    Ok(())
}

/// Print one object as `key: value` lines, or as JSON.
fn print_one(value: &serde_json::Value, json: bool) -> Result<(), Failure> {
    if json {
        out!(
            "{}",
            serde_json::to_string_pretty(value).map_err(anyhow::Error::from)?
        )?;
        return Ok(());
    }
    if let Some(obj) = value.as_object() {
        for (k, v) in obj {
            match v {
                serde_json::Value::String(s) if s.contains('\n') => out!("{k}:\n{s}")?,
                serde_json::Value::String(s) => out!("{k:<18} {s}")?,
                serde_json::Value::Null => out!("{k:<18} -")?,
                serde_json::Value::Array(a) if a.iter().all(|v| v.is_string()) => {
                    out!(
                        "{k:<18} {}",
                        if a.is_empty() {
                            "-".to_owned()
                        } else {
                            joined(a)
                        }
                    )?;
                }
                other => out!("{k:<18} {other}")?,
            }
        }
    }
    Ok(())
}

fn applications(config: &ValidConfig, command: ApplicationsCommand) -> Result<(), Failure> {
    let services = Services::open(config, Arc::new(SystemClock))?;
    let internal = |e: crate::store::StoreError| Failure::Internal(e.into());
    match command {
        ApplicationsCommand::List {
            status,
            iin,
            limit,
            json,
        } => {
            let status = status
                .as_deref()
                .map(|s| {
                    crate::store::ApplicationStatus::parse(s).ok_or_else(|| {
                        Failure::Usage(format!(
                            "--status {s}: expected pending_review, approved, issued or rejected"
                        ))
                    })
                })
                .transpose()?;
            let apps = services
                .store
                .read(|tx| tx.list_applications(status, iin.as_deref(), limit.clamp(1, 100_000)))
                .map_err(internal)?;
            let rows: Vec<serde_json::Value> = apps.iter().map(application_json).collect();
            print_rows(
                &rows,
                json,
                &[
                    "id",
                    "status",
                    "holder_iin",
                    "surname",
                    "given_name",
                    "created_at",
                    "review_reasons",
                ],
            )
        }
        ApplicationsCommand::Show { id, json } => {
            let (app, certs) = services
                .store
                .read(|tx| -> Result<_, crate::store::StoreError> {
                    Ok((tx.application(&id)?, tx.certificates_of_application(&id)?))
                })
                .map_err(internal)?;
            let app = app.ok_or_else(|| Failure::NotFound(format!("no application {id}")))?;
            let now = services.clock.now().naive_utc();
            let mut v = application_json(&app);
            if let Some(obj) = v.as_object_mut() {
                let certs: Vec<serde_json::Value> = certs
                    .iter()
                    .filter(|c| c.der.is_some())
                    .map(|c| certificate_json(c, now, false))
                    .collect();
                obj.insert("certificates".to_owned(), serde_json::Value::Array(certs));
            }
            print_one(&v, json)
        }
        ApplicationsCommand::Approve { id, operator, json } => {
            let operator = operator.unwrap_or_else(operator_name);
            let (app, certs) = services
                .registrar
                .approve(&id, &operator)
                .map_err(ra_failure)?;
            let now = services.clock.now().naive_utc();
            let mut v = application_json(&app);
            if let Some(obj) = v.as_object_mut() {
                let certs: Vec<serde_json::Value> = certs
                    .iter()
                    .map(|c| certificate_json(c, now, false))
                    .collect();
                obj.insert("certificates".to_owned(), serde_json::Value::Array(certs));
            }
            if json {
                print_one(&v, true)
            } else {
                out!(
                    "application {} approved by {operator}: certificates issued",
                    app.id
                )?;
                for c in v
                    .get("certificates")
                    .and_then(|c| c.as_array())
                    .into_iter()
                    .flatten()
                {
                    out!(
                        "  {} {}",
                        c["kind"].as_str().unwrap_or(""),
                        c["serial"].as_str().unwrap_or("")
                    )?;
                }
                Ok(())
            }
        }
        ApplicationsCommand::Reject {
            id,
            reason,
            operator,
            json,
        } => {
            let operator = operator.unwrap_or_else(operator_name);
            let app = services
                .registrar
                .reject(&id, &reason, &operator)
                .map_err(ra_failure)?;
            if json {
                print_one(&application_json(&app), true)
            } else {
                out!("application {} rejected by {operator}", app.id)?;
                Ok(())
            }
        }
    }
}

fn outbox(config: &ValidConfig, command: OutboxCommand) -> Result<(), Failure> {
    let services = Services::open(config, Arc::new(SystemClock))?;
    let internal = |e: crate::store::StoreError| Failure::Internal(e.into());
    match command {
        OutboxCommand::List {
            status,
            limit,
            json,
        } => {
            let status = status
                .as_deref()
                .map(|s| {
                    crate::store::OutboxStatus::parse(s).ok_or_else(|| {
                        Failure::Usage(format!("--status {s}: expected pending, sent or dead"))
                    })
                })
                .transpose()?;
            let rows = services
                .store
                .read(|tx| tx.list_messages(status, limit.clamp(1, 100_000)))
                .map_err(internal)?;
            let rows: Vec<serde_json::Value> = rows
                .iter()
                .map(|m| {
                    serde_json::json!({
                        "id": m.id,
                        "event": m.event,
                        "recipient": m.recipient,
                        "language": m.language,
                        "status": m.status.as_str(),
                        "attempts": m.attempts,
                        "next_attempt_at": m.next_attempt_at.and_utc().to_rfc3339(),
                        "last_error": m.last_error,
                        "created_at": m.created_at.and_utc().to_rfc3339(),
                        "sent_at": m.sent_at.map(|t| t.and_utc().to_rfc3339()),
                    })
                })
                .collect();
            print_rows(
                &rows,
                json,
                &[
                    "id",
                    "event",
                    "recipient",
                    "status",
                    "attempts",
                    "created_at",
                ],
            )
        }
        OutboxCommand::Retry { id, operator } => {
            let operator = operator.unwrap_or_else(operator_name);
            let at = crate::store::db_time(services.clock.now());
            let retried = services
                .store
                .write(|tx| -> Result<bool, crate::store::StoreError> {
                    if tx.message(&id)?.is_none() {
                        return Ok(false);
                    }
                    if !tx.retry_message(&id, at)? {
                        return Ok(false);
                    }
                    tx.append_audit(&AuditEntry {
                        at,
                        actor: format!("operator:{operator}"),
                        action: "outbox.retried".to_owned(),
                        subject: id.clone(),
                        details: serde_json::json!({}),
                    })?;
                    Ok(true)
                })
                .map_err(internal)?;
            let exists = services
                .store
                .read(|tx| tx.message(&id))
                .map_err(internal)?
                .is_some();
            match (retried, exists) {
                (true, _) => {
                    out!("e-mail {id} queued again")?;
                    Ok(())
                }
                (false, false) => Err(Failure::NotFound(format!("no outbox row {id}"))),
                (false, true) => Err(Failure::Refused(format!("outbox row {id} is not dead"))),
            }
        }
    }
}

fn audit(config: &ValidConfig, command: AuditCommand) -> Result<(), Failure> {
    let cfg = config.get();
    let store = Store::open(config.database(), &cfg.database)
        .map_err(|e| Failure::Internal(anyhow::anyhow!("opening the database: {e}")))?;
    match command {
        AuditCommand::Verify { expect, json } => match crate::audit::verify(&store) {
            Ok(v) => {
                if let Some(expect) = expect {
                    let (seq, hash) = expect
                        .split_once(':')
                        .and_then(|(s, h)| s.parse::<i64>().ok().map(|s| (s, h.to_owned())))
                        .ok_or_else(|| {
                            Failure::Usage(format!("--expect {expect}: expected SEQ:HASH"))
                        })?;
                    let found = store
                        .read(|tx| tx.audit_records(seq - 1, 1))
                        .map_err(|e| Failure::Internal(e.into()))?;
                    let matches = found
                        .first()
                        .is_some_and(|r| r.seq == seq && r.hash == hash);
                    if !matches {
                        let message = format!(
                            "the recorded head {seq}:{hash} is not in the log (it has {} entries): the log was truncated or rewritten",
                            v.entries
                        );
                        let verdict = Err(Failure::Verification(message.clone()));
                        if json {
                            let shown = serde_json::json!({"ok": false, "error": message});
                            return report(&shown.to_string(), verdict);
                        }
                        return verdict;
                    }
                }
                if json {
                    out!(
                        "{}",
                        serde_json::json!({"ok": true, "entries": v.entries, "head": format!("{}:{}", v.entries, v.head)})
                    )?;
                } else {
                    out!(
                        "audit log intact: {} entries, head {}:{}",
                        v.entries,
                        v.entries,
                        v.head
                    )?;
                }
                Ok(())
            }
            Err(crate::audit::AuditError::Store(e)) => Err(Failure::Internal(e.into())),
            Err(e) => {
                let verdict = Err(Failure::Verification(e.to_string()));
                if json {
                    let shown = serde_json::json!({"ok": false, "error": e.to_string()});
                    return report(&shown.to_string(), verdict);
                }
                verdict
            }
        },
        AuditCommand::Tail { n, json } => {
            let rows = store
                .read(|tx| tx.audit_tail(n.clamp(1, 100_000)))
                .map_err(|e| Failure::Internal(e.into()))?;
            let rows: Vec<serde_json::Value> = rows
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "seq": r.seq,
                        "at": r.at.and_utc().to_rfc3339(),
                        "actor": r.actor,
                        "action": r.action,
                        "subject": r.subject,
                        "details": serde_json::from_str::<serde_json::Value>(&r.details).unwrap_or(serde_json::Value::Null),
                        "hash": r.hash,
                    })
                })
                .collect();
            print_rows(&rows, json, &["seq", "at", "actor", "action", "subject"])
        }
    }
}

fn root_crl_failure(e: crate::crl::root::RootCrlError) -> Failure {
    use crate::crl::root::RootCrlError;
    match e {
        RootCrlError::Store(_) | RootCrlError::Crl(_) => Failure::Internal(anyhow::Error::new(e)),
        other => Failure::Refused(other.to_string()),
    }
}

/// Warn on stderr when the published root CRL expires within two weeks.
fn warn_root_crl_expiry(store: &Store) {
    if let Ok(Some(info)) = store.read(|tx| tx.latest_crl_info(crate::crl::root::ROOT_ID, false)) {
        let left = info.next_update - chrono::Utc::now().naive_utc();
        if left < chrono::Duration::days(14) {
            eprintln!(
                "tamga: warning: the root CRL (number {}) expires at {}: sign and import the next one (`tamga ca root-crl`, `tamga crl import`)",
                info.crl_number, info.next_update
            );
        }
    }
}

fn ca_root_crl(config: &ValidConfig, out: &Path, number: Option<i64>) -> Result<(), Failure> {
    let cfg = config.get();
    let hierarchy = Hierarchy::load(&cfg.ca, cfg.mode).map_err(anyhow::Error::from)?;
    let now = SystemClock.now();
    let validity = cfg.crl.root_validity.chrono();
    let der = match number {
        Some(n) => {
            let store = Store::open(config.database(), &cfg.database).ok();
            let revoked = store
                .and_then(|s| s.read(|tx| tx.authority_revocations()).ok())
                .unwrap_or_default();
            crate::crl::root::sign(&hierarchy, config.public_url(), n, revoked, now, validity)
        }
        None => {
            let store = Store::open(config.database(), &cfg.database).map_err(|e| {
                Failure::Usage(format!(
                    "no database to take the next number from ({e}): pass --number"
                ))
            })?;
            crate::crl::root::sign_next(&store, &hierarchy, config.public_url(), now, validity)
        }
    }
    .map_err(root_crl_failure)?;
    let crl = crate::crl::root::verify(&hierarchy, &der).map_err(root_crl_failure)?;
    std::fs::write(out, &der)
        .map_err(|e| Failure::Internal(anyhow::anyhow!("{}: {e}", out.display())))?;
    out!(
        "root CRL number {} written to {} (valid until {})",
        crl.number,
        out.display(),
        crl.next_update.and_utc().to_rfc3339()
    )?;
    Ok(())
}

fn crl_import(config: &ValidConfig, file: &Path, operator: Option<String>) -> Result<(), Failure> {
    let cfg = config.get();
    let hierarchy = Hierarchy::load(&cfg.ca, cfg.mode).map_err(anyhow::Error::from)?;
    let store =
        Store::open(config.database(), &cfg.database).map_err(|e| Failure::Internal(e.into()))?;
    let bytes = crate::input::read_bounded(file, crate::input::CRL_LIMIT).map_err(|e| {
        let message = format!("{}: {e}", file.display());
        match e.kind() {
            std::io::ErrorKind::InvalidInput | std::io::ErrorKind::FileTooLarge => {
                Failure::Refused(message)
            }
            _ => Failure::Usage(message),
        }
    })?;
    let crl = crate::crl::root::verify(&hierarchy, &bytes).map_err(root_crl_failure)?;
    let actor = format!("operator:{}", operator.unwrap_or_else(operator_name));
    crate::crl::root::import(&store, &crl, SystemClock.now(), &actor).map_err(root_crl_failure)?;
    out!(
        "published root CRL number {} (valid until {})",
        crl.number,
        crl.next_update.and_utc().to_rfc3339()
    )?;
    warn_root_crl_expiry(&store);
    Ok(())
}

fn ca_reissue_issuing(config: &ValidConfig) -> Result<(), Failure> {
    let cfg = config.get();
    let hierarchy = Hierarchy::load(&cfg.ca, cfg.mode).map_err(anyhow::Error::from)?;
    let cert = hierarchy
        .reissue_issuing(&cfg.ca, config.public_url(), SystemClock.now())
        .map_err(|e| Failure::Refused(e.to_string()))?;
    if let Ok(store) = Store::open(config.database(), &cfg.database) {
        let at = crate::store::db_time(SystemClock.now());
        let _ = store.write(|tx| {
            tx.append_audit(&AuditEntry {
                at,
                actor: format!("operator:{}", operator_name()),
                action: "ca.issuing_reissued".to_owned(),
                subject: cfg.ca.issuer_id.clone(),
                details: serde_json::json!({ "not_after": cert.not_after().to_string() }),
            })
        });
    }
    out!(
        "reissued the issuing CA certificate (same key), valid until {}; restart the servers",
        cert.not_after()
    )?;
    Ok(())
}

fn ca_revoke_issuer(
    config: &ValidConfig,
    reason: &str,
    operator: Option<String>,
) -> Result<(), Failure> {
    let cfg = config.get();
    let reason = RevocationReason::parse(reason)
        .ok_or_else(|| Failure::Usage(format!("--reason {reason}: not an accepted reason")))?;
    let hierarchy = Hierarchy::load(&cfg.ca, cfg.mode).map_err(anyhow::Error::from)?;
    let store =
        Store::open(config.database(), &cfg.database).map_err(|e| Failure::Internal(e.into()))?;
    let cert = hierarchy.issuing().certificate().x509();
    let serial = cert
        .serial_number()
        .to_bn()
        .and_then(|b| b.to_hex_str().map(|s| s.to_string()))
        .map_err(anyhow::Error::from)?;
    let serial =
        ca::Serial::parse(&serial).map_err(|e| Failure::Internal(anyhow::anyhow!("{e}")))?;
    let subject = ca::display_name(cert.subject_name());
    let at = crate::store::db_time(SystemClock.now());
    let actor = format!("operator:{}", operator.unwrap_or_else(operator_name));
    let revoked = store
        .write(|tx| -> Result<bool, crate::store::StoreError> {
            if !tx.revoke_authority(serial.as_str(), &subject, reason.as_str(), at)? {
                return Ok(false);
            }
            tx.append_audit(&AuditEntry {
                at,
                actor: actor.clone(),
                action: "ca.issuer_revoked".to_owned(),
                subject: serial.to_string(),
                details: serde_json::json!({ "reason": reason.as_str(), "subject": subject }),
            })?;
            Ok(true)
        })
        .map_err(|e| Failure::Internal(e.into()))?;
    if !revoked {
        return Err(Failure::Refused(format!(
            "the issuing CA certificate {serial} is already revoked"
        )));
    }
    out!(
        "issuing CA certificate {serial} revoked ({reason}); the next root CRL lists it \
         (dev: within seconds; production: `tamga ca root-crl` on the root machine, then `tamga crl import`)"
    )?;
    Ok(())
}

fn crl_check(
    config: &ValidConfig,
    repair: bool,
    operator: Option<String>,
    json: bool,
) -> Result<(), Failure> {
    let services = Services::open(config, Arc::new(SystemClock))?;
    let found = services
        .registrar
        .revocation_defects()
        .map_err(|e| Failure::Internal(e.into()))?;
    let repaired: Vec<&crate::ra::RevocationDefect> = if repair {
        let operator = operator.unwrap_or_else(operator_name);
        let mut repaired = Vec::new();
        for defect in found.iter().filter(|d| d.repairable) {
            let serial = ca::Serial::parse(&defect.serial)
                .map_err(|e| Failure::Internal(anyhow::anyhow!("stored serial: {e}")))?;
            services
                .registrar
                .correct_invalidity_date(&serial, None, &operator)
                .map_err(ra_failure)?;
            repaired.push(defect);
        }
        repaired
    } else {
        Vec::new()
    };
    // Each certificate has at most one repairable defect: what was not repaired is left.
    let left = found.len() - repaired.len();
    if !repaired.is_empty() {
        for kind in [CrlKind::Full, CrlKind::Delta] {
            services
                .crl
                .publish(kind, true)
                .map_err(|e| Failure::Internal(anyhow::anyhow!("publishing the CRL: {e}")))?;
        }
    }
    let verdict = if left == 0 {
        Ok(())
    } else {
        Err(Failure::Verification(format!(
            "{left} stored revocation(s) cannot be carried by a CRL as they are"
        )))
    };
    let text = if json {
        let serials: Vec<&str> = repaired.iter().map(|d| d.serial.as_str()).collect();
        serde_json::json!({ "defects": found, "repaired": serials, "remaining": left }).to_string()
    } else {
        let mut lines: Vec<String> = found
            .iter()
            .map(|d| {
                let state = if repaired.contains(&d) {
                    "repaired (invalidity date removed)"
                } else if d.repairable {
                    "repair with --repair, or tamga certs correct-revocation"
                } else {
                    "cannot be repaired here"
                };
                format!(
                    "{} {} {} {}: {state}",
                    d.issuer_id, d.serial, d.problem, d.value
                )
            })
            .collect();
        if found.is_empty() {
            lines.push("every stored revocation can be carried by a CRL".to_owned());
        } else if !repaired.is_empty() {
            lines.push(format!(
                "repaired {} revocation(s) and published new CRLs",
                repaired.len()
            ));
        }
        lines.join("\n")
    };
    report(&text, verdict)
}

/// Print `text`, then give `verdict`: a failed check keeps its exit code even when standard
/// output is gone (`tamga crl check | head -1`), which alone would end quietly with 0.
fn report(text: &str, verdict: Result<(), Failure>) -> Result<(), Failure> {
    let printed = out!("{text}");
    verdict.and(printed)
}

fn crl_publish(config: &ValidConfig, json: bool) -> Result<(), Failure> {
    let services = Services::open(config, Arc::new(SystemClock))?;
    let mut published = Vec::new();
    for kind in [CrlKind::Full, CrlKind::Delta] {
        let info = services
            .crl
            .publish(kind, true)
            .map_err(|e| Failure::Internal(anyhow::anyhow!("publishing the CRL: {e}")))?;
        if let Some(info) = info {
            published.push(serde_json::json!({
                "issuer": services.crl.issuer_id(),
                "kind": if kind == CrlKind::Full { "full" } else { "delta" },
                "crl_number": info.crl_number,
                "this_update": info.this_update.and_utc().to_rfc3339(),
                "next_update": info.next_update.and_utc().to_rfc3339(),
            }));
        }
    }
    if json {
        out!("{}", serde_json::Value::Array(published))?;
    } else {
        for p in &published {
            out!(
                "published {} CRL number {} for {} (next update {})",
                p["kind"].as_str().unwrap_or(""),
                p["crl_number"],
                p["issuer"].as_str().unwrap_or(""),
                p["next_update"].as_str().unwrap_or("")
            )?;
        }
    }
    Ok(())
}

fn operator_name() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".to_owned())
}

fn ca_show(config: &ValidConfig, json: bool) -> Result<(), Failure> {
    let cfg = config.get();
    let files = HierarchyFiles::for_config(&cfg.ca);
    if !files.all().iter().any(|p| p.exists()) && cfg.mode == Mode::Dev {
        return Err(Failure::Refused(format!(
            "no CA hierarchy in {} yet (run `tamga ca init --dev` or `tamga serve`)",
            cfg.ca.dir.display()
        )));
    }
    let hierarchy = Hierarchy::load(&cfg.ca, cfg.mode).map_err(anyhow::Error::from)?;
    if let Ok(store) = Store::open(config.database(), &cfg.database) {
        warn_root_crl_expiry(&store);
    }
    let described = describe_hierarchy(&hierarchy, &files, cfg.mode);
    if json {
        let doc: serde_json::Map<String, serde_json::Value> = described
            .into_iter()
            .map(|(role, d)| (role.to_owned(), d))
            .collect();
        out!("{:#}", serde_json::Value::Object(doc))?;
    } else {
        print_described(&described)?;
    }
    Ok(())
}

/// Each certificate of the hierarchy with its role, and where its key lives.
fn describe_hierarchy(
    h: &Hierarchy,
    files: &HierarchyFiles,
    mode: Mode,
) -> Vec<(&'static str, serde_json::Value)> {
    let root_key = match mode {
        Mode::Dev => format!("file {} (development only)", files.root_key.display()),
        Mode::Production => "offline (not held by this server)".to_owned(),
    };
    vec![
        ("root", describe(h.root().x509(), &root_key)),
        (
            "issuing",
            describe(
                h.issuing().certificate().x509(),
                &h.issuing().key_location(),
            ),
        ),
        (
            "ocsp_responder",
            describe(
                h.ocsp_responder().certificate().x509(),
                &h.ocsp_responder().key_location(),
            ),
        ),
    ]
}

fn describe(cert: &openssl::x509::X509Ref, key_location: &str) -> serde_json::Value {
    let serial = cert
        .serial_number()
        .to_bn()
        .and_then(|bn| bn.to_hex_str().map(|s| s.to_string()))
        .unwrap_or_default();
    let fingerprint = cert
        .digest(openssl::hash::MessageDigest::sha256())
        .map(hex::encode_upper)
        .unwrap_or_default();
    let key_type = cert
        .public_key()
        .ok()
        .and_then(|k| KeyType::of(&k))
        .map(|t| t.to_string())
        .unwrap_or_else(|| "unsupported".to_owned());
    serde_json::json!({
        "subject": ca::display_name(cert.subject_name()),
        "issuer": ca::display_name(cert.issuer_name()),
        "serial": serial,
        "not_before": cert.not_before().to_string(),
        "not_after": cert.not_after().to_string(),
        "key_type": key_type,
        "key": key_location,
        "sha256_fingerprint": fingerprint,
    })
}

fn print_described(described: &[(&'static str, serde_json::Value)]) -> Result<(), Failure> {
    const FIELDS: [&str; 8] = [
        "subject",
        "issuer",
        "serial",
        "not_before",
        "not_after",
        "key_type",
        "key",
        "sha256_fingerprint",
    ];
    for (role, d) in described {
        out!("{role}:")?;
        for field in FIELDS {
            let value = d.get(field).and_then(|v| v.as_str()).unwrap_or("");
            out!("  {field:<19} {value}")?;
        }
    }
    Ok(())
}
