-- Slash commands (issue 15): a workspace's registered /commands and their invocations.
--
-- An invocation is settled once: the handler's answer and the deadline's expiry both move it
-- from 'pending' with one conditional UPDATE, so only the first of them takes effect.

CREATE TABLE slash_commands (
    id           TEXT PRIMARY KEY NOT NULL,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    description  TEXT NOT NULL,
    bot_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    url          TEXT,                      -- NULL: sent to the bot's WebSocket
    secret       TEXT,                      -- the URL's HMAC key (signing needs it as is)
    created_by   TEXT NOT NULL REFERENCES users(id),
    created_at   INTEGER NOT NULL,
    UNIQUE (workspace_id, name)
);

CREATE TABLE command_invocations (
    id           TEXT PRIMARY KEY NOT NULL,
    command_id   TEXT NOT NULL REFERENCES slash_commands(id) ON DELETE CASCADE,
    command      TEXT NOT NULL,
    workspace_id TEXT NOT NULL,
    channel_id   TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    bot_id       TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    expires_at   INTEGER NOT NULL,
    state        TEXT NOT NULL,             -- pending, answered, expired, failed
    created_at   INTEGER NOT NULL
);
