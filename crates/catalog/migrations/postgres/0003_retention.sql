-- Retention (PostgreSQL twin of sqlite/0003_retention.sql).
ALTER TABLE recordings ADD COLUMN expires_at_ms BIGINT NULL;

CREATE INDEX idx_recordings_expires ON recordings (expires_at_ms, file_id)
    WHERE expires_at_ms IS NOT NULL;

CREATE TABLE garbage (
    file_id       TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    path          TEXT   NOT NULL,
    created_at_ms BIGINT NOT NULL
);
