-- Notifications (issue 14): each member's level per channel, and every notification recorded
-- once by its derived id (user, channel, seq), which is what makes delivery exactly once.

CREATE TABLE notify_levels (
    channel_id TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    level      TEXT NOT NULL,
    PRIMARY KEY (channel_id, user_id),
    FOREIGN KEY (channel_id, user_id) REFERENCES channel_members (channel_id, user_id) ON DELETE CASCADE
);

CREATE TABLE notifications (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    channel_id TEXT,
    seq        INTEGER,
    is_mention INTEGER NOT NULL,
    -- Held back by a focus session, not yet delivered.
    held       INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    body       TEXT NOT NULL
);
CREATE INDEX notifications_by_user ON notifications (user_id, created_at, id);
CREATE INDEX notifications_by_channel ON notifications (user_id, channel_id, seq) WHERE is_mention = 1;
