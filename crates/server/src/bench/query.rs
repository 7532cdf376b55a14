//! `livetape bench seed-catalog` and `livetape bench query`: a catalogue of millions of
//! synthetic recordings, then the latency of `Live_Tape_GetFilelist` and `/v1/recordings`
//! over HTTP (`--url`) next to the same catalogue calls made in-process on the same database
//! file (`--db`, the SQLite floor: same SQL, same SQLite build, no HTTP or JSON).
//!
//! Both sides run the same query sequence: every case draws its queries from an RNG seeded
//! by (case, worker), so the sums of the totals returned must agree, and are compared.

use livetape_catalog::{
    Catalog, CatalogError, RecordingQuery, SeedReport, SeedSpec, SortOrder, seed_appname,
    seed_stream_for, seed_stream_name,
};
use livetape_tencent::cst::format_cst;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Upper bound on `--concurrency` (each worker is one connection).
pub const MAX_CONCURRENCY: usize = 256;
/// Largest response body the client accepts (a page of 100 recordings is ~60 KB).
const MAX_BODY: usize = 16 << 20;
/// Longest response header block the client accepts.
const MAX_HEADER_LINES: usize = 64;
const DAY_MS: i64 = 86_400_000;

#[derive(Debug, thiserror::Error)]
pub enum QueryBenchError {
    #[error("{0}")]
    Args(String),
    #[error("catalogue: {0}")]
    Catalog(#[from] CatalogError),
    #[error("HTTP {0}")]
    Http(String),
}

fn http_err(e: impl std::fmt::Display) -> QueryBenchError {
    QueryBenchError::Http(e.to_string())
}

/// `seed-catalog`: opens (migrating) the catalogue at `spec`'s path and appends the rows.
pub async fn seed(db: &std::path::Path, spec: &SeedSpec) -> Result<SeedReport, QueryBenchError> {
    if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| QueryBenchError::Args(format!("{}: {e}", dir.display())))?;
    }
    let cat = Catalog::open(db).await?;
    let report = cat.seed_synthetic_recordings(spec).await?;
    cat.close().await;
    Ok(report)
}

/// What `bench query` runs.
#[derive(Clone, Debug)]
pub struct QueryBench {
    /// `http://HOST:PORT` of a running server (no `[api] key`).
    pub url: Option<String>,
    /// The same catalogue file, for the in-process floor.
    pub db: Option<PathBuf>,
    pub requests: usize,
    pub concurrency: usize,
    /// As given to `seed-catalog`.
    pub streams: u32,
    pub days: u32,
    /// End of the seeded period (epoch ms).
    pub end_ms: i64,
    /// Only the cases whose name contains one of these (all when empty).
    pub only: Vec<String>,
}

/// Where a query's window and paging come from.
struct Ctx {
    streams: u32,
    days: u32,
    end_ms: i64,
}

impl Ctx {
    fn stream(&self, rng: &mut StdRng) -> u32 {
        seed_stream_for(rng.random::<f64>(), self.streams)
    }
    /// Start of a random CST day inside the seeded period (Unix seconds).
    fn cst_day_start(&self, rng: &mut StdRng) -> i64 {
        const CST: i64 = 8 * 3600;
        let end_s = self.end_ms.div_euclid(1000);
        let today = (end_s + CST).div_euclid(86_400) * 86_400 - CST;
        today - 86_400 * rng.random_range(0..i64::from(self.days.max(1)))
    }
    /// A random `[from, to)` of `days` days inside the seeded period (ms).
    fn window(&self, rng: &mut StdRng, days: i64) -> (i64, i64) {
        let span = i64::from(self.days.max(1)) * DAY_MS;
        let len = (days * DAY_MS).min(span);
        let to = self.end_ms - rng.random_range(0..=(span - len));
        (to - len, to)
    }
}

/// One request: the HTTP path and the catalogue query the server makes of it.
struct Query {
    path: String,
    q: RecordingQuery,
    filelist: bool,
}

