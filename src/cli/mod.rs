//! The `tamga` command line: argument parsing (clap) and the commands, with one place that
//! turns errors into exit codes.
//!
//! Layout: `args` holds the clap types (every command and flag); one file per command group
//! (`ca`, `root` (the offline root), `certs`, `applications`, `crl`, `outbox`, `audit`, `backup`
//! (with restore), `dev`, `configuration` for `config check`, `completions` for the shell
//! scripts, which read no configuration); `serve` wires the authorities into the HTTP server;
//! `preflight` opens what the configuration names (files, keys, the token, mail settings) for
//! the commands that need it; `output` prints rows and JSON. This file parses, dispatches and
//! maps a [`Failure`] to its exit code.
//!
//! Owns: what each subcommand prints and which exit code it returns. Must never: reach into
//! the database or keys other than through the store and the CA module's APIs, run a domain
//! transaction itself (those belong to the authority that owns them, e.g.
//! `notify::outbox::retry_dead`, `crl::issuer::revoke_issuer`), or open a key or token for a
//! command that signs nothing.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;

use crate::api::{self, AppState, CrlCache, Metrics};
use crate::ca::{Hierarchy, HierarchyFiles, Issuer, Issuers};
use crate::clock::{Clock, SystemClock};
use crate::config::{self, LogFormat, Mode, ValidConfig};
use crate::crl::{CrlKind, CrlPublisher};
use crate::digital_id::{self, TrustedKeys};
use crate::ra::Registrar;
use crate::store::Store;
use crate::vocab::RevocationReason;

/// `println!` that returns a write error (stdout closed: `tamga certs list | head -1`) as
/// [`Failure::Output`] instead of panicking; use as `out!(…)?`.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*).map_err(Failure::Output)
    }};
}

mod applications;
mod args;
mod audit;
mod backup;
mod ca;
mod certs;
mod completions;
mod configuration;
mod crl;
mod dev;
mod outbox;
mod output;
mod preflight;
mod root;
mod serve;

use applications::*;
pub use args::*;
use audit::*;
use backup::*;
use ca::*;
use certs::*;
use completions::*;
use configuration::*;
use crl::*;
use dev::*;
use outbox::*;
use output::*;
use root::*;
use serve::*;

