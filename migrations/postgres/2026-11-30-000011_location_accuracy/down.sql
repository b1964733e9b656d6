ALTER TABLE tickets DROP COLUMN location_accuracy_m;
