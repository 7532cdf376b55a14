//! Streams forbidden to push until a time (Tencent Cloud API 3.0 `ForbidLiveStream` /
//! `ResumeLiveStream`). Kept in the catalogue so a ban survives a restart and holds on every
//! node; each publish asks [`Catalog::forbidden`] before it takes the stream.

use crate::catalog::Catalog;
use crate::error::{Result, db_err};

/// One forbidden stream.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ForbiddenStream {
    /// Push domain.
    pub app: String,
    pub appname: String,
    pub stream_id: String,
    pub resume_at_ms: i64,
    pub reason: String,
    pub created_at_ms: i64,
}

impl Catalog {
    /// Forbids `app/appname/stream_id` until `resume_at_ms` (replacing an earlier ban).
    pub async fn forbid_stream(&self, f: &ForbiddenStream) -> Result<()> {
        on_pool!(&self.db, |pool| sqlx::query(
            "INSERT INTO forbidden_streams \
             (app, appname, stream_id, resume_at_ms, reason, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (app, appname, stream_id) DO UPDATE SET \
             resume_at_ms = excluded.resume_at_ms, reason = excluded.reason, \
             created_at_ms = excluded.created_at_ms"
        )
        .bind(&f.app)
        .bind(&f.appname)
        .bind(&f.stream_id)
        .bind(f.resume_at_ms)
        .bind(&f.reason)
        .bind(f.created_at_ms)
        .execute(pool)
        .await
        .map(|_| ()))
        .map_err(db_err(
            "forbid_stream",
            format_args!("{}/{}/{}", f.app, f.appname, f.stream_id),
        ))
    }

    /// Lifts a ban; `false` if there was none.
    pub async fn resume_stream(&self, app: &str, appname: &str, stream_id: &str) -> Result<bool> {
        on_pool!(&self.db, |pool| sqlx::query(
            "DELETE FROM forbidden_streams WHERE app = $1 AND appname = $2 AND stream_id = $3"
        )
        .bind(app)
        .bind(appname)
        .bind(stream_id)
        .execute(pool)
        .await
        .map(|d| d.rows_affected() > 0))
        .map_err(db_err(
            "resume_stream",
            format_args!("{app}/{appname}/{stream_id}"),
        ))
    }

    /// The ban on `app/appname/stream_id` that still holds at `now_ms`, if any.
    pub async fn forbidden(
        &self,
        app: &str,
        appname: &str,
        stream_id: &str,
        now_ms: i64,
    ) -> Result<Option<ForbiddenStream>> {
        on_pool!(&self.db, |pool| sqlx::query_as(
            "SELECT app, appname, stream_id, resume_at_ms, reason, created_at_ms \
             FROM forbidden_streams \
             WHERE app = $1 AND appname = $2 AND stream_id = $3 AND resume_at_ms > $4"
        )
        .bind(app)
        .bind(appname)
        .bind(stream_id)
        .bind(now_ms)
        .fetch_optional(pool)
        .await)
        .map_err(db_err(
            "forbidden",
            format_args!("{app}/{appname}/{stream_id}"),
        ))
    }
}
