-- Open311 GeoReport v2 intake for partner systems (issue #15, point 1; docs/open311.md).
-- One row per key an admin issued to a partner system (the 12345 platform, a mini program).
-- The key itself is never stored: only its SHA-256 (key_hash) and its first characters
-- (key_prefix), so an admin can tell keys apart in the list.
CREATE TABLE api_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    partner TEXT NOT NULL,
    -- The source the partner's tickets get: hotline or app.
    source TEXT NOT NULL,
    key_prefix TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    rate_limit_per_minute INTEGER NOT NULL,
    created_by BIGINT REFERENCES users (id),
    created_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP
);

-- The closed set as triggers, the form migration 000007 uses on SQLite.
CREATE TRIGGER api_keys_source_check_insert BEFORE INSERT ON api_keys
WHEN NEW.source NOT IN ('hotline', 'app')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: api_keys.source'); END;
CREATE TRIGGER api_keys_source_check_update BEFORE UPDATE OF source ON api_keys
WHEN NEW.source NOT IN ('hotline', 'app')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: api_keys.source'); END;

-- Which key brought a ticket in: a partner reads back only the requests its own keys posted.
-- media_url and address_id are kept as the partner sent them (nothing is fetched).
CREATE TABLE open311_requests (
    ticket_id BIGINT PRIMARY KEY REFERENCES tickets (id),
    api_key_id BIGINT NOT NULL REFERENCES api_keys (id),
    media_url TEXT,
    address_id TEXT,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX open311_requests_key ON open311_requests (api_key_id, ticket_id);

-- Issuing and revoking a key are audited: the audit log's closed set of actions widens.
DROP TRIGGER audit_log_action_check_insert;
DROP TRIGGER audit_log_action_check_update;
CREATE TRIGGER audit_log_action_check_insert BEFORE INSERT ON audit_log
WHEN NEW.action NOT IN ('reveal_phone', 'stats_export', 'personal_data_export', 'erasure', 'retention_erasure', 'api_key_issue', 'api_key_revoke')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: audit_log.action'); END;
CREATE TRIGGER audit_log_action_check_update BEFORE UPDATE OF action ON audit_log
WHEN NEW.action NOT IN ('reveal_phone', 'stats_export', 'personal_data_export', 'erasure', 'retention_erasure', 'api_key_issue', 'api_key_revoke')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: audit_log.action'); END;
