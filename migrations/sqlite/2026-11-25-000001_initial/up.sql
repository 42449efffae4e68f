-- First schema. Timestamps are UTC. Keep in step with migrations/postgres.

CREATE TABLE applications (
    id                 TEXT PRIMARY KEY NOT NULL,
    status             TEXT NOT NULL,
    holder_iin         TEXT NOT NULL,
    surname            TEXT NOT NULL,
    given_name         TEXT NOT NULL,
    patronymic         TEXT,
    birth_date         DATE NOT NULL,
    email              TEXT,
    language           TEXT NOT NULL,
    storage            TEXT NOT NULL,
    agreement_version  TEXT NOT NULL,
    access_token_hash  BLOB NOT NULL,
    consent_jti        TEXT NOT NULL,
    register_match     BOOLEAN NOT NULL,
    liveness           BOOLEAN NOT NULL,
    auth_csr           BLOB NOT NULL,
    sign_csr           BLOB NOT NULL,
    reason             TEXT,
    decided_by         TEXT,
    created_at         TIMESTAMP NOT NULL,
    updated_at         TIMESTAMP NOT NULL
);
CREATE INDEX applications_status ON applications (status, created_at);
CREATE INDEX applications_holder ON applications (holder_iin);

CREATE TABLE certificates (
    serial             TEXT PRIMARY KEY NOT NULL,
    issuer_id          TEXT NOT NULL,
    application_id     TEXT REFERENCES applications (id),
    kind               TEXT NOT NULL,
    holder_iin         TEXT NOT NULL,
    not_before         TIMESTAMP NOT NULL,
    not_after          TIMESTAMP NOT NULL,
    tbs_der            BLOB NOT NULL,
    der                BLOB,
    spki_sha256        TEXT NOT NULL UNIQUE,
    status             TEXT NOT NULL,
    revoked_at         TIMESTAMP,
    revocation_reason  TEXT,
    invalidity_date    TIMESTAMP,
    created_at         TIMESTAMP NOT NULL,
    issued_at          TIMESTAMP
);
CREATE INDEX certificates_holder ON certificates (holder_iin);
CREATE INDEX certificates_application ON certificates (application_id);
CREATE INDEX certificates_issuer_status ON certificates (issuer_id, status);

CREATE TABLE blocked_keys (
    spki_sha256  TEXT PRIMARY KEY NOT NULL,
    reason       TEXT NOT NULL,
    serial       TEXT,
    created_at   TIMESTAMP NOT NULL
);

CREATE TABLE used_consent_tokens (
    jti         TEXT PRIMARY KEY NOT NULL,
    expires_at  TIMESTAMP NOT NULL,
    used_at     TIMESTAMP NOT NULL
);
CREATE INDEX used_consent_tokens_expiry ON used_consent_tokens (expires_at);

CREATE TABLE crls (
    issuer_id        TEXT NOT NULL,
    crl_number       BIGINT NOT NULL,
    is_delta         BOOLEAN NOT NULL,
    base_crl_number  BIGINT,
    this_update      TIMESTAMP NOT NULL,
    next_update      TIMESTAMP NOT NULL,
    der              BLOB NOT NULL,
    created_at       TIMESTAMP NOT NULL,
    PRIMARY KEY (issuer_id, crl_number)
);

CREATE TABLE outbox (
    id               TEXT PRIMARY KEY NOT NULL,
    event            TEXT NOT NULL,
    recipient        TEXT NOT NULL,
    language         TEXT NOT NULL,
    payload          TEXT NOT NULL,
    status           TEXT NOT NULL,
    attempts         INTEGER NOT NULL,
    next_attempt_at  TIMESTAMP NOT NULL,
    lease_owner      TEXT,
    lease_until      TIMESTAMP,
    last_error       TEXT,
    created_at       TIMESTAMP NOT NULL,
    sent_at          TIMESTAMP
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);

CREATE TABLE audit_log (
    seq        BIGINT PRIMARY KEY NOT NULL,
    at         TIMESTAMP NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    subject    TEXT NOT NULL,
    details    TEXT NOT NULL,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL
);
