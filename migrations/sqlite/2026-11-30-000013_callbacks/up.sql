-- Closing the loop honestly (issue #12): how each ticket was closed (closed_by gains auto,
-- callback, declined, withdrawn; `system` becomes `auto`), the callbacks (回访) with their
-- attempts, the accountability ledger's entries (one row per fact, written by the commit path in
-- the ticket's transaction), which level does a street's callbacks, and closed_by in the
-- statistics facts (so auto-closed tickets count as resolved but unconfirmed).

UPDATE tickets SET closed_by = 'auto' WHERE closed_by = 'system';
UPDATE tickets SET closed_by = 'withdrawn' WHERE status = 'withdrawn';
DROP TRIGGER tickets_closed_by_check_insert;
DROP TRIGGER tickets_closed_by_check_update;
CREATE TRIGGER tickets_closed_by_check_insert BEFORE INSERT ON tickets
WHEN NEW.closed_by IS NOT NULL AND NEW.closed_by NOT IN ('resident', 'auto', 'callback', 'declined', 'withdrawn', 'raising_level')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: tickets.closed_by'); END;
CREATE TRIGGER tickets_closed_by_check_update BEFORE UPDATE OF closed_by ON tickets
WHEN NEW.closed_by IS NOT NULL AND NEW.closed_by NOT IN ('resident', 'auto', 'callback', 'declined', 'withdrawn', 'raising_level')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: tickets.closed_by'); END;
DROP TRIGGER ticket_events_action_check_insert;
DROP TRIGGER ticket_events_action_check_update;
CREATE TRIGGER ticket_events_action_check_insert BEFORE INSERT ON ticket_events
WHEN NEW.action NOT IN ('create', 'acknowledge', 'comment', 'assign', 'resolve', 'escalate', 'decline', 'return', 'confirm', 'dispute', 'withdraw', 'reveal_phone', 'wait_on_resident', 'clock_resumed', 'sla_warning', 'overdue', 'auto_close', 'transfer', 'urge', 'take_over', 'request_extension', 'approve_extension', 'reject_extension', 'uphold_decline', 'overturn_decline', 'extension_unanswered', 'callback', 'callback_reopen')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: ticket_events.action'); END;
CREATE TRIGGER ticket_events_action_check_update BEFORE UPDATE OF action ON ticket_events
WHEN NEW.action NOT IN ('create', 'acknowledge', 'comment', 'assign', 'resolve', 'escalate', 'decline', 'return', 'confirm', 'dispute', 'withdraw', 'reveal_phone', 'wait_on_resident', 'clock_resumed', 'sla_warning', 'overdue', 'auto_close', 'transfer', 'urge', 'take_over', 'request_extension', 'approve_extension', 'reject_extension', 'uphold_decline', 'overturn_decline', 'extension_unanswered', 'callback', 'callback_reopen')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: ticket_events.action'); END;
ALTER TABLE org_units ADD COLUMN callback_level TEXT;
CREATE TRIGGER org_units_callback_level_check_insert BEFORE INSERT ON org_units
WHEN NEW.callback_level IS NOT NULL AND NEW.callback_level NOT IN ('community', 'street')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: org_units.callback_level'); END;
CREATE TRIGGER org_units_callback_level_check_update BEFORE UPDATE OF callback_level ON org_units
WHEN NEW.callback_level IS NOT NULL AND NEW.callback_level NOT IN ('community', 'street')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: org_units.callback_level'); END;
ALTER TABLE ticket_stats ADD COLUMN closed_by TEXT;
CREATE TRIGGER ticket_stats_closed_by_check_insert BEFORE INSERT ON ticket_stats
WHEN NEW.closed_by IS NOT NULL AND NEW.closed_by NOT IN ('resident', 'auto', 'callback', 'declined', 'withdrawn', 'raising_level')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: ticket_stats.closed_by'); END;
CREATE TRIGGER ticket_stats_closed_by_check_update BEFORE UPDATE OF closed_by ON ticket_stats
WHEN NEW.closed_by IS NOT NULL AND NEW.closed_by NOT IN ('resident', 'auto', 'callback', 'declined', 'withdrawn', 'raising_level')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: ticket_stats.closed_by'); END;
-- The facts are recomputed by the back-fill (FACTS_VERSION 2); the covering indexes gain closed_by.
DROP INDEX ticket_stats_street;
DROP INDEX ticket_stats_community;
DROP INDEX ticket_stats_created;
CREATE INDEX ticket_stats_street ON ticket_stats (street_id, created_at, status, level, went_up,
    rating, response, response_due, resolution, resolution_due, first_answer_secs, settle_secs,
    community_id, compound_id, category_id, closed_by);
CREATE INDEX ticket_stats_community ON ticket_stats (community_id, created_at, status, level,
    went_up, rating, response, response_due, resolution, resolution_due, first_answer_secs,
    settle_secs, compound_id, category_id, closed_by);
