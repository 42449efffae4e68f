DROP TABLE counters;
DROP INDEX certificates_revocation_seq;
DROP INDEX certificates_revoked_by_serial;
ALTER TABLE crls DROP COLUMN covered_seq;
ALTER TABLE certificates DROP COLUMN revocation_seq;
