// Notification tables (migrations 2026-11-27-000004_notifications), kept apart from schema.rs.

use super::schema::users;

diesel::table! {
    notifications (id) {
        id -> BigInt,
        event_id -> BigInt,
        ticket_id -> BigInt,
        recipient_id -> Nullable<BigInt>,
        recipient_key -> Text,
        channel -> Text,
        address -> Text,
        kind -> Text,
        subject -> Text,
        body -> Text,
        link_path -> Text,
        urgent -> Bool,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        locked_until -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
        read_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        sent_at -> Nullable<Timestamp>,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    notification_settings (user_id) {
        user_id -> BigInt,
        sms -> Bool,
        inapp -> Bool,
        email -> Bool,
        email_address -> Nullable<Text>,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    unit_webhooks (org_unit_id) {
        org_unit_id -> BigInt,
        url -> Text,
        updated_at -> Timestamp,
    }
}

diesel::allow_tables_to_appear_in_same_query!(notifications, notification_settings, unit_webhooks);
// Pairs with the shared schema, one by one (the macro implements every pair it is given).
diesel::allow_tables_to_appear_in_same_query!(notification_settings, users);
