-- Focus mode (issue 14): each user's settings (time zone, weekly schedule, priority rules,
-- auto-reply), their focus sessions, the notifications a session holds back, the digest each
-- ended session left, and who already got an automatic reply in a session. Numbered 0017: 0016
-- is taken by other work of the same day.

CREATE TABLE focus_settings (
    user_id       UUID PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    time_zone     TEXT NOT NULL,
    schedule      TEXT,              -- JSON WeeklySchedule; NULL: no schedule
    rules         TEXT NOT NULL,     -- JSON FocusRules
    auto_reply    TEXT,
    -- When the schedule next needs a look (a window starts or ends); NULL: at the next tick.
    next_check_at TIMESTAMPTZ
);
CREATE INDEX focus_settings_due ON focus_settings (next_check_at) WHERE schedule IS NOT NULL;

CREATE TABLE focus_sessions (
    id           UUID PRIMARY KEY,
    user_id      UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    source       TEXT NOT NULL,      -- manual | schedule
    started_at   TIMESTAMPTZ NOT NULL,
    ends_at      TIMESTAMPTZ,        -- planned end; NULL: until ended by hand
    ended_at     TIMESTAMPTZ,        -- actual end; NULL while open
    window_start TIMESTAMPTZ         -- the scheduled window it was opened for
);
-- At most one open session per user, and one session per scheduled window.
CREATE UNIQUE INDEX focus_sessions_open ON focus_sessions (user_id) WHERE ended_at IS NULL;
CREATE UNIQUE INDEX focus_sessions_window ON focus_sessions (user_id, window_start)
    WHERE window_start IS NOT NULL;
CREATE INDEX focus_sessions_due ON focus_sessions (ends_at) WHERE ended_at IS NULL;
CREATE INDEX focus_sessions_by_user ON focus_sessions (user_id, started_at);

CREATE TABLE focus_held (
    notification_id UUID PRIMARY KEY REFERENCES notifications (id) ON DELETE CASCADE,
    user_id         UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_id      UUID NOT NULL REFERENCES focus_sessions (id) ON DELETE CASCADE,
    priority        SMALLINT NOT NULL
);
CREATE INDEX focus_held_by_user ON focus_held (user_id);

CREATE TABLE focus_digests (
    id         UUID PRIMARY KEY,
    user_id    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_id UUID NOT NULL REFERENCES focus_sessions (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL,
    body       TEXT NOT NULL         -- JSON FocusDigest, as the frame carries it
);
CREATE INDEX focus_digests_by_user ON focus_digests (user_id, created_at);

CREATE TABLE focus_auto_replies (
    session_id UUID NOT NULL REFERENCES focus_sessions (id) ON DELETE CASCADE,
    sender_id  UUID NOT NULL,
    PRIMARY KEY (session_id, sender_id)
);
