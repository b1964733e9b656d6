-- A resident's "use my location" (issue #15): the accuracy the browser reported, in metres.
ALTER TABLE tickets ADD COLUMN location_accuracy_m DOUBLE PRECISION;