/// A command's failure, carrying its exit code.
#[derive(Debug)]
pub enum Failure {
    /// Exit 1.
    Internal(anyhow::Error),
    /// Exit 2.
    Usage(String),
    /// Exit 3.
    Config(config::ConfigError),
    /// Exit 3: the configuration is valid but something it names (a PKCS#11 token) cannot be
    /// reached now.
    Unreachable(String),
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
            Failure::Config(_) | Failure::Unreachable(_) => 3,
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
    // OpenSSL is initialised by us, first, and without its exit-time clean-up: libpq shares
    // it, and a clean-up that runs while a pooled PostgreSQL connection is still closing its
    // TLS session crashes the process after its work is done (exit by SIGSEGV, seen on
    // commands that load no key before they open the database). Its configuration loads the
    // gost engine (`gost::init`); without the engine, GOST is unavailable and the rest works.
    crate::gost::init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            match &failure {
                Failure::Internal(e) => eprintln!("tamga: error: {e:#}"),
                Failure::Usage(m) => eprintln!("tamga: {m}"),
                Failure::Config(e) => eprintln!("tamga: invalid configuration: {e}"),
                Failure::Unreachable(m) => eprintln!("tamga: unreachable: {m}"),
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
    // Completion scripts come from the argument types alone: no configuration is read.
    if let Command::Completions { shell, enroll } = &cli.command {
        return completions(*shell, *enroll);
    }
    let config = load_config(&cli)?;
    init_logging(&config);
    // What a command opens besides the database. `serve` and `config check`: everything the
    // configuration names (files, keys, the token, the mail settings). The commands that load
    // the CA hierarchy: the hierarchy first, so that a broken one is a configuration error
    // naming the file or token. The others never touch a key, and work while a token is away.
    match &cli.command {
        Command::Serve | Command::Config { .. } => preflight::check_all(&config)?,
        Command::Certs { .. }
        | Command::Applications { .. }
        | Command::Crl { .. }
        | Command::Ocsp { .. }
        | Command::Ca {
            command:
                CaCommand::Show { .. } | CaCommand::ReissueIssuing | CaCommand::RevokeIssuer { .. },
        } => preflight::hierarchy(&config)?,
        // Restore signs the CRLs that follow the published ones.
        Command::Restore(_) => preflight::hierarchy(&config)?,
        // A backup opens only the database (--verify with published CRLs reads the CA
        // certificates).
        Command::Backup(_) => {}
        // The ceremony's steps open the keys they use themselves: the hierarchy is not whole
        // yet. The root's commands need the root alone (a root machine holds nothing else):
        // they open its key, never the issuing CA's or the OCSP responder's.
        Command::Ca {
            command:
                CaCommand::Init(_)
                | CaCommand::RequestIssuing { .. }
                | CaCommand::InstallIssuing { .. }
                | CaCommand::InitOcsp { .. }
                | CaCommand::RootCrl { .. }
                | CaCommand::RootOcsp { .. },
        }
        | Command::Root { .. }
        | Command::Outbox { .. }
        | Command::Audit { .. }
        | Command::Dev { .. }
        | Command::Completions { .. } => {}
    }
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
        Command::Dev { command } => dev(&config, command),
        Command::Completions { shell, enroll } => completions(shell, enroll),
        Command::Certs { command } => certs(&config, command),
        Command::Applications { command } => applications(&config, command),
        Command::Outbox { command } => outbox(&config, command),
        Command::Audit { command } => audit(&config, command),
        Command::Backup(args) => backup(&config, args),
        Command::Restore(args) => restore(&config, args),
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
            command:
                CaCommand::RootCrl {
                    out,
                    number,
                    operator,
                },
        }
        | Command::Root {
            command:
                RootCommand::Crl {
                    out,
                    number,
                    operator,
                },
        } => root_crl(&config, &out, number, operator),
        Command::Ca {
            command:
                CaCommand::RootOcsp {
                    out,
                    validity_days,
                    operator,
                },
        }
        | Command::Root {
            command:
                RootCommand::Ocsp {
                    out,
                    validity_days,
                    operator,
                },
        } => root_ocsp(&config, &out, validity_days, operator),
        Command::Root {
            command:
                RootCommand::RevokeIssuing {
                    serial,
                    reason,
                    operator,
                },
        } => root_revoke_issuing(&config, &serial, &reason, operator),
        Command::Root {
            command:
                RootCommand::Init {
                    name,
                    validity_years,
                    force,
                    operator,
                },
        } => root_init(&config, &name, validity_years, force, operator),
        Command::Root {
            command:
                RootCommand::SignIssuing {
                    csr,
                    out,
                    name,
                    validity_years,
                    operator,
                },
        } => root_sign_issuing(
            &config,
            &csr,
            &out,
            name.as_deref(),
            validity_years,
            operator,
        ),
        Command::Ca {
            command:
                CaCommand::RequestIssuing {
                    out,
                    name,
                    force,
                    operator,
                },
        } => ca_request_issuing(&config, &out, name, force, operator),
        Command::Ca {
            command:
                CaCommand::InstallIssuing {
                    cert,
                    force,
                    operator,
                },
        } => ca_install_issuing(&config, &cert, force, operator),
        Command::Ca {
            command: CaCommand::InitOcsp { force, operator },
        } => ca_init_ocsp(&config, force, operator),
        Command::Ocsp {
            command: OcspCommand::Import { file, operator },
        } => ocsp_import(&config, &file, operator),
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

/// Print `text`, then give `verdict`: a failed check keeps its exit code even when standard
/// output is gone (`tamga crl check | head -1`), which alone would end quietly with 0.
fn report(text: &str, verdict: Result<(), Failure>) -> Result<(), Failure> {
    let printed = out!("{text}");
    verdict.and(printed)
}

/// The CA hierarchy of the configuration; a failure to load it is internal (missing files, an
/// unreachable token).
fn load_hierarchy(config: &ValidConfig) -> Result<Hierarchy, Failure> {
    let cfg = config.get();
    Ok(Hierarchy::load(&cfg.ca, cfg.mode).map_err(anyhow::Error::from)?)
}

/// The database of the configuration, for a command that cannot work without it.
fn open_store(config: &ValidConfig) -> Result<Store, Failure> {
    Store::open(config.database(), &config.get().database)
        .map_err(|e| Failure::Internal(anyhow::anyhow!("opening the database: {e}")))
}

/// The audit actor of an operator's command: `--operator`, or the login name.
fn operator_actor(operator: Option<String>) -> String {
    format!("operator:{}", operator.unwrap_or_else(operator_name))
}

/// The operator of a command given no `--operator`: `$USER`, else `$LOGNAME`, else `unknown`
/// with a warning on standard error. The command is not refused: the name is what the
/// operator declares (neither `--operator` nor `$USER` is authenticated), and services,
/// containers and CI jobs often run without login variables; the warning says what the audit
/// log will show and how to name oneself.
fn operator_name() -> String {
    let name = ["USER", "LOGNAME"]
        .into_iter()
        .find_map(|key| std::env::var(key).ok().filter(|v| !v.trim().is_empty()));
    name.unwrap_or_else(|| {
        eprintln!(
            "tamga: warning: no operator name (neither --operator nor $USER/$LOGNAME is set): \
             the audit log records this action as operator:unknown"
        );
        "unknown".to_owned()
    })
}
