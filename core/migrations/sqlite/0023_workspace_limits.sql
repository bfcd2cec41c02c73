-- Workspace limits (issue 16, plans): set per workspace by the instance admin; no row, or a NULL
-- column, means no limit. Numbered 0023 after 0022 (focus policy).

CREATE TABLE workspace_limits (
    workspace_id        TEXT PRIMARY KEY NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    max_members         INTEGER CHECK (max_members > 0),
    max_channels        INTEGER CHECK (max_channels > 0),
    messages_per_minute INTEGER CHECK (messages_per_minute > 0),
    max_retention_days  INTEGER CHECK (max_retention_days > 0)
);
