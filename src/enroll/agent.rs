//! `tamga-enroll agent`: the local signing agent the citizen's pages call (the role NCALayer
//! plays for NCA), the contract in `docs/citizen-pages.md`. An HTTP server on 127.0.0.1 only,
//! JSON under `/agent/v1/`, answering only the origins given with `--origin` (checked on every
//! request, preflights included; Private Network Access preflights answered for them only).
//! It makes the key pairs and their requests with the command line's own code, holds the keys
//! encrypted in its state directory ([`held`]) until the certificates come, and writes the two
//! containers with the command line's own code into a folder under `--allow-dir`
//! ([`folders`]).
//!
//! Owns: the agent's protocol (paths, bodies, its codes), the origin gate, the held keys and
//! the folder rules. Must never: listen beyond loopback, answer (or add CORS headers for) an
//! origin it was not given, let a private key leave it or reach the disk in clear, write
//! outside the allowed directories, replace a file, or leave one container without the other.

use std::path::PathBuf;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method, StatusCode};
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer, ResponseError};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use clap::Args;
use openssl::pkey::{PKey, Private};
use serde::Deserialize;
use serde_json::json;

use super::{Common, ContainerError, Failure, KeyType};

mod folders;
mod held;

/// The agent's default port (NCALayer's is 13579, so both can run).
pub const DEFAULT_PORT: u16 = 13580;
/// The version of the agent's protocol (`/agent/v1/`).
pub const PROTOCOL: u32 = 1;
/// The largest request body.
const BODY_LIMIT: usize = 64 * 1024;
/// The key types the agent makes, by the names the command line gives them.
const KEY_TYPES: [KeyType; 2] = [KeyType::Rsa2048, KeyType::EcP256];
/// The longest application id and access token the agent keeps.
const ID_LIMIT: usize = 200;
const TOKEN_LIMIT: usize = 2048;

/// `tamga-enroll agent`.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// An origin whose pages may call the agent (`scheme://host[:port]`, no path); repeat for
    /// more.
    #[arg(long = "origin", required = true, value_name = "URL")]
    pub origins: Vec<String>,
    /// A directory under which containers may be written (must exist); repeat for more.
    #[arg(long = "allow-dir", required = true, value_name = "DIR")]
    pub allow_dirs: Vec<PathBuf>,
    /// The port on 127.0.0.1 to listen on.
    #[arg(long, default_value_t = DEFAULT_PORT)]
    pub port: u16,
    /// Where keys waiting for their certificates are kept, encrypted [default:
    /// $XDG_STATE_HOME/tamga-enroll, else ~/.local/state/tamga-enroll].
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

/// The agent's refusal codes (`docs/citizen-pages.md`, "Agent codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentCode {
    /// The request's `Origin` is missing or not one of `--origin`.
    OriginNotAllowed,
    /// A folder outside the allowed directories (or not an existing folder).
    FolderNotAllowed,
    /// A new folder's name is not one plain name.
    FolderNameInvalid,
    /// The new folder exists.
    FolderExists,
    /// A key type the agent does not make.
    KeyTypeNotSupported,
    /// No unbound keys under this handle for this origin.
    KeysNotFound,
    /// No keys bound to this application for this origin.
    ApplicationNotHeld,
    /// The container password breaks the policy.
    PasswordPolicy,
    /// A certificate does not carry the key held for it.
    CertificateKeyMismatch,
    /// A container of that name exists: nothing was written.
    FileExists,
    /// A body that is not the operation's JSON.
    RequestMalformed,
    /// No such operation.
    NotFound,
    /// Anything else.
    InternalError,
}

