ALTER TABLE applications DROP COLUMN through_pages;
DROP TABLE enrollment_sessions;
