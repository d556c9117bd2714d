#!/usr/bin/env bash
# Smoke test of FerryVault's deposit side on a throwaway anvil: checks that contracts/out/ is
# fresh, starts anvil (Prague, loopback, a free port in 18545–19544), runs contracts/smoke.js
# against it and stops anvil again on any exit. Not part of `make test`; a reference for the
# Rust end-to-end tests.
#
#   bash contracts/smoke.sh
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ANVIL=.tools/bin/anvil
[[ -x $ANVIL ]] || { echo "smoke.sh: $ANVIL not found; run \`bash deploy/setup.sh\` first" >&2; exit 1; }
command -v node >/dev/null || { echo "smoke.sh: node is required" >&2; exit 1; }

node contracts/build.js --check

# port_open PORT: something accepts connections on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

port=
for _ in $(seq 1 50); do
  candidate=$((18545 + RANDOM % 1000))
  if ! port_open "$candidate"; then port=$candidate; break; fi
done
[[ -n $port ]] || { echo "smoke.sh: no free port found in 18545-19544" >&2; exit 1; }

log=$(mktemp -t ferry-smoke-anvil.XXXXXX)
anvil_pid=
cleanup() {
  local status=$?
  if [[ -n $anvil_pid ]] && kill -0 "$anvil_pid" 2>/dev/null; then
    kill "$anvil_pid" 2>/dev/null || true
    wait "$anvil_pid" 2>/dev/null || true
  fi
  if [[ $status -ne 0 && -s $log ]]; then
    echo "smoke.sh: failed (status $status); last anvil log lines:" >&2
    tail -n 20 "$log" >&2
  fi
  rm -f "$log"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$ANVIL" --host 127.0.0.1 --port "$port" --hardfork prague >"$log" 2>&1 &
anvil_pid=$!

for _ in $(seq 1 100); do
  kill -0 "$anvil_pid" 2>/dev/null || { echo "smoke.sh: anvil exited before listening on port $port" >&2; exit 1; }
  port_open "$port" && break
  sleep 0.1
done
port_open "$port" || { echo "smoke.sh: anvil is not listening on port $port after 10 s" >&2; exit 1; }
echo "anvil $($ANVIL --version | head -n 1 | awk '{print $3}') (pid $anvil_pid) on 127.0.0.1:$port"

node contracts/smoke.js "http://127.0.0.1:$port"
