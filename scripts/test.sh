#!/usr/bin/env bash
# The test command (README): every unit, property and integration test of the workspace.
# Integration tests publish with real ffmpeg and check recordings with real ffprobe.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in ffmpeg ffprobe; do
  command -v "$tool" >/dev/null || { echo "$tool is required (apt-get install ffmpeg)" >&2; exit 1; }
done
exec cargo test --workspace --locked "$@"
