#!/usr/bin/env bash
# Records tests/fixtures/openclaw-state: runs a real OpenClaw 2026.9.6 gateway
# (installed by install.sh) against fake_openai.py, holds two conversations
# over its OpenAI endpoint (alice with agent main, bob with agent work, two
# turns each), snapshots its databases with SQLite's backup API and gzips them.
#   bash xtask/openclaw/record-state.sh [OUT_DIR]
# The config names its workspaces under /tmp/ocrec/root; the tests put them in a temp dir.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
out="${1:-$repo/tests/fixtures/openclaw-state}"
mapfile -t paths < <(bash "$here/install.sh" "$repo/target/openclaw-bench")
node="${paths[0]}"; cli="${paths[1]}"
root=/tmp/ocrec/root
rm -rf "$root" && mkdir -p "$root/state" "$root/ws-main" "$root/ws-work"
cp "$out/openclaw.json" "$root/openclaw.json"
python3 "$here/fake_openai.py" 18901 & fake=$!
# Its own PID namespace: stopping OpenClaw as root otherwise takes the machine's processes with it.
unshare --user --map-root-user --pid --fork --kill-child \
  env HOME="$root" OPENCLAW_STATE_DIR="$root/state" OPENCLAW_CONFIG_PATH="$root/openclaw.json" \
  "$node" "$cli" gateway run --port 18902 >"$root/gateway.log" 2>&1 & gw=$!
trap 'kill -KILL $gw $fake 2>/dev/null || true' EXIT
ask() {
  curl -sf -m 90 localhost:18902/v1/chat/completions -H 'authorization: Bearer rec-token' \
    -H 'content-type: application/json' \
    -d "{\"model\":\"$1\",\"user\":\"$2\",\"messages\":[{\"role\":\"user\",\"content\":\"$3\"}]}"
}
for _ in $(seq 1 60); do ask openclaw/main alice "hello main, remember the word kumquat" && break; sleep 3; done
ask openclaw/main alice "what was the word?"
ask openclaw/work bob "hi work agent"
ask openclaw/work bob "second message to work"
for rel in agents/main/agent/openclaw-agent.sqlite agents/work/agent/openclaw-agent.sqlite state/openclaw.sqlite; do
  mkdir -p "$(dirname "$out/$rel")"
  python3 -c 'import sqlite3,sys; s=sqlite3.connect(sys.argv[1]); d=sqlite3.connect(sys.argv[2]); s.backup(d); d.close()' \
    "$root/state/$rel" "$out/$rel"
  gzip -9 -f "$out/$rel"
done
echo "recorded $out"
