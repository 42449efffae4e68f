CREATE INDEX certificates_issuer_status ON certificates (issuer_id, status);
