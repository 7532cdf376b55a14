use clap::{Parser, Subcommand};
use livetape::clock::SystemClock;
use livetape::config::Config;
use std::path::PathBuf;
use std::sync::Arc;

/// livetape: a self-hosted live-stream recording and replay server.
///
/// Hosts push RTMP to rtmp://HOST/APP/STREAM?params; every broadcast is recorded without
/// transcoding (FLV/MP4), catalogued, announced to your backend with Tencent-compatible signed
/// callbacks, listed through Live_Tape_GetFilelist and a REST API, and played back over HTTP.
#[derive(Parser)]
#[command(version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    ///
    /// With no configuration: RTMP on 0.0.0.0:1935, HTTP on 0.0.0.0:8080, data (SQLite catalogue
    /// and recordings) in ./data, every stream of every app recorded as MP4.
    /// Any config key can be overridden by an environment variable LIVETAPE_SECTION__KEY,
    /// e.g. LIVETAPE_SERVER__HTTP_LISTEN=127.0.0.1:9000. See README.md for every key.
    Serve {
        /// TOML configuration file (every key optional).
        #[arg(long, short, env = "LIVETAPE_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Validate the configuration and print the effective one (defaults + file + environment) as JSON.
    CheckConfig {
        #[arg(long, short, env = "LIVETAPE_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Print the OpenAPI 3.1 document of the REST API (/v1), as GET /v1/openapi.json serves it.
    Openapi,
    /// Load tests.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Subcommand)]
enum BenchCommand {
    /// N concurrent RTMP publishers in this one process, all sending the same FLV clip (read
    /// once into memory), then a summary: streams ok/failed (connect, rejected, publish errors),
    /// bytes sent, achieved bitrate and this process's own CPU time.
    ///
    /// Exits 0 if every stream succeeded, 1 if any failed, 2 on bad arguments or an unreadable clip.
    Publish(BenchPublishArgs),
    /// Appends N synthetic recordings to a catalogue (creating and migrating it if needed), in
    /// one transaction: S streams `cam-{i}` under the apps live/edu/shop, a few busy and most
    /// quiet, spread over the last D days; rows as the server writes them, served unchanged.
    SeedCatalog(BenchSeedArgs),
    /// Latency (p50/p99/max) of Live_Tape_GetFilelist and /v1/recordings against a running
    /// server (--url, which must have no [api] key) and/or of the same catalogue queries
    /// in-process on the same database file (--db: the SQLite floor). Streams and windows are
    /// drawn as seed-catalog spread them; pass the same --streams and --days.
    ///
    /// Exits 0 on success, 1 if a request failed or the two sides disagree, 2 on bad arguments.
    Query(BenchQueryArgs),
}

#[derive(clap::Args)]
struct BenchSeedArgs {
    /// Catalogue file, e.g. DATA_DIR/catalog.db.
    #[arg(long)]
    db: PathBuf,
    #[arg(long, default_value_t = 1_000_000)]
    files: u64,
    #[arg(long, default_value_t = 10_000)]
    streams: u32,
    #[arg(long, default_value_t = 90)]
    days: u32,
    /// As [server] appid: the file_id prefix.
    #[arg(long, default_value_t = 1_250_000_000)]
    appid: u64,
    /// As [server] public_url: the video_url prefix.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    public_url: String,
    #[arg(long, default_value = "push.example.com")]
    domain: String,
    /// End of the seeded period, epoch ms (default: now).
    #[arg(long)]
    end_ms: Option<i64>,
}

#[derive(clap::Args)]
struct BenchQueryArgs {
    /// http://HOST:PORT of the server.
    #[arg(long)]
    url: Option<String>,
    /// The server's catalogue file, for the in-process floor.
    #[arg(long)]
    db: Option<PathBuf>,
    /// Requests per case (and per floor measurement).
    #[arg(long, default_value_t = 1000)]
    requests: usize,
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    #[arg(long, default_value_t = 10_000)]
    streams: u32,
    #[arg(long, default_value_t = 90)]
    days: u32,
    /// End of the seeded period, epoch ms (default: now).
    #[arg(long)]
    end_ms: Option<i64>,
    /// Only cases whose name contains this (repeatable).
    #[arg(long = "case")]
    cases: Vec<String>,
    /// Also print each case's EXPLAIN QUERY PLAN (needs --db).
    #[arg(long)]
    plans: bool,
    #[arg(long)]
    json: bool,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn bench_seed(a: BenchSeedArgs) -> std::process::ExitCode {
    use std::process::ExitCode;
    let spec = livetape_catalog::SeedSpec {
        files: a.files,
        streams: a.streams.max(1),
        days: a.days.max(1),
        end_ms: a.end_ms.unwrap_or_else(now_ms),
        appid: a.appid,
        public_url: a.public_url.trim_end_matches('/').to_owned(),
        domain: a.domain,
    };
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("livetape: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(livetape::bench::query::seed(&a.db, &spec)) {
        Ok(r) => {
            println!(
                "seeded {} recordings in {:.2} s ({} in {}; end_ms {})",
                r.inserted,
                r.elapsed.as_secs_f64(),
                r.total_rows,
                a.db.display(),
                spec.end_ms
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("livetape: {e}");
            ExitCode::FAILURE
        }
    }
}

fn bench_query(a: BenchQueryArgs) -> std::process::ExitCode {
    use livetape::bench::query::{QueryBench, QueryBenchError, run};
    use std::process::ExitCode;
    let bench = QueryBench {
        url: a.url,
        db: a.db,
        requests: a.requests,
        concurrency: a.concurrency,
        streams: a.streams,
        days: a.days,
        end_ms: a.end_ms.unwrap_or_else(now_ms),
        only: a.cases,
    };
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("livetape: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let report = match rt.block_on(run(&bench)) {
        Ok(r) => r,
        Err(e @ QueryBenchError::Args(_)) => {
            eprintln!("livetape: {e}");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("livetape: {e}");
            return ExitCode::FAILURE;
        }
    };
    if a.json {
        match serde_json::to_string(&report) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("livetape: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        print!("{report}");
        if a.plans {
            for c in &report.cases {
                println!("{}: {}", c.case, c.example);
                println!("  count: {}", c.plan_count.join("; "));
                println!("  page:  {}", c.plan_page.join("; "));
            }
        }
    }
    if report.cases.iter().any(|c| c.answers_agree == Some(false)) {
        eprintln!("livetape: server and floor answered differently");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

#[derive(clap::Args)]
struct BenchPublishArgs {
    /// rtmp://HOST[:PORT]/APP[/STREAM_PREFIX][?QUERY]; stream i is STREAM_PREFIX{i}
    /// (default prefix "bench-"), the query is kept after each stream name.
    #[arg(long)]
    url: String,
    /// Number of concurrent publishers.
    #[arg(long, default_value_t = 1)]
    streams: usize,
    /// Seconds of media per stream: the clip is looped, timestamps continuing, and cut at the
    /// first video keyframe at or after this. Default: one pass of the clip.
    #[arg(long, value_name = "S")]
    duration: Option<f64>,
    /// FLV clip to send (H.264/H.265/AAC, legacy or Enhanced FLV).
    #[arg(long, value_name = "CLIP.flv")]
    file: PathBuf,
    /// Send each frame when its timestamp is due (the default).
    #[arg(long, conflicts_with_all = ["fast", "rate"])]
    realtime: bool,
    /// Send as fast as the server reads.
    #[arg(long, conflicts_with = "rate")]
    fast: bool,
    /// Send at X times real time.
    #[arg(long, value_name = "X")]
    rate: Option<f64>,
    /// Print the summary as one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

fn bench_publish(a: BenchPublishArgs) -> std::process::ExitCode {
    use livetape::bench::{PublishBench, run};
    use livetape_publish::Pace;
    use std::process::ExitCode;
    let pace = match (a.fast, a.rate) {
        (true, _) => Pace::Fast,
        (_, Some(r)) if r.is_finite() && r > 0.0 => Pace::Rate(r),
        (_, Some(r)) => {
            eprintln!("livetape: --rate must be a positive number, got {r}");
            return ExitCode::from(2);
        }
        _ => Pace::Realtime,
    };
    let duration = match a.duration.map(std::time::Duration::try_from_secs_f64) {
        None => None,
        Some(Ok(d)) if !d.is_zero() => Some(d),
        Some(_) => {
            eprintln!("livetape: --duration must be a positive number of seconds");
            return ExitCode::from(2);
        }
    };
    let bench = PublishBench {
        url: a.url,
        streams: a.streams,
        duration,
        file: a.file,
        pace,
    };
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("livetape: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let report = match rt.block_on(run(&bench)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("livetape: {e}");
            return ExitCode::from(2);
        }
    };
    if a.json {
        match serde_json::to_string(&report) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("livetape: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        print!("{report}");
    }
    if report.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn main() -> std::process::ExitCode {
    // Logs go to stderr: stdout carries only the bound addresses (scripts and tests read them).
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal: journald and log files get plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LIVETAPE_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = Cli::parse();
    let (config, serve) = match cli.command {
        Command::Serve { config } => (config, true),
        Command::CheckConfig { config } => (config, false),
        Command::Openapi => {
            println!("{}", livetape::openapi_json());
            return std::process::ExitCode::SUCCESS;
        }
        Command::Bench(BenchCommand::Publish(args)) => return bench_publish(args),
        Command::Bench(BenchCommand::SeedCatalog(args)) => return bench_seed(args),
        Command::Bench(BenchCommand::Query(args)) => return bench_query(args),
    };
    let cfg = match Config::load(config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("livetape: bad configuration: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    if !serve {
        match serde_json::to_string_pretty(&cfg.redacted()) {
            Ok(s) => {
                println!("{s}");
                return std::process::ExitCode::SUCCESS;
            }
            Err(e) => {
                eprintln!("livetape: {e}");
                return std::process::ExitCode::FAILURE;
            }
        }
    }
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("livetape: cannot start runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        let running = match livetape::start(cfg, Arc::new(SystemClock)).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("livetape: {e}");
                return std::process::ExitCode::FAILURE;
            }
        };
        println!(
            "livetape: rtmp://{} http://{}",
            running.rtmp_addr, running.http_addr
        );
        let mut signals = match Signals::new() {
            Ok(s) => s,
            Err(e) => {
                eprintln!("livetape: cannot listen for signals: {e}");
                return std::process::ExitCode::FAILURE;
            }
        };
        signals.next().await;
        tracing::info!(
            "stopping: finalizing recordings and flushing callbacks (signal again to exit now)"
        );
        tokio::select! {
            () = running.shutdown() => std::process::ExitCode::SUCCESS,
            () = signals.next() => {
                // Whatever was not finalized is recovered by the next start.
                eprintln!("livetape: second signal, exiting now");
                // Not a return: dropping the runtime would wait for blocking finalize work.
                std::process::exit(130)
            }
        }
    })
}

/// SIGTERM or SIGINT, whichever comes.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    async fn next(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}
