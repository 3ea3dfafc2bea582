#!/usr/bin/env bash
# Interleaved A/B of two switchboard binaries on this machine, with the CPU each thread spent
# per webhook (or per delivery), read from /proc (no profiler in the way). Hosts are noisy:
# compare runs side by side, and the writer thread's µs — the same work in both binaries unless
# the store changed — tells a slow machine from a slow binary.
#
#   bench/ab.sh [-n runs] [-p jivo|envybox] [-m ingest|drain] BINARY_A BINARY_B
#
# ingest: wrk -t2 -c32 for 2 s (warm-up) then 8 s against a daemon with no routes; req/s and
#         CPU µs per stored webhook.
# drain:  every event routed to a local HTTP receiver (bench-peer receiver); wrk -c32 6 s, then
#         3 s with no load: deliveries/s and CPU µs per delivery while the backlog drains.
# Needs wrk, sqlite3 and target/release/bench-peer (cargo build --release -p switchboard-bench-peers).
# Copy the binaries aside first (cp target/release/switchboard /tmp/sb-a): a build between runs
# would replace them.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
runs=3 payload=jivo mode=ingest
while getopts "n:p:m:" opt; do
  case "$opt" in n) runs=$OPTARG ;; p) payload=$OPTARG ;; m) mode=$OPTARG ;; *) exit 2 ;; esac
done
shift $((OPTIND - 1))
[ $# -eq 2 ] || { sed -n '2,16p' "$0"; exit 2; }
case "$payload" in
  jivo) body="$root/bench/payloads/jivo_offline_message.json" type=application/json ;;
  envybox) body="$root/bench/payloads/envybox_missed_call.form" type=application/x-www-form-urlencoded ;;
  *) echo "payload: jivo or envybox" >&2; exit 2 ;;
esac
hooks=18180 admin=18181 receiver=18199

# CPU ticks (1/100 s) per thread name of a process.
ticks() {
  for task in /proc/"$1"/task/*; do
    local stat; stat=$(sed 's/.*) //' "$task/stat")
    echo "$(tr ' ' _ < "$task/comm") $(awk '{print $12 + $13}' <<< "$stat")"
  done | awk '{t[$1] += $2} END {for (k in t) print k, t[k]}' | sort
}

wrk_load() { # seconds id_base [extra wrk args]
  PAYLOAD="$body" CONTENT_TYPE="$type" ID_BASE="$2" wrk -t2 -c32 -d"$1"s "${@:3}" -s "$root/bench/post.lua" \
    "http://127.0.0.1:$hooks/hooks/$payload"
}

one() { # binary label
  local dir; dir=$(mktemp -d)
  cat > "$dir/config.toml" <<CFG
[server]
listen = "127.0.0.1:$hooks"
admin_listen = "127.0.0.1:$admin"
[storage]
url = "sqlite://data/switchboard.db"
[paths]
plugins = "$root/plugins"
CFG
  local receiver_pid=""
  if [ "$mode" = drain ]; then
    "$root/target/release/bench-peer" receiver --listen "127.0.0.1:$receiver" >/dev/null 2>&1 & receiver_pid=$!
    cat >> "$dir/config.toml" <<CFG
[delivery]
concurrency = 32
[outputs.crm]
type = "http"
url = "http://127.0.0.1:$receiver/in"
max_in_flight = 32
[[route]]
name = "everything"
to = ["crm"]
template = "generic"
CFG
  fi
  (cd "$dir" && exec "$1" run --config config.toml >/dev/null 2>&1) & local pid=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$admin/readyz" >/dev/null && break; sleep 0.1; done
  local base=$(( $(date +%s%N) / 1000 % 100000000 * 1000 )) count before after line
  if [ "$mode" = ingest ]; then
    wrk_load 2 "$base" >/dev/null
    before=$(ticks "$pid")
    local out; out=$(wrk_load 8 $((base + 500000000)))
    after=$(ticks "$pid")
    count=$(grep -o '[0-9]* requests in' <<< "$out" | awk '{print $1}')
    line="$(grep -o 'Requests/sec: *[0-9.]*' <<< "$out" | awk '{printf "%8.0f req/s", $2}')"
  else
    wrk_load 6 "$base" >/dev/null
    local db="$dir/data/switchboard.db" pending_before pending_after started
    pending_before=$(sqlite3 "$db" "SELECT count(*) FROM deliveries WHERE state = 'pending'")
    started=$(date +%s%N); before=$(ticks "$pid"); sleep 3; after=$(ticks "$pid")
    pending_after=$(sqlite3 "$db" "SELECT count(*) FROM deliveries WHERE state = 'pending'")
    count=$((pending_before - pending_after))
    line=$(awk -v n="$count" -v ns="$(( $(date +%s%N) - started ))" 'BEGIN {printf "%8.0f deliveries/s", n / (ns / 1e9)}')
  fi
  line+=$(join <(echo "$before") <(echo "$after") | awk -v n="$count" '
    {d = ($3 - $2) * 10000 / n; total += d; if (d >= 0.5) printf "  %s %.1f", $1, d}
    END {printf "  | total %.1f us each", total}')
  echo "$2 $line"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  [ -n "$receiver_pid" ] && { kill "$receiver_pid"; wait "$receiver_pid" 2>/dev/null || true; }
  rm -rf "$dir"
}

for run in $(seq "$runs"); do
  one "$1" "A"
  one "$2" "B"
done
