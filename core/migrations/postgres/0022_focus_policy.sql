-- A workspace's focus policy (issue 14): the hours in which its members may be in focus, set by
-- its owners and admins (no row: any time).

CREATE TABLE workspace_focus_policies (
    workspace_id UUID PRIMARY KEY REFERENCES workspaces (id) ON DELETE CASCADE,
    time_zone    TEXT NOT NULL,
    hours        TEXT NOT NULL      -- JSON WeeklySchedule: the allowed windows
);
