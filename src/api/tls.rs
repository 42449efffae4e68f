//! TLS on the HTTP listener (`[server.tls]`), with OpenSSL through actix-web's `openssl`
//! feature: the server certificate chain and key, and optionally the CAs of the onboarding
//! portal's client certificates.
//!
//! Owns: reading and cross-checking the TLS files (the same checks for `tamga config check`
//! and `tamga serve`), the acceptor's settings, and the per-connection record of the client
//! certificate ([`ClientCertificate`]) that the request gate reads for `/api/v1/…`.
//! Must never: name a key's content in a message or a log (only its file), or fail a
//! handshake because of a client certificate — relying parties reach `/ocsp`, `/crl/…` and
//! `/ca/…` over the same listener with any certificate or none, so the handshake *requests* a
//! client certificate and records whether it verified; only the portal API refuses.

use std::any::Any;
use std::path::{Path, PathBuf};

use actix_tls::accept::openssl::TlsStream;
use actix_web::dev::Extensions;
use actix_web::rt::net::TcpStream;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{AlpnError, SslAcceptor, SslAcceptorBuilder, SslMethod, SslVerifyMode};
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::{X509VerifyResult, X509};

use crate::config::TlsConfig;

/// Why the TLS files were refused. Messages name the file, never a key's content.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Unreadable {
        /// The config key naming the file.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The certificate file holds no PEM certificate, or one that does not parse.
    #[error("{} holds no PEM certificate (BEGIN CERTIFICATE){detail}", path.display())]
    CertificateInvalid {
        /// The file.
        path: PathBuf,
        /// What the parser said, if anything useful.
        detail: String,
    },
    /// The server certificate is past its notAfter.
    #[error("the certificate in {} expired ({not_after})", path.display())]
    CertificateExpired {
        /// The file.
        path: PathBuf,
        /// Its notAfter.
        not_after: String,
    },
    /// The key file holds no usable private key.
    #[error("{} holds no unencrypted PEM private key", path.display())]
    KeyInvalid {
        /// The file.
        path: PathBuf,
    },
    /// The key file is password-protected.
    #[error("{} is an encrypted private key; give the server an unencrypted key file readable only by it", path.display())]
    KeyEncrypted {
        /// The file.
        path: PathBuf,
    },
    /// The key is not the certificate's.
    #[error("the private key in {} does not match the certificate in {}", key.display(), cert.display())]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// The client CA bundle holds no certificate.
    #[error("{} holds no PEM CA certificate (BEGIN CERTIFICATE){detail}", path.display())]
    ClientCaInvalid {
        /// The file.
        path: PathBuf,
        /// What the parser said, if anything useful.
        detail: String,
    },
    /// A certificate of the client CA bundle is not a CA certificate.
    #[error("{}: `{subject}` is not a CA certificate (basicConstraints CA:TRUE)", path.display())]
    ClientCaNotCa {
        /// The file.
        path: PathBuf,
        /// The offending certificate's subject.
        subject: String,
    },
    /// OpenSSL refused the settings.
    #[error("setting up TLS: {0}")]
    Setup(#[from] openssl::error::ErrorStack),
}

impl TlsError {
    /// The dotted config key at fault.
    pub fn key(&self) -> &'static str {
        match self {
            TlsError::Unreadable { key, .. } => key,
            TlsError::CertificateInvalid { .. }
            | TlsError::CertificateExpired { .. }
            | TlsError::Setup(_) => "server.tls.cert",
            TlsError::KeyInvalid { .. }
            | TlsError::KeyEncrypted { .. }
            | TlsError::KeyMismatch { .. } => "server.tls.key",
            TlsError::ClientCaInvalid { .. } | TlsError::ClientCaNotCa { .. } => {
                "server.tls.client_ca"
            }
        }
    }

    /// Whether a file could not be read at all.
    pub fn is_unreadable(&self) -> bool {
        matches!(self, TlsError::Unreadable { .. })
    }
}

