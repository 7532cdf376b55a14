-- Templates and rules of any kind in two tables (SQLite; PostgreSQL twin in
-- postgres/0009_generic_templates.sql). A kind ('record', 'callback', ...) is the server's:
-- the catalogue stores a template's body as the JSON serde makes of the server's type and
-- never looks inside, so a new kind needs no schema change. What 0002 enforced per table
-- holds per kind: names are unique, a rule names an existing template of its own kind, and a
-- template bound by a rule can be neither deleted nor renamed (RESTRICT).

CREATE TABLE templates (
    kind          TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    -- JSON, e.g. {"name":"hd","formats":["flv","mp4"],"interval_s":600,...}.
    body          TEXT    NOT NULL,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    PRIMARY KEY (kind, name)
);

CREATE TABLE rules (
    -- Only grows: id order is creation order (the tie-break between equally specific rules).
    id            INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    kind          TEXT    NOT NULL,
    -- Glob patterns. Record rules were keyed by app + stream, callback rules by app alone
    -- (stream '*'); no rule had a domain before ('*').
    domain        TEXT    NOT NULL DEFAULT '*',
    app           TEXT    NOT NULL,
    stream        TEXT    NOT NULL,
    template      TEXT    NOT NULL,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    UNIQUE (kind, domain, app, stream),
    FOREIGN KEY (kind, template) REFERENCES templates (kind, name)
        ON DELETE RESTRICT ON UPDATE RESTRICT
);

CREATE INDEX idx_rules_template ON rules (kind, template);

-- Record templates: `formats` was comma-separated (empty items skipped, as the reader did).
-- json_object writes minified JSON in argument order: what serde_json writes for the server's
-- struct with these fields in this order.
INSERT INTO templates (kind, name, body, created_at_ms, updated_at_ms)
SELECT 'record', name,
    json_object(
        'name', name,
        'formats', json((SELECT json_group_array(value ORDER BY key)
            FROM json_each('[' || replace(json_quote(formats), ',', '","') || ']')
            WHERE value <> '')),
        'interval_s', interval_s,
        'resume_s', resume_s,
        'hls_target_s', hls_target_s,
        'storage_days', storage_days),
    created_at_ms, updated_at_ms
FROM record_templates;

INSERT INTO templates (kind, name, body, created_at_ms, updated_at_ms)
SELECT 'callback', name,
    json_object(
        'name', name,
        'key', key,
        'stream_begin_url', stream_begin_url,
        'stream_end_url', stream_end_url,
        'record_url', record_url,
        'retry_count', retry_count,
        'retry_interval_s', retry_interval_s),
    created_at_ms, updated_at_ms
FROM callback_templates;

-- Ids are kept. The two old tables numbered their rules independently, so where a callback
-- rule's id is also a record rule's, every callback rule id moves up by the highest id
-- record_rules ever handed out (their order, the precedence tie-break, is kept). When the ids
-- do not collide, none moves.
INSERT INTO rules (id, kind, domain, app, stream, template, created_at_ms, updated_at_ms)
SELECT id, 'record', '*', app, stream, template, created_at_ms, updated_at_ms
FROM record_rules;

INSERT INTO rules (id, kind, domain, app, stream, template, created_at_ms, updated_at_ms)
SELECT id + (CASE WHEN EXISTS (SELECT 1 FROM callback_rules AS c JOIN record_rules AS r ON r.id = c.id)
        THEN (SELECT MAX(n) FROM (SELECT MAX(id) AS n FROM record_rules
              UNION ALL SELECT seq FROM sqlite_sequence WHERE name = 'record_rules'))
        ELSE 0 END),
    'callback', '*', app, '*', template, created_at_ms, updated_at_ms
FROM callback_rules;

-- Nor is a deleted rule's id handed out again: the new sequence starts above every id either
-- old table ever gave.
DELETE FROM sqlite_sequence WHERE name = 'rules';
INSERT INTO sqlite_sequence (name, seq)
SELECT 'rules', MAX(n) FROM (
    SELECT MAX(id) AS n FROM rules
    UNION ALL SELECT seq FROM sqlite_sequence WHERE name = 'record_rules'
    UNION ALL SELECT seq + (CASE WHEN EXISTS (SELECT 1 FROM callback_rules AS c JOIN record_rules AS r ON r.id = c.id)
            THEN (SELECT MAX(n) FROM (SELECT MAX(id) AS n FROM record_rules
                  UNION ALL SELECT seq FROM sqlite_sequence WHERE name = 'record_rules'))
            ELSE 0 END)
        FROM sqlite_sequence WHERE name = 'callback_rules')
HAVING MAX(n) IS NOT NULL;

-- Rules first: they reference the templates. No trigger or view refers to these tables; their
-- indexes go with them.
DROP TABLE record_rules;
DROP TABLE callback_rules;
DROP TABLE record_templates;
DROP TABLE callback_templates;
