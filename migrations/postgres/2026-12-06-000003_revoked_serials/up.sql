-- Revocations known only by serial: a published CRL lists the serial as revoked but the
-- database has no certificate for it (issued after the backup a restore came from). Listed on
-- every CRL and answered `revoked` by OCSP like any revocation; kept for as long as the issuer
-- publishes CRLs, since the certificate's expiry is not known.
CREATE TABLE revoked_serials (
    issuer_id        TEXT NOT NULL,
    serial           TEXT NOT NULL,
    revoked_at       TIMESTAMP NOT NULL,
    reason           TEXT NOT NULL,
    invalidity_date  TIMESTAMP,
    source           TEXT NOT NULL,
    recorded_at      TIMESTAMP NOT NULL,
    revocation_seq   BIGINT NOT NULL,
    PRIMARY KEY (issuer_id, serial)
);
CREATE INDEX revoked_serials_seq ON revoked_serials (revocation_seq);
