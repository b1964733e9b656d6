-- Statistics (GET /api/v1/stats/*): the tickets created in a range per community or compound
-- (per street there is tickets_street_created), tickets closed in a range, and timeline events
-- in a range (flows between levels).
CREATE INDEX tickets_community_created ON tickets (community_id, created_at);
CREATE INDEX tickets_created ON tickets (created_at);
CREATE INDEX tickets_street_closed ON tickets (street_id, closed_at);
CREATE INDEX tickets_community_closed ON tickets (community_id, closed_at);
CREATE INDEX ticket_events_created ON ticket_events (created_at);
