-- Which expiry reminders (30, 14, 7 days before notAfter) were queued for which certificate:
-- each threshold is sent once.
CREATE TABLE expiry_notices (
    serial          TEXT NOT NULL REFERENCES certificates (serial),
    threshold_days  INTEGER NOT NULL,
    queued_at       TIMESTAMP NOT NULL,
    PRIMARY KEY (serial, threshold_days)
);
CREATE INDEX certificates_expiry ON certificates (status, not_after);
