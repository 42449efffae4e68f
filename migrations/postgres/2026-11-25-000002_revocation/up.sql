-- Revocation bookkeeping: every revocation or release takes the next value of one counter
-- (in commit order, because the counter row stays locked until the transaction commits), and
-- each CRL records the highest value it covers. A delta CRL lists what changed after its base.
ALTER TABLE certificates ADD COLUMN revocation_seq BIGINT;
CREATE INDEX certificates_revoked_by_serial ON certificates (issuer_id, status, serial);
CREATE INDEX certificates_revocation_seq ON certificates (issuer_id, revocation_seq);
ALTER TABLE crls ADD COLUMN covered_seq BIGINT NOT NULL DEFAULT 0;
CREATE TABLE counters (
    name   TEXT PRIMARY KEY NOT NULL,
    value  BIGINT NOT NULL
);
INSERT INTO counters (name, value) VALUES ('revocation', 0);
