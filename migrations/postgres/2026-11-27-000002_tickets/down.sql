DROP TABLE ticket_sequences;
DROP TABLE idempotency_keys;
DROP TABLE ticket_attachments;
DROP TABLE ticket_events;
DROP TABLE tickets;
