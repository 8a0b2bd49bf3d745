#!/bin/bash
# SPDX-License-Identifier: MIT
# The agent killed (kill -9) while sockperf's traffic flows through the
# kernel table it drives: wave-example-rpcserver, 2 workers, steered by
# libwave's table in the kernel, the table moved by wave-agentd
# (rpc_rebalance) over shm://. After the kill the server must serve on with
# the table as the agent left it: every request that reached it answered
# and steered by the table (none lost by libwave, none left to the kernel's
# fallback hashing), and the kernel's table equal to the handle's at the
# end. When the kill lands in the traffic is not asserted on; nothing here
# depends on timing. Exit 77 (skipped) without sockperf or root.
#
#   agent_kill.sh PATH/TO/wave-example-rpcserver PATH/TO/wave-agentd PLUGIN_DIR
set -u
server=${1:?usage: agent_kill.sh server agentd plugin-dir}
agentd=${2:?usage: agent_kill.sh server agentd plugin-dir}
plugins=${3:?usage: agent_kill.sh server agentd plugin-dir}
command -v sockperf >/dev/null 2>&1 || { echo "skipped: sockperf is not installed"; exit 77; }
[ "$(id -u)" = 0 ] || { echo "skipped: kernel steering needs root (CAP_BPF)"; exit 77; }

work=$(mktemp -d) || exit 1
apid= spid=
cleanup() {
	[ -n "$apid" ] && kill -9 "$apid" 2>/dev/null
	[ -n "$spid" ] && kill "$spid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

cat >"$work/agent.json" <<EOC
{
  "listen": ["shm://$work/agent.sock"],
  "heartbeat": { "period_ms": 100, "timeout_ms": 10000 },
  "plugin_path": ["$plugins"],
  "domains": { "rpc": { "plugin": "rpc_rebalance" } }
}
EOC
"$agentd" --config "$work/agent.json" >"$work/agentd.log" 2>&1 &
apid=$!
# Up to a minute each: a loaded machine is slow, never wrong.
for _ in $(seq 600); do
	[ -S "$work/agent.sock" ] && break
	sleep 0.1
done
[ -S "$work/agent.sock" ] || fail "wave-agentd did not listen: $(cat "$work/agentd.log")"

"$server" --udp --port 0 --workers 2 --work-us 5 --steer bpf --agent "shm://$work/agent.sock" \
	--json >"$work/out" 2>"$work/err" &
spid=$!
for _ in $(seq 600); do
	grep -q '^ready' "$work/out" && break
	sleep 0.1
done
port=$(sed -n 's/^ready [a-z]* [0-9.]*:\([0-9]*\) .*/\1/p' "$work/out")
[ -n "$port" ] || fail "the server did not start: $(cat "$work/err")"

load() { # seconds output-file
	sockperf under-load -i 127.0.0.1 -p "$port" -t "$1" -m 64 --mps 2000 --reply-every 1 \
		>"$2" 2>&1 || fail "sockperf failed: $(tail -5 "$2")"
	n=$(sed -n 's/.*Total \([0-9]*\) observations.*/\1/p' "$2" | tail -1)
	[ -n "$n" ] && [ "$n" -gt 0 ] || fail "no replies measured: $(tail -5 "$2")"
}
load 4 "$work/during" &
lpid=$!
sleep 1.5
kill -9 "$apid"
wait "$apid" 2>/dev/null
apid=
wait "$lpid" || exit 1
echo "ok: traffic while the agent was killed"
load 3 "$work/after"
echo "ok: served after the agent's death"

kill -TERM "$spid"
wait "$spid" || fail "the server exited with an error: $(cat "$work/err")"
spid=
stats=$(tail -1 "$work/out")
# The totals: "served" comes first (the workers' own come later), the rest once.
served=$(sed -n 's/^{"steer":"[^"]*","served":\([0-9]*\),.*/\1/p' <<<"$stats")
num() { sed -n "s/.*\"$1\":\([0-9]*\),.*/\1/p" <<<"$stats"; }
replies=$(num replies) steered=$(num bpf_steered) fb=$(num bpf_fallback)
[ "$replies" = "$served" ] && [ "$served" -gt 0 ] ||
	fail "requests served $served, answered $replies: $stats"
[ "$steered" -ge "$served" ] && [ "$fb" = 0 ] ||
	fail "not every request steered by the table ($steered of $served, $fb by fallback): $stats"
case "$stats" in
*'"malformed":0,'*'"table_consistent":true'*) ;;
*) fail "bad messages counted, or the kernel's table is not the handle's: $stats" ;;
esac
echo "ok: $stats"
