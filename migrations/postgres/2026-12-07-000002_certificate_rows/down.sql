CREATE INDEX certificates_issuer_status ON certificates (issuer_id, status);
ALTER TABLE certificates RESET (toast_tuple_target);
