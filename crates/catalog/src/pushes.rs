//! Finished push sessions, filtered and paged: the push history Tencent Cloud API 3.0
//! answers `DescribeLiveStreamPublishedList` and `DescribeLiveStreamEventList` from. Only ended
//! sessions are listed (a live one has no end yet; it is in the online list).

use sqlx::{Database, Encode, QueryBuilder, Type};

use crate::catalog::{Catalog, MAX_LIST_LIMIT};
use crate::error::{Result, db_err, to_i64};
use crate::model::PushSession;
use crate::sql::sessions::push_cols;

/// How [`PushQuery::stream_id`] matches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StreamMatch {
    #[default]
    Exact,
    /// The stream name contains the text (case-sensitive on both engines).
    Contains,
}

/// Filters and paging for [`Catalog::list_pushes`]; `None` matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushQuery {
    /// Push domain.
    pub app: Option<String>,
    pub appname: Option<String>,
    pub stream_id: Option<String>,
    pub stream_match: StreamMatch,
    /// Sessions that overlap `[from_ms, to_ms]`: started at or before `to_ms`, ended at or
    /// after `from_ms`.
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    /// By end time, oldest first; otherwise newest first.
    pub ascending: bool,
    pub offset: u64,
    /// Page size; clamped to [`MAX_LIST_LIMIT`].
    pub limit: u32,
}

fn push_filters<DB>(qb: &mut QueryBuilder<DB>, q: &PushQuery, sqlite: bool)
where
    DB: Database,
    String: for<'t> Encode<'t, DB> + Type<DB>,
    i64: for<'t> Encode<'t, DB> + Type<DB>,
{
    qb.push(" WHERE ended_at_ms IS NOT NULL");
    for (col, v) in [("app", &q.app), ("appname", &q.appname)] {
        if let Some(v) = v {
            qb.push(format_args!(" AND {col} = ")).push_bind(v.clone());
        }
    }
    if let Some(s) = &q.stream_id {
        match q.stream_match {
            StreamMatch::Exact => qb.push(" AND stream_id = "),
            // `LIKE` folds ASCII case on SQLite only; these are exact substring tests on both.
            StreamMatch::Contains if sqlite => qb.push(" AND instr(stream_id, "),
            StreamMatch::Contains => qb.push(" AND strpos(stream_id, "),
        };
        qb.push_bind(s.clone());
        if q.stream_match == StreamMatch::Contains {
            qb.push(") > 0");
        }
    }
    if let Some(to) = q.to_ms {
        qb.push(" AND started_at_ms <= ").push_bind(to);
    }
    if let Some(from) = q.from_ms {
        qb.push(" AND ended_at_ms >= ").push_bind(from);
    }
}

impl Catalog {
    /// One page of ended push sessions matching `q` and how many match in all.
    pub async fn list_pushes(&self, q: &PushQuery) -> Result<(u64, Vec<PushSession>)> {
        const OP: &str = "list_pushes";
        let offset = to_i64(OP, "offset", q.offset)?;
        let sqlite = self.backend() == "sqlite";
        let order = if q.ascending { "ASC" } else { "DESC" };
        let (total, rows): (i64, Vec<PushSession>) = on_pool!(&self.db, |pool| {
            let mut count = QueryBuilder::new("SELECT COUNT(*) FROM push_sessions");
            push_filters(&mut count, q, sqlite);
            let total: i64 = count
                .build_query_scalar()
                .fetch_one(pool)
                .await
                .map_err(db_err(OP, ""))?;
            let mut page =
                QueryBuilder::new(concat!("SELECT ", push_cols!(), " FROM push_sessions"));
            push_filters(&mut page, q, sqlite);
            page.push(format_args!(
                " ORDER BY ended_at_ms {order}, sequence {order} LIMIT "
            ))
            .push_bind(i64::from(q.limit.min(MAX_LIST_LIMIT)))
            .push(" OFFSET ")
            .push_bind(offset);
            let rows = page
                .build_query_as()
                .fetch_all(pool)
                .await
                .map_err(db_err(OP, ""))?;
            (total, rows)
        });
        Ok((u64::try_from(total).unwrap_or(0), rows))
    }
}