/// The loaded TLS files: the server's chain and key, and the client CAs.
pub struct TlsFiles {
    chain: Vec<X509>,
    key: PKey<Private>,
    client_cas: Vec<X509>,
}

impl std::fmt::Debug for TlsFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsFiles")
            .field("chain", &self.chain.len())
            .field("key", &"<redacted>")
            .field("client_cas", &self.client_cas.len())
            .finish()
    }
}

fn read(key: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    crate::input::read_bounded(path, crate::input::PEM_LIMIT).map_err(|source| {
        TlsError::Unreadable {
            key,
            path: path.to_path_buf(),
            source,
        }
    })
}

fn parse_detail(e: &openssl::error::ErrorStack) -> String {
    e.errors()
        .first()
        .and_then(|e| e.reason())
        .map(|r| format!(": {r}"))
        .unwrap_or_default()
}

impl TlsFiles {
    /// Read and cross-check the files of `[server.tls]` (which must be enabled).
    pub fn load(config: &TlsConfig) -> Result<TlsFiles, TlsError> {
        let cert_pem = read("server.tls.cert", &config.cert)?;
        let chain = X509::stack_from_pem(&cert_pem).map_err(|e| TlsError::CertificateInvalid {
            path: config.cert.clone(),
            detail: parse_detail(&e),
        })?;
        let leaf = chain.first().ok_or_else(|| TlsError::CertificateInvalid {
            path: config.cert.clone(),
            detail: String::new(),
        })?;
        let now = openssl::asn1::Asn1Time::days_from_now(0)?;
        if leaf.not_after() < now {
            return Err(TlsError::CertificateExpired {
                path: config.cert.clone(),
                not_after: leaf.not_after().to_string(),
            });
        }
        let key_pem = read("server.tls.key", &config.key)?;
        if key_pem
            .windows(b"ENCRYPTED".len())
            .any(|w| w == b"ENCRYPTED")
        {
            return Err(TlsError::KeyEncrypted {
                path: config.key.clone(),
            });
        }
        // An empty passphrase: OpenSSL must never prompt on a terminal for a server's key.
        let key = PKey::private_key_from_pem_passphrase(&key_pem, b"").map_err(|_| {
            TlsError::KeyInvalid {
                path: config.key.clone(),
            }
        })?;
        let leaf_key = leaf.public_key()?;
        if !key.public_eq(&leaf_key) {
            return Err(TlsError::KeyMismatch {
                cert: config.cert.clone(),
                key: config.key.clone(),
            });
        }
        let client_cas = if config.client_auth() {
            let pem = read("server.tls.client_ca", &config.client_ca)?;
            let cas = X509::stack_from_pem(&pem).map_err(|e| TlsError::ClientCaInvalid {
                path: config.client_ca.clone(),
                detail: parse_detail(&e),
            })?;
            if cas.is_empty() {
                return Err(TlsError::ClientCaInvalid {
                    path: config.client_ca.clone(),
                    detail: String::new(),
                });
            }
            for ca in &cas {
                if !is_ca(ca) {
                    return Err(TlsError::ClientCaNotCa {
                        path: config.client_ca.clone(),
                        subject: crate::ca::display_name(ca.subject_name()),
                    });
                }
            }
            cas
        } else {
            Vec::new()
        };
        Ok(TlsFiles {
            chain,
            key,
            client_cas,
        })
    }

    /// Whether client certificates are requested and checked.
    pub fn client_auth(&self) -> bool {
        !self.client_cas.is_empty()
    }