CREATE INDEX ticket_stats_created ON ticket_stats (created_at, status, level, went_up, rating,
    response, response_due, resolution, resolution_due, first_answer_secs, settle_secs,
    community_id, compound_id, category_id, closed_by);

CREATE TABLE callbacks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id BIGINT NOT NULL REFERENCES tickets (id),
    street_id BIGINT NOT NULL,
    community_id BIGINT NOT NULL,
    compound_id BIGINT NOT NULL,
    -- The closure called back: how, when, at which level (and that level's unit).
    closed_by TEXT NOT NULL CHECK (closed_by IN ('resident', 'auto', 'callback', 'declined', 'withdrawn', 'raising_level')),
    closed_at TIMESTAMP NOT NULL,
    closed_level TEXT NOT NULL CHECK (closed_level IN ('compound', 'community', 'street')),
    closed_unit_id BIGINT NOT NULL,
    reason TEXT NOT NULL CHECK (reason IN ('auto_closed', 'decline_upheld', 'withdrawn_after_contact', 'sample', 'flagged')),
    flag TEXT CHECK (flag IN ('quick_withdrawal', 'quick_five_star')),
    -- The level whose staff make the call (the street's setting when the closure happened).
    assigned_level TEXT NOT NULL CHECK (assigned_level IN ('community', 'street')),
    due_at TIMESTAMP NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'done', 'unreachable')),
    attempts INTEGER NOT NULL DEFAULT 0,
    verdict TEXT CHECK (verdict IN ('satisfied', 'basically_satisfied', 'unsatisfied')),
    pressed BOOLEAN,
    asks_pressed BOOLEAN NOT NULL,
    note TEXT,
    reopened BOOLEAN NOT NULL DEFAULT FALSE,
    completed_by BIGINT,
    completed_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL
);
-- One callback per closure.
CREATE UNIQUE INDEX callbacks_closure ON callbacks (ticket_id, closed_at);
CREATE INDEX callbacks_street_queue ON callbacks (street_id, state, due_at);
CREATE INDEX callbacks_community_queue ON callbacks (community_id, state, due_at);
CREATE INDEX callbacks_street_closed ON callbacks (street_id, closed_at);

CREATE TABLE callback_attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    callback_id BIGINT NOT NULL REFERENCES callbacks (id),
    at TIMESTAMP NOT NULL,
    reached BOOLEAN NOT NULL,
    by_user BIGINT NOT NULL
);
CREATE INDEX callback_attempts_callback ON callback_attempts (callback_id);

-- The accountability ledger: one row per fact a unit answers for.
CREATE TABLE ledger_entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    street_id BIGINT NOT NULL,
    community_id BIGINT NOT NULL,
    unit_id BIGINT NOT NULL,
    level TEXT NOT NULL CHECK (level IN ('compound', 'community', 'street')),
    kind TEXT NOT NULL CHECK (kind IN ('received', 'acknowledged_on_time', 'acknowledged_late', 'resolved_on_time', 'resolved_late', 'called_up', 'called_up_by_sweeper', 'taken_over', 'returns_received', 'transfers_out', 'transfers_in', 'declines', 'declines_upheld', 'declines_overturned', 'decline_reviews_unanswered', 'urges_received', 'extensions_requested', 'extensions_granted', 'extensions_unanswered', 'disputes', 'rated', 'rated_satisfied', 'callbacks_satisfied', 'callbacks_basically_satisfied', 'callbacks_unsatisfied', 'callbacks_unreachable', 'reopenings')),
    reason TEXT,
    ticket_id BIGINT NOT NULL,
    at TIMESTAMP NOT NULL
);
-- Range scans per street / community cover every column the ledger groups by.
CREATE INDEX ledger_street ON ledger_entries (street_id, at, level, unit_id, kind, reason);
CREATE INDEX ledger_community ON ledger_entries (community_id, at, level, unit_id, kind, reason);
CREATE INDEX ledger_unit ON ledger_entries (unit_id, kind, at, ticket_id);

-- The ledger's daily roll-up (Beijing days): the count of each (unit, column, reason) per day,
-- kept by the commit path with the entries, so a month's ledger reads a few hundred rows
-- instead of every entry. `day` is the local midnight as a UTC instant; no reason is ''.
CREATE TABLE ledger_daily (
    unit_id BIGINT NOT NULL,
    level TEXT NOT NULL,
    kind TEXT NOT NULL,
    reason TEXT NOT NULL,
    day TIMESTAMP NOT NULL,
    street_id BIGINT NOT NULL,
    community_id BIGINT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (unit_id, level, kind, reason, day)
);
CREATE INDEX ledger_daily_street ON ledger_daily (street_id, day, level, unit_id, kind, reason, n);
CREATE INDEX ledger_daily_community ON ledger_daily (community_id, day, level, unit_id, kind, reason, n);

-- The ranking's urges per unit read only the urge events (a range of every event was a scan of
-- millions of rows at a million tickets).
CREATE INDEX ticket_events_urges ON ticket_events (created_at, ticket_id, level) WHERE action = 'urge';
