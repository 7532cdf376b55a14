-- Streams whose pushes are refused until a time (Tencent Cloud API 3.0 ForbidLiveStream):
-- one row per push domain, app and stream; ResumeLiveStream deletes it, and a row past its
-- resume time is ignored (and replaced by the next forbid).
CREATE TABLE forbidden_streams (
    app           TEXT COLLATE "C" NOT NULL,
    appname       TEXT COLLATE "C" NOT NULL,
    stream_id     TEXT COLLATE "C" NOT NULL,
    resume_at_ms  BIGINT NOT NULL,
    reason        TEXT    NOT NULL,
    created_at_ms BIGINT NOT NULL,
    PRIMARY KEY (app, appname, stream_id)
);
