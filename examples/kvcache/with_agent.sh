#!/bin/sh
# SPDX-License-Identifier: MIT
#
# kvcache placed by a real agent: wave-agentd running mem_hemem on a shm://
# socket in a fresh temporary directory, and wave-example-kvcache against
# it. The example starts once the agent is in control, checks every value
# it reads and every value at the end, and runs until the agent has made a
# decision; this script checks that it succeeded, that no value was bad
# and that the agent decided. No timing is assumed (CTest's timeout only
# catches a hang).
#
#   examples/kvcache/with_agent.sh AGENTD KVCACHE PLUGIN_DIR [OPS]
#
# Exit status: 0 on success, 77 when the far tier is not available here
# (as the example says), 1 otherwise, 2 for bad usage.
set -u

[ $# -ge 3 ] || { echo "usage: $0 AGENTD KVCACHE PLUGIN_DIR [OPS]" >&2; exit 2; }
agentd=$1
kvcache=$2
plugins=$3
ops=${4:-100000}

dir=$(mktemp -d "${TMPDIR:-/tmp}/wave-kvcache.XXXXXX") || exit 1
agent_pid=

cleanup() {
	if [ -n "$agent_pid" ] && kill -0 "$agent_pid" 2>/dev/null; then
		kill "$agent_pid" 2>/dev/null
		wait "$agent_pid" 2>/dev/null
	fi
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

uri="shm://$dir/agent.sock"
# A generous heartbeat timeout: a loaded machine must not lose the agent
# for want of CPU (if it did, the run would still be checked: the example
# falls back, comes back, and runs until the agent decides).
cat >"$dir/agent.json" <<JSON
{
  "listen": ["$uri"],
  "heartbeat": { "period_ms": 100, "timeout_ms": 30000 },
  "plugin_path": ["$plugins"],
  "domains": { "mem": { "plugin": "mem_hemem" } }
}
JSON
"$agentd" --config "$dir/agent.json" 2>"$dir/agentd.log" &
agent_pid=$!

"$kvcache" "$ops" "$uri" >"$dir/out" 2>"$dir/err"
rc=$?
cat "$dir/out"
cat "$dir/err" >&2
if [ $rc -eq 77 ]; then
	exit 77
fi
if [ $rc -ne 0 ]; then
	echo "kvcache with an agent: the example failed ($rc); wave-agentd said:" >&2
	cat "$dir/agentd.log" >&2
	exit 1
fi
decisions=$(sed -n 's/.*agent decisions \([0-9]*\),.*/\1/p' "$dir/out")
if ! grep -q ' 0 bad values$' "$dir/out" || [ -z "$decisions" ] || [ "$decisions" -eq 0 ]; then
	echo "kvcache with an agent: bad values, or no decision from the agent" >&2
	exit 1
fi
if ! kill -0 "$agent_pid" 2>/dev/null; then
	echo "kvcache with an agent: wave-agentd died:" >&2
	cat "$dir/agentd.log" >&2
	exit 1
fi
echo "kvcache with an agent: $decisions decisions, every value checked"
