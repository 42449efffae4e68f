-- The citizen's pages: a session opened by Digital ID's hand-over (POST /enroll) holds the
-- consent token until the application is submitted through it. Only the SHA-256 of the
-- cookie is kept; the token itself is needed to submit and goes with the row when it is
-- pruned after expires_at (the token's exp).
CREATE TABLE enrollment_sessions (
    cookie_sha256   BYTEA PRIMARY KEY NOT NULL,
    csrf_token      TEXT NOT NULL,
    consent_token   TEXT NOT NULL,
    consent_jti     TEXT NOT NULL,
    holder_iin      TEXT NOT NULL,
    created_at      TIMESTAMP NOT NULL,
    expires_at      TIMESTAMP NOT NULL,
    application_id  TEXT REFERENCES applications (id)
);
CREATE INDEX enrollment_sessions_expiry ON enrollment_sessions (expires_at);