fn filelist(stream: u32, window: Option<(i64, i64)>, page_no: u32, size: u32, desc: bool) -> Query {
    let mut path = format!(
        "/common_access?interface=Live_Tape_GetFilelist&Param.s.channel_id={}\
         &Param.n.page_no={page_no}&Param.n.page_size={size}&Param.s.sort_type={}",
        seed_stream_name(stream),
        if desc { "desc" } else { "asc" }
    );
    if let Some((s, e)) = window {
        let enc = |t: i64| format_cst(t).replace(' ', "%20").replace(':', "%3A");
        path.push_str(&format!(
            "&Param.s.start_time={}&Param.s.end_time={}",
            enc(s),
            enc(e)
        ));
    }
    Query {
        path,
        q: RecordingQuery {
            stream_id: Some(seed_stream_name(stream)),
            from_ms: window.map(|(s, _)| s * 1000),
            to_ms: window.map(|(_, e)| e * 1000),
            order: if desc {
                SortOrder::Desc
            } else {
                SortOrder::Asc
            },
            offset: u64::from(page_no - 1) * u64::from(size),
            limit: size,
            ..Default::default()
        },
        filelist: true,
    }
}

#[derive(Default)]
struct Rest {
    stream: Option<u32>,
    app: Option<&'static str>,
    format: Option<&'static str>,
    window: Option<(i64, i64)>,
    page: u64,
    desc: bool,
}

/// `/v1/recordings` with a page size of 20 (the API's default).
fn rest(r: Rest) -> Query {
    const SIZE: u32 = 20;
    let mut path = format!("/v1/recordings?page={}&page_size={SIZE}", r.page);
    if let Some(s) = r.stream {
        path.push_str(&format!("&stream_id={}", seed_stream_name(s)));
    }
    if let Some(a) = r.app {
        path.push_str(&format!("&app={a}"));
    }
    if let Some(f) = r.format {
        path.push_str(&format!("&format={f}"));
    }
    if let Some((f, t)) = r.window {
        path.push_str(&format!("&from={f}&to={t}"));
    }
    if r.desc {
        path.push_str("&order=desc");
    }
    Query {
        path,
        q: RecordingQuery {
            appname: r.app.map(Into::into),
            stream_id: r.stream.map(seed_stream_name),
            format: r.format.map(Into::into),
            from_ms: r.window.map(|w| w.0),
            to_ms: r.window.map(|w| w.1),
            order: if r.desc {
                SortOrder::Desc
            } else {
                SortOrder::Asc
            },
            offset: (r.page - 1) * u64::from(SIZE),
            limit: SIZE,
            ..Default::default()
        },
        filelist: false,
    }
}

type MakeQuery = fn(&mut StdRng, &Ctx) -> Query;

/// The cases, by name: `fl_` = Live_Tape_GetFilelist (windows must be one CST day or absent),
/// `rest_` = /v1/recordings.
const CASES: &[(&str, MakeQuery)] = &[
    ("fl_stream_1d_p1", |r, c| {
        let s = c.stream(r);
        let d = c.cst_day_start(r);
        filelist(s, Some((d, d + 86_399)), 1, 10, false)
    }),
    ("fl_stream_all_p1", |r, c| {
        filelist(c.stream(r), None, 1, 20, false)
    }),
    ("fl_stream_all_p50_desc", |r, c| {
        filelist(c.stream(r), None, 50, 20, true)
    }),
    ("rest_stream_p1", |r, c| {
        rest(Rest {
            stream: Some(c.stream(r)),
            page: 1,
            ..Default::default()
        })
    }),
    ("rest_stream_30d_p1_desc", |r, c| {
        rest(Rest {
            stream: Some(c.stream(r)),
            window: Some(c.window(r, 30)),
            page: 1,
            desc: true,
            ..Default::default()
        })
    }),
    ("rest_stream_30d_p20", |r, c| {
        rest(Rest {
            stream: Some(c.stream(r)),
            window: Some(c.window(r, 30)),
            page: 20,
            ..Default::default()
        })
    }),
    ("rest_all_p1", |_, _| {
        rest(Rest {
            page: 1,
            ..Default::default()
        })
    }),
    ("rest_all_p1_desc", |_, _| {
        rest(Rest {
            page: 1,
            desc: true,
            ..Default::default()
        })
    }),
    ("rest_all_p5000", |_, _| {
        rest(Rest {
            page: 5000,
            ..Default::default()
        })
    }),
    ("rest_app_p1_desc", |r, _| {
        rest(Rest {
            app: Some(seed_appname(r.random_range(0..10))),
            page: 1,
            desc: true,
            ..Default::default()
        })
    }),
    ("rest_format_p1_desc", |r, _| {
        rest(Rest {
            format: Some(["mp4", "flv", "hls"][r.random_range(0..3)]),
            page: 1,
            desc: true,
            ..Default::default()
        })
    }),
    ("rest_1d_p1", |r, c| {
        rest(Rest {
            window: Some(c.window(r, 1)),
            page: 1,
            ..Default::default()
        })
    }),
];

