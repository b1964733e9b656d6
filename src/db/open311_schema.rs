// Partner keys and the Open311 requests they posted (migration 2026-11-30-000012_api_keys),
// kept apart from schema.rs.

use super::schema::tickets;

diesel::table! {
    api_keys (id) {
        id -> BigInt,
        partner -> Text,
        source -> Text,
        key_prefix -> Text,
        key_hash -> Text,
        rate_limit_per_minute -> Integer,
        created_by -> Nullable<BigInt>,
        created_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    open311_requests (ticket_id) {
        ticket_id -> BigInt,
        api_key_id -> BigInt,
        media_url -> Nullable<Text>,
        address_id -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::joinable!(open311_requests -> tickets (ticket_id));
diesel::joinable!(open311_requests -> api_keys (api_key_id));
diesel::allow_tables_to_appear_in_same_query!(api_keys, open311_requests, tickets);
