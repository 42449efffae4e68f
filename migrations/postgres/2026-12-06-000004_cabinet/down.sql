DROP TABLE cabinet_sessions;
DROP TABLE cabinet_challenges;
DROP INDEX applications_replaces;
ALTER TABLE applications DROP COLUMN replaces_application_id;
