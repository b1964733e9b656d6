DROP INDEX ticket_events_urges;
DROP TABLE ledger_daily;
DROP TABLE ledger_entries;
DROP TABLE callback_attempts;
DROP TABLE callbacks;
DROP INDEX ticket_stats_street;
DROP INDEX ticket_stats_community;
DROP INDEX ticket_stats_created;
ALTER TABLE ticket_stats DROP COLUMN closed_by;
CREATE INDEX ticket_stats_street ON ticket_stats (street_id, created_at) INCLUDE (status, level,
    went_up, rating, response, response_due, resolution, resolution_due, first_answer_secs,
    settle_secs, community_id, compound_id, category_id);
CREATE INDEX ticket_stats_community ON ticket_stats (community_id, created_at) INCLUDE (status,
    level, went_up, rating, response, response_due, resolution, resolution_due, first_answer_secs,
    settle_secs, compound_id, category_id);
CREATE INDEX ticket_stats_created ON ticket_stats (created_at) INCLUDE (status, level, went_up,
    rating, response, response_due, resolution, resolution_due, first_answer_secs, settle_secs,
    community_id, compound_id, category_id);
ALTER TABLE org_units DROP COLUMN callback_level;
DELETE FROM ticket_events WHERE action IN ('callback', 'callback_reopen');
ALTER TABLE ticket_events DROP CONSTRAINT ticket_events_action_check;
ALTER TABLE ticket_events ADD CONSTRAINT ticket_events_action_check CHECK (action IN ('create', 'acknowledge', 'comment', 'assign', 'resolve', 'escalate', 'decline', 'return', 'confirm', 'dispute', 'withdraw', 'reveal_phone', 'wait_on_resident', 'clock_resumed', 'sla_warning', 'overdue', 'auto_close', 'transfer', 'urge', 'take_over', 'request_extension', 'approve_extension', 'reject_extension', 'uphold_decline', 'overturn_decline', 'extension_unanswered'));
ALTER TABLE tickets DROP CONSTRAINT tickets_closed_by_check;
UPDATE tickets SET closed_by = 'system' WHERE closed_by IN ('auto', 'callback');
UPDATE tickets SET closed_by = 'resident' WHERE closed_by = 'withdrawn';
UPDATE tickets SET closed_by = NULL WHERE closed_by = 'declined';
ALTER TABLE tickets ADD CONSTRAINT tickets_closed_by_check CHECK (closed_by IN ('resident', 'system', 'raising_level'));
