DROP TABLE unit_webhooks;
DROP TABLE notification_settings;
DROP TABLE notifications;
