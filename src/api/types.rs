//! The portal API's request and response bodies: the authoritative layout of the protocol,
//! shared by the server and by clients such as `tamga-enroll`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use crate::error_code::ErrorCode;
pub use crate::vocab::{ApplicationStatus, CertificateKind, Language, RevocationReason, Storage};

/// `POST /api/v1/applications` body.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplicationRequest {
    /// Version of the user agreement the citizen was shown; must be the CA's current one.
    #[schema(example = "2026-1")]
    pub agreement_version: String,
    /// Whether the citizen accepted it; must be `true`.
    pub agreement_accepted: bool,
    /// E-mail for notifications and the certificates' subjectAltName.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "citizen@example.kz", max_length = 254)]
    pub email: Option<String>,
    /// Language of messages: `kk`, `ru` or `en`.
    #[schema(value_type = Language, example = "kk")]
    pub language: String,
    /// Key storage: `pkcs12` (1-year certificates), or hardware `id_card`, `kaztoken`,
    /// `etoken`, `jacarta`, `akey` (3 years).
    #[schema(value_type = Storage, example = "pkcs12")]
    pub storage: String,
    /// The two PKCS#10 requests.
    pub csrs: CsrPair,
}

/// The AUTH and SIGN certification requests, PEM (or base64 DER), each at most 16 KiB.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CsrPair {
    /// Request for the authentication certificate.
    #[schema(max_length = 16384)]
    pub auth: String,
    /// Request for the signing certificate.
    #[schema(max_length = 16384)]
    pub sign: String,
}

/// An application and, once issued, its certificates.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApplicationResponse {
    /// Application id.
    pub id: String,
    /// `issued`, `pending_review`, `approved` (being signed) or `rejected`.
    #[schema(value_type = ApplicationStatus, example = "issued")]
    pub status: String,
    /// Bearer token for `GET /api/v1/applications/{id}`; returned once, by the POST only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    /// The operator's reason, for a rejected application.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When the application was submitted (RFC 3339, UTC).
    #[schema(format = DateTime)]
    pub created_at: String,
    /// Issued certificates, AUTH first (empty until issued).
    pub certificates: Vec<IssuedCertificate>,
    /// The CA chain (issuing CA, then root), PEM, once issued: for each issuing CA that signed
    /// one of the certificates (AUTH and SIGN may come from two, RSA and GOST), in the order
    /// of `certificates`, each once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain_pem: Option<String>,
    /// For a re-issue: the application whose pair this one replaces (revoked `superseded`
    /// when this one is issued).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
}

/// One issued certificate.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct IssuedCertificate {
    /// `auth` or `sign`.
    #[schema(value_type = CertificateKind)]
    pub kind: String,
    /// Serial number, upper-case hex.
    pub serial: String,
    /// Start of validity (RFC 3339, UTC).
    #[schema(format = DateTime)]
    pub not_before: String,
    /// End of validity (RFC 3339, UTC).
    #[schema(format = DateTime)]
    pub not_after: String,
    /// The certificate, PEM.
    pub pem: String,
}

/// `POST /api/v1/revocations` body.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevocationRequest {
    /// Serial number in hex (at most 64 digits), any case, with or without colons, spaces or
    /// `0x`.
    #[schema(
        example = "9AD05F36C16D45A240B48BF10ABBEE34",
        pattern = r"^(0[xX])?[0-9A-Fa-f]([0-9A-Fa-f: ]*[0-9A-Fa-f])?$"
    )]
    pub serial: String,
    /// RFC 5280 reason: `unspecified`, `keyCompromise`, `affiliationChanged`, `superseded`,
    /// `cessationOfOperation`, `certificateHold`, `privilegeWithdrawn`.
    #[schema(value_type = RevocationReason, example = "keyCompromise")]
    pub reason: String,
    /// When the key was (suspected) compromised, RFC 3339; not in the future.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub invalidity_date: Option<String>,
}

/// A certificate's revocation state.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RevocationResponse {
    /// Serial number, upper-case hex.
    pub serial: String,
    /// `revoked`.
    #[schema(example = "revoked")]
    pub status: String,
    /// RFC 5280 reason.
    #[schema(value_type = RevocationReason)]
    pub reason: String,
    /// When it was revoked (RFC 3339, UTC).
    #[schema(format = DateTime)]
    pub revoked_at: String,
    /// The invalidity date, if given (RFC 3339, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub invalidity_date: Option<String>,
}

/// The header of `POST /cabinet/api/reissues` that carries the confirmation: a detached CMS
/// SignedData (RFC 5652) over the exact body bytes, signed with the SIGN key of the pair that
/// logged in, DER in standard base64.
pub const CONFIRMATION_HEADER: &str = "Tamga-Confirmation";

/// The header of `POST /cabinet/api/reissues` that carries a Digital ID consent token with
/// `purpose = eds_reissue`, when the CA requires one (`[ra] reissue_requires_consent`).
pub const CONSENT_HEADER: &str = "Tamga-Consent";

