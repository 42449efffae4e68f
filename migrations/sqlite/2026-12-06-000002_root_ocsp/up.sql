-- OCSP responses for the root's CA certificates (the issuing CA), signed offline by the root
-- (`tamga ca root-ocsp`) and imported (`tamga ocsp import`): one per certificate serial and
-- CertID hash algorithm, replaced by newer ones.
CREATE TABLE root_ocsp_responses (
    serial       TEXT NOT NULL,
    hash_alg     TEXT NOT NULL,
    status       TEXT NOT NULL,
    this_update  TIMESTAMP NOT NULL,
    next_update  TIMESTAMP NOT NULL,
    der          BLOB NOT NULL,
    imported_at  TIMESTAMP NOT NULL,
    PRIMARY KEY (serial, hash_alg)
);
