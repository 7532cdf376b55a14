-- Listing at millions of recordings (PostgreSQL twin of
-- sqlite/0005_recording_query_indexes.sql).
CREATE INDEX idx_recordings_appname_start ON recordings (appname, start_ms, file_id);
CREATE INDEX idx_recordings_format_start ON recordings (format, start_ms, file_id);

-- Exact row counts per (domain, app, format), kept by triggers in the writing
-- transaction. Concurrent inserts of one (domain, app, format) on several nodes
-- serialise on its counter row until commit; the group-commit writer keeps that
-- to one wait per batch.
CREATE TABLE recording_counts (
    app     TEXT COLLATE "C" NOT NULL,
    appname TEXT COLLATE "C" NOT NULL,
    format  TEXT COLLATE "C" NOT NULL,
    n       BIGINT NOT NULL,
    PRIMARY KEY (app, appname, format)
);

INSERT INTO recording_counts (app, appname, format, n)
    SELECT app, appname, format, COUNT(*) FROM recordings GROUP BY app, appname, format;

CREATE FUNCTION recording_counts_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO recording_counts (app, appname, format, n)
        VALUES (NEW.app, NEW.appname, NEW.format, 1)
        ON CONFLICT (app, appname, format) DO UPDATE SET n = recording_counts.n + 1;
    RETURN NULL;
END;
$$;

CREATE FUNCTION recording_counts_remove() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE recording_counts SET n = n - 1
        WHERE app = OLD.app AND appname = OLD.appname AND format = OLD.format;
    RETURN NULL;
END;
$$;

CREATE TRIGGER recording_counts_insert AFTER INSERT ON recordings
    FOR EACH ROW EXECUTE FUNCTION recording_counts_add();

CREATE TRIGGER recording_counts_delete AFTER DELETE ON recordings
    FOR EACH ROW EXECUTE FUNCTION recording_counts_remove();

-- Trigger functions run in order of name: `_a_` removes from the old key before
-- `_b_` adds to the new one.
CREATE TRIGGER recording_counts_update_a_old AFTER UPDATE OF app, appname, format ON recordings
    FOR EACH ROW EXECUTE FUNCTION recording_counts_remove();
CREATE TRIGGER recording_counts_update_b_new AFTER UPDATE OF app, appname, format ON recordings
    FOR EACH ROW EXECUTE FUNCTION recording_counts_add();
