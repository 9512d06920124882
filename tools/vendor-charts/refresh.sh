#!/usr/bin/env bash
# Refresh the charting library served from node/static/vendor/charts/ (Chart.js and its
# Sankey controller, which draw the stewards' flow diagram). npm installs exactly what
# package-lock.json pins, with install scripts off; only the minified browser builds and
# their licences are copied, and the copies are committed, so a node is installed and
# run without npm or any build step. To move to a newer release, change the versions in
# package.json, run `npm install --ignore-scripts` here, then this script.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out="$here/../../node/static/vendor/charts"
cd "$here"
npm ci --ignore-scripts --no-audit --no-fund
chartjs="$here/node_modules/chart.js"
sankey="$here/node_modules/chartjs-chart-sankey"
rm -rf "$out"
mkdir -p "$out"
cp "$chartjs/dist/chart.umd.min.js" "$out/chart.umd.min.js"
cp "$chartjs/LICENSE.md" "$out/LICENSE.chart.js.md"
cp "$sankey/dist/chartjs-chart-sankey.min.js" "$out/chartjs-chart-sankey.min.js"
cp "$sankey/LICENSE" "$out/LICENSE.chartjs-chart-sankey"
version() { node -p "require('$1/package.json').version"; }
{
  echo "chart.js $(version "$chartjs")"
  echo "chartjs-chart-sankey $(version "$sankey")"
  echo "From the npm registry; refreshed by tools/vendor-charts/refresh.sh"
} >"$out/VERSION"
echo "node/static/vendor/charts: chart.js $(version "$chartjs"), chartjs-chart-sankey $(version "$sankey")"
