//! Tamga: a certification authority and registration authority server for a national
//! e-signature programme.
//!
//! The crate is split by authority (see `docs/architecture.md`, which also says which module
//! may import which): the ground floor ([`vocab`], [`error_code`], [`clock`], [`input`],
//! [`key_identity`], [`email`], [`pkcs12`], [`cms`], [`gost`]); [`config`], [`csr`] and [`digital_id`]; [`store`] (the only module that
//! touches the database); [`ca`] (the CA hierarchy and its keys), [`audit`] (the hash-chained
//! log) and [`notify`]; [`ra`], [`crl`] and [`ocsp`]; [`api`] (HTTP routes); [`dev`]
//! (development only) and [`enroll`] (the citizen's client); [`cli`] (the `tamga` command).

#![forbid(unsafe_code)]

pub mod api;
pub mod audit;
pub mod ca;
pub mod cli;
pub mod clock;
pub mod cms;
pub mod config;
pub mod crl;
pub mod csr;
pub mod dev;
pub mod digital_id;
pub mod email;
pub mod enroll;
pub mod error_code;
pub mod gost;
pub mod input;
pub mod key_identity;
pub mod notify;
pub mod ocsp;
pub mod pem;
pub mod pkcs12;
pub mod ra;
pub mod store;
pub mod vocab;
