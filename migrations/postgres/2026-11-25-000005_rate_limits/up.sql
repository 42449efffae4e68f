-- Per-IIN rate limits ([limits] applications_per_iin_per_day, revocations_per_iin_per_day):
-- one row per counted action (an application stored, a holder's revocation), written in the
-- transaction of that action, so every instance on this database counts the same rows.
-- Rows older than the 24-hour window are pruned.
CREATE TABLE rate_limit_events (
    id       TEXT PRIMARY KEY NOT NULL,
    scope    TEXT NOT NULL,
    subject  TEXT NOT NULL,
    at       TIMESTAMP NOT NULL
);
CREATE INDEX rate_limit_events_subject ON rate_limit_events (scope, subject, at);
CREATE INDEX rate_limit_events_at ON rate_limit_events (at);
