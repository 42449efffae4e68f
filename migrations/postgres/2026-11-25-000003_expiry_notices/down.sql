DROP INDEX certificates_expiry;
DROP TABLE expiry_notices;
