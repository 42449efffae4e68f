-- A portal that lost the answer to an application repeats the request with the same consent
-- token; the application is then found by the token's jti.
CREATE INDEX applications_consent_jti ON applications (consent_jti);
