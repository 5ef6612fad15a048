#!/usr/bin/env bash
# The main job: set everything up, start a daemon, deploy the fib examples
# (Node.js and Python) and invoke them. The daemon keeps running afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
DATA="$PWD/.data/demo"
PORT="${PEERLESS_PORT:-3233}"
export PEERLESS_APIHOST="http://127.0.0.1:$PORT"
mkdir -p "$DATA"
peerless() { node cli/peerless.js "$@"; }

if ! curl -fsS "$PEERLESS_APIHOST/healthz" >/dev/null 2>&1; then
  echo "[demo] starting peerless daemon on $PEERLESS_APIHOST (log: $DATA/daemon.log)"
  setsid node cli/peerless.js daemon --data-dir "$DATA" --port "$PORT" >"$DATA/daemon.log" 2>&1 < /dev/null &
  echo $! >"$DATA/daemon.pid"
  for _ in $(seq 1 60); do curl -fsS "$PEERLESS_APIHOST/healthz" >/dev/null 2>&1 && break; sleep 0.5; done
fi
curl -fsS "$PEERLESS_APIHOST/healthz" >/dev/null || { echo "[demo] the daemon did not come up; see $DATA/daemon.log" >&2; exit 1; }

ADMIN="$(cat "$DATA/admin.key")"
if [ ! -s "$DATA/demo.auth" ]; then
  peerless --auth "$ADMIN" namespace delete demo >/dev/null 2>&1 || true
  peerless --auth "$ADMIN" namespace create demo --json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).auth))' >"$DATA/demo.auth"
fi
export PEERLESS_AUTH="$(cat "$DATA/demo.auth")"

show() { printf '\n$ peerless %s\n' "$*"; peerless "$@"; }
show fn update fib examples/fib/fib.js --memory 256 --timeout 30
show fn update fib-py examples/fib/fib.py
show fn invoke fib -p n 30 --result
show fn invoke fib-py -p n 30 --result
show fn invoke fib -p n 25 --blocking
show fn list
show activation list --limit 5
echo
echo "[demo] the daemon is still running (pid $(cat "$DATA/daemon.pid" 2>/dev/null || echo '?'), log $DATA/daemon.log). Try:"
echo "  export PEERLESS_APIHOST=$PEERLESS_APIHOST PEERLESS_AUTH=\$(cat $DATA/demo.auth)"
echo "  peerless fn invoke fib -p n 30 --result"
echo "  open $PEERLESS_APIHOST/dashboard    # live dashboard; key: \$(cat $DATA/demo.auth), or the admin key in $DATA/admin.key"
echo "  kill \$(cat $DATA/daemon.pid)    # to stop it"
