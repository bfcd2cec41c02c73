-- Gateways periodically ask for the sessions revoked and the users disabled since a moment
-- (MetadataStore::access_revoked_since), to close sockets an access notice did not reach. Partial
-- indexes keep that a short range read: only rows with the mark are in them.

CREATE INDEX IF NOT EXISTS sessions_by_revoked_at ON sessions (revoked_at)
    WHERE revoked_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS users_by_disabled_at ON users (disabled_at)
    WHERE disabled_at IS NOT NULL;
