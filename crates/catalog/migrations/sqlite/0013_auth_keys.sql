-- Push and play auth keys set over Tencent Cloud API 3.0 (ModifyLivePushAuthKey /
-- ModifyLivePlayAuthKey), one row per kind ('push' | 'play') and domain. A row overrides the
-- configuration file's key for its domain; no row: the file's key holds.
CREATE TABLE auth_keys (
    kind          TEXT    NOT NULL,
    domain        TEXT    NOT NULL,
    enabled       INTEGER NOT NULL,
    master_key    TEXT    NOT NULL,
    backup_key    TEXT    NOT NULL,
    delta_s       INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    PRIMARY KEY (kind, domain)
);
