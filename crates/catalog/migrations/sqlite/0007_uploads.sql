-- Object storage ([storage] kind = "s3"). Portable SQL: INTEGER → BIGINT in PostgreSQL,
-- held_events.id → BIGSERIAL.
--
-- Where a catalogued recording lives: 'local' (data dir only) or 's3' (in the bucket under
-- object_key; a local copy may remain at `path` when keep_local is on).
ALTER TABLE recordings ADD COLUMN storage TEXT NOT NULL DEFAULT 'local';
ALTER TABLE recordings ADD COLUMN object_key TEXT NULL;

-- A finished, fsynced local file waiting to be uploaded. It holds the whole recordings row
-- it will become (same columns), so the upload's success is one transaction: insert that
-- row, release its held events, delete this one. Retried forever with backoff.
CREATE TABLE uploads (
    file_id            TEXT    NOT NULL PRIMARY KEY,
    sequence           TEXT    NOT NULL,
    app                TEXT    NOT NULL,
    appname            TEXT    NOT NULL,
    stream_id          TEXT    NOT NULL,
    format             TEXT    NOT NULL,
    start_ms           INTEGER NOT NULL,
    end_ms             INTEGER NOT NULL,
    duration_ms        INTEGER NOT NULL,
    size_bytes         INTEGER NOT NULL,
    path               TEXT    NOT NULL,
    video_url          TEXT    NOT NULL,
    stream_param       TEXT    NOT NULL,
    video_codec        TEXT    NOT NULL,
    width              INTEGER NOT NULL,
    height             INTEGER NOT NULL,
    media_start_ms     INTEGER NOT NULL,
    created_at_ms      INTEGER NOT NULL,
    expires_at_ms      INTEGER NULL,
    object_key         TEXT    NOT NULL,
    node               TEXT    NOT NULL,
    attempts           INTEGER NOT NULL DEFAULT 0,
    next_attempt_at_ms INTEGER NOT NULL,
    last_error         TEXT    NULL
);

CREATE INDEX idx_uploads_due ON uploads (next_attempt_at_ms, file_id);

-- Events (event 100) of a file still being uploaded: not deliverable. Moved into the outbox
-- in the transaction that catalogues the uploaded recording, so a callback never announces
-- an object that is not in the bucket yet.
CREATE TABLE held_events (
    id                INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    file_id           TEXT    NOT NULL,
    event_id          TEXT    NOT NULL UNIQUE,
    event_type        INTEGER NOT NULL,
    url               TEXT    NOT NULL,
    body              TEXT    NOT NULL,
    sign_key          TEXT    NOT NULL,
    stream_id         TEXT    NOT NULL,
    max_attempts      INTEGER NOT NULL,
    retry_interval_ms INTEGER NOT NULL,
    created_at_ms     INTEGER NOT NULL
);

CREATE INDEX idx_held_events_file ON held_events (file_id, id);

-- Objects of deleted recordings still to remove from the bucket (the object twin of
-- `garbage`): queued in the transaction that deletes the recordings row.
CREATE TABLE object_garbage (
    file_id       TEXT    NOT NULL PRIMARY KEY,
    object_key    TEXT    NOT NULL,
    created_at_ms INTEGER NOT NULL
);
