-- Run-time editable record/callback templates and the rules that bind them
-- (Tencent §3.1–3.2, §1.4). Times are epoch milliseconds. A template bound by
-- a rule cannot be deleted (ON DELETE RESTRICT), as at Tencent, and cannot be
-- renamed (templates are addressed by name; ON UPDATE RESTRICT).

CREATE TABLE record_templates (
    name          TEXT    NOT NULL PRIMARY KEY,
    -- Comma-separated format names, e.g. `flv,mp4`.
    formats       TEXT    NOT NULL,
    interval_s    INTEGER NOT NULL,
    hls_target_s  INTEGER NOT NULL,
    resume_s      INTEGER NOT NULL,
    -- 0 = keep forever.
    storage_days  INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL
);

CREATE TABLE record_rules (
    id            INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    app           TEXT    NOT NULL,
    stream        TEXT    NOT NULL,
    template      TEXT    NOT NULL
        REFERENCES record_templates (name) ON DELETE RESTRICT ON UPDATE RESTRICT,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    -- Tencent keys a record rule by domain + app + stream.
    UNIQUE (app, stream)
);

CREATE INDEX idx_record_rules_template ON record_rules (template);

CREATE TABLE callback_templates (
    name             TEXT    NOT NULL PRIMARY KEY,
    key              TEXT    NOT NULL,
    stream_begin_url TEXT    NULL,
    stream_end_url   TEXT    NULL,
    record_url       TEXT    NULL,
    retry_count      INTEGER NOT NULL,
    retry_interval_s INTEGER NOT NULL,
    created_at_ms    INTEGER NOT NULL,
    updated_at_ms    INTEGER NOT NULL
);

CREATE TABLE callback_rules (
    id            INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    app           TEXT    NOT NULL,
    template      TEXT    NOT NULL
        REFERENCES callback_templates (name) ON DELETE RESTRICT ON UPDATE RESTRICT,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    -- Tencent binds callbacks per domain + app.
    UNIQUE (app)
);

CREATE INDEX idx_callback_rules_template ON callback_rules (template);

-- One-row-per-flag table for one-shot initialisation, e.g. `templates_seeded`.
CREATE TABLE catalog_meta (
    key   TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
);
