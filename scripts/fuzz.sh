#!/usr/bin/env bash
# Runs every fuzz target (fuzz/, cargo-fuzz on nightly, no sanitizer: the code under test is
# safe Rust, so a bug shows as a panic, an overflow or a runaway allocation) from its committed corpus until it has
# made RUNS executions or SECONDS have passed, then minimises the corpus back into
# fuzz/corpus/<target>. Prints one line per target: executions, seconds, corpus size, crashes.
# A crash input is left in fuzz/artifacts/<target>/: fix the bug, then copy the input into
# fuzz/regressions/<target>/ so crates/fuzzing's replay test keeps checking it on stable.
# Usage: scripts/fuzz.sh [SECONDS per target, default 600] [RUNS, default 10000000] [target...]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-600}
runs=${2:-10000000}
shift $(( $# > 2 ? 2 : $# ))
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(rtmp_session amf0 flv_tags codec_configs mp4_spool_scan hls_ts_recovery filelist_params http_range)
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --version 0.13.1 --locked
cd fuzz
for t in "${targets[@]}"; do
  case $t in flv_tags|mp4_spool_scan|hls_ts_recovery) max_len=65536 ;; *) max_len=4096 ;; esac
  work=$(mktemp -d)
  cp corpus/"$t"/* "$work"/
  log=$(mktemp)
  status=ok
  cargo +nightly fuzz run --sanitizer none "$t" "$work" -- -runs="$runs" -max_total_time="$secs" \
    -max_len="$max_len" -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1 || status=CRASH
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  took=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | grep -o 'in [0-9]*' | grep -o '[0-9]*' || echo "$secs")
  # Keep the corpus small: only inputs that add coverage.
  rm -rf corpus/"$t".min && mkdir corpus/"$t".min
  cargo +nightly fuzz cmin --sanitizer none "$t" "$work" -- -max_len="$max_len" >/dev/null 2>&1 || true
  cp "$work"/* corpus/"$t".min/ 2>/dev/null || true
  if [ -n "$(ls corpus/"$t".min)" ]; then
    rm -rf corpus/"$t" && mv corpus/"$t".min corpus/"$t"
  else
    rm -rf corpus/"$t".min # keep the committed corpus
  fi
  echo "$t: execs=$execs seconds=$took corpus=$(ls corpus/"$t" | wc -l) status=$status"
  [ "$status" = ok ] || tail -40 "$log"
  rm -rf "$work" "$log"
done
