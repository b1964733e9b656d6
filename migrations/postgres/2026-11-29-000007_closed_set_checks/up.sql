-- Every column that holds one of the domain's closed sets (src/domain: Status, Level, Urgency,
-- ClosedBy, ActorRole, EventKind, Channel, and the outbox states) refuses any other value, so a
-- value the code does not know can never be stored: the code reads such a value as an error,
-- never as a guess. Adding a value to one of these sets means a migration that widens its check.

ALTER TABLE tickets ADD CONSTRAINT tickets_status_check CHECK (status IN ('open', 'acknowledged', 'resolved', 'closed', 'declined', 'withdrawn'));
ALTER TABLE tickets ADD CONSTRAINT tickets_level_check CHECK (level IN ('compound', 'community', 'street'));
ALTER TABLE tickets ADD CONSTRAINT tickets_urgency_check CHECK (urgency IN ('normal', 'urgent'));
ALTER TABLE tickets ADD CONSTRAINT tickets_closed_by_check CHECK (closed_by IN ('resident', 'system'));
ALTER TABLE ticket_events ADD CONSTRAINT ticket_events_actor_role_check CHECK (actor_role IN ('resident', 'compound_staff', 'community_staff', 'street_staff', 'admin', 'system'));
ALTER TABLE ticket_events ADD CONSTRAINT ticket_events_action_check CHECK (action IN ('create', 'acknowledge', 'comment', 'assign', 'resolve', 'escalate', 'decline', 'return', 'confirm', 'dispute', 'withdraw', 'reveal_phone', 'wait_on_resident', 'clock_resumed', 'sla_warning', 'overdue', 'auto_close'));
ALTER TABLE ticket_events ADD CONSTRAINT ticket_events_level_check CHECK (level IN ('compound', 'community', 'street'));
ALTER TABLE ticket_events ADD CONSTRAINT ticket_events_status_before_check CHECK (status_before IN ('open', 'acknowledged', 'resolved', 'closed', 'declined', 'withdrawn'));
ALTER TABLE ticket_events ADD CONSTRAINT ticket_events_status_after_check CHECK (status_after IN ('open', 'acknowledged', 'resolved', 'closed', 'declined', 'withdrawn'));
ALTER TABLE ticket_events ADD CONSTRAINT ticket_events_level_after_check CHECK (level_after IN ('compound', 'community', 'street'));
ALTER TABLE notifications ADD CONSTRAINT notifications_channel_check CHECK (channel IN ('inapp', 'sms', 'email', 'wecom'));
ALTER TABLE notifications ADD CONSTRAINT notifications_status_check CHECK (status IN ('pending', 'sending', 'sent', 'dead'));
ALTER TABLE ticket_stats ADD CONSTRAINT ticket_stats_status_check CHECK (status IN ('open', 'acknowledged', 'resolved', 'closed', 'declined', 'withdrawn'));
ALTER TABLE ticket_stats ADD CONSTRAINT ticket_stats_level_check CHECK (level IN ('compound', 'community', 'street'));
ALTER TABLE ticket_stays ADD CONSTRAINT ticket_stays_level_check CHECK (level IN ('compound', 'community', 'street'));
