#!/usr/bin/env bash
# Refresh the browser libraries served from node/static/vendor/ (run as `./dev vendor`).
# npm installs exactly what package-lock.json pins, with install scripts off; only the
# distributed files and their licence are copied, and the copies are committed, so a
# node is installed and run without npm or any build step.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
static="$here/../../node/static/vendor"
cd "$here"
npm ci --ignore-scripts --no-audit --no-fund
leaflet="$here/node_modules/leaflet"
rm -rf "$static/leaflet"
mkdir -p "$static/leaflet/images"
cp "$leaflet/dist/leaflet.js" "$leaflet/dist/leaflet.css" "$leaflet/LICENSE" "$static/leaflet/"
cp "$leaflet/dist/images/"*.png "$static/leaflet/images/"
version=$(node -p "require('$leaflet/package.json').version")
echo "Leaflet $version from the npm registry; refreshed by tools/vendor/refresh.sh" >"$static/leaflet/VERSION"
echo "node/static/vendor/leaflet: Leaflet $version"
