DROP TABLE upload_attempts;
DROP TABLE otp_sends;
ALTER TABLE users DROP COLUMN locked_until;
ALTER TABLE users DROP COLUMN lockouts;
ALTER TABLE users DROP COLUMN failed_logins;
ALTER TABLE users DROP COLUMN token_generation;