impl AgentCode {
    /// Every code, so the pages can be checked to have a message for each.
    pub const ALL: &'static [AgentCode] = &[
        AgentCode::OriginNotAllowed,
        AgentCode::FolderNotAllowed,
        AgentCode::FolderNameInvalid,
        AgentCode::FolderExists,
        AgentCode::KeyTypeNotSupported,
        AgentCode::KeysNotFound,
        AgentCode::ApplicationNotHeld,
        AgentCode::PasswordPolicy,
        AgentCode::CertificateKeyMismatch,
        AgentCode::FileExists,
        AgentCode::RequestMalformed,
        AgentCode::NotFound,
        AgentCode::InternalError,
    ];

    /// The code's wire text.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentCode::OriginNotAllowed => "origin_not_allowed",
            AgentCode::FolderNotAllowed => "folder_not_allowed",
            AgentCode::FolderNameInvalid => "folder_name_invalid",
            AgentCode::FolderExists => "folder_exists",
            AgentCode::KeyTypeNotSupported => "key_type_not_supported",
            AgentCode::KeysNotFound => "keys_not_found",
            AgentCode::ApplicationNotHeld => "application_not_held",
            AgentCode::PasswordPolicy => "password_policy",
            AgentCode::CertificateKeyMismatch => "certificate_key_mismatch",
            AgentCode::FileExists => "file_exists",
            AgentCode::RequestMalformed => "request_malformed",
            AgentCode::NotFound => "not_found",
            AgentCode::InternalError => "internal_error",
        }
    }

    /// The HTTP status the code is answered with.
    pub fn status(self) -> StatusCode {
        match self {
            AgentCode::OriginNotAllowed | AgentCode::FolderNotAllowed => StatusCode::FORBIDDEN,
            AgentCode::FolderNameInvalid | AgentCode::RequestMalformed => StatusCode::BAD_REQUEST,
            AgentCode::FolderExists | AgentCode::FileExists => StatusCode::CONFLICT,
            AgentCode::KeyTypeNotSupported
            | AgentCode::PasswordPolicy
            | AgentCode::CertificateKeyMismatch => StatusCode::UNPROCESSABLE_ENTITY,
            AgentCode::KeysNotFound | AgentCode::ApplicationNotHeld | AgentCode::NotFound => {
                StatusCode::NOT_FOUND
            }
            AgentCode::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// A refusal: its code and an English detail, answered as `{"code", "detail"}`.
#[derive(Debug)]
pub struct Refusal {
    code: AgentCode,
    detail: String,
}

impl Refusal {
    fn new(code: AgentCode, detail: impl Into<String>) -> Refusal {
        Refusal {
            code,
            detail: detail.into(),
        }
    }

    fn internal(detail: impl std::fmt::Display) -> Refusal {
        Refusal::new(AgentCode::InternalError, detail.to_string())
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.detail)
    }
}

impl ResponseError for Refusal {
    fn status_code(&self) -> StatusCode {
        self.code.status()
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.code.status())
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(json!({"code": self.code.as_str(), "detail": self.detail}))
    }
}

impl From<Failure> for Refusal {
    fn from(f: Failure) -> Refusal {
        Refusal::internal(f.message())
    }
}

impl From<ContainerError> for Refusal {
    fn from(e: ContainerError) -> Refusal {
        let code = match &e {
            ContainerError::Incomplete(_) => AgentCode::RequestMalformed,
            ContainerError::KeyMismatch(_) => AgentCode::CertificateKeyMismatch,
            ContainerError::Exists(_) => AgentCode::FileExists,
            ContainerError::Other(_) => AgentCode::InternalError,
        };
        Refusal::new(code, e.to_string())
    }
}

/// What every handler shares.
struct Agent {
    /// The allowed origins, as browsers serialise them.
    origins: Vec<String>,
    /// The allowed directories, canonical.
    roots: Vec<PathBuf>,
    /// The state directory.
    held: held::Held,
    /// One change of the held keys at a time (binding, writing the containers).
    lock: std::sync::Mutex<()>,
    /// How containers are protected (`--legacy-p12`, `--p12-iterations`).
    legacy: bool,
    iterations: u32,
}

/// `origin` if it is an exact origin (`scheme://host[:port]`, http or https, as a browser
/// serialises it in `Origin`).
fn parse_origin(origin: &str) -> Result<String, String> {
    let bad = || {
        format!("--origin {origin}: not an origin (scheme://host[:port], http or https, no path)")
    };
    let url = url::Url::parse(origin).map_err(|_| bad())?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(bad());
    }
    let serialised = url.origin().ascii_serialization();
    if serialised != origin {
        return Err(format!(
            "--origin {origin}: not an origin as browsers send it (expected {serialised})"
        ));
    }
    Ok(serialised)
}

