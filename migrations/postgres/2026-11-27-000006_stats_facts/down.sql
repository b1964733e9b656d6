DROP INDEX tickets_closed_status;
DROP INDEX tickets_community_closed;
DROP INDEX tickets_street_closed;
CREATE INDEX tickets_street_closed ON tickets (street_id, closed_at);
CREATE INDEX tickets_community_closed ON tickets (community_id, closed_at);
DROP INDEX tickets_active_community;
DROP INDEX tickets_active_street;
DROP TABLE ticket_stays;
DROP TABLE ticket_stats;
