-- Several nodes on one catalogue (used with PostgreSQL; SQLite gets the same schema so one
-- conformance suite covers both).
--
-- Outbox claims: a node takes due events by setting claimed_by/claim_until_ms in one
-- statement; nobody else takes them until the claim expires (a dead node's events are
-- taken over then). Marking an event delivered or failed clears its claim, so only
-- in-flight rows carry one and the partial index stays small.
ALTER TABLE outbox ADD COLUMN claimed_by TEXT NULL;
ALTER TABLE outbox ADD COLUMN claim_until_ms INTEGER NULL;
CREATE INDEX idx_outbox_claimed ON outbox (claim_until_ms) WHERE claim_until_ms IS NOT NULL;

-- Stream leases: one publishing node per stream key across the cluster. A lease is
-- renewed while the push lasts and taken over only once expired.
CREATE TABLE stream_leases (
    stream_key    TEXT NOT NULL PRIMARY KEY,
    node          TEXT NOT NULL,
    expires_at_ms INTEGER NOT NULL
);
CREATE INDEX idx_stream_leases_node ON stream_leases (node);
