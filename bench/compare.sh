#!/usr/bin/env bash
# livetape vs nginx-rtmp, side by side on this machine: see README "Benchmarks".
#   bench/compare.sh                 the full suite (~40 min on 2 cores), table on stdout
#   bench/compare.sh --smoke         a 1-minute end-to-end run of every scenario (CI)
#   bench/compare.sh --only load --load flv:100:60 --rounds 5     any options of compare.py
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in ffprobe nginx wrk; do
  command -v "$tool" >/dev/null || {
    echo "$tool is required: apt-get install -y ffmpeg nginx libnginx-mod-rtmp wrk" >&2; exit 1; }
done
[[ -f /usr/lib/nginx/modules/ngx_rtmp_module.so ]] || {
  echo "the RTMP module is required: apt-get install -y libnginx-mod-rtmp" >&2; exit 1; }
cargo build --release --locked -p livetape >&2
bin="${CARGO_TARGET_DIR:-target}/release/livetape"
# The clips every scenario publishes, generated with ffmpeg (cached under target/testkit).
mapfile -t clips < <(cargo run --quiet --release --locked -p livetape-testkit --bin fixture -- clip-60s clip-10s-1M)
args=("$@")
if [[ "${1:-}" == "--smoke" ]]; then
  args=(--rounds 1 --load flv:5:5,mp4:5:5 --fast-s 120 --cb-streams 10 --query-files 20000 --query-requests 200
        --play-files 2 --wrk-s 2 "${@:2}")
fi
exec python3 bench/compare.py --livetape "$bin" --clip "${clips[0]}" --short-clip "${clips[1]}" "${args[@]}"
