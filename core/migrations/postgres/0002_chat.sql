-- Profiles, disabled accounts, invitations, direct messages and the audit log.

ALTER TABLE users
    ADD COLUMN avatar_url  TEXT,
    ADD COLUMN time_zone   TEXT,                  -- IANA name, e.g. Europe/Paris
    ADD COLUMN disabled_at TIMESTAMPTZ;

CREATE TABLE workspace_invites (
    id           UUID PRIMARY KEY,
    workspace_id UUID NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    email        TEXT NOT NULL,                   -- stored lowercase
    role         TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'guest')),
    token_hash   TEXT NOT NULL UNIQUE,            -- SHA-256 of the token; the token is never stored
    invited_by   UUID NOT NULL REFERENCES users(id),
    created_at   TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL,
    accepted_by  UUID REFERENCES users(id),
    accepted_at  TIMESTAMPTZ
);
CREATE INDEX workspace_invites_by_workspace ON workspace_invites(workspace_id, created_at);

-- The sorted member ids of a direct-message channel joined by ','; NULL for other channels.
-- Unique so that two concurrent first messages cannot open two channels for the same people.
ALTER TABLE channels ADD COLUMN dm_key TEXT;
ALTER TABLE channels ADD CONSTRAINT channels_dm_key_unique UNIQUE (workspace_id, dm_key);

-- No foreign keys: the log outlives the users and workspaces it mentions.
CREATE TABLE audit_log (
    id           UUID PRIMARY KEY,                -- UUIDv7: sorts by time
    workspace_id UUID,                            -- NULL for account actions (logins)
    actor_id     UUID,
    action       TEXT NOT NULL,
    target_id    UUID,
    details      JSONB NOT NULL,
    at           TIMESTAMPTZ NOT NULL
);
CREATE INDEX audit_log_by_workspace ON audit_log(workspace_id, id);
CREATE INDEX audit_log_account_by_actor ON audit_log(actor_id, id) WHERE workspace_id IS NULL;
