-- Profiles, disabled accounts, invitations, direct messages and the audit log.

ALTER TABLE users ADD COLUMN avatar_url TEXT;
ALTER TABLE users ADD COLUMN time_zone TEXT;          -- IANA name, e.g. Europe/Paris
ALTER TABLE users ADD COLUMN disabled_at INTEGER;

CREATE TABLE workspace_invites (
    id           TEXT PRIMARY KEY NOT NULL,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    email        TEXT NOT NULL,                   -- stored lowercase
    role         TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'guest')),
    token_hash   TEXT NOT NULL UNIQUE,            -- SHA-256 of the token; the token is never stored
    invited_by   TEXT NOT NULL REFERENCES users(id),
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    accepted_by  TEXT REFERENCES users(id),
    accepted_at  INTEGER
);
CREATE INDEX workspace_invites_by_workspace ON workspace_invites(workspace_id, created_at);

-- The sorted member ids of a direct-message channel joined by ','; NULL for other channels.
-- Unique so that two concurrent first messages cannot open two channels for the same people.
ALTER TABLE channels ADD COLUMN dm_key TEXT;
CREATE UNIQUE INDEX channels_by_dm_key ON channels(workspace_id, dm_key);

-- No foreign keys: the log outlives the users and workspaces it mentions.
CREATE TABLE audit_log (
    id           TEXT PRIMARY KEY NOT NULL,       -- UUIDv7: sorts by time
    workspace_id TEXT,                            -- NULL for account actions (logins)
    actor_id     TEXT,
    action       TEXT NOT NULL,
    target_id    TEXT,
    details      TEXT NOT NULL,                   -- JSON
    at           INTEGER NOT NULL
);
CREATE INDEX audit_log_by_workspace ON audit_log(workspace_id, id);
CREATE INDEX audit_log_account_by_actor ON audit_log(actor_id, id) WHERE workspace_id IS NULL;
