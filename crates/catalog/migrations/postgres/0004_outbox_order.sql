-- Strict per-stream delivery order (PostgreSQL twin of sqlite/0004_outbox_order.sql).
CREATE INDEX idx_outbox_stream_state_id ON outbox (stream_id, state, id);