/// The default state directory: `$XDG_STATE_HOME/tamga-enroll`, else
/// `~/.local/state/tamga-enroll`.
fn default_state_dir() -> Result<PathBuf, String> {
    let non_empty = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(state) = non_empty("XDG_STATE_HOME") {
        return Ok(PathBuf::from(state).join("tamga-enroll"));
    }
    non_empty("HOME")
        .map(|home| PathBuf::from(home).join(".local/state/tamga-enroll"))
        .ok_or_else(|| "neither XDG_STATE_HOME nor HOME is set: give --state-dir".to_owned())
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Run the agent until it is stopped.
pub(super) fn run(common: &Common, args: &AgentArgs) -> Result<(), Failure> {
    let origins = args
        .origins
        .iter()
        .map(|o| parse_origin(o))
        .collect::<Result<Vec<_>, _>>()
        .map_err(Failure::Usage)?;
    let roots = folders::allowed_roots(&args.allow_dirs).map_err(Failure::Usage)?;
    let state_dir = match &args.state_dir {
        Some(dir) => dir.clone(),
        None => default_state_dir().map_err(Failure::Usage)?,
    };
    let held = held::Held::open(&state_dir).map_err(Failure::Error)?;
    held.prune(now()).map_err(Failure::Error)?;
    let agent = web::Data::new(Agent {
        origins,
        roots,
        held,
        lock: std::sync::Mutex::new(()),
        legacy: common.legacy_p12,
        iterations: common.p12_iterations,
    });
    actix_web::rt::System::new()
        .block_on(serve(agent, args.port))
        .map_err(|e| Failure::Error(format!("the agent on 127.0.0.1:{}: {e}", args.port)))
}

async fn serve(agent: web::Data<Agent>, port: u16) -> std::io::Result<()> {
    let shown = agent.clone();
    let server = HttpServer::new(move || {
        let json = web::JsonConfig::default()
            .limit(BODY_LIMIT)
            .error_handler(|e, _| Refusal::new(AgentCode::RequestMalformed, e.to_string()).into());
        let path = web::PathConfig::default()
            .error_handler(|e, _| Refusal::new(AgentCode::RequestMalformed, e.to_string()).into());
        App::new()
            .app_data(agent.clone())
            .app_data(json)
            .app_data(path)
            .app_data(web::PayloadConfig::new(BODY_LIMIT))
            .wrap(from_fn(origin_gate))
            .service(operation("/agent/v1/version").route(web::get().to(version)))
            .service(
                operation("/agent/v1/folders")
                    .route(web::get().to(list_folders))
                    .route(web::post().to(make_folder)),
            )
            .service(operation("/agent/v1/keys").route(web::post().to(make_keys)))
            .service(operation("/agent/v1/applications").route(web::post().to(bind)))
            .service(
                operation("/agent/v1/applications/{id}").route(web::get().to(held_application)),
            )
            .service(operation("/agent/v1/containers").route(web::post().to(write_containers)))
            .default_service(web::to(not_found))
    })
    .workers(2)
    .bind(("127.0.0.1", port))?;
    eprintln!(
        "tamga-enroll agent: listening on http://127.0.0.1:{port} for {}; containers only under {}",
        shown.origins.join(", "),
        shown
            .roots
            .iter()
            .map(|r| r.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    server.run().await
}

/// A path of the protocol: another method on it is `not_found` too.
fn operation(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(not_found))
}

async fn not_found() -> HttpResponse {
    Refusal::new(AgentCode::NotFound, "no such operation").error_response()
}

/// The origin of a request, if it is one of the allowed.
fn allowed_origin(req: &ServiceRequest) -> Option<String> {
    let agent = req.app_data::<web::Data<Agent>>()?;
    let origin = req.headers().get(header::ORIGIN)?.to_str().ok()?;
    agent
        .origins
        .iter()
        .find(|allowed| *allowed == origin)
        .cloned()
}

/// The origin check every request passes first, preflights included: a missing or foreign
/// `Origin` is refused without any `Access-Control-*` header; an allowed one gets
/// `Access-Control-Allow-Origin` and `Vary: Origin`, and a preflight is answered here.
async fn origin_gate(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let Some(origin) = allowed_origin(&req) else {
        let refusal = Refusal::new(
            AgentCode::OriginNotAllowed,
            "this agent answers only the pages it was started for (--origin)",
        );
        return Ok(req
            .into_response(refusal.error_response())
            .map_into_right_body());
    };
    if req.method() == Method::OPTIONS {
        let private_network = req
            .headers()
            .get("access-control-request-private-network")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"));
        let mut answer = HttpResponse::NoContent();
        answer
            .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, origin))
            .insert_header((header::VARY, "Origin"))
            .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST"))
            .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, "content-type"))
            .insert_header((header::ACCESS_CONTROL_MAX_AGE, "600"));
        if private_network {
            answer.insert_header(("access-control-allow-private-network", "true"));
        }
        return Ok(req.into_response(answer.finish()).map_into_right_body());
    }
    let mut res = next.call(req).await?;
    let headers = res.headers_mut();
    if let Ok(value) = header::HeaderValue::from_str(&origin) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
    }
    headers.insert(header::VARY, header::HeaderValue::from_static("Origin"));
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    Ok(res.map_into_left_body())
}

