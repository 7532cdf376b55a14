#!/usr/bin/env bash
# The test command (README): every unit, property and integration test of the workspace.
# Integration tests publish with real encoders (ffmpeg 5.1 and 9, GStreamer, an nginx-rtmp
# relay), check recordings with real ffprobe/ffmpeg, and talk to real PostgreSQL, an
# S3-compatible server and Chromium. On a fresh machine this installs what they need: Debian
# packages when run as root (else it prints the one command that would), the pinned PyPI tools
# into a venv under target/, s3s-fs with cargo, the browser test's npm packages.
set -euo pipefail
cd "$(dirname "$0")/.."

have() { command -v "$1" >/dev/null 2>&1; }
gst_has() { have gst-inspect-1.0 && gst-inspect-1.0 "$1" >/dev/null 2>&1; }
need_apt=()
{ have ffmpeg && have ffprobe; } || need_apt+=(ffmpeg)
# The nginx-rtmp relay test and the benchmark smoke.
have nginx || need_apt+=(nginx)
[ -f /usr/lib/nginx/modules/ngx_rtmp_module.so ] || need_apt+=(libnginx-mod-rtmp)
have wrk || need_apt+=(wrk)
# GStreamer's rtmp2sink publisher: flvmux (good), rtmp2sink + voaacenc (bad), x264enc (ugly).
have gst-launch-1.0 || need_apt+=(gstreamer1.0-tools)
gst_has videotestsrc || need_apt+=(gstreamer1.0-plugins-base)
gst_has flvmux || need_apt+=(gstreamer1.0-plugins-good)
gst_has rtmp2sink || need_apt+=(gstreamer1.0-plugins-bad)
gst_has x264enc || need_apt+=(gstreamer1.0-plugins-ugly)
# The console's real-browser test: Debian's chromium driven by playwright-core from npm.
have chromium || need_apt+=(chromium)
have node || need_apt+=(nodejs)
have npm || need_apt+=(npm)
# The PostgreSQL catalogue tests (scripts/pg-test-db.sh starts the cluster).
{ have pg_ctlcluster && [ -d /usr/lib/postgresql ]; } || need_apt+=(postgresql)
# The venv for the pinned PyPI tools.
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && have apt-get; then
    echo "== installing ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  else
    echo "The tests need: sudo apt-get install -y ${need_apt[*]}" >&2
    exit 1
  fi
fi

# Python tools the tests drive (ffmpeg 9 from imageio-ffmpeg, ...), pinned in
# scripts/requirements-test.txt, in a venv under target/ (re-made when the pins change).
target=${CARGO_TARGET_DIR:-target}
venv="$target/testkit/venv"
if ! cmp -s scripts/requirements-test.txt "$venv/.requirements" 2>/dev/null; then
  echo "== installing the pinned Python tools (scripts/requirements-test.txt) into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r scripts/requirements-test.txt
  cp scripts/requirements-test.txt "$venv/.requirements"
fi

# The S3 tests start a real S3-compatible server, s3s-fs (0.15+ needs a newer rustc).
if ! have s3s-fs && [ ! -x "$HOME/.cargo/bin/s3s-fs" ]; then
  echo "== installing s3s-fs 0.14.1"
  cargo install s3s-fs --version 0.14.1 --features binary --locked --quiet
fi

browser=crates/server/tests/browser
if [ -z "${LIVETAPE_SKIP_BROWSER:-}" ] && [ ! -d "$browser/node_modules" ]; then
  (cd "$browser" && npm ci --no-audit --no-fund --loglevel=error)
fi

# The catalogue's conformance tests and crates/server/tests/it/postgres.rs run on PostgreSQL
# too: each creates its own database through this admin URL (they fail, never skip, without it).
if [ -z "${TEST_DATABASE_URL:-}" ]; then
  TEST_DATABASE_URL=$(./scripts/pg-test-db.sh)
  export TEST_DATABASE_URL
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --locked --no-fail-fast "$@" 2>&1 | tee "$log" || status=$?
# One closing line for the whole workspace (cargo prints one per test binary).
awk '/^test result:/ { p += $4; f += $6; s += $8 }
     END { printf "workspace: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"
