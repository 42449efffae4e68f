//! Integration tests, in one binary to keep linking cheap: the store on SQLite and
//! PostgreSQL, the `tamga` command line, and a running server checked with the `openssl` CLI
//! and other relying parties' validators (GnuTLS, NSS, the JDK, pyhanko-certvalidator).
//!
//! PostgreSQL tests need `TAMGA_TEST_POSTGRES_URL` (a role allowed to create databases);
//! without it they print that they were skipped. `.ci/run` always sets it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod admin;
mod agent;
mod attacks;
mod backup;
mod browser;
mod cabinet;
mod ceremony;
mod ceremony_checks;
mod cli;
mod crl_dates;
mod enroll;
mod enroll_client;
mod faults;
mod gost;
mod gost_ca;
mod gost_csr;
mod gost_enroll;
mod hsm;
mod http_caching;
mod identity;
mod issuers;
mod keys;
mod limits;
mod load;
mod notify;
mod ocsp;
mod operator;
mod ops_log;
mod pages;
mod policy;
mod readme;
mod reissue_client;
mod relying_parties;
mod revoke;
mod root_crl;
mod root_ocsp;
mod server;
mod store;
mod support;
mod tls;
