-- Strict per-stream delivery order: an outbox row is due only when no earlier row of its
-- stream is still pending. This index answers that per-row check ("any pending row of this
-- stream with a smaller id?") with one index seek instead of a scan of the pending rows.
CREATE INDEX idx_outbox_stream_state_id ON outbox (stream_id, state, id);
