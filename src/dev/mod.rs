//! Development-only code, kept apart from every production path: the development CA
//! hierarchy ([`hierarchy`]: `tamga ca init --dev`, dev-mode `serve`, tests), benchmark
//! support ([`bench`]: `tamga dev seed`, `dev load`, `dev bench-keys`), the entry points of
//! the fuzz targets ([`fuzzing`]) and, in test builds only, the unit tests' common CA and
//! store set-up (`test_ca`).
//!
//! Owns nothing the product needs to serve. Must never: be imported by an authority (`ca`,
//! `ra`, `csr`, `crl`, `ocsp`, `store`, `api`, …); only the CLI's development commands, tests,
//! benchmarks and fuzz targets reach it.

pub mod bench;
#[doc(hidden)]
pub mod fuzzing;
pub mod hierarchy;
pub mod http_load;
#[cfg(test)]
pub(crate) mod test_ca;
