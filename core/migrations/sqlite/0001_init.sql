-- Metadata of an embedded node. UUIDs are TEXT, times are INTEGER unix milliseconds.

CREATE TABLE users (
    id            TEXT PRIMARY KEY NOT NULL,
    email         TEXT NOT NULL UNIQUE,          -- stored lowercase
    display_name  TEXT NOT NULL,
    password_hash TEXT NOT NULL,                 -- Argon2id PHC string
    created_at    INTEGER NOT NULL
);

CREATE TABLE sessions (
    id                 TEXT PRIMARY KEY NOT NULL,
    user_id            TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    refresh_hash       TEXT NOT NULL,            -- SHA-256 of the current refresh token
    refresh_expires_at INTEGER NOT NULL,
    created_at         INTEGER NOT NULL,
    revoked_at         INTEGER
);
CREATE INDEX sessions_by_user ON sessions(user_id);

CREATE TABLE workspaces (
    id         TEXT PRIMARY KEY NOT NULL,
    name       TEXT NOT NULL,
    created_by TEXT NOT NULL REFERENCES users(id),
    created_at INTEGER NOT NULL
);

CREATE TABLE workspace_members (
    workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role         TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'guest')),
    joined_at    INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, user_id)
);
CREATE INDEX workspace_members_by_user ON workspace_members(user_id);

CREATE TABLE channels (
    id           TEXT PRIMARY KEY NOT NULL,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    kind         TEXT NOT NULL CHECK (kind IN ('public', 'private', 'dm')),
    topic        TEXT NOT NULL DEFAULT '',
    topic_set_by TEXT REFERENCES users(id),
    topic_set_at INTEGER,
    is_archived  INTEGER NOT NULL DEFAULT 0,
    created_by   TEXT NOT NULL REFERENCES users(id),
    created_at   INTEGER NOT NULL,
    UNIQUE (workspace_id, name)
);

CREATE TABLE channel_members (
    channel_id    TEXT NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    joined_at     INTEGER NOT NULL,
    last_read_seq INTEGER NOT NULL DEFAULT 0,
    muted         INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (channel_id, user_id)
);
CREATE INDEX channel_members_by_user ON channel_members(user_id);
