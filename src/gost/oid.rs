//! The object identifiers of GOST R 34.10-2015 (2012) keys and signatures in NCA's form (the
//! Kazakh arc `1.2.398.3.10`) and in the TC26 form OpenSSL's gost engine reads and writes
//! (RFC 9215, the Russian arc `1.2.643.7.1`), and which of them correspond.

use const_oid::ObjectIdentifier;

/// NCA: GOST R 34.10-2015 public key, 512 bits.
pub const NCA_KEY_512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.398.3.10.1.1.2.2");
/// NCA: the 512-bit curve, parameter set A (the same curve as TC26's 512-bit paramSetA).
pub const NCA_PARAM_SET_512_A: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.398.3.10.1.1.2.2.1");
/// NCA: the Streebog-512 digest (GOST R 34.11-2015, 512 bits).
pub const NCA_DIGEST_512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.398.3.10.1.3.3");
/// NCA: signature with GOST R 34.10-2015 512 bits over Streebog-512 (parameters NULL).
pub const NCA_SIGNATURE_512: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.398.3.10.1.1.2.3.2");
/// NCA: GOST R 34.10-2015 public key, 256 bits.
pub const NCA_KEY_256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.398.3.10.1.1.2.1");
/// NCA: the 256-bit curve, parameter set A (the same curve as TC26's 256-bit paramSetA).
pub const NCA_PARAM_SET_256_A: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.398.3.10.1.1.2.1.1");
/// NCA: the Streebog-256 digest.
pub const NCA_DIGEST_256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.398.3.10.1.3.2");
/// NCA: signature with GOST R 34.10-2015 256 bits over Streebog-256 (parameters NULL).
pub const NCA_SIGNATURE_256: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.398.3.10.1.1.2.3.1");

/// TC26: `id-tc26-gost3410-12-512`, a GOST R 34.10-2012 512-bit public key.
pub const TC26_KEY_512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.643.7.1.1.1.2");
/// TC26: `id-tc26-gost-3410-12-512-paramSetA`.
pub const TC26_PARAM_SET_512_A: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.643.7.1.2.1.2.1");
/// TC26: `id-tc26-gost3411-12-512`, Streebog-512.
pub const TC26_DIGEST_512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.643.7.1.1.2.3");
/// TC26: `id-tc26-signwithdigest-gost3410-12-512` (no parameters).
pub const TC26_SIGNATURE_512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.643.7.1.1.3.3");
/// TC26: `id-tc26-gost3410-12-256`, a GOST R 34.10-2012 256-bit public key.
pub const TC26_KEY_256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.643.7.1.1.1.1");
/// TC26: `id-tc26-gost-3410-2012-256-paramSetA`.
pub const TC26_PARAM_SET_256_A: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.643.7.1.2.1.1.1");
/// TC26: `id-tc26-gost3411-12-256`, Streebog-256.
pub const TC26_DIGEST_256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.643.7.1.1.2.2");
/// TC26: `id-tc26-signwithdigest-gost3410-12-256` (no parameters).
pub const TC26_SIGNATURE_256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.643.7.1.1.3.2");

/// Which encoding of GOST keys and signatures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Form {
    /// NCA's: the Kazakh OIDs, signature algorithm parameters NULL, and the signature value's
    /// bytes in the reverse order of the engine's.
    Nca,
    /// TC26's (RFC 9215), what OpenSSL's gost engine reads and writes.
    Tc26,
}

/// The size of a GOST R 34.10-2015 key: it fixes the curve's size, the digest and the
/// signature's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeySize {
    /// 512 bits, Streebog-512: NCA's keys.
    Bits512,
    /// 256 bits, Streebog-256.
    Bits256,
}

/// The four OIDs of one key size in one form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Oids {
    /// The public key algorithm.
    pub key: ObjectIdentifier,
    /// The curve (public key parameter set A; the only one NCA uses).
    pub param_set: ObjectIdentifier,
    /// The digest.
    pub digest: ObjectIdentifier,
    /// The signature algorithm.
    pub signature: ObjectIdentifier,
    /// Whether the key's parameters name the digest too, as this form writes them (the engine
    /// leaves it out for the 256-bit paramSetA, as RFC 9215 allows; NCA writes it).
    pub digest_in_key_parameters: bool,
}

/// NCA's 512-bit OIDs.
pub const NCA_512: Oids = Oids {
    key: NCA_KEY_512,
    param_set: NCA_PARAM_SET_512_A,
    digest: NCA_DIGEST_512,
    signature: NCA_SIGNATURE_512,
    digest_in_key_parameters: true,
};
/// NCA's 256-bit OIDs.
pub const NCA_256: Oids = Oids {
    key: NCA_KEY_256,
    param_set: NCA_PARAM_SET_256_A,
    digest: NCA_DIGEST_256,
    signature: NCA_SIGNATURE_256,
    digest_in_key_parameters: true,
};
/// TC26's 512-bit OIDs.
pub const TC26_512: Oids = Oids {
    key: TC26_KEY_512,
    param_set: TC26_PARAM_SET_512_A,
    digest: TC26_DIGEST_512,
    signature: TC26_SIGNATURE_512,
    digest_in_key_parameters: true,
};
/// TC26's 256-bit OIDs.
pub const TC26_256: Oids = Oids {
    key: TC26_KEY_256,
    param_set: TC26_PARAM_SET_256_A,
    digest: TC26_DIGEST_256,
    signature: TC26_SIGNATURE_256,
    digest_in_key_parameters: false,
};

/// Every (form, size) with its OIDs.
const ALL: [(Form, KeySize, &Oids); 4] = [
    (Form::Nca, KeySize::Bits512, &NCA_512),
    (Form::Nca, KeySize::Bits256, &NCA_256),
    (Form::Tc26, KeySize::Bits512, &TC26_512),
    (Form::Tc26, KeySize::Bits256, &TC26_256),
];

impl KeySize {
    /// This size's OIDs in `form`.
    pub const fn oids(self, form: Form) -> &'static Oids {
        match (form, self) {
            (Form::Nca, KeySize::Bits512) => &NCA_512,
            (Form::Nca, KeySize::Bits256) => &NCA_256,
            (Form::Tc26, KeySize::Bits512) => &TC26_512,
            (Form::Tc26, KeySize::Bits256) => &TC26_256,
        }
    }

    /// The length in bytes of one coordinate of a public key point (and of r and s).
    pub const fn coordinate_len(self) -> usize {
        match self {
            KeySize::Bits512 => 64,
            KeySize::Bits256 => 32,
        }
    }

    /// The length in bytes of a signature value (r and s).
    pub const fn signature_len(self) -> usize {
        2 * self.coordinate_len()
    }

    /// The digest's name for `openssl::hash::MessageDigest::from_name` (the engine's).
    pub const fn digest_name(self) -> &'static str {
        match self {
            KeySize::Bits512 => "md_gost12_512",
            KeySize::Bits256 => "md_gost12_256",
        }
    }
}

/// The form and size whose public key algorithm is `oid`.
pub fn key_algorithm(oid: &ObjectIdentifier) -> Option<(Form, KeySize)> {
    ALL.iter()
        .find(|(_, _, o)| o.key == *oid)
        .map(|(form, size, _)| (*form, *size))
}

/// The form and size whose signature algorithm is `oid`.
pub fn signature_algorithm(oid: &ObjectIdentifier) -> Option<(Form, KeySize)> {
    ALL.iter()
        .find(|(_, _, o)| o.signature == *oid)
        .map(|(form, size, _)| (*form, *size))
}