/// The origin the gate let through (every handler runs behind it).
fn origin_of(req: &HttpRequest) -> Result<String, Refusal> {
    req.headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or_else(|| Refusal::new(AgentCode::OriginNotAllowed, "no Origin"))
}

/// Run blocking work (keys, files) off the HTTP worker.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Refusal> + Send + 'static,
) -> Result<T, Refusal> {
    web::block(work).await.map_err(Refusal::internal)?
}

async fn version() -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "name": "tamga-enroll",
        "version": env!("CARGO_PKG_VERSION"),
        "protocol": PROTOCOL,
        "key_types": KEY_TYPES.iter().map(ToString::to_string).collect::<Vec<_>>(),
    }))
}

async fn list_folders(agent: web::Data<Agent>) -> Result<HttpResponse, Refusal> {
    let listed = blocking(move || Ok(folders::list(&agent.roots))).await?;
    let roots: Vec<_> = listed
        .into_iter()
        .map(|(path, folders)| json!({"path": path, "folders": folders}))
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "roots": roots })))
}

#[derive(Debug, Deserialize)]
struct NewFolder {
    parent: String,
    name: String,
}

async fn make_folder(
    agent: web::Data<Agent>,
    body: web::Json<NewFolder>,
) -> Result<HttpResponse, Refusal> {
    let NewFolder { parent, name } = body.into_inner();
    let path = blocking(move || folders::make(&agent.roots, &parent, &name)).await?;
    Ok(HttpResponse::Ok().json(json!({ "path": path.to_string_lossy() })))
}

#[derive(Debug, Deserialize)]
struct KeySpec {
    key_type: String,
}

#[derive(Debug, Deserialize)]
struct NewKeys {
    auth: KeySpec,
    sign: KeySpec,
    #[serde(default)]
    email: Option<String>,
}

/// The key type named `name`, if the agent makes it.
fn key_type(name: &str) -> Result<KeyType, Refusal> {
    KEY_TYPES
        .into_iter()
        .find(|t| t.to_string() == name)
        .ok_or_else(|| {
            Refusal::new(
                AgentCode::KeyTypeNotSupported,
                format!(
                    "key type {name:?} is not one this agent makes ({})",
                    KEY_TYPES.map(|t| t.to_string()).join(", ")
                ),
            )
        })
}

