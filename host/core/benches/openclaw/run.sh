#!/usr/bin/env bash
# Measures OpenClaw 2026.9.6's resolveAgentRoute on the same inputs as
# `cargo bench -p chela-core --bench resolve`. Needs node and the npm registry;
# not part of CI. Usage: host/core/benches/openclaw/run.sh [workdir]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=${1:-${TMPDIR:-/tmp}/chela-openclaw-bench}
mkdir -p "$work" && cd "$work"
if [ ! -d package ]; then
  npm pack openclaw@2026.9.6 >/dev/null
  tar xzf openclaw-2026.9.6.tgz
fi
[ -f package.json ] || echo '{"name":"openclaw-bench","private":true}' > package.json
# The routing module imports only these runtime packages.
npm install --ignore-scripts --no-audit --no-fund tslog@5.2.0 @openclaw/fs-safe@0.18.1 chalk@6.0.0 >/dev/null 2>&1
file=$(cd package/dist && grep -l "function resolveAgentRoute" resolve-route-*.mjs | head -1)
node "$here/resolve.mjs" "$work" "$file"
