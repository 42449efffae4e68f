ALTER TABLE certificates DROP COLUMN held_at;
