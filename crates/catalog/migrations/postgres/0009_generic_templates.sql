-- Templates and rules of any kind in two tables (PostgreSQL twin of
-- sqlite/0009_generic_templates.sql, which explains the design).

CREATE TABLE templates (
    kind          TEXT COLLATE "C" NOT NULL,
    name          TEXT COLLATE "C" NOT NULL,
    -- JSON, e.g. {"name":"hd","formats":["flv","mp4"],"interval_s":600,...}.
    body          TEXT   NOT NULL,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    PRIMARY KEY (kind, name)
);

CREATE TABLE rules (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind          TEXT COLLATE "C" NOT NULL,
    domain        TEXT COLLATE "C" NOT NULL DEFAULT '*',
    app           TEXT COLLATE "C" NOT NULL,
    stream        TEXT COLLATE "C" NOT NULL,
    template      TEXT COLLATE "C" NOT NULL,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    UNIQUE (kind, domain, app, stream),
    FOREIGN KEY (kind, template) REFERENCES templates (kind, name)
        ON DELETE RESTRICT ON UPDATE RESTRICT
);

CREATE INDEX idx_rules_template ON rules (kind, template);

-- The bodies are spelled out: json_build_object and jsonb write `"a" : 1` / `"a": 1`, serde_json
-- writes `"a":1`. to_json(text) escapes as serde_json does (\" \\ \b \f \n \r \t, \u00xx).
INSERT INTO templates (kind, name, body, created_at_ms, updated_at_ms)
SELECT 'record', name,
    '{"name":' || to_json(name)::text
    || ',"formats":[' || COALESCE((SELECT string_agg(to_json(f)::text, ',' ORDER BY n)
        FROM unnest(string_to_array(formats, ',')) WITH ORDINALITY AS u(f, n)
        WHERE f <> ''), '') || ']'
    || ',"interval_s":' || interval_s
    || ',"resume_s":' || resume_s
    || ',"hls_target_s":' || hls_target_s
    || ',"storage_days":' || storage_days
    || '}',
    created_at_ms, updated_at_ms
FROM record_templates;

INSERT INTO templates (kind, name, body, created_at_ms, updated_at_ms)
SELECT 'callback', name,
    '{"name":' || to_json(name)::text
    || ',"key":' || to_json(key)::text
    || ',"stream_begin_url":' || COALESCE(to_json(stream_begin_url)::text, 'null')
    || ',"stream_end_url":' || COALESCE(to_json(stream_end_url)::text, 'null')
    || ',"record_url":' || COALESCE(to_json(record_url)::text, 'null')
    || ',"retry_count":' || retry_count
    || ',"retry_interval_s":' || retry_interval_s
    || '}',
    created_at_ms, updated_at_ms
FROM callback_templates;

-- Ids are kept; callback rule ids move up past record_rules' only if the two collide (see the
-- SQLite twin).
CREATE TEMPORARY TABLE rule_id_shift AS
SELECT CASE WHEN EXISTS (SELECT 1 FROM callback_rules AS c JOIN record_rules AS r ON r.id = c.id)
    THEN GREATEST((SELECT MAX(id) FROM record_rules),
        pg_sequence_last_value(pg_get_serial_sequence('record_rules', 'id')::regclass))
    ELSE 0 END AS shift;

INSERT INTO rules (id, kind, domain, app, stream, template, created_at_ms, updated_at_ms)
OVERRIDING SYSTEM VALUE
SELECT id, 'record', '*', app, stream, template, created_at_ms, updated_at_ms
FROM record_rules;

INSERT INTO rules (id, kind, domain, app, stream, template, created_at_ms, updated_at_ms)
OVERRIDING SYSTEM VALUE
SELECT id + (SELECT shift FROM rule_id_shift), 'callback', '*', app, '*', template,
    created_at_ms, updated_at_ms
FROM callback_rules;

-- The identity continues above every id either old table ever handed out.
SELECT setval(pg_get_serial_sequence('rules', 'id'), GREATEST(m, 1), m > 0)
FROM (SELECT COALESCE(GREATEST(
    (SELECT MAX(id) FROM rules),
    pg_sequence_last_value(pg_get_serial_sequence('record_rules', 'id')::regclass),
    pg_sequence_last_value(pg_get_serial_sequence('callback_rules', 'id')::regclass)
        + (SELECT shift FROM rule_id_shift)), 0) AS m) AS last;

DROP TABLE rule_id_shift;

DROP TABLE record_rules;
DROP TABLE callback_rules;
DROP TABLE record_templates;
DROP TABLE callback_templates;
