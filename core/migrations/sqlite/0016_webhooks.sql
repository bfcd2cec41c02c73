-- Outgoing webhooks (issue 15): event subscriptions and their durable delivery queue.
--
-- A subscription sends the events of some kinds in some channels to a URL. Each (subscription,
-- channel) has a cursor: the last seq of the channel already turned into deliveries. The
-- enqueuer moves a cursor and inserts the deliveries it covers in one transaction, with the
-- cursor's old value as a condition, so a crash loses nothing (the cursor did not move) and two
-- enqueuers never enqueue an event twice (one of them finds the cursor moved; and (subscription,
-- channel, seq) is unique anyway). Deliveries are the queue and the delivery log at once.

CREATE TABLE event_subscriptions (
    id           TEXT PRIMARY KEY NOT NULL,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    url          TEXT NOT NULL,
    secret       TEXT NOT NULL,              -- the HMAC key: kept as is, deliveries are signed with it
    events       TEXT NOT NULL,              -- space-separated event kinds
    created_by   TEXT NOT NULL REFERENCES users(id),
    created_at   INTEGER NOT NULL
);
CREATE INDEX event_subscriptions_by_workspace ON event_subscriptions(workspace_id);

CREATE TABLE event_subscription_channels (
    subscription_id TEXT NOT NULL REFERENCES event_subscriptions(id) ON DELETE CASCADE,
    channel_id      TEXT NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    cursor          INTEGER NOT NULL,        -- last seq turned into deliveries
    PRIMARY KEY (subscription_id, channel_id)
);

CREATE TABLE webhook_deliveries (
    id               TEXT PRIMARY KEY NOT NULL,   -- UUIDv7: creation order
    subscription_id  TEXT NOT NULL REFERENCES event_subscriptions(id) ON DELETE CASCADE,
    channel_id       TEXT NOT NULL,
    seq              INTEGER NOT NULL,
    kind             TEXT NOT NULL,
    body             TEXT NOT NULL,               -- the JSON sent, fixed at enqueue time
    status           TEXT NOT NULL,               -- pending, delivered, failed
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    leased_until     INTEGER NOT NULL DEFAULT 0,  -- a sender holds it until then
    last_status_code INTEGER,
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    UNIQUE (subscription_id, channel_id, seq)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(subscription_id, status, next_attempt_at);
CREATE INDEX webhook_deliveries_log ON webhook_deliveries(subscription_id, id);