async fn make_keys(
    req: HttpRequest,
    agent: web::Data<Agent>,
    body: web::Json<NewKeys>,
) -> Result<HttpResponse, Refusal> {
    let origin = origin_of(&req)?;
    let NewKeys { auth, sign, email } = body.into_inner();
    let (auth_type, sign_type) = (key_type(&auth.key_type)?, key_type(&sign.key_type)?);
    let email = match email.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(raw) => Some(
            crate::email::EmailAddress::parse(raw)
                .map_err(|e| Refusal::new(AgentCode::RequestMalformed, format!("email: {e}")))?,
        ),
    };
    let (handle, auth_csr, sign_csr) = blocking(move || {
        let email = email.as_ref().map(|e| e.as_str());
        let auth_key = super::generate(auth_type)?;
        let sign_key = super::generate(sign_type)?;
        let csrs = (super::csr(&auth_key, email)?, super::csr(&sign_key, email)?);
        let der = |key: &PKey<Private>| {
            key.private_key_to_pkcs8()
                .map(|d| B64.encode(d))
                .map_err(Refusal::internal)
        };
        let entry = held::Entry {
            keys: held::HeldKeys {
                auth: der(&auth_key)?,
                sign: der(&sign_key)?,
            },
            application_id: None,
            access_token: None,
            folder: None,
            origin,
            created_at: now(),
        };
        let _guard = agent.lock.lock().map_err(Refusal::internal)?;
        let handle = agent.held.create(&entry).map_err(Refusal::internal)?;
        let _ = agent.held.prune(now());
        Ok((handle, csrs.0, csrs.1))
    })
    .await?;
    Ok(HttpResponse::Ok().json(json!({
        "handle": handle,
        "csrs": {"auth": auth_csr, "sign": sign_csr},
    })))
}

#[derive(Debug, Deserialize)]
struct Binding {
    handle: String,
    application_id: String,
    access_token: String,
    folder: String,
}

fn check_id(application_id: &str) -> Result<(), Refusal> {
    let fine = !application_id.is_empty()
        && application_id.len() <= ID_LIMIT
        && !application_id.chars().any(char::is_control);
    if fine {
        Ok(())
    } else {
        Err(Refusal::new(
            AgentCode::RequestMalformed,
            "application_id: 1 to 200 bytes, no control characters",
        ))
    }
}

async fn bind(
    req: HttpRequest,
    agent: web::Data<Agent>,
    body: web::Json<Binding>,
) -> Result<HttpResponse, Refusal> {
    let origin = origin_of(&req)?;
    let binding = body.into_inner();
    check_id(&binding.application_id)?;
    if binding.access_token.is_empty() || binding.access_token.len() > TOKEN_LIMIT {
        return Err(Refusal::new(
            AgentCode::RequestMalformed,
            "access_token: 1 to 2048 bytes",
        ));
    }
    blocking(move || {
        let folder = folders::within(&agent.roots, &binding.folder)?;
        let _guard = agent.lock.lock().map_err(Refusal::internal)?;
        let not_found = || {
            Refusal::new(
                AgentCode::KeysNotFound,
                "no keys for this page under this handle (made elsewhere, expired, or bound to \
                 another application)",
            )
        };
        let mut entry = agent
            .held
            .load(&binding.handle)
            .map_err(Refusal::internal)?
            .filter(|e| e.origin == origin)
            .ok_or_else(not_found)?;
        match entry.application_id.as_deref() {
            None => {}
            // The same binding again (a page that lost the answer) changes nothing.
            Some(id) if id == binding.application_id => {}
            Some(_) => return Err(not_found()),
        }
        let other = agent
            .held
            .find(&binding.application_id, &origin)
            .map_err(Refusal::internal)?;
        if other.is_some_and(|(h, _)| h != binding.handle) {
            return Err(Refusal::new(
                AgentCode::RequestMalformed,
                "other keys are bound to this application already",
            ));
        }
        entry.application_id = Some(binding.application_id);
        entry.access_token = Some(binding.access_token);
        entry.folder = Some(folder.to_string_lossy().into_owned());
        agent
            .held
            .replace(&binding.handle, &entry)
            .map_err(Refusal::internal)
    })
    .await?;
    Ok(HttpResponse::Ok().json(json!({})))
}

fn not_held(id: &str) -> Refusal {
    Refusal::new(
        AgentCode::ApplicationNotHeld,
        format!("this agent holds no keys of application {id} for this page"),
    )
}

async fn held_application(
    req: HttpRequest,
    agent: web::Data<Agent>,
    id: web::Path<String>,
) -> Result<HttpResponse, Refusal> {
    let origin = origin_of(&req)?;
    let id = id.into_inner();
    let lookup = id.clone();
    let found =
        blocking(move || agent.held.find(&lookup, &origin).map_err(Refusal::internal)).await?;
    let (_, entry) = found.ok_or_else(|| not_held(&id))?;
    Ok(HttpResponse::Ok().json(json!({
        "application_id": entry.application_id,
        "access_token": entry.access_token,
        "folder": entry.folder,
    })))
}

