-- Who saw or took personal data, and who erased it (个人信息保护法): every reveal of a
-- resident's phone, every export of statistics or tickets, every export and erasure of a
-- resident's own data. Rows are only ever added; admins read them (GET /api/v1/admin/audit-log).
-- Rows name people by id only, so an erased resident stays erased here too.
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TIMESTAMP NOT NULL,
    -- NULL for the system (retention).
    actor_id BIGINT REFERENCES users (id),
    actor_role TEXT NOT NULL,
    action TEXT NOT NULL,
    -- The resident whose data it was, when one is concerned.
    subject_user_id BIGINT REFERENCES users (id),
    ticket_id BIGINT REFERENCES tickets (id),
    -- What was taken, e.g. the export's path and filters; never a phone number or a name.
    detail TEXT
);
CREATE INDEX audit_log_subject ON audit_log (subject_user_id, id);

-- The closed sets as triggers, the form migration 000007 uses on SQLite.
CREATE TRIGGER audit_log_action_check_insert BEFORE INSERT ON audit_log
WHEN NEW.action NOT IN ('reveal_phone', 'stats_export', 'personal_data_export', 'erasure', 'retention_erasure')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: audit_log.action'); END;
CREATE TRIGGER audit_log_action_check_update BEFORE UPDATE OF action ON audit_log
WHEN NEW.action NOT IN ('reveal_phone', 'stats_export', 'personal_data_export', 'erasure', 'retention_erasure')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: audit_log.action'); END;
CREATE TRIGGER audit_log_actor_role_check_insert BEFORE INSERT ON audit_log
WHEN NEW.actor_role NOT IN ('resident', 'compound_staff', 'community_staff', 'street_staff', 'admin', 'system')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: audit_log.actor_role'); END;
CREATE TRIGGER audit_log_actor_role_check_update BEFORE UPDATE OF actor_role ON audit_log
WHEN NEW.actor_role NOT IN ('resident', 'compound_staff', 'community_staff', 'street_staff', 'admin', 'system')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: audit_log.actor_role'); END;
