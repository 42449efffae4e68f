-- Why an application waits for an operator (Digital ID's liveness or register check not
-- passed, a name word that mixes scripts): a JSON array of sentences, shown by
-- `tamga applications list/show`. NULL for applications stored before it was recorded.
ALTER TABLE applications ADD COLUMN review_reasons TEXT;
