-- Run-time editable record/callback templates and the rules that bind them
-- (PostgreSQL twin of sqlite/0002_templates.sql).

CREATE TABLE record_templates (
    name          TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    -- Comma-separated format names, e.g. `flv,mp4`.
    formats       TEXT   NOT NULL,
    interval_s    BIGINT NOT NULL,
    hls_target_s  BIGINT NOT NULL,
    resume_s      BIGINT NOT NULL,
    -- 0 = keep forever.
    storage_days  BIGINT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);

CREATE TABLE record_rules (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    app           TEXT COLLATE "C" NOT NULL,
    stream        TEXT COLLATE "C" NOT NULL,
    template      TEXT COLLATE "C" NOT NULL
        REFERENCES record_templates (name) ON DELETE RESTRICT ON UPDATE RESTRICT,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    UNIQUE (app, stream)
);

CREATE INDEX idx_record_rules_template ON record_rules (template);

CREATE TABLE callback_templates (
    name             TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    key              TEXT   NOT NULL,
    stream_begin_url TEXT   NULL,
    stream_end_url   TEXT   NULL,
    record_url       TEXT   NULL,
    retry_count      BIGINT NOT NULL,
    retry_interval_s BIGINT NOT NULL,
    created_at_ms    BIGINT NOT NULL,
    updated_at_ms    BIGINT NOT NULL
);

CREATE TABLE callback_rules (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    app           TEXT COLLATE "C" NOT NULL,
    template      TEXT COLLATE "C" NOT NULL
        REFERENCES callback_templates (name) ON DELETE RESTRICT ON UPDATE RESTRICT,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    UNIQUE (app)
);

CREATE INDEX idx_callback_rules_template ON callback_rules (template);

CREATE TABLE catalog_meta (
    key   TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
);
