#!/usr/bin/env bash
# Vendors a player library from npm: update.sh hls.js 1.7.5 | update.sh mpegts.js 1.8.3
# See ../VENDORED.md for the rest of the update (paths in console.rs / console.js, the table).
set -euo pipefail
name=${1:?name: hls.js or mpegts.js}; version=${2:?version}
case "$name" in
  hls.js) files=(dist/hls.light.min.js LICENSE) ;;
  mpegts.js) files=(dist/mpegts.js dist/mpegts.js.LICENSE.txt LICENSE) ;;
  *) echo "unknown library $name" >&2; exit 1 ;;
esac
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "$name@$version" >/dev/null && tar xzf ./*.tgz)
dest="$here/$name-$version"
mkdir -p "$dest"
for f in "${files[@]}"; do cp "$tmp/package/$f" "$dest/"; done
(cd "$dest" && sha256sum -- *)
