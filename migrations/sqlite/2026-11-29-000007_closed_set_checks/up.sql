-- Every column that holds one of the domain's closed sets (src/domain: Status, Level, Urgency,
-- ClosedBy, ActorRole, EventKind, Channel, and the outbox states) refuses any other value, so a
-- value the code does not know can never be stored: the code reads such a value as an error,
-- never as a guess. Adding a value to one of these sets means a migration that widens its check.
--
-- SQLite cannot add a CHECK constraint to an existing table, and rebuilding these tables would
-- mean rebuilding every table that references them; the same checks are triggers instead, which
-- abort the statement with SQLite's own "CHECK constraint failed" message.

CREATE TRIGGER tickets_status_check_insert BEFORE INSERT ON tickets
WHEN NEW.status NOT IN ('open', 'acknowledged', 'resolved', 'closed', 'declined', 'withdrawn')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: tickets.status'); END;
CREATE TRIGGER tickets_status_check_update BEFORE UPDATE OF status ON tickets
WHEN NEW.status NOT IN ('open', 'acknowledged', 'resolved', 'closed', 'declined', 'withdrawn')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: tickets.status'); END;
CREATE TRIGGER tickets_level_check_insert BEFORE INSERT ON tickets
WHEN NEW.level NOT IN ('compound', 'community', 'street')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: tickets.level'); END;
CREATE TRIGGER tickets_level_check_update BEFORE UPDATE OF level ON tickets
WHEN NEW.level NOT IN ('compound', 'community', 'street')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: tickets.level'); END;
CREATE TRIGGER tickets_urgency_check_insert BEFORE INSERT ON tickets
WHEN NEW.urgency NOT IN ('normal', 'urgent')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: tickets.urgency'); END;
CREATE TRIGGER tickets_urgency_check_update BEFORE UPDATE OF urgency ON tickets
WHEN NEW.urgency NOT IN ('normal', 'urgent')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: tickets.urgency'); END;
CREATE TRIGGER tickets_closed_by_check_insert BEFORE INSERT ON tickets
WHEN NEW.closed_by IS NOT NULL AND NEW.closed_by NOT IN ('resident', 'system')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: tickets.closed_by'); END;
CREATE TRIGGER tickets_closed_by_check_update BEFORE UPDATE OF closed_by ON tickets
WHEN NEW.closed_by IS NOT NULL AND NEW.closed_by NOT IN ('resident', 'system')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: tickets.closed_by'); END;
CREATE TRIGGER ticket_events_actor_role_check_insert BEFORE INSERT ON ticket_events
WHEN NEW.actor_role NOT IN ('resident', 'compound_staff', 'community_staff', 'street_staff', 'admin', 'system')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: ticket_events.actor_role'); END;
CREATE TRIGGER ticket_events_actor_role_check_update BEFORE UPDATE OF actor_role ON ticket_events
WHEN NEW.actor_role NOT IN ('resident', 'compound_staff', 'community_staff', 'street_staff', 'admin', 'system')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: ticket_events.actor_role'); END;
CREATE TRIGGER ticket_events_action_check_insert BEFORE INSERT ON ticket_events
WHEN NEW.action NOT IN ('create', 'acknowledge', 'comment', 'assign', 'resolve', 'escalate', 'decline', 'return', 'confirm', 'dispute', 'withdraw', 'reveal_phone', 'wait_on_resident', 'clock_resumed', 'sla_warning', 'overdue', 'auto_close')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: ticket_events.action'); END;
CREATE TRIGGER ticket_events_action_check_update BEFORE UPDATE OF action ON ticket_events
WHEN NEW.action NOT IN ('create', 'acknowledge', 'comment', 'assign', 'resolve', 'escalate', 'decline', 'return', 'confirm', 'dispute', 'withdraw', 'reveal_phone', 'wait_on_resident', 'clock_resumed', 'sla_warning', 'overdue', 'auto_close')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: ticket_events.action'); END;
CREATE TRIGGER ticket_events_level_check_insert BEFORE INSERT ON ticket_events
WHEN NEW.level NOT IN ('compound', 'community', 'street')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: ticket_events.level'); END;
CREATE TRIGGER ticket_events_level_check_update BEFORE UPDATE OF level ON ticket_events
WHEN NEW.level NOT IN ('compound', 'community', 'street')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: ticket_events.level'); END;
CREATE TRIGGER ticket_events_status_before_check_insert BEFORE INSERT ON ticket_events
WHEN NEW.status_before IS NOT NULL AND NEW.status_before NOT IN ('open', 'acknowledged', 'resolved', 'closed', 'declined', 'withdrawn')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: ticket_events.status_before'); END;
CREATE TRIGGER ticket_events_status_before_check_update BEFORE UPDATE OF status_before ON ticket_events
WHEN NEW.status_before IS NOT NULL AND NEW.status_before NOT IN ('open', 'acknowledged', 'resolved', 'closed', 'declined', 'withdrawn')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: ticket_events.status_before'); END;
CREATE TRIGGER ticket_events_status_after_check_insert BEFORE INSERT ON ticket_events
WHEN NEW.status_after NOT IN ('open', 'acknowledged', 'resolved', 'closed', 'declined', 'withdrawn')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: ticket_events.status_after'); END;
CREATE TRIGGER ticket_events_status_after_check_update BEFORE UPDATE OF status_after ON ticket_events
WHEN NEW.status_after NOT IN ('open', 'acknowledged', 'resolved', 'closed', 'declined', 'withdrawn')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: ticket_events.status_after'); END;
CREATE TRIGGER ticket_events_level_after_check_insert BEFORE INSERT ON ticket_events
WHEN NEW.level_after NOT IN ('compound', 'community', 'street')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: ticket_events.level_after'); END;
CREATE TRIGGER ticket_events_level_after_check_update BEFORE UPDATE OF level_after ON ticket_events
WHEN NEW.level_after NOT IN ('compound', 'community', 'street')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: ticket_events.level_after'); END;
CREATE TRIGGER notifications_channel_check_insert BEFORE INSERT ON notifications
WHEN NEW.channel NOT IN ('inapp', 'sms', 'email', 'wecom')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: notifications.channel'); END;
CREATE TRIGGER notifications_channel_check_update BEFORE UPDATE OF channel ON notifications
WHEN NEW.channel NOT IN ('inapp', 'sms', 'email', 'wecom')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: notifications.channel'); END;
CREATE TRIGGER notifications_status_check_insert BEFORE INSERT ON notifications
WHEN NEW.status NOT IN ('pending', 'sending', 'sent', 'dead')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: notifications.status'); END;
CREATE TRIGGER notifications_status_check_update BEFORE UPDATE OF status ON notifications
WHEN NEW.status NOT IN ('pending', 'sending', 'sent', 'dead')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: notifications.status'); END;
CREATE TRIGGER ticket_stats_status_check_insert BEFORE INSERT ON ticket_stats
WHEN NEW.status NOT IN ('open', 'acknowledged', 'resolved', 'closed', 'declined', 'withdrawn')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: ticket_stats.status'); END;
CREATE TRIGGER ticket_stats_status_check_update BEFORE UPDATE OF status ON ticket_stats
WHEN NEW.status NOT IN ('open', 'acknowledged', 'resolved', 'closed', 'declined', 'withdrawn')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: ticket_stats.status'); END;
CREATE TRIGGER ticket_stats_level_check_insert BEFORE INSERT ON ticket_stats
WHEN NEW.level NOT IN ('compound', 'community', 'street')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: ticket_stats.level'); END;
CREATE TRIGGER ticket_stats_level_check_update BEFORE UPDATE OF level ON ticket_stats
WHEN NEW.level NOT IN ('compound', 'community', 'street')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: ticket_stats.level'); END;
CREATE TRIGGER ticket_stays_level_check_insert BEFORE INSERT ON ticket_stays
WHEN NEW.level NOT IN ('compound', 'community', 'street')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: ticket_stays.level'); END;
CREATE TRIGGER ticket_stays_level_check_update BEFORE UPDATE OF level ON ticket_stays
WHEN NEW.level NOT IN ('compound', 'community', 'street')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: ticket_stays.level'); END;
