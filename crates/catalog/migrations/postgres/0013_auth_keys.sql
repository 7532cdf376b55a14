-- Push and play auth keys set over Tencent Cloud API 3.0 (ModifyLivePushAuthKey /
-- ModifyLivePlayAuthKey), one row per kind ('push' | 'play') and domain. A row overrides the
-- configuration file's key for its domain; no row: the file's key holds.
CREATE TABLE auth_keys (
    kind          TEXT COLLATE "C" NOT NULL,
    domain        TEXT COLLATE "C" NOT NULL,
    enabled       BIGINT  NOT NULL,
    master_key    TEXT    NOT NULL,
    backup_key    TEXT    NOT NULL,
    delta_s       BIGINT  NOT NULL,
    updated_at_ms BIGINT  NOT NULL,
    PRIMARY KEY (kind, domain)
);
