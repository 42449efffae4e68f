DROP TABLE authority_revocations;
