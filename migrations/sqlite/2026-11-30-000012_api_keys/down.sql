DELETE FROM audit_log WHERE action IN ('api_key_issue', 'api_key_revoke');
DROP TRIGGER audit_log_action_check_insert;
DROP TRIGGER audit_log_action_check_update;
CREATE TRIGGER audit_log_action_check_insert BEFORE INSERT ON audit_log
WHEN NEW.action NOT IN ('reveal_phone', 'stats_export', 'personal_data_export', 'erasure', 'retention_erasure')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: audit_log.action'); END;
CREATE TRIGGER audit_log_action_check_update BEFORE UPDATE OF action ON audit_log
WHEN NEW.action NOT IN ('reveal_phone', 'stats_export', 'personal_data_export', 'erasure', 'retention_erasure')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: audit_log.action'); END;
DROP TABLE open311_requests;
DROP TABLE api_keys;
