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
        /// Streets only: which level makes the callbacks (migration 000013).
        callback_level -> Nullable<Text>,
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
        token_generation -> BigInt,
        failed_logins -> Integer,
        lockouts -> Integer,
        locked_until -> Nullable<Timestamp>,
    }
}

diesel::table! {
    otp_sends (id) {
        id -> BigInt,
        phone_hash -> Text,
        sent_at -> Timestamp,
    }
}

diesel::table! {
    upload_attempts (id) {
        id -> BigInt,
        ticket_id -> BigInt,
        attempted_at -> Timestamp,
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

diesel::table! {
    tickets (id) {
        id -> BigInt,
        reference -> Text,
        status -> Text,
        level -> Text,
        street_id -> BigInt,
        community_id -> BigInt,
        compound_id -> BigInt,
        building_id -> Nullable<BigInt>,
        category_id -> BigInt,
        urgency -> Text,
        title -> Text,
        description -> Text,
        location_text -> Nullable<Text>,
        latitude -> Nullable<Double>,
        longitude -> Nullable<Double>,
        resident_id -> BigInt,
        assignee_id -> Nullable<BigInt>,
        assigned_handler -> Nullable<Text>,
        resolution_note -> Nullable<Text>,
        decline_reason -> Nullable<Text>,
        declined_at -> Nullable<Timestamp>,
        rating -> Nullable<Integer>,
        rating_comment -> Nullable<Text>,
        closed_by -> Nullable<Text>,
        escalation_count -> Integer,
        disputes_at_level -> Integer,
        returned_by_community -> Bool,
        returned_by_street -> Bool,
        level_entered_at -> Timestamp,
        level_acknowledged_at -> Nullable<Timestamp>,
        ack_due_at -> Nullable<Timestamp>,
        resolve_due_at -> Nullable<Timestamp>,
        due_at -> Timestamp,
        next_check_at -> Nullable<Timestamp>,
        ack_warned -> Bool,
        resolve_warned -> Bool,
        overdue -> Bool,
        version -> Integer,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        acknowledged_at -> Nullable<Timestamp>,
        resolved_at -> Nullable<Timestamp>,
        closed_at -> Nullable<Timestamp>,
        paused_at -> Nullable<Timestamp>,
        paused_minutes -> BigInt,
        source -> Text,
        entered_by -> Nullable<BigInt>,
        external_ref -> Nullable<Text>,
        raised_level -> Nullable<Text>,
        identity_hidden -> Bool,
        transfer_count -> Integer,
        urge_count -> Integer,
        urged_by_community_at -> Nullable<Timestamp>,
        urged_by_street_at -> Nullable<Timestamp>,
        decide_due_at -> Nullable<Timestamp>,
        extension_due_at -> Nullable<Timestamp>,
        extension_reason -> Nullable<Text>,
        extension_requested_at -> Nullable<Timestamp>,
        extension_lapsed -> Bool,
        extensions_granted -> Integer,
        location_accuracy_m -> Nullable<Double>,
    }
}

diesel::table! {
    ticket_events (id) {
        id -> BigInt,
        ticket_id -> BigInt,
        actor_id -> Nullable<BigInt>,
        actor_role -> Text,
        action -> Text,
        level -> Text,
        status_before -> Nullable<Text>,
        status_after -> Text,
        level_after -> Text,
        reason -> Nullable<Text>,
        note -> Nullable<Text>,
        internal -> Bool,
        created_at -> Timestamp,
    }
}

diesel::table! {
    ticket_attachments (id) {
        id -> BigInt,
        ticket_id -> BigInt,
        uploader_id -> BigInt,
        storage_name -> Text,
        original_name -> Nullable<Text>,
        content_type -> Text,
        size_bytes -> BigInt,
        created_at -> Timestamp,
    }
}

diesel::table! {
    idempotency_keys (user_id, idem_key) {
        user_id -> BigInt,
        idem_key -> Text,
        ticket_id -> BigInt,
        request_hash -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    ticket_sequences (street_id, day) {
        street_id -> BigInt,
        day -> Text,
        last_value -> Integer,
    }
}

diesel::table! {
    sla_policies (id) {
        id -> BigInt,
        level -> Text,
        category_id -> Nullable<BigInt>,
        urgency -> Nullable<Text>,
        acknowledge_minutes -> BigInt,
        resolve_minutes -> BigInt,
        decide_minutes -> BigInt,
        clock -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    work_calendars (year) {
        year -> Integer,
        spec -> Text,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    /// One row per ticket: its statistics facts (migration 000006, service::stats::facts).
    ticket_stats (ticket_id) {
        ticket_id -> BigInt,
        version -> Integer,
        street_id -> BigInt,
        community_id -> BigInt,
        compound_id -> BigInt,
        category_id -> BigInt,
        created_at -> Timestamp,
        status -> Text,
        level -> Text,
        went_up -> Bool,
        rating -> Nullable<Integer>,
        response -> Nullable<Bool>,
        response_due -> Nullable<Timestamp>,
        resolution -> Nullable<Bool>,
        resolution_due -> Nullable<Timestamp>,
        first_answer_secs -> Nullable<BigInt>,
        settle_secs -> Nullable<BigInt>,
        closed_by -> Nullable<Text>,
    }
}

diesel::table! {
    /// The answered stays of each ticket (migration 000006, service::stats::facts).
    ticket_stays (ticket_id, seq) {
        ticket_id -> BigInt,
        seq -> Integer,
        street_id -> BigInt,
        community_id -> BigInt,
        created_at -> Timestamp,
        level -> Text,
        answer_secs -> BigInt,
        settle_secs -> Nullable<BigInt>,
    }
}

diesel::table! {
    /// Who saw, took or erased personal data (migration 000009, service::privacy).
    audit_log (id) {
        id -> BigInt,
        created_at -> Timestamp,
        actor_id -> Nullable<BigInt>,
        actor_role -> Text,
        action -> Text,
        subject_user_id -> Nullable<BigInt>,
        ticket_id -> Nullable<BigInt>,
        detail -> Nullable<Text>,
    }
}

diesel::table! {
    /// Callbacks (回访) after closures (migration 000013, service::callbacks).
    callbacks (id) {
        id -> BigInt,
        ticket_id -> BigInt,
        street_id -> BigInt,
        community_id -> BigInt,
        compound_id -> BigInt,
        closed_by -> Text,
        closed_at -> Timestamp,
        closed_level -> Text,
        closed_unit_id -> BigInt,
        reason -> Text,
        flag -> Nullable<Text>,
        assigned_level -> Text,
        due_at -> Timestamp,
        state -> Text,
        attempts -> Integer,
        verdict -> Nullable<Text>,
        pressed -> Nullable<Bool>,
        asks_pressed -> Bool,
        note -> Nullable<Text>,
        reopened -> Bool,
        completed_by -> Nullable<BigInt>,
        completed_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    callback_attempts (id) {
        id -> BigInt,
        callback_id -> BigInt,
        at -> Timestamp,
        reached -> Bool,
        by_user -> BigInt,
    }
}

diesel::table! {
    /// The accountability ledger: one row per fact a unit answers for (migration 000013).
    ledger_entries (id) {
        id -> BigInt,
        street_id -> BigInt,
        community_id -> BigInt,
        unit_id -> BigInt,
        level -> Text,
        kind -> Text,
        reason -> Nullable<Text>,
        ticket_id -> BigInt,
        at -> Timestamp,
    }
}

diesel::table! {
    /// The ledger's daily roll-up (migration 000013).
    ledger_daily (unit_id, level, kind, reason, day) {
        unit_id -> BigInt,
        level -> Text,
        kind -> Text,
        reason -> Text,
        day -> Timestamp,
        street_id -> BigInt,
        community_id -> BigInt,
        n -> BigInt,
    }
}

diesel::joinable!(callbacks -> tickets (ticket_id));
diesel::joinable!(callback_attempts -> callbacks (callback_id));
diesel::allow_tables_to_appear_in_same_query!(callbacks, tickets);
diesel::allow_tables_to_appear_in_same_query!(callbacks, org_units);
diesel::allow_tables_to_appear_in_same_query!(callbacks, users);
diesel::allow_tables_to_appear_in_same_query!(callbacks, categories);
diesel::allow_tables_to_appear_in_same_query!(callback_attempts, callbacks);
diesel::allow_tables_to_appear_in_same_query!(callback_attempts, users);
diesel::allow_tables_to_appear_in_same_query!(ledger_entries, tickets);

diesel::joinable!(ticket_events -> tickets (ticket_id));
diesel::joinable!(ticket_stats -> tickets (ticket_id));
diesel::joinable!(ticket_stays -> tickets (ticket_id));
diesel::joinable!(ticket_attachments -> tickets (ticket_id));

diesel::allow_tables_to_appear_in_same_query!(
    org_units,
    users,
    otp_codes,
    refresh_tokens,
    app_secrets,
    categories,
    tickets,
    ticket_events,
    ticket_stats,
    ticket_stays,
    ticket_attachments,
    idempotency_keys,
    ticket_sequences,
    sla_policies,
    work_calendars,
);
// The audit log names its actor (migration 000009).
diesel::allow_tables_to_appear_in_same_query!(audit_log, users);
