#!/usr/bin/env bash
# The test command (README): every unit, property and integration test of the workspace.
# Integration tests publish with real ffmpeg and check recordings with real ffprobe.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in ffmpeg ffprobe; do
  command -v "$tool" >/dev/null || { echo "$tool is required (apt-get install ffmpeg)" >&2; exit 1; }
done
# The console's real-browser test drives Debian's chromium with playwright-core from npm.
browser=crates/server/tests/browser
if [ -z "${LIVETAPE_SKIP_BROWSER:-}" ] && [ ! -d "$browser/node_modules" ] && command -v npm >/dev/null; then
  (cd "$browser" && npm ci --no-audit --no-fund --loglevel=error)
fi
# The catalogue's conformance tests and crates/server/tests/it/postgres.rs run on PostgreSQL too: each creates
# its own database through this admin URL (they fail, never skip, without it).
if [ -z "${TEST_DATABASE_URL:-}" ]; then
  TEST_DATABASE_URL=$(./scripts/pg-test-db.sh)
  export TEST_DATABASE_URL
fi
# The S3 tests start a real S3-compatible server, s3s-fs (0.15+ needs a newer rustc).
if ! command -v s3s-fs >/dev/null && [ ! -x "$HOME/.cargo/bin/s3s-fs" ]; then
  cargo install s3s-fs --version 0.14.1 --features binary --locked --quiet
fi
# Python tools the tests drive (ffmpeg 9 from imageio-ffmpeg, ...), pinned in
# scripts/requirements-test.txt, in a venv under target/ (re-made when the pins change).
target=${CARGO_TARGET_DIR:-target}
venv="$target/testkit/venv"
if ! cmp -s scripts/requirements-test.txt "$venv/.requirements" 2>/dev/null; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r scripts/requirements-test.txt
  cp scripts/requirements-test.txt "$venv/.requirements"
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --locked --no-fail-fast "$@" 2>&1 | tee "$log" || status=$?
# One closing line for the whole workspace (cargo prints one per test binary).
awk '/^test result:/ { p += $4; f += $6; s += $8 }
     END { printf "workspace: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"
