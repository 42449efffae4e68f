DROP TABLE revoked_serials;
