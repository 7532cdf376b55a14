//! Synthetic catalogue for load tests (`livetape bench seed-catalog`): millions of
//! `recordings` rows shaped like the server's own, generated inside SQLite so that
//! a million rows take seconds.
//!
//! Distribution: `streams` streams named `cam-{i}` under three apps (by `i % 10`:
//! 0–5 `live`, 6–8 `edu`, 9 `shop`); a file's stream is `floor(streams · u²)` for a
//! uniform `u` (see [`seed_stream_for`]), so a few streams are busy (stream 0 of
//! 10,000 gets ~1 % of all files) and most are quiet; start times uniform over
//! `days` ending at `end_ms`; 70 % full 30-minute files, the rest 10 s–30 min;
//! 1–4 Mbit/s; 70 % mp4, 20 % flv, 10 % hls; ids `{appid}_{32 hex}`.

use std::time::{Duration, Instant};

use sqlx::{Connection, Row};

use crate::backend::Db;
use crate::catalog::Catalog;
use crate::error::{Result, db_err, to_i64};

/// Stream names are this prefix and the stream's index.
pub const SEED_STREAM_PREFIX: &str = "cam-";
/// Rows per INSERT statement: bounds the materialised random table.
const CHUNK_ROWS: u64 = 100_000;
/// Page cache for the load (KiB, as `PRAGMA cache_size` takes negative values): the
/// file_id primary key is inserted in random order, so it must stay in memory.
const SEED_CACHE_KIB: i64 = 1 << 20;
/// SQLite's default, restored afterwards on the pooled connection.
const DEFAULT_CACHE_KIB: i64 = 2000;

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedSpec {
    pub files: u64,
    /// At least 1.
    pub streams: u32,
    /// Start times are spread over this many days before `end_ms`; at least 1.
    pub days: u32,
    pub end_ms: i64,
    /// `file_id` prefix, as `[server] appid`.
    pub appid: u64,
    /// `video_url` prefix, as `[server] public_url` (no trailing `/`).
    pub public_url: String,
    /// The push domain (`Recording::app`).
    pub domain: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedReport {
    pub inserted: u64,
    /// Rows in `recordings` afterwards.
    pub total_rows: u64,
    pub elapsed: Duration,
}

/// The stream index the seed gives a file drawn with uniform `u` in `[0, 1)`; load
/// generators use it to query streams as often as they record.
pub fn seed_stream_for(u: f64, streams: u32) -> u32 {
    let i = (f64::from(streams) * u * u) as u32;
    i.min(streams.saturating_sub(1))
}

/// `cam-{i}`.
pub fn seed_stream_name(i: u32) -> String {
    format!("{SEED_STREAM_PREFIX}{i}")
}

/// The RTMP app of stream `i`.
pub fn seed_appname(i: u32) -> &'static str {
    match i % 10 {
        0..=5 => "live",
        6..=8 => "edu",
        _ => "shop",
    }
}

/// One chunk: `?1` first row number, `?2` rows, `?3` streams, `?4` end_ms,
/// `?5` span_ms, `?6` appid, `?7` public_url, `?8` domain.
///
/// The random draws are `MATERIALIZED` so each row's draws are made once: a
/// flattened subquery could re-evaluate `random()` at every use.
const SEED_SQL: &str = "
WITH RECURSIVE seq(n) AS (
    SELECT ?1 UNION ALL SELECT n + 1 FROM seq WHERE n + 1 < ?1 + ?2
),
r AS MATERIALIZED (
    SELECT n, random() AS a, random() AS b, random() AS c, random() AS d FROM seq
),
s AS (
    SELECT n, a, b, c, d,
        MIN(CAST(?3 * ((a & 1048575) / 1048576.0) * ((a & 1048575) / 1048576.0) AS INTEGER), ?3 - 1)
            AS st,
        ?4 - (b & 281474976710655) % ?5 AS start_ms,
        CASE WHEN ((a >> 20) & 1023) % 10 < 7 THEN 1800000 - ((a >> 30) & 2047)
             ELSE 10000 + (c & 16777215) % 1790000 END AS dur,
        CASE ((a >> 42) & 255) % 10 WHEN 7 THEN 'flv' WHEN 8 THEN 'flv' WHEN 9 THEN 'hls'
             ELSE 'mp4' END AS fmt,
        800 + ((c >> 24) & 4095) % 3200 AS kbps,
        printf('%d_%016x%016x', ?6, c, d) AS fid
    FROM r
),
t AS (
    SELECT s.*,
        printf('cam-%d', st) AS sid,
        CASE WHEN st % 10 < 6 THEN 'live' WHEN st % 10 < 9 THEN 'edu' ELSE 'shop' END AS appname,
        start_ms + dur + ((d >> 40) & 1023) AS end_ms
    FROM s
)
INSERT INTO recordings (file_id, sequence, app, appname, stream_id, format, start_ms, end_ms,
    duration_ms, size_bytes, path, video_url, stream_param, video_codec, width, height,
    media_start_ms, created_at_ms, expires_at_ms)
