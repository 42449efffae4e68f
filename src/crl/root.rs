//! The root CA's CRL (an authority revocation list): it lists revoked CA certificates —
//! normally none — so that strict relying parties (`openssl verify -crl_check_all`, qualified
//! signature validators) find revocation data for the issuing CA certificate too.
//!
//! The root is offline in production: `tamga root crl` signs the next root CRL on the
//! machine that holds the root key (the root alone: its certificate and key), records it in
//! that machine's database under [`SIGNED_ID`] so that numbers only go up, and `tamga crl
//! import` verifies it against the root certificate and publishes it on the server. In
//! development the server keeps it fresh itself.

use chrono::{DateTime, NaiveDateTime, Utc};
use der::Decode;
use x509_cert::crl::CertificateList;
use x509_cert::ext::pkix::crl::dp::IssuingDistributionPoint;

use super::{assemble, ext, CrlError, CrlSigner};
use crate::ca::{signature_algorithm, CaCertificate, Hierarchy, IssuerKey};
use crate::store::{db_time, AuditEntry, CrlInfo, Store, StoredCrl};

/// The id the root's CRLs are stored and served under (`/crl/root.crl`).
pub const ROOT_ID: &str = "root";

/// The id under which the root machine records the root CRLs it signed (never served: no
/// issuer id has a dot, and only `root.crl` and the issuing CA's own CRLs are served).
pub const SIGNED_ID: &str = "root.signed";

const OID_IDP: const_oid::ObjectIdentifier = const_oid::ObjectIdentifier::new_unwrap("2.5.29.28");
const OID_CRL_NUMBER: const_oid::ObjectIdentifier =
    const_oid::ObjectIdentifier::new_unwrap("2.5.29.20");

/// Why a root CRL was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RootCrlError {
    /// Building, signing or storing failed.
    #[error(transparent)]
    Crl(#[from] CrlError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// This machine does not hold the root key.
    #[error("the root key is not on this machine (root.key.pem in [ca] dir)")]
    NoRootKey,
    /// `--number` below a number already signed or published here.
    #[error("CRL number {asked} is below root CRL number {last}, already signed here")]
    NumberBelowLast {
        /// The number asked for.
        asked: i64,
        /// The highest number signed or published here.
        last: i64,
    },
    /// Not a CRL.
    #[error("not a CRL: {0}")]
    Malformed(String),
    /// Not signed by our root, or not issued under its name.
    #[error("the CRL is not signed by the root CA certificate")]
    NotSignedByRoot,
    /// Its number is not above the published one.
    #[error("CRL number {found} is not newer than the published root CRL number {published}")]
    NotNewer {
        /// The file's number.
        found: i64,
        /// The published number.
        published: i64,
    },
    /// nextUpdate has passed.
    #[error("the CRL expired at {0}")]
    Expired(NaiveDateTime),
}

/// Sign root CRL number `number` with the root `root_key` (its certificate and key), listing
/// `revoked`, valid from `now` for `validity`.
pub fn sign(
    root_key: &IssuerKey,
    public_url: &str,
    number: i64,
    revoked: Vec<crate::store::RevocationEntry>,
    now: DateTime<Utc>,
    validity: chrono::Duration,
) -> Result<Vec<u8>, RootCrlError> {
    let root =
        x509_cert::Certificate::from_der(root_key.certificate().der()).map_err(CrlError::from)?;
    let ski = root_key
        .certificate()
        .x509()
        .subject_key_id()
        .map(|k| k.as_slice().to_vec())
        .unwrap_or_default();
    let algorithm = signature_algorithm(root_key.key_type());
    let sign = |tbs: &[u8]| root_key.sign(tbs);
    let signer = CrlSigner {
        name: &root.tbs_certificate.subject,
        authority_key_id: &ski,
        algorithm: &algorithm,
        sign: &sign,
    };
    // No distributionPoint in the IDP: the root certificate itself has no CRL distribution
    // point, and a relying party checking every certificate of the path (the root included)
    // would find the CRL out of scope. onlyContainsCACerts keeps it an ARL.
    let _ = public_url;
    let idp = IssuingDistributionPoint {
        distribution_point: None,
        only_contains_user_certs: false,
        only_contains_ca_certs: true,
        only_some_reasons: None,
        indirect_crl: false,
        only_contains_attribute_certs: false,
    };
    let this_update = DateTime::<Utc>::from_timestamp(now.timestamp(), 0)
        .unwrap_or(now)
        .naive_utc();
    let mut remaining = Some(revoked);
    Ok(assemble(
        &signer,
        number,
        this_update,
        this_update + validity,
        vec![ext(OID_IDP, true, &idp)?],
        |_| Ok(remaining.take().unwrap_or_default()),
    )?
    .der)
}

/// What a verified root CRL says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootCrl {
    /// The DER.
    pub der: Vec<u8>,
    /// CRL number.
    pub number: i64,
    /// thisUpdate.
    pub this_update: NaiveDateTime,
    /// nextUpdate.
    pub next_update: NaiveDateTime,
    /// How many CA certificates it lists.
    pub entries: i64,
}

