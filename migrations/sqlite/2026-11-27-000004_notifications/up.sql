-- Notifications: the outbox (one row per event, recipient and channel), written in the same
-- transaction as the ticket event; the in-app inbox is the rows of channel 'inapp'.
CREATE TABLE notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id BIGINT NOT NULL REFERENCES ticket_events (id),
    ticket_id BIGINT NOT NULL REFERENCES tickets (id),
    -- The user it is for; NULL for a unit's group robot.
    recipient_id BIGINT REFERENCES users (id),
    -- 'user:<id>' or 'unit:<id>': with event_id and channel the key that is never duplicated.
    recipient_key TEXT NOT NULL,
    -- 'inapp' | 'sms' | 'email' | 'wecom'
    channel TEXT NOT NULL,
    -- Phone, email address or webhook URL at the time of the event; '' for in-app.
    address TEXT NOT NULL,
    -- Template name, e.g. 'created', 'called_up'.
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    -- Relative link to the ticket page; the dispatcher prefixes server.public_url.
    link_path TEXT NOT NULL,
    -- Urgent SMS ignore quiet hours.
    urgent BOOLEAN NOT NULL DEFAULT 0,
    -- 'pending' | 'sending' | 'sent' | 'dead'
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    -- While 'sending': the claim expires then (a dispatcher that died lets go).
    locked_until TIMESTAMP,
    last_error TEXT,
    read_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    sent_at TIMESTAMP,
    updated_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX notifications_once ON notifications (event_id, recipient_key, channel);
CREATE INDEX notifications_due ON notifications (next_attempt_at, id) WHERE status IN ('pending', 'sending');
CREATE INDEX notifications_inbox ON notifications (recipient_id, channel, read_at, id);
CREATE INDEX notifications_status ON notifications (status, id);

-- Per-user channel choices; no row = the defaults.
CREATE TABLE notification_settings (
    user_id BIGINT PRIMARY KEY REFERENCES users (id),
    sms BOOLEAN NOT NULL DEFAULT 1,
    inapp BOOLEAN NOT NULL DEFAULT 1,
    email BOOLEAN NOT NULL DEFAULT 1,
    -- Overrides users.email for notifications.
    email_address TEXT,
    updated_at TIMESTAMP NOT NULL
);

-- WeCom (企业微信) group robot webhook per org unit, set by admins.
CREATE TABLE unit_webhooks (
    org_unit_id BIGINT PRIMARY KEY REFERENCES org_units (id),
    url TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
