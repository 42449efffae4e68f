-- Issuing a certificate writes its DER beside its TBS; the two pass PostgreSQL's 2 kB TOAST
-- threshold together, and every such update tried to compress both (DER does not compress)
-- and then moved them to the TOAST table: a second heap write and index entry for each
-- certificate. A certificate row stays far below a page: keep it inline.
ALTER TABLE certificates SET (toast_tuple_target = 8160);
-- (issuer_id, status) is a prefix of certificates_revoked_by_serial (issuer_id, status,
-- serial), which serves every query it served: one index less to write on every insert and
-- status change.
DROP INDEX certificates_issuer_status;
