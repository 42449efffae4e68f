-- Data migrations done in Rust after the schema migrations (rewrites SQL cannot compute, such
-- as the canonical key identity of certificates.spki_sha256 and blocked_keys): one row each,
-- written in the transaction that did the rewrite, so each runs exactly once.
CREATE TABLE data_migrations (
    name        TEXT PRIMARY KEY NOT NULL,
    applied_at  TIMESTAMP NOT NULL
);
