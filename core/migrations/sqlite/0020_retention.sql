-- Retention (issue 16): a workspace's history policy (no row: keep forever) and the channels
-- under legal hold (exempt from it). Numbered 0020: 0018 and 0019 are left to other work of the
-- same days.

CREATE TABLE workspace_retention (
    workspace_id TEXT PRIMARY KEY NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    days         INTEGER NOT NULL CHECK (days > 0)
);

CREATE TABLE channel_legal_holds (
    channel_id TEXT PRIMARY KEY NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    held_since INTEGER NOT NULL
);
