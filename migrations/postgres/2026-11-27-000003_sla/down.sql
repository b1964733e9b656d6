ALTER TABLE tickets DROP COLUMN paused_minutes;
ALTER TABLE tickets DROP COLUMN paused_at;
DROP TABLE work_calendars;
DROP TABLE sla_policies;
