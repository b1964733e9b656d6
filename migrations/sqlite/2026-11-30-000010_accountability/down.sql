DROP INDEX tickets_decide_due;
DROP INDEX tickets_source;
DROP TRIGGER tickets_status_check_insert;
CREATE TRIGGER tickets_status_check_insert BEFORE INSERT ON tickets
WHEN NEW.status NOT IN ('open', 'acknowledged', 'resolved', 'closed', 'declined', 'withdrawn')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: tickets.status'); END;
DROP TRIGGER tickets_status_check_update;
CREATE TRIGGER tickets_status_check_update BEFORE UPDATE OF status ON tickets
WHEN NEW.status NOT IN ('open', 'acknowledged', 'resolved', 'closed', 'declined', 'withdrawn')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: tickets.status'); END;
DROP TRIGGER tickets_closed_by_check_insert;
CREATE TRIGGER tickets_closed_by_check_insert BEFORE INSERT ON tickets
WHEN NEW.closed_by IS NOT NULL AND NEW.closed_by NOT IN ('resident', 'system')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: tickets.closed_by'); END;
DROP TRIGGER tickets_closed_by_check_update;
CREATE TRIGGER tickets_closed_by_check_update BEFORE UPDATE OF closed_by ON tickets
WHEN NEW.closed_by IS NOT NULL AND NEW.closed_by NOT IN ('resident', 'system')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: tickets.closed_by'); END;
DROP TRIGGER tickets_source_check_insert;
DROP TRIGGER tickets_source_check_update;
DROP TRIGGER tickets_raised_level_check_insert;
DROP TRIGGER tickets_raised_level_check_update;
DROP TRIGGER ticket_events_action_check_insert;
CREATE TRIGGER ticket_events_action_check_insert BEFORE INSERT ON ticket_events
WHEN NEW.action NOT IN ('create', 'acknowledge', 'comment', 'assign', 'resolve', 'escalate', 'decline', 'return', 'confirm', 'dispute', 'withdraw', 'reveal_phone', 'wait_on_resident', 'clock_resumed', 'sla_warning', 'overdue', 'auto_close')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: ticket_events.action'); END;
DROP TRIGGER ticket_events_action_check_update;
CREATE TRIGGER ticket_events_action_check_update BEFORE UPDATE OF action ON ticket_events
WHEN NEW.action NOT IN ('create', 'acknowledge', 'comment', 'assign', 'resolve', 'escalate', 'decline', 'return', 'confirm', 'dispute', 'withdraw', 'reveal_phone', 'wait_on_resident', 'clock_resumed', 'sla_warning', 'overdue', 'auto_close')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: ticket_events.action'); END;
DROP TRIGGER ticket_events_status_before_check_insert;
CREATE TRIGGER ticket_events_status_before_check_insert BEFORE INSERT ON ticket_events
WHEN NEW.status_before IS NOT NULL AND NEW.status_before NOT IN ('open', 'acknowledged', 'resolved', 'closed', 'declined', 'withdrawn')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: ticket_events.status_before'); END;
DROP TRIGGER ticket_events_status_before_check_update;
CREATE TRIGGER ticket_events_status_before_check_update BEFORE UPDATE OF status_before ON ticket_events
WHEN NEW.status_before IS NOT NULL AND NEW.status_before NOT IN ('open', 'acknowledged', 'resolved', 'closed', 'declined', 'withdrawn')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: ticket_events.status_before'); END;
DROP TRIGGER ticket_events_status_after_check_insert;
CREATE TRIGGER ticket_events_status_after_check_insert BEFORE INSERT ON ticket_events
WHEN NEW.status_after NOT IN ('open', 'acknowledged', 'resolved', 'closed', 'declined', 'withdrawn')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: ticket_events.status_after'); END;
DROP TRIGGER ticket_events_status_after_check_update;
CREATE TRIGGER ticket_events_status_after_check_update BEFORE UPDATE OF status_after ON ticket_events
WHEN NEW.status_after NOT IN ('open', 'acknowledged', 'resolved', 'closed', 'declined', 'withdrawn')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: ticket_events.status_after'); END;
DROP TRIGGER ticket_stats_status_check_insert;
CREATE TRIGGER ticket_stats_status_check_insert BEFORE INSERT ON ticket_stats
WHEN NEW.status NOT IN ('open', 'acknowledged', 'resolved', 'closed', 'declined', 'withdrawn')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: ticket_stats.status'); END;
DROP TRIGGER ticket_stats_status_check_update;
CREATE TRIGGER ticket_stats_status_check_update BEFORE UPDATE OF status ON ticket_stats
WHEN NEW.status NOT IN ('open', 'acknowledged', 'resolved', 'closed', 'declined', 'withdrawn')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: ticket_stats.status'); END;
ALTER TABLE tickets DROP COLUMN extensions_granted;
ALTER TABLE tickets DROP COLUMN extension_lapsed;
ALTER TABLE tickets DROP COLUMN extension_requested_at;
ALTER TABLE tickets DROP COLUMN extension_reason;
ALTER TABLE tickets DROP COLUMN extension_due_at;
ALTER TABLE tickets DROP COLUMN decide_due_at;
ALTER TABLE tickets DROP COLUMN urged_by_street_at;
ALTER TABLE tickets DROP COLUMN urged_by_community_at;
ALTER TABLE tickets DROP COLUMN urge_count;
ALTER TABLE tickets DROP COLUMN transfer_count;
ALTER TABLE tickets DROP COLUMN identity_hidden;
ALTER TABLE tickets DROP COLUMN raised_level;
ALTER TABLE tickets DROP COLUMN external_ref;
ALTER TABLE tickets DROP COLUMN entered_by;
ALTER TABLE tickets DROP COLUMN source;
ALTER TABLE sla_policies DROP COLUMN decide_minutes;
