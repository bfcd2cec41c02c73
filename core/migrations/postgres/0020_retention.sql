-- Retention (issue 16): a workspace's history policy (no row: keep forever) and the channels
-- under legal hold (exempt from it). Numbered 0020: 0018 and 0019 are left to other work of the
-- same days.

CREATE TABLE workspace_retention (
    workspace_id UUID PRIMARY KEY REFERENCES workspaces (id) ON DELETE CASCADE,
    days         INTEGER NOT NULL CHECK (days > 0)
);

CREATE TABLE channel_legal_holds (
    channel_id UUID PRIMARY KEY REFERENCES channels (id) ON DELETE CASCADE,
    held_since TIMESTAMPTZ NOT NULL
);
