-- SLA policies and working calendars edited by admins; pausing the settle clock.
CREATE TABLE sla_policies (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    level TEXT NOT NULL CHECK (level IN ('compound', 'community', 'street')),
    category_id BIGINT REFERENCES categories (id),
    urgency TEXT CHECK (urgency IN ('normal', 'urgent')),
    acknowledge_minutes BIGINT NOT NULL,
    resolve_minutes BIGINT NOT NULL,
    clock TEXT NOT NULL CHECK (clock IN ('working', 'calendar')),
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE work_calendars (
    year INTEGER PRIMARY KEY NOT NULL,
    -- The year's holidays and make-up working days as JSON text (validated by the service).
    spec TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

ALTER TABLE tickets ADD COLUMN paused_at TIMESTAMP;
-- Working minutes the settle clock has been paused at the current level.
ALTER TABLE tickets ADD COLUMN paused_minutes BIGINT NOT NULL DEFAULT 0;
