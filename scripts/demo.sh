#!/usr/bin/env bash
# The main job: set everything up, start a local cluster of three daemons (one
# machine, one Docker engine, three peers gossiping over a private libp2p
# network), create the fib examples (Node.js and Python) on the first daemon and
# invoke them through the third, then let two instances on different daemons
# message each other directly. The daemons keep running afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
peerless() { node cli/peerless.js "$@"; }
api() { echo "http://127.0.0.1:$((3232 + $1))"; }        # daemon 1 on :3233, 2 on :3234, 3 on :3235
dir() { if [ "$1" = 1 ]; then echo "$PWD/.data/demo"; else echo "$PWD/.data/demo-$1"; fi; }
mkdir -p "$(dir 1)" && chmod 700 "$(dir 1)"
KEYFILE="$(dir 1)/cluster.key"
[ -s "$KEYFILE" ] || (umask 077 && node -e 'console.log(require("crypto").randomBytes(32).toString("hex"))' >"$KEYFILE")
peers() { for j in 1 2 3; do [ "$j" = "$1" ] || printf '/ip4/127.0.0.1/tcp/%s,' $((7947 + j)); done | sed 's/,$//'; }

for i in 1 2 3; do
  D="$(dir "$i")"
  mkdir -p "$D"
  curl -fsS "$(api "$i")/healthz" >/dev/null 2>&1 && continue
  echo "[demo] starting daemon $i on $(api "$i") (log: $D/daemon.log)"
  # 6 s failure timeout (default 1.5 s): three daemons share two cores with every container they start, and a
  # cold start of a hundred workers can hold a daemon's beats back for seconds. A killed daemon is still dropped
  # at once (its peers find its port closed).
  PEERLESS_CLUSTER_KEY_FILE="$KEYFILE" setsid node cli/peerless.js daemon --data-dir "$D" --port $((3232 + i)) --host-id "demo-$i" \
    --memory-budget-mb 6144 --failure-timeout-ms 6000 --cluster-listen "/ip4/127.0.0.1/tcp/$((7947 + i))" --cluster-peers "$(peers "$i")" \
    >"$D/daemon.log" 2>&1 </dev/null &
  echo $! >"$D/daemon.pid"
done
for i in 1 2 3; do
  for _ in $(seq 1 120); do curl -fsS "$(api "$i")/healthz" >/dev/null 2>&1 && break; sleep 0.5; done
  curl -fsS "$(api "$i")/healthz" >/dev/null || { echo "[demo] daemon $i did not come up; see $(dir "$i")/daemon.log" >&2; exit 1; }
done

export PEERLESS_APIHOST="$(api 1)"
ADMIN="$(cat "$(dir 1)/admin.key")"
if [ ! -s "$(dir 1)/demo.auth" ]; then
  peerless --auth "$ADMIN" namespace delete demo >/dev/null 2>&1 || true
  peerless --auth "$ADMIN" namespace create demo --json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).auth))' >"$(dir 1)/demo.auth"
fi
export PEERLESS_AUTH="$(cat "$(dir 1)/demo.auth")"

show() { printf '\n$ peerless %s\n' "$*"; peerless "$@"; }
on() { local i=$1; shift; printf '\n$ PEERLESS_APIHOST=%s peerless %s\n' "$(api "$i")" "$*"; PEERLESS_APIHOST="$(api "$i")" peerless "$@"; }
show peers
show fn update fib examples/fib/fib.js --memory 256 --timeout 30
show fn update fib-py examples/fib/fib.py
show fn update pingpong examples/pingpong/pingpong.js
# The namespace, its key and the functions replicate to every daemon; daemon 3 serves them once they arrive.
for _ in $(seq 1 60); do PEERLESS_APIHOST="$(api 3)" peerless fn get pingpong >/dev/null 2>&1 && break; sleep 0.5; done
on 3 fn invoke fib -p n 30 --result
on 3 fn invoke fib-py -p n 30 --result
on 2 fn invoke fib -p n 25 --blocking
# Instance `pong` runs on daemon 1, `ping` on daemon 3: ping finds pong by its ID and sends it 1000 messages directly.
on 1 fn invoke pingpong --instance pong -p n 1000 -p size 1024
on 3 fn invoke pingpong --instance ping -p n 1000 -p size 1024 --result
show activation list --limit 5
echo
echo "[demo] three daemons are still running (pids $(cat "$(dir 1)/daemon.pid" "$(dir 2)/daemon.pid" "$(dir 3)/daemon.pid" 2>/dev/null | tr '\n' ' ')). Try:"
echo "  export PEERLESS_APIHOST=$(api 1) PEERLESS_AUTH=\$(cat $(dir 1)/demo.auth)"
echo "  peerless fn invoke fib -p n 30 --result      # through any of $(api 1), $(api 2), $(api 3)"
echo "  peerless --auth \$(cat $(dir 1)/admin.key) peers"
echo "  open $(api 1)/dashboard    # live dashboard; key: \$(cat $(dir 1)/demo.auth), or the admin key in $(dir 1)/admin.key"
echo "  kill \$(cat $(dir 1)/daemon.pid $(dir 2)/daemon.pid $(dir 3)/daemon.pid)    # to stop them"
