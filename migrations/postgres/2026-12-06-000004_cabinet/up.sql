-- The holder's cabinet. A re-issue is an application that replaces an earlier one's pair: at
-- most one application ever replaces a given one (unique), so one lineage never has two pairs.
ALTER TABLE applications ADD COLUMN replaces_application_id TEXT REFERENCES applications (id);
CREATE UNIQUE INDEX applications_replaces ON applications (replaces_application_id);

-- Login challenges: only the SHA-256 of the challenge is kept; one use, before expires_at.
CREATE TABLE cabinet_challenges (
    challenge_sha256  BYTEA PRIMARY KEY NOT NULL,
    created_at        TIMESTAMP NOT NULL,
    expires_at        TIMESTAMP NOT NULL,
    used_at           TIMESTAMP
);
CREATE INDEX cabinet_challenges_expiry ON cabinet_challenges (expires_at);

-- Sessions opened by signing a challenge with an AUTH key: only the token's SHA-256 is kept.
CREATE TABLE cabinet_sessions (
    token_sha256    BYTEA PRIMARY KEY NOT NULL,
    application_id  TEXT NOT NULL REFERENCES applications (id),
    auth_serial     TEXT NOT NULL,
    holder_iin      TEXT NOT NULL,
    created_at      TIMESTAMP NOT NULL,
    expires_at      TIMESTAMP NOT NULL
);
CREATE INDEX cabinet_sessions_expiry ON cabinet_sessions (expires_at);
