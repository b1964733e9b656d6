DROP INDEX ticket_events_created;
DROP INDEX tickets_community_closed;
DROP INDEX tickets_street_closed;
DROP INDEX tickets_created;
DROP INDEX tickets_community_created;