impl RootCrl {
    /// The row that keeps it under `issuer_id` (the published one, or the root machine's record
    /// of what it signed), recorded `at`.
    fn stored(&self, issuer_id: &str, at: NaiveDateTime) -> StoredCrl {
        StoredCrl {
            issuer_id: issuer_id.to_owned(),
            crl_number: self.number,
            is_delta: false,
            base_crl_number: None,
            this_update: self.this_update,
            next_update: self.next_update,
            der: self.der.clone(),
            created_at: at,
            covered_seq: self.entries,
        }
    }

    /// The audit entry of `action` on it (a CRL of the root `root_id`) by `actor`, at `at`.
    fn audited(&self, action: &str, root_id: &str, actor: &str, at: NaiveDateTime) -> AuditEntry {
        AuditEntry {
            at,
            actor: actor.to_owned(),
            action: action.to_owned(),
            subject: root_id.to_owned(),
            details: serde_json::json!({
                "crl_number": self.number,
                "next_update": self.next_update.and_utc().to_rfc3339(),
                "entries": self.entries,
            }),
        }
    }
}

fn time(t: &x509_cert::time::Time) -> NaiveDateTime {
    DateTime::<Utc>::from_timestamp(
        i64::try_from(t.to_unix_duration().as_secs()).unwrap_or(0),
        0,
    )
    .unwrap_or_default()
    .naive_utc()
}

/// Check that `bytes` (DER or PEM) is a CRL issued and signed by the root certificate `root`.
pub fn verify(root_cert: &CaCertificate, bytes: &[u8]) -> Result<RootCrl, RootCrlError> {
    let crl = openssl::x509::X509Crl::from_der(bytes)
        .or_else(|_| openssl::x509::X509Crl::from_pem(bytes))
        .map_err(|_| RootCrlError::Malformed("neither DER nor PEM".to_owned()))?;
    let der = crl
        .to_der()
        .map_err(|e| RootCrlError::Malformed(e.to_string()))?;
    if !root_cert.signed_crl(&der) {
        return Err(RootCrlError::NotSignedByRoot);
    }
    let parsed =
        CertificateList::from_der(&der).map_err(|e| RootCrlError::Malformed(e.to_string()))?;
    let root = x509_cert::Certificate::from_der(root_cert.der()).map_err(CrlError::from)?;
    if parsed.tbs_cert_list.issuer != root.tbs_certificate.subject {
        return Err(RootCrlError::NotSignedByRoot);
    }
    let number = parsed
        .tbs_cert_list
        .crl_extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == OID_CRL_NUMBER)
        .and_then(|e| x509_cert::ext::pkix::CrlNumber::from_der(e.extn_value.as_bytes()).ok())
        .and_then(|n| {
            let bytes = n.0.as_bytes();
            (bytes.len() <= 8).then(|| bytes.iter().fold(0i64, |acc, b| (acc << 8) | i64::from(*b)))
        })
        .ok_or_else(|| RootCrlError::Malformed("no CRL number".to_owned()))?;
    let next_update = parsed
        .tbs_cert_list
        .next_update
        .as_ref()
        .map(time)
        .ok_or_else(|| RootCrlError::Malformed("no nextUpdate".to_owned()))?;
    let entries = parsed
        .tbs_cert_list
        .revoked_certificates
        .as_ref()
        .map_or(0, Vec::len);
    Ok(RootCrl {
        number,
        this_update: time(&parsed.tbs_cert_list.this_update),
        next_update,
        entries: i64::try_from(entries).unwrap_or(i64::MAX),
        der,
    })
}

/// Publish a verified root CRL: it must not have expired and must be newer than the
/// published one.
pub fn import(
    store: &Store,
    crl: &RootCrl,
    now: DateTime<Utc>,
    actor: &str,
) -> Result<(), RootCrlError> {
    import_as(store, crl, ROOT_ID, now, actor)
}

/// [`import`] for the root `root_id` (`root`, or the root of a `[[ca.issuers]]` entry).
fn import_as(
    store: &Store,
    crl: &RootCrl,
    root_id: &str,
    now: DateTime<Utc>,
    actor: &str,
) -> Result<(), RootCrlError> {
    if crl.next_update <= now.naive_utc() {
        return Err(RootCrlError::Expired(crl.next_update));
    }
    store.write(|tx| -> Result<(), RootCrlError> {
        tx.lock_crl_issuer(root_id)?;
        let published = tx.last_crl_number(root_id)?.unwrap_or(0);
        if crl.number <= published {
            return Err(RootCrlError::NotNewer {
                found: crl.number,
                published,
            });
        }
        let at = db_time(now);
        tx.insert_crl(&crl.stored(root_id, at))?;
        tx.append_audit(&crl.audited("crl.root_published", root_id, actor, at))?;
        Ok(())
    })
}

/// The highest root CRL number this database knows: signed here ([`SIGNED_ID`], the root
/// machine's record) or published here ([`ROOT_ID`]); 0 for none.
pub fn last_number(store: &Store) -> Result<i64, RootCrlError> {
    Ok(store.read(|tx| -> Result<_, crate::store::StoreError> {
        Ok(tx
            .last_crl_number(ROOT_ID)?
            .max(tx.last_crl_number(SIGNED_ID)?)
            .unwrap_or(0))
    })?)
}