SELECT fid,
    printf('%d', (b >> 1) & 9223372036854775807),
    ?8, appname, sid, fmt, start_ms, end_ms, dur, dur * kbps / 8,
    'records/' || appname || '/' || sid || '/'
        || strftime('%Y-%m-%d', start_ms / 1000, 'unixepoch') || '/' || sid || '_'
        || strftime('%Y-%m-%dT%H-%M-', start_ms / 1000, 'unixepoch')
        || printf('%02d.%03dZ', start_ms / 1000 % 60, start_ms % 1000) || '_'
        || strftime('%Y-%m-%dT%H-%M-', end_ms / 1000, 'unixepoch')
        || printf('%02d.%03dZ', end_ms / 1000 % 60, end_ms % 1000) || '_'
        || substr(fid, length(fid) - 31, 8) || '.' || fmt,
    ?7 || '/vod/' || fid || '/' || CASE fmt WHEN 'hls' THEN 'playlist.m3u8' ELSE 'f0.' || fmt END,
    CASE WHEN st % 4 = 0 THEN '' ELSE printf('txSecret=%016x&txTime=%X', d, start_ms / 1000 + 86400) END,
    CASE WHEN st % 7 = 0 THEN 'h265' ELSE 'h264' END,
    CASE st % 3 WHEN 0 THEN 1920 WHEN 1 THEN 1280 ELSE 640 END,
    CASE st % 3 WHEN 0 THEN 1080 WHEN 1 THEN 720 ELSE 360 END,
    d & 65535,
    end_ms + ((d >> 16) & 4095),
    NULL
FROM t
";

/// The same chunk on PostgreSQL (same parameters, same distributions): `random()` is a
/// float there, and a `MATERIALIZED` CTE again draws each row's numbers once.
const SEED_PG_SQL: &str = r#"
WITH r AS MATERIALIZED (
    SELECT n, random() AS a, random() AS b, random() AS c, random() AS d, random() AS e,
        random() AS f, random() AS g, md5(random()::text || n::text) AS hex
    FROM generate_series($1::bigint, $1::bigint + $2::bigint - 1) AS n
),
s AS (
    SELECT n, d, e, g, hex,
        LEAST(floor($3::bigint * a * a)::bigint, $3::bigint - 1) AS st,
        $4::bigint - floor(b * $5::bigint)::bigint AS start_ms,
        CASE WHEN c < 0.7 THEN 1800000 - floor(d * 2048)::bigint
             ELSE 10000 + floor(d * 1790000)::bigint END AS dur,
        CASE WHEN e < 0.2 THEN 'flv' WHEN e < 0.3 THEN 'hls' ELSE 'mp4' END AS fmt,
        800 + floor(f * 3200)::bigint AS kbps
    FROM r
),
t AS (
    SELECT s.*,
        'cam-' || st AS sid,
        CASE WHEN st % 10 < 6 THEN 'live' WHEN st % 10 < 9 THEN 'edu' ELSE 'shop' END AS appname,
        start_ms + dur + floor(g * 1024)::bigint AS end_ms,
        $6::bigint || '_' || hex AS fid
    FROM s
)
INSERT INTO recordings (file_id, sequence, app, appname, stream_id, format, start_ms, end_ms,
    duration_ms, size_bytes, path, video_url, stream_param, video_codec, width, height,
    media_start_ms, created_at_ms, expires_at_ms)
