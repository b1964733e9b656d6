-- Holding every level to account (issue #11): how a call came in (source, entered_by,
-- external_ref), own findings (raised_level), identity hidden from the compound, transfers,
-- urges, the decline review (status decline_review with the reviewing level's decide_due_at),
-- extension requests, and each level's decision clock in the SLA policies (decide_minutes,
-- default one working day). The closed-set checks of migration 000007 widen to the new values.

ALTER TABLE tickets ADD COLUMN source TEXT NOT NULL DEFAULT 'app';
ALTER TABLE tickets ADD COLUMN entered_by BIGINT REFERENCES users (id);
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
ALTER TABLE tickets DROP CONSTRAINT tickets_status_check;
ALTER TABLE tickets ADD CONSTRAINT tickets_status_check CHECK (status IN ('open', 'acknowledged', 'resolved', 'closed', 'declined', 'decline_review', 'withdrawn'));
ALTER TABLE tickets DROP CONSTRAINT tickets_closed_by_check;
ALTER TABLE tickets ADD CONSTRAINT tickets_closed_by_check CHECK (closed_by IN ('resident', 'system', 'raising_level'));
ALTER TABLE tickets ADD CONSTRAINT tickets_source_check CHECK (source IN ('app', 'phone', 'desk', 'visit', 'hotline', 'own_finding'));
ALTER TABLE tickets ADD CONSTRAINT tickets_raised_level_check CHECK (raised_level IN ('compound', 'community', 'street'));
ALTER TABLE ticket_events DROP CONSTRAINT ticket_events_action_check;
ALTER TABLE ticket_events ADD CONSTRAINT ticket_events_action_check CHECK (action IN ('create', 'acknowledge', 'comment', 'assign', 'resolve', 'escalate', 'decline', 'return', 'confirm', 'dispute', 'withdraw', 'reveal_phone', 'wait_on_resident', 'clock_resumed', 'sla_warning', 'overdue', 'auto_close', 'transfer', 'urge', 'take_over', 'request_extension', 'approve_extension', 'reject_extension', 'uphold_decline', 'overturn_decline', 'extension_unanswered'));
ALTER TABLE ticket_events DROP CONSTRAINT ticket_events_status_before_check;
ALTER TABLE ticket_events ADD CONSTRAINT ticket_events_status_before_check CHECK (status_before IN ('open', 'acknowledged', 'resolved', 'closed', 'declined', 'decline_review', 'withdrawn'));
ALTER TABLE ticket_events DROP CONSTRAINT ticket_events_status_after_check;
ALTER TABLE ticket_events ADD CONSTRAINT ticket_events_status_after_check CHECK (status_after IN ('open', 'acknowledged', 'resolved', 'closed', 'declined', 'decline_review', 'withdrawn'));
ALTER TABLE ticket_stats DROP CONSTRAINT ticket_stats_status_check;
ALTER TABLE ticket_stats ADD CONSTRAINT ticket_stats_status_check CHECK (status IN ('open', 'acknowledged', 'resolved', 'closed', 'declined', 'decline_review', 'withdrawn'));
CREATE INDEX tickets_source ON tickets (street_id, source, created_at);
CREATE INDEX tickets_decide_due ON tickets (decide_due_at) WHERE decide_due_at IS NOT NULL;
