-- Holding every level to account (issue #11): how a call came in (source, entered_by,
-- external_ref), own findings (raised_level), identity hidden from the compound, transfers,
-- urges, the decline review (status decline_review with the reviewing level's decide_due_at),
-- extension requests, and each level's decision clock in the SLA policies (decide_minutes,
-- default one working day). The closed-set checks of migration 000007 widen to the new values.

ALTER TABLE tickets ADD COLUMN source TEXT NOT NULL DEFAULT 'app';
-- No REFERENCES on SQLite: a column added with one cannot be dropped again by the down migration.
ALTER TABLE tickets ADD COLUMN entered_by BIGINT;
ALTER TABLE tickets ADD COLUMN external_ref TEXT;
ALTER TABLE tickets ADD COLUMN raised_level TEXT;
ALTER TABLE tickets ADD COLUMN identity_hidden BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE tickets ADD COLUMN transfer_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tickets ADD COLUMN urge_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tickets ADD COLUMN urged_by_community_at TIMESTAMP;
ALTER TABLE tickets ADD COLUMN urged_by_street_at TIMESTAMP;
ALTER TABLE tickets ADD COLUMN decide_due_at TIMESTAMP;
ALTER TABLE tickets ADD COLUMN extension_due_at TIMESTAMP;
ALTER TABLE tickets ADD COLUMN extension_reason TEXT;
ALTER TABLE tickets ADD COLUMN extension_requested_at TIMESTAMP;
ALTER TABLE tickets ADD COLUMN extension_lapsed BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE tickets ADD COLUMN extensions_granted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sla_policies ADD COLUMN decide_minutes BIGINT NOT NULL DEFAULT 420;
DROP TRIGGER tickets_status_check_insert;
CREATE TRIGGER tickets_status_check_insert BEFORE INSERT ON tickets
WHEN NEW.status NOT IN ('open', 'acknowledged', 'resolved', 'closed', 'declined', 'decline_review', 'withdrawn')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: tickets.status'); END;
DROP TRIGGER tickets_status_check_update;
CREATE TRIGGER tickets_status_check_update BEFORE UPDATE OF status ON tickets
WHEN NEW.status NOT IN ('open', 'acknowledged', 'resolved', 'closed', 'declined', 'decline_review', 'withdrawn')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: tickets.status'); END;
DROP TRIGGER tickets_closed_by_check_insert;
CREATE TRIGGER tickets_closed_by_check_insert BEFORE INSERT ON tickets
WHEN NEW.closed_by IS NOT NULL AND NEW.closed_by NOT IN ('resident', 'system', 'raising_level')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: tickets.closed_by'); END;
DROP TRIGGER tickets_closed_by_check_update;
CREATE TRIGGER tickets_closed_by_check_update BEFORE UPDATE OF closed_by ON tickets
WHEN NEW.closed_by IS NOT NULL AND NEW.closed_by NOT IN ('resident', 'system', 'raising_level')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: tickets.closed_by'); END;
CREATE TRIGGER tickets_source_check_insert BEFORE INSERT ON tickets
WHEN NEW.source NOT IN ('app', 'phone', 'desk', 'visit', 'hotline', 'own_finding')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: tickets.source'); END;
CREATE TRIGGER tickets_source_check_update BEFORE UPDATE OF source ON tickets
WHEN NEW.source NOT IN ('app', 'phone', 'desk', 'visit', 'hotline', 'own_finding')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: tickets.source'); END;
CREATE TRIGGER tickets_raised_level_check_insert BEFORE INSERT ON tickets
WHEN NEW.raised_level IS NOT NULL AND NEW.raised_level NOT IN ('compound', 'community', 'street')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: tickets.raised_level'); END;
CREATE TRIGGER tickets_raised_level_check_update BEFORE UPDATE OF raised_level ON tickets
WHEN NEW.raised_level IS NOT NULL AND NEW.raised_level NOT IN ('compound', 'community', 'street')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: tickets.raised_level'); END;
DROP TRIGGER ticket_events_action_check_insert;
CREATE TRIGGER ticket_events_action_check_insert BEFORE INSERT ON ticket_events
WHEN NEW.action NOT IN ('create', 'acknowledge', 'comment', 'assign', 'resolve', 'escalate', 'decline', 'return', 'confirm', 'dispute', 'withdraw', 'reveal_phone', 'wait_on_resident', 'clock_resumed', 'sla_warning', 'overdue', 'auto_close', 'transfer', 'urge', 'take_over', 'request_extension', 'approve_extension', 'reject_extension', 'uphold_decline', 'overturn_decline', 'extension_unanswered')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: ticket_events.action'); END;
DROP TRIGGER ticket_events_action_check_update;
CREATE TRIGGER ticket_events_action_check_update BEFORE UPDATE OF action ON ticket_events
WHEN NEW.action NOT IN ('create', 'acknowledge', 'comment', 'assign', 'resolve', 'escalate', 'decline', 'return', 'confirm', 'dispute', 'withdraw', 'reveal_phone', 'wait_on_resident', 'clock_resumed', 'sla_warning', 'overdue', 'auto_close', 'transfer', 'urge', 'take_over', 'request_extension', 'approve_extension', 'reject_extension', 'uphold_decline', 'overturn_decline', 'extension_unanswered')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: ticket_events.action'); END;
DROP TRIGGER ticket_events_status_before_check_insert;
CREATE TRIGGER ticket_events_status_before_check_insert BEFORE INSERT ON ticket_events
WHEN NEW.status_before IS NOT NULL AND NEW.status_before NOT IN ('open', 'acknowledged', 'resolved', 'closed', 'declined', 'decline_review', 'withdrawn')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: ticket_events.status_before'); END;
DROP TRIGGER ticket_events_status_before_check_update;
CREATE TRIGGER ticket_events_status_before_check_update BEFORE UPDATE OF status_before ON ticket_events
WHEN NEW.status_before IS NOT NULL AND NEW.status_before NOT IN ('open', 'acknowledged', 'resolved', 'closed', 'declined', 'decline_review', 'withdrawn')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: ticket_events.status_before'); END;
DROP TRIGGER ticket_events_status_after_check_insert;
CREATE TRIGGER ticket_events_status_after_check_insert BEFORE INSERT ON ticket_events
WHEN NEW.status_after NOT IN ('open', 'acknowledged', 'resolved', 'closed', 'declined', 'decline_review', 'withdrawn')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: ticket_events.status_after'); END;
DROP TRIGGER ticket_events_status_after_check_update;
CREATE TRIGGER ticket_events_status_after_check_update BEFORE UPDATE OF status_after ON ticket_events
WHEN NEW.status_after NOT IN ('open', 'acknowledged', 'resolved', 'closed', 'declined', 'decline_review', 'withdrawn')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: ticket_events.status_after'); END;
DROP TRIGGER ticket_stats_status_check_insert;
CREATE TRIGGER ticket_stats_status_check_insert BEFORE INSERT ON ticket_stats
WHEN NEW.status NOT IN ('open', 'acknowledged', 'resolved', 'closed', 'declined', 'decline_review', 'withdrawn')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: ticket_stats.status'); END;
DROP TRIGGER ticket_stats_status_check_update;
CREATE TRIGGER ticket_stats_status_check_update BEFORE UPDATE OF status ON ticket_stats
WHEN NEW.status NOT IN ('open', 'acknowledged', 'resolved', 'closed', 'declined', 'decline_review', 'withdrawn')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: ticket_stats.status'); END;
CREATE INDEX tickets_source ON tickets (street_id, source, created_at);
CREATE INDEX tickets_decide_due ON tickets (decide_due_at) WHERE decide_due_at IS NOT NULL;
