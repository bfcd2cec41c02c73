-- Slash commands (issue 15): a workspace's registered /commands and their invocations.
--
-- An invocation is settled once: the handler's answer and the deadline's expiry both move it
-- from 'pending' with one conditional UPDATE, so only the first of them takes effect.

CREATE TABLE slash_commands (
    id           UUID PRIMARY KEY NOT NULL,
    workspace_id UUID NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    description  TEXT NOT NULL,
    bot_id       UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    url          TEXT,                      -- NULL: sent to the bot's WebSocket
    secret       TEXT,                      -- the URL's HMAC key (signing needs it as is)
    created_by   UUID NOT NULL REFERENCES users(id),
    created_at   TIMESTAMPTZ NOT NULL,
    UNIQUE (workspace_id, name)
);

CREATE TABLE command_invocations (
    id           UUID PRIMARY KEY NOT NULL,
    command_id   UUID NOT NULL REFERENCES slash_commands(id) ON DELETE CASCADE,
    command      TEXT NOT NULL,
    workspace_id UUID NOT NULL,
    channel_id   UUID NOT NULL,
    user_id      UUID NOT NULL,
    bot_id       UUID NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    expires_at   TIMESTAMPTZ NOT NULL,
    state        TEXT NOT NULL,             -- pending, answered, expired, failed
    created_at   TIMESTAMPTZ NOT NULL
);
