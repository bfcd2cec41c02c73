-- Event kinds in history: edits, deletions, reactions and thread replies are rows of `messages`
-- too, each with its own seq (see chorus_protocol::EventKind). Rows written before this keep the
-- defaults: plain top-level messages with no mentions.
--
-- Numbered 0003 so it sorts after 0002_chat.sql (the chat metadata migration); it touches only the
-- `messages` table. IF NOT EXISTS keeps it harmless on a database that already has the columns.

ALTER TABLE messages
    ADD COLUMN IF NOT EXISTS kind       TEXT   NOT NULL DEFAULT 'message',
    ADD COLUMN IF NOT EXISTS target_seq BIGINT NULL,      -- edit, delete, reaction_*: the message
    ADD COLUMN IF NOT EXISTS parent_seq BIGINT NULL,      -- thread reply: the parent message
    ADD COLUMN IF NOT EXISTS emoji      TEXT   NULL,      -- reaction_*
    ADD COLUMN IF NOT EXISTS mentions   UUID[] NOT NULL DEFAULT '{}';

-- `related`: what acts on or replies to given messages, without scanning the channel.
CREATE INDEX IF NOT EXISTS messages_by_target ON messages (channel_id, target_seq)
    WHERE target_seq IS NOT NULL;
CREATE INDEX IF NOT EXISTS messages_by_parent ON messages (channel_id, parent_seq)
    WHERE parent_seq IS NOT NULL;
-- `message_page` and `count_messages_after`: messages only, in seq order, past any reactions.
CREATE INDEX IF NOT EXISTS messages_only ON messages (channel_id, seq)
    WHERE kind = 'message';