#[derive(Debug, Deserialize)]
struct Certificate {
    kind: String,
    pem: String,
}

#[derive(Debug, Deserialize)]
struct ContainersRequest {
    application_id: String,
    password: String,
    certificates: Vec<Certificate>,
    #[serde(default)]
    chain_pem: String,
    /// Another folder than the one bound (the bound one deleted, renamed, or holding files of
    /// the same names): checked as the binding's is.
    #[serde(default)]
    folder: Option<String>,
}

fn private_key(der_b64: &str) -> Result<PKey<Private>, Refusal> {
    B64.decode(der_b64)
        .map_err(Refusal::internal)
        .and_then(|der| PKey::private_key_from_pkcs8(&der).map_err(Refusal::internal))
}

async fn write_containers(
    req: HttpRequest,
    agent: web::Data<Agent>,
    body: web::Json<ContainersRequest>,
) -> Result<HttpResponse, Refusal> {
    let origin = origin_of(&req)?;
    let request = body.into_inner();
    check_id(&request.application_id)?;
    super::check_password(&request.password)
        .map_err(|broken| Refusal::new(AgentCode::PasswordPolicy, broken))?;
    let (folder, files) = blocking(move || {
        let _guard = agent.lock.lock().map_err(Refusal::internal)?;
        let (handle, entry) = agent
            .held
            .find(&request.application_id, &origin)
            .map_err(Refusal::internal)?
            .ok_or_else(|| not_held(&request.application_id))?;
        let chosen = match request.folder.as_deref() {
            Some(other) => other,
            None => entry.folder.as_deref().unwrap_or_default(),
        };
        // Checked again: the folder may have been replaced by a link since it was bound.
        let folder = folders::within(&agent.roots, chosen)?;
        let (auth, sign) = (
            private_key(&entry.keys.auth)?,
            private_key(&entry.keys.sign)?,
        );
        let certificates: Vec<(&str, &str)> = request
            .certificates
            .iter()
            .map(|c| (c.kind.as_str(), c.pem.as_str()))
            .collect();
        let containers = super::make_containers(
            super::protection(agent.legacy, agent.iterations),
            &request.password,
            &certificates,
            &request.chain_pem,
            &auth,
            &sign,
        )?;
        let written = super::write_new_files(&folder, &containers)?;
        // The keys are in the containers now: the held copy goes.
        agent.held.remove(&handle).map_err(Refusal::internal)?;
        let files: Vec<String> = containers.into_iter().map(|c| c.file).collect();
        debug_assert_eq!(written.len(), files.len());
        Ok((folder, files))
    })
    .await?;
    Ok(HttpResponse::Ok().json(json!({
        "folder": folder.to_string_lossy(),
        "files": files,
    })))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

    /// Origins are taken only as browsers send them.
    #[test]
    fn origins_are_exact() {
        for good in [
            "http://127.0.0.1:8080",
            "https://ca.example.kz",
            "http://localhost:3000",
        ] {
            assert_eq!(super::parse_origin(good).unwrap(), good);
        }
        for bad in [
            "https://ca.example.kz/",
            "https://ca.example.kz/enroll",
            "https://ca.example.kz:443",
            "ftp://ca.example.kz",
            "ca.example.kz",
            "null",
            "*",
        ] {
            assert!(super::parse_origin(bad).is_err(), "{bad}");
        }
    }

    /// The version names the key types by their command-line names, and every code has its
    /// snake_case text.
    #[test]
    fn key_types_and_codes() {
        assert!(super::key_type("rsa2048").is_ok());
        assert!(super::key_type("ec-p256").is_ok());
        for bad in ["rsa3072", "gost2015", "RSA2048", ""] {
            assert_eq!(
                super::key_type(bad).err().unwrap().code,
                super::AgentCode::KeyTypeNotSupported
            );
        }
        assert_eq!(super::AgentCode::FileExists.as_str(), "file_exists");
    }
}