SELECT fid,
    floor(d * 9e18)::bigint::text,
    $8, appname, sid, fmt, start_ms, end_ms, dur, dur * kbps / 8,
    'records/' || appname || '/' || sid || '/'
        || to_char(to_timestamp(start_ms / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD') || '/'
        || sid || '_'
        || to_char(to_timestamp(start_ms / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24-MI-SS.MS"Z"')
        || '_'
        || to_char(to_timestamp(end_ms / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24-MI-SS.MS"Z"')
        || '_' || substr(hex, 1, 8) || '.' || fmt,
    $7 || '/vod/' || fid || '/' || CASE fmt WHEN 'hls' THEN 'playlist.m3u8' ELSE 'f0.' || fmt END,
    CASE WHEN st % 4 = 0 THEN ''
         ELSE 'txSecret=' || substr(hex, 9, 16) || '&txTime=' || upper(to_hex(start_ms / 1000 + 86400)) END,
    CASE WHEN st % 7 = 0 THEN 'h265' ELSE 'h264' END,
    CASE st % 3 WHEN 0 THEN 1920 WHEN 1 THEN 1280 ELSE 640 END,
    CASE st % 3 WHEN 0 THEN 1080 WHEN 1 THEN 720 ELSE 360 END,
    floor(g * 65536)::bigint,
    end_ms + floor(e * 4096)::bigint,
    NULL
FROM t
"#;

impl Catalog {
    /// Appends `spec.files` synthetic recordings in one transaction (see the module
    /// docs for their shape). The `recordings` indexes are dropped for the load and
    /// rebuilt from their own stored definitions (sorting once beats a million
    /// random index inserts), so they stay whatever the migrations made them.
    /// Triggers on `recordings` fire as for any insert. On PostgreSQL the indexes stay
    /// (one transaction of chunked inserts).
    pub async fn seed_synthetic_recordings(&self, spec: &SeedSpec) -> Result<SeedReport> {
        const OP: &str = "seed_synthetic_recordings";
        let files = to_i64(OP, "files", spec.files)?;
        let span_ms = i64::from(spec.days.max(1)) * 86_400_000;
        let appid = to_i64(OP, "appid", spec.appid)?;
        let streams = i64::from(spec.streams.max(1));
        let pool = match &self.db {
            Db::Sqlite(pool) => pool,
            Db::Postgres(pool) => {
                let started = Instant::now();
                let mut tx = pool.begin().await.map_err(db_err(OP, ""))?;
                let mut first = 0i64;
                while first < files {
                    let rows = (files - first).min(CHUNK_ROWS as i64);
                    sqlx::query(SEED_PG_SQL)
                        .bind(first)
                        .bind(rows)
                        .bind(streams)
                        .bind(spec.end_ms)
                        .bind(span_ms)
                        .bind(appid)
                        .bind(&spec.public_url)
                        .bind(&spec.domain)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err(OP, format_args!("rows from {first}")))?;
                    first += rows;
                }
                let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM recordings")
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db_err(OP, "count"))?;
                tx.commit().await.map_err(db_err(OP, "commit"))?;
                return Ok(SeedReport {
                    inserted: spec.files,
                    total_rows: u64::try_from(total).unwrap_or(0),
                    elapsed: started.elapsed(),
                });
            }
        };
        let started = Instant::now();
        let mut conn = pool.acquire().await.map_err(db_err(OP, ""))?;
        for pragma in [
            format!("PRAGMA cache_size = -{SEED_CACHE_KIB}"),
            "PRAGMA temp_store = MEMORY".to_owned(),
        ] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(pragma))
                .execute(&mut *conn)
                .await
                .map_err(db_err(OP, "pragma"))?;
        }
        let mut tx = conn
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db_err(OP, ""))?;
        let indexes: Vec<(String, String)> = sqlx::query(
            "SELECT name, sql FROM sqlite_master \
             WHERE type = 'index' AND tbl_name = 'recordings' AND sql IS NOT NULL",
        )
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err(OP, "indexes"))?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
        for (name, _) in &indexes {
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP INDEX \"{name}\"")))
                .execute(&mut *tx)
                .await
                .map_err(db_err(OP, format_args!("drop {name}")))?;
        }
        let mut first = 0i64;
        while first < files {
            let rows = (files - first).min(CHUNK_ROWS as i64);
            sqlx::query(SEED_SQL)
                .bind(first)
                .bind(rows)
                .bind(streams)
                .bind(spec.end_ms)
                .bind(span_ms)
                .bind(appid)
                .bind(&spec.public_url)
                .bind(&spec.domain)
                .execute(&mut *tx)
                .await
                .map_err(db_err(OP, format_args!("rows from {first}")))?;
            first += rows;
        }
        for (name, sql) in &indexes {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone()))
                .execute(&mut *tx)
                .await
                .map_err(db_err(OP, format_args!("create {name}")))?;
        }
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM recordings")
            .fetch_one(&mut *tx)
            .await
            .map_err(db_err(OP, "count"))?;
        tx.commit().await.map_err(db_err(OP, "commit"))?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "PRAGMA cache_size = -{DEFAULT_CACHE_KIB}"
        )))
        .execute(&mut *conn)
        .await
        .map_err(db_err(OP, "pragma"))?;
        Ok(SeedReport {
            inserted: spec.files,
            total_rows: u64::try_from(total).unwrap_or(0),
            elapsed: started.elapsed(),
        })
    }
}
