-- Tickets, their timeline, attachments, idempotency keys, reference sequences (SQLite).
CREATE TABLE tickets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    reference TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    level TEXT NOT NULL,
    street_id BIGINT NOT NULL REFERENCES org_units (id),
    community_id BIGINT NOT NULL REFERENCES org_units (id),
    compound_id BIGINT NOT NULL REFERENCES org_units (id),
    building_id BIGINT REFERENCES org_units (id),
    category_id BIGINT NOT NULL REFERENCES categories (id),
    urgency TEXT NOT NULL,
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    location_text TEXT,
    latitude DOUBLE PRECISION,
    longitude DOUBLE PRECISION,
    resident_id BIGINT NOT NULL REFERENCES users (id),
    assignee_id BIGINT REFERENCES users (id),
    assigned_handler TEXT,
    resolution_note TEXT,
    decline_reason TEXT,
    declined_at TIMESTAMP,
    rating INTEGER,
    rating_comment TEXT,
    closed_by TEXT,
    escalation_count INTEGER NOT NULL DEFAULT 0,
    disputes_at_level INTEGER NOT NULL DEFAULT 0,
    returned_by_community BOOLEAN NOT NULL DEFAULT FALSE,
    returned_by_street BOOLEAN NOT NULL DEFAULT FALSE,
    level_entered_at TIMESTAMP NOT NULL,
    level_acknowledged_at TIMESTAMP,
    ack_due_at TIMESTAMP,
    resolve_due_at TIMESTAMP,
    -- The running clock's deadline, or 9999-12-31 when none runs: the queue's sort key.
    due_at TIMESTAMP NOT NULL,
    -- When the SLA sweeper must look at this ticket next (warning, breach, auto-close); NULL = never.
    next_check_at TIMESTAMP,
    ack_warned BOOLEAN NOT NULL DEFAULT FALSE,
    resolve_warned BOOLEAN NOT NULL DEFAULT FALSE,
    overdue BOOLEAN NOT NULL DEFAULT FALSE,
    version INTEGER NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    acknowledged_at TIMESTAMP,
    resolved_at TIMESTAMP,
    closed_at TIMESTAMP
);
CREATE INDEX tickets_compound_due ON tickets (compound_id, due_at, id);
CREATE INDEX tickets_community_due ON tickets (community_id, due_at, id);
CREATE INDEX tickets_street_due ON tickets (street_id, due_at, id);
CREATE INDEX tickets_resident_created ON tickets (resident_id, created_at, id);
CREATE INDEX tickets_next_check ON tickets (next_check_at) WHERE next_check_at IS NOT NULL;
CREATE INDEX tickets_street_created ON tickets (street_id, created_at);

CREATE TABLE ticket_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id BIGINT NOT NULL REFERENCES tickets (id),
    actor_id BIGINT REFERENCES users (id),
    actor_role TEXT NOT NULL,
    action TEXT NOT NULL,
    level TEXT NOT NULL,
    status_before TEXT,
    status_after TEXT NOT NULL,
    level_after TEXT NOT NULL,
    reason TEXT,
    note TEXT,
    internal BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX ticket_events_ticket ON ticket_events (ticket_id, id);

CREATE TABLE ticket_attachments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id BIGINT NOT NULL REFERENCES tickets (id),
    uploader_id BIGINT NOT NULL REFERENCES users (id),
    storage_name TEXT NOT NULL UNIQUE,
    original_name TEXT,
    content_type TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX ticket_attachments_ticket ON ticket_attachments (ticket_id);

CREATE TABLE idempotency_keys (
    user_id BIGINT NOT NULL REFERENCES users (id),
    idem_key TEXT NOT NULL,
    ticket_id BIGINT NOT NULL REFERENCES tickets (id),
    request_hash TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (user_id, idem_key)
);

CREATE TABLE ticket_sequences (
    street_id BIGINT NOT NULL REFERENCES org_units (id),
    day TEXT NOT NULL,
    last_value INTEGER NOT NULL,
    PRIMARY KEY (street_id, day)
);
