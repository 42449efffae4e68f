-- Revoked CA certificates (the issuing CA, on the day its key is compromised): the entries of
-- the root's CRL (an authority revocation list).
CREATE TABLE authority_revocations (
    serial      TEXT PRIMARY KEY NOT NULL,
    subject     TEXT NOT NULL,
    revoked_at  TIMESTAMP NOT NULL,
    reason      TEXT NOT NULL
);
