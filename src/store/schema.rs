//! Diesel table definitions, one schema for both backends (see `migrations/`).

diesel::table! {
    applications (id) {
        id -> Text,
        status -> Text,
        holder_iin -> Text,
        surname -> Text,
        given_name -> Text,
        patronymic -> Nullable<Text>,
        birth_date -> Date,
        email -> Nullable<Text>,
        language -> Text,
        storage -> Text,
        agreement_version -> Text,
        access_token_hash -> Binary,
        consent_jti -> Text,
        register_match -> Bool,
        liveness -> Bool,
        auth_csr -> Binary,
        sign_csr -> Binary,
        reason -> Nullable<Text>,
        decided_by -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        review_reasons -> Nullable<Text>,
        replaces_application_id -> Nullable<Text>,
    }
}

diesel::table! {
    certificates (serial) {
        serial -> Text,
        issuer_id -> Text,
        application_id -> Nullable<Text>,
        kind -> Text,
        holder_iin -> Text,
        not_before -> Timestamp,
        not_after -> Timestamp,
        tbs_der -> Binary,
        der -> Nullable<Binary>,
        spki_sha256 -> Text,
        status -> Text,
        revoked_at -> Nullable<Timestamp>,
        revocation_reason -> Nullable<Text>,
        invalidity_date -> Nullable<Timestamp>,
        created_at -> Timestamp,
        issued_at -> Nullable<Timestamp>,
        revocation_seq -> Nullable<BigInt>,
        held_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    blocked_keys (spki_sha256) {
        spki_sha256 -> Text,
        reason -> Text,
        serial -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    used_consent_tokens (jti) {
        jti -> Text,
        expires_at -> Timestamp,
        used_at -> Timestamp,
    }
}

diesel::table! {
    crls (issuer_id, crl_number) {
        issuer_id -> Text,
        crl_number -> BigInt,
        is_delta -> Bool,
        base_crl_number -> Nullable<BigInt>,
        this_update -> Timestamp,
        next_update -> Timestamp,
        der -> Binary,
        created_at -> Timestamp,
        covered_seq -> BigInt,
    }
}

diesel::table! {
    expiry_notices (serial, threshold_days) {
        serial -> Text,
        threshold_days -> Integer,
        queued_at -> Timestamp,
    }
}

diesel::table! {
    authority_revocations (serial) {
        serial -> Text,
        subject -> Text,
        revoked_at -> Timestamp,
        reason -> Text,
    }
}

diesel::table! {
    counters (name) {
        name -> Text,
        value -> BigInt,
    }
}

diesel::table! {
    outbox (id) {
        id -> Text,
        event -> Text,
        recipient -> Text,
        language -> Text,
        payload -> Text,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        lease_owner -> Nullable<Text>,
        lease_until -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        sent_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    audit_log (seq) {
        seq -> BigInt,
        at -> Timestamp,
        actor -> Text,
        action -> Text,
        subject -> Text,
        details -> Text,
        prev_hash -> Text,
        hash -> Text,
    }
}

diesel::table! {
    rate_limit_events (id) {
        id -> Text,
        scope -> Text,
        subject -> Text,
        at -> Timestamp,
    }
}

diesel::table! {
    data_migrations (name) {
        name -> Text,
        applied_at -> Timestamp,
    }
}

diesel::table! {
    root_ocsp_responses (serial, hash_alg) {
        serial -> Text,
        hash_alg -> Text,
        status -> Text,
        this_update -> Timestamp,
        next_update -> Timestamp,
        der -> Binary,
        imported_at -> Timestamp,
    }
}

diesel::table! {
    revoked_serials (issuer_id, serial) {
        issuer_id -> Text,
        serial -> Text,
        revoked_at -> Timestamp,
        reason -> Text,
        invalidity_date -> Nullable<Timestamp>,
        source -> Text,
        recorded_at -> Timestamp,
        revocation_seq -> BigInt,
    }
}

diesel::table! {
    cabinet_challenges (challenge_sha256) {
        challenge_sha256 -> Binary,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    cabinet_sessions (token_sha256) {
        token_sha256 -> Binary,
        application_id -> Text,
        auth_serial -> Text,
        holder_iin -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    enrollment_sessions (cookie_sha256) {
        cookie_sha256 -> Binary,
        csrf_token -> Text,
        consent_token -> Text,
        consent_jti -> Text,
        holder_iin -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        application_id -> Nullable<Text>,
    }
}

diesel::joinable!(certificates -> applications (application_id));

diesel::allow_tables_to_appear_in_same_query!(
    applications,
    certificates,
    blocked_keys,
    used_consent_tokens,
    crls,
    outbox,
    audit_log,
    counters,
    expiry_notices,
    authority_revocations,
    rate_limit_events,
    data_migrations,
    root_ocsp_responses,
    revoked_serials,
    cabinet_challenges,
    cabinet_sessions,
    enrollment_sessions,
);
