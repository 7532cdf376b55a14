-- Every node looks for open push sessions without a live stream lease every lease_s / 3
-- (orphaned pushes of dead nodes); this keeps that to the handful of open rows instead of a
-- scan of every push ever made.
CREATE INDEX idx_push_sessions_open ON push_sessions (started_at_ms) WHERE ended_at_ms IS NULL;
