//! The common set-up of the unit tests that need a CA and a database: a development hierarchy
//! in a fresh temporary directory, with an empty SQLite store and an issuer beside it.
//!
//! Owns only test set-up. Must never: be compiled outside `cfg(test)`, or hold assertions of
//! its own (each test says what it checks).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use crate::ca::{Hierarchy, Issuer};
use crate::config::{CaConfig, DatabaseConfig, DatabaseUrl, Mode};
use crate::dev::hierarchy as dev;
use crate::store::Store;

/// A development CA in a temporary directory, removed when this is dropped.
pub(crate) struct TestCa {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) ca: CaConfig,
    pub(crate) hierarchy: Arc<Hierarchy>,
}

/// A fresh development hierarchy (issuer `nca_rsa_dev`, URLs under `http://ca.test`).
pub(crate) fn dev_ca() -> TestCa {
    let dir = tempfile::tempdir().unwrap();
    let ca = CaConfig {
        dir: dir.path().join("ca"),
        ..CaConfig::default()
    };
    dev::init(
        &ca,
        "http://ca.test",
        "http://ca.test/cps",
        false,
        chrono::Utc::now(),
    )
    .unwrap();
    let hierarchy = Arc::new(Hierarchy::load(&ca, Mode::Dev).unwrap());
    TestCa { dir, ca, hierarchy }
}

impl TestCa {
    /// The SQLite store of this CA's directory (created empty on first open).
    pub(crate) fn store(&self) -> Store {
        Store::open(
            &DatabaseUrl::Sqlite(self.dir.path().join("t.db")),
            &DatabaseConfig::default(),
        )
        .unwrap()
    }

    /// An issuer over this hierarchy.
    pub(crate) fn issuer(&self) -> Arc<Issuer> {
        Arc::new(
            Issuer::new(
                Arc::clone(&self.hierarchy),
                "http://ca.test",
                "http://ca.test/cps",
            )
            .unwrap(),
        )
    }
}
