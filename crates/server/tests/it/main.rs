//! livetape's integration tests, as one test binary: each test runs the real server (in-process
//! or as a subprocess) against real ffmpeg/ffprobe, a real HTTP receiver, SQLite, PostgreSQL and
//! an S3-compatible server. One binary rather than one per file: every extra test binary links
//! the whole server again (time and hundreds of MB of disk each, which CI machines run out of).
//! Select a group by its module name, e.g. `cargo test -p livetape --test it record_loop::`.

mod common;

mod bench_cli;
mod browser;
mod cli;
mod cluster;
mod crash;
mod deliveries;
mod disk;
mod formats;
mod hevc;
mod hostile;
mod io_sweep;
mod live;
mod metrics;
mod openapi;
mod order;
mod postgres;
mod publishers;
mod record_loop;
mod retention;
mod s3;
mod shapes;
mod tencent_api;
