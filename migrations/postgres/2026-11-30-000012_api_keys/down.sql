DELETE FROM audit_log WHERE action IN ('api_key_issue', 'api_key_revoke');
ALTER TABLE audit_log DROP CONSTRAINT audit_log_action_check;
ALTER TABLE audit_log ADD CONSTRAINT audit_log_action_check CHECK (action IN ('reveal_phone', 'stats_export', 'personal_data_export', 'erasure', 'retention_erasure'));
DROP TABLE open311_requests;
DROP TABLE api_keys;
