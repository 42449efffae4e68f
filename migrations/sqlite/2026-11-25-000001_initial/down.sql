DROP TABLE audit_log;
DROP TABLE outbox;
DROP TABLE crls;
DROP TABLE used_consent_tokens;
DROP TABLE blocked_keys;
DROP TABLE certificates;
DROP TABLE applications;