/// The next root CRL, signed with `root_key`: number `number` (never below [`last_number`])
/// or the one after it, listing the database's revoked CA certificates.
pub fn sign_next(
    store: &Store,
    root_key: &IssuerKey,
    public_url: &str,
    number: Option<i64>,
    now: DateTime<Utc>,
    validity: chrono::Duration,
) -> Result<Vec<u8>, RootCrlError> {
    let last = last_number(store)?;
    let number = match number {
        Some(asked) if asked < last => return Err(RootCrlError::NumberBelowLast { asked, last }),
        Some(asked) => asked,
        None => last + 1,
    };
    let revoked = store.read(|tx| tx.authority_revocations())?;
    sign(root_key, public_url, number, revoked, now, validity)
}

/// Record on the root machine that it signed `crl` (under [`SIGNED_ID`], so that the next
/// number is above it), with its `root.crl_signed` audit entry, in one transaction. A
/// number below the last one is refused; the same number signed again (a lost file) keeps the
/// first record and is audited.
pub fn record_signed(
    store: &Store,
    crl: &RootCrl,
    now: DateTime<Utc>,
    actor: &str,
) -> Result<(), RootCrlError> {
    store.write(|tx| -> Result<(), RootCrlError> {
        tx.lock_crl_issuer(SIGNED_ID)?;
        let last = tx
            .last_crl_number(ROOT_ID)?
            .max(tx.last_crl_number(SIGNED_ID)?)
            .unwrap_or(0);
        if crl.number < last {
            return Err(RootCrlError::NumberBelowLast {
                asked: crl.number,
                last,
            });
        }
        let at = db_time(now);
        if tx.crl(SIGNED_ID, crl.number)?.is_none() {
            tx.insert_crl(&crl.stored(SIGNED_ID, at))?;
        }
        tx.append_audit(&crl.audited("root.crl_signed", ROOT_ID, actor, at))?;
        Ok(())
    })
}

/// Development upkeep: when this machine holds the root key, publish a new root CRL if there
/// is none, if half its validity has passed, or if the revoked CA certificates changed.
/// Returns the published CRL's info, if it published one.
pub fn keep_fresh(
    store: &Store,
    hierarchy: &Hierarchy,
    public_url: &str,
    now: DateTime<Utc>,
    validity: chrono::Duration,
) -> Result<Option<CrlInfo>, RootCrlError> {
    keep_fresh_as(store, hierarchy, None, public_url, now, validity)
}

/// [`keep_fresh`] for the root of a `[[ca.issuers]]` entry other than `root`, published under
/// its own id (`/crl/<root_id>.crl`): it lists the revoked CA certificates among
/// `issuing_serials` (the issuing CA certificates under it), since the authority's
/// revocations do not record which root revoked them.
pub fn keep_fresh_further(
    store: &Store,
    hierarchy: &Hierarchy,
    issuing_serials: &[String],
    public_url: &str,
    now: DateTime<Utc>,
    validity: chrono::Duration,
) -> Result<Option<CrlInfo>, RootCrlError> {
    keep_fresh_as(
        store,
        hierarchy,
        Some(issuing_serials),
        public_url,
        now,
        validity,
    )
}

fn keep_fresh_as(
    store: &Store,
    hierarchy: &Hierarchy,
    only: Option<&[String]>,
    public_url: &str,
    now: DateTime<Utc>,
    validity: chrono::Duration,
) -> Result<Option<CrlInfo>, RootCrlError> {
    let Some(root_key) = hierarchy.root_key() else {
        return Ok(None);
    };
    let root_id = match only {
        None => ROOT_ID,
        Some(_) => hierarchy.root_id(),
    };
    let (latest, revoked) = store.read(|tx| -> Result<_, crate::store::StoreError> {
        let mut revoked = tx.authority_revocations()?;
        if let Some(serials) = only {
            revoked.retain(|r| serials.contains(&r.serial));
        }
        Ok((tx.latest_crl_info(root_id, false)?, revoked))
    })?;
    let due = match &latest {
        None => true,
        Some(l) => {
            now.naive_utc() - l.this_update >= validity / 2
                || l.covered_seq != i64::try_from(revoked.len()).unwrap_or(i64::MAX)
        }
    };
    if !due {
        return Ok(None);
    }
    let der = match only {
        None => sign_next(store, root_key, public_url, None, now, validity)?,
        Some(_) => {
            let last = store.read(|tx| tx.last_crl_number(root_id))?.unwrap_or(0);
            sign(root_key, public_url, last + 1, revoked, now, validity)?
        }
    };
    let crl = verify(hierarchy.root(), &der)?;
    match import_as(store, &crl, root_id, now, "system") {
        Ok(()) => Ok(Some(CrlInfo {
            crl_number: crl.number,
            this_update: crl.this_update,
            next_update: crl.next_update,
            covered_seq: crl.entries,
        })),
        // Another instance published the same number first.
        Err(RootCrlError::NotNewer { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}
