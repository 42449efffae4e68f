//! The issuing CAs this instance operates at once: `[ca]`'s own (always the first) and each
//! `[[ca.issuers]]` entry, every one a [`Hierarchy`] (its root, issuing CA and delegated OCSP
//! responder) with its [`Issuer`]. Owns loading them all and finding one by id, by the key it
//! is to certify ([`Issuers::for_subject_key`]: the rule that decides which CA signs), by a
//! certificate's issuer, and the distinct roots they chain to. Must never: pick an issuer
//! whose key family differs from the subject key's when one of that family is configured.

use std::sync::Arc;

use openssl::x509::X509Ref;

use super::{CaError, Hierarchy, Issuer};
use crate::config::{CaConfig, Mode};
use crate::csr::SubjectKeyType;
use crate::vocab::KeyType;

/// Every issuing CA of this instance, in configuration order (never empty).
#[derive(Debug, Clone)]
pub struct Issuers {
    first: Arc<Issuer>,
    rest: Vec<Arc<Issuer>>,
    /// Issuers configured but not loaded, and why: a GOST issuer while the gost engine is not
    /// loaded (`crate::gost::available`).
    unavailable: Vec<(String, String)>,
}

/// Whether a CA key of `key_type` makes GOST signatures.
fn is_gost_ca(key_type: KeyType) -> bool {
    key_type.is_gost()
}

/// Whether a subject key is GOST (certified by a GOST CA, as NCA does).
fn is_gost_subject(key: SubjectKeyType) -> bool {
    match key {
        SubjectKeyType::Rsa(_) | SubjectKeyType::EcP256 | SubjectKeyType::EcP384 => false,
        SubjectKeyType::Gost(_) => true,
    }
}

/// Why a GOST issuer is not loaded: the gost engine is not (`crate::gost::support`).
pub fn not_loaded_reason() -> String {
    let why = match crate::gost::support() {
        crate::gost::GostSupport::Available => "it is loaded now".to_owned(),
        crate::gost::GostSupport::Unavailable(why) => why.clone(),
    };
    format!(
        "not loaded: GOST signatures need OpenSSL's gost engine ({why}); RSA and EC issuers keep working"
    )
}

/// Whether the issuer `ca` describes (a view of [`CaConfig::per_issuer`]) is skipped here:
/// a GOST issuing CA while the gost engine is not loaded. `[ca]`'s own issuer is never
/// skipped.
pub fn skipped(ca: &CaConfig, first: bool) -> bool {
    !first && is_gost_ca(ca.issuing_key_type) && !crate::gost::available()
}

impl Issuers {
    /// Load every issuer `ca` lists (see [`CaConfig::per_issuer`]), each hierarchy checked as
    /// [`Hierarchy::load`] checks one, their certificates pointing at `public_url`.
    pub fn load(
        ca: &CaConfig,
        mode: Mode,
        public_url: &str,
        cps_url: &str,
    ) -> Result<Issuers, CaError> {
        let mut loaded = Vec::new();
        let mut unavailable = Vec::new();
        for (n, view) in ca.per_issuer().into_iter().enumerate() {
            if skipped(&view, n == 0) {
                unavailable.push((view.issuer_id.clone(), not_loaded_reason()));
                continue;
            }
            let hierarchy = Arc::new(Hierarchy::load(&view, mode)?);
            loaded.push(Arc::new(Issuer::new(hierarchy, public_url, cps_url)?));
        }
        let mut all = loaded.into_iter();
        let first = all.next().ok_or_else(|| CaError::Invalid {
            path: ca.dir.clone(),
            message: "no issuing CA is configured".to_owned(),
        })?;
        Ok(Issuers {
            first,
            rest: all.collect(),
            unavailable,
        })
    }

    /// The issuers configured but not loaded, with why (see [`not_loaded_reason`]).
    pub fn unavailable(&self) -> &[(String, String)] {
        &self.unavailable
    }

    /// One issuer alone (tests, and tools that work on `[ca]`'s issuer only).
    pub fn single(issuer: Arc<Issuer>) -> Issuers {
        Issuers {
            first: issuer,
            rest: Vec::new(),
            unavailable: Vec::new(),
        }
    }

    /// `[ca]`'s own issuer.
    pub fn first(&self) -> &Arc<Issuer> {
        &self.first
    }

    /// Every issuer, `[ca]`'s first.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Issuer>> {
        std::iter::once(&self.first).chain(self.rest.iter())
    }

    /// How many issuers there are.
    pub fn len(&self) -> usize {
        1 + self.rest.len()
    }

    /// Never: there is always `[ca]`'s issuer.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The issuer with id `id`.
    pub fn get(&self, id: &str) -> Option<&Arc<Issuer>> {
        self.iter().find(|i| i.id() == id)
    }

    /// The hierarchy whose root has id `root_id` (the first issuer under it).
    pub fn root(&self, root_id: &str) -> Option<&Arc<Hierarchy>> {
        self.iter()
            .map(|i| i.hierarchy())
            .find(|h| h.root_id() == root_id)
    }

    /// One hierarchy per distinct root, in configuration order.
    pub fn roots(&self) -> Vec<&Arc<Hierarchy>> {
        let mut roots: Vec<&Arc<Hierarchy>> = Vec::new();
        for h in self.iter().map(|i| i.hierarchy()) {
            if !roots.iter().any(|r| r.root_id() == h.root_id()) {
                roots.push(h);
            }
        }
        roots
    }

    /// The issuer that certifies a subject key of `key`: a GOST key goes to the first GOST
    /// issuing CA, every other key to the first issuing CA that is not GOST — `[ca]`'s own,
    /// unless that is GOST. None where no issuer of the key's family is loaded (no GOST
    /// issuer is configured, or it is not loaded without the engine): an RSA CA never
    /// certifies a GOST key, nor a GOST CA an RSA or EC one.
    pub fn for_subject_key(&self, key: SubjectKeyType) -> Option<&Arc<Issuer>> {
        let gost = is_gost_subject(key);
        self.iter()
            .find(|i| is_gost_ca(i.hierarchy().issuing().key_type()) == gost)
    }

    /// The issuer named by `cert`: its issuer name is the issuing CA's subject and its
    /// authority key identifier the issuing CA's subject key identifier. (Which one it names,
    /// not whether the signature verifies: callers that trust it check that themselves.)
    pub fn of_certificate(&self, cert: &X509Ref) -> Option<&Arc<Issuer>> {
        let aki = cert.authority_key_id()?;
        self.iter().find(|i| {
            let issuing = i.hierarchy().issuing().certificate().x509();
            issuing.subject_name().try_cmp(cert.issuer_name()).ok()
                == Some(std::cmp::Ordering::Equal)
                && issuing
                    .subject_key_id()
                    .is_some_and(|ski| ski.as_slice() == aki.as_slice())
        })
    }
}
