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
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LIVETAPE_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = Cli::parse();
    let (config, serve) = match cli.command {
        Command::Serve { config } => (config, true),
        Command::CheckConfig { config } => (config, false),
    };
    let cfg = match Config::load(config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("livetape: bad configuration: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    if !serve {
        match serde_json::to_string_pretty(&cfg) {
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
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
        running.shutdown().await;
        std::process::ExitCode::SUCCESS
    })
}
