ALTER TABLE applications DROP COLUMN review_reasons;
