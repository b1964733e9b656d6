-- Sessions and abuse limits (issue #13).
-- token_generation is copied into every access token and compared on every request: bumping it
-- (logout, password change, disabling) stops the user's access tokens at once.
-- failed_logins / lockouts / locked_until: the password lockout, kept here so that it holds
-- across every instance sharing this database.
ALTER TABLE users ADD COLUMN token_generation BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN failed_logins INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN lockouts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN locked_until TIMESTAMP;

-- One row per sign-in code sent: the per-phone and the global SMS limits count these. The phone
-- is stored only as a keyed hash; rows older than a day are deleted as new ones arrive.
CREATE TABLE otp_sends (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    phone_hash TEXT NOT NULL,
    sent_at TIMESTAMP NOT NULL
);
CREATE INDEX otp_sends_phone ON otp_sends (phone_hash, sent_at);
CREATE INDEX otp_sends_sent_at ON otp_sends (sent_at);

-- One row per photo upload attempt (accepted or not): the per-ticket upload limit counts these.
CREATE TABLE upload_attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id BIGINT NOT NULL REFERENCES tickets (id),
    attempted_at TIMESTAMP NOT NULL
);
CREATE INDEX upload_attempts_ticket ON upload_attempts (ticket_id, attempted_at);