    /// The OpenSSL acceptor: Mozilla's intermediate profile (TLS 1.2 and 1.3), the server
    /// chain, and with client CAs a certificate *request* whose outcome is recorded, not
    /// enforced, by the handshake (see [`on_connect`]).
    pub fn acceptor(&self) -> Result<SslAcceptorBuilder, TlsError> {
        let mut builder = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())?;
        let mut chain = self.chain.iter();
        if let Some(leaf) = chain.next() {
            builder.set_certificate(leaf)?;
        }
        for extra in chain {
            builder.add_extra_chain_cert(extra.clone())?;
        }
        builder.set_private_key(&self.key)?;
        builder.check_private_key()?;
        if self.client_auth() {
            let mut store = X509StoreBuilder::new()?;
            let mut names = Stack::new()?;
            for ca in &self.client_cas {
                store.add_cert(ca.clone())?;
                names.push(ca.subject_name().to_owned()?)?;
            }
            builder.set_verify_cert_store(store.build())?;
            builder.set_client_ca_list(names);
            // PEER without FAIL_IF_NO_PEER_CERT: ask for a certificate, accept a handshake
            // without one. The callback lets an untrusted certificate through as well; its
            // verification error stays in the session (`verify_result`) and the portal API
            // refuses it with a precise code, while public routes keep working.
            builder.set_verify_callback(SslVerifyMode::PEER, |_preverified, _ctx| true);
            // Resumed sessions keep the peer certificate and its verification result.
            builder.set_session_id_context(b"tamga-portal")?;
        }
        Ok(builder)
    }
}

fn is_ca(cert: &X509) -> bool {
    let Ok(der) = cert.to_der() else {
        return false;
    };
    let Ok(parsed) = <x509_cert::Certificate as der::Decode>::from_der(&der) else {
        return false;
    };
    parsed
        .tbs_certificate
        .get::<x509_cert::ext::pkix::BasicConstraints>()
        .ok()
        .flatten()
        .is_some_and(|(_, bc)| bc.ca)
}

/// What the TLS handshake learnt about the client's certificate, kept with the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientCertificate {
    /// The client sent none.
    Absent,
    /// It chains to a configured client CA.
    Verified {
        /// Its subject, for logs.
        subject: String,
    },
    /// It does not verify; the reason as OpenSSL words it.
    Untrusted {
        /// Why.
        reason: String,
    },
}

/// The acceptor, offering HTTP/1.1 by ALPN (the only protocol served).
pub fn http1_acceptor(mut builder: SslAcceptorBuilder) -> std::io::Result<SslAcceptor> {
    const HTTP1: &[u8] = b"\x08http/1.1";
    builder.set_alpn_select_callback(|_, offered| {
        if offered.windows(HTTP1.len()).any(|w| w == HTTP1) {
            Ok(b"http/1.1")
        } else {
            Err(AlpnError::NOACK)
        }
    });
    builder
        .set_alpn_protos(HTTP1)
        .map_err(std::io::Error::other)?;
    Ok(builder.build())
}

/// The peer address of a connection (plain TCP or TLS), as `HttpServer::on_connect` sees it.
pub fn peer_addr(connection: &dyn Any) -> Option<std::net::SocketAddr> {
    if let Some(tcp) = connection.downcast_ref::<TcpStream>() {
        return tcp.peer_addr().ok();
    }
    connection
        .downcast_ref::<TlsStream<TcpStream>>()
        .and_then(|tls| tls.get_ref().peer_addr().ok())
}

/// `HttpServer::on_connect`: record the client certificate of a TLS connection.
pub fn on_connect(connection: &dyn Any, extensions: &mut Extensions) {
    let Some(tls) = connection.downcast_ref::<TlsStream<TcpStream>>() else {
        return;
    };
    let ssl = tls.ssl();
    let state = match ssl.peer_certificate() {
        None => ClientCertificate::Absent,
        Some(cert) => {
            let result = ssl.verify_result();
            if result == X509VerifyResult::OK {
                ClientCertificate::Verified {
                    subject: crate::ca::display_name(cert.subject_name()),
                }
            } else {
                ClientCertificate::Untrusted {
                    reason: result.error_string().to_owned(),
                }
            }
        }
    };
    extensions.insert(state);
}
