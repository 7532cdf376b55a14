-- Listing at millions of recordings (Live_Tape_GetFilelist, /v1/recordings).
--
-- `?app=` alone, newest first: without this index SQLite read the app's rows from
-- idx_recordings_appname_stream_start and sorted all of them (a third of the table)
-- per page. With it the page is a walk of the index in order, and a window count on
-- an app is an index-only range.
CREATE INDEX idx_recordings_appname_start ON recordings (appname, start_ms, file_id);
-- The same for `?format=`: the page no longer filters rows fetched from the table,
-- and a format + window count stays inside the index.
CREATE INDEX idx_recordings_format_start ON recordings (format, start_ms, file_id);

-- Exact row counts per (domain, app, format), kept by triggers in the writing
-- transaction. A listing total without a stream or time filter (the REST API's
-- unfiltered first page) is a SUM over a handful of rows here instead of a count
-- of every index entry (~60 ms at a million files; a full table scan with `format`).
CREATE TABLE recording_counts (
    app     TEXT    NOT NULL,
    appname TEXT    NOT NULL,
    format  TEXT    NOT NULL,
    n       INTEGER NOT NULL,
    PRIMARY KEY (app, appname, format)
) WITHOUT ROWID;

INSERT INTO recording_counts (app, appname, format, n)
    SELECT app, appname, format, COUNT(*) FROM recordings GROUP BY app, appname, format;

CREATE TRIGGER recording_counts_insert AFTER INSERT ON recordings BEGIN
    INSERT INTO recording_counts (app, appname, format, n)
        VALUES (NEW.app, NEW.appname, NEW.format, 1)
        ON CONFLICT (app, appname, format) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER recording_counts_delete AFTER DELETE ON recordings BEGIN
    UPDATE recording_counts SET n = n - 1
        WHERE app = OLD.app AND appname = OLD.appname AND format = OLD.format;
END;

CREATE TRIGGER recording_counts_update AFTER UPDATE OF app, appname, format ON recordings BEGIN
    UPDATE recording_counts SET n = n - 1
        WHERE app = OLD.app AND appname = OLD.appname AND format = OLD.format;
    INSERT INTO recording_counts (app, appname, format, n)
        VALUES (NEW.app, NEW.appname, NEW.format, 1)
        ON CONFLICT (app, appname, format) DO UPDATE SET n = n + 1;
END;
