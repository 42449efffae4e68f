DROP TABLE enrollment_sessions;