/// Latency summary of one run of one case, in microseconds.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Latency {
    pub n: usize,
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    pub mean_us: u64,
    pub per_s: f64,
    /// Sum of the totals (`all_count` / `total`) returned: equal on both sides iff they
    /// answered the same queries the same way.
    pub totals_sum: u64,
    pub rows_sum: u64,
}

fn summarize(mut samples: Vec<Duration>, wall: Duration, totals: u64, rows: u64) -> Latency {
    samples.sort_unstable();
    let n = samples.len();
    let us = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    // Nearest rank.
    let pct = |p: usize| {
        samples
            .get((n * p).div_ceil(100).saturating_sub(1))
            .map_or(0, |d| us(*d))
    };
    let sum: Duration = samples.iter().sum();
    Latency {
        n,
        p50_us: pct(50),
        p99_us: pct(99),
        max_us: samples.last().map_or(0, |d| us(*d)),
        mean_us: if n == 0 { 0 } else { us(sum) / n as u64 },
        per_s: if wall.is_zero() {
            0.0
        } else {
            n as f64 / wall.as_secs_f64()
        },
        totals_sum: totals,
        rows_sum: rows,
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct CaseReport {
    pub case: String,
    /// The first query of the case, as a path.
    pub example: String,
    pub server: Option<Latency>,
    /// `Catalog::list_recordings` in-process: count + page in one read transaction.
    pub floor: Option<Latency>,
    /// The count statement alone.
    pub floor_count: Option<Latency>,
    /// The page statement alone.
    pub floor_page: Option<Latency>,
    /// EXPLAIN QUERY PLAN of the first query: count, then page.
    pub plan_count: Vec<String>,
    pub plan_page: Vec<String>,
    /// `Some(false)` when server and floor returned different totals.
    pub answers_agree: Option<bool>,
}

#[derive(Clone, Debug, Serialize)]
pub struct QueryReport {
    pub url: Option<String>,
    pub db: Option<String>,
    pub requests: usize,
    pub concurrency: usize,
    pub catalogued_files: Option<u64>,
    pub cases: Vec<CaseReport>,
}

/// Runs `make` `requests` times over `concurrency` workers, each with its own RNG.
async fn drive<F, Fut>(
    b: &QueryBench,
    case: usize,
    make: MakeQuery,
    ctx: &Arc<Ctx>,
    run: F,
) -> Result<Latency, QueryBenchError>
where
    F: Fn(usize, Query) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<(u64, u64), QueryBenchError>> + Send,
{
    let mut tasks = tokio::task::JoinSet::new();
    let start = Instant::now();
    for w in 0..b.concurrency {
        let n = b.requests / b.concurrency + usize::from(w < b.requests % b.concurrency);
        let (ctx, run) = (ctx.clone(), run.clone());
        tasks.spawn(async move {
            let mut rng = StdRng::seed_from_u64((case as u64) << 32 | w as u64);
            let mut out = (Vec::with_capacity(n), 0u64, 0u64);
            for _ in 0..n {
                let q = make(&mut rng, &ctx);
                let t = Instant::now();
                let (total, rows) = run(w, q).await?;
                out.0.push(t.elapsed());
                out.1 += total;
                out.2 += rows;
            }
            Ok::<_, QueryBenchError>(out)
        });
    }
    let (mut all, mut totals, mut rows) = (Vec::with_capacity(b.requests), 0, 0);
    while let Some(j) = tasks.join_next().await {
        let (s, t, r) = j.map_err(|e| QueryBenchError::Args(e.to_string()))??;
        all.extend(s);
        totals += t;
        rows += r;
    }
    Ok(summarize(all, start.elapsed(), totals, rows))
}

/// A keep-alive HTTP/1.1 connection: just enough client for GETs answered with a
/// Content-Length body, and no dependency beyond tokio.
struct Http {
    host: String,
    io: BufReader<TcpStream>,
}

impl Http {
    async fn connect(authority: &str) -> Result<Self, QueryBenchError> {
        let s = TcpStream::connect(authority).await.map_err(http_err)?;
        s.set_nodelay(true).map_err(http_err)?;
        Ok(Self {
            host: authority.to_owned(),
            io: BufReader::new(s),
        })
    }

    async fn get(&mut self, path: &str) -> Result<Vec<u8>, QueryBenchError> {
        let req = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n", self.host);
        self.io
            .get_mut()
            .write_all(req.as_bytes())
            .await
            .map_err(http_err)?;
        let mut line = String::new();
        let mut status = None;
        let mut len = None;
        for i in 0.. {
            if i > MAX_HEADER_LINES {
                return Err(http_err("header too long"));
            }
            line.clear();
            if self.io.read_line(&mut line).await.map_err(http_err)? == 0 {
                return Err(http_err("connection closed"));
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if status.is_none() {
                status = l.split(' ').nth(1).map(str::to_owned);
            } else if let Some((k, v)) = l.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                len = v.trim().parse::<usize>().ok();
            }
        }
        let len = len
            .filter(|l| *l <= MAX_BODY)
            .ok_or_else(|| http_err(format!("{path}: no usable Content-Length")))?;
        let mut body = vec![0; len];
        self.io.read_exact(&mut body).await.map_err(http_err)?;
        if status.as_deref() != Some("200") {
            return Err(http_err(format!(
                "{path}: status {status:?}: {}",
                String::from_utf8_lossy(&body)
            )));
        }
        Ok(body)
    }
}

/// (total, rows) from a response body.
fn parse_answer(body: &[u8], filelist: bool) -> Result<(u64, u64), QueryBenchError> {
    let v: serde_json::Value = serde_json::from_slice(body).map_err(http_err)?;
    let (total, list) = if filelist {
        if v["ret"] != 0 {
            return Err(http_err(format!("GetFilelist failed: {v}")));
        }
        (&v["output"]["all_count"], &v["output"]["file_list"])
    } else {
        (&v["total"], &v["recordings"])
    };
    let total = total
        .as_u64()
        .ok_or_else(|| http_err(format!("no total in {v}")))?;
    Ok((total, list.as_array().map_or(0, |a| a.len() as u64)))
}

/// A pool of `concurrency` connections, one per worker.
type Conns = Arc<Vec<tokio::sync::Mutex<Http>>>;

pub async fn run(b: &QueryBench) -> Result<QueryReport, QueryBenchError> {
    if b.requests == 0 {
        return Err(QueryBenchError::Args(
            "--requests must be at least 1".into(),
        ));
    }
    if !(1..=MAX_CONCURRENCY).contains(&b.concurrency) {
        return Err(QueryBenchError::Args(format!(
            "--concurrency must be 1..={MAX_CONCURRENCY}"
        )));
    }
    if b.url.is_none() && b.db.is_none() {
        return Err(QueryBenchError::Args("give --url, --db or both".into()));
    }
    let authority = match &b.url {
        Some(u) => Some(
            u.strip_prefix("http://")
                .map(|a| a.trim_end_matches('/').to_owned())
                .filter(|a| !a.is_empty() && !a.contains('/'))
                .ok_or_else(|| {
                    QueryBenchError::Args(format!("--url {u:?}: use http://HOST:PORT"))
                })?,
        ),
        None => None,
    };
    let conns: Option<Conns> = match &authority {
        Some(a) => {
            let mut v = Vec::with_capacity(b.concurrency);
            for _ in 0..b.concurrency {
                v.push(tokio::sync::Mutex::new(Http::connect(a).await?));
            }
            Some(Arc::new(v))
        }
        None => None,
    };
    let cat = match &b.db {
        Some(p) => Some(Catalog::open(p).await?),
        None => None,
    };
    let ctx = Arc::new(Ctx {
        streams: b.streams.max(1),
        days: b.days.max(1),
        end_ms: b.end_ms,
    });
    let mut cases = Vec::new();
    for (i, (name, make)) in CASES.iter().enumerate() {
        if !b.only.is_empty() && !b.only.iter().any(|o| name.contains(o.as_str())) {
            continue;
        }
        let example = make(&mut StdRng::seed_from_u64((i as u64) << 32), &ctx);
        let mut rep = CaseReport {
            case: (*name).to_owned(),
            example: example.path.clone(),
            server: None,
            floor: None,
            floor_count: None,
            floor_page: None,
            plan_count: Vec::new(),
            plan_page: Vec::new(),
            answers_agree: None,
        };
        if let Some(conns) = &conns {
            // Worker w always takes connection w: uncontended, so the lock costs nothing.
            let conns = conns.clone();
            let run = move |w: usize, q: Query| {
                let conns = conns.clone();
                async move {
                    let conn = conns.get(w).ok_or_else(|| http_err("no connection"))?;
                    let body = conn.lock().await.get(&q.path).await?;
                    parse_answer(&body, q.filelist)
                }
            };
            rep.server = Some(drive(b, i, *make, &ctx, run).await?);
        }
        if let Some(cat) = &cat {
            let (pc, pp) = cat.explain_list_recordings(&example.q).await?;
            rep.plan_count = pc;
            rep.plan_page = pp;
            let c = cat.clone();
            let list = move |_: usize, q: Query| {
                let c = c.clone();
                async move {
                    let (t, rows) = c.list_recordings(&q.q).await?;
                    Ok((t, rows.len() as u64))
                }
            };
            rep.floor = Some(drive(b, i, *make, &ctx, list).await?);
            let c = cat.clone();
            let count = move |_: usize, q: Query| {
                let c = c.clone();
                async move { Ok((c.count_recordings(&q.q).await?, 0)) }
            };
            rep.floor_count = Some(drive(b, i, *make, &ctx, count).await?);
            let c = cat.clone();
            let page = move |_: usize, q: Query| {
                let c = c.clone();
                async move { Ok((0, c.page_recordings(&q.q).await?.len() as u64)) }
            };
            rep.floor_page = Some(drive(b, i, *make, &ctx, page).await?);
        }
        if let (Some(s), Some(f)) = (&rep.server, &rep.floor) {
            rep.answers_agree = Some(s.totals_sum == f.totals_sum && s.rows_sum == f.rows_sum);
        }
        cases.push(rep);
    }
    let catalogued_files = match &cat {
        Some(c) => Some(c.count_recordings(&RecordingQuery::default()).await?),
        None => None,
    };
    if let Some(c) = cat {
        c.close().await;
    }
    Ok(QueryReport {
        url: b.url.clone(),
        db: b.db.as_ref().map(|p| p.display().to_string()),
        requests: b.requests,
        concurrency: b.concurrency,
        catalogued_files,
        cases,
    })
}

impl std::fmt::Display for QueryReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "bench query: {} requests per case, concurrency {}, {} files catalogued",
            self.requests,
            self.concurrency,
            self.catalogued_files
                .map_or_else(|| "?".to_owned(), |n| n.to_string())
        )?;
        writeln!(
            f,
            "latency in ms, p50 / p99 / max; floor = Catalog::list_recordings in-process \
             (count + page), then each statement alone"
        )?;
        let ms = |us: u64| us as f64 / 1000.0;
        let cell = |l: &Option<Latency>| match l {
            Some(l) => format!(
                "{:7.2} {:7.2} {:7.2}",
                ms(l.p50_us),
                ms(l.p99_us),
                ms(l.max_us)
            ),
            None => format!("{:>23}", "-"),
        };
        let short = |l: &Option<Latency>| match l {
            Some(l) => format!("{:7.2} {:7.2}", ms(l.p50_us), ms(l.p99_us)),
            None => format!("{:>15}", "-"),
        };
        writeln!(
            f,
            "{:<24} {:>23} | {:>23} | {:>15} | {:>15} | agree",
            "case", "server", "floor", "count", "page"
        )?;
        for c in &self.cases {
            writeln!(
                f,
                "{:<24} {} | {} | {} | {} | {}",
                c.case,
                cell(&c.server),
                cell(&c.floor),
                short(&c.floor_count),
                short(&c.floor_page),
                match c.answers_agree {
                    Some(true) => "yes",
                    Some(false) => "NO",
                    None => "-",
                }
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let s: Vec<Duration> = (1..=200).rev().map(Duration::from_micros).collect();
        let l = summarize(s, Duration::from_secs(2), 7, 9);
        assert_eq!((l.n, l.p50_us, l.p99_us, l.max_us), (200, 100, 198, 200));
        assert_eq!((l.totals_sum, l.rows_sum, l.per_s), (7, 9, 100.0));
    }

    #[test]
    fn filelist_case_queries_what_the_server_would() {
        // The HTTP request must parse into the same catalogue query the floor runs.
        let ctx = Ctx {
            streams: 100,
            days: 90,
            end_ms: 1_750_000_000_000,
        };
        for (name, make) in CASES.iter().filter(|(n, _)| n.starts_with("fl_")) {
            let q = make(&mut StdRng::seed_from_u64(1), &ctx);
            let query = q.path.split_once('?').unwrap().1;
            let params: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap();
            let req = livetape_tencent::filelist::parse_filelist_params(&params)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(req.channel_id, q.q.stream_id.clone().unwrap(), "{name}");
            assert_eq!(
                (req.start_ms, req.end_ms),
                (q.q.from_ms, q.q.to_ms),
                "{name}"
            );
            assert_eq!(req.offset(), q.q.offset, "{name}");
            assert_eq!(req.page_size, q.q.limit, "{name}");
            assert_eq!(req.sort_desc(), q.q.order == SortOrder::Desc, "{name}");
        }
    }
}
