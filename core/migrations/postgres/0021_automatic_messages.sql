-- Focus mode auto-replies (issue 14): a message the server sent on its author's behalf is marked
-- `automatic` in history as on the wire (chorus_protocol::MessageEvent::automatic). Rows written
-- before this are messages their authors typed. Only PostgreSQL history has a `messages` table;
-- the embedded history (redb) keeps the mark as a flag of its record (stored_event.rs).

ALTER TABLE messages ADD COLUMN IF NOT EXISTS automatic BOOLEAN NOT NULL DEFAULT false;
