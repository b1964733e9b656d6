DROP INDEX ticket_events_urges;
DROP TABLE ledger_daily;
DROP TABLE ledger_entries;
DROP TABLE callback_attempts;
DROP TABLE callbacks;
DROP INDEX ticket_stats_street;
DROP INDEX ticket_stats_community;
DROP INDEX ticket_stats_created;
DROP TRIGGER ticket_stats_closed_by_check_insert;
DROP TRIGGER ticket_stats_closed_by_check_update;
ALTER TABLE ticket_stats DROP COLUMN closed_by;
CREATE INDEX ticket_stats_street ON ticket_stats (street_id, created_at, status, level, went_up,
    rating, response, response_due, resolution, resolution_due, first_answer_secs, settle_secs,
    community_id, compound_id, category_id);
CREATE INDEX ticket_stats_community ON ticket_stats (community_id, created_at, status, level,
    went_up, rating, response, response_due, resolution, resolution_due, first_answer_secs,
    settle_secs, compound_id, category_id);
CREATE INDEX ticket_stats_created ON ticket_stats (created_at, status, level, went_up, rating,
    response, response_due, resolution, resolution_due, first_answer_secs, settle_secs,
    community_id, compound_id, category_id);
DROP TRIGGER org_units_callback_level_check_insert;
DROP TRIGGER org_units_callback_level_check_update;
ALTER TABLE org_units DROP COLUMN callback_level;
DELETE FROM ticket_events WHERE action IN ('callback', 'callback_reopen');
DROP TRIGGER ticket_events_action_check_insert;
DROP TRIGGER ticket_events_action_check_update;
CREATE TRIGGER ticket_events_action_check_insert BEFORE INSERT ON ticket_events
WHEN NEW.action NOT IN ('create', 'acknowledge', 'comment', 'assign', 'resolve', 'escalate', 'decline', 'return', 'confirm', 'dispute', 'withdraw', 'reveal_phone', 'wait_on_resident', 'clock_resumed', 'sla_warning', 'overdue', 'auto_close', 'transfer', 'urge', 'take_over', 'request_extension', 'approve_extension', 'reject_extension', 'uphold_decline', 'overturn_decline', 'extension_unanswered')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: ticket_events.action'); END;
CREATE TRIGGER ticket_events_action_check_update BEFORE UPDATE OF action ON ticket_events
WHEN NEW.action NOT IN ('create', 'acknowledge', 'comment', 'assign', 'resolve', 'escalate', 'decline', 'return', 'confirm', 'dispute', 'withdraw', 'reveal_phone', 'wait_on_resident', 'clock_resumed', 'sla_warning', 'overdue', 'auto_close', 'transfer', 'urge', 'take_over', 'request_extension', 'approve_extension', 'reject_extension', 'uphold_decline', 'overturn_decline', 'extension_unanswered')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: ticket_events.action'); END;
DROP TRIGGER tickets_closed_by_check_insert;
DROP TRIGGER tickets_closed_by_check_update;
UPDATE tickets SET closed_by = 'system' WHERE closed_by IN ('auto', 'callback');
UPDATE tickets SET closed_by = 'resident' WHERE closed_by = 'withdrawn';
UPDATE tickets SET closed_by = NULL WHERE closed_by = 'declined';
CREATE TRIGGER tickets_closed_by_check_insert BEFORE INSERT ON tickets
WHEN NEW.closed_by IS NOT NULL AND NEW.closed_by NOT IN ('resident', 'system', 'raising_level')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: tickets.closed_by'); END;
CREATE TRIGGER tickets_closed_by_check_update BEFORE UPDATE OF closed_by ON tickets
WHEN NEW.closed_by IS NOT NULL AND NEW.closed_by NOT IN ('resident', 'system', 'raising_level')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: tickets.closed_by'); END;
