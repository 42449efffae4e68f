//! GOST R 34.10-2015 (ST RK GOST R 34.10-2015, the same algorithm as GOST R 34.10-2012) keys
//! and signatures in NCA's form and in the TC26 form, and OpenSSL's gost engine that checks
//! and makes them.
//!
//! Owns: loading the engine ([`init`]: the first OpenSSL initialisation of the process, from
//! the shipped configuration `config/openssl-gost.cnf` unless `OPENSSL_CONF` is set) and
//! whether it works ([`support`], [`available`]); NCA's and TC26's OIDs ([`oid`]); the one
//! conversion between the two forms — public keys ([`GostPublicKey`]: the key and parameter
//! OIDs mapped, the key's bits kept) and signature values (NCA's bytes are the engine's in
//! reverse: [`reverse_signature`]); [`verify`] of any GOST-signed structure from its TBS bytes,
//! signature algorithm, signature value and the signer's key in either form, and [`sign`],
//! which returns a signature in either form; new private keys of parameter set A
//! ([`generate`], without the engine's `paramset` control the `openssl` crate cannot pass);
//! the signed parts of whole certificates, CRLs,
//! OCSP responses and CSRs ([`SignedArtefact`]).
//!
//! NCA's form: key `1.2.398.3.10.1.1.2.2` with parameters `{…2.2.1, 1.2.398.3.10.1.3.3}`
//! (TC26 512-bit paramSetA, Streebog-512), signature `1.2.398.3.10.1.1.2.3.2` with NULL
//! parameters, and the signature value byte-reversed relative to what the engine writes (256
//! bits: `…2.1`, `…2.1.1`, `…3.2`, `…2.3.1`). NCA's real test CA certificate, CRL, OCSP
//! responses and container certificate verify with this code (`src/gost/tests.rs`), and the
//! `openssl` command with the engine agrees with it on the same bytes
//! (`tests/integration/gost.rs`).
//!
//! A whole artefact is not rewritten into the TC26 form: its TBS names the signature
//! algorithm, so the rewritten one would no longer match its signature (see
//! [`SignedArtefact`]); an independent checker gets the unchanged TBS, the signer's key in the
//! TC26 form and the reversed signature.
//!
//! Must never: import another module of the crate (the CA, CRLs, OCSP, CSRs and the client
//! call it); use `unsafe` or an engine API (the configuration loads the engine); set
//! `OPENSSL_CONF` after OpenSSL has started, or leave it pointing at a file it removed; accept
//! a signature whose length, key size or parameters do not fit its algorithm.

mod artefact;
mod convert;
mod engine;
mod keygen;
pub mod oid;
#[cfg(test)]
mod tests;

pub use artefact::{certificate_key, subject_public_key_info, ArtefactKind, SignedArtefact};
pub use convert::{
    engine_signature, key_algorithm_identifier, reverse_signature, sign, signature_algorithm,
    signature_algorithm_identifier, spki_to_nca, spki_to_tc26, verify, GostPublicKey,
};
pub use engine::{
    available, configuration, init, shipped_configuration, support, Configuration, GostSupport,
    OPENSSL_CONFIG,
};
pub use keygen::{generate, private_scalar};
pub use oid::{Form, KeySize};

use der::asn1::ObjectIdentifier;

/// For the crate's unit tests that need GOST: whether the gost engine works in this process
/// (cargo starts it with `OPENSSL_CONF` at the shipped configuration; [`init`], which may set
/// the variable, is for a binary's single-threaded start only). When it does not, the test
/// says it is skipped, or fails where `TAMGA_TEST_REQUIRE_GOST` is set (CI).
#[cfg(test)]
pub(crate) fn engine_for_test(test: &str) -> bool {
    let support = support();
    if !support.is_available() {
        assert!(
            std::env::var_os("TAMGA_TEST_REQUIRE_GOST").is_none(),
            "TAMGA_TEST_REQUIRE_GOST is set but GOST is unavailable: {support:?}"
        );
        eprintln!("SKIPPED {test}: {support:?} (apt-get install libengine-gost-openssl)");
    }
    support.is_available()
}

/// Why a GOST key, signature or artefact was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GostError {
    /// OpenSSL's gost engine is not installed or not loaded (why).
    #[error("GOST is unavailable: {0}")]
    EngineUnavailable(String),
    /// The key or signature algorithm is not GOST R 34.10-2015 in NCA's or the TC26 form.
    #[error("not a GOST R 34.10-2015 algorithm: {0}")]
    NotGost(ObjectIdentifier),
    /// The key's curve is not parameter set A of its size (the only one NCA uses).
    #[error("unknown GOST parameter set {0}")]
    UnknownParameterSet(ObjectIdentifier),
    /// The key's parameters name a digest of another size or form.
    #[error("the key's digest {0} does not fit the key")]
    DigestMismatch(ObjectIdentifier),
    /// The key's parameters or bits are not what the algorithm wants (what is wrong).
    #[error("malformed GOST key: {0}")]
    KeyParameters(&'static str),
    /// The public key point is not twice the curve's coordinate length.
    #[error("a GOST public key point of {found} bytes (the curve needs {expected})")]
    PointLength {
        /// The point's length for the key size.
        expected: usize,
        /// The length found.
        found: usize,
    },
    /// OpenSSL refused the key (a point not on the curve), with its words.
    #[error("OpenSSL refuses the GOST key: {0}")]
    KeyRejected(String),
    /// The signature algorithm has parameters other than NULL or none.
    #[error("the signature algorithm {0} has parameters")]
    SignatureParameters(ObjectIdentifier),
    /// The signature value is not the length of the algorithm's signatures.
    #[error("a GOST signature of {found} bytes (the algorithm's are {expected})")]
    SignatureLength {
        /// The algorithm's signature length.
        expected: usize,
        /// The length found.
        found: usize,
    },
    /// The signer's key is of another size than the signature algorithm.
    #[error("a {key:?} key cannot check a {signature:?} signature")]
    KeySizeMismatch {
        /// The key's size.
        key: KeySize,
        /// The signature algorithm's.
        signature: KeySize,
    },
    /// The signature does not verify.
    #[error("the GOST signature does not verify")]
    BadSignature,
    /// The artefact is not what it was read as (what is wrong).
    #[error("malformed artefact: {0}")]
    Malformed(&'static str),
    /// DER decoding or encoding failed.
    #[error("DER: {0}")]
    Der(#[from] der::Error),
    /// OpenSSL failed while signing.
    #[error("OpenSSL: {0}")]
    OpenSsl(#[from] openssl::error::ErrorStack),
}
