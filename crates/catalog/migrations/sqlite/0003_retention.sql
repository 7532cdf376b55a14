-- Retention (Tencent StorageTime and a size budget per data dir).
-- expires_at_ms: when the recording may be deleted (epoch ms); NULL = kept forever.
ALTER TABLE recordings ADD COLUMN expires_at_ms INTEGER NULL;

-- Partial: rows kept forever are never candidates, so they stay out of the index.
-- `expires_at_ms <= ?` implies NOT NULL, so SQLite uses it for the expiry scan.
CREATE INDEX idx_recordings_expires ON recordings (expires_at_ms, file_id)
    WHERE expires_at_ms IS NOT NULL;

-- Files whose recordings row is gone but which may still be on disk. A row is
-- inserted in the same transaction that deletes the recording and removed once
-- the file (or HLS directory) is gone, so a crash in between leaves a row to
-- finish from, never an orphan file nobody knows about.
CREATE TABLE garbage (
    file_id       TEXT    NOT NULL PRIMARY KEY,
    path          TEXT    NOT NULL,
    created_at_ms INTEGER NOT NULL
);
