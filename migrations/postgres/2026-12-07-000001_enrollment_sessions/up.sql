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
    expires_at      TIMESTAMP NOT NULL
);
CREATE INDEX enrollment_sessions_expiry ON enrollment_sessions (expires_at);
-- A token handed over again replaces its earlier session (found by the token's jti); the
-- application a session's token created is found by that jti too.
CREATE INDEX enrollment_sessions_jti ON enrollment_sessions (consent_jti);
-- Applications submitted through the pages are finished there, with the keys the local agent
-- holds: the e-mail of one an operator approved links to the page that resumes it.
ALTER TABLE applications ADD COLUMN through_pages BOOLEAN NOT NULL DEFAULT FALSE;
