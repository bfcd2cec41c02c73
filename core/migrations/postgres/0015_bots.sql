-- Bots (issue 15). A bot is a `users` row that cannot log in (its password hash is no PHC string)
-- plus this record; a bot token is a `sessions` row (same id, never refreshable) plus its
-- `bot_tokens` row, so revoking a token is revoking that session. Numbered after the issue so
-- that migrations added meanwhile by other work do not collide with it.

CREATE TABLE bots (
    user_id      UUID PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    workspace_id UUID NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    description  TEXT NOT NULL DEFAULT '',
    created_by   UUID NOT NULL REFERENCES users(id),
    created_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX bots_by_workspace ON bots(workspace_id);

CREATE TABLE bot_tokens (
    id         UUID PRIMARY KEY REFERENCES sessions(id) ON DELETE CASCADE,
    bot_id     UUID NOT NULL REFERENCES bots(user_id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    token_hash TEXT NOT NULL,                -- SHA-256 of the whole token
    scopes     TEXT NOT NULL,                -- space-separated scope names
    created_by UUID NOT NULL REFERENCES users(id),
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX bot_tokens_by_bot ON bot_tokens(bot_id);

CREATE TABLE incoming_webhooks (
    id           UUID PRIMARY KEY,
    workspace_id UUID NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    channel_id   UUID NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    bot_id       UUID NOT NULL REFERENCES bots(user_id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    secret_hash  TEXT NOT NULL,              -- SHA-256 of the URL's secret
    created_by   UUID NOT NULL REFERENCES users(id),
    created_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX incoming_webhooks_by_channel ON incoming_webhooks(channel_id);
