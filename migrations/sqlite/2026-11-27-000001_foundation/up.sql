-- Foundation: org tree, users, sign-in, categories (SQLite).
CREATE TABLE org_units (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN ('street', 'community', 'compound', 'building')),
    parent_id BIGINT REFERENCES org_units (id),
    code TEXT,
    name TEXT NOT NULL,
    archived_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX org_units_parent ON org_units (parent_id);
CREATE UNIQUE INDEX org_units_street_code ON org_units (code) WHERE kind = 'street';

CREATE TABLE users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    role TEXT NOT NULL CHECK (role IN ('resident', 'compound_staff', 'community_staff', 'street_staff', 'admin')),
    username TEXT UNIQUE,
    phone TEXT,
    display_name TEXT NOT NULL,
    email TEXT,
    org_unit_id BIGINT REFERENCES org_units (id),
    password_hash TEXT,
    disabled_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX users_resident_phone ON users (phone) WHERE role = 'resident';
CREATE INDEX users_org_unit ON users (org_unit_id);

CREATE TABLE otp_codes (
    phone TEXT PRIMARY KEY NOT NULL,
    code_hash TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    expires_at TIMESTAMP NOT NULL,
    sent_at TIMESTAMP NOT NULL
);

CREATE TABLE refresh_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL REFERENCES users (id),
    family TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP,
    revoked_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);

CREATE TABLE app_secrets (
    name TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE categories (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    sort_order INTEGER NOT NULL DEFAULT 0,
    archived_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL
);
INSERT INTO categories (code, name, sort_order, created_at) VALUES
    ('sanitation', '环境卫生', 10, CURRENT_TIMESTAMP),
    ('illegal_construction', '违章建筑', 20, CURRENT_TIMESTAMP),
    ('safety', '社区安全', 30, CURRENT_TIMESTAMP),
    ('property_service', '物业服务', 40, CURRENT_TIMESTAMP),
    ('repairs', '设施维修', 50, CURRENT_TIMESTAMP),
    ('neighbour_dispute', '邻里纠纷', 60, CURRENT_TIMESTAMP),
    ('noise', '噪音扰民', 70, CURRENT_TIMESTAMP),
    ('other', '其他', 99, CURRENT_TIMESTAMP);
