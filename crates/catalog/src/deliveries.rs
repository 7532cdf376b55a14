//! The outbox as the console sees it: a filtered, paged listing of callback deliveries and
//! "retry now". The notifier's own queries (due rows, per-stream order) live in `sql/outbox.rs`.

use sqlx::{Database, Encode, QueryBuilder, Type};

use crate::backend::Begin;
use crate::catalog::{Catalog, MAX_LIST_LIMIT};
use crate::error::{CatalogError, Result, db_err, to_i64};
use crate::model::{OutboxEvent, OutboxState};
use crate::sql::outbox::outbox_cols as delivery_cols;

const GET_SQL: &str = concat!("SELECT ", delivery_cols!(), " FROM outbox WHERE id = $1");

/// Filters and paging for [`Catalog::list_deliveries`]; `None` matches everything.
/// Rows come newest first (by id, i.e. creation order).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryQuery {
    pub state: Option<OutboxState>,
    pub stream_id: Option<String>,
    pub event_type: Option<i32>,
    /// Rows created in `[from, to]` (epoch ms).
    pub created_ms: Option<(i64, i64)>,
    /// Only rows an attempt was made for (the delivery log Tencent's
    /// `DescribeCallbackRecordsList` shows).
    pub attempted: bool,
    /// `Some(true)`: delivered rows only; `Some(false)`: rows not delivered.
    pub delivered: Option<bool>,
    pub offset: u64,
    /// Page size; clamped to [`MAX_LIST_LIMIT`].
    pub limit: u32,
}

fn push_filters<DB>(qb: &mut QueryBuilder<DB>, q: &DeliveryQuery)
where
    DB: Database,
    String: for<'t> Encode<'t, DB> + Type<DB>,
    &'static str: for<'t> Encode<'t, DB> + Type<DB>,
    i32: for<'t> Encode<'t, DB> + Type<DB>,
    i64: for<'t> Encode<'t, DB> + Type<DB>,
{
    qb.push(" WHERE 1 = 1");
    if let Some(state) = q.state {
        qb.push(" AND state = ").push_bind(state.as_str());
    }
    if let Some(stream) = &q.stream_id {
        qb.push(" AND stream_id = ").push_bind(stream.clone());
    }
    if let Some(t) = q.event_type {
        qb.push(" AND event_type = ").push_bind(t);
    }
    if let Some((from, to)) = q.created_ms {
        qb.push(" AND created_at_ms >= ").push_bind(from);
        qb.push(" AND created_at_ms <= ").push_bind(to);
    }
    if q.attempted {
        qb.push(" AND (attempts > 0 OR state = 'delivered')");
    }
    match q.delivered {
        Some(true) => qb.push(" AND state = 'delivered'"),
        Some(false) => qb.push(" AND state <> 'delivered'"),
        None => qb,
    };
}

impl Catalog {
    /// One page of outbox rows matching `q`, newest first, and how many match in all.
    pub async fn list_deliveries(&self, q: &DeliveryQuery) -> Result<(u64, Vec<OutboxEvent>)> {
        const OP: &str = "list_deliveries";
        let offset = to_i64(OP, "offset", q.offset)?;
        let (total, rows): (i64, Vec<OutboxEvent>) = on_pool!(&self.db, |pool| {
            let mut count = QueryBuilder::new("SELECT COUNT(*) FROM outbox");
            push_filters(&mut count, q);
            let total: i64 = count
                .build_query_scalar()
                .fetch_one(pool)
                .await
                .map_err(db_err(OP, ""))?;
            let mut page = QueryBuilder::new(concat!("SELECT ", delivery_cols!(), " FROM outbox"));
            push_filters(&mut page, q);
            page.push(" ORDER BY id DESC LIMIT ")
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

    /// One outbox row by id.
    pub async fn get_delivery(&self, id: i64) -> Result<Option<OutboxEvent>> {
        on_pool!(&self.db, |pool| sqlx::query_as(GET_SQL)
            .bind(id)
            .fetch_optional(pool)
            .await)
        .map_err(db_err("get_delivery", format_args!("id={id}")))
    }

    /// Makes a pending or dead row due at `now_ms` (a dead row becomes pending again and gets
    /// one more attempt: the notifier gives up again after it if it fails). The caller wakes
    /// the notifier. Per-stream order still holds: a revived row is older than any later row
    /// of its stream and so is sent first.
    ///
    /// Errors: [`CatalogError::NotFound`] for an unknown id, [`CatalogError::Conflict`] for a
    /// row already delivered.
    pub async fn retry_delivery_now(&self, id: i64, now_ms: i64) -> Result<OutboxEvent> {
        const OP: &str = "retry_delivery_now";
        let key = || format!("id={id}");
        let (done, row): (u64, Option<OutboxEvent>) = on_pool!(&self.db, |pool| {
            let mut tx = pool.begin_write().await.map_err(db_err(OP, key()))?;
            let done = sqlx::query(
                "UPDATE outbox SET state = 'pending', next_attempt_at_ms = $1 \
                 WHERE id = $2 AND state IN ('pending', 'dead')",
            )
            .bind(now_ms)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db_err(OP, key()))?
            .rows_affected();
            let row: Option<OutboxEvent> = sqlx::query_as(GET_SQL)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_err(OP, key()))?;
            tx.commit().await.map_err(db_err(OP, key()))?;
            (done, row)
        });
        match row {
            None => Err(CatalogError::NotFound {
                what: "delivery",
                key: format!("id={id}"),
            }),
            Some(_) if done == 0 => Err(CatalogError::Conflict {
                what: "delivery",
                key: format!("id={id}"),
                reason: "already delivered".into(),
            }),
            Some(row) => Ok(row),
        }
    }

    /// Makes every dead row of `url` pending and due at `now_ms`, each with one more attempt
    /// (as [`Catalog::retry_delivery_now`]): the receiver answered again, so what was given up
    /// while it was away goes out now. Returns how many rows were revived.
    pub async fn revive_dead(&self, url: &str, now_ms: i64) -> Result<u64> {
        on_pool!(&self.db, |pool| sqlx::query(
            "UPDATE outbox SET state = 'pending', next_attempt_at_ms = $1 \
             WHERE state = 'dead' AND url = $2",
        )
        .bind(now_ms)
        .bind(url)
        .execute(pool)
        .await
        .map(|d| d.rows_affected()))
        .map_err(db_err("revive_dead", ""))
    }

    /// The receivers with dead rows: `(url, oldest dead row's id, dead rows)`, by url. Walks
    /// only the dead rows (`idx_outbox_state_due`).
    pub async fn dead_receivers(&self) -> Result<Vec<DeadReceiver>> {
        let rows: Vec<(String, i64, i64)> = on_pool!(&self.db, |pool| sqlx::query_as(
            "SELECT url, MIN(id), COUNT(*) FROM outbox WHERE state = 'dead' \
             GROUP BY url ORDER BY url",
        )
        .fetch_all(pool)
        .await)
        .map_err(db_err("dead_receivers", ""))?;
        Ok(rows
            .into_iter()
            .map(|(url, oldest_id, n)| DeadReceiver {
                url,
                oldest_id,
                dead: u64::try_from(n).unwrap_or(0),
            })
            .collect())
    }
}

/// A receiver some events were given up for (see [`Catalog::dead_receivers`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadReceiver {
    pub url: String,
    pub oldest_id: i64,
    pub dead: u64,
}
