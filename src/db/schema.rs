// Hand-kept in step with migrations/{sqlite,postgres}: only types both backends share.

diesel::table! {
    org_units (id) {
        id -> BigInt,
        kind -> Text,
        parent_id -> Nullable<BigInt>,
        code -> Nullable<Text>,
        name -> Text,
        archived_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    users (id) {
        id -> BigInt,
        role -> Text,
        username -> Nullable<Text>,
        phone -> Nullable<Text>,
        display_name -> Text,
        email -> Nullable<Text>,
        org_unit_id -> Nullable<BigInt>,
        password_hash -> Nullable<Text>,
        disabled_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    otp_codes (phone) {
        phone -> Text,
        code_hash -> Text,
        attempts -> Integer,
        expires_at -> Timestamp,
        sent_at -> Timestamp,
    }
}

diesel::table! {
    refresh_tokens (id) {
        id -> BigInt,
        user_id -> BigInt,
        family -> Text,
        token_hash -> Text,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    app_secrets (name) {
        name -> Text,
        value -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    categories (id) {
        id -> BigInt,
        code -> Text,
        name -> Text,
        sort_order -> Integer,
        archived_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::joinable!(users -> org_units (org_unit_id));
diesel::joinable!(refresh_tokens -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    org_units,
    users,
    otp_codes,
    refresh_tokens,
    app_secrets,
    categories
);