/// `POST /cabinet/api/challenge` answer: what the holder signs to log in.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChallengeResponse {
    /// 32 random bytes, standard base64; the content of the login's attached CMS. Single use.
    pub challenge: String,
    /// When it stops being accepted (RFC 3339, UTC; at most 5 minutes).
    #[schema(format = DateTime)]
    pub expires_at: String,
}

/// `POST /cabinet/api/login` body.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// A CMS SignedData (RFC 5652), attached, whose content is the challenge's bytes, signed
    /// with the holder's AUTH key, the signer certificate included: DER in standard base64, or
    /// PEM (`-----BEGIN CMS-----`).
    #[schema(max_length = 65536)]
    pub cms: String,
}

/// `POST /cabinet/api/login` answer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SessionResponse {
    /// Bearer token for the other `/cabinet/api/…` routes.
    pub session_token: String,
    /// When the session ends (RFC 3339, UTC; at most 15 minutes).
    #[schema(format = DateTime)]
    pub expires_at: String,
    /// The application whose AUTH certificate logged in: the pair a re-issue replaces.
    pub application_id: String,
}

/// `GET /cabinet/api/certificates` answer: every certificate issued to the holder.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HolderCertificates {
    /// Newest first.
    pub certificates: Vec<HolderCertificate>,
}

/// One of the holder's certificates, as the cabinet lists it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HolderCertificate {
    /// Serial number, upper-case hex.
    pub serial: String,
    /// `auth` or `sign`.
    #[schema(value_type = CertificateKind)]
    pub kind: String,
    /// `issued` (valid), `on_hold`, `revoked` or `expired`.
    #[schema(example = "issued")]
    pub status: String,
    /// The revocation reason, when revoked or on hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<RevocationReason>)]
    pub revocation_reason: Option<String>,
    /// When it was revoked (RFC 3339, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub revoked_at: Option<String>,
    /// Start of validity (RFC 3339, UTC).
    #[schema(format = DateTime)]
    pub not_before: String,
    /// End of validity (RFC 3339, UTC).
    #[schema(format = DateTime)]
    pub not_after: String,
    /// The key storage of its application.
    #[schema(value_type = Storage)]
    pub storage: String,
    /// The application it was issued for.
    pub application_id: String,
    /// The certificate, PEM.
    pub pem: String,
}

/// `POST /cabinet/api/reissues` body: the new pair's form. The identity is the logged-in
/// pair's, never the request's.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReissueRequest {
    /// E-mail for notifications and the certificates' subjectAltName.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "citizen@example.kz", max_length = 254)]
    pub email: Option<String>,
    /// Language of messages: `kk`, `ru` or `en`.
    #[schema(value_type = Language, example = "kk")]
    pub language: String,
    /// Key storage, as for an application.
    #[schema(value_type = Storage, example = "pkcs12")]
    pub storage: String,
    /// The two PKCS#10 requests, with new keys.
    pub csrs: CsrPair,
}

/// An RFC 9457 problem document (`application/problem+json`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProblemDocument {
    /// URI of the problem type, `urn:tamga:problem:<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary.
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// Stable machine-readable code.
    #[schema(value_type = ErrorCode)]
    pub code: ProblemCode,
    /// What happened in this case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The `code` of a problem document as a client reads it: one of the codes this build knows,
/// or, from a newer server, a code it does not know yet, kept as its text so the client can
/// still show the problem's title and detail. On the wire it is always the bare string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProblemCode {
    /// A code of [`ErrorCode`].
    Known(ErrorCode),
    /// A code this build does not know.
    Unknown(String),
}

impl ProblemCode {
    /// The code's text, as sent.
    pub fn as_str(&self) -> &str {
        match self {
            ProblemCode::Known(code) => code.as_str(),
            ProblemCode::Unknown(text) => text,
        }
    }
}

impl From<ErrorCode> for ProblemCode {
    fn from(code: ErrorCode) -> Self {
        ProblemCode::Known(code)
    }
}

impl Serialize for ProblemCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ProblemCode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ok(match ErrorCode::parse(&text) {
            Some(code) => ProblemCode::Known(code),
            None => ProblemCode::Unknown(text),
        })
    }
}

/// A DER document in a request or response body (OCSP, certificates, CRLs).
#[derive(Debug, Clone, ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct Der(pub Vec<u8>);

/// `GET /enroll/api/session`: the citizen's pages' session.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EnrollmentSessionResponse {
    /// What the pages send back in `X-CSRF-Token` with every write.
    pub csrf_token: String,
    /// When the session ends: its consent token's `exp` (RFC 3339, UTC).
    pub expires_at: String,
    /// The agreement version the citizen must accept.
    #[schema(example = "2026-1")]
    pub agreement_version: String,
    /// The application submitted through the session, once it is.
    pub application_id: Option<String>,
    /// Who Digital ID says the citizen is.
    pub identity: EnrollmentIdentity,
}

/// The citizen's names, from the session's consent token.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EnrollmentIdentity {
    /// Surname, as the register gives it.
    pub surname: String,
    /// Given name.
    pub name: String,
}
