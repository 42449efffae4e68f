DROP INDEX applications_consent_jti;
